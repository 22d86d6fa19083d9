#!/usr/bin/env bats
# The fake QingCloud (issue 14, tests/fake-qingcloud/): a test double of
# QingCloud's IaaS API in its own process. Each test starts its own fake on a
# free port with a temporary state dir and signs its calls itself
# (tests/fake-qingcloud/qc-call.pl, signature version 1). teardown stops the
# fake with SIGTERM (its own teardown) and removes whatever a failed run left
# under the fake's name prefix. Needs root for --instances netns.

load lib

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
QC_CALL=$BATS_TEST_DIRNAME/../fake-qingcloud/qc-call.pl
KEY_ID=QYACCESSKEYIDEXAMPLE

# fq_start [OPTION]...: starts a fake; sets FQ_DIR FQ_URL FQ_PID FQ_PREFIX.
fq_start() {
	FQ_DIR=${FQ_DIR:-$(mktemp -d "${BATS_TEST_TMPDIR:-/tmp}/fqc.XXXXXX")}
	local port
	port=$(free_port)
	FQ_URL="http://127.0.0.1:$port/iaas/"
	printf '%s\n' "${FQ_SECRET:-SECRETACCESSKEY-$RANDOM$RANDOM}" >"$FQ_DIR/secret"
	export QC_SECRET_FILE=$FQ_DIR/secret
	"$FAKE" --listen "127.0.0.1:$port" --state-dir "$FQ_DIR/state" --access-key-id "$KEY_ID" \
		--secret-file "$FQ_DIR/secret" --zone pek3a --zone sh1a \
		--call-log "$FQ_DIR/calls.log" "$@" 2>>"$FQ_DIR/fake.log" &
	FQ_PID=$!
	wait_for 10 curl -s -o /dev/null "$FQ_URL"
	FQ_PREFIX=$(sed -n 's/.*names prefixed \(fq[0-9a-z]*\).*/\1/p' "$FQ_DIR/fake.log" | head -1)
	[ -n "$FQ_PREFIX" ]
}

# fq_stop: SIGTERM (the fake tears down its namespaces), SIGKILL after 10 s.
fq_stop() {
	[ -n "${FQ_PID:-}" ] || return 0
	kill "$FQ_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$FQ_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$FQ_PID" 2>/dev/null || true
	wait "$FQ_PID" 2>/dev/null || true
	FQ_PID=
}

# The namespaces and links named with this fake's prefix (0 when clean).
fq_leftovers() {
	local n l
	n=$(ip netns list | grep -c "^$FQ_PREFIX-" || true)
	l=$(ip -o link show | grep -c ": $FQ_PREFIX" || true)
	echo $((n + l))
}

teardown() {
	fq_stop
	if [ -n "${FQ_PREFIX:-}" ]; then
		local ns l
		for ns in $(ip netns list | awk '{print $1}' | grep "^$FQ_PREFIX-"); do
			ip netns del "$ns" || true
		done
		for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$FQ_PREFIX"); do
			ip link del "$l" || true
		done
	fi
	[ -z "${FQ_DIR:-}" ] || rm -rf "$FQ_DIR"
}

# qc [--post|--time-stamp T|--bad-signature]... ACTION [k=v]...: a signed call.
qc() {
	perl "$QC_CALL" "$FQ_URL" "$KEY_ID" "$@"
}

ret_code() {
	json '{ret_code}'
}

@test "fake-qingcloud: signature, key and time_stamp are checked with QingCloud's codes" {
	fq_start
	run qc DescribeZones
	[ "$(echo "$output" | ret_code)" = 0 ]
	[ "$(echo "$output" | json '{action}')" = DescribeZonesResponse ]
	[ "$(echo "$output" | json_count '{zone_set}')" = 2 ]
	# POST form, as the SDK sends it, is verified the same way
	[ "$(qc --post DescribeZones | ret_code)" = 0 ]
	# values with spaces and non-ASCII are signed percent-encoded
	[ "$(qc DescribeInstances zone=pek3a 'search_word=a b+c/é' | ret_code)" = 0 ]
	[ "$(qc --bad-signature DescribeZones | ret_code)" = 1200 ]
	[ "$(perl "$QC_CALL" "$FQ_URL" OTHERKEY DescribeZones | ret_code)" = 1200 ]
	[ "$(qc --time-stamp 2020-01-01T00:00:00Z DescribeZones | ret_code)" = 1300 ]
	run qc NoSuchAction zone=pek3a
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *NoSuchAction* ]]
	run qc DescribeInstances zone=pek3a no_such_param=1
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *no_such_param* ]]
	[ "$(qc DescribeInstances zone=nowhere | ret_code)" = 1100 ]
	# rejected before the action: not in the call log; accepted calls are, unsigned
	[ "$(grep -c '"action":"DescribeZones"' "$FQ_DIR/calls.log")" = 2 ]
	refute grep -q '"signature"' "$FQ_DIR/calls.log"
	refute grep -q 'SECRETACCESSKEY' "$FQ_DIR/calls.log" "$FQ_DIR/fake.log"
}

