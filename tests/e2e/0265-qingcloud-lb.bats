#!/usr/bin/env bats
# The qingcloud load balancer driver (issue 14, lb-qingcloud.c) on the fake
# QingCloud (tests/fake-qingcloud, --instances netns): a herd LB on a
# qingcloud network becomes a QingCloud load balancer named
# herd-<instance>-<lb> in the network's VxNet with one listener, shown with
# its address by `herd lb show`; `eip: auto` allocates an EIP named after the
# LB and deleting the LB releases it; `eip: eip-...` uses that EIP and never
# releases it. Members are added (AddLoadBalancerBackends, then
# UpdateLoadBalancers), traffic flows, and a scale-in drains the leaving
# backend: disabled and applied first (new connections go to the other
# member, a TCP connection it holds goes on), deleted once the LB's
# drain_timeout is up. What each case checks is the fake's own view
# (DescribeLoadBalancers / DescribeEips) and its call log.
#
# The hosts are real (--instances netns): herd's bootstrap in their user
# data fetches the agent from the server at their VxNet's gateway (the
# router's manager_ip on the fake's bridge; the server listens on all
# addresses and the account's server_url points there) and the web.sh init
# script serves their hostname on 8080. Needs root (like 0260).

load lib

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
QC_CALL=$BATS_TEST_DIRNAME/../fake-qingcloud/qc-call.pl
KEY_ID=QYLBTESTKEY

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HERD_PORT=$(free_port)
	# instances reach the server at their VxNet's gateway (the router's
	# manager_ip, on the fake's bridge): the server listens on all addresses,
	# in plain HTTP as before TLS (--tls never; 0430-tls tests HTTPS)
	server_start --listen "0.0.0.0:$HERD_PORT" --tls never
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	CIDR=$(random_cidr)
	GW=${CIDR%.0/24}.1
	EIPNET="198.19.$((RANDOM % 256)).0/24"
	while [ "$EIPNET" = "$CIDR" ]; do EIPNET="198.19.$((RANDOM % 256)).0/24"; done
	FQ_DIR=$(mktemp -d "$BATS_FILE_TMPDIR/fqlb.XXXXXX")
	umask 077
	printf 'QCLB-%s%s\n' "$RANDOM" "$RANDOM" >"$FQ_DIR/secret"
	umask 022
	FQ_PORT=$(free_port)
	FQ_URL="http://127.0.0.1:$FQ_PORT/iaas/"
	"$FAKE" --listen "127.0.0.1:$FQ_PORT" --state-dir "$FQ_DIR/state" --access-key-id "$KEY_ID" \
		--secret-file "$FQ_DIR/secret" --zone pek3a --instances netns --pending-ms 500 \
		--job-ms 200 --eip-range "$EIPNET" --call-log "$FQ_DIR/calls.log" >/dev/null 2>>"$FQ_DIR/fake.log" &
	echo $! >"$FQ_DIR/fake.pid"
	export INST CIDR GW FQ_DIR FQ_URL
	wait_for 10 curl -s -o /dev/null "$FQ_URL"
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
	if [ -n "${FQ_DIR:-}" ] && [ -f "$FQ_DIR/fake.pid" ]; then
		local pid
		pid=$(cat "$FQ_DIR/fake.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	[ -z "${FQ_DIR:-}" ] || rm -rf "$FQ_DIR"
}

setup() {
	require_root
	[ -x "$FAKE" ] || skip "fake QingCloud not built ($FAKE)"
	HOLD_PID=
}

teardown() {
	if [ -n "${HOLD_PID:-}" ]; then
		kill "$HOLD_PID" 2>/dev/null || true
	fi
}

qc() {
	QC_SECRET_FILE=$FQ_DIR/secret perl "$QC_CALL" "$FQ_URL" "$KEY_ID" "$@"
}

