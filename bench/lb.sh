#!/usr/bin/env bash
# bench/lb.sh - the load balancer's data path and join latency (issue 7).
# 1. Requests/s (wrk) through the herd-managed HAProxy to two local hosts
#    (nginx on each), next to a second HAProxy started by hand from the same
#    configuration with the same two servers written in, on another port, in
#    the same run: rounds alternate, medians are compared. herd only drives
#    HAProxy's runtime API, so the ratio should be about 1.0.
# 2. Time from a new host's `ready` to the first request it serves through
#    the LB (health check included), median of a few scale-outs.
# Root only (network namespaces); everything made is removed by the trap.
# A benchmark, not a test: no thresholds.
set -euo pipefail
HERD=$(realpath "${HERD_BIN:-$(dirname "$0")/../build/herd}")
ROUNDS=${BENCH_LB_ROUNDS:-3}
SECS=${BENCH_LB_SECONDS:-5}
CONNS=${BENCH_LB_CONNECTIONS:-32}
JOINS=${BENCH_LB_JOINS:-3}

if [ "$(id -u)" != 0 ]; then
	echo "lb: skipped (needs root for network namespaces)"
	exit 0
fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
	echo "lb: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/herd-bench-lb.XXXXXX)
server_pid=
ref_pid=

cleanup() {
	set +e
	[ -n "$ref_pid" ] && kill "$ref_pid" 2>/dev/null && wait "$ref_pid" 2>/dev/null
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -d "$work/data" ] && "$HERD" server --data "$work/data" --teardown >>"$work/server.log" 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port below the ephemeral range (wrk and curl make thousands of
# client sockets; one of them may hold a port picked above 32768).
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

now_ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

wait_for() { # wait_for SECONDS CMD...
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || { echo "lb: timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

# A private copy: a rebuild of build/herd during the run changes nothing here.
cp "$HERD" "$work/herd"
# hosts run the herd-agent beside the server's binary, as installed (else herd
# itself, dynamically linked, with a warning in the server log)
agent_src=$(dirname "$HERD")/herd-agent
[ -x "$agent_src" ] && cp "$agent_src" "$work/herd-agent"
HERD=$work/herd
api_port=$(free_port)
lb_port=$(free_port)
ref_port=$(free_port)
# shellcheck source=bench/free-cidr.bash
. "$(dirname "$0")/free-cidr.bash"
cidr=$(free_cidr 24 19)
export HERD_URL=http://127.0.0.1:$api_port

mkdir -p "$work/bp/scripts" "$work/data"
cat >"$work/bp/scripts/nginx.sh" <<'EOF'
#!/bin/sh
# Serves the hostname on port 8080 of the host's private address with nginx.
set -e
d=/var/lib/herd/nginx
mkdir -p "$d"
cat >"$d/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	server {
		listen $HERD_PRIVATE_IP:8080;
		default_type text/plain;
		location / { return 200 "$HERD_HOST\n"; }
	}
}
CONF
nginx -c "$d/nginx.conf"
EOF
cat >"$work/bp/lb.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: net
    account: here
    cidr: $cidr
load_balancers:
  - name: bench
    network: net
    listen: 127.0.0.1:$lb_port
    backend_port: 8080
    mode: http
    health_check: {type: http, path: /}
scripts:
  - name: nginx.sh
    file: scripts/nginx.sh
templates:
  - name: web
    account: here
    network: net
    init: [nginx.sh]
    load_balancer: bench
clusters:
  - name: bench
    groups:
      - name: web
        template: web
        size: 2
        max: 10
EOF

"$HERD" server --data "$work/data" --listen "127.0.0.1:$api_port" >"$work/server.log" 2>&1 &
server_pid=$!
wait_for 10 curl -sf "$HERD_URL/healthz" -o /dev/null
HERD_TOKEN=$(cat "$work/data/admin.token")
export HERD_TOKEN
"$HERD" apply -f "$work/bp/lb.yaml" >/dev/null

# serving N: the LB has N members, all active and UP.
serving() {
	"$HERD" lb show bench --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); my @m = @{$d->{members}};
		exit !(@m == $ARGV[0] && !grep { $_->{intent} ne "active" || $_->{status} ne "UP" } @m)' "$1"
}
wait_for 60 serving 2

