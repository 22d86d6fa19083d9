#!/usr/bin/env bats
# `herd bench agents` (issue 15): simulated agents from one process load a
# real server as real hosts would. The hosts are launched by the server on
# the fake QingCloud (--instances none: nothing boots there), and the bench
# plays their agents: each host's agent config (host id, one-time join token)
# is read from the user data the server sent in RunInstances (the fake's call
# log), as a booting machine reads its own. The bench joins, reports ready,
# heartbeats, pushes and long-polls; the server must then list 50 ready
# hosts with their series stored. Needs root for the harness's conventions
# only (no namespaces are made).

load lib
load qingcloud

KEY_ID=QYBENCHAGENTSKEY

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HERD_PORT=$(free_port)
	server_start --advertise-url "http://127.0.0.1:$HERD_PORT" --push-interval 1s
	fq_init BENCH
	fq_start --instances none --pending-ms 0 --job-ms 0 --quota-instances 200
	bp >"$BATS_FILE_TMPDIR/bench.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bench.yaml" >&2
	wait_for 120 fq_launched 50
	fq_configs >"$BATS_FILE_TMPDIR/configs"
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup   # terminates the instances through the fake: it must still run
	fq_cleanup
}

setup() {
	require_root
	fq_require
}

bp() {
	cat <<YAML
accounts:
  - name: bench-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: benchnet
    account: bench-qc
    cidr: $(random_cidr)
templates:
  - name: bencht
    account: bench-qc
    network: benchnet
    image: img-bench
    instance_type: c1m1
clusters:
  - name: bench
    groups:
      - name: sim
        template: bencht
        size: 50
        max: 100
        max_provision_time: 1h
YAML
}

# ready_count: hosts of bench/sim in state ready.
ready_count() {
	herd host ls --cluster bench --group sim --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}}), "\n"'
}

@test "bench agents: 50 simulated agents join, go ready and push their series" {
	[ "$(wc -l <"$BATS_FILE_TMPDIR/configs")" = 50 ]
	[ "$(ready_count)" = 0 ]
	printf '%s\n' "$HERD_TOKEN" >"$BATS_TEST_TMPDIR/token"
	run herd bench agents --configs "$BATS_FILE_TMPDIR/configs" --count 50 --interval 1s \
		--duration 5s --token-file "$BATS_TEST_TMPDIR/token" --cluster bench --group sim
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"total: "*" joined=50 "* ]]
	# every interval line is there, and pushes succeeded with none failed
	[[ "$(grep -c '^t=' <<<"$output")" -ge 4 ]]
	[[ "$output" =~ total:.*pushes_ok=([0-9]+)\ pushes_failed=0 ]]
	[ "${BASH_REMATCH[1]}" -ge 100 ]
	[ "$(ready_count)" = 50 ]
	# the 50 hosts' pushed series are stored: one cpu_busy_pct series each
	run herd metrics ls --group sim --cluster bench --json
	[ "$status" -eq 0 ]
	for m in cpu_busy_pct mem_used_pct load1; do
		n=$(M=$m perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			print map { "$_->{series}\n" } grep { $_->{name} eq $ENV{M} } @{$d->{items}}' \
			<<<"$output")
		echo "$m: $n series"
		[ "$n" = 50 ]
	done
}

@test "bench agents: unknown options and bad values are refused" {
	run herd bench agents --configs "$BATS_FILE_TMPDIR/configs" --count 5 --bogus 1
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown option '--bogus'"* ]]
	run herd bench agents --configs "$BATS_FILE_TMPDIR/configs" --count 51
	[ "$status" -ne 0 ]
	[[ "$output" == *"holds 50 agent configs"* ]]
	run herd bench agents --configs "$BATS_FILE_TMPDIR/configs" --count 5 --interval soon
	[ "$status" -ne 0 ]
	[[ "$output" == *"invalid --interval"* ]]
}