@test "fake-qingcloud: accepts the docs' and SDKs' published signature example" {
	# qingcloud-docs (API signature page) and qingcloud-sdk-go request/signer_test.go:
	# this request, signed with SECRETACCESSKEY at 2013-08-27T14:30:10Z
	local q='access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek1'
	FQ_SECRET=SECRETACCESSKEY fq_start --zone pek1 --time-skew-max-s 2000000000
	run curl -s "$FQ_URL?$q&signature=32bseYy39DOlatuewpeuW5vpmW51sD1A%2FJdGynqSpP8%3D"
	[ "$(echo "$output" | ret_code)" = 0 ]
	[ "$(echo "$output" | json_count '{instances}')" = 1 ]
	# one character changed: refused
	run curl -s "$FQ_URL?$q&signature=42bseYy39DOlatuewpeuW5vpmW51sD1A%2FJdGynqSpP8%3D"
	[ "$(echo "$output" | ret_code)" = 1200 ]
	# the method is part of the string to sign: the GET signature is no POST's
	run curl -s --data "$q&signature=32bseYy39DOlatuewpeuW5vpmW51sD1A%2FJdGynqSpP8%3D" "$FQ_URL"
	[ "$(echo "$output" | ret_code)" = 1200 ]
}

instance_status() {
	qc DescribeInstances zone=pek3a "instances.1=$1" | json '{instance_set}[0]{status}'
}

job_status() {
	qc DescribeJobs zone=pek3a "jobs.1=$1" | json '{job_set}[0]{status}'
}

# For wait_for, which runs its command again each time: ID STATUS.
instance_is() {
	[ "$(instance_status "$1")" = "$2" ]
}

job_is() {
	[ "$(job_status "$1")" = "$2" ]
}

@test "fake-qingcloud: RunInstances is pending, then running; its job succeeds; the world survives a restart" {
	fq_start --pending-ms 1500 --job-ms 500
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=keypair \
		login_keypair=kp-1 instance_name=web count=2
	[ "$(echo "$output" | ret_code)" = 0 ]
	[ "$(echo "$output" | json_count '{instances}')" = 2 ]
	id=$(echo "$output" | json '{instances}[0]')
	job=$(echo "$output" | json '{job_id}')
	[[ "$id" == i-* && "$job" == j-* ]]
	[ "$(instance_status "$id")" = pending ]
	wait_for 20 instance_is "$id" running
	wait_for 20 job_is "$job" successful
	run qc DescribeInstances zone=pek3a search_word=web
	[ "$(echo "$output" | json '{total_count}')" = 2 ]
	[ "$(echo "$output" | json '{instance_set}[0]{instance_name}')" = web ]
	[ "$(qc DescribeInstances zone=pek3a search_word=nomatch | json '{total_count}')" = 0 ]
	# missing required parameters name the field
	run qc RunInstances zone=pek3a instance_type=c1m1 login_mode=passwd login_passwd=p
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *image_id* ]]
	grep -q '"action":"RunInstances".*"ret_code":0' "$FQ_DIR/calls.log"
	# restart: the instances are still there
	fq_stop
	fq_start
	[ "$(instance_status "$id")" = running ]
	run qc TerminateInstances zone=pek3a "instances.1=$id"
	[ "$(echo "$output" | ret_code)" = 0 ]
	job=$(echo "$output" | json '{job_id}')
	wait_for 20 job_is "$job" successful
	[ "$(instance_status "$id")" = terminated ]
	[ "$(qc TerminateInstances zone=pek3a "instances.1=$id" | ret_code)" = 1400 ]
	[ "$(qc TerminateInstances zone=pek3a instances.1=i-nosuch1 | ret_code)" = 2100 ]
}

# saved IDS...: world.json (written by the ticker, at most once a second)
# names every id.
saved() {
	local id
	for id in "$@"; do grep -q "\"$id\"" "$FQ_DIR/state/world.json" || return 1; done
}

