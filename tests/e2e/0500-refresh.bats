#!/usr/bin/env bats
# Upgrades (issue 18): template versions and instance refresh. Each host
# records the version of its template it was launched from; a change of the
# template's spec or of the version of a script it runs is a new version,
# and `herd group diff` lists the hosts behind it and what changed. `herd
# group refresh` replaces them batch by batch behind a load balancer under
# a request loop without a failed request; a version whose init fails stops
# it and rolls back; a kill -9 mid-refresh neither replaces a host twice
# nor launches a duplicate. Needs root.

load lib
load 0500-refresh

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	CIDR=$(random_cidr)
	printf '#!/bin/sh\necho web v1\n' >"$BP_DIR/web-v1.sh"
	printf '#!/bin/sh\necho web v2\n' >"$BP_DIR/web-v2.sh"
	mkdir -p "$BP_DIR/scripts"
	cp "$BATS_TEST_DIRNAME/fixtures/lb/scripts/web.sh" "$BATS_TEST_DIRNAME/fixtures/hosts/scripts/fail.sh" \
		"$BP_DIR/scripts/"
	LB_CIDR=$(random_cidr)
	while [ "$LB_CIDR" = "$CIDR" ]; do LB_CIDR=$(random_cidr); done
	# below the ephemeral range: a client socket of the request loop must
	# not hold the listener's port when HAProxy reloads
	LB_PORT=$(free_port)
	while [ "$LB_PORT" -ge 32768 ]; do LB_PORT=$(free_port); done
	export BP_DIR CIDR LB_CIDR LB_PORT
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	loop_stop
	server_cleanup
}

setup() {
	require_root
}

# blueprint SCRIPT TIMEOUT: writes the blueprint with that init script file
# and init_timeout, prints its path.
blueprint() {
	sed -e "s|@CIDR@|$CIDR|" -e "s|@SCRIPT@|$BP_DIR/$1|" -e "s|@TIMEOUT@|$2|" \
		"$BATS_TEST_DIRNAME/fixtures/refresh/refresh.yaml" >"$BP_DIR/refresh.yaml"
	echo "$BP_DIR/refresh.yaml"
}

# ready_count CLUSTER/GROUP: how many of its hosts are ready.
ready_count() {
	herd host ls --group "$1" --json | perl -MJSON::PP -e '
		print scalar(grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}), "\n"'
}

ready_is() { # ready_is CLUSTER/GROUP N
	[ "$(ready_count "$1")" -eq "$2" ]
}

@test "group diff: no host behind after launch; a changed script and field put them behind, with what changed; new hosts are current" {
	run herd apply -f "$(blueprint web-v1.sh 60s)"
	[ "$status" -eq 0 ]
	wait_for 90 ready_is up/web 2

	run herd group diff up/web --json
	[ "$status" -eq 0 ]
	v1=$(echo "$output" | json '{version}')
	[[ "$v1" =~ ^[0-9a-f]{12}$ ]]
	[ "$(echo "$output" | json '{hosts}')" = 2 ]
	[ "$(echo "$output" | json '{current}')" = 2 ]
	[ "$(echo "$output" | json_count '{behind}')" = 0 ]
	# each host records the version it was launched from
	[ "$(herd host show up/web-1 --json | json '{template_version}')" = "$v1" ]
	[ "$(herd host show up/web-2 --json | json '{template_version}')" = "$v1" ]
	herd host ls --group up/web | grep -q "$v1"

	# the description is not what a host is made from: the same version
	sed -i 's|description: .*|description: changed words|' "$BP_DIR/refresh.yaml"
	run herd apply -f "$BP_DIR/refresh.yaml"
	[ "$status" -eq 0 ]
	[ "$(herd group diff up/web --json | json '{version}')" = "$v1" ]

	# a new script version and a changed field: a new version, both behind
	run herd apply -f "$(blueprint web-v2.sh 120s)"
	[ "$status" -eq 0 ]
	run herd group diff up/web --json
	[ "$status" -eq 0 ]
	v2=$(echo "$output" | json '{version}')
	[[ "$v2" =~ ^[0-9a-f]{12}$ ]]
	[ "$v2" != "$v1" ]
	[ "$(echo "$output" | json '{current}')" = 0 ]
	[ "$(echo "$output" | json_count '{behind}')" = 2 ]
	[ "$(echo "$output" | json '{behind}[0]{host}')" = web-1 ]
	[ "$(echo "$output" | json '{behind}[0]{version}')" = "$v1" ]
	changes=$(echo "$output" | json '{behind}[0]{changes}')
	[ "$changes" = '[{"field":"init_timeout","from":"60s","to":"120s"},{"field":"script web.sh","from":1,"to":2}]' ]
	# the text form says the same
	run herd group diff up/web
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "up/web: template web version $v2; 2 of 2 host(s) behind" ]]
	[[ "$output" == *'init_timeout: "60s" -> "120s"'* ]]
	[[ "$output" == *'script web.sh: 1 -> 2'* ]]

	# a host launched now is on the new version, the old ones still behind
	run herd group scale up/web 3
	[ "$status" -eq 0 ]
	wait_for 90 ready_is up/web 3
	[ "$(herd host show up/web-3 --json | json '{template_version}')" = "$v2" ]
	run herd group diff up/web --json
	[ "$(echo "$output" | json '{current}')" = 1 ]
	[ "$(echo "$output" | json_count '{behind}')" = 2 ]

	# another init_timeout, then back: the same version as before again
	run herd apply -f "$(blueprint web-v2.sh 90s)"
	[ "$status" -eq 0 ]
	[ "$(herd group diff up/web --json | json '{current}')" = 0 ]
	run herd apply -f "$(blueprint web-v2.sh 120s)"
	[ "$status" -eq 0 ]
	run herd group diff up/web --json
	[ "$(echo "$output" | json '{version}')" = "$v2" ]
	[ "$(echo "$output" | json '{current}')" = 1 ]

	# an unknown group is a clear error
	run herd group diff up/nosuch
	[ "$status" -ne 0 ]
	[[ "$output" == *nosuch* ]]
}

