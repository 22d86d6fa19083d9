#!/usr/bin/env bats
# A qingcloud launch holds its launch worker only for its own calls, never
# for the RunInstances job (issue 15): on QingCloud a job takes seconds, the
# caller records only the instance id, and the host's agent says when it is
# up. The old driver polled each launch's job (DescribeJobs, 0.5 s apart, up
# to 2 s): with 8 workers that alone made 1,000 hosts take minutes. Shown
# without timing, in the fake's call log: after the first RunInstances (the
# network's router jobs are waited for before it) no DescribeJobs is sent,
# and each host cost one search, one RunInstances and one AttachTags.
# --instances none: nothing boots, the hosts stay booting. Needs root (like
# every qingcloud case: the fake's router).

load lib

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
KEY_ID=QYLAUNCHJOBS

setup() {
	require_root
	[ -x "$FAKE" ] || skip "fake QingCloud not built ($FAKE)"
	W=$(mktemp -d "$BATS_FILE_TMPDIR/lj.XXXXXX")
	FQ_PID=
}

teardown() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
	if [ -n "${FQ_PID:-}" ]; then
		kill "$FQ_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$FQ_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$FQ_PID" 2>/dev/null || true
	fi
	[ -n "${W:-}" ] && [ -z "${KEEP_W:-}" ] && rm -rf "$W"
}

# accepted ACTION: how many ACTION calls the fake answered 0
accepted() {
	grep -F "\"action\":\"$1\"" "$W/calls.log" | grep -c '"ret_code":0' || true
}

# after_first_run: the actions logged after the first RunInstances, one a line
after_first_run() {
	sed -n 's/.*"action":"\([A-Za-z]*\)".*/\1/p' "$W/calls.log" | sed -n '/^RunInstances$/,$p'
}

@test "qingcloud: 6 launches with 2 workers: no DescribeJobs after RunInstances; 3 calls a host" {
	local port cidr
	umask 077
	printf 'LJ-%s%s\n' "$RANDOM" "$RANDOM" >"$W/secret"
	umask 022
	port=$(free_port)
	"$FAKE" --listen "127.0.0.1:$port" --state-dir "$W/fq" --access-key-id "$KEY_ID" \
		--secret-file "$W/secret" --zone pek3a --instances none --pending-ms 0 \
		--job-ms 0 --call-log "$W/calls.log" >/dev/null 2>"$W/fake.log" &
	FQ_PID=$!
	wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$port/iaas/"
	HERD_PORT=$(free_port)
	server_start --launch-workers 2 --advertise-url "http://127.0.0.1:$HERD_PORT"
	cidr=$(random_cidr)
	cat >"$W/bp.yaml" <<YAML
accounts:
  - name: lj
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $W/secret
    endpoint: http://127.0.0.1:$port/iaas/
networks:
  - name: ljnet
    account: lj
    cidr: $cidr
templates:
  - name: ljt
    account: lj
    network: ljnet
    image: img-lj
    instance_type: c1m1
clusters:
  - name: lj
    groups:
      - name: g
        template: ljt
        size: 6
        max: 6
        max_provision_time: 1h
YAML
	herd apply -f "$W/bp.yaml"
	six() { [ "$(accepted RunInstances)" -eq 6 ]; }
	wait_for 60 six
	# every launch recorded: no host still launching, none failed
	recorded() {
		herd host ls --json --group lj/g | perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			my @h = @{$d->{items}};
			exit !(@h == 6 && !grep { $_->{state} =~ /^(launching|failed)$/ } @h)'
	}
	wait_for 30 recorded
	run after_first_run
	echo "$output" | sort | uniq -c
	[ "$(grep -c -x DescribeJobs <<<"$output")" -eq 0 ]
	# the instances' tags (the VxNet's are attached before the first RunInstances)
	[ "$(grep -c -x AttachTags <<<"$output")" -eq 6 ]
	# one search by name per host (the crash-safety check before RunInstances)
	[ "$(grep -F '"action":"DescribeInstances"' "$W/calls.log" | grep -c '"search_word":"herd-')" -ge 6 ]
}
