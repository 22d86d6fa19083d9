#!/usr/bin/env bash
# bench/conns.sh - what open connections cost the server (issue 15): for
# each connection mode (--http-mode epoll, poll) and each N in BENCH_CONNS
# (default "100 1000"; the full curve: BENCH_CONNS="100 1000 5000 10000
# 12000"), a fresh server, then build/conns-bench (bench/conns.c) holds N
# idle keep-alive connections (each made one authenticated GET /v1/hosts,
# from its own 127.x.y.z source address) plus BENCH_CONNS_PARK parked
# long-polls (default 300; root only: GET /v1/runs/ID?wait=60 of a run that
# hangs on one local host) and measures, while they are open: the server's
# CPU over BENCH_CONNS_WINDOW idle seconds (default 5), a fresh GET /healthz
# and a fresh GET /v1/hosts BENCH_CONNS_REQUESTS times each (p50/p99 ms),
# RSS, and that every idle connection answers a second GET; then cancels the
# run and counts the parked polls answered. Modes alternate per N.
# Reference: the same server in the other mode. A benchmark: no thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."
HERD=$(realpath "${HERD_BIN:-build/herd}")
BUILD=${BUILD:-build}
NS=${BENCH_CONNS:-100 1000}
PARK=${BENCH_CONNS_PARK:-300}
WINDOW=${BENCH_CONNS_WINDOW:-5}
REQUESTS=${BENCH_CONNS_REQUESTS:-200}
MODES=${BENCH_CONNS_MODES:-epoll poll}

[ -x "$BUILD/conns-bench" ] || make -s "$BUILD/conns-bench"
BENCH=$(realpath "$BUILD/conns-bench")
[ "$(id -u)" = 0 ] || PARK=0
work=$(mktemp -d /tmp/herd-bench-conns.XXXXXX)
pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=
	if [ -d "$work/data" ]; then
		"$HERD" server --data "$work/data" --teardown >/dev/null 2>&1 || true
	fi
}
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
die() { echo "conns: FAILED: $*" >&2; exit 1; }

# start_server MODE: a fresh server (and, with parks, one local host with a
# run that hangs); sets pid url tok run
start_server() {
	rm -rf "$work/data"
	port=$((20000 + RANDOM % 12000))
	url="http://127.0.0.1:$port"
	"$HERD" server --data "$work/data" --listen "127.0.0.1:$port" --http-mode "$1" \
		--max-conns 20000 --log-level warn 2>"$work/server.log" &
	pid=$!
	for _ in $(seq 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
	tok=$(cat "$work/data/admin.token")
	run=
	[ "$PARK" -gt 0 ] || return 0
	export HERD_URL=$url HERD_TOKEN=$tok
	mkdir -p "$work/scripts"
	printf '#!/bin/sh\nsleep 987654 &\nwait\n' >"$work/scripts/hang.sh"
	cat >"$work/bench.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: connsnet
    account: here
    cidr: 198.$((18 + RANDOM % 2)).$((RANDOM % 256)).0/24
scripts:
  - name: hang.sh
    file: scripts/hang.sh
templates:
  - name: node
    account: here
    network: connsnet
clusters:
  - name: bench
    groups:
      - name: node
        template: node
        size: 1
EOF
	"$HERD" apply -f "$work/bench.yaml" >/dev/null
	for _ in $(seq 600); do
		"$HERD" host ls --group bench/node | grep -q ' ready ' && break
		sleep 0.2
	done
	run=$("$HERD" script run hang.sh --group bench/node --json |
		perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{id}')
	[ -n "$run" ] || die "no run"
}

printf '%-6s %-5s %6s %8s %8s %8s %8s %6s %8s %7s %6s %7s\n' N mode parked \
	hz_p50 hz_p99 hosts_p50 hosts_p99 cpu% rss_MB again early woken
for n in $NS; do
	for mode in $MODES; do
		start_server "$mode"
		park_args=()
		[ "$PARK" -gt 0 ] && park_args=(--park "$PARK" --park-path "/v1/runs/$run?wait=60" --hold)
		out=$work/out
		if [ "$PARK" -gt 0 ]; then
			rm -f "$work/fifo"
			mkfifo "$work/fifo"
		fi
		"$BENCH" --addr "127.0.0.1:$port" --token-file "$work/data/admin.token" \
			--idle "$n" --spread --pid "$pid" --window "$WINDOW" \
			--requests "$REQUESTS" "${park_args[@]}" \
			<"$([ "$PARK" -gt 0 ] && echo "$work/fifo" || echo /dev/null)" >"$out" &
		bpid=$!
		if [ "$PARK" -gt 0 ]; then
			# the event: the run is cancelled once the bench holds everything
			exec 3>"$work/fifo"
			for _ in $(seq 1200); do
				grep -q '^held' "$out" && break
				kill -0 "$bpid" 2>/dev/null || break
				sleep 0.5
			done
			"$HERD" run cancel "$run" >/dev/null 2>&1 || true
			echo go >&3
			exec 3>&-
		fi
		wait "$bpid" || true
		stop_server
		kv() { sed -n "s/^$1=//p" "$out" | head -1; }
		printf '%-6s %-5s %6s %8s %8s %8s %8s %6s %8s %7s %6s %7s\n' "$n" "$mode" \
			"$(kv parked)" "$(kv healthz_p50_ms)" "$(kv healthz_p99_ms)" \
			"$(kv hosts_p50_ms)" "$(kv hosts_p99_ms)" "$(kv server_idle_cpu_pct)" \
			"$(( $(kv server_rss_kb || echo 0) / 1024 ))" "$(kv idle_answered_again)" \
			"$(kv parked_answered_early)" "$(kv parked_answered)"
		if [ "$(kv idle_open)" != "$n" ]; then
			echo "   !! only $(kv idle_open) of $n opened: $(kv idle_failed_at) $(kv errno)"
		fi
	done
done
