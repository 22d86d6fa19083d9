#!/usr/bin/env bats
# qingcloud networks (issue 14) on the fake QingCloud (tests/fake-qingcloud,
# --instances none: no instance boots, so no installer ever runs): a
# network's public endpoint (`eip: auto` on its router, `port_forwards` as
# router statics applied by UpdateRouters) is made when its first host
# launches, changed in the next pass when the blueprint changes it, and
# removed, with the EIP released, when the network is deleted;
# an existing VxNet and router named in the blueprint are used and never
# deleted; the fields are checked with errors naming them; and
# examples/kubernetes-qingcloud applies against the fake. What is checked is
# the fake's own view (Describe* answers and its call log). One server and
# one fake for the file; teardown_file stops both (--teardown removes what
# the server made).

load lib
load qingcloud

KEY_ID=QYNETWORKTESTKEY

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HERD_PORT=$(free_port)
	server_start --advertise-url "http://127.0.0.1:$HERD_PORT"
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	fq_init NETWORK
	fq_start --instances none --pending-ms 3600000 --job-ms 200
	export INST
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -n "${FQ_DIR:-}" ] || return 0
	server_cleanup
	fq_cleanup
}

setup() {
	require_root
	fq_require
}

# net_id NAME: herd's provider id of network NAME (sha256 of instance/name).
net_id() {
	printf '%s/%s' "$INST" "$1" | sha256sum | cut -c1-8
}

# account NAME: the blueprint lines of a qingcloud account on the fake.
account() {
	cat <<YAML
accounts:
  - name: $1
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
YAML
}

# group ACCOUNT NETWORK CLUSTER: a template and a one-host group on NETWORK.
group() {
	cat <<YAML
templates:
  - name: t-$3
    account: $1
    network: $2
    image: img-test
    instance_type: c1m1
clusters:
  - name: $3
    groups:
      - name: g
        template: t-$3
        size: 1
        max_provision_time: 1h
YAML
}

# vxnet_instances VXNET_ID: how many instances the fake has on it.
vxnet_instances() {
	qc DescribeInstances zone=pek3a status.1=pending status.2=running limit=100 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>); my $n = 0;
		for my $i (@{$d->{instance_set}}) { $n++ if grep { $_->{vxnet_id} eq $ARGV[0] } @{$i->{vxnets}} }
		print "$n\n"' "$1"
}

# statics ROUTER: "name val1 val2 val3 val4" of its port forwarding rules.
statics() {
	qc DescribeRouterStatics zone=pek3a router="$1" static_type=1 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{router_static_name} $_->{val1} $_->{val2} $_->{val3} $_->{val4}\n"
			for @{$d->{router_static_set}}'
}