@test "refresh --pause-after 1: paused after its first batch, --resume finishes it, --cancel of a finished one is refused" {
	# from the test before: web-1 and web-2 behind, web-3 current
	[ "$(herd group diff up/web --json | json_count '{behind}')" = 2 ]
	run herd group refresh up/web --pause-after 1 --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{params}{pause_after}')" = 1 ]
	wait_for 120 refresh_is up/web paused
	run herd group refresh up/web --status --json
	[ "$(echo "$output" | json '{replaced}')" = 1 ]
	[ "$(echo "$output" | json '{batches}')" = 1 ]
	[[ "$(echo "$output" | json '{reason}')" == *pause_after* ]]
	# paused: one host still behind, and it stays so
	[ "$(herd group diff up/web --json | json_count '{behind}')" = 1 ]
	run herd group refresh up/web --pause
	[ "$status" -ne 0 ]
	[[ "$output" == *"is paused: cannot pause"* ]]
	run herd group refresh up/web --resume
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *": running"* ]]
	wait_for 120 refresh_is up/web "done"
	[ "$(herd group diff up/web --json | json_count '{behind}')" = 0 ]
	run herd group refresh up/web --cancel
	[ "$status" -ne 0 ]
	[[ "$output" == *"is done: cannot cancel"* ]]
	# nothing behind: nothing to refresh
	run herd group refresh up/web
	[ "$status" -ne 0 ]
	[[ "$output" == *"nothing to refresh"* ]]
	run activities up/web
	grep -q '^refresh_paused ' <<<"$output"
	grep -q '^refresh_state ' <<<"$output"
}

@test "refresh of 4 hosts behind a load balancer under a request loop: 0 failed requests, never fewer than min_healthy ready, all on the new version" {
	run herd apply -f "$(lb_blueprint '[web.sh]' 60s)"
	[ "$status" -eq 0 ]
	wait_for 120 members_serving 4
	v1=$(herd group diff lbc/web --json | json '{version}')
	run herd apply -f "$(lb_blueprint '[web.sh]' 120s)"
	[ "$status" -eq 0 ]
	v2=$(herd group diff lbc/web --json | json '{version}')
	[ "$v2" != "$v1" ]
	[ "$(herd group diff lbc/web --json | json_count '{behind}')" = 4 ]

	# --dry-run says what it would do and stores nothing
	run herd group refresh lbc/web --dry-run --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{target_version}')" = "$v2" ]
	[ "$(echo "$output" | json_count '{behind}')" = 4 ]
	[ "$(echo "$output" | json '{min_ready}')" = 4 ]
	run herd group refresh lbc/web --status
	[ "$status" -ne 0 ]
	# bad flags name their field
	run herd group refresh lbc/web --batch 0
	[ "$status" -ne 0 ]
	[[ "$output" == *batch* ]]
	run herd group refresh lbc/web --surge 0 --min-healthy 100%
	[ "$status" -ne 0 ]
	[[ "$output" == *min_healthy* ]]

	loop_start
	sleep 0.5
	# the group's refresh: defaults (batch 1, surge 1, min_healthy 100%)
	run herd group refresh lbc/web --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json '{state}')" = running ]
	[ "$(echo "$output" | json '{params}{min_healthy}')" = 100% ]
	# one refresh at a time
	run herd group refresh lbc/web
	[ "$status" -ne 0 ]
	[[ "$output" == *"already has a refresh"* ]]
	wait_for 240 refresh_is lbc/web "done"
	wait_for 30 members_serving 4
	sleep 0.5
	loop_stop
	total=$(grep -c . "$BATS_FILE_TMPDIR/codes")
	ok=$(grep -c '^200$' "$BATS_FILE_TMPDIR/codes")
	samples=$(grep -c . "$BATS_FILE_TMPDIR/ready")
	least=$(sort -n "$BATS_FILE_TMPDIR/ready" | head -1)
	echo "# $ok of $total responses were 200; fewest ready of $samples samples: $least" >&3
	[ "$total" -ge 50 ]
	[ "$ok" -eq "$total" ]
	[ "$samples" -ge 10 ]
	[ "$least" -ge 4 ]

	# all 4 on the new version, none behind
	run versions lbc/web
	[ "$output" = "$(printf 'ready %s\n' "$v2" "$v2" "$v2" "$v2")" ]
	[ "$(herd group diff lbc/web --json | json_count '{behind}')" = 0 ]
	run herd group refresh lbc/web --status --json
	[ "$(echo "$output" | json '{replaced}')" = 4 ]
	[ "$(echo "$output" | json_count '{hosts_replaced}')" = 4 ]
	# every step an activity: each old host taken out once, drained first
	run activities lbc/web
	[ "$(grep -c '^refresh_out ' <<<"$output")" = 4 ]
	[ "$(grep '^refresh_out ' <<<"$output" | sort -u | grep -c .)" = 4 ]
	grep -q '^refresh_batch ' <<<"$output"
	grep -q '^refresh_done ' <<<"$output"
	# the text status
	run herd group refresh lbc/web --status
	[[ "${lines[0]}" == *"to site version $v2: done"* ]]
}

