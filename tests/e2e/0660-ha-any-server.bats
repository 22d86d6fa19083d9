#!/usr/bin/env bats
# shellcheck disable=SC2153  # B_URL, B_DATA: set by b_start (0660-ha-any-server.bash)
# Several servers, one fleet (issue 19, docs/ha.md "Long polls on any
# server" and "Metrics with several servers"): two servers on one
# PostgreSQL (tools/pg-tmp.sh), A the leader, B a follower, hosts on the
# fake QingCloud launched by A and played with curl and `herd bench agents`.
# - an agent's command long-poll parked on B returns with a run made
#   through A: its answer holds the run's delivery and B's log says a kick
#   (A's NOTIFY) resumed it, where without the announcement only its
#   deadline would;
# - an agent's pushes sent to B are stored by the leader (queried on A) and
#   drive the leader's autoscaler: the policy's scale-out.
# Needs root (the harness's conventions; PostgreSQL runs as nobody).

load lib
load qingcloud
load 0660-ha-any-server

KEY_ID=QYHAANYSERVER

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	# under /tmp, not BATS_FILE_TMPDIR: PostgreSQL runs as nobody
	PG_DIR=$(mktemp -u /tmp/herd-pg-0660.XXXXXX)
	PG_DSN=$("$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh" start "$PG_DIR")
	export PG_DIR PG_DSN
	# the fake: no instance boots (agents are played)
	fq_init HA
	fq_start --instances none --pending-ms 0 --job-ms 0 --quota-instances 10
	HERD_PORT=$(free_port)
	HERD_TEST_STORE=$PG_DSN server_start --advertise-url "http://127.0.0.1:$HERD_PORT" \
		--push-interval 1s
	A_URL=$HERD_URL
	export A_URL
	wait_for 20 leads "$A_URL"
	b_start --push-interval 1s
	bp >"$BATS_FILE_TMPDIR/ha.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/ha.yaml" >&2
	wait_for 60 fq_launched 2
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -f "$BATS_FILE_TMPDIR/bench.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
		wait "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
	fi
	b_stop
	HERD_TEST_STORE=${PG_DSN:-} server_cleanup   # terminates the instances through the fake
	fq_cleanup
	[ -z "${PG_DIR:-}" ] || "$BATS_TEST_DIRNAME/../../tools/pg-tmp.sh" stop "$PG_DIR"
}

setup() {
	require_root
	fq_require
}

bp() {
	cat <<YAML
accounts:
  - name: ha-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: hanet
    account: ha-qc
    cidr: $(random_cidr)
templates:
  - name: hat
    account: ha-qc
    network: hanet
    image: img-ha
    instance_type: c1m1
clusters:
  - name: ha
    groups:
      - name: poll
        template: hat
        size: 1
        max_provision_time: 1h
      - name: auto
        template: hat
        size: 1
        max: 2
        max_provision_time: 1h
        policies:
          - name: step-up
            when: max(step) > 50
            adjust: +1
            cooldown: 0s
YAML
}

@test "two servers on one database: A leads, B follows, both answer" {
	leads "$A_URL"
	refute leads "$B_URL"
	run at "$B_URL" GET /v1/servers "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json_count '{servers}')" = 2 ]
}

@test "a command long-poll parked on the follower returns with a run made through the leader" {
	cfg=$(config_of ha/poll)
	id=$(json '{host_id}' <<<"$cfg")
	tok=$(json '{join_token}' <<<"$cfg")
	# the agent joins and reports through B (store-backed: any server)
	run at "$B_URL" POST /v1/agent/join "" "{\"host_id\":\"$id\",\"join_token\":\"$tok\"}"
	echo "$output"
	[[ "$output" == "200 "* ]]
	cred=$(json '{credential}' <<<"${output#200 }")
	printf '%s\n' "$cred" >"$BATS_FILE_TMPDIR/poll.cred"   # for a later case
	run at "$B_URL" POST /v1/agent/state "$cred" '{"state":"ready"}'
	[[ "$output" == "200 "* ]]
	run at "$B_URL" POST /v1/agent/heartbeat "$cred" '{}'
	[[ "$output" == "200 "* ]]
	name=$(herd host ls --group ha/poll --json | json '{items}[0]{name}')
	# park: a long wait, so that an answer at the deadline (no wake-up)
	# would come without the delivery
	off=$(stat -c %s "$B_DATA/server.log")
	curl -s -H "Authorization: Bearer $cred" "$B_URL/v1/agent/commands?wait=90" \
		>"$BATS_TEST_TMPDIR/poll.out" &
	poll=$!
	wait_for 20 b_log_has "$off" "GET /v1/agent/commands"
	sleep 1   # the handler has looked (nothing) and parked
	# the run is made through A: only A's announcement can wake B's poll
	run at "$A_URL" POST /v1/runs "$HERD_TOKEN" \
		"{\"script\":\"k8s_pods_per_node.sh\",\"host\":\"ha/$name\"}"
	echo "$output"
	[[ "$output" == 20[01]\ * ]]
	run_id=$(json '{id}' <<<"${output#* }")
	wait "$poll"
	cat "$BATS_TEST_TMPDIR/poll.out"
	# the answer holds the run's delivery, and B resumed the poll for a kick
	# (A's announcement), not at its deadline (60 s at most): there the
	# handler would look again and find the delivery too
	[ "$(json '{commands}[0]{run}' <"$BATS_TEST_TMPDIR/poll.out")" = "$run_id" ]
	tail -c +"$((off + 1))" "$B_DATA/server.log" | grep 'http: woke GET /v1/agent/commands' || true
	b_log_has "$off" "http: woke GET /v1/agent/commands of '$name' (kick)"
	refute b_log_has "$off" "http: woke GET /v1/agent/commands of '$name' (deadline)"
}