@test "fake-qingcloud: 20 changes in a burst, then SIGTERM: the restarted fake has all of them" {
	local ids=() id
	fq_start --pending-ms 0 --job-ms 0
	for i in $(seq 1 20); do
		id=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=keypair \
			login_keypair=kp-1 "instance_name=burst$i" | json '{instances}[0]')
		[[ "$id" == i-* ]]
		ids+=("$id")
	done
	fq_stop # SIGTERM saves whatever the ticker had not saved yet
	saved "${ids[@]}"
	fq_start --pending-ms 0 --job-ms 0
	[ "$(qc DescribeInstances zone=pek3a search_word=burst limit=100 | json '{total_count}')" = 20 ]
	for id in "${ids[@]}"; do [ "$(instance_status "$id")" = running ]; done
}

@test "fake-qingcloud: kill -9 keeps what world.json holds (saves are at most a second apart)" {
	local id
	fq_start --pending-ms 0 --job-ms 0
	id=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=keypair \
		login_keypair=kp-1 instance_name=kept | json '{instances}[0]')
	[[ "$id" == i-* ]]
	wait_for 10 saved "$id"
	kill -9 "$FQ_PID"
	wait "$FQ_PID" 2>/dev/null || true
	FQ_PID=
	fq_start --pending-ms 0 --job-ms 0
	[ -n "$(instance_status "$id")" ]
	[ "$(qc DescribeInstances zone=pek3a search_word=kept | json '{total_count}')" = 1 ]
}

@test "fake-qingcloud: tags are created, attached, detached and filter DescribeInstances" {
	fq_start --pending-ms 0 --job-ms 0
	run qc RunInstances zone=pek3a image_id=img1 cpu=1 memory=1024 login_mode=passwd \
		login_passwd=secret-pw count=2
	a=$(echo "$output" | json '{instances}[0]')
	b=$(echo "$output" | json '{instances}[1]')
	tag=$(qc CreateTags zone=pek3a tag_name="herd-$RANDOM" | json '{tag_id}')
	[[ "$tag" == tag-* ]]
	[ "$(qc AttachTags zone=pek3a resource_tag_pairs.1.tag_id="$tag" \
		resource_tag_pairs.1.resource_type=instance \
		resource_tag_pairs.1.resource_id="$b" | ret_code)" = 0 ]
	run qc DescribeInstances zone=pek3a tags.1="$tag"
	[ "$(echo "$output" | json '{total_count}')" = 1 ]
	[ "$(echo "$output" | json '{instance_set}[0]{instance_id}')" = "$b" ]
	[ "$(echo "$output" | json '{instance_set}[0]{tags}[0]{tag_id}')" = "$tag" ]
	[ "$(qc DescribeInstances zone=pek3a | json '{total_count}')" = 2 ]
	[ "$(qc DescribeTags zone=pek3a tags.1="$tag" | json '{tag_set}[0]{resource_count}')" = 1 ]
	qc DetachTags zone=pek3a resource_tag_pairs.1.tag_id="$tag" \
		resource_tag_pairs.1.resource_type=instance resource_tag_pairs.1.resource_id="$b"
	[ "$(qc DescribeInstances zone=pek3a tags.1="$tag" | json '{total_count}')" = 0 ]
	[ "$(qc AttachTags zone=pek3a resource_tag_pairs.1.tag_id=tag-nosuch1 \
		resource_tag_pairs.1.resource_type=instance \
		resource_tag_pairs.1.resource_id="$a" | ret_code)" = 2100 ]
	# the password is a secret: never in the call log
	refute grep -q secret-pw "$FQ_DIR/calls.log"
}

@test "fake-qingcloud: RunInstances beyond --quota-instances answers 2500" {
	fq_start --quota-instances 3 --pending-ms 0
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p count=2
	[ "$(echo "$output" | ret_code)" = 0 ]
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p count=2
	[ "$(echo "$output" | ret_code)" = 2500 ]
	[[ "$(echo "$output" | json '{message}')" == *uota* ]]
	[ "$(qc DescribeInstances zone=pek3a | json '{total_count}')" = 2 ]
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p count=1
	[ "$(echo "$output" | ret_code)" = 0 ]
}

@test "fake-qingcloud: --fail-rate 100 answers every accepted call with 5100, and logs it" {
	fq_start --fail-rate 100 --fail-seed 42
	for _ in 1 2 3; do
		[ "$(qc DescribeZones | ret_code)" = 5100 ]
	done
	# authentication comes first
	[ "$(qc --bad-signature DescribeZones | ret_code)" = 1200 ]
	[ "$(grep -c '"ret_code":5100' "$FQ_DIR/calls.log")" = 3 ]
}

