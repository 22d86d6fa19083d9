#!/usr/bin/env bats
# Autoscaling, the seed's story: a node group of 3 with avg(busy) > 32 -> +1
# and min(busy) < 20 -> -1 (drained by before_terminate first). Each host's
# monitor reads /var/lib/herd/busy, which the test writes from the machine
# ($HERD_DATA/hosts/<id>/busy). No timing thresholds: generous waits only.

load lib

setup_file() {
	require_root
	server_start
	export CIDR
	CIDR=$(random_cidr)
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scale/." "$BATS_FILE_TMPDIR/bp/"
	sed -i "s|CIDR|$CIDR|" "$BATS_FILE_TMPDIR/bp/scale.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bp/scale.yaml" >/dev/null
	wait_for 60 all_ready 3
}

teardown_file() {
	server_cleanup
}

# Number of ready hosts of demo/node.
ready_count() {
	herd host ls --group demo/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}

all_ready() {
	[ "$(ready_count)" -eq "$1" ] && [ "$(herd host ls --group demo/node --json | json_count '{items}')" -eq "$1" ]
}

# set_busy NAME VALUE: what that host's monitor will report.
set_busy() {
	local id
	id=$(herd host show "demo/$1" --json | json '{id}')
	echo "$2" >"$HERD_DATA/hosts/$id/busy.tmp"
	mv "$HERD_DATA/hosts/$id/busy.tmp" "$HERD_DATA/hosts/$id/busy"
}

desired() {
	herd group show demo/node --json | json '{desired}'
}

# For wait_for, which runs its command again each time: the value is read then.
desired_is() {
	[ "$(desired)" = "$1" ]
}

some_host_draining() {
	herd host ls --group demo/node --json | grep -q '"state": "draining"'
}

activity_says() {
	herd activity ls --group demo/node --json | grep -qF "$1"
}

activities_at_least() { # activities_at_least N KIND [CAUSE]
	local n=$1
	shift
	[ "$(activities "$@")" -ge "$n" ]
}

activities() { # activities KIND [CAUSE]
	herd activity ls --group demo/node --json | perl -MJSON::PP -e '
		my ($k, $c) = @ARGV;
		print scalar grep { $_->{kind} eq $k && (!defined $c || $_->{cause} eq $c) }
			@{decode_json(join "", <STDIN>)->{items}}' "$@"
}

live_names() {
	herd host ls --group demo/node --json | perl -MJSON::PP -e \
		'print join(" ", sort map { $_->{name} } @{decode_json(join "", <STDIN>)->{items}}), "\n"'
}

@test "busy = 40 everywhere: exactly one scale-out to 4, and the new host joins" {
	for h in node-1 node-2 node-3; do set_busy "$h" 40; done
	wait_for 60 desired_is 4
	wait_for 60 all_ready 4
	# the load stays at 40 on the old hosts while the newcomer starts and the
	# cooldown runs: evaluations go on (every push), no second scale-out
	set_busy node-4 40
	sleep 8
	[ "$(desired)" = 4 ]
	[ "$(activities scale_out policy:grow)" -eq 1 ]
	run herd activity ls --group demo/node --json
	[[ "$output" == *"cooldown until"* ]]
	# the work spreads over four: 30 each, between both thresholds
	for h in node-1 node-2 node-3 node-4; do set_busy "$h" 30; done
	sleep 20
	[ "$(desired)" = 4 ]
	[ "$(activities scale_out policy:grow)" -eq 1 ]
	run herd activity ls --group demo/node
	[[ "$output" == *"avg(busy) > 32"* ]]
	run herd policy explain demo/node/grow
	[ "$status" -eq 0 ]
	[[ "$output" == *"does not hold"* ]]
}