# --- 2. ready -> first request served through the LB --------------------------
joins=()
for _ in $(seq 1 "$JOINS"); do
	"$HERD" group scale bench/web 3 >/dev/null
	# the newest host's name and its ready time (wall ms, the server's clock)
	newest=
	ready_ms=
	deadline=$((SECONDS + 60))
	while [ -z "$ready_ms" ] && [ "$SECONDS" -lt "$deadline" ]; do
		read -r newest ready_ms < <("$HERD" host ls --group bench/web --json | perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			my ($h) = sort { $b->{created_ms} <=> $a->{created_ms} } @{$d->{items}};
			print "$h->{name} ", ($h->{state} eq "ready" ? $h->{created_ms} + $h->{ready_after_ms} : ""), "\n"') || true
		[ -n "$ready_ms" ] || sleep 0.01
	done
	[ -n "$ready_ms" ] || { echo "lb: no new host became ready" >&2; exit 1; }
	served=
	deadline=$((SECONDS + 30))
	while [ -z "$served" ] && [ "$SECONDS" -lt "$deadline" ]; do
		if [ "$(curl -s --max-time 2 "http://127.0.0.1:$lb_port/")" = "$newest" ]; then
			served=$(now_ms)
		fi
	done
	[ -n "$served" ] || { echo "lb: $newest was never served through the LB" >&2; exit 1; }
	joins+=($((served - ready_ms)))
	"$HERD" group scale bench/web 2 >/dev/null
	wait_for 60 serving 2
done

# --- 1. requests/s: herd's HAProxy vs the same configuration by hand ----------
# The reference: herd's configuration file with another port and socket, the
# two current members written in as servers (herd adds them at run time).
members=$("$HERD" lb show bench --json | perl -MJSON::PP -e '
	my $d = decode_json(join "", <STDIN>); print "$_->{address}\n" for @{$d->{members}}')
line=$(grep -m1 -P '^\tserver ' "$work/data/lb/haproxy.cfg" || true)
opts=${line#*:8080 }
# (no server line if every member was added at run time: herd's add-server options)
[ -n "$line" ] || opts="check inter 1000ms fastinter 200ms downinter 200ms rise 2 fall 2 weight 1 pool-purge-delay 5s pool-max-conn -1"
{
	sed -e "s|bind 127.0.0.1:$lb_port|bind 127.0.0.1:$ref_port|" \
		-e "s|stats socket [^ ]*|stats socket $work/ref.sock|" \
		-e '/^\tserver /d' "$work/data/lb/haproxy.cfg"
	i=0
	for m in $members; do
		i=$((i + 1))
		printf '\tserver ref%d %s %s\n' "$i" "$m" "$opts"
	done
} >"$work/ref.cfg"
haproxy -f "$work/ref.cfg" >"$work/ref.log" 2>&1 &
ref_pid=$!
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$ref_port/" || { cat "$work/ref.cfg" "$work/ref.log" >&2; exit 1; }

rps() { # rps PORT: requests/s of one wrk run
	wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$1/" 2>&1 |
		awk '/^Requests\/sec:/ { print $2 } /Non-2xx|Socket errors/ { print "lb: wrk: " $0 > "/dev/stderr" }'
}
herd_r=()
ref_r=()
for _ in $(seq 1 "$ROUNDS"); do
	herd_r+=("$(rps "$lb_port")")
	ref_r+=("$(rps "$ref_port")")
done
herd_med=$(printf '%s\n' "${herd_r[@]}" | median)
ref_med=$(printf '%s\n' "${ref_r[@]}" | median)
join_med=$(printf '%s\n' "${joins[@]}" | median)

printf 'lb: requests/s through herd'\''s HAProxy   %10.0f  (rounds: %s)\n' "$herd_med" "${herd_r[*]}"
printf 'lb: requests/s, same config by hand   %10.0f  (rounds: %s)\n' "$ref_med" "${ref_r[*]}"
awk -v h="$herd_med" -v r="$ref_med" 'BEGIN { printf "lb: ratio herd / by hand                %10.2f  (wrk -t2 -c%s, %ss per round)\n", h / r, '"$CONNS"', '"$SECS"' }'
printf 'lb: host ready -> first request served %8s ms median (trials: %s)\n' "$join_med" "${joins[*]}"
