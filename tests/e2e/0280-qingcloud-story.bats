#!/usr/bin/env bats
# The seed story on the fake QingCloud, end to end (issue 14): the queue
# example (tests/e2e/fixtures/qingcloud/queue.yaml: examples/queue on a
# qingcloud account) with `fake-qingcloud --instances netns`, so every host
# is a real instance booted from RunInstances' user data (herd's bootstrap:
# fetch the agent from the server, start it, join, run the init scripts).
# The server listens on 127.0.0.1:PORT (the CLI) and 0.0.0.0:PORT2 (the
# instances: the account's server_url is the router's address on the
# VxNet's bridge, their default route). Master + 3 nodes of 40 slots boot,
# the nodes find the master with `herd meta`, the master joins the load
# balancer `queue` (a QingCloud LB in the VxNet: AddLoadBalancerBackends,
# then UpdateLoadBalancers), 150 items pushed through the LB's address make
# avg(busy) > 32 and a 4th node is launched through RunInstances; when the
# items end a node is drained (queue_drain.sh) and terminated through
# TerminateInstances. The
# second case runs it all again with 20 % of the fake's calls answered 5100.
# Each case owns its fake and server; teardown stops both (the server's
# --teardown terminates the instances, the fake's SIGTERM removes every
# namespace, bridge and haproxy it made). Needs root.

load lib

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
FIXTURE=$BATS_TEST_DIRNAME/fixtures/qingcloud/queue.yaml
SCRIPTS=$BATS_TEST_DIRNAME/../../examples/queue/scripts
KEY_ID=QYSTORYKEY
ITEMS=150
ITEM_S=30

setup() {
	require_root
	# each case its own server and fake
	unset HERD_DATA HERD_PORT SERVER_PID
	W=$(mktemp -d "$BATS_FILE_TMPDIR/story.XXXXXX")
	FQ_PID=
}

teardown() {
	[ "$(id -u)" = 0 ] || return 0
	# STORY_KEEP=DIR: a failed case's call log, fake log and server log
	# are copied to DIR/<case number>/ before they go
	if [ -n "${STORY_KEEP:-}" ] && [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${W:-}" ]; then
		mkdir -p "$STORY_KEEP/$BATS_TEST_NUMBER"
		cp "$W/calls.log" "$W/fake.log" "$STORY_KEEP/$BATS_TEST_NUMBER/" 2>/dev/null || true
		cp "${HERD_DATA:-/nonexistent}/server.log" "$STORY_KEEP/$BATS_TEST_NUMBER/" 2>/dev/null || true
	fi
	# the server's --teardown terminates the instances through the fake
	server_cleanup
	if [ -n "${FQ_PID:-}" ]; then
		kill "$FQ_PID" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$FQ_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$FQ_PID" 2>/dev/null || true
	fi
	[ -n "${W:-}" ] && rm -rf "$W"
}

# story_start [FAKE OPTION]...: the fake (netns instances), the server on
# two addresses, the blueprint applied.
story_start() {
	local fq_port cidr gw port2
	umask 077
	printf 'STORY-%s%s\n' "$RANDOM" "$RANDOM" >"$W/secret"
	umask 022
	fq_port=$(free_port)
	FQ_URL="http://127.0.0.1:$fq_port/iaas/"
	cidr=$(random_cidr)
	gw=${cidr%.0/24}.1
	# an EIP range of its own (the fake's default is shared by parallel fakes)
	"$FAKE" --listen "127.0.0.1:$fq_port" --state-dir "$W/fq" --access-key-id "$KEY_ID" \
		--secret-file "$W/secret" --zone pek3a --instances netns --pending-ms 1000 \
		--job-ms 600 --eip-range "198.19.$((RANDOM % 200)).$((RANDOM % 16 * 16))/28" \
		--call-log "$W/calls.log" "$@" >/dev/null 2>"$W/fake.log" &
	FQ_PID=$!
	wait_for 10 curl -s -o /dev/null "$FQ_URL"
	port2=$(free_port)
	server_start --listen "0.0.0.0:$port2" --push-interval 2s --tls never   # plain: 0430 tests TLS
	mkdir -p "$W/bp/scripts"
	cp "$SCRIPTS"/queue_*.sh "$W/bp/scripts/"
	sed -e "s|CIDR|$cidr|" -e "s|KEY_ID|$KEY_ID|" -e "s|SECRET_FILE|$W/secret|" \
		-e "s|ENDPOINT|$FQ_URL|" -e "s|SERVER_URL|http://$gw:$port2|" \
		"$FIXTURE" >"$W/bp/cluster.yaml"
	run herd apply -f "$W/bp/cluster.yaml"
	echo "$output"
	[ "$status" -eq 0 ]
}

# ready GROUP: the number of ready hosts of GROUP
ready() {
	herd host ls --cluster demo --group "$1" --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar grep { $_->{state} eq "ready" } @{$d->{items}}'
}
# ready_seen GROUP: how many hosts of GROUP have been ready (their
# host_ready activities): the story moves on while the test looks (under
# 5100s the LB can take longer than the 4th node's whole life), so the
# test checks what happened, not a state it may miss
ready_seen() {
	herd activity ls --cluster demo --group "$1" --json --limit 5000 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); my %h;
		$h{$_->{host}} = 1 for grep { $_->{kind} eq "host_ready" } @{$d->{items}};
		print scalar keys %h'
}
booted() { [ "$(ready master)" = 1 ] && [ "$(ready_seen node)" -ge 3 ]; }

