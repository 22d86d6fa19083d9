#!/usr/bin/env bats
# Retention (issue 15): a server started with retentions of seconds prunes
# activities, audit entries and ended runs once they are older, while a run
# still running keeps its record; nonsense retentions are refused naming the
# option. Needs root (a local host runs the scripts).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start --retain-activities 3s --retain-audit 3s --retain-runs 3s --retain-hosts 3s
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR/scripts"
	printf '#!/bin/sh\necho quick\n' >"$BP_DIR/scripts/quick.sh"
	printf '#!/bin/sh\necho started\nsleep 987654 &\nwait\n' >"$BP_DIR/scripts/hang.sh"
	cat >"$BP_DIR/bp.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: keep-net
    account: here
    cidr: $(random_cidr)
scripts:
  - name: quick.sh
    file: scripts/quick.sh
  - name: hang.sh
    file: scripts/hang.sh
templates:
  - name: t
    account: here
    network: keep-net
clusters:
  - name: keep
    groups:
      - name: g
        template: t
        size: 1
        max: 3
EOF
	export BP=$BP_DIR/bp.yaml
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

# ids PATH...: the ids of a list's items, one a line.
ids() {
	herd "$@" --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{id}\n" for @{ref $d eq "ARRAY" ? $d : $d->{items}}'
}

# none_left OLD_IDS CMD...: no id of OLD_IDS (one a line) is listed by CMD.
none_left() {
	local old=$1 now
	shift
	now=$(ids "$@")
	! grep -qxF -f <(grep . <<<"$old") <<<"$now"
}

ready_hosts() { # ready_hosts N: the group has N ready hosts
	[ "$(herd host ls --group keep/g --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

run_state() {
	herd run show "$1" --json | json '{state}'
}

run_is() { # run_is ID STATE
	[ "$(run_state "$1")" = "$2" ]
}

run_ended() { # run_ended ID
	! run_is "$1" running
}

# host_names: "name state" of every host of keep/g, terminated ones too.
host_names() {
	herd host ls --group keep/g --all --json | perl -MJSON::PP -e '
		printf "%s %s\n", @$_{qw(name state)} for @{decode_json(join "", <STDIN>)->{items}}'
}

terminated_are() { # terminated_are N
	[ "$(host_names | grep -c ' terminated$')" -eq "$1" ]
}

host_listed() { # host_listed NAME
	host_names | grep -q "^$1 "
}

@test "--retain-* refuses 0, a negative or a non-duration, naming the option" {
	for opt in --retain-activities --retain-audit --retain-runs --retain-hosts; do
		for v in 0 -1s soon 0s; do
			run "$HERD" server --data "$BATS_TEST_TMPDIR/never" "$opt" "$v"
			[ "$status" -eq 2 ]
			[[ "$output" == *"$opt"*"at least 1s"* ]]
		done
	done
	[ ! -e "$BATS_TEST_TMPDIR/never/herd.db" ]
}

@test "old activities, audit entries and ended runs go; a running run stays" {
	require_root
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 30 ready_hosts 1
	# some activity: scale out and back in (newest first: g-3 and g-2 go)
	run herd group scale keep/g 3
	[ "$status" -eq 0 ]
	wait_for 60 ready_hosts 3
	run herd group scale keep/g 1
	[ "$status" -eq 0 ]
	wait_for 30 ready_hosts 1
	wait_for 30 terminated_are 2
	# an ended run, and one that runs until it is cancelled
	run herd script run quick.sh --group keep/g --wait
	[ "$status" -eq 0 ]
	ended=$(herd run ls --script quick.sh --json | json '{items}->[0]{id}')
	running=$(herd script run hang.sh --group keep/g --json | json '{id}')
	wait_for 30 run_is "$running" running

	old_acts=$(ids activity ls --limit 1000)
	old_audit=$(ids audit ls)
	[ "$(grep -c . <<<"$old_acts")" -ge 3 ]
	[ "$(grep -c . <<<"$old_audit")" -ge 3 ]
	# retention 3s, a pass every 3s at most: all of them go within seconds
	wait_for 30 none_left "$old_acts" activity ls --limit 1000
	wait_for 30 none_left "$old_audit" audit ls
	wait_for 30 none_left "$ended" run ls
	run herd run show "$ended"
	[ "$status" -ne 0 ]
	# the running run is untouched, its host's record and output with it
	[ "$(run_state "$running")" = running ]
	[ "$(herd run show "$running" --json | json_count '{hosts}')" -eq 1 ]
	run herd run logs "$running"
	[[ "$output" == *started* ]]
	grep -q "retention: pruned" "$HERD_DATA/server.log"
	# terminated hosts go too, but the group's newest seq stays (names are
	# never reused), and the live one of course
	wait_for 30 refute host_listed g-2
	host_listed g-1
	host_listed g-3

	run herd run cancel "$running"
	[ "$status" -eq 0 ]
	wait_for 30 run_ended "$running"
}
