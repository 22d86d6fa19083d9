#!/usr/bin/env bats
# The provider conformance suite (issue 14): the same cases against every
# driver: `local` (namespaces on this machine) and `qingcloud` on the fake
# QingCloud (tests/fake-qingcloud, --instances none: no agent boots, so its
# hosts stay `booting`; its instances stay `pending` (--pending-ms large),
# which is what "adopt pending" needs). One server for the file, one account,
# network and cluster per driver. What each case checks is the provider's own
# view (netns / the fake's DescribeInstances and call log) against the store.
# teardown_file stops the server (--teardown removes its hosts and networks)
# and the fake. Needs root (local hosts are namespaces).

load lib
load qingcloud

KEY_ID=QYCONFORMANCEKEY

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	HERD_PORT=$(free_port)
	# qingcloud hosts reach the server through a URL (no gateway listener)
	server_start $(server_args)
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	CIDR_local=$(random_cidr)
	CIDR_qingcloud=$(random_cidr)
	while [ "$CIDR_qingcloud" = "$CIDR_local" ]; do CIDR_qingcloud=$(random_cidr); done
	fq_init CONFORMANCE
	FQ_PID=
	if [ -x "$FAKE" ]; then
		fq_start_cf
	fi
	export INST CIDR_local CIDR_qingcloud FQ_PID FQ_URL
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
	fq_cleanup
}

# fq_start_cf [OPTION]...: (re)starts the fake (qingcloud.bash) on its state
# dir (its world survives a restart) and port; its instances stay pending.
fq_start_cf() {
	fq_start --instances none --pending-ms 3600000 "$@"
}

# the server's options (the tests restart it)
server_args() {
	echo --advertise-url "http://127.0.0.1:$HERD_PORT"
}

setup() {
	require_root
	# a test that failed while the server was down must not fail the rest
	if ! curl -sf "$HERD_URL/healthz" >/dev/null; then
		server_stop
		server_start $(server_args)
	fi
	if [[ "$BATS_TEST_DESCRIPTION" == qingcloud:* ]]; then
		fq_require
	fi
}

# bp DRIVER FILE: the blueprint of DRIVER's account, network and group.
bp() {
	local cidr_var=CIDR_$1
	{
		echo "accounts:"
		echo "  - name: cf-$1"
		echo "    driver: $1"
		if [ "$1" = qingcloud ]; then
			echo "    zone: pek3a"
			echo "    access_key_id: $KEY_ID"
			echo "    secret_file: $FQ_DIR/secret"
			echo "    endpoint: $FQ_URL"
		fi
		cat <<YAML
networks:
  - name: cfnet-$1
    account: cf-$1
    cidr: ${!cidr_var}
templates:
  - name: cft-$1
    account: cf-$1
    network: cfnet-$1
YAML
		if [ "$1" = qingcloud ]; then
			echo "    image: img-conformance"
			echo "    instance_type: c1m1"
		fi
		cat <<YAML
clusters:
  - name: cf-$1
    groups:
      - name: g
        template: cft-$1
        size: 1
        max: 8
        # no agent boots on the fake (--instances none): keep them booting
        max_provision_time: 1h
YAML
	} >"$2"
}

# store_hosts DRIVER: "id name state" of the cluster's hosts (not terminated).
store_hosts() {
	herd host ls --cluster "cf-$1" --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{id} $_->{name} $_->{state}\n" for @{$d->{items}}'
}

# store_live DRIVER: the ids of hosts the provider should have, sorted.
store_live() {
	store_hosts "$1" | awk '$3 != "failed" && $3 != "terminated" {print $1}' | sort
}

# none_launching DRIVER: no host of the cluster waits for its provider call.
none_launching() {
	! store_hosts "$1" | awk '{print $3}' | grep -Eq '^(launching|terminating)$'
}

