#!/usr/bin/env bats
# GET /v1/metrics/latest?hosts= (issue 15): the latest values of the named
# hosts only (what the console's group page asks for its page of 50 rows),
# names within a group= or CLUSTER/NAME across clusters, unknown names
# answering no items; more than 100 names, an empty name or hosts= with
# host= refused naming hosts. Two clusters of two local hosts, each host
# pushing a value of its own with its credential. Needs root (local hosts
# are network namespaces).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	sed "s|@CIDR@|$(random_cidr)|" "$BATS_TEST_DIRNAME/fixtures/latest-hosts/latest.yaml" \
		>"$BATS_FILE_TMPDIR/latest.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/latest.yaml" >/dev/null
	wait_for 90 all_ready
	VIEWER=$(herd token create --role viewer --name latest-viewer)
	export VIEWER
	# t_pick: 11, 12 in la; 21, 22 in lb (cluster digit, host digit); t_also: 1
	local ts=$(($(date +%s%3N) - 1000)) c h id cred v
	for c in a b; do
		for h in 1 2; do
			id=$(herd host show "l$c/node-$h" --json | json '{id}')
			cred=$(in_host "$id" cat /run/herd/host.json | json '{credential}')
			v=$([ $c = a ] && echo 1 || echo 2)$h
			http POST /v1/agent/metrics "$cred" \
				"{\"batches\":[{\"ts_ms\":$ts,\"series\":[{\"name\":\"t_pick\",\"value\":$v},{\"name\":\"t_also\",\"value\":1}]}]}" |
				grep -q '^200 '
		done
	done
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

all_ready() {
	[ "$(herd host ls --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}})')" = 4 ]
}

# picks QUERY: "CLUSTER/HOST=VALUE" of t_pick's items, sorted, one line;
# fails unless the answer is a 200.
picks() {
	local out
	out=$(http GET "/v1/metrics/latest?metric=t_pick&$1" "$VIEWER")
	echo "$1: ${out:0:400}" >&2
	[[ "$out" == "200 "* ]] || return 1
	perl -MJSON::PP -e 'print join(" ", sort map { "$_->{labels}{cluster}/$_->{host}=$_->{value}" }
		@{decode_json(join "", <STDIN>)->{items}}), "\n"' <<<"${out#200 }"
}

# refused QUERY: the answer is a 400 naming hosts.
refused() {
	local out
	out=$(http GET "/v1/metrics/latest?$1" "$VIEWER")
	echo "$1: ${out:0:300}" >&2
	[[ "$out" == "400 "* ]] && [ "$(json '{error}{field}' <<<"${out#400 }")" = hosts ]
}

@test "latest hosts=: the named hosts only, in a group or as CLUSTER/NAME; unknown names none" {
	[ "$(picks "group=la/node")" = "la/node-1=11 la/node-2=12" ]
	[ "$(picks "group=la/node&hosts=node-2")" = "la/node-2=12" ]
	[ "$(picks "group=lb/node&hosts=node-1,node-2")" = "lb/node-1=21 lb/node-2=22" ]
	# without a group, a bare name is that name in every cluster
	[ "$(picks "hosts=node-1")" = "la/node-1=11 lb/node-1=21" ]
	[ "$(picks "hosts=la/node-1,lb/node-2")" = "la/node-1=11 lb/node-2=22" ]
	# a name given twice is answered once
	[ "$(picks "hosts=lb/node-2,node-2,lb/node-2")" = "la/node-2=12 lb/node-2=22" ]
	# unknown names, clusters, or a cluster other than the group's: no items, no error
	[ "$(picks "group=la/node&hosts=node-9,nobody")" = "" ]
	[ "$(picks "hosts=zz/node-1")" = "" ]
	[ "$(picks "group=la/node&hosts=lb/node-1")" = "" ]
	[ "$(picks "group=la/node&hosts=node-9,node-1")" = "la/node-1=11" ]
	# any metric: the host's series only (t_pick, t_also and whatever its agent pushed)
	out=$(http GET "/v1/metrics/latest?group=la/node&hosts=node-1" "$VIEWER")
	[[ "$out" == "200 "* ]]
	perl -MJSON::PP -e 'my @i = @{decode_json(join "", <STDIN>)->{items}};
		my @bad = grep { $_->{host} ne "node-1" || $_->{labels}{cluster} ne "la" } @i;
		my @t = grep { $_->{metric} =~ /^t_(pick|also)$/ } @i;
		print scalar(@i), " items, ", scalar(@bad), " of another host\n";
		exit(@t == 2 && !@bad ? 0 : 1)' <<<"${out#200 }"
	# pages: limit= and next work as without hosts=
	out=$(http GET "/v1/metrics/latest?metric=t_pick&hosts=node-1,node-2&limit=3" "$VIEWER")
	[ "$(json_count '{items}' <<<"${out#200 }")" = 3 ]
	next=$(json '{next}' <<<"${out#200 }")
	[ -n "$next" ]
	[ "$(picks "hosts=node-1,node-2&limit=3&after=$next" | wc -w)" = 1 ]
}

@test "latest hosts=: more than 100 names, an empty one, or with host= refused naming hosts" {
	many=$(seq -f 'node-%g' 1 101 | paste -sd,)
	refused "hosts=$many"
	# 100 is the most: answered
	hundred=$(seq -f 'node-%g' 1 100 | paste -sd,)
	[ "$(picks "group=la/node&hosts=$hundred")" = "la/node-1=11 la/node-2=12" ]
	refused "hosts="
	refused "hosts=node-1,,node-2"
	refused "hosts=/node-1"
	refused "hosts=la/"
	refused "hosts=la/node/1"
	refused "hosts=node-1&host=node-2"
	refused "hosts=$(printf 'x%.0s' $(seq 1 96))"
}
