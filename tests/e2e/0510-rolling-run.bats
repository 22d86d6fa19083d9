#!/usr/bin/env bats
# Rolling script runs (issue 18): `herd script run X --group G --batch N
# --drain` goes batch by batch behind a real HAProxy: each batch leaves the
# LB (lb-sync's drain), runs the script, passes the health gate (ready and
# UP in the LB) and is back before the next: a request loop on 127.0.0.1
# sees no failure and never more than one host out. A failing script, or a
# health gate that fails, with --stop-on-failure stops the run after the
# first batch; the rest is never touched. A server killed mid-run resumes
# it without running a host twice. Bad options are refused at the door. Needs root (hosts are network namespaces).

load lib
load lb
load 0510-rolling-run

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	lb_setup_file
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	loop_stop
	server_cleanup
}

setup() {
	require_root
}

@test "4 web hosts behind the LB, and the scripts of the rolling runs" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	run herd group scale site/web 4
	[ "$status" -eq 0 ]
	wait_for 60 group_ready 4
	wait_for 30 members_serving 4
	put_script upgrade.sh "$UPGRADE_SH"
	put_script fails.sh "$FAILS_SH"
	put_script stops.sh "$STOPS_SH"
	put_script starts.sh "$STARTS_SH"
	put_script counts.sh "$COUNTS_SH"
}

@test "bad rolling options are refused, naming the field" {
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","batch":0}'
	[[ "$output" == "400 "*'"field":"batch"'* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","batch":5}'
	[[ "$output" == "400 "*'"field":"batch"'* ]]
	[[ "$output" == *"4 ready hosts"* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","batch":"0%"}'
	[[ "$output" == "400 "*'"field":"batch"'* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","drain":true}'
	[[ "$output" == "400 "*'"field":"drain"'* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","batch":1,"health_gate":"soon"}'
	[[ "$output" == "400 "*'"field":"health_gate"'* ]]
	run http POST /v1/runs "$HERD_TOKEN" '{"script":"upgrade.sh","group":"site/web","batch":1,"stop_on_failure":"yes"}'
	[[ "$output" == "400 "*'"field":"stop_on_failure"'* ]]
	run herd script run upgrade.sh --group site/web --batch 1 --surge 2
	[ "$status" -ne 0 ]
	# nothing was run
	run herd run ls --script upgrade.sh --json
	[ "$(echo "$output" | json_count '{items}')" -eq 0 ]
}

@test "a rolling run with --batch 1 --drain under a request loop: no failed request, at most 1 host out" {
	loop_start
	sleep 0.5
	run timeout 300 "$HERD" script run upgrade.sh --group site/web --batch 1 --drain --health-gate 1s --wait --json
	echo "$output"
	loop_stop
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	total=$(grep -c . "$LOOP_DIR/codes")
	ok=$(grep -c '^200$' "$LOOP_DIR/codes")
	samples=$(grep -c . "$LOOP_DIR/out")
	most=$(sort -n "$LOOP_DIR/out" | tail -n 1)
	echo "# $ok of $total responses were 200; at most $most of 4 hosts out in $samples samples" >&3
	[ "$total" -ge 20 ]
	[ "$ok" -eq "$total" ]
	[ "$samples" -ge 5 ]
	[ "$most" -le 1 ]
	# some sample saw a host out: the drain happened
	grep -q '^1$' "$LOOP_DIR/out"
	# every host ran it: the LB serves the 4 new pages
	run seen 40
	[ "$status" -eq 0 ]
	[ "$(grep -c ' v2$' <<<"$output")" -eq 4 ]
	run run_hosts "$id"
	[ "$(grep -c ' succeeded done$' <<<"$output")" -eq 4 ]
	# each step is an activity with its reason
	run herd activity ls --group site/web --json
	[ "$(grep -o "taken out by rolling run $id" <<<"$output" | wc -l)" -eq 4 ]
	[ "$(grep -o 'health gate passed' <<<"$output" | wc -l)" -ge 4 ]
	wait_for 15 members_serving 4
}

@test "a script failing on its first host with --stop-on-failure stops at the first batch" {
	run timeout 300 "$HERD" script run fails.sh --group site/web --batch 1 --drain --stop-on-failure --wait --json
	[ "$status" -ne 0 ]
	id=$(herd run ls --script fails.sh --json | json '{items}[0]{id}')
	[ "$(herd run show "$id" --json | json '{state}')" = failed ]
	run run_hosts "$id"
	echo "$output"
	[ "$(grep -c ' failed held$' <<<"$output")" -eq 1 ]
	[ "$(grep -c ' skipped ' <<<"$output")" -eq 3 ]
	# the other 3 never ran it
	[ "$(ran_on /var/lib/herd/ran-fails)" -eq 1 ]
	# the failed host stays out of the LB; the others serve
	wait_for 15 members_serving 3
	run herd run show "$id"
	[[ "$output" == *"the rolling run stopped after"* ]]
	# cancelling the stopped run puts it back
	run herd run cancel "$id"
	[ "$status" -eq 0 ]
	wait_for 30 members_serving 4
}

@test "a script that stops the service fails the health gate and stops the run" {
	run timeout 300 "$HERD" script run stops.sh --group site/web --batch 1 --drain --health-gate 1s --stop-on-failure --wait
	[ "$status" -ne 0 ]
	id=$(herd run ls --script stops.sh --json | json '{items}[0]{id}')
	run run_hosts "$id"
	echo "$output"
	[ "$(grep -c ' failed held$' <<<"$output")" -eq 1 ]
	[ "$(grep -c ' skipped ' <<<"$output")" -eq 3 ]
	[ "$(ran_on /var/lib/herd/ran-stops)" -eq 1 ]
	run herd run show "$id" --json
	[[ "$output" == *"health gate failed"* ]]
	# the others serve without it
	wait_for 15 members_serving 3
	run seen 12
	[ "$status" -eq 0 ]
	# its service back, the run cancelled: it rejoins
	host=$(run_hosts "$id" | awk '$2 == "failed" {print $1}')
	run herd script run starts.sh --host "site/$host" --wait
	[ "$status" -eq 0 ]
	run herd run cancel "$id"
	[ "$status" -eq 0 ]
	wait_for 30 members_serving 4
}

@test "a server killed with SIGKILL mid-run resumes the rolling run: each host runs it once" {
	run timeout 300 "$HERD" script run counts.sh --group site/web --batch 1 --drain --json
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	# the first host done, the run not
	wait_for 60 bash -c "'$HERD' run show $id --json | grep -q '\"phase\": *\"done\"'"
	[ "$(herd run show "$id" --json | json '{state}')" = running ]
	kill -9 "$(cat "$HERD_DATA/server.pid")"
	wait_for 15 bash -c "! kill -0 $(cat "$HERD_DATA/server.pid") 2>/dev/null"
	server_start
	wait_for 120 bash -c "[ \"\$('$HERD' run show $id --json | perl -MJSON::PP -e 'print decode_json(join \"\", <STDIN>)->{state}')\" != running ]"
	run run_hosts "$id"
	echo "$output"
	[ "$(grep -c ' succeeded done$' <<<"$output")" -eq 4 ]
	# every host ran it once: none again after the restart
	[ "$(ran_on /var/lib/herd/ran-counts)" -eq 4 ]
	[ "$(ran_twice)" -eq 0 ]
	wait_for 30 members_serving 4
}