# prov_ids DRIVER: the host ids the provider has alive for this server, one
# per line per instance (a duplicate shows twice), sorted. A QingCloud
# instance already terminating is not alive.
prov_ids() {
	if [ "$1" = local ]; then
		ip netns list | awk '{print $1}' | sed -n "s/^herd-$INST-\([0-9a-f]\{8\}\)\$/\1/p" | sort
	else
		fq_host_ids
	fi
}

# same_as_store DRIVER: the provider has each live host exactly once, and
# nothing else of this cluster's.
same_as_store() {
	local s p
	s=$(store_live "$1")
	p=$(prov_ids "$1" | grep -F -x -f <(store_hosts "$1" | awk '{print $1}') || true)
	echo "store: $(echo $s) provider: $(echo $p)"
	[ "$s" = "$p" ]
}

# calls ACTION [K=V]: the ret_code of each of the fake's accepted calls of
# ACTION (with parameter K = V), one line each.
calls() {
	ACTION=$1 KV=${2:-} perl -MJSON::PP -ne '
		my $c = decode_json($_);
		next unless $c->{action} eq $ENV{ACTION};
		if ($ENV{KV} ne "") { my ($k, $v) = split /=/, $ENV{KV}, 2;
			next unless ($c->{params}{$k} // "") eq $v }
		print "$c->{ret_code}\n";' "$FQ_DIR/calls.log"
}

net_id() {
	printf '%s' "$INST/cfnet-$1" | sha256sum | cut -c1-8
}

# prov_net DRIVER: the network exists at the provider (local: its bridge;
# qingcloud: the VxNet "herd-<net id>", joined to a router).
prov_net() {
	local nid
	nid=$(net_id "$1")
	if [ "$1" = local ]; then
		ip link show "herd$nid" >/dev/null 2>&1
	else
		qc DescribeVxnets zone=pek3a "search_word=herd-$nid" | NID=$nid perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			my @v = grep { $_->{vxnet_name} eq "herd-$ENV{NID}" } @{$d->{vxnet_set}};
			exit(@v == 1 && $v[0]{router}{router_id} ? 0 : 1)'
	fi
}

server_gone() {
	refute kill -0 "$1" 2>/dev/null
}

# --- the cases, each run for both drivers ---

case_launch() {
	bp "$1" "$BATS_FILE_TMPDIR/$1.yaml"
	run herd apply -f "$BATS_FILE_TMPDIR/$1.yaml"
	echo "$output"
	[ "$status" -eq 0 ]
	has_host() { [ -n "$(store_live "$1")" ] && none_launching "$1"; }
	wait_for 60 has_host "$1"
	id=$(store_live "$1")
	echo "host $id; provider: $(prov_ids "$1" | tr '\n' ' ')"
	[ "$(prov_ids "$1" | grep -c -x "$id")" -eq 1 ]
	wait_for 10 prov_net "$1"
}

case_list() {
	run herd group scale "cf-$1/g" 3
	[ "$status" -eq 0 ]
	three() { [ "$(store_live "$1" | grep -c .)" -eq 3 ] && none_launching "$1"; }
	wait_for 60 three "$1"
	same_as_store "$1"
}

# kill -9 (a failpoint's _exit) after the provider made the host and before
# herd recorded it; the restarted server adopts it (pending on qingcloud)
case_relaunch() {
	local before pid id name
	before=$(store_hosts "$1" | awk '{print $1}' | sort)
	server_stop
	HERD_FAILPOINTS=prov_launch_done=exit server_start $(server_args)
	pid=$SERVER_PID
	# the failpoint may end the server before it answers (the scale is
	# committed before the controller acts): the outcome is checked below
	run herd group scale "cf-$1/g" 4
	echo "scale: $status $output"
	wait_for 60 server_gone "$pid"
	SERVER_PID=
	rm -f "$HERD_DATA/server.pid"
	grep -q "failpoint 'prov_launch_done': exiting" "$HERD_DATA/server.log"
	server_start $(server_args)
	four() { [ "$(store_live "$1" | grep -c .)" -eq 4 ] && none_launching "$1"; }
	wait_for 60 four "$1"
	id=$(comm -13 <(echo "$before") <(store_hosts "$1" | awk '{print $1}' | sort) | head -1)
	name=$(store_hosts "$1" | awk -v id="$id" '$1 == id {print $2}')
	echo "cut short: $id ($name)"
	[ -n "$id" ]
	# adopted, never failed and launched again
	run herd activity ls --json --limit 5000
	if [ "$1" = qingcloud ]; then
		[[ "$output" == *"host found at the provider (pending)"* ]]
		# one RunInstances for that name in the fake's log, one instance
		[ "$(calls RunInstances "instance_name=herd-$INST-$id" | grep -c .)" -eq 1 ]
	else
		[[ "$output" == *"host found at the provider (running)"* ]]
	fi
	[ "$(prov_ids "$1" | grep -c -x "$id")" -eq 1 ]
	same_as_store "$1"
}

# an instance carrying this server's name but unknown to the store is
# terminated after the grace; the store's hosts are left alone
case_orphan() {
	local oid did rec
	oid=$(printf '%08x' $(((RANDOM << 16 | RANDOM) & 0x7fffffff)))
	if [ "$1" = local ]; then
		ip netns add "herd-$INST-$oid"
	else
		run qc RunInstances zone=pek3a image_id=img-conformance instance_type=c1m1 login_mode=passwd \
			login_passwd=Orphan0rphan "instance_name=herd-$INST-$oid"
		[ "$(echo "$output" | json '{ret_code}')" = 0 ]
	fi
	[ "$(prov_ids "$1" | grep -c -x "$oid")" -eq 1 ]
	live=$(store_live "$1")
	if [ "$1" = qingcloud ]; then
		# and a second instance of a live host (what a RunInstances whose
		# answer was lost, missed by the search, would leave)
		did=$(head -n 1 <<<"$live")
		rec=$(herd host show "$did" --json | json '{instance_id}')
		[ -n "$rec" ]
		run qc RunInstances zone=pek3a image_id=img-conformance instance_type=c1m1 login_mode=passwd \
			login_passwd=Orphan0rphan "instance_name=herd-$INST-$did"
		[ "$(echo "$output" | json '{ret_code}')" = 0 ]
		[ "$(prov_ids "$1" | grep -c -x "$did")" -eq 2 ]
	fi
	orphan_gone() { [ "$(prov_ids "$1" | grep -c -x "$2")" -eq 0 ]; }
	# the grace is 60 s (ORPHAN_GRACE_MS), the sweep every 5 s
	wait_for 120 orphan_gone "$1" "$oid"
	if [ "$1" = qingcloud ]; then
		one() { [ "$(prov_ids qingcloud | grep -c -x "$did")" -eq 1 ]; }
		wait_for 30 one
		# the one left is the instance herd recorded
		qc DescribeInstances zone=pek3a "search_word=herd-$INST-$did" status.1=pending \
			status.2=running limit=10 | grep -q "\"$rec\""
		[ "$(herd host show "$did" --json | json '{instance_id}')" = "$rec" ]
	fi
	[ "$(store_live "$1")" = "$live" ]
	same_as_store "$1"
}

# kill after the provider terminated, before herd recorded it: the restarted
# server terminates again, which must answer ok
case_terminate_twice() {
	local pid
	server_stop
	HERD_FAILPOINTS=prov_terminate_done=exit server_start $(server_args)
	pid=$SERVER_PID
	# the failpoint may end the server before it answers (the scale is
	# committed before the controller acts): the outcome is checked below
	run herd group scale "cf-$1/g" 2
	echo "scale: $status $output"
	wait_for 60 server_gone "$pid"
	SERVER_PID=
	rm -f "$HERD_DATA/server.pid"
	grep -q "failpoint 'prov_terminate_done': exiting" "$HERD_DATA/server.log"
	server_start $(server_args)
	two() { [ "$(store_live "$1" | grep -c .)" -eq 2 ] && none_launching "$1"; }
	wait_for 60 two "$1"
	same_as_store "$1"
	refute grep -q "cannot terminate host" "$HERD_DATA/server.log"
	if [ "$1" = qingcloud ]; then
		# the terminated instance was asked twice, the second refused by
		# QingCloud (1400: already terminating) and taken as done
		perl -MJSON::PP -ne '
			my $c = decode_json($_);
			$n{$c->{params}{"instances.1"}}++ if $c->{action} eq "TerminateInstances";
			END { exit((grep { $_ >= 2 } values %n) ? 0 : 1) }' "$FQ_DIR/calls.log"
	fi
}

case_net_delete() {
	run herd delete -f "$BATS_FILE_TMPDIR/$1.yaml" --timeout 2m
	echo "$output"
	[ "$status" -eq 0 ]
	no_prov() { [ -z "$(prov_ids "$1")" ]; }
	wait_for 60 no_prov "$1"
	net_gone() { refute prov_net "$1"; }
	wait_for 60 net_gone "$1"
}

@test "local: launch: a host row appears and the provider has its instance and network" {
	case_launch local
}

@test "qingcloud: launch: a host row appears and the provider has its instance and network" {
	case_launch qingcloud
}

@test "qingcloud: herd account check says the zone is reachable; a wrong key is QingCloud's 1200, exit 1" {
	run herd account check cf-qingcloud
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "ok: zone pek3a reachable, credentials accepted" ]
	umask 077
	echo WRONG-SECRET >"$FQ_DIR/wrong"
	umask 022
	run http PUT /v1/accounts/cf-qingcloud "$HERD_TOKEN" \
		"{\"name\":\"cf-qingcloud\",\"driver\":\"qingcloud\",\"zone\":\"pek3a\",\"access_key_id\":\"$KEY_ID\",\"secret_file\":\"$FQ_DIR/wrong\",\"endpoint\":\"$FQ_URL\"}"
	[[ "$output" == 200* ]]
	run herd account check cf-qingcloud
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"QingCloud 1200"* ]]
	run http PUT /v1/accounts/cf-qingcloud "$HERD_TOKEN" \
		"{\"name\":\"cf-qingcloud\",\"driver\":\"qingcloud\",\"zone\":\"pek3a\",\"access_key_id\":\"$KEY_ID\",\"secret_file\":\"$FQ_DIR/secret\",\"endpoint\":\"$FQ_URL\"}"
	[[ "$output" == 200* ]]
}

