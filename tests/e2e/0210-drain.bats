#!/usr/bin/env bats
# LB draining is a state the controller checks on each pass, never a wait
# on its thread (issue 13): while one host drains from an LB for 60 s (a
# held connection keeps its session count above 0), another group scales
# out in its normal time. A server killed with SIGKILL during a drain
# resumes it after a restart and terminates the host exactly once. Needs
# root (hosts are network namespaces).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/drain/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	LB_PORT=$(free_port)
	sed "s|@CIDR@|$CIDR|; s|@PORT@|$LB_PORT|" "$BATS_TEST_DIRNAME/fixtures/drain/drain.yaml" \
		>"$BP_DIR/drain.yaml"
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	export BP=$BP_DIR/drain.yaml CIDR LB_PORT INST
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	hold_stop
	server_cleanup
}

setup() {
	require_root
}

# hold_start: one connection through the LB, held (reading) for at most
# 95 s in the background; its pid in hold.pid.
hold_start() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0])
			or die "cannot connect: $!\n";
		my $b;
		for (1 .. 95) { sysread($s, $b, 64) or last }' "$LB_PORT" &
	echo $! >"$BATS_FILE_TMPDIR/hold.pid"
}

# hold_stop: closes the held connection (our process, by pid).
hold_stop() {
	if [ -f "$BATS_FILE_TMPDIR/hold.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/hold.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/hold.pid"
	fi
}

group_ready() { # group_ready CLUSTER/GROUP N: exactly N hosts, all ready
	local lines
	lines=$(herd host ls --group "$1" --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); print "$_->{state}\n" for @{$d->{items}}')
	[ "$(grep -c . <<<"$lines")" -eq "$2" ] && [ "$(grep -c '^ready$' <<<"$lines")" -eq "$2" ]
}

host_state() { # host_state NAME: the state of dr/web's host NAME
	herd host show "dr/$1" --json | json '{state}'
}

host_is() { # host_is NAME STATE
	[ "$(host_state "$1" 2>/dev/null)" = "$2" ]
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

host_id() {
	herd host show "dr/$1" --json | json '{id}'
}

# member HOST INTENT MIN_SCUR: the hold LB has HOST with that intent and at
# least MIN_SCUR sessions.
member() {
	herd lb show hold --json 2>/dev/null | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		exit !grep { ($_->{host} // "") eq $ARGV[0] && $_->{intent} eq $ARGV[1] &&
			     $_->{scur} >= $ARGV[2] } @{$d->{members}}' "$@"
}

# activities KIND HOST: how many activities of KIND name HOST in dr/web.
activities() {
	herd activity ls --json --cluster dr --group web | perl -MJSON::PP -e '
		my @a = @{decode_json(join "", <STDIN>)->{items}};
		print scalar(grep { $_->{kind} eq $ARGV[0] && ($_->{host} // "") eq $ARGV[1] } @a), "\n"' "$@"
}

dead() { # dead PID: no such process, or a zombie
	! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]
}

server_gone() {
	dead "$(cat "$HERD_DATA/server.pid")"
}

@test "a 60 s LB drain does not delay another group's scale-out" {
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	wait_for 60 group_ready dr/web 1
	wait_for 60 group_ready dr/other 1
	wait_for 20 member web-1 active 0
	# the time a scale-out takes without a drain
	t=$(now_ms)
	run herd group scale dr/other 2
	[ "$status" -eq 0 ]
	wait_for 60 group_ready dr/other 2
	base=$(($(now_ms) - t))

	hold_start
	wait_for 10 member web-1 active 1
	run herd group scale dr/web 0
	[ "$status" -eq 0 ]
	wait_for 10 member web-1 draining 1
	# the same scale-out while web-1 drains
	t=$(now_ms)
	run herd group scale dr/other 3
	[ "$status" -eq 0 ]
	wait_for 20 group_ready dr/other 3
	during=$(($(now_ms) - t))
	echo "# scale-out: ${base} ms without a drain, ${during} ms during a 60 s drain" >&3
	# the drain was still running: its session held, the host not yet gone
	member web-1 draining 1
	[ "$(host_state web-1)" = terminating ]

	# the drain ends at its timeout, then the host is terminated once
	wait_for 90 host_is web-1 terminated
	run herd activity ls --json --cluster dr --group web
	[[ "$output" == *"web-1 drained before termination, removed from load balancer 'hold': drain timeout"* ]]
	[ "$(activities host_terminated web-1)" -eq 1 ]
	hold_stop
}

@test "a server killed during an LB drain resumes it and terminates the host once" {
	run herd group scale dr/web 1
	[ "$status" -eq 0 ]
	wait_for 60 group_ready dr/web 1
	wait_for 20 member web-2 active 0
	id=$(host_id web-2)
	hold_start
	wait_for 10 member web-2 active 1
	run herd group scale dr/web 0
	[ "$status" -eq 0 ]
	wait_for 10 member web-2 draining 1
	kill -9 "$(cat "$HERD_DATA/server.pid")"
	wait_for 10 server_gone
	server_start
	# the drain resumes: while the session is held the host stays
	sleep 3
	[ "$(host_state web-2)" = terminating ]
	member web-2 draining 1
	ip netns list | grep -q "herd-$INST-$id"
	# the session ends: the member leaves, then the host is terminated
	hold_stop
	wait_for 30 host_is web-2 terminated
	run member web-2 draining 0
	[ "$status" -ne 0 ]
	run herd activity ls --json --cluster dr --group web
	[[ "$output" == *"web-2 drained before termination, removed from load balancer 'hold': drained"* ]]
	[ "$(activities host_terminated web-2)" -eq 1 ]
	[ "$(activities terminate web-2)" -eq 1 ]
	[ "$(ip netns list | grep -c "herd-$INST-$id")" -eq 0 ]
}