# calls ACTION: the ret_code of each of the fake's accepted ACTION calls
calls() {
	ACTION=$1 perl -MJSON::PP -ne '
		my $c = decode_json($_);
		print "$c->{ret_code}\n" if $c->{action} eq $ENV{ACTION}' "$W/calls.log"
}

kinds() {
	herd activity ls --cluster demo --group node --json --limit 5000 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); print "$_->{kind}\n" for @{$d->{items}}'
}
scaled_out() { kinds | grep -qx scale_out; }
node_removed() { kinds | grep -qx host_terminated; }
drained() { kinds | grep -qx drained; }

# ready_master FIELD: FIELD of the master group's ready host, "" when none.
# Not simply the list's first host: under injected 5100s a master whose
# RunInstances was refused three times is listed, failed, before the one
# that replaced it (seen with --fail-seed 4: master-1 failed, master-2
# ready, and the test waited 180 s for Redis on master-1's address).
ready_master() {
	herd host ls --cluster demo --group master --json | FIELD=$1 perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		my ($h) = grep { $_->{state} eq "ready" } @{$d->{items}};
		print $h ? $h->{$ENV{FIELD}} : ""'
}

master_ip() { ready_master private_ip; }

master_instance() { ready_master instance_id; }

# lb_addr: the address `herd lb show queue` reports (the LB's private one)
lb_addr() {
	herd lb show queue | sed -n 's/^address: \([0-9.]*\).*/\1/p'
}

# lb_serving: the master is the LB's one member, up at QingCloud
lb_serving() {
	local j
	j=$(herd lb show queue --json) || return 1
	[ "$(echo "$j" | json_count '{members}')" -eq 1 ] &&
		[ "$(echo "$j" | json '{members}[0]{status}')" = up ]
}

# joined_in_order INSTANCE: the fake's call log has an accepted
# AddLoadBalancerBackends of INSTANCE followed by an accepted
# UpdateLoadBalancers (the change applied); prints their line numbers.
joined_in_order() {
	perl -MJSON::PP -ne '
		BEGIN { $inst = shift }
		my $c = decode_json($_);
		next if $c->{ret_code};
		if (!$add && $c->{action} eq "AddLoadBalancerBackends"
		    && grep { /^backends\.\d+\.resource_id$/ && $c->{params}{$_} eq $inst } keys %{$c->{params}}) {
			$add = $.;
		} elsif ($add && $c->{action} eq "UpdateLoadBalancers") {
			print "AddLoadBalancerBackends at line $add, UpdateLoadBalancers at line $.\n";
			$ok = 1;
			last;
		}
		END { $? = $ok ? 0 : 1 }' "$1" "$W/calls.log"
}

