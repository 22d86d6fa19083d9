#!/usr/bin/env bats
# Launches in parallel with a bound (issue 15): the provider calls of a
# scale-out overlap, at most --launch-workers at once, and every host is
# launched exactly once; a bad --launch-workers is refused naming the
# option; kill -9 while launches are in flight is resolved host by host on
# restart, never by a second launch. Overlap is shown without timing: the
# failpoint `prov_launch=wait:3` lets calls through only when 3 are there at
# once (serial launches never meet). Needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR/scripts"
	printf '#!/bin/sh\nexit 0\n' >"$BP_DIR/scripts/empty.sh"
	CIDR=$(random_cidr)
	cat >"$BP_DIR/par.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: parnet
		    account: here
		    cidr: $CIDR
		scripts:
		  - name: empty.sh
		    file: scripts/empty.sh
		templates:
		  - name: par
		    account: here
		    network: parnet
		    init: [empty.sh]
		clusters:
		  - name: par
		    groups:
		      - name: g
		        template: par
		        size: 0
		        max: 20
	EOF
	export BP=$BP_DIR/par.yaml
	# one data dir and port for the file: each test starts the server with
	# its own failpoints and options (server_start keeps these)
	export HERD_DATA=$BATS_FILE_TMPDIR/data HERD_PORT
	mkdir -p "$HERD_DATA"
	HERD_PORT=$(free_port)
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# host_lines: "name state id" per live host of par/g.
host_lines() {
	herd host ls --json --group par/g | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		printf "%s %s %s\n", @$_{qw(name state id)} for @{$d->{items}}'
}

# ready N: par/g has exactly N hosts, all ready.
ready() {
	local lines
	lines=$(host_lines)
	[ "$(grep -c . <<<"$lines")" -eq "$1" ] && [ "$(awk '$2 == "ready"' <<<"$lines" | grep -c .)" -eq "$1" ]
}

settled() {
	! host_lines | grep -Eq ' (launching|booting|initializing|terminating) '
}

# The namespaces of this server's hosts, one per line.
our_netns() {
	ip netns list | awk '{print $1}' | grep "^herd-$INST-" || true
}

# activities KIND: the host names of par/g's activities of that kind, one per line.
activities() {
	herd activity ls --json --cluster par --group g --limit 1000 | perl -MJSON::PP -e '
		print "$_->{host}\n" for grep { $_->{kind} eq $ARGV[0] } @{decode_json(join "", <STDIN>)->{items}}' "$1"
}

# logged TEXT: the server log has TEXT.
logged() {
	grep -qF -- "$1" "$HERD_DATA/server.log"
}

# Each live host launched once, at the provider once, nothing else there.
exactly_once() {
	local lines
	lines=$(host_lines)
	[ -z "$(awk '{print $1}' <<<"$lines" | sort | uniq -d)" ]
	[ -z "$(activities launch | sort | uniq -d)" ]
	[ "$(our_netns | grep -c .)" -eq "$(grep -c . <<<"$lines")" ]
	for id in $(awk '{print $3}' <<<"$lines"); do
		[ "$(our_netns | grep -c "$id")" -eq 1 ]
	done
}

@test "0 -> 6 with 3 workers: launches meet 3 at a time, never 4 running; each host ready once" {
	HERD_FAILPOINTS=prov_launch=wait:3 server_start --launch-workers 3 --log-level debug
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	run herd group scale par/g 6
	[ "$status" -eq 0 ]
	# two rounds of 3 provider calls at once (serial ones would time out alone)
	wait_for 60 logged "failpoint 'prov_launch': 3 callers met"
	wait_for 60 ready 6
	[ "$(grep -c "failpoint 'prov_launch': 3 callers met" "$HERD_DATA/server.log")" -eq 2 ]
	refute logged "callers did not meet"
	# the bound: never more than 3 running
	logged "3 of 3 workers busy"
	refute grep -Eq "launch [0-9a-f]+ started: ([4-9]|[1-9][0-9]+) of" "$HERD_DATA/server.log"
	wait_for 30 settled
	exactly_once
	[ "$(activities launch | grep -c .)" -eq 6 ]
	[ -z "$(activities host_failed)" ]
}

@test "--launch-workers 0, -1, abc, 65, 1x: refused, naming the option" {
	for v in 0 -1 abc 65 1x ""; do
		run "$HERD" server --data "$BATS_FILE_TMPDIR/never" --listen 127.0.0.1:1 --launch-workers "$v"
		[ "$status" -eq 2 ]
		[[ "$output" == *"--launch-workers"*"1 to 64"* ]]
	done
	[ ! -e "$BATS_FILE_TMPDIR/never/herd.db" ]
}

@test "kill -9 with 3 launches held after the provider made them and 3 queued: each resolved once, none launched twice" {
	server_stop
	# every launch: the driver makes the host, then the call hangs (held
	# in flight, as a slow cloud would)
	HERD_FAILPOINTS=prov_launch_done=hang server_start --launch-workers 3 --log-level debug
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	run herd group scale par/g 0
	[ "$status" -eq 0 ]
	wait_for 60 ready 0
	wait_for 60 settled
	run herd group scale par/g 6
	[ "$status" -eq 0 ]
	wait_for 60 logged "failpoint 'prov_launch_done': hanging (call 3)"
	# three workers held, three intents queued behind them; no 4th call
	[ "$(host_lines | grep -c .)" -eq 6 ]
	refute logged "failpoint 'prov_launch_done': hanging (call 4)"
	before=$(host_lines | awk '{print $3}' | sort)
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=

	server_start
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	wait_for 60 ready 6
	wait_for 60 settled
	exactly_once
	# each of the six hosts of the killed server: kept (adopted, or already
	# reported in by its agent) or failed, never both, and none made twice
	adopted=$(activities adopt | sort)
	failed=$(herd activity ls --json --cluster par --group g --limit 1000 | perl -MJSON::PP -e '
		print "$_->{host}\n" for grep { $_->{kind} eq "host_failed" &&
			$_->{reason} =~ /the server stopped while launching it/ }
			@{decode_json(join "", <STDIN>)->{items}}' | sort)
	[ -z "$(comm -12 <(echo "$adopted") <(echo "$failed") | grep .)" ]
	[ -z "$(echo "$failed" | uniq -d)" ]
	[ -z "$(echo "$adopted" | uniq -d)" ]
	# the three queued ones were never made: failed, and replaced
	[ "$(echo "$failed" | grep -c .)" -eq 3 ]
	# the three made ones are live still, with the same ids
	live=$(host_lines | awk '{print $3}' | sort)
	[ "$(comm -12 <(echo "$before") <(echo "$live") | grep -c .)" -eq 3 ]
}
