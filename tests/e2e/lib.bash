# lib.bash - shared by the e2e tests: each test file starts its own herd
# server on a free port with a temporary data dir, and a trap stops it and
# removes every host, namespace and bridge it made, even when a test fails.
# Tests address only loopback and their own networks in 198.18.0.0/15.

HERD=${HERD_BIN:-$BATS_TEST_DIRNAME/../../build/herd}

# A free TCP port on 127.0.0.1.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12000))   # below the ephemeral range (32768+)
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# A /24 in 198.18.0.0/15 unlikely to be used by another run: 198.18/19.X.0/24,
# and none this machine routes or holds an address in at the time (a
# network or veth made earlier in the file, a leftover): a /24 that meets
# one leaves the hosts in it unreachable (e2e 0420 met its veth's /30).
# The draw is bench/free-cidr.bash's, which the benches use too.
# shellcheck source=bench/free-cidr.bash
. "$(dirname "${BASH_SOURCE[0]}")/../../bench/free-cidr.bash"
random_cidr() { free_cidr 24; }

# The store of the tests' servers (docs/ha.md, "Tests"). By default each
# server's SQLite file in its data dir. HERD_TEST_PG=DSN (of a running test
# PostgreSQL's maintenance database, as tools/pg-tmp.sh prints) or =DIR (its
# socket directory): each data dir gets a database of its own on it, made by
# the first server_start of that dir, kept across restarts, dropped by
# server_cleanup after the teardown. HERD_TEST_STORE=DSN: every server of the
# file on that one store (by hand).

