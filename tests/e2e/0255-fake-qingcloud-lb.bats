#!/usr/bin/env bats
# The fake QingCloud's load balancers, EIPs and router port forwarding
# (issue 14, tests/fake-qingcloud/lb.c and world.c). Each test starts its own
# fake on a free port with a temporary state dir, its own VxNet network and
# its own --eip-range, both random /24s in 198.18.0.0/15. teardown stops the
# fake with SIGTERM (which stops its haproxy processes and removes its
# addresses) and then removes whatever a failed run left under the fake's
# name prefix. The traffic test needs root (--instances netns) and haproxy.

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
	printf '%s\n' "SECRETACCESSKEY-$RANDOM$RANDOM" >"$FQ_DIR/secret"
	export QC_SECRET_FILE=$FQ_DIR/secret
	"$FAKE" --listen "127.0.0.1:$port" --state-dir "$FQ_DIR/state" --access-key-id "$KEY_ID" \
		--secret-file "$FQ_DIR/secret" --zone pek3a \
		--call-log "$FQ_DIR/calls.log" "$@" 2>>"$FQ_DIR/fake.log" &
	FQ_PID=$!
	wait_for 10 curl -s -o /dev/null "$FQ_URL"
	FQ_PREFIX=$(sed -n 's/.*names prefixed \(fq[0-9a-z]*\).*/\1/p' "$FQ_DIR/fake.log" | head -1)
	[ -n "$FQ_PREFIX" ]
}

# fq_stop: SIGTERM (the fake tears down what it made), SIGKILL after 10 s.
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

# haproxy processes running this fake's configurations.
fq_haproxies() {
	pgrep -f "haproxy -f $FQ_DIR/state/haproxy/" || true
}

# What this fake made and left: namespaces, links, addresses of its
# networks, haproxy processes (0 when clean).
fq_leftovers() {
	local n l a h
	n=$(ip netns list | grep -c "^$FQ_PREFIX-" || true)
	l=$(ip -o link show | grep -c ": $FQ_PREFIX" || true)
	a=$(ip -o -4 addr show | grep -cE " (${EIP_NET:-none}|${VX_NET:-none})\." || true)
	h=$(fq_haproxies | grep -c . || true)
	echo $((n + l + a + h))
}

