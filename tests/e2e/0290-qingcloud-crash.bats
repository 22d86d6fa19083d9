#!/usr/bin/env bats
# kill -9 of the server at every step of a QingCloud launch (issue 14), on
# the fake QingCloud (tests/fake-qingcloud, --instances none: no agent boots,
# so "converged" means the store's side, not readiness: the group has as many
# live hosts as desired, none of them launching or terminating, and the
# fake's own DescribeInstances has each of them exactly once). The steps:
#   a. before RunInstances            prov_launch=hang@2
#   b. RunInstances answered, its job still pending
#                                     qingcloud_run_answered=hang@2 (jobs take 15 s)
#   c. RunInstances answered, its job done (the instance running)
#                                     same point, killed once the fake says running
#   d. the driver returned, the host row not yet updated
#                                     prov_launch_done=hang@2
#   e. RunInstances in flight: the fake ran it, its answer never came back
#                                     fake --delay-action RunInstances:600000
# Each case scales the group by 2 (1 in e) under the failpoint, waits for the
# hang's log line (e: the call in the fake's call log), kill -9s the server
# there, restarts it without failpoints and checks the fake's DescribeInstances
# and call log against the store. The orphan grace (60 s, ORPHAN_GRACE_MS) is
# waited once, in the last test, for every case: a planted orphan is swept,
# and then the fake has nothing of this server's that the store does not know
# as live. One server (restarted by each case), one fake. Needs root for the
# harness's conventions only (no namespaces are made).

load lib
load qingcloud

KEY_ID=QYCRASHSAFETYKEY

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HERD_PORT=$(free_port)
	server_start $(server_args)
	INST=$(curl -sf "$HERD_URL/healthz" | json '{instance}')
	CIDR=$(random_cidr)
	fq_init CRASH
	fq_start_crash
	export INST CIDR
	bp >"$BATS_FILE_TMPDIR/crash.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/crash.yaml" >&2
	wait_for 90 converged 2
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# --teardown terminates the instances through the fake: it must still run
	server_cleanup
	fq_cleanup
}

setup() {
	require_root
	fq_require
	# a test that failed with the server down must not fail the rest
	if ! curl -sf "$HERD_URL/healthz" >/dev/null; then
		server_stop
		server_start $(server_args)
	fi
	if ! curl -s -o /dev/null "$FQ_URL"; then
		fq_stop
		fq_start_crash
	fi
}

# fq_start_crash [OPTION]...: (re)starts the fake (qingcloud.bash) on its
# state dir (its world survives a restart) and port; jobs and booting take
# 15 s.
fq_start_crash() {
	fq_start --instances none --pending-ms 15000 --job-ms 15000 "$@"
}

server_args() {
	echo --advertise-url "http://127.0.0.1:$HERD_PORT"
}

bp() {
	cat <<YAML
accounts:
  - name: crash-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: crashnet
    account: crash-qc
    cidr: $CIDR
templates:
  - name: crasht
    account: crash-qc
    network: crashnet
    image: img-crash
    instance_type: c1m1
clusters:
  - name: crash
    groups:
      - name: g
        template: crasht
        size: 2
        max: 20
        # no agent boots on the fake (--instances none): keep them booting
        max_provision_time: 1h
YAML
}

# store_hosts: "id name state" of the cluster's hosts (not terminated).
store_hosts() {
	herd host ls --cluster crash --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{id} $_->{name} $_->{state}\n" for @{$d->{items}}'
}

# store_live: the ids of hosts the provider should have, sorted.
store_live() {
	store_hosts | awk '$3 != "failed" && $3 != "terminated" {print $1}' | sort
}

# inst_status ID: "status/transition_status" of host ID's instance at the fake.
inst_status() {
	qc DescribeInstances zone=pek3a "search_word=herd-$INST-$1" status.1=pending \
		status.2=running status.3=stopped | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{status}/$_->{transition_status}\n" for @{$d->{instance_set}}'
}