# lb_field NAME PERL-EXPR: of the live QingCloud LB named herd-<inst>-NAME.
lb_field() {
	qc DescribeLoadBalancers zone=pek3a "search_word=herd-$INST-$1" | perl -MJSON::PP -e '
		my ($name, $expr) = @ARGV;
		my $d = decode_json(join "", <STDIN>);
		for my $l (@{$d->{loadbalancer_set}}) {
			next unless $l->{loadbalancer_name} eq $name;
			my $v = eval $expr; die $@ if $@; print "$v\n"; exit 0 }
		exit 1' "herd-$INST-$1" "$2"
}

# eip_status NAME: the status of the EIP named NAME, "none" if none.
eip_status() {
	qc DescribeEips zone=pek3a "search_word=$1" status.1=pending status.2=available \
		status.3=associated status.4=released | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for (@{$d->{eip_set}}) { if ($_->{eip_name} eq $ARGV[0]) { print "$_->{status}\n"; exit } }
		print "none\n"' "$1"
}

# call_index ACTION [PARAM=VALUE]: the line number of the first call of
# ACTION (with that param) in the fake's call log, or nothing.
call_index() {
	perl -MJSON::PP -ne '
		BEGIN { ($act, $kv) = splice @ARGV, 0, 2 }
		my $c = decode_json($_);
		next unless $c->{action} eq $act;
		if ($kv ne "") { my ($k, $v) = split /=/, $kv, 2; next unless ($c->{params}{$k} // "") eq $v }
		print "$.\n"; exit' "$1" "${2-}" "$FQ_DIR/calls.log"
}

# shows LB TEXT: `herd lb show LB` contains TEXT.
shows() {
	herd lb show "$1" | grep -qF "$2"
}

has_listener() {
	qc DescribeLoadBalancerListeners zone=pek3a "loadbalancer=$1" | grep -qE '"total_count": *[1-9]'
}

eip_is() {
	[ "$(eip_status "$1")" = "$2" ]
}

blueprint() {
	cat >"$BATS_FILE_TMPDIR/qclb.yaml" <<YAML
accounts:
  - name: qlb
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
    server_url: http://$GW:$HERD_PORT
networks:
  - name: qlbnet
    account: qlb
    cidr: $CIDR
load_balancers:
  - name: web
    network: qlbnet
    listen: 0.0.0.0:8080
    backend_port: 8080
    mode: http
    health_check:
      type: http
      path: /
      interval: 2s
    drain_timeout: 15s
scripts:
  - name: web.sh
    file: scripts/web.sh
templates:
  - name: qlbt
    account: qlb
    network: qlbnet
    image: img-lb
    instance_type: c1m1
    init: [web.sh]
    load_balancer: web
clusters:
  - name: qlb
    groups:
      - name: web
        template: qlbt
        size: 2
        max: 3
YAML
	mkdir -p "$BATS_FILE_TMPDIR/scripts"
	cp "$BATS_TEST_DIRNAME/fixtures/lb/scripts/web.sh" "$BATS_FILE_TMPDIR/scripts/"
}

# ready_ips: the private addresses of the group's ready hosts.
ready_ips() {
	herd host ls --cluster qlb --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{private_ip}\n" for grep { $_->{state} eq "ready" } @{$d->{items}}'
}

two_ready() { [ "$(ready_ips | wc -l)" -eq 2 ]; }

# backends: "name disabled status" of LB web's backends at QingCloud.
backends() {
	qc DescribeLoadBalancerBackends zone=pek3a "loadbalancer=$(lb_field web '$l->{loadbalancer_id}')" |
		perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{loadbalancer_backend_name} $_->{disabled} $_->{status}\n"
			for @{$d->{loadbalancer_backend_set}}'
}

backends_are() { [ "$(backends | grep -c .)" -eq "$1" ]; }

lb_gone() { ! lb_field "$1" 1 >/dev/null 2>&1; }

has_call() { [ -n "$(call_index "$1")" ]; }

two_up() { [ "$(backends | grep -c ' 0 up$')" -eq 2 ]; }

# call_after LINE ACTION: the line number of the first call of ACTION after
# line LINE of the call log, or nothing.
call_after() {
	perl -MJSON::PP -ne '
		BEGIN { ($after, $act) = splice @ARGV, 0, 2 }
		next if $. <= $after;
		my $c = decode_json($_);
		if ($c->{action} eq $act) { print "$.\n"; exit }' "$1" "$2" "$FQ_DIR/calls.log"
}

@test "eip: a value that is neither auto nor an EIP id is refused naming the field" {
	run http POST /v1/lbs "$HERD_TOKEN" \
		'{"name":"bad","network":"x","listen":"0.0.0.0:80","backend_port":80,"eip":"1.2.3.4"}'
	[[ "$output" == "400 "* ]]
	[[ "$output" == *'"eip"'* ]]
}

@test "a private LB: made in the network's VxNet with a listener, applied, its address shown" {
	blueprint
	herd apply -f "$BATS_FILE_TMPDIR/qclb.yaml" >/dev/null
	wait_for 60 lb_field web '$l->{status} eq "active" ? 1 : die'
	id=$(lb_field web '$l->{loadbalancer_id}')
	wait_for 60 has_listener "$id"
	wait_for 60 lb_field web '$l->{is_applied} ? 1 : die'
	vx=$(lb_field web '$l->{vxnet_id}')
	[ -n "$vx" ]
	# the VxNet is the one herd made for the network
	qc DescribeVxnets zone=pek3a "vxnets.1=$vx" | grep -qE '"vxnet_name": *"herd-'
	out=$(qc DescribeLoadBalancerListeners zone=pek3a "loadbalancer=$id")
	echo "$out" | grep -qE '"listener_port": *8080'
	echo "$out" | grep -qF '"healthy_check_method":"http|/"'
	echo "$out" | grep -qE '"listener_protocol": *"http"'
	# the listener was added before the update that applied it
	a=$(call_index AddLoadBalancerListeners)
	u=$(call_index UpdateLoadBalancers loadbalancers.1="$id")
	[ -n "$a" ] && [ -n "$u" ] && [ "$a" -lt "$u" ]
	addr=$(lb_field web '$l->{private_ips}[0]')
	[ -n "$addr" ]
	wait_for 30 shows web "address: $addr"
	run herd lb show web
	[[ "$output" == *"engine: qingcloud"* ]]
}

@test "ensure is idempotent: passes after the first make no second load balancer" {
	sleep 3   # a few lb-sync passes
	n=$(grep -c '"action":"CreateLoadBalancer"' "$FQ_DIR/calls.log")
	[ "$n" -eq 1 ]
}

@test "members: the ready hosts are added by instance, then applied; traffic flows through the LB's address" {
	wait_for 180 two_ready
	wait_for 60 two_up
	a=$(call_index AddLoadBalancerBackends)
	[ -n "$a" ]
	u=$(call_after "$a" UpdateLoadBalancers)
	[ -n "$u" ]
	# backends are named by host id, attached by the instance's id
	grep '"action":"AddLoadBalancerBackends"' "$FQ_DIR/calls.log" | grep -q '"backends.1.resource_id":"i-'
	addr=$(lb_field web '$l->{private_ips}[0]')
	seen=
	for _ in $(seq 1 20); do
		seen="$seen $(curl -s --max-time 5 "http://$addr:8080/")"
	done
	# both hosts answered (hostname = instance id): two distinct names
	[ "$(echo $seen | tr ' ' '\n' | sort -u | grep -c .)" -eq 2 ]
}

@test "herd lb show: the address and QingCloud's own backend status" {
	addr=$(lb_field web '$l->{private_ips}[0]')
	wait_for 30 shows web "address: $addr"
	run herd lb show web --json
	[ "$(echo "$output" | json_count '{members}')" -eq 2 ]
	[ "$(echo "$output" | json '{members}[0]{status}')" = up ]
	[ "$(echo "$output" | json '{members}[1]{status}')" = up ]
}

# members: "name disabled status resource_id" of LB web's backends.
members() {
	qc DescribeLoadBalancerBackends zone=pek3a "loadbalancer=$(lb_field web '$l->{loadbalancer_id}')" |
		perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{loadbalancer_backend_name} $_->{disabled} $_->{status} $_->{resource_id}\n"
			for @{$d->{loadbalancer_backend_set}}'
}

# one_disabled_applied: one member disabled and out of haproxy's rotation
# (the update applied: haproxy shows it in maintenance, `down`), the other up.
one_disabled_applied() {
	local m
	m=$(members)
	[ "$(grep -c ' 1 down ' <<<"$m")" -eq 1 ] && [ "$(grep -c ' 0 up ' <<<"$m")" -eq 1 ]
}

# detach_reason: the reason of the cluster's lb_detach activity, if any.
detach_reason() {
	herd activity ls --cluster qlb --json --limit 500 | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{reason}\n" for grep { $_->{kind} eq "lb_detach" } @{$d->{items}}'
}

# name_of INSTANCE: the name of the herd host on that instance.
name_of() {
	herd host ls --cluster qlb --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{name}\n" for grep { $_->{instance_id} eq $ARGV[0] } @{$d->{items}}' "$1"
}

# hold ADDR PORT N DIR: opens N TCP connections to ADDR:PORT and keeps them
# idle (the LB connects each to a member at once: TCP mode) until DIR/go
# exists (at most 150 s), then sends one HTTP request on each and writes
# "ok <body>" or "fail <why>" per connection to DIR/held; DIR/open once all
# are open.
hold() {
	python3 - "$@" <<'PY'
import os, socket, sys, time
addr, port, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = []
for _ in range(n):
    conns.append(socket.create_connection((addr, port), timeout=5))
    time.sleep(0.1)
open(os.path.join(d, "open"), "w").close()
end = time.time() + 150
while not os.path.exists(os.path.join(d, "go")) and time.time() < end:
    time.sleep(0.1)
out = []
for c in conns:
    try:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            b = c.recv(4096)
            if not b:
                break
            data += b
        body = data.split(b"\r\n\r\n", 1)[1].decode().strip() if b"\r\n\r\n" in data else ""
        out.append(("ok " + body) if data.startswith(b"HTTP/1.0 200") and body else "fail " + repr(data[:80]))
    except Exception as e:
        out.append("fail %s" % e)
with open(os.path.join(d, "held.tmp"), "w") as f:
    f.write("\n".join(out) + "\n")
os.rename(os.path.join(d, "held.tmp"), os.path.join(d, "held"))
PY
}

@test "scale-in drains: the leaving backend is disabled and applied first, its TCP connections go on, new ones go to the other; deleted after drain_timeout" {
	local addr d victim other m u del n r
	# a TCP listener: a connection is tied to one member from its start
	sed 's/^    mode: http$/    mode: tcp/' "$BATS_FILE_TMPDIR/qclb.yaml" >"$BATS_FILE_TMPDIR/qclb-tcp.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/qclb-tcp.yaml" >/dev/null
	tcp_listener() {
		qc DescribeLoadBalancerListeners zone=pek3a "loadbalancer=$(lb_field web '$l->{loadbalancer_id}')" |
			grep -qE '"listener_protocol": *"tcp"'
	}
	wait_for 60 tcp_listener
	wait_for 120 two_up
	addr=$(lb_field web '$l->{private_ips}[0]')
	d=$(mktemp -d "$BATS_FILE_TMPDIR/hold.XXXXXX")
	# six idle connections, round robin: three to each member
	hold "$addr" 8080 6 "$d" 2>"$d/err" &
	HOLD_PID=$!
	wait_for 30 test -e "$d/open"
	herd group scale qlb/web 1 >/dev/null
	wait_for 60 one_disabled_applied
	# the hosts' names (web.sh serves the hostname: herd's host name)
	victim=$(name_of "$(members | awk '$2 == 1 { print $4 }')")
	other=$(name_of "$(members | awk '$2 == 0 { print $4 }')")
	echo "draining $victim, keeping $other"
	[ -n "$victim" ] && [ -n "$other" ]
	# new connections: only the member still in rotation
	for _ in $(seq 1 10); do
		r=$(curl -s --max-time 5 "http://$addr:8080/") || true
		echo "new connection: '$r'"
		[ "$r" = "$other" ]
	done
	# the connections it held go on: each answers, some from the draining member
	touch "$d/go"
	wait_for 30 test -e "$d/held"
	cat "$d/held" "$d/err"
	[ "$(grep -c '^ok ' "$d/held")" -eq 6 ]
	n=$(grep -cx "ok $victim" "$d/held")
	echo "held connections answered by the draining member: $n"
	[ "$n" -ge 1 ]
	# ... while it was still a backend: not deleted before its drain_timeout
	! has_call DeleteLoadBalancerBackends
	# then deleted: disabled=1 and applied, then the delete and applied
	wait_for 120 has_call DeleteLoadBalancerBackends
	m=$(call_index ModifyLoadBalancerBackendAttributes disabled=1)
	u=$(call_after "$m" UpdateLoadBalancers)
	del=$(call_index DeleteLoadBalancerBackends)
	[ -n "$m" ] && [ -n "$u" ] && [ -n "$del" ]
	[ "$m" -lt "$u" ] && [ "$u" -lt "$del" ]
	wait_for 30 eval '[ -n "$(call_after "$del" UpdateLoadBalancers)" ]'
	wait_for 60 backends_are 1
	# herd says why it removed it: the drain time (15 s) was up
	wait_for 30 eval '[ -n "$(detach_reason)" ]'
	r=$(detach_reason)
	echo "$r"
	[[ "$r" =~ (after|in)\ ([0-9]+)\ ms ]]
	[ "${BASH_REMATCH[2]}" -ge 15000 ]
}

@test "eip: auto allocates an EIP named after the LB; deleting the LB deletes it and releases the EIP" {
	cat >"$BATS_FILE_TMPDIR/pub.yaml" <<YAML
load_balancers:
  - name: pub
    network: qlbnet
    listen: 0.0.0.0:8081
    backend_port: 80
    eip: auto
YAML
	herd apply -f "$BATS_FILE_TMPDIR/pub.yaml" >/dev/null
	wait_for 60 lb_field pub '$l->{status} eq "active" ? 1 : die'
	wait_for 60 has_listener "$(lb_field pub '$l->{loadbalancer_id}')"
	wait_for 60 lb_field pub '$l->{is_applied} ? 1 : die'
	ip=$(lb_field pub '$l->{eips}[0]{eip_addr}')
	[ -n "$ip" ]
	[ "$(eip_status "herd-$INST-pub")" = associated ]
	wait_for 30 shows pub "address: $ip"
	herd lb rm pub >/dev/null
	wait_for 60 eip_is "herd-$INST-pub" released
	[ "$(eip_status "herd-$INST-pub")" = released ]
	run lb_field pub 1
	[ "$status" -ne 0 ]
}

@test "eip: eip-... uses that EIP; deleting the LB leaves it allocated" {
	eip=$(qc AllocateEips zone=pek3a bandwidth=1 "eip_name=qclb-own-$RANDOM" count=1 | json '{eips}[0]')
	[[ "$eip" == eip-* ]]
	cat >"$BATS_FILE_TMPDIR/own.yaml" <<YAML
load_balancers:
  - name: own
    network: qlbnet
    listen: 0.0.0.0:8082
    backend_port: 80
    eip: $eip
YAML
	herd apply -f "$BATS_FILE_TMPDIR/own.yaml" >/dev/null
	wait_for 60 lb_field own '$l->{status} eq "active" ? 1 : die'
	[ "$(lb_field own '$l->{eips}[0]{eip_id}')" = "$eip" ]
	herd lb rm own >/dev/null
	wait_for 60 lb_gone own
	# herd never allocated it, so it is not released
	st=$(qc DescribeEips zone=pek3a "eips.1=$eip" | json '{eip_set}[0]{status}')
	[ "$st" = available ]
	! grep '"action":"ReleaseEips"' "$FQ_DIR/calls.log" | grep -q "\"$eip\""
	qc ReleaseEips zone=pek3a "eips.1=$eip" >/dev/null
}