teardown() {
	fq_stop
	if [ -n "${FQ_DIR:-}" ]; then
		local p
		for p in $(fq_haproxies); do
			kill "$p" 2>/dev/null || true
		done
	fi
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

qc() {
	perl "$QC_CALL" "$FQ_URL" "$KEY_ID" "$@"
}

ret_code() {
	json '{ret_code}'
}

job_is() {
	[ "$(qc DescribeJobs zone=pek3a "jobs.1=$1" | json '{job_set}[0]{status}')" = "$2" ]
}

lb_field() {
	qc DescribeLoadBalancers zone=pek3a "loadbalancers.1=$1" | json "{loadbalancer_set}[0]$2"
}

# lb_pending_or_done LB JOB: the LB just made is pending/creating, or its job
# has ended and it is active (both read from one DescribeLoadBalancers).
lb_pending_or_done() {
	local d s t
	d=$(qc DescribeLoadBalancers zone=pek3a "loadbalancers.1=$1")
	s=$(echo "$d" | json '{loadbalancer_set}[0]{status}')
	t=$(echo "$d" | json '{loadbalancer_set}[0]{transition_status}')
	if [ "$s" = pending ]; then
		[ "$t" = creating ]
	else
		[ "$s" = active ] && [ -z "$t" ] && job_is "$2" successful
	fi
}

lb_is() {
	[ "$(lb_field "$1" '{status}')" = "$2" ]
}

# Two random /24s of 198.18.0.0/15, distinct: VX_CIDR/VX_NET and EIP_CIDR/EIP_NET.
pick_networks() {
	VX_CIDR=$(random_cidr)
	EIP_CIDR=$(random_cidr)
	while [ "$EIP_CIDR" = "$VX_CIDR" ]; do EIP_CIDR=$(random_cidr); done
	VX_NET=${VX_CIDR%.0/24}
	EIP_NET=${EIP_CIDR%.0/24}
}

# both_served URL A B: six requests reach both A and B.
both_served() {
	local out
	out=$(hits "$1" 6)
	grep -qx "$2" <<<"$out" && grep -qx "$3" <<<"$out"
}

# only_served URL B: six requests all answered by B.
only_served() {
	[ "$(hits "$1" 6 | grep -cx "$2")" = 6 ]
}

# backend_status_is LB I STATUS: the LB's I-th backend has STATUS at QingCloud.
backend_status_is() {
	[ "$(qc DescribeLoadBalancerBackends zone=pek3a loadbalancer="$1" |
		json "{loadbalancer_backend_set}[$2]{status}")" = "$3" ]
}

# hits URL N: N requests (each at most 3 s), one answer (the serving instance) a line.
hits() {
	local i
	for i in $(seq 1 "$2"); do
		curl -s --max-time 3 "$1" || echo FAILED
	done
}

@test "fake-qingcloud lb: EIPs are allocated from --eip-range, associated, dissociated, released; quota 2500" {
	pick_networks
	fq_start --job-ms 200 --pending-ms 0 --eip-range "$EIP_CIDR" --quota-eips 2
	run qc AllocateEips zone=pek3a eip_name=web
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *bandwidth* ]]
	run qc AllocateEips zone=pek3a bandwidth=2 eip_name=web
	[ "$(echo "$output" | ret_code)" = 0 ]
	eip=$(echo "$output" | json '{eips}[0]')
	[[ "$eip" == eip-* ]]
	run qc DescribeEips zone=pek3a "eips.1=$eip"
	[ "$(echo "$output" | json '{eip_set}[0]{status}')" = available ]
	[ "$(echo "$output" | json '{eip_set}[0]{eip_addr}')" = "$EIP_NET.1" ]
	[ "$(echo "$output" | json '{eip_set}[0]{bandwidth}')" = 2 ]
	# quota 2: one more fits, two more do not
	[ "$(qc AllocateEips zone=pek3a bandwidth=1 count=2 | ret_code)" = 2500 ]
	eip2=$(qc AllocateEips zone=pek3a bandwidth=1 | json '{eips}[0]')
	[ "$(qc DescribeEips zone=pek3a "eips.1=$eip2" | json '{eip_set}[0]{eip_addr}')" = "$EIP_NET.2" ]
	# to an instance; an associated EIP cannot be released
	id=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p | json '{instances}[0]')
	[ "$(qc AssociateEip zone=pek3a eip="$eip" instance=i-nosuch1 | ret_code)" = 2100 ]
	run qc AssociateEip zone=pek3a eip="$eip" instance="$id"
	[ "$(echo "$output" | ret_code)" = 0 ]
	job=$(echo "$output" | json '{job_id}')
	wait_for 10 job_is "$job" successful
	run qc DescribeEips zone=pek3a instance_id="$id"
	[ "$(echo "$output" | json '{total_count}')" = 1 ]
	[ "$(echo "$output" | json '{eip_set}[0]{status}')" = associated ]
	[ "$(echo "$output" | json '{eip_set}[0]{resource}{resource_id}')" = "$id" ]
	[ "$(qc AssociateEip zone=pek3a eip="$eip2" instance="$id" | ret_code)" = 1400 ]
	[ "$(qc ReleaseEips zone=pek3a "eips.1=$eip" | ret_code)" = 1400 ]
	[ "$(qc DissociateEips zone=pek3a "eips.1=$eip" | ret_code)" = 0 ]
	[ "$(qc DescribeEips zone=pek3a "eips.1=$eip" | json '{eip_set}[0]{status}')" = available ]
	[ "$(qc ReleaseEips zone=pek3a "eips.1=$eip" | ret_code)" = 0 ]
	# released: gone from the default listing, its address free again, quota freed
	[ "$(qc DescribeEips zone=pek3a | json '{total_count}')" = 1 ]
	[ "$(qc DescribeEips zone=pek3a status.1=released | json '{total_count}')" = 1 ]
	eip3=$(qc AllocateEips zone=pek3a bandwidth=1 | json '{eips}[0]')
	[ "$(qc DescribeEips zone=pek3a "eips.1=$eip3" | json '{eip_set}[0]{eip_addr}')" = "$EIP_NET.1" ]
}