@test "local: herd account check answers ok; an unknown account is an error" {
	run herd account check cf-local
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok: "* ]]
	run herd account check no-such-account
	[ "$status" -ne 0 ]
}

@test "an unknown driver is refused naming the field and the drivers built in" {
	run http POST /v1/accounts "$HERD_TOKEN" '{"name":"cfbad","driver":"openstack"}'
	echo "$output"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = driver ]
	[ "$(echo "${output#400 }" | json '{error}{message}')" = "unknown driver 'openstack' (known: local, qingcloud)" ]
	run http POST /v1/accounts "$HERD_TOKEN" '{"name":"cfbad","driver":"qingcloud","zone":"pek3a","access_key_id":"k","secret_file":"rel/path"}'
	echo "$output"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = secret_file ]
}

@test "local: list: the provider has exactly the store's live hosts" {
	case_list local
}

@test "qingcloud: list: the provider has exactly the store's live hosts" {
	case_list qingcloud
}

@test "local: kill -9 between the provider's launch and recording it: one instance, adopted" {
	case_relaunch local
}

@test "qingcloud: kill -9 between RunInstances and recording it: one instance, adopted while pending" {
	case_relaunch qingcloud
}

@test "local: an orphan named for this server is terminated after the grace" {
	case_orphan local
}