# eip_of NAME [STATUS]: "id status resource_id" of the EIP named NAME.
eip_of() {
	qc DescribeEips zone=pek3a search_word="$1" status.1="${2:-available}" status.2=associated |
		perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{eip_set}}) { next unless $_->{eip_name} eq $ARGV[0];
			print "$_->{eip_id} $_->{status} ", ($_->{resource}{resource_id} // ""), "\n" }' "$1"
}

# vxnet_field VXNET_NAME: "id router" of the VxNet named so ("" if none).
vxnet_field() {
	qc DescribeVxnets zone=pek3a search_word="$1" verbose=1 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{vxnet_set}}) { next unless $_->{vxnet_name} eq $ARGV[0];
			print "$_->{vxnet_id} ", ($_->{router}{router_id} // ""), "\n" }' "$1"
}

# last_line ACTION: the call log's line number of ACTION's last successful call.
last_line() {
	grep -n "\"action\":\"$1\"" "$FQ_DIR/calls.log" | grep '"ret_code":0' | tail -1 | cut -d: -f1
}

@test "eip auto + port forward 8080: the router gets the EIP and the rule, applied by UpdateRouters after AddRouterStatics; a change is applied without a launch; delete removes both and releases the EIP" {
	local bp=$BATS_TEST_TMPDIR/pub.yaml cidr pre nid vx rt to runs
	cidr=$(random_cidr)
	pre=${cidr%.0/24}
	to=$pre.250
	{
		account qn-pub
		cat <<YAML
networks:
  - name: pubnet
    account: qn-pub
    cidr: $cidr
    eip: auto
    port_forwards:
      - {port: 8080, to: $to, to_port: 8080}
      - {port: 2222, to: $to, to_port: 22, protocol: tcp}
YAML
		group qn-pub pubnet pub
	} >"$bp"
	run herd apply -f "$bp"
	echo "$output"
	[ "$status" -eq 0 ]
	nid=$(net_id pubnet)
	has_vxnet() { [ "$(vxnet_field "herd-$nid" | wc -w)" -eq 2 ]; } # made and joined
	wait_for 30 has_vxnet
	read -r vx rt < <(vxnet_field "herd-$nid")
	[ -n "$rt" ]
	has_instance() { [ "$(vxnet_instances "$vx")" -ge 1 ]; }
	wait_for 30 has_instance
	# the router carries the EIP herd allocated under the network's name
	read -r eid est eres < <(eip_of "herd-$nid")
	echo "eip: $eid $est $eres"
	[ "$est" = associated ]
	[ "$eres" = "$rt" ]
	[ "$(qc DescribeRouters zone=pek3a routers.1="$rt" | json '{router_set}[0]{eip}{eip_id}')" = "$eid" ]
	[ "$(qc DescribeRouters zone=pek3a routers.1="$rt" | json '{router_set}[0]{is_applied}')" = 1 ]
	run statics "$rt"
	echo "$output"
	[[ "$output" == *"herd-$nid-8080-tcp 8080 $to 8080 tcp"* ]]
	[[ "$output" == *"herd-$nid-2222-tcp 2222 $to 22 tcp"* ]]
	[ "$(statics "$rt" | grep -c "^herd-$nid-")" -eq 2 ]
	# order: the rules were added, then UpdateRouters applied them
	[ -n "$(last_line AddRouterStatics)" ]
	[ "$(last_line UpdateRouters)" -gt "$(last_line AddRouterStatics)" ]
	# a changed endpoint is applied in the next pass, with no launch: 2222
	# goes, 9090 comes
	runs=$(grep -c '"action":"RunInstances"' "$FQ_DIR/calls.log")
	sed -i -e "s|{port: 2222, to: $to, to_port: 22, protocol: tcp}|{port: 9090, to: $to, to_port: 80}|" "$bp"
	run herd apply -f "$bp"
	echo "$output"
	[ "$status" -eq 0 ]
	changed() {
		statics "$rt" | grep -q "^herd-$nid-9090-tcp 9090 $to 80 tcp" &&
			! statics "$rt" | grep -q "^herd-$nid-2222-"
	}
	said() {
		herd activity ls --json --limit 100 |
			grep -q "network pubnet changed: applied at account qn-pub"
	}
	wait_for 30 changed
	wait_for 30 said
	[ "$(statics "$rt" | grep -c "^herd-$nid-")" -eq 2 ]
	[ "$(grep -c '"action":"RunInstances"' "$FQ_DIR/calls.log")" -eq "$runs" ]
	[ "$(last_line UpdateRouters)" -gt "$(last_line AddRouterStatics)" ]
	# delete: rules gone, EIP dissociated and released, VxNet deleted
	run herd delete -f "$bp" --timeout 2m
	echo "$output"
	[ "$status" -eq 0 ]
	vxnet_gone() { [ -z "$(vxnet_field "herd-$nid")" ]; }
	wait_for 90 vxnet_gone
	[ "$(statics "$rt" | grep -c "^herd-$nid-" || true)" -eq 0 ]
	[ -z "$(eip_of "herd-$nid")" ]
	[ "$(eip_of "herd-$nid" released | awk '{print $2}')" = released ]
	[ "$(qc DescribeRouters zone=pek3a routers.1="$rt" | json '{router_set}[0]{eip}{eip_id}')" = "" ]
	[ "$(last_line ReleaseEips)" -gt "$(last_line DissociateEips)" ]
}

@test "an existing vxnet and router named in the blueprint are used, never created or deleted" {
	local bp=$BATS_TEST_TMPDIR/existing.yaml cidr rt vx nid
	cidr=$(random_cidr)
	rt=$(qc CreateRouters zone=pek3a router_name="mine-$RANDOM" vpc_network=192.168.0.0/16 | json '{routers}[0]')
	vx=$(qc CreateVxnets zone=pek3a vxnet_name="mine-$RANDOM" vxnet_type=1 | json '{vxnets}[0]')
	[[ "$rt" == rtr-* ]] && [[ "$vx" == vxnet-* ]]
	router_active() { [ "$(qc DescribeRouters zone=pek3a routers.1="$rt" | json '{router_set}[0]{status}')" = active ]; }
	wait_for 10 router_active
	{
		account qn-ex
		cat <<YAML
networks:
  - name: exnet
    account: qn-ex
    cidr: $cidr
    vxnet: $vx
    router: $rt
YAML
		group qn-ex exnet ex
	} >"$bp"
	run herd apply -f "$bp"
	echo "$output"
	[ "$status" -eq 0 ]
	has_instance() { [ "$(vxnet_instances "$vx")" -ge 1 ]; }
	wait_for 30 has_instance
	nid=$(net_id exnet)
	# herd made no VxNet of its own for it, and joined the existing one to the router
	[ -z "$(vxnet_field "herd-$nid")" ]
	[ "$(qc DescribeVxnets zone=pek3a vxnets.1="$vx" verbose=1 | json '{vxnet_set}[0]{router}{router_id}')" = "$rt" ]
	run herd delete -f "$bp" --timeout 2m
	echo "$output"
	[ "$status" -eq 0 ]
	no_instance() { [ "$(vxnet_instances "$vx")" -eq 0 ]; }
	wait_for 60 no_instance
	# the network's removal has run (its last step looks for an EIP of
	# its name to release) ...
	removal_ran() { grep '"action":"DescribeEips"' "$FQ_DIR/calls.log" | grep -q "herd-$nid"; }
	wait_for 60 removal_ran
	# ... and both still exist
	[ "$(qc DescribeVxnets zone=pek3a vxnets.1="$vx" | json '{vxnet_set}[0]{vxnet_id}')" = "$vx" ]
	[ "$(qc DescribeRouters zone=pek3a routers.1="$rt" status.1=active | json '{router_set}[0]{router_id}')" = "$rt" ]
	run grep -c "\"action\":\"DeleteVxnets\".*$vx" "$FQ_DIR/calls.log"
	[ "$output" = 0 ]
	run grep -c "\"action\":\"DeleteRouters\"" "$FQ_DIR/calls.log"
	[ "$output" = 0 ]
}

@test "network fields are checked: errors name the field" {
	local cidr=198.18.7.0/24 out
	http POST /v1/accounts "$HERD_TOKEN" \
		"{\"name\":\"qn-val\",\"driver\":\"qingcloud\",\"zone\":\"pek3a\",\"access_key_id\":\"$KEY_ID\",\"secret_file\":\"$FQ_DIR/secret\",\"endpoint\":\"$FQ_URL\"}" | grep -q '^20'
	check() { # check BODY-EXTRA FIELD
		out=$(http POST /v1/networks "$HERD_TOKEN" \
			"{\"name\":\"valnet\",\"account\":\"qn-val\",\"cidr\":\"$cidr\"$1}")
		echo "$out"
		[[ "$out" == 400* ]] && [[ "$out" == *"\"$2\""* ]]
	}
	check ',"vxnet":"net-1"' vxnet
	check ',"router":"vxnet-abc"' router
	check ',"eip":"yes"' eip
	check ',"eip":"auto","port_forwards":{"port":8080}' port_forwards
	check ',"eip":"auto","port_forwards":[{"port":0,"to":"198.18.7.9"}]' 'port_forwards[0].port'
	check ',"eip":"auto","port_forwards":[{"port":80,"to":"10.0.0.9"}]' 'port_forwards[0].to'
	check ',"eip":"auto","port_forwards":[{"port":80,"to":"198.18.7.9","to_port":70000}]' 'port_forwards[0].to_port'
	check ',"eip":"auto","port_forwards":[{"port":80,"to":"198.18.7.9","protocol":"icmp"}]' 'port_forwards[0].protocol'
	check ',"eip":"auto","port_forwards":[{"port":80,"to":"198.18.7.9","from":"x"}]' 'port_forwards[0].from'
	check ',"eip":"auto","port_forwards":[{"port":80,"to":"198.18.7.9"},{"port":80,"to":"198.18.7.8"}]' 'port_forwards[1].port'
	check ',"port_forwards":[{"port":80,"to":"198.18.7.9"}]' eip
	# and a good one is stored as given
	out=$(http POST /v1/networks "$HERD_TOKEN" \
		"{\"name\":\"valnet\",\"account\":\"qn-val\",\"cidr\":\"$cidr\",\"eip\":\"auto\",\"port_forwards\":[{\"port\":8080,\"to\":\"198.18.7.9\"}]}")
	echo "$out"
	[[ "$out" == 20* ]]
	[ "$(herd network show valnet --json | json '{port_forwards}[0]{to}')" = 198.18.7.9 ]
	http DELETE /v1/networks/valnet "$HERD_TOKEN" | grep -q '^20'
	http DELETE /v1/accounts/qn-val "$HERD_TOKEN" | grep -q '^20'
}

@test "examples/kubernetes-qingcloud applies against the fake: VxNet, the 8080 router static, the master's instance (installers never run)" {
	local bp=$BATS_TEST_TMPDIR/k8s.yaml nid vx rt
	EX=$(cd "$BATS_TEST_DIRNAME/../../examples/kubernetes-qingcloud" && pwd)
	export EX KEY_ID FQ_DIR FQ_URL
	# the account pointed at the fake; everything else as published
	perl -pe '
		s/^(\s+zone:) pek3$/$1 pek3a/;
		s/^(\s+access_key_id:) .*/$1 $ENV{KEY_ID}/;
		s/^(\s+secret_file:) .*/$1 $ENV{FQ_DIR}\/secret\n    endpoint: $ENV{FQ_URL}/;
		s/^(\s+file:) scripts\//$1 $ENV{EX}\/scripts\//' \
		"$EX/cluster.yaml" >"$bp"
	grep -q "endpoint: $FQ_URL" "$bp"
	run herd apply -f "$bp"
	echo "$output"
	[ "$status" -eq 0 ]
	nid=$(net_id k8s-vpc)
	has_vxnet() { [ "$(vxnet_field "herd-$nid" | wc -w)" -eq 2 ]; } # made and joined
	wait_for 30 has_vxnet
	read -r vx rt < <(vxnet_field "herd-$nid")
	has_instance() { [ "$(vxnet_instances "$vx")" -ge 1 ]; }
	wait_for 30 has_instance
	has_static() { statics "$rt" | grep -q "^herd-$nid-8080-tcp 8080 198.18.100.250 8080 tcp$"; }
	wait_for 30 has_static
	[ "$(qc DescribeRouters zone=pek3a routers.1="$rt" | json '{router_set}[0]{is_applied}')" = 1 ]
	[ -n "$(eip_of "herd-$nid")" ]
	# one master (the nodes wait for its installer, which never runs here)
	[ "$(vxnet_instances "$vx")" -eq 1 ]
	run herd delete -f "$bp" --timeout 2m
	echo "$output"
	[ "$status" -eq 0 ]
	vxnet_gone() { [ -z "$(vxnet_field "herd-$nid")" ]; }
	wait_for 90 vxnet_gone
	[ -z "$(eip_of "herd-$nid")" ]
}