story() {
	local m ok4 n mi lb done_now topup
	[ -x "$FAKE" ] || skip "fake QingCloud not built ($FAKE)"
	command -v redis-server >/dev/null || skip "redis-server not installed"
	story_start "$@"
	# the load goes onto the master's queue as soon as the master's Redis
	# answers (this machine is on the VxNet's bridge), before the nodes are
	# ready, so they take it at once: nodes idle for 10 s would meet the
	# shrink rule (min(busy) < 20) first, and the LB can take longer than
	# that to serve under 5100s. 120 run on 3 x 40 slots, 30 wait
	master_up() { m=$(master_ip) && [ -n "$m" ] && [ "$(redis-cli -h "$m" PING 2>/dev/null)" = PONG ]; }
	wait_for 180 master_up
	sh "$SCRIPTS/load.sh" "$m" 6379 "$ITEMS" "$ITEM_S"
	# the master joined the load balancer: Add...Backends, then
	# UpdateLoadBalancers, in that order in the fake's call log
	wait_for 180 lb_serving
	mi=$(master_instance)
	[[ "$mi" == i-* ]]
	joined_in_order "$mi"
	lb=$(lb_addr)
	echo "load balancer at $lb"
	[ -n "$lb" ] && [ "$lb" != "$m" ]
	# traffic flows through the LB's address to the master's Redis (the
	# queue's progress is read through it from here on)
	[ "$(redis-cli -h "$lb" -p 6379 PING)" = PONG ]
	wait_for 180 booted
	# Under injected failures a node can take longer to boot than the
	# first load lasts: no 4th node can launch while one is still
	# launching (it counts as capacity), and the load could end before
	# the three were up to see avg(busy) > 32 (a failed run: node-2 ready
	# after 63 s, the 150 items done on two nodes, then a scale-in). Top
	# the queue up to 120 items outstanding now that the three are up:
	# 3 x 40 slots, avg 40; on 4 nodes avg 30, no second scale-out and no
	# scale-in while they run. Nothing is pushed when the first load has
	# that much left (the usual case without failures).
	done_now=$(redis-cli -h "$lb" -p 6379 GET "done")
	topup=$((120 - (ITEMS - ${done_now:-0})))
	echo "items done when the three nodes were up: ${done_now:-0}; topped up by $topup"
	[ "$topup" -le 0 ] || sh "$SCRIPTS/load.sh" "$lb" 6379 "$topup" "$ITEM_S"
	# every host an instance made by RunInstances with herd's bootstrap as
	# exec user data (a fifth may already be on its way: checked below)
	[ "$(calls RunInstances | grep -cx 0)" -ge 4 ]
	[ "$(perl -MJSON::PP -ne '$c = decode_json($_); print "$c->{params}{userdata_type}\n"
		if $c->{action} eq "RunInstances" && !$c->{ret_code}' "$W/calls.log" | sort -u)" = exec ]
	m=$(master_ip)
	echo "master at $m"
	[ -n "$m" ]
	# the nodes found the master with `herd meta` (queue_node_installer.sh
	# writes what it answered to /run/queue/master, in each instance's
	# overlay upper dir)
	# (the 4th node may already be up: the load was queued before)
	n=$(cat "$W"/fq/inst/*/upper/run/queue/master | grep -cxF "$m")
	echo "nodes that found the master: $n"
	[ "$n" -ge 3 ]
	[ "$(cat "$W"/fq/inst/*/upper/run/queue/master | grep -cvxF "$m")" -eq 0 ]
	wait_for 120 scaled_out
	ok4() { [ "$(ready_seen node)" -ge 4 ]; }
	wait_for 120 ok4
	# the fourth node is the fifth RunInstances that succeeded
	[ "$(calls RunInstances | grep -cx 0)" -eq 5 ]
	# it took the waiting items
	taken() { [ "$(redis-cli -h "$lb" -p 6379 LLEN queue)" = 0 ]; }
	wait_for 60 taken
	# the items end (30 s), min(busy) < 20 for 10 s: one node drained, removed
	wait_for 240 node_removed
	drained
	[ "$(calls TerminateInstances | grep -cx 0)" -ge 1 ]
	# the first scale-in took the group from 4 to 3 (later ones may go on
	# to min: the load is over)
	herd activity ls --cluster demo --group node --json --limit 5000 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		my ($a) = grep { $_->{kind} eq "scale_in" } sort { $a->{id} <=> $b->{id} } @{$d->{items}};
		print "$a->{reason}\n"; exit($a->{reason} =~ /desired 4 -> 3/ ? 0 : 1)'
	# every item ran to its end (the drain waits for the victim's)
	all_done() { [ "$(redis-cli -h "$lb" -p 6379 GET "done")" -ge "$ITEMS" ]; }
	wait_for 60 all_done
}

@test "herd server --listen repeated: each address answers; 0.0.0.0:PORT covers 127.0.0.1:PORT; a bad one is named" {
	local p2
	HERD_PORT=$(free_port)
	p2=$(free_port)
	while [ "$p2" = "$HERD_PORT" ]; do p2=$(free_port); done
	server_start --listen "0.0.0.0:$HERD_PORT" --listen "127.0.0.1:$p2" --tls never
	[ "$(curl -sf "http://127.0.0.1:$HERD_PORT/healthz" | json '{status}')" = ok ]
	[ "$(curl -sf "http://127.0.0.1:$p2/healthz" | json '{status}')" = ok ]
	grep -q "also listening on http://0.0.0.0:$HERD_PORT" "$HERD_DATA/server.log"
	run "$HERD" server --data "$W/other" --listen "127.0.0.1:$(free_port)" --listen 127.0.0.1:notaport
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"--listen: invalid port in '127.0.0.1:notaport'"* ]]
}

@test "qingcloud story: master + 3 nodes boot from user data, avg > 32 launches a 4th through RunInstances, a node is drained and removed" {
	story
}

@test "qingcloud story with 20 % of calls answered 5100: the story still completes" {
	# STORY_FAIL_SEED: another seed (which calls fail depends on it)
	story --fail-rate 20 --fail-seed "${STORY_FAIL_SEED:-4242}"
	# the fake did refuse calls, and herd went on
	echo "calls answered 5100: $(grep -c '"ret_code":5100' "$W/calls.log")"
	grep -q '"ret_code":5100' "$W/calls.log"
}