@test "qingcloud: an orphan named for this server is terminated after the grace" {
	case_orphan qingcloud
}

@test "local: terminate twice (kill -9 after the provider terminated): the second is ok" {
	case_terminate_twice local
}

@test "qingcloud: terminate twice (kill -9 after TerminateInstances): the second is ok" {
	case_terminate_twice qingcloud
}

@test "qingcloud: over the instance quota: herd stops there, says QingCloud 2500, and backs off" {
	local live runs
	# the fake counts an instance until its termination ends: wait for that
	none_terminating() {
		qc DescribeInstances zone=pek3a status.1=pending status.2=running status.3=stopped \
			limit=100 | perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			exit(1) if $d->{ret_code} || grep { $_->{transition_status} eq "terminating" }
				@{$d->{instance_set}}'
	}
	wait_for 60 none_terminating
	live=$(prov_ids qingcloud | grep -c .)
	fq_stop
	fq_start_cf --quota-instances "$live"
	run herd group scale cf-qingcloud/g 3
	[ "$status" -eq 0 ]
	said() {
		herd activity ls --json --cluster cf-qingcloud --limit 5000 | grep -q 'QingCloud 2500'
	}
	wait_for 30 said
	t0=$(calls RunInstances | grep -c .)
	sleep 40
	runs=$(($(calls RunInstances | grep -c .) - t0))
	echo "RunInstances in 40 s under the quota: $runs"
	calls RunInstances | tail -n 12 | tr '\n' ' '
	# exponential backoff from 1 s doubling: at most 1+1+... over 40 s is
	# 6; a loop once per pass would be dozens
	[ "$runs" -le 7 ]
	[ "$(prov_ids qingcloud | grep -c .)" -eq "$live" ]
	# every 2500 refused, nothing made
	[ -z "$(calls RunInstances | tail -n "$runs" | grep -v -x 2500)" ]
	fq_stop
	fq_start_cf
	run herd group scale cf-qingcloud/g 2
	[ "$status" -eq 0 ]
}