@test "pushes to the follower are stored by the leader and drive its scale-out" {
	config_of ha/auto >"$BATS_TEST_TMPDIR/configs"
	id=$(json '{host_id}' <"$BATS_TEST_TMPDIR/configs")
	name=$(herd host ls --group ha/auto --json | json '{items}[0]{name}')
	printf '%s\n' "$HERD_TOKEN" >"$BATS_TEST_TMPDIR/token"
	# the played agent talks to B only: join, ready, heartbeats, pushes
	# (step=100 every other 5 s, crossing the policy's 50)
	HERD_URL=$B_URL herd bench agents --configs "$BATS_TEST_TMPDIR/configs" --count 1 \
		--interval 1s --duration 60s --step-metric step --step-value 100 --step-every 5s \
		>"$BATS_TEST_TMPDIR/bench.out" 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/bench.pid"
	# the leader's autoscaler decides on them: the policy's scale-out
	wait_for 45 has_activity ha auto scale_out policy:step-up
	act=$(activity_of ha auto scale_out policy:step-up)
	echo "$act"
	# the samples are in the leader's store: queried on A, never forwarded
	out=$(HERD_URL=$A_URL herd metrics query step --host "ha/$name" --json)
	echo "$out"
	[[ "$out" == *100* ]]
	kill "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
	wait "$(cat "$BATS_FILE_TMPDIR/bench.pid")" 2>/dev/null || true
	rm -f "$BATS_FILE_TMPDIR/bench.pid"
	cat "$BATS_TEST_TMPDIR/bench.out"
	# for the record (no bound here): the first push carrying 100 -> the decision
	sent=$(sed -n 's/^step: n=[0-9]* level=high value=[^ ]* sent_ms=\([0-9]*\).*/\1/p' \
		"$BATS_TEST_TMPDIR/bench.out" | head -1)
	ts=$(json '{ts_ms}' <<<"$act")
	echo "push on the follower -> decision on the leader: $((ts - sent)) ms (host $id)"
}

@test "a client's X-Herd-Forwarded does not keep its push on the follower" {
	local cred name now out
	cred=$(cat "$BATS_FILE_TMPDIR/poll.cred")
	name=$(herd host ls --group ha/poll --json | json '{items}[0]{name}')
	now=$(($(date +%s) * 1000))
	# the header a follower puts on what it sends on, without the store's
	# forward key: B must still send the push to A (the old code stored it
	# in B's own TSDB, which nothing reads)
	out=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $cred" \
		-H 'Content-Type: application/json' -H 'X-Herd-Forwarded: 1' \
		--data "{\"batches\":[{\"ts_ms\":$now,\"series\":[{\"name\":\"fwd_check\",\"labels\":{},\"value\":7}]}]}" \
		"$B_URL/v1/agent/metrics")
	echo "$out"
	[ "$(tail -1 <<<"$out")" = 200 ]
	# stored by the leader: A answers it from its own TSDB
	out=$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$A_URL/v1/metrics/latest?metric=fwd_check&host=ha/$name")
	echo "$out"
	[[ "$out" == *'"value":7'* ]]
	# the forwarding itself still works between the servers (no loop, one answer)
	out=$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" \
		"$B_URL/v1/metrics/latest?metric=fwd_check&host=ha/$name")
	[[ "$out" == *'"value":7'* ]]
}
