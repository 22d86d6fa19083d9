#!/usr/bin/env bats
# herd on PostgreSQL (issue 19, docs/ha.md): a throwaway PostgreSQL started
# by tools/pg-tmp.sh, the store contract test run against it, then a server
# with --store on it: a blueprint applied, hosts launched and ready, a scale
# out, hosts and activities listed, a restart of the server and one of
# PostgreSQL (the server reconnects), and no password in any message. The
# store's rows are checked in PostgreSQL itself. Needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	# this file's servers are on its own PostgreSQL, whatever the pass's store
	unset HERD_TEST_PG HERD_TEST_STORE
	# under /tmp, not BATS_FILE_TMPDIR: the server runs as nobody, which
	# cannot enter a private bats directory
	PG_DIR=$(mktemp -u /tmp/herd-pg-0600.XXXXXX)
	PG_DSN=$("$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh" start "$PG_DIR")
	export PG_DIR PG_DSN
	server_start --store "$PG_DSN"
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/hosts/scripts" "$BP_DIR/"
	sed "s|@CIDR@|$(random_cidr)|" "$BATS_TEST_DIRNAME/fixtures/hosts/hosts.yaml" >"$BP_DIR/hosts.yaml"
	export BP=$BP_DIR/hosts.yaml
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# the teardown reads the hosts from the same store
	HERD_TEST_STORE=$PG_DSN server_cleanup
	[ -z "${PG_DIR:-}" ] || "$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh" stop "$PG_DIR"
}

setup() {
	require_root
}

# sql QUERY: one value from the store's database.
sql() {
	psql "$PG_DSN" -XAtqc "$1"
}

# group_ready CLUSTER/GROUP N: the group has exactly N hosts, all ready.
group_ready() {
	local out
	out=$(herd host ls --group "$1" --json) || return 1
	[ "$(json_count '{items}' <<<"$out")" -eq "$2" ] &&
		[ "$(grep -o '"state": "ready"' <<<"$out" | grep -c .)" -eq "$2" ]
}

@test "the store contract (test-store-contract) passes on PostgreSQL, none of it skipped" {
	bin=$(dirname "$HERD")/tests/test-store-contract
	[ -x "$bin" ]   # make check builds it before the e2e tests
	run env CMOCKA_MESSAGE_OUTPUT=TAP HERD_TEST_PG_DSN="$PG_DSN" "$bin"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *SKIP* ]]
	[ "$(grep -c '^ok [0-9]* - postgresql: ' <<<"$output")" -eq 9 ]
}

@test "--store: a bad value names the flag; an unreachable database is an error without the password" {
	run "$HERD" server --data "$BATS_TEST_TMPDIR/d1" --store "mysql://x/y"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--store"* ]]
	run timeout 30 "$HERD" server --data "$BATS_TEST_TMPDIR/d2" --listen "127.0.0.1:$(free_port)" \
		--store "postgresql://herd:sekrit-0600@/nosuchdb?host=$PG_DIR/sock"
	[ "$status" -ne 0 ]
	[[ "$output" == *"herd:***@/nosuchdb"* ]]
	[[ "$output" != *sekrit-0600* ]]
}

@test "a blueprint on PostgreSQL: hosts ready, the store's rows in PostgreSQL, no SQLite file" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 120 group_ready demo/master 1
	wait_for 120 group_ready demo/node 3
	[ "$(sql "SELECT count(*) FROM hosts WHERE cluster = 'demo' AND state = 'ready' AND grp IN ('master', 'node')")" = 4 ]
	[ "$(sql "SELECT version FROM herd_schema")" -ge 11 ]
	[ ! -e "$HERD_DATA/herd.db" ]
}

@test "herd group scale on PostgreSQL: five nodes ready, listed, with their launch activities" {
	run herd group scale demo/node 5
	[ "$status" -eq 0 ]
	wait_for 120 group_ready demo/node 5
	run herd host ls --group demo/node
	[ "$status" -eq 0 ]
	[[ "$output" == *node-5* ]]
	[ "$(sql "SELECT count(*) FROM activities WHERE cluster = 'demo' AND grp = 'node' AND kind = 'launch'")" -ge 5 ]
	run herd activity ls --cluster demo --json
	[ "$status" -eq 0 ]
	[[ "$output" == *'"host": "node-5"'* ]]
}

@test "a restart of the server finds everything in PostgreSQL: the same hosts, no launch" {
	before=$(sql "SELECT string_agg(id, ',' ORDER BY id) FROM hosts WHERE state <> 'terminated'")
	launches=$(sql "SELECT count(*) FROM activities WHERE kind = 'launch'")
	server_stop
	server_start --store "$PG_DSN"
	wait_for 60 group_ready demo/node 5
	run herd host ls --json
	[ "$status" -eq 0 ]
	for id in ${before//,/ }; do
		[[ "$output" == *"$id"* ]]
	done
	[ "$(sql "SELECT string_agg(id, ',' ORDER BY id) FROM hosts WHERE state <> 'terminated'")" = "$before" ]
	[ "$(sql "SELECT count(*) FROM activities WHERE kind = 'launch'")" = "$launches" ]
	refute grep -q sekrit "$HERD_DATA/server.log"
}

@test "a restart of PostgreSQL: the server reconnects, reads and writes again" {
	"$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh" restart "$PG_DIR"
	wait_for 30 group_ready demo/node 5
	run herd group scale demo/node 4
	[ "$status" -eq 0 ]
	wait_for 120 group_ready demo/node 4
	[ "$(sql "SELECT count(*) FROM hosts WHERE grp = 'node' AND state <> 'terminated'")" = 4 ]
	grep -q "connected to .* again" "$HERD_DATA/server.log"
}