@test "qingcloud: RunInstances answered 5100: herd searches by name, sends it again, and the host launches" {
	local before id name
	# only RunInstances fails, at 50 %: seed 35 makes its first two calls
	# 5100 and the next ones succeed (the fake's xorshift sequence)
	fq_stop
	fq_start_cf --fail-rate 50 --fail-actions RunInstances --fail-seed 35
	before=$(store_hosts qingcloud | awk '{print $1}' | sort)
	run herd group scale cf-qingcloud/g 3
	[ "$status" -eq 0 ]
	new_host() {
		id=$(comm -13 <(echo "$before") <(store_hosts qingcloud | awk '{print $1}' | sort))
		[ -n "$id" ] && [ "$(calls RunInstances | grep -cx 0)" -ge 1 ]
	}
	wait_for 60 new_host
	wait_for 60 none_launching qingcloud
	echo "new host $id: $(store_hosts qingcloud | grep "^$id ")"
	name=herd-$INST-$id
	calls RunInstances instance_name="$name" | tr '\n' ' '
	# two refused, the third made it, each refusal followed by a search
	[ "$(calls RunInstances instance_name="$name" | tr '\n' ' ')" = "5100 5100 0 " ]
	[ "$(calls DescribeInstances search_word="$name" | grep -c .)" -ge 3 ]
	# the host was not failed for a busy answer, and it has one instance
	refute grep -q ' failed$' <<<"$(store_hosts qingcloud | grep "^$id ")"
	[ "$(prov_ids qingcloud | grep -cx "$id")" -eq 1 ]
	same_as_store qingcloud
	fq_stop
	fq_start_cf
	run herd group scale cf-qingcloud/g 2
	[ "$status" -eq 0 ]
}

@test "local: network create/delete: herd delete removes the hosts and the bridge" {
	case_net_delete local
}

@test "qingcloud: network create/delete: herd delete removes the instances and the VxNet" {
	case_net_delete qingcloud
}