@test "fake-qingcloud lb: load balancer states, listeners, backends and is_applied (no netns)" {
	pick_networks
	fq_start --job-ms 300 --pending-ms 0 --eip-range "$EIP_CIDR"
	vx=$(qc CreateVxnets zone=pek3a vxnet_name=t | json '{vxnets}[0]')
	rt=$(qc CreateRouters zone=pek3a router_name=r | json '{routers}[0]')
	# a VxNet not joined to a router has no addresses: refused
	[ "$(qc CreateLoadBalancer zone=pek3a vxnet="$vx" | ret_code)" = 1400 ]
	[ "$(qc CreateLoadBalancer zone=pek3a | ret_code)" = 1100 ]
	qc JoinRouter zone=pek3a vxnet="$vx" router="$rt" ip_network="$VX_CIDR" >/dev/null
	run qc CreateLoadBalancer zone=pek3a vxnet="$vx" loadbalancer_name=lb1
	[ "$(echo "$output" | ret_code)" = 0 ]
	lb=$(echo "$output" | json '{loadbalancer_id}')
	job=$(echo "$output" | json '{job_id}')
	[[ "$lb" == lb-* ]]
	# pending and creating until its job ends (300 ms: a loaded machine
	# may read it only after; then it is active and its job done)
	lb_pending_or_done "$lb" "$job"
	wait_for 10 job_is "$job" successful
	[ "$(lb_field "$lb" '{status}')" = active ]
	[ "$(lb_field "$lb" '{private_ips}[0]')" = "$VX_NET.2" ]
	# its VxNet cannot leave the router while it is there
	[ "$(qc LeaveRouter zone=pek3a router="$rt" vxnets.1="$vx" | ret_code)" = 1400 ]
	[ "$(lb_field "$lb" '{is_applied}')" = 1 ]
	# listener fields are checked and named
	run qc AddLoadBalancerListeners zone=pek3a loadbalancer="$lb" listeners.1.listener_port=8080 \
		listeners.1.listener_protocol=http listeners.1.backend_protocol=http \
		'listeners.1.healthy_check_method=http|/a b'
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *listeners.1.healthy_check_method* ]]
	run qc AddLoadBalancerListeners zone=pek3a loadbalancer="$lb" listeners.1.listener_port=8080 \
		listeners.1.listener_protocol=http listeners.1.backend_protocol=http \
		'listeners.1.healthy_check_option=1|5|2|5'
	[ "$(echo "$output" | ret_code)" = 1100 ]
	[[ "$(echo "$output" | json '{message}')" == *listeners.1.healthy_check_option* ]]
	run qc AddLoadBalancerListeners zone=pek3a loadbalancer="$lb" listeners.1.listener_port=8080 \
		listeners.1.listener_protocol=http listeners.1.backend_protocol=http \
		'listeners.1.healthy_check_method=http|/healthz'
	[ "$(echo "$output" | ret_code)" = 0 ]
	lbl=$(echo "$output" | json '{loadbalancer_listeners}[0]')
	[ "$(lb_field "$lb" '{is_applied}')" = 0 ]
	id=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p vxnets.1="$vx" | json '{instances}[0]')
	[ "$(qc AddLoadBalancerBackends zone=pek3a loadbalancer_listener="$lbl" \
		backends.1.resource_id=i-nosuch1 backends.1.port=80 | ret_code)" = 2100 ]
	run qc AddLoadBalancerBackends zone=pek3a loadbalancer_listener="$lbl" \
		backends.1.resource_id="$id" backends.1.port=80 backends.1.weight=3
	[ "$(echo "$output" | ret_code)" = 0 ]
	lbb=$(echo "$output" | json '{loadbalancer_backends}[0]')
	run qc DescribeLoadBalancerBackends zone=pek3a loadbalancer="$lb"
	[ "$(echo "$output" | json '{total_count}')" = 1 ]
	[ "$(echo "$output" | json '{loadbalancer_backend_set}[0]{weight}')" = 3 ]
	[ "$(echo "$output" | json '{loadbalancer_backend_set}[0]{resource_id}')" = "$id" ]
	run qc DescribeLoadBalancers zone=pek3a "loadbalancers.1=$lb" verbose=1
	[ "$(echo "$output" | json '{loadbalancer_set}[0]{listeners}[0]{listener_port}')" = 8080 ]
	[ "$(echo "$output" | json '{loadbalancer_set}[0]{listeners}[0]{healthy_check_option}')" = '10|5|2|5' ]
	run qc UpdateLoadBalancers zone=pek3a "loadbalancers.1=$lb"
	[ "$(echo "$output" | ret_code)" = 0 ]
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(lb_field "$lb" '{is_applied}')" = 1 ]
	[ "$(qc ModifyLoadBalancerBackendAttributes zone=pek3a loadbalancer_backend="$lbb" \
		disabled=2 | ret_code)" = 1100 ]
	[ "$(qc ModifyLoadBalancerBackendAttributes zone=pek3a loadbalancer_backend="$lbb" \
		disabled=1 | ret_code)" = 0 ]
	[ "$(lb_field "$lb" '{is_applied}')" = 0 ]
	# the LB's address is taken: the next instance gets the one after
	id2=$(qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p vxnets.1="$vx" | json '{instances}[0]')
	[ "$(qc DescribeInstances zone=pek3a instances.1="$id2" | json '{instance_set}[0]{vxnets}[0]{private_ip}')" = "$VX_NET.4" ]
	# deleting listeners takes their backends; deleting the LB ends in "deleted"
	[ "$(qc DeleteLoadBalancerListeners zone=pek3a "loadbalancer_listeners.1=$lbl" | ret_code)" = 0 ]
	[ "$(qc DescribeLoadBalancerBackends zone=pek3a loadbalancer="$lb" | json '{total_count}')" = 0 ]
	run qc DeleteLoadBalancers zone=pek3a "loadbalancers.1=$lb"
	[ "$(echo "$output" | ret_code)" = 0 ]
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(qc DescribeLoadBalancers zone=pek3a | json '{total_count}')" = 0 ]
	[ "$(qc DescribeLoadBalancers zone=pek3a status.1=deleted | json '{total_count}')" = 1 ]
}

