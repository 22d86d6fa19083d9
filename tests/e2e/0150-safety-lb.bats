#!/usr/bin/env bats
# Safety (issue 12): the data plane survives the control plane. HAProxy is
# not the server's child for life: a server killed with SIGKILL or stopped
# with SIGTERM leaves it serving, and the next server adopts the same
# process (same pid) through its runtime socket, so a request loop through
# the LB sees no failure while the server restarts. A pid file naming an
# unrelated process is neither adopted nor killed. Only --teardown stops
# HAProxy. Needs root (hosts are network namespaces).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/lb/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	# below the ephemeral range: a client socket of the request loop must
	# not hold the listener's port
	LB_PORT=$(free_port)
	while [ "$LB_PORT" -ge 32768 ]; do LB_PORT=$(free_port); done
	sed "s|@CIDR@|$CIDR|; s|@PORT@|$LB_PORT|" "$BATS_TEST_DIRNAME/fixtures/lb/lb.yaml" >"$BP_DIR/lb.yaml"
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	export BP=$BP_DIR/lb.yaml CIDR LB_PORT INST
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

# get: one request to the listener; prints "CODE BODY".
get() {
	local out code
	out=$(mktemp)
	code=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$LB_PORT/") || true
	echo "$code $(cat "$out")"
	rm -f "$out"
}

# members_serving N: the LB has exactly N members, all active and UP.
members_serving() {
	local j
	j=$(herd lb show web --json 2>/dev/null) || return 1
	[ "$(echo "$j" | json_count '{members}')" -eq "$1" ] || return 1
	[ "$(echo "$j" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{intent} eq "active" && $_->{status} eq "UP" } @{$d->{members}})')" -eq "$1" ]
}

group_ready() { # group_ready N: site/web has exactly N hosts, all ready
	local lines
	lines=$(herd host ls --group site/web --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); print "$_->{state}\n" for @{$d->{items}}')
	[ "$(grep -c . <<<"$lines")" -eq "$1" ] && [ "$(grep -c '^ready$' <<<"$lines")" -eq "$1" ]
}

# seen N: the distinct bodies of N requests, sorted, one a line; fails on a
# response other than 200.
seen() {
	local r
	for _ in $(seq 1 "$1"); do
		r=$(get)
		[ "${r%% *}" = 200 ] || { echo "bad response: $r" >&2; return 1; }
		echo "${r#* }"
	done | sort -u
}

dead() { # dead PID: no such process, or a zombie (HAProxy outlives the
	# server, so its parent may be an init that reaps late)
	! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]
}

haproxy_pid() {
	cat "$HERD_DATA/lb/haproxy.pid" 2>/dev/null
}

# haproxy_of_data_dir: pids of processes running this data dir's haproxy.cfg.
haproxy_of_data_dir() {
	pgrep -f "haproxy -f $HERD_DATA/lb/haproxy.cfg" || true
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

@test "a server killed with SIGKILL and restarted: no request fails, HAProxy is adopted" {
	pid=$(haproxy_pid)
	[ -n "$pid" ]
	loop_start
	sleep 0.5
	kill -9 "$(cat "$HERD_DATA/server.pid")"
	wait_for 10 server_gone
	sleep 1   # requests while no server runs
	alive=0
	kill -0 "$pid" && alive=1
	server_start
	wait_for 15 members_serving 2 || true
	sleep 1
	loop_stop
	echo "# SIGKILL: $OK of $TOTAL responses were 200" >&3
	[ "$TOTAL" -ge 20 ]
	[ "$OK" -eq "$TOTAL" ]
	[ "$alive" = 1 ]
	members_serving 2
	[ "$(engine_pid)" = "$pid" ]
	[ "$(haproxy_pid)" = "$pid" ]
	[ "$(haproxy_of_data_dir)" = "$pid" ]
}

@test "a server stopped with SIGTERM and restarted: no request fails, HAProxy is adopted" {
	pid=$(haproxy_pid)
	[ -n "$pid" ]
	loop_start
	sleep 0.5
	kill -TERM "$(cat "$HERD_DATA/server.pid")"
	wait_for 15 server_gone
	sleep 1
	alive=0
	kill -0 "$pid" && alive=1
	server_start
	wait_for 15 members_serving 2 || true
	sleep 1
	loop_stop
	echo "# SIGTERM: $OK of $TOTAL responses were 200" >&3
	[ "$TOTAL" -ge 20 ]
	[ "$OK" -eq "$TOTAL" ]
	[ "$alive" = 1 ]
	members_serving 2
	[ "$(engine_pid)" = "$pid" ]
	[ "$(haproxy_pid)" = "$pid" ]
	[ "$(haproxy_of_data_dir)" = "$pid" ]
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
	"$HERD" server --data "$HERD_DATA" --teardown >>"$HERD_DATA/server.log" 2>&1
	wait_for 5 dead "$pid"
	[ -z "$(haproxy_of_data_dir)" ]
	[ ! -e "$HERD_DATA/lb/haproxy.sock" ]
	[ ! -e "$HERD_DATA/lb/haproxy.pid" ]
	[ -z "$(find "$HERD_DATA/lb" -name '*.sock')" ]
	[ -z "$(pgrep -f "$HERD_DATA/lb" || true)" ]
	[ "$(ip netns list | grep -c "herd-$INST-")" -eq 0 ]
}