@test "a version whose init fails: the refresh stops in its first batch, the old hosts serve, --rollback restores the old version" {
	v2=$(herd group diff lbc/web --json | json '{version}')
	run herd apply -f "$(lb_blueprint '[web.sh, fail.sh]' 120s)"
	[ "$status" -eq 0 ]
	v3=$(herd group diff lbc/web --json | json '{version}')
	[ "$v3" != "$v2" ]
	run herd group refresh lbc/web --rollback --json
	[ "$status" -eq 0 ]
	wait_for 120 refresh_is lbc/web rolled_back
	run herd group refresh lbc/web --status --json
	# no old host was taken out: the surge host failed first
	[ "$(echo "$output" | json '{replaced}')" = 0 ]
	[ "$(echo "$output" | json '{batches}')" = 0 ]
	[[ "$(echo "$output" | json '{reason}')" == *"failed"*"rolled back"* ]]
	# the old hosts still serve, all four
	run seen_bodies 40
	[ "$status" -eq 0 ]
	[ "$(grep -c . <<<"$output")" = 4 ]
	# the template is back to its spec before: the old version, none behind
	run herd group diff lbc/web --json
	[ "$(echo "$output" | json '{version}')" = "$v2" ]
	[ "$(echo "$output" | json_count '{behind}')" = 0 ]
	run herd template show site --json
	[[ "$output" != *fail.sh* ]]
	run activities lbc/web
	grep -q '^refresh_rollback ' <<<"$output"
}

@test "kill -9 of the server mid-refresh: it resumes after a restart; no host replaced twice, no duplicate launched" {
	run herd apply -f "$(lb_blueprint '[web.sh]' 150s)"
	[ "$status" -eq 0 ]
	v4=$(herd group diff lbc/web --json | json '{version}')
	before=$(activities lbc/web | grep -c .)
	old=$(versions lbc/web | grep -c "^ready ")
	[ "$old" = 4 ]
	server_stop
	# the second batch's intent is stored, then the controller hangs
	# before draining its host: the kill lands exactly there
	HERD_FAILPOINTS=refresh_take_out=hang@2 server_start
	run herd group refresh lbc/web --json
	[ "$status" -eq 0 ]
	hanging() {
		grep -q "failpoint 'refresh_take_out': hanging" "$HERD_DATA/server.log"
	}
	wait_for 180 hanging
	[ "$(herd group refresh lbc/web --status --json | json '{replaced}')" = 2 ]
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
	server_start
	wait_for 240 refresh_is lbc/web "done"
	wait_for 30 members_serving 4
	# (the failed host of the test before is kept a while for inspection)
	run versions lbc/web
	echo "$output"
	[ "$(grep -v '^failed ' <<<"$output")" = "$(printf 'ready %s\n' "$v4" "$v4" "$v4" "$v4")" ]
	run herd group refresh lbc/web --status --json
	[ "$(echo "$output" | json '{replaced}')" = 4 ]
	# since this refresh began: each old host taken out once, and exactly
	# 4 launches (one surge host a batch), each a different host
	run activities lbc/web
	since=$(tail -n +"$((before + 1))" <<<"$output")
	[ "$(grep -c '^refresh_out ' <<<"$since")" = 4 ]
	[ "$(grep '^refresh_out ' <<<"$since" | sort -u | grep -c .)" = 4 ]
	[ "$(grep -c '^launch ' <<<"$since")" = 4 ]
	[ "$(grep '^launch ' <<<"$since" | sort -u | grep -c .)" = 4 ]
}
