#!/usr/bin/env bats
# The demo's scenario (examples/queue/), faster: 150 items of 15 s for three
# nodes of 40 slots. Asserts from the API what `make demo` narrates: the
# scale-out from 3 to 4 caused by avg(busy) crossing 32, the new node running
# work, the queue drained, then a node drained and removed.

load lib

setup_file() {
	require_root
	server_start --push-interval 2s
	export LBPORT CIDR
	LBPORT=$(free_port)
	CIDR=$(random_cidr)
	bp=$BATS_FILE_TMPDIR/queue
	mkdir -p "$bp"
	cp -r "$BATS_TEST_DIRNAME/../../examples/queue/." "$bp/"
	sed -i -e "s|CIDR|$CIDR|" -e "s|LISTEN|127.0.0.1:$LBPORT|" "$bp/cluster.yaml"
	herd apply -f "$bp/cluster.yaml" >/dev/null
}

teardown_file() {
	server_cleanup
}

acts() {
	herd activity ls --cluster demo --group node --limit 1000 --json
}

count_kind() { # count_kind KIND [CAUSE]
	acts | perl -MJSON::PP -e 'my ($k, $c) = @ARGV;
		print scalar grep { $_->{kind} eq $k && (!defined $c || $_->{cause} eq $c) }
			@{decode_json(join "", <STDIN>)->{items}}' "$@"
}

kind_seen() { [ "$(count_kind "$@")" -ge 1 ]; }

nodes_ready() {
	[ "$(herd host ls --group demo/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -ge "$1" ]
}

node_busy() { # node_busy HOST: latest busy of that host
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL/v1/metrics/latest?metric=busy&group=node&cluster=demo" | perl -MJSON::PP -e '
		my $h = shift; for (@{decode_json(join "", <STDIN>)->{items}}) { print $_->{value} if $_->{host} eq $h }' "$1"
}

node4_works() { [ "$(node_busy node-4)" -gt 0 ] 2>/dev/null; }

queue_answers() { [ "$(redis-cli -h 127.0.0.1 -p "$LBPORT" ping 2>/dev/null)" = PONG ]; }

node1_full() { [ "$(node_busy node-1)" = 40 ]; }

queue_len() { redis-cli -h 127.0.0.1 -p "$LBPORT" LLEN queue 2>/dev/null; }

@test "the master runs the queue; nodes found it through herd meta" {
	wait_for 60 nodes_ready 3
	[ "$(herd host show demo/master-1 --json | json '{state}')" = ready ]
	master_ip=$(herd host show demo/master-1 --json | json '{private_ip}')
	run herd host show demo/node-1 --json
	[[ "$output" == *"queue at $master_ip:6379"* ]]
	wait_for 30 queue_answers
}

@test "150 items: 120 run on three nodes, 30 wait; avg(busy) > 32 adds exactly one node" {
	sh "$BATS_TEST_DIRNAME/../../examples/queue/scripts/load.sh" 127.0.0.1 "$LBPORT" 150 15
	wait_for 30 node1_full
	wait_for 60 kind_seen scale_out policy:grow
	run acts
	[[ "$output" == *"avg(busy) > 32"* ]]
	[[ "$output" == *"desired 3 -> 4"* ]]
	wait_for 60 nodes_ready 4
	# the 30 waiting items start on node-4
	wait_for 30 node4_works
	[ "$(queue_len)" = 0 ]
	[ "$(count_kind scale_out policy:grow)" -eq 1 ]
}

@test "the load ends: one node drained by queue_drain.sh and removed" {
	wait_for 120 kind_seen scale_in policy:shrink
	wait_for 60 kind_seen drained
	run acts
	[[ "$output" == *"min(busy) < 20"* ]]
	[[ "$output" == *"drained node-"* ]]
	wait_for 60 kind_seen host_terminated
	[ "$(count_kind scale_out policy:grow)" -eq 1 ]
	[ "$(herd group show demo/node --json | json '{desired}')" -le 3 ]
	# the workers counted every item done
	[ "$(redis-cli -h 127.0.0.1 -p "$LBPORT" GET done)" = 150 ]
}