@test "fake-qingcloud lb: traffic flows only after UpdateLoadBalancers/UpdateRouters; SIGTERM leaves nothing" {
	require_root
	command -v haproxy >/dev/null || skip "haproxy not installed"
	pick_networks
	fq_start --instances netns --pending-ms 200 --job-ms 200 --eip-range "$EIP_CIDR"
	vx=$(qc CreateVxnets zone=pek3a vxnet_name=t | json '{vxnets}[0]')
	rt=$(qc CreateRouters zone=pek3a router_name=r | json '{routers}[0]')
	[ "$(qc JoinRouter zone=pek3a vxnet="$vx" router="$rt" ip_network="$VX_CIDR" | ret_code)" = 0 ]
	# each instance answers HTTP on :80 with its hostname (= its instance id)
	script=$(cat <<-'EOF' | base64 -w0
	#!/bin/sh
	exec perl -MIO::Socket::INET -e '$SIG{PIPE} = "IGNORE";
	my $s = IO::Socket::INET->new(LocalPort => 80, Listen => 16, ReuseAddr => 1) or die;
	my $h = `hostname`; chomp $h;
	while (my $c = $s->accept) {
		while (my $l = <$c>) { last if $l =~ /^\r?$/ }
		print $c "HTTP/1.0 200 OK\r\nContent-Length: " . (length($h) + 1) . "\r\n\r\n$h\n";
		close $c;
	}'
	EOF
	)
	run qc RunInstances zone=pek3a image_id=img1 instance_type=c1m1 login_mode=passwd \
		login_passwd=p vxnets.1="$vx" userdata_type=exec userdata_value="$script" count=2
	[ "$(echo "$output" | ret_code)" = 0 ]
	a=$(echo "$output" | json '{instances}[0]')
	b=$(echo "$output" | json '{instances}[1]')
	wait_for 30 curl -sf --max-time 2 -o /dev/null "http://$VX_NET.2/"
	wait_for 30 curl -sf --max-time 2 -o /dev/null "http://$VX_NET.3/"
	ip_a=$(qc DescribeInstances zone=pek3a instances.1="$a" | json '{instance_set}[0]{vxnets}[0]{private_ip}')

	# a private load balancer in the VxNet: 8080 → both instances' :80
	run qc CreateLoadBalancer zone=pek3a vxnet="$vx"
	lb=$(echo "$output" | json '{loadbalancer_id}')
	wait_for 10 lb_is "$lb" active
	lbip=$(lb_field "$lb" '{private_ips}[0]')
	[ "$lbip" = "$VX_NET.4" ]
	lbl=$(qc AddLoadBalancerListeners zone=pek3a loadbalancer="$lb" listeners.1.listener_port=8080 \
		listeners.1.listener_protocol=http listeners.1.backend_protocol=http \
		'listeners.1.healthy_check_method=http|/' | json '{loadbalancer_listeners}[0]')
	run qc AddLoadBalancerBackends zone=pek3a loadbalancer_listener="$lbl" \
		backends.1.resource_id="$a" backends.1.port=80 backends.1.weight=1 \
		backends.2.resource_id="$b" backends.2.port=80 backends.2.weight=1
	[ "$(echo "$output" | ret_code)" = 0 ]
	lbb_a=$(echo "$output" | json '{loadbalancer_backends}[0]')
	# added, not applied: nothing listens
	[ "$(lb_field "$lb" '{is_applied}')" = 0 ]
	refute curl -sf --max-time 2 "http://$lbip:8080/"
	[ -z "$(fq_haproxies)" ]
	run qc UpdateLoadBalancers zone=pek3a "loadbalancers.1=$lb"
	[ "$(echo "$output" | ret_code)" = 0 ]
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(lb_field "$lb" '{is_applied}')" = 1 ]
	# both served (HAProxy's first checks may still be under way on a
	# loaded machine: waited for, never timed)
	wait_for 20 both_served "http://$lbip:8080/" "$a" "$b"
	# the instances reach it too (it is on their VxNet)
	[ "$(ip netns exec "$FQ_PREFIX-$a" curl -s --max-time 3 "http://$lbip:8080/" | grep -c .)" = 1 ]
	wait_for 20 backend_status_is "$lb" 0 up
	wait_for 20 backend_status_is "$lb" 1 up

	# a backend disabled: still served until the update, then out of rotation
	[ "$(qc ModifyLoadBalancerBackendAttributes zone=pek3a loadbalancer_backend="$lbb_a" \
		disabled=1 | ret_code)" = 0 ]
	hits "http://$lbip:8080/" 6 | grep -qx "$a"
	run qc UpdateLoadBalancers zone=pek3a "loadbalancers.1=$lb"
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	wait_for 20 only_served "http://$lbip:8080/" "$b"
	[ "$(qc DescribeLoadBalancerBackends zone=pek3a "loadbalancer_backends.1=$lbb_a" | json '{loadbalancer_backend_set}[0]{status}')" = down ]

	# a public load balancer on an EIP (TCP listener)
	eip=$(qc AllocateEips zone=pek3a bandwidth=1 | json '{eips}[0]')
	eip_addr=$(qc DescribeEips zone=pek3a "eips.1=$eip" | json '{eip_set}[0]{eip_addr}')
	lb2=$(qc CreateLoadBalancer zone=pek3a "eips.1=$eip" | json '{loadbalancer_id}')
	[ "$(qc DescribeEips zone=pek3a "eips.1=$eip" | json '{eip_set}[0]{resource}{resource_id}')" = "$lb2" ]
	wait_for 10 lb_is "$lb2" active
	lbl2=$(qc AddLoadBalancerListeners zone=pek3a loadbalancer="$lb2" listeners.1.listener_port=8080 \
		listeners.1.listener_protocol=tcp listeners.1.backend_protocol=tcp | json '{loadbalancer_listeners}[0]')
	qc AddLoadBalancerBackends zone=pek3a loadbalancer_listener="$lbl2" \
		backends.1.resource_id="$b" backends.1.port=80 >/dev/null
	refute curl -sf --max-time 2 "http://$eip_addr:8080/"
	run qc UpdateLoadBalancers zone=pek3a "loadbalancers.1=$lb2"
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(curl -s --max-time 3 "http://$eip_addr:8080/")" = "$b" ]
	[ "$(lb_field "$lb2" '{eips}[0]{eip_addr}')" = "$eip_addr" ]

	# router port forwarding: EIP2:8080 → instance a:80, only after UpdateRouters
	eip2=$(qc AllocateEips zone=pek3a bandwidth=1 | json '{eips}[0]')
	eip2_addr=$(qc DescribeEips zone=pek3a "eips.1=$eip2" | json '{eip_set}[0]{eip_addr}')
	[ "$(qc ModifyRouterAttributes zone=pek3a router="$rt" eip="$eip2" | ret_code)" = 0 ]
	[ "$(qc DescribeRouters zone=pek3a "routers.1=$rt" | json '{router_set}[0]{eip}{eip_addr}')" = "$eip2_addr" ]
	[ "$(qc AddRouterStatics zone=pek3a router="$rt" statics.1.static_type=1 \
		statics.1.val1=8080 statics.1.val2=bogus statics.1.val3=80 | ret_code)" = 1100 ]
	run qc AddRouterStatics zone=pek3a router="$rt" statics.1.static_type=1 \
		statics.1.val1=8080 statics.1.val2="$ip_a" statics.1.val3=80 statics.1.val4=tcp
	[ "$(echo "$output" | ret_code)" = 0 ]
	rs=$(echo "$output" | json '{router_statics}[0]')
	run qc DescribeRouterStatics zone=pek3a router="$rt"
	[ "$(echo "$output" | json '{router_static_set}[0]{router_static_id}')" = "$rs" ]
	[ "$(echo "$output" | json '{router_static_set}[0]{val2}')" = "$ip_a" ]
	[ "$(qc DescribeRouters zone=pek3a "routers.1=$rt" | json '{router_set}[0]{is_applied}')" = 0 ]
	refute curl -sf --max-time 2 "http://$eip2_addr:8080/"
	run qc UpdateRouters zone=pek3a "routers.1=$rt"
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(curl -s --max-time 3 "http://$eip2_addr:8080/")" = "$a" ]
	[ "$(qc DescribeRouters zone=pek3a "routers.1=$rt" | json '{router_set}[0]{is_applied}')" = 1 ]
	# deleting the rule and updating stops the forward
	[ "$(qc DeleteRouterStatics zone=pek3a "router_statics.1=$rs" | ret_code)" = 0 ]
	run qc UpdateRouters zone=pek3a "routers.1=$rt"
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	refute curl -sf --max-time 2 "http://$eip2_addr:8080/"
	refute bash -c "ip -o -4 addr show | grep -q ' $eip2_addr/'"

	# a restarted fake forwards again what was applied (instances reboot: wait for them)
	fq_stop
	[ "$(fq_leftovers)" = 0 ]
	fq_start --instances netns --pending-ms 200 --job-ms 200 --eip-range "$EIP_CIDR"
	wait_for 30 curl -sf --max-time 2 -o /dev/null "http://$VX_NET.3/"
	[ "$(curl -s --max-time 3 "http://$lbip:8080/")" = "$b" ]
	[ "$(curl -s --max-time 3 "http://$eip_addr:8080/")" = "$b" ]

	# DeleteLoadBalancers: its haproxy and its EIP address go; the EIP is available again
	[ "$(fq_haproxies | grep -c .)" = 2 ]
	run qc DeleteLoadBalancers zone=pek3a "loadbalancers.1=$lb2"
	wait_for 10 job_is "$(echo "$output" | json '{job_id}')" successful
	[ "$(fq_haproxies | grep -c .)" = 1 ]
	refute bash -c "ip -o -4 addr show | grep -q ' $eip_addr/'"
	[ "$(qc DescribeEips zone=pek3a "eips.1=$eip" | json '{eip_set}[0]{status}')" = available ]

	# SIGTERM: no haproxy, address, namespace or link of this fake is left
	fq_stop
	[ "$(fq_leftovers)" = 0 ]
}