# pg_base_dsn: HERD_TEST_PG as a DSN.
pg_base_dsn() {
	case "$HERD_TEST_PG" in
	/*) echo "postgresql://herd@/herd?host=$HERD_TEST_PG" ;;
	*) echo "$HERD_TEST_PG" ;;
	esac
}

# pg_db_name DATA: the database of a data dir (a name from a hash of its path).
pg_db_name() {
	echo "herd_t_$(printf '%s' "$1" | sha256sum | cut -c1-20)"
}

# pg_db_dsn NAME: the DSN of database NAME on HERD_TEST_PG's server.
pg_db_dsn() {
	local base re='^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$'
	base=$(pg_base_dsn)
	[[ "$base" =~ $re ]] || { echo "HERD_TEST_PG: not a postgresql:// DSN or a directory: $HERD_TEST_PG" >&2; return 1; }
	echo "${BASH_REMATCH[1]}/$1${BASH_REMATCH[4]}"
}

# store_dsn DATA: the --store value for a server on DATA ("" for its SQLite
# file); with HERD_TEST_PG, creates DATA's database if it does not exist.
store_dsn() {
	local db
	if [ -n "${HERD_TEST_STORE:-}" ]; then
		echo "$HERD_TEST_STORE"
	elif [ -n "${HERD_TEST_PG:-}" ]; then
		db=$(pg_db_name "$1")
		if [ -z "$(psql "$(pg_base_dsn)" -XAtqc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
			psql "$(pg_base_dsn)" -XAtqc "CREATE DATABASE $db" >/dev/null || return 1
		fi
		pg_db_dsn "$db"
	fi
}

# store_opts DATA: sets the array STORE_OPTS to the server options that put
# DATA's server on the tests' store: `"$HERD" server --data D "${STORE_OPTS[@]}"`.
store_opts() {
	local dsn
	dsn=$(store_dsn "$1") || return 1
	STORE_OPTS=()
	if [ -n "$dsn" ]; then
		STORE_OPTS=(--store "$dsn")
	fi
}

# store_drop DATA: drops DATA's database (HERD_TEST_PG only).
store_drop() {
	[ -n "${HERD_TEST_PG:-}" ] && [ -z "${HERD_TEST_STORE:-}" ] || return 0
	psql "$(pg_base_dsn)" -XAtqc "DROP DATABASE IF EXISTS $(pg_db_name "$1") WITH (FORCE)" >/dev/null
}

# on_pg: the tests' servers run on PostgreSQL.
on_pg() {
	[ -n "${HERD_TEST_PG:-}${HERD_TEST_STORE:-}" ]
}

# skip_on_pg REASON: skips a test that is about SQLite only when on PostgreSQL.
skip_on_pg() {
	if on_pg; then
		skip "SQLite only: $1"
	fi
}

# store_sql SQL: runs SQL on the store of HERD_DATA's server, psql or
# sqlite3 as fits (waiting up to 5 s for SQLite's lock), one row a line,
# columns separated by |. Portable SQL only.
store_sql() {
	local dsn
	dsn=$(store_dsn "$HERD_DATA") || return 1
	if [ -n "$dsn" ]; then
		psql "$dsn" -XAtq -v ON_ERROR_STOP=1 -c "$1"
	else
		sqlite3 "$HERD_DATA/herd.db" ".timeout 5000" "$1"
	fi
}

# store_dump: every row of HERD_DATA's store as SQL text (pg_dump or
# sqlite3's .dump), to look for what must not be stored.
store_dump() {
	local dsn
	dsn=$(store_dsn "$HERD_DATA") || return 1
	if [ -n "$dsn" ]; then
		pg_dump --data-only "$dsn"
	else
		sqlite3 "$HERD_DATA/herd.db" ".timeout 5000" .dump
	fi
}

# Starts a server; sets HERD_DATA HERD_PORT HERD_URL HERD_TOKEN SERVER_PID.
# Its store is the tests' store (above).
server_start() {
	HERD_DATA=${HERD_DATA:-$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/herd-data.XXXXXX")}
	HERD_PORT=${HERD_PORT:-$(free_port)}
	export HERD_URL="http://127.0.0.1:$HERD_PORT"
	store_opts "$HERD_DATA"
	"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --listen "127.0.0.1:$HERD_PORT" "$@" \
		>>"$HERD_DATA/server.log" 2>&1 &
	SERVER_PID=$!
	echo "$SERVER_PID" >"$HERD_DATA/server.pid"
	wait_for 10 curl -sf "$HERD_URL/healthz" >/dev/null
	export HERD_TOKEN
	HERD_TOKEN=$(cat "$HERD_DATA/admin.token")
	export HERD_DATA HERD_PORT SERVER_PID
}

# Stops the server (SIGTERM, then SIGKILL after 10 s).
server_stop() {
	# a test may have restarted the server in its own subshell: the pid file knows
	if [ -n "${HERD_DATA:-}" ] && [ -f "$HERD_DATA/server.pid" ]; then
		SERVER_PID=$(cat "$HERD_DATA/server.pid")
	fi
	[ -n "${SERVER_PID:-}" ] || return 0
	kill "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# Stops the server, terminates every host and network of its data dir, and
# removes the data dir. For teardown_file.
server_cleanup() {
	server_stop
	if [ -n "${HERD_DATA:-}" ] && [ -d "$HERD_DATA" ]; then
		if store_opts "$HERD_DATA"; then
			"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --teardown \
				>>"$HERD_DATA/server.log" 2>&1 || true
		fi
		store_drop "$HERD_DATA" || true
		if [ -n "${HERD_KEEP:-}" ]; then
			echo "# kept $HERD_DATA" >&3
		else
			rm -rf "$HERD_DATA"
		fi
	fi
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

herd() {
	"$HERD" "$@"
}

# json FIELD-EXPR: reads JSON on stdin, prints a value (perl's JSON::PP).
json() {
	perl -MJSON::PP -e '
		my $d = JSON::PP->new->allow_nonref->decode(join("", <STDIN>));
		my $v = eval "\$d->$ARGV[0]"; die $@ if $@;
		if (ref $v) { print JSON::PP->new->canonical->encode($v), "\n" }
		elsif (defined $v) { print "$v\n" }' "$1"
}

# json_count PATH: the number of items of the array at PATH (e.g. '{items}').
json_count() {
	perl -MJSON::PP -e '
		my $d = JSON::PP->new->decode(join("", <STDIN>));
		my $v = eval "\$d->$ARGV[0]"; die $@ if $@;
		print scalar(@$v), "\n"' "$1"
}

require_root() {
	if [ "$(id -u)" != 0 ]; then
		skip "needs root (network namespaces)"
	fi
}

# Counts namespaces and links of this server's instance (0 when clean).
leftovers() {
	local inst
	inst=$(curl -sf "$HERD_URL/healthz" | json '{instance}' 2>/dev/null || cat "$HERD_DATA/instance" 2>/dev/null)
	ip netns list | grep -c "herd-$inst-" || true
}

# http METHOD PATH TOKEN [BODY]: prints "STATUS BODY" ("" TOKEN: none sent;
# a BODY of @FILE sends that file, as curl does).
http() {
	local out code args=(-s -X "$1")
	out=$(mktemp)
	[ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
	[ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	code=$(curl "${args[@]}" -o "$out" -w '%{http_code}' "$HERD_URL$2")
	echo "$code $(cat "$out")"
	rm -f "$out"
}

# in_host ID CMD...: runs CMD inside the host: its network, mount, UTS and
# PID namespaces (its /run, /tmp, /proc and hostname), as `ip netns exec`
# (network only) would not.
in_host() {
	local pid
	pid=$(cat "$HERD_DATA/hosts/$1/pid")
	shift
	nsenter -t "$pid" -m -n -u -p -- "$@"
}

# refute CMD...: fails if CMD succeeds. (A bare `! CMD` never fails a test:
# bash's errexit ignores negated commands.)
refute() {
	if "$@"; then
		echo "unexpectedly succeeded: $*" >&2
		return 1
	fi
}

# diag_hosts CLUSTER: what a failed test needs to be read from CI's output
# alone: the cluster's hosts (terminated too) with their states and
# reasons, each local host's agent.log tail and the server log's tail.
# For a teardown, when the test failed (BATS_TEST_COMPLETED unset).
diag_hosts() {
	local id
	echo "# --- diag_hosts $1 ---"
	herd host ls --cluster "$1" --all 2>&1 || true
	for id in $(herd host ls --cluster "$1" --all --json 2>/dev/null |
		perl -MJSON::PP -e 'print "$_->{id}\n" for @{decode_json(join "", <STDIN>)->{items}}' 2>/dev/null); do
		if [ -s "$HERD_DATA/hosts/$id/agent.log" ]; then
			echo "# --- host $id agent.log (tail) ---"
			tail -n 30 "$HERD_DATA/hosts/$id/agent.log"
		fi
	done
	echo "# --- server.log (tail) ---"
	tail -n 60 "$HERD_DATA/server.log" 2>/dev/null || true
}