@test "fake-qingcloud: --fail-actions limits --fail-rate to the actions named" {
	fq_start --fail-rate 100 --fail-actions RunInstances,DescribeJobs
	for _ in 1 2 3; do
		[ "$(qc DescribeZones | ret_code)" = 0 ]
	done
	[ "$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p count=1 | ret_code)" = 5100 ]
	# the others never fail
	[ "$(qc DescribeInstances zone=pek3a | ret_code)" = 0 ]
	[ "$(qc DescribeJobs zone=pek3a | ret_code)" = 5100 ]
	[ "$(grep -c '"ret_code":5100' "$FQ_DIR/calls.log")" = 2 ]
}

@test "fake-qingcloud: --fail-rate is deterministic for a seed" {
	local a b
	fq_start --fail-rate 50 --fail-seed 7
	for _ in $(seq 1 20); do qc DescribeZones | ret_code; done >"$BATS_TEST_TMPDIR/a"
	fq_stop
	rm -f "$FQ_DIR/calls.log"
	fq_start --fail-rate 50 --fail-seed 7
	for _ in $(seq 1 20); do qc DescribeZones | ret_code; done >"$BATS_TEST_TMPDIR/b"
	cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	grep -qx 5100 "$BATS_TEST_TMPDIR/a"
	grep -qx 0 "$BATS_TEST_TMPDIR/a"
}

@test "fake-qingcloud: --instances netns runs the user data in an isolated instance" {
	require_root
	local cidr net vx rt script id id2 upper
	fq_start --instances netns --pending-ms 200 --job-ms 200
	cidr=$(random_cidr)
	net=${cidr%.0/24}
	vx=$(qc CreateVxnets zone=pek3a vxnet_name=t | json '{vxnets}[0]')
	rt=$(qc CreateRouters zone=pek3a router_name=r vpc_network=198.18.0.0/15 | json '{routers}[0]')
	[ "$(qc JoinRouter zone=pek3a vxnet="$vx" router="$rt" ip_network="$cidr" | ret_code)" = 0 ]
	script=$(printf '#!/bin/sh\nhostname >/root/fq-hostname\necho $$ >/root/fq-pid\ncat /proc/1/comm >/root/fq-init\nip -4 -o addr show eth0 >/root/fq-addr\necho done >/root/fq-done\nexec sleep 600\n' | base64 -w0)
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p vxnets.1="$vx" userdata_type=exec userdata_value="$script"
	[ "$(echo "$output" | ret_code)" = 0 ]
	id=$(echo "$output" | json '{instances}[0]')
	upper=$FQ_DIR/state/inst/$id/upper
	wait_for 20 test -f "$upper/root/fq-done"
	# the user data wrote inside the instance: its overlay upper dir, not the host's /
	[ "$(cat "$upper/root/fq-hostname")" = "$id" ]
	[ "$(cat "$upper/root/fq-pid")" = 2 ]
	[ "$(cat "$upper/root/fq-init")" = init ]
	grep -q "inet $net.2/24" "$upper/root/fq-addr"
	[ "$(base64 -d <<<"$script")" = "$(cat "$upper/etc/rc.local")" ]
	grep -q "\"instance_id\":\"$id\"" "$upper/etc/qingcloud/userdata/metadata.json"
	refute test -e /root/fq-done
	[ "$(qc DescribeInstances zone=pek3a instances.1="$id" | json '{instance_set}[0]{vxnets}[0]{private_ip}')" = "$net.2" ]
	ip netns list | awk '{print $1}' | grep -qx "$FQ_PREFIX-$id"
	# the router's address is on the VxNet's bridge: the instance reaches it
	ip netns exec "$FQ_PREFIX-$id" ip route | grep -q "default via $net.1"
	# a second instance; then terminate the first: its namespace goes
	id2=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p vxnets.1="$vx" userdata_type=exec userdata_value="$script" | json '{instances}[0]')
	wait_for 20 test -f "$FQ_DIR/state/inst/$id2/upper/root/fq-done"
	grep -q "inet $net.3/24" "$FQ_DIR/state/inst/$id2/upper/root/fq-addr"
	[ "$(qc TerminateInstances zone=pek3a instances.1="$id" | ret_code)" = 0 ]
	wait_for 20 instance_is "$id" terminated
	refute bash -c "ip netns list | awk '{print \$1}' | grep -qx '$FQ_PREFIX-$id'"
	ip netns list | awk '{print $1}' | grep -qx "$FQ_PREFIX-$id2"
	# SIGTERM: nothing the fake made is left
	fq_stop
	[ "$(fq_leftovers)" = 0 ]
	refute grep -q "$FQ_DIR/state/inst" /proc/mounts
}
