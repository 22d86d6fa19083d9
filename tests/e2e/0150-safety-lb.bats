#!/usr/bin/env bats
# Safety (issue 12): the data plane survives the control plane. HAProxy is
# not the server's child for life: a server killed with SIGKILL or stopped
# with SIGTERM leaves it serving, and the next server adopts the same
# process (same pid) through its runtime socket, so a request loop through
# the LB sees no failure while the server restarts. A pid file naming an
# unrelated process is neither adopted nor killed. Only --teardown stops
# HAProxy. Needs root (hosts are network namespaces).

load lib
load lb

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	lb_setup_file
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# what a failed test left: the request loop and the decoy (ours, by pid)
	local f
	for f in loop.pid decoy.pid; do
		if [ -f "$BATS_FILE_TMPDIR/$f" ]; then
			kill "$(cat "$BATS_FILE_TMPDIR/$f")" 2>/dev/null || true
		fi
	done
	server_cleanup
}

setup() {
	require_root
}

# engine_pid: the HAProxy pid the (running) server reports.
engine_pid() {
	herd lb show web --json 2>/dev/null | json '{engine}{pid}'
}

# loop_start: a request loop through the LB in the background, at most
# 3,000 requests and 60 s, loopback only; "CODE SECONDS TIME" a line in $CODES.
loop_start() {
	CODES=$BATS_FILE_TMPDIR/codes
	STOP=$BATS_FILE_TMPDIR/stop
	: >"$CODES"
	rm -f "$STOP"
	(
		end=$((SECONDS + 60)) n=0
		while [ ! -e "$STOP" ] && [ "$n" -lt 3000 ] && [ "$SECONDS" -lt "$end" ]; do
			echo "$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 \
				"http://127.0.0.1:$LB_PORT/") $(date +%T.%N)" >>"$CODES"
			n=$((n + 1))
		done
	) &
	echo $! >"$BATS_FILE_TMPDIR/loop.pid"
}

# loop_stop: stops the loop and waits for it (so called in the test's own
# shell, not a subshell); sets OK and TOTAL, prints the first failed requests.
loop_stop() {
	touch "$STOP"
	wait "$(cat "$BATS_FILE_TMPDIR/loop.pid")" || true
	rm -f "$BATS_FILE_TMPDIR/loop.pid"
	grep -v '^200 ' "$CODES" | head -5 | sed 's/^/# failed: /' >&3 || true
	OK=$(grep -c '^200 ' "$CODES") || true
	TOTAL=$(grep -c . "$CODES") || true
}

# server_gone: the server process (from its pid file) has exited.
server_gone() {
	dead "$(cat "$HERD_DATA/server.pid")"
}

@test "two web hosts serve through the LB" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 2
	wait_for 15 members_serving 2
	run seen 20
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'web-1\nweb-2')" ]
	kill -0 "$(haproxy_pid)"
}

# restart_under_load SIGNAL: stops the server with SIGNAL while a request
# loop runs through the LB, starts it again; then no request may have
# failed, and the same HAProxy serves, adopted by the new server.
restart_under_load() {
	local pid alive=0
	pid=$(haproxy_pid)
	[ -n "$pid" ]
	loop_start
	sleep 0.5
	kill "-$1" "$(cat "$HERD_DATA/server.pid")"
	wait_for 15 server_gone
	sleep 1   # requests while no server runs
	kill -0 "$pid" && alive=1
	server_start
	wait_for 15 members_serving 2 || true
	sleep 1
	loop_stop
	echo "# $1: $OK of $TOTAL responses were 200" >&3
	[ "$TOTAL" -ge 20 ]
	[ "$OK" -eq "$TOTAL" ]
	[ "$alive" = 1 ]
	members_serving 2
	[ "$(engine_pid)" = "$pid" ]
	[ "$(haproxy_pid)" = "$pid" ]
	[ "$(haproxy_of_data_dir)" = "$pid" ]
}

@test "a server killed with SIGKILL and restarted: no request fails, HAProxy is adopted" {
	restart_under_load KILL
}

@test "a server stopped with SIGTERM and restarted: no request fails, HAProxy is adopted" {
	restart_under_load TERM
}

@test "after adoption a scale-out adds the new host and a scale-in removes one" {
	pid=$(haproxy_pid)
	run herd group scale site/web 3
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 3
	wait_for 15 members_serving 3
	run seen 30
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'web-1\nweb-2\nweb-3')" ]
	run herd group scale site/web 2
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 2
	wait_for 15 members_serving 2
	run seen 20
	[ "$status" -eq 0 ]
	[ "$(grep -c . <<<"$output")" -eq 2 ]
	# the adopted process did all of it through its runtime socket
	[ "$(haproxy_pid)" = "$pid" ]
	[ "$(engine_pid)" = "$pid" ]
}

@test "an adopted HAProxy that dies is noticed and restarted with its members" {
	pid=$(haproxy_pid)
	# not the server's child: noticed by pid and cmdline, not by waitpid
	kill -9 "$pid"
	wait_for 10 bash -c "[ -n \"\$(cat '$HERD_DATA/lb/haproxy.pid' 2>/dev/null)\" ] &&
		[ \"\$(cat '$HERD_DATA/lb/haproxy.pid')\" != '$pid' ]"
	wait_for 15 members_serving 2
	[ "$(engine_pid)" = "$(haproxy_pid)" ]
	[ "$(herd lb show web --json | json '{engine}{restarts}')" -ge 1 ]
	run seen 10
	[ "$status" -eq 0 ]
}

@test "a pid file naming an unrelated process is neither adopted nor killed" {
	pid=$(haproxy_pid)
	kill -TERM "$(cat "$HERD_DATA/server.pid")"
	wait_for 15 server_gone
	# HAProxy goes away while no server runs (ours: it runs our config) and
	# its pid file now names a process whose arguments even name the config
	kill "$pid"
	wait_for 10 dead "$pid"
	# (one process, no descriptor of bats': bats would wait for it)
	perl -e 'sleep 300' "$HERD_DATA/lb/haproxy.cfg" </dev/null >/dev/null 2>&1 &
	decoy=$!
	echo "$decoy" >"$BATS_FILE_TMPDIR/decoy.pid"
	echo "$decoy" >"$HERD_DATA/lb/haproxy.pid"
	server_start
	wait_for 20 members_serving 2
	new=$(engine_pid)
	[ -n "$new" ] && [ "$new" != "$decoy" ] && [ "$new" != "$pid" ]
	[ "$(haproxy_pid)" = "$new" ]
	kill -0 "$decoy"
	run seen 10
	[ "$status" -eq 0 ]
	kill "$decoy"
	rm -f "$BATS_FILE_TMPDIR/decoy.pid"
}

@test "only --teardown stops HAProxy, and nothing of it remains" {
	pid=$(haproxy_pid)
	[ -n "$pid" ]
	server_stop
	kill -0 "$pid"
	store_opts "$HERD_DATA"
	"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --teardown >>"$HERD_DATA/server.log" 2>&1
	wait_for 5 dead "$pid"
	[ -z "$(haproxy_of_data_dir)" ]
	[ ! -e "$HERD_DATA/lb/haproxy.sock" ]
	[ ! -e "$HERD_DATA/lb/haproxy.pid" ]
	[ -z "$(find "$HERD_DATA/lb" -name '*.sock')" ]
	[ -z "$(pgrep -f "$HERD_DATA/lb" || true)" ]
	[ "$(ip netns list | grep -c "herd-$INST-")" -eq 0 ]
}
