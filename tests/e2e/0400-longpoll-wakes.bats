#!/usr/bin/env bats
# Parked long-polls are woken only by what concerns them (issue 15). 100
# hosts are launched by the server on the fake QingCloud (--instances none)
# and `herd bench agents` plays their agents: each parks a command long-poll
# (GET /v1/agent/commands?wait=25). A run on ONE host must resume that
# host's poll and no other: the server logs (at debug level) each parked
# request it resumes, with the host and why (kick or deadline). Before
# targeted wakes every kick resumed all 100, and each re-ran its handler
# (a store read). Needs root for the harness's conventions only (no
# namespaces are made).

load lib
load qingcloud

KEY_ID=QYLONGPOLLWAKES
N=100

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	HERD_PORT=$(free_port)
	server_start --advertise-url "http://127.0.0.1:$HERD_PORT" --push-interval 10s \
		--log-level debug --max-conns-per-addr 1024
	fq_init WAKES
	fq_start --instances none --pending-ms 0 --job-ms 0 --quota-instances $((N + 10))
	bp >"$BATS_FILE_TMPDIR/wakes.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/wakes.yaml" >&2
	wait_for 300 fq_launched "$N"
	fq_configs >"$BATS_FILE_TMPDIR/configs"
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -f "$BATS_FILE_TMPDIR/bench.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
		wait "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
	fi
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
  - name: wakes-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: wakesnet
    account: wakes-qc
    cidr: $(random_cidr)
templates:
  - name: wakest
    account: wakes-qc
    network: wakesnet
    image: img-wakes
    instance_type: c1m1
clusters:
  - name: wk
    groups:
      - name: sim
        template: wakest
        size: $N
        max: $N
        max_provision_time: 1h
YAML
}

ready_count() {
	herd host ls --cluster wk --group sim --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}}), "\n"'
}

# ready_is N: N hosts of wk/sim are ready.
ready_is() {
	[ "$(ready_count)" = "$1" ]
}

# polls_since OFFSET: command long-polls the server received since OFFSET
# of its log.
polls_since() {
	tail -c +"$(($1 + 1))" "$HERD_DATA/server.log" | grep -c 'http: GET /v1/agent/commands' || true
}
# polls_at_least OFFSET N
polls_at_least() {
	[ "$(polls_since "$1")" -ge "$2" ]
}

# delivered RUN: the run's one host took its delivery.
delivered() {
	[ "$(herd run show "$1" --json | json '{hosts}[0]{deliveries}')" -ge 1 ]
}

# kick_wakes FROM TO: the hosts whose parked poll a kick resumed, one a line,
# between two offsets of the server log.
kick_wakes() {
	tail -c +"$(($1 + 1))" "$HERD_DATA/server.log" | head -c "$(($2 - $1))" |
		sed -n "s|.*http: woke GET /v1/agent/commands of '\([^']*\)' (kick).*|\1|p"
}

@test "longpoll: a run on one host resumes that host's parked poll and no other" {
	printf '%s\n' "$HERD_TOKEN" >"$BATS_TEST_TMPDIR/token"
	off0=$(stat -c %s "$HERD_DATA/server.log")
	herd bench agents --configs "$BATS_FILE_TMPDIR/configs" --count "$N" --interval 10s \
		--duration 120s --token-file "$BATS_TEST_TMPDIR/token" --cluster wk --group sim \
		>"$BATS_TEST_TMPDIR/bench.out" 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/bench.pid"
	wait_for 90 ready_is "$N"
	# every agent has a poll in (ready agents poll at once)
	wait_for 60 polls_at_least "$off0" "$N"
	target=$(herd host ls --cluster wk --group sim --json | json '{items}[0]{name}')
	off1=$(stat -c %s "$HERD_DATA/server.log")
	run http POST /v1/runs "$HERD_TOKEN" \
		"{\"script\":\"k8s_pods_per_node.sh\",\"host\":\"wk/$target\"}"
	echo "$output"
	[[ "$output" == 20[01]\ * ]]
	id=$(json '{id}' <<<"${output#* }")
	wait_for 30 delivered "$id"
	off2=$(stat -c %s "$HERD_DATA/server.log")
	kick_wakes "$off1" "$off2" | sort | uniq -c >"$BATS_TEST_TMPDIR/wakes"
	cat "$BATS_TEST_TMPDIR/wakes"
	# the target's poll was resumed (once, or twice: the kick inside the
	# writer's transaction and the one after its commit)
	grep -q " $target\$" "$BATS_TEST_TMPDIR/wakes"
	refute grep -v " $target\$" "$BATS_TEST_TMPDIR/wakes"
}

# pad_get BYTES: the status of GET /v1/hosts with an extra header of BYTES
# bytes, then curl's exit code ("000 52": closed without an answer; "... 28":
# no answer in 20 s, a hang).
pad_get() {
	local pad code rc=0
	pad=$(head -c "$1" /dev/zero | tr '\0' a)
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
		-H "Authorization: Bearer $HERD_TOKEN" -H "X-Pad: $pad" \
		"$HERD_URL/v1/hosts?cluster=wk") || rc=$?
	echo "$code $rc"
}

@test "longpoll: headers up to 11 KB are served, larger ones get 431 (or, past the connection's memory, a close at once), never a hang" {
	for b in 512 2048 4096 8192 11264; do
		r=$(pad_get "$b")
		echo "$b bytes: $r"
		[ "$r" = "200 0" ]
	done
	# herd's own 431 (HTTPD_HEADERS_MAX, 12 KiB): room left for the answer
	for b in $(seq 12800 512 15360); do
		r=$(pad_get "$b")
		echo "$b bytes: $r"
		[ "$r" = "431 0" ]
	done
	# past what the connection's 16 KiB hold: libmicrohttpd's 431, or in a
	# window of ~128 bytes where no status line fits any more, a close at
	# once (an empty reply) - never a request left hanging
	for b in $(seq 15488 64 16384) 20000 40000; do
		r=$(pad_get "$b")
		echo "$b bytes: $r"
		[[ "$r" = "431 0" || "$r" = "000 52" ]]
	done
	[ "$(pad_get 100)" = "200 0" ]
}
