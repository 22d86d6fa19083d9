#!/usr/bin/env bats
# Connections (issue 15): the server watches its connections with epoll by
# default (--http-mode), so that thousands of idle keep-alive connections
# and parked long-polls cost it nothing until they speak. With 2,000 idle
# connections (each from its own 127.x.y.z address, after one authenticated
# GET) and 300 parked long-polls open, a fresh GET is still answered, every
# idle connection still answers, the parked polls are woken by their event
# (the run they wait for is cancelled) and the server's descriptors go back
# down when the clients close. The client is bench/conns.c (the connection
# bench), compiled here. The default connection limit follows the
# descriptor limit (prlimit). Needs root: the run waits on a local host.

load lib

IDLE=2000
PARK=300

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	CONNS_BENCH=$BATS_FILE_TMPDIR/conns-bench
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$CONNS_BENCH" "$BATS_TEST_DIRNAME/../../bench/conns.c"
	export CONNS_BENCH
	server_start
	mkdir -p "$BATS_FILE_TMPDIR/bp/scripts"
	printf '#!/bin/sh\nsleep 987654 &\nwait\n' >"$BATS_FILE_TMPDIR/bp/scripts/hang.sh"
	cat >"$BATS_FILE_TMPDIR/bp/conns.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: connsnet
    account: here
    cidr: $(random_cidr)
scripts:
  - name: hang.sh
    file: scripts/hang.sh
templates:
  - name: node
    account: here
    network: connsnet
clusters:
  - name: cn
    groups:
      - name: node
        template: node
        size: 1
EOF
	herd apply -f "$BATS_FILE_TMPDIR/bp/conns.yaml" >&2
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -n "${BENCH_PID:-}" ]; then
		kill "$BENCH_PID" 2>/dev/null || true
	fi
	server_cleanup
}

setup() {
	require_root
}

host_ready() {
	herd host ls --group cn/node | grep -q ' ready '
}

server_fds() {
	find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}

fds_at_most() { # fds_at_most N
	[ "$(server_fds)" -le "$1" ]
}

held() { # held FILE: the bench holds every connection
	grep -q '^held$' "$1"
}

bench_conns() { # the server's established connections from the bench's addresses
	ss -Htn state established "( sport = :$HERD_PORT )" |
		awk '{ split($NF, a, ":"); if (a[1] ~ /^127\./ && a[1] !~ /^127\.0\./) n++ } END { print n + 0 }'
}

kv() { # kv FILE KEY
	sed -n "s/^$2=//p" "$1" | head -1
}

@test "the server watches its connections with epoll by default" {
	grep -q 'http: epoll' "$HERD_DATA/server.log"
}

@test "2,000 idle connections and 300 parked polls: GETs answered, polls woken by their event, descriptors released" {
	wait_for 60 host_ready
	run_id=$(herd script run hang.sh --group cn/node --json | json '{id}')
	[ "$(herd run show "$run_id" --json | json '{state}')" = running ]
	before=$(server_fds)
	out=$BATS_TEST_TMPDIR/bench.out
	mkfifo "$BATS_TEST_TMPDIR/go"
	"$CONNS_BENCH" --addr "127.0.0.1:$HERD_PORT" --token-file "$HERD_DATA/admin.token" \
		--idle "$IDLE" --spread --park "$PARK" --park-path "/v1/runs/$run_id?wait=60" \
		--requests 20 --window 1 --pid "$SERVER_PID" --hold --park-wait 30 \
		<"$BATS_TEST_TMPDIR/go" >"$out" 2>&1 &
	BENCH_PID=$!
	exec 4>"$BATS_TEST_TMPDIR/go"
	wait_for 50 held "$out" || { exec 4>&-; cat "$out"; false; }
	cat "$out"
	[ "$(kv "$out" idle_open)" = "$IDLE" ]
	[ "$(kv "$out" parked)" = "$PARK" ]
	[ "$(kv "$out" healthz_failed)" = 0 ]
	[ "$(kv "$out" hosts_failed)" = 0 ]
	[ "$(kv "$out" idle_answered_again)" = "$IDLE" ]
	[ "$(kv "$out" parked_answered_early)" = 0 ]
	# The server holds each of the bench's connections: exactly IDLE + PARK
	# established sockets on its port from the bench's addresses (127.x.y.z
	# outside 127.0/16). Its descriptor count agrees give or take its own
	# few (the host's agent reconnecting, a CLI connection not yet reaped),
	# which move by one or two between the two counts.
	[ "$(bench_conns)" = $((IDLE + PARK)) ]
	[ "$(kv "$out" server_fds)" -ge $((before + IDLE + PARK - 10)) ]
	# a GET from the usual client while all of them are open
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/hosts" >/dev/null
	# the event the parked polls wait for
	herd run cancel "$run_id"
	echo go >&4
	exec 4>&-
	wait "$BENCH_PID"
	BENCH_PID=
	cat "$out"
	[ "$(kv "$out" parked_answered)" = "$PARK" ]
	wait_for 30 fds_at_most $((before + 10))
}

@test "--http-mode poll still serves; --http-mode bogus is refused naming the option" {
	run "$HERD" server --data "$BATS_TEST_TMPDIR/d" --http-mode bogus
	[ "$status" -eq 2 ]
	[[ "$output" == *"--http-mode"*"epoll or poll"* ]]
	port=$(free_port)
	"$HERD" server --data "$BATS_TEST_TMPDIR/p" --listen "127.0.0.1:$port" --http-mode poll \
		>"$BATS_TEST_TMPDIR/p.log" 2>&1 &
	pid=$!
	if ! wait_for 10 curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
		kill "$pid"; wait "$pid" || true
		false
	fi
	run "$CONNS_BENCH" --addr "127.0.0.1:$port" --token-file "$BATS_TEST_TMPDIR/p/admin.token" \
		--idle 300 --spread --requests 10 --window 0 </dev/null
	kill "$pid"
	wait "$pid" || true
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"idle_answered_again=300"* ]]
	grep -q 'http: poll' "$BATS_TEST_TMPDIR/p.log"
}

# conn_limit NOFILE [OPTION]...: the connection limit a server started
# with a descriptor limit of NOFILE (soft and hard) reports in its log.
conn_limit() {
	local n=$1 port d pid
	shift
	port=$(free_port)
	d=$(mktemp -d "$BATS_TEST_TMPDIR/lim.XXXXXX")
	prlimit --nofile="$n:$n" "$HERD" server --data "$d" --listen "127.0.0.1:$port" \
		--log-level info "$@" >"$d/log" 2>&1 &
	pid=$!
	wait_for 10 grep -q "connections each" "$d/log" || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	sed -n 's/.*at most \([0-9]*\) connections each.*/\1/p' "$d/log"
}

@test "--max-conns: by default what the descriptor limit leaves (at most 32768), enough for 10,000 parked polls; a given one is kept when it fits" {
	# 8192 before: 10,000 agents' long-polls were refused (docs/scale.md)
	[ "$(conn_limit 20000)" = 19488 ]
	[ "$(conn_limit 4096)" = 3584 ]
	[ "$(conn_limit 20000 --max-conns 100)" = 100 ]
}