# run_instances [ID]: the ret_code of every RunInstances the fake accepted
# for this server (for host ID only, if given), one line each.
run_instances() {
	PREFIX="herd-$INST-${1:-}" perl -MJSON::PP -ne '
		my $c = decode_json($_);
		next unless $c->{action} eq "RunInstances";
		next unless index($c->{params}{instance_name} // "", $ENV{PREFIX}) == 0;
		print "$c->{ret_code}\n";' "$FQ_DIR/calls.log"
}

# settled N: N live hosts in the store, none waiting for a provider call.
settled() {
	[ "$(store_live | grep -c .)" -eq "$1" ] &&
		! store_hosts | awk '{print $3}' | grep -Eq '^(launching|terminating)$'
}

# same_as_store: the fake has each live host of the store exactly once, and
# no other host of the store (failed, terminating) alive.
same_as_store() {
	local s p
	s=$(store_live)
	p=$(fq_host_ids | grep -F -x -f <(store_hosts | awk '{print $1}') || true)
	[ "$s" = "$p" ]
}

converged() {
	settled "$1" && same_as_store
}

# one_run_per_host: no host id was ever given two successful RunInstances
# (the fake's call log, every case so far)
one_run_per_host() {
	local ok distinct
	ok=$(PREFIX="herd-$INST-" perl -MJSON::PP -ne '
		my $c = decode_json($_);
		next unless $c->{action} eq "RunInstances" && $c->{ret_code} == 0;
		print "$c->{params}{instance_name}\n"
			if index($c->{params}{instance_name} // "", $ENV{PREFIX}) == 0;' "$FQ_DIR/calls.log")
	distinct=$(sort -u <<<"$ok" | grep -c . || true)
	echo "successful RunInstances: $(grep -c . <<<"$ok"), distinct host ids: $distinct"
	[ "$(grep -c . <<<"$ok")" -eq "$distinct" ]
}

# hung POINT: the server's log, since LOG_FROM (bytes: the log is appended
# across restarts), says POINT hangs.
hung() {
	tail -c "+$((LOG_FROM + 1))" "$HERD_DATA/server.log" | grep -q "failpoint '$1': hanging"
}

server_gone() {
	! kill -0 "$1" 2>/dev/null
}

# kill9: the server, as a crash would; waits until it is gone.
kill9() {
	local pid
	pid=$(cat "$HERD_DATA/server.pid")
	kill -9 "$pid"
	wait_for 10 server_gone "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$HERD_DATA/server.pid"
	SERVER_PID=
}

one_launching() {
	[ "$(store_hosts | awk '$3 == "launching"' | grep -c .)" -eq 1 ]
}

# cut_host: the id of the one host the store has mid-launch.
cut_host() {
	local l
	l=$(store_hosts | awk '$3 == "launching" {print $1}')
	[ "$(grep -c . <<<"$l")" -eq 1 ] || { echo "launching: $l" >&2; return 1; }
	echo "$l"
}

# crash_at POINT: restarts the server with POINT=hang@2, scales the group by
# 2 and waits until the second launch hangs there. Sets N (the new size) and
# CUT (the host whose launch hangs).
crash_at() {
	N=$(($(store_live | grep -c .) + 2))
	server_stop
	LOG_FROM=$(stat -c %s "$HERD_DATA/server.log")
	HERD_FAILPOINTS="$1=hang@2" server_start $(server_args)
	run herd group scale crash/g "$N"
	[ "$status" -eq 0 ]
	wait_for 60 hung "$1"
	# launches run in parallel (ctl/launcher.c): the first one may still be
	# in flight beside the hung one; it ends on its own
	wait_for 60 one_launching
	CUT=$(cut_host)
	CUT_NAME=$(store_hosts | awk -v id="$CUT" '$1 == id {print $2}')
	echo "cut short at $1: host $CUT $CUT_NAME (size $N)"
}

# recover: the server back without failpoints; the group converges.
recover() {
	server_start $(server_args)
	wait_for 90 converged "$N"
	echo "store: $(store_live | tr '\n' ' ')"
	echo "fake:  $(fq_host_ids | tr '\n' ' ')"
	# one live instance per live host id: none twice
	[ -z "$(fq_host_ids | uniq -d)" ]
	one_run_per_host
}

# recovery_says NAME TEXT: an activity about host NAME says TEXT (crash
# recovery's activities name the host, not its cluster)
recovery_says() {
	herd activity ls --json --limit 5000 | NAME=$1 TEXT=$2 perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for my $a (@{$d->{items}}) {
			my @v = grep { defined && !ref } values %$a;
			if ((grep { $_ eq $ENV{NAME} } @v) && (grep { index($_, $ENV{TEXT}) >= 0 } @v)) {
				print "$ENV{NAME}: ", join(" | ", @v), "\n";
				exit 0;
			}
		}
		exit 1'
}

# activities_of NAME: what the activities say about host NAME (on failure)
activities_of() {
	herd activity ls --json --limit 5000 | NAME=$1 perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		for my $a (@{$d->{items}}) {
			print "$a->{host}: $a->{kind}: $a->{reason}\n" if ($a->{host} // "") eq $ENV{NAME};
		}'
}

# adopted ID: host ID is live, adopted after the restart, with one instance
# made by one RunInstances.
adopted() {
	local name
	store_live | grep -q -x "$1"
	name=$(store_hosts | awk -v id="$1" '$1 == id {print $2}')
	# recovery records the instance, then the activity: a moment apart
	wait_for 10 recovery_says "$name" "after a restart: adopted" || { activities_of "$name"; false; }
	[ "$(fq_host_ids | grep -c -x "$1")" -eq 1 ]
	[ "$(run_instances "$1" | grep -c -x 0)" -eq 1 ]
	[ "$(run_instances "$1" | grep -c .)" -eq 1 ]
}

@test "kill -9 before RunInstances: the cut host is failed, never launched; one instance per host" {
	crash_at prov_launch
	# the call never reached QingCloud
	[ -z "$(run_instances "$CUT")" ]
	kill9
	recover
	[ -z "$(store_live | grep -x "$CUT")" ]
	wait_for 10 recovery_says "$CUT_NAME" "the server stopped while launching it" ||
		{ activities_of "$CUT_NAME"; false; }
	[ -z "$(run_instances "$CUT")" ]
	[ "$(fq_host_ids | grep -c -x "$CUT")" -eq 0 ]
}

@test "kill -9 after RunInstances answered, its job pending: the pending instance is adopted, not launched again" {
	crash_at qingcloud_run_answered
	inst_status "$CUT"
	[[ "$(inst_status "$CUT")" == pending/* ]]
	kill9
	recover
	adopted "$CUT"
}

@test "kill -9 after RunInstances, its job done (the instance running): adopted, not launched again" {
	crash_at qingcloud_run_answered
	running() { [ "$(inst_status "$CUT")" = "running/" ]; }
	wait_for 60 running
	kill9
	recover
	adopted "$CUT"
	wait_for 10 recovery_says "$CUT_NAME" "host found at the provider (running) after a restart" ||
		{ activities_of "$CUT_NAME"; false; }
}

@test "kill -9 after the driver returned, before the host row is updated: adopted, not launched again" {
	crash_at prov_launch_done
	[ "$(run_instances "$CUT" | grep -c -x 0)" -eq 1 ]
	kill9
	recover
	adopted "$CUT"
}

@test "kill -9 while RunInstances is in flight (QingCloud ran it, the answer never came): adopted, not launched again" {
	local before
	N=$(($(store_live | grep -c .) + 1))
	fq_stop
	fq_start_crash --delay-action RunInstances:600000
	before=$(run_instances | grep -c .)
	run herd group scale crash/g "$N"
	[ "$status" -eq 0 ]
	ran() { [ "$(run_instances | grep -c .)" -gt "$before" ]; }
	wait_for 60 ran
	CUT=$(cut_host)
	CUT_NAME=$(store_hosts | awk -v id="$CUT" '$1 == id {print $2}')
	echo "in flight: host $CUT $CUT_NAME"
	[ "$(run_instances "$CUT")" = 0 ]
	kill9
	# the held answer goes nowhere; the fake back without the delay
	fq_stop
	fq_start_crash
	recover
	adopted "$CUT"
}

@test "after the orphan grace: nothing of this server's at the fake that the store does not know as live" {
	local oid
	# a planted orphan, named for this server: once it is swept the grace
	# has passed with every orphan there was in view (one sweep takes all)
	oid=$(printf '%08x' $(((RANDOM << 16 | RANDOM) & 0x7fffffff)))
	run qc RunInstances zone=pek3a image_id=img-crash instance_type=c1m1 login_mode=passwd \
		login_passwd=Orphan0rphan "instance_name=herd-$INST-$oid"
	[ "$(echo "$output" | json '{ret_code}')" = 0 ]
	orphan_gone() { [ "$(fq_host_ids | grep -c -x "$oid")" -eq 0 ]; }
	# the grace is 60 s (ORPHAN_GRACE_MS), the sweep every 5 s
	wait_for 120 orphan_gone
	echo "store: $(store_live | tr '\n' ' ')"
	echo "fake:  $(fq_host_ids | tr '\n' ' ')"
	[ "$(fq_host_ids)" = "$(store_live)" ]
	one_run_per_host
}