@test "a monitor that stops reporting blocks scale-in, and an activity says why" {
	# node-2's monitor breaks (its file goes away); min over the others is < 20
	id=$(herd host show demo/node-2 --json | json '{id}')
	rm -f "$HERD_DATA/hosts/$id/busy"
	set_busy node-1 10
	wait_for 60 activity_says "not scaling in on missing data"
	sleep 15
	[ "$(desired)" = 4 ]
	[ "$(activities scale_in policy:shrink)" -eq 0 ]
}

@test "min(busy) < 20: one host drained by before_terminate, terminated -> 3" {
	set_busy node-2 25
	set_busy node-1 10
	wait_for 90 desired_is 3
	wait_for 90 all_ready 3
	[ "$(activities scale_in policy:shrink)" -eq 1 ]
	# the victim's drain ran on it, and its output is recorded
	run herd activity ls --group demo/node --json
	[[ "$output" == *"drained node-4"* ]]
	[ "$(live_names)" = "node-1 node-2 node-3" ]
}

@test "policy simulate replays the recorded run into the same decisions" {
	run herd policy simulate demo/node/grow --since 10m --json
	[ "$status" -eq 0 ]
	sim=$(echo "$output" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print join(",", map { "$_->{desired}->$_->{proposed}" } grep { $_->{decision} eq "act" } @{$d->{timeline}})')
	real=$(echo "$output" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print join(",", map { "$_->{from}->$_->{to}" } @{$d->{actual}})')
	echo "# simulated: $sim; actual: $real" >&3
	[ -n "$real" ]
	[ "$sim" = "$real" ]
	run herd policy simulate demo/node/shrink --since 10m
	[ "$status" -eq 0 ]
	[[ "$output" == *"actually done by this policy"* ]]
}

@test "a shadow policy evaluates and records but never acts" {
	cat >"$BATS_FILE_TMPDIR/shadow.json" <<JSON
{"name":"spike","cluster":"demo","group":"node","when":"max(busy) > 5","adjust":"+2","cooldown":"5s","mode":"shadow"}
JSON
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" -X POST --data-binary @"$BATS_FILE_TMPDIR/shadow.json" \
		"$HERD_URL/v1/policies" >/dev/null
	wait_for 30 activities_at_least 1 scale_blocked spike
	run herd activity ls --group demo/node --json
	[[ "$output" == *"shadow mode: would scale out"* ]]
	[ "$(desired)" = 3 ]
	herd policy rm demo/node/spike
}

@test "kill -9 during a drain: after a restart the drain completes, nothing is terminated twice or left" {
	for h in node-1 node-2 node-3; do
		id=$(herd host show "demo/$h" --json | json '{id}')
		echo 6 >"$HERD_DATA/hosts/$id/drain_sleep"
		set_busy "$h" 25
	done
	before=$(herd activity ls --group demo/node --json | json_count '{items}')
	set_busy node-1 10
	wait_for 90 some_host_draining
	victim=$(herd host ls --group demo/node --json | perl -MJSON::PP -e \
		'print map { "$_->{name}\n" } grep { $_->{state} eq "draining" } @{decode_json(join "", <STDIN>)->{items}}')
	vid=$(herd host show "demo/$victim" --json | json '{id}')
	kill -9 "$(cat "$HERD_DATA/server.pid")"
	sleep 1
	server_start
	wait_for 90 desired_is 2
	wait_for 90 all_ready 2
	wait_for 30 activity_says "drained $victim"
	run herd host show "demo/$victim" --json
	[ "$(echo "$output" | json '{state}')" = terminated ]
	# one termination of the victim, and its namespace is gone
	n=$(herd activity ls --group demo/node --json | perl -MJSON::PP -e '
		my $v = shift; print scalar grep { $_->{kind} eq "host_terminated" && $_->{host} eq $v }
			@{decode_json(join "", <STDIN>)->{items}}' "$victim")
	[ "$n" -eq 1 ]
	run ip netns list
	[[ "$output" != *"$vid"* ]]
	echo "# drained $victim across a kill -9 ($before activities before)" >&3
}
