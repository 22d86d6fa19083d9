#!/usr/bin/env bats
# Load balancers (issue 7): a real HAProxy run by the server forwards a
# loopback listener to the `web` hosts; members follow the hosts (join after
# their health check, drained before termination: no request lost while
# hosts leave); a killed HAProxy is restarted with its members; a restarted
# server adopts the HAProxy left serving; after --teardown nothing of
# HAProxy is left.
# Needs root (hosts are network namespaces).

load lib
load lb

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	lb_setup_file
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# a loop left by a failed test (ours, by pid)
	if [ -f "$BATS_FILE_TMPDIR/loop.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/loop.pid")" 2>/dev/null || true
	fi
	server_cleanup
}

setup() {
	require_root
}

@test "requests to the listener on 127.0.0.1 reach both web hosts" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 2
	wait_for 15 members_serving 2
	run seen 20
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'web-1\nweb-2')" ]
	# the configuration HAProxy runs is the data dir's
	grep -q "bind 127.0.0.1:$LB_PORT" "$HERD_DATA/lb/haproxy.cfg"
	grep -q "option httpchk GET /" "$HERD_DATA/lb/haproxy.cfg"
	[ -S "$HERD_DATA/lb/haproxy.sock" ]
	kill -0 "$(haproxy_pid)"
}

@test "herd lb show lists the members with their HAProxy state" {
	run herd lb show web
	[ "$status" -eq 0 ]
	[[ "$output" == *"engine: haproxy (pid $(haproxy_pid)), serving"* ]]
	[[ "$output" == *"web-1"*"UP"*"L7OK"*"active"* ]]
	[[ "$output" == *"web-2"*"UP"*"L7OK"*"active"* ]]
	run herd lb show web --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{members}[0]{check_status}')" = L7OK ]
	[ "$(echo "$output" | json '{members}[0]{scur}')" -ge 0 ]
	[ "$(echo "$output" | json '{engine}{driver}')" = haproxy ]
	# viewers may read members; an unknown LB is a 404
	viewer=$(herd token create --role viewer --name lbviewer)
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" \
		"$HERD_URL/v1/lbs/web/members")
	[ "$code" = 200 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" \
		"$HERD_URL/v1/lbs/nope/members")
	[ "$code" = 404 ]
}

@test "a listener that cannot bind is reported and the others keep serving" {
	# the server's own API port is taken
	body="{\"name\":\"taken\",\"network\":\"vpc1\",\"listen\":\"127.0.0.1:$HERD_PORT\",\"backend_port\":80}"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $HERD_TOKEN" \
		-H 'Content-Type: application/json' --data-binary "$body" "$HERD_URL/v1/lbs")
	[ "$code" = 201 ]
	wait_for 10 bash -c "'$HERD' lb show taken | grep -q 'problem: cannot listen on 127.0.0.1:$HERD_PORT'"
	run seen 20
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'web-1\nweb-2')" ]
	members_serving 2
	run herd lb rm taken
	[ "$status" -eq 0 ]
	curl -sf "$HERD_URL/healthz" >/dev/null
}

@test "scaling to 3 adds the new host once it is ready and its check passes" {
	pid=$(haproxy_pid)
	run herd group scale site/web 3
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 3
	wait_for 15 members_serving 3
	run seen 30
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'web-1\nweb-2\nweb-3')" ]
	# membership changes do not reload HAProxy
	[ "$(haproxy_pid)" = "$pid" ]
	herd activity ls --group site/web --json | grep -q 'web-3 added to load balancer'
}

@test "scaling to 1 under a request loop loses no request" {
	codes=$BATS_FILE_TMPDIR/codes
	stop=$BATS_FILE_TMPDIR/stop
	: >"$codes"
	rm -f "$stop"
	# at most 2,000 requests and 30 s, loopback only
	(
		end=$((SECONDS + 30)) n=0
		while [ ! -e "$stop" ] && [ "$n" -lt 2000 ] && [ "$SECONDS" -lt "$end" ]; do
			curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "http://127.0.0.1:$LB_PORT/" >>"$codes"
			n=$((n + 1))
		done
	) &
	echo $! >"$BATS_FILE_TMPDIR/loop.pid"
	sleep 0.5
	run herd group scale site/web 1
	[ "$status" -eq 0 ]
	wait_for 30 group_ready 1
	wait_for 15 members_serving 1
	sleep 0.5
	touch "$stop"
	wait "$(cat "$BATS_FILE_TMPDIR/loop.pid")"
	rm -f "$BATS_FILE_TMPDIR/loop.pid"
	total=$(grep -c . "$codes")
	ok=$(grep -c '^200$' "$codes")
	echo "# $ok of $total responses were 200" >&3
	[ "$total" -ge 50 ]
	[ "$ok" -eq "$total" ]
	run seen 10
	[ "$status" -eq 0 ]
	[ "$output" = web-1 ]
	# each leaving host was drained before it was terminated
	run herd activity ls --group site/web --json
	[[ "$output" == *"web-3 drained before termination"* ]]
	[[ "$output" == *"web-2 drained before termination"* ]]
}

@test "a killed HAProxy is restarted with the current members within seconds" {
	old=$(haproxy_pid)
	kill -9 "$old"
	start=$SECONDS
	wait_for 5 bash -c "[ -n \"\$(cat '$HERD_DATA/lb/haproxy.pid' 2>/dev/null)\" ] &&
		[ \"\$(cat '$HERD_DATA/lb/haproxy.pid')\" != '$old' ]"
	new=$(haproxy_pid)
	kill -0 "$new"
	wait_for 5 members_serving 1
	[ $((SECONDS - start)) -le 5 ]
	run seen 5
	[ "$status" -eq 0 ]
	[ "$output" = web-1 ]
	[ "$(herd lb show web --json | json '{engine}{restarts}')" -ge 1 ]
}

@test "a restarted server adopts the running HAProxy with its members" {
	old=$(haproxy_pid)
	server_stop
	# HAProxy outlives the control plane (issue 12): still serving
	kill -0 "$old"
	[ "$(haproxy_of_data_dir)" = "$old" ]
	[ -S "$HERD_DATA/lb/haproxy.sock" ]
	run seen 5
	[ "$status" -eq 0 ]
	[ "$output" = web-1 ]
	server_start
	# the host kept running; the same HAProxy keeps it as a member
	wait_for 15 members_serving 1
	[ "$(haproxy_pid)" = "$old" ]
	run seen 5
	[ "$status" -eq 0 ]
	[ "$output" = web-1 ]
}

@test "after the server stops and tears down, no HAProxy process or socket remains" {
	pid=$(haproxy_pid)
	[ -n "$pid" ]
	server_stop
	store_opts "$HERD_DATA"
	"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --teardown >>"$HERD_DATA/server.log" 2>&1
	wait_for 5 dead "$pid"
	[ -z "$(haproxy_of_data_dir)" ]
	[ ! -e "$HERD_DATA/lb/haproxy.sock" ]
	[ ! -e "$HERD_DATA/lb/haproxy.pid" ]
	[ -z "$(find "$HERD_DATA/lb" -name '*.sock')" ]
	[ "$(ip netns list | grep -c "herd-$INST-")" -eq 0 ]
}
