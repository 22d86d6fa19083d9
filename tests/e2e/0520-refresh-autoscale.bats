#!/usr/bin/env bats
# Refresh and autoscaling together (issue 18): a desired change during a
# refresh is honoured, new hosts come from the new version, and a scale-in
# takes the hosts behind the template version first while any remain;
# hosts a refresh takes out are drained and terminated with cause
# `refresh`, never taken back; a refresh with --surge 0 takes hosts out
# first, never below min_healthy ready; `herd group refresh --wait` follows
# it to its end, bounded by --timeout. Local provider, no load balancer.
# Needs root.

load lib
load 0500-refresh
load 0520-refresh-autoscale

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/refresh-autoscale/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	export BP_DIR CIDR
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	sampler_stop
	server_cleanup
}

setup() {
	require_root
}

@test "autoscaling during a refresh: a scale-out launches the new version, a scale-in takes the hosts behind first while any remain" {
	run herd apply -f "$(blueprint 60s)"
	[ "$status" -eq 0 ]
	wait_for 120 ready_is 4
	v1=$(herd group diff as/web --json | json '{version}')
	run herd apply -f "$(blueprint 120s)"
	[ "$status" -eq 0 ]
	v2=$(herd group diff as/web --json | json '{version}')
	[ "$v2" != "$v1" ]

	# warmup 1h: the first batch's surge host never counts as warm, so the
	# refresh holds with its batch (web-1, the oldest) in hand meanwhile
	run herd group refresh as/web --warmup 1h --json
	[ "$status" -eq 0 ]
	wait_for 60 live_is 5
	# scale-out: the new hosts are of the new version
	run herd group scale as/web 6
	[ "$status" -eq 0 ]
	wait_for 120 ready_is 7
	run host_versions
	echo "$output"
	[ "$output" = "$(printf 'web-%s ready %s\n' 1 "$v1" 2 "$v1" 3 "$v1" 4 "$v1" 5 "$v2" 6 "$v2" 7 "$v2")" ]

	# scale-in to 3 (and the surge host): three go, all behind, the
	# newest of them first; the new hosts stay
	before=$(causes | grep -c .)
	run herd group scale as/web 3
	[ "$status" -eq 0 ]
	wait_for 120 live_is 4
	run host_versions
	echo "$output"
	[ "$(grep -E ' (ready|booting|initializing)' <<<"$output")" = \
		"$(printf 'web-%s ready %s\n' 1 "$v1" 5 "$v2" 6 "$v2" 7 "$v2")" ]
	since=$(causes | tail -n +"$((before + 1))")
	echo "$since"
	[ "$(grep '^drain ' <<<"$since" | cut -d' ' -f2,3 | tr '\n' ,)" = \
		"web-4 scale_in,web-3 scale_in,web-2 scale_in," ]

	# to 1 (and the surge host): the last behind host first, then the
	# newest of the current ones
	before=$(causes | grep -c .)
	run herd group scale as/web 1
	[ "$status" -eq 0 ]
	wait_for 120 live_is 2
	run host_versions
	[ "$(grep ' ready ' <<<"$output")" = "$(printf 'web-%s ready %s\n' 5 "$v2" 6 "$v2")" ]
	since=$(causes | tail -n +"$((before + 1))")
	[ "$(grep '^drain ' <<<"$since" | cut -d' ' -f2,3 | tr '\n' ,)" = \
		"web-1 scale_in,web-7 scale_in," ]
	# the refresh took nothing out meanwhile
	[ "$(causes | grep -c '^refresh_out ')" = 0 ]

	# --wait follows a refresh, bounded by --timeout: this one is held
	# by its warmup, so the wait ends with an error and it goes on
	run herd group refresh as/web --pause
	[ "$status" -eq 0 ]
	run herd group refresh as/web --resume --wait --timeout 3s
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "${lines[0]}" == "running: 0 host(s) replaced in 0 batch(es); "* ]]
	[[ "$output" == *"still running after 3s"* ]]
	[ "$(refresh_state as/web)" = running ]
	run herd group refresh as/web --cancel
	[ "$status" -eq 0 ]
}

@test "refresh --surge 0 --wait: hosts taken out first (cause refresh, never taken back), never fewer than min_healthy ready, all on the new version" {
	# as the test before leaves it (or made so when run alone): 4 hosts,
	# none behind
	run herd apply -f "$(blueprint 120s)"
	[ "$status" -eq 0 ]
	run herd group scale as/web 4
	[ "$status" -eq 0 ]
	wait_for 120 ready_is 4
	wait_for 60 live_is 4
	[ "$(herd group diff as/web --json | json_count '{behind}')" = 0 ]
	run herd apply -f "$(blueprint 90s)"
	[ "$status" -eq 0 ]
	v3=$(herd group diff as/web --json | json '{version}')
	[ "$(herd group diff as/web --json | json_count '{behind}')" = 4 ]
	# --timeout is --wait's; --wait follows a refresh started or resumed
	run herd group refresh as/web --surge 0 --min-healthy 75% --timeout 1m
	[ "$status" -ne 0 ]
	[[ "$output" == *"--wait"* ]]
	run herd group refresh as/web --status --wait
	[ "$status" -ne 0 ]
	[[ "$output" == *"not with --status"* ]]

	before=$(causes | grep -c .)
	sampler_start
	run herd group refresh as/web --surge 0 --min-healthy 75% --wait --timeout 5m
	sampler_stop
	echo "$output"
	[ "$status" -eq 0 ]
	# progress lines, then the refresh as --status shows it
	[[ "${lines[0]}" == "running: "* ]]
	grep -q '^running: 1 host(s) replaced in 1 batch(es); ' <<<"$output"
	grep -q "to web version $v3: done" <<<"$output"
	samples=$(grep -c . "$BATS_FILE_TMPDIR/ready")
	least=$(sort -n "$BATS_FILE_TMPDIR/ready" | head -1)
	echo "# fewest ready of $samples samples: $least (min_healthy 75% of 4: 3)" >&3
	[ "$samples" -ge 5 ]
	[ "$least" -ge 3 ]

	run host_versions
	[ "$(grep -c " ready $v3\$" <<<"$output")" = 4 ]
	[ "$(grep -c . <<<"$output")" = 4 ]
	# each old host taken out once, drained and terminated for the
	# refresh, none taken back; one launch each
	since=$(causes | tail -n +"$((before + 1))")
	echo "$since"
	[ "$(grep -c '^refresh_out ' <<<"$since")" = 4 ]
	mapfile -t outs < <(grep '^refresh_out ' <<<"$since" | cut -d' ' -f2)
	[ "${#outs[@]}" = 4 ]
	for h in "${outs[@]}"; do
		grep -q "^drain $h refresh\$" <<<"$since"
		grep -q "^drained $h refresh\$" <<<"$since"
		grep -q "^terminate $h refresh\$" <<<"$since"
		refute grep -q " $h scale_in\$" <<<"$since"
	done
	refute grep -q '^reclaim ' <<<"$since"
	# surge 0: each batch's host out first, then its replacement launched
	[ "$(grep -E '^(refresh_out|launch) ' <<<"$since" | cut -d' ' -f1 | tr '\n' ,)" = \
		"refresh_out,launch,refresh_out,launch,refresh_out,launch,refresh_out,launch," ]
}
