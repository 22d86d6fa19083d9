#!/usr/bin/env bats
# Metrics (issue 4), server side: the agent push with a real host credential
# (labels host/group/cluster come from the credential, bad input names the
# field), the monitor configuration agents poll, range / aggregate / latest
# queries and the CLI on them, the group average of a monitor the agents run,
# /metrics in Prometheus format, kill -9 after an acknowledged push, a WAL
# with a torn or garbled tail, and a real Prometheus scraping herd. Needs
# root (local hosts are network namespaces).

load lib
load prom

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	sed "s|@CIDR@|$(random_cidr)|" "$BATS_TEST_DIRNAME/fixtures/metrics/metrics.yaml" >"$BP_DIR/metrics.yaml"
	herd apply -f "$BP_DIR/metrics.yaml" >/dev/null
	wait_for 60 group_ready
	ID1=$(herd host show mx/node-1 --json | json '{id}')
	ID2=$(herd host show mx/node-2 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	CRED2=$(in_host "$ID2" cat /run/herd/host.json | json '{credential}')
	VIEWER=$(herd token create --role viewer --name metrics-viewer)
	export BP_DIR ID1 ID2 CRED1 CRED2 VIEWER
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# a test's variables do not reach teardown_file: the PID is in a file
	prom_stop "$BATS_FILE_TMPDIR/prom"
	server_cleanup
}

setup() {
	require_root
}

group_ready() {
	[ "$(herd host ls --group mx/node --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}})')" = 2 ]
}

now_ms() { date +%s%3N; }

# A timestamp on the 5 s grid, a little in the past.
base_ms() { echo $((($(now_ms) - 6000) / 5000 * 5000)); }

# kill9: kills the server (started in this test or an earlier one) with SIGKILL.
kill9() {
	SERVER_PID=$(cat "$HERD_DATA/server.pid")
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done
	SERVER_PID=
}

field_of() { # field_of "STATUS BODY": the error's field
	echo "${1#* }" | json '{error}{field}'
}

@test "agent config: the group's monitors, with a version that follows them" {
	run http GET /v1/agent/config "$CRED1"
	[[ "$output" == "200 "* ]]
	cfg=${output#200 }
	[ "$(echo "$cfg" | json '{push_interval_s}')" = 5 ]
	[ "$(echo "$cfg" | json '{monitors}[0]{name}')" = busy ]
	[ "$(echo "$cfg" | json '{monitors}[0]{command}')" = "cat /run/queue/busy" ]
	[ "$(echo "$cfg" | json '{monitors}[0]{interval_s}')" = 1 ]
	[ "$(echo "$cfg" | json '{monitors}[0]{timeout_s}')" = 2 ]
	v1=$(echo "$cfg" | json '{version}')
	# the push answer carries the same version
	run http POST /v1/agent/metrics "$CRED1" '{"batches":[]}'
	[ "$(echo "${output#200 }" | json '{config_version}')" = "$v1" ]
	# changing the monitor changes it
	run http PUT /v1/monitors/busy "$HERD_TOKEN" '{"name":"busy","command":"cat /run/queue/busy","interval":"1s","timeout":"3s"}'
	[[ "$output" == "200 "* ]]
	run http GET /v1/agent/config "$CRED1"
	v2=$(echo "${output#200 }" | json '{version}')
	[ "$v2" != "$v1" ]
	[ "$(echo "${output#200 }" | json '{monitors}[0]{timeout_s}')" = 3 ]
	run http PUT /v1/monitors/busy "$HERD_TOKEN" '{"name":"busy","command":"cat /run/queue/busy","interval":"1s","timeout":"2s"}'
	run http GET /v1/agent/config "$CRED1"
	[ "$(echo "${output#200 }" | json '{version}')" = "$v1" ]
	# agent endpoints take host credentials only
	run http GET /v1/agent/config "$HERD_TOKEN"
	[[ "$output" == "401 "* ]]
}

@test "push: host/group/cluster come from the credential; range, aggregate and latest" {
	b=$(base_ms)
	body1='{"batches":['
	body2='{"batches":['
	for i in 0 1 2; do
		t=$((b - 10000 + i * 5000))
		body1+="{\"ts_ms\":$t,\"series\":[{\"name\":\"t_load\",\"labels\":{\"scope\":\"test\"},\"value\":$((10 + i * 10))}]},"
		body2+="{\"ts_ms\":$t,\"series\":[{\"name\":\"t_load\",\"labels\":{\"scope\":\"test\"},\"value\":$((30 + i * 10)).5}]},"
	done
	run http POST /v1/agent/metrics "$CRED1" "${body1%,}]}"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json '{accepted}')" -ge 3 ]
	[ "$(echo "${output#200 }" | json '{rejected}')" = 0 ]
	run http POST /v1/agent/metrics "$CRED2" "${body2%,}]}"
	[[ "$output" == "200 "* ]]

	# range of one host, with the server's labels
	run http GET "/v1/metrics/query?metric=t_load&host=mx/node-1&from=$((b - 10000))&to=$b" "$VIEWER"
	[[ "$output" == "200 "* ]]
	r=${output#200 }
	[ "$(echo "$r" | json '{series}[0]{labels}{host}')" = node-1 ]
	[ "$(echo "$r" | json '{series}[0]{labels}{group}')" = node ]
	[ "$(echo "$r" | json '{series}[0]{labels}{cluster}')" = mx ]
	[ "$(echo "$r" | json '{series}[0]{labels}{scope}')" = test ]
	[ "$(echo "$r" | json '{series}[0]{points}[0][0]')" = $((b - 10000)) ]
	[ "$(echo "$r" | json '{series}[0]{points}[2][1]')" = 30 ]

	# the group average at aligned steps, with the number of hosts per step
	run http GET "/v1/metrics/query?metric=t_load&group=node&agg=avg&step=5s&from=$((b - 10000))&to=$b" "$VIEWER"
	r=${output#200 }
	[ "$(echo "$r" | json '{cluster}')" = mx ]
	[ "$(echo "$r" | json '{points}[0]{value}')" = 20.25 ]
	[ "$(echo "$r" | json '{points}[2]{value}')" = 40.25 ]
	[ "$(echo "$r" | json '{points}[2]{series}')" = 2 ]
	run http GET "/v1/metrics/query?metric=t_load&group=mx/node&agg=min&step=5s&from=$b&to=$b" "$VIEWER"
	[ "$(echo "${output#200 }" | json '{points}[0]{value}')" = 30 ]

	# the latest value per host
	run http GET "/v1/metrics/latest?metric=t_load&group=node&cluster=mx" "$VIEWER"
	r=${output#200 }
	[ "$(echo "$r" | json_count '{items}')" = 2 ]
	[ "$(echo "$r" | json '{items}[0]{host}')" = node-1 ]
	[ "$(echo "$r" | json '{items}[0]{value}')" = 30 ]
	[ "$(echo "$r" | json '{items}[1]{value}')" = 50.5 ]
	[ "$(echo "$r" | json '{items}[1]{ts_ms}')" = "$b" ]

	# the CLI reads the same
	run herd metrics query t_load --group mx/node --agg max --step 5s --since 2m --json
	[ "$status" -eq 0 ]
	[[ "$output" == *'"value": 50.5'* ]]
	run herd metrics ls --host mx/node-2
	[ "$status" -eq 0 ]
	[[ "$output" == *t_load* ]]
	run herd metrics query t_load --host mx/node-1 --since 2m
	[ "$status" -eq 0 ]
	[[ "$output" == *'t_load{cluster="mx",group="node",host="node-1",scope="test"}'* ]]
	[[ "$output" == *TIME*VALUE* ]]
	[[ "$output" == *"min 10  max 30"* ]]
	run herd metrics query t_load --group mx/node --agg avg --step 5s --since 1m
	[[ "$output" == *"avg(t_load) of mx/node, step 5s"* ]]
	run herd metrics query t_load
	[ "$status" -ne 0 ]
	[[ "$output" == *usage* ]]
}

@test "push: bad input is refused whole, naming the field; older samples are counted, not errors" {
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"x\",\"labels\":{\"host\":\"node-2\"},\"value\":1}]}]}"
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = "batches[0].series[0].labels.host" ]
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"ok\",\"value\":1},{\"name\":\"9bad\",\"value\":1}]}]}"
	[ "$(field_of "$output")" = "batches[0].series[1].name" ]
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"x\",\"value\":\"lots\"}]}]}"
	[ "$(field_of "$output")" = "batches[0].series[0].value" ]
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"x\",\"labels\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\"},\"value\":1}]}]}"
	[ "$(field_of "$output")" = "batches[0].series[0].labels" ]
	long=$(printf 'v%.0s' $(seq 1 200))
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"x\",\"labels\":{\"a\":\"$long\"},\"value\":1}]}]}"
	[ "$(field_of "$output")" = "batches[0].series[0].labels.a" ]
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$(($(now_ms) + 3600000)),\"series\":[]}]}"
	[ "$(field_of "$output")" = "batches[0].ts_ms" ]
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"monitors\":[{\"name\":\"probe\",\"state\":\"sleepy\"}]}]}"
	[ "$(field_of "$output")" = "batches[0].monitors[0].state" ]
	# the server's batch limit is the agent's: PUSH_MAX_BATCHES_PER_REQUEST
	# (src/lib/agent-contract.h); one more is refused, that many pass (below)
	max=$(awk '$2 == "PUSH_MAX_BATCHES_PER_REQUEST" { print $3 }' "$BATS_TEST_DIRNAME/../../src/lib/agent-contract.h")
	[ "$max" -gt 1 ]
	many=$(printf "{\"ts_ms\":$b},%.0s" $(seq 1 $((max + 1))))
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[${many%,}]}"
	[[ "$output" == "400 "* ]]
	[ "$(field_of "$output")" = batches ]
	[[ "$output" == *"at most $max batches per push"* ]]
	run http POST /v1/agent/metrics "$CRED1" '{"batches":[{"ts_ms":1,"series":[]}],"dropped":-1}'
	[ "$(field_of "$output")" = dropped ]
	# none of it was stored
	run http GET "/v1/metrics/latest?metric=ok&host=mx/node-1" "$VIEWER"
	[ "$(echo "${output#200 }" | json_count '{items}')" = 0 ]
	many=$(printf "{\"ts_ms\":$b},%.0s" $(seq 1 "$max"))
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[${many%,}]}"
	[[ "$output" == "200 "* ]]
	# viewers cannot push
	run http POST /v1/agent/metrics "$VIEWER" '{"batches":[]}'
	[[ "$output" == "401 "* ]]
	# a sample older than the series' newest is rejected and counted
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_order\",\"value\":2}]},{\"ts_ms\":$((b - 5000)),\"series\":[{\"name\":\"t_order\",\"value\":1}]}]}"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json '{accepted}')" = 1 ]
	[ "$(echo "${output#200 }" | json '{rejected}')" = 1 ]
}

@test "monitor states: a failed monitor keeps its error, monitor_up is 0" {
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED2" "{\"batches\":[{\"ts_ms\":$b,\"monitors\":[{\"name\":\"probe\",\"state\":\"failed\",\"error\":\"exited with code 3: no queue\"}]}]}"
	[[ "$output" == "200 "* ]]
	run http GET "/v1/metrics/monitors?host=mx/node-2" "$VIEWER"
	[[ "$output" == *'"monitor":"probe"'* ]]
	[[ "$output" == *'"state":"failed"'* ]]
	[[ "$output" == *'"error":"exited with code 3: no queue"'* ]]
	run http GET "/v1/metrics/latest?metric=monitor_up&host=mx/node-2" "$VIEWER"
	r=${output#200 }
	[[ "$r" == *'"monitor":"probe"'* ]]
	perl -MJSON::PP -e '
		my $d = decode_json($ARGV[0]);
		my ($s) = grep { $_->{labels}{monitor} eq "probe" } @{$d->{items}};
		exit($s && $s->{value} == 0 ? 0 : 1)' "$r"
}

# busy_avg: the last aggregate step with both hosts, "value series".
busy_avg() {
	herd metrics query busy --group mx/node --agg avg --step 5s --since 30s --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		my @p = grep { $_->{series} == 2 } @{$d->{points}};
		print @p ? "$p[-1]{value} $p[-1]{series}" : "none"'
}

busy_is() { [ "$(busy_avg)" = "$1" ]; }

agent_pushes() { herd metrics ls --host mx/node-1 | grep -q cpu_busy_pct; }

@test "the agents push system metrics and their monitor; the group average matches the hosts' files" {
	if ! wait_for 20 agent_pushes; then
		skip "the agent does not push system metrics"
	fi
	for m in cpu_busy_pct mem_used_pct disk_used_bytes net_rx_bytes_per_s procs; do
		run herd metrics ls --host mx/node-2
		[[ "$output" == *"$m "* ]]
	done
	in_host "$ID1" sh -c 'mkdir -p /run/queue && echo 12 >/run/queue/busy'
	in_host "$ID2" sh -c 'mkdir -p /run/queue && echo 31 >/run/queue/busy'
	wait_for 30 busy_is "21.5 2"
	run herd top --group mx/node --once
	[ "$status" -eq 0 ]
	[[ "$output" == *"mx/node-1"*"busy=12"* ]]
	[[ "$output" == *"mx/node-2"*"busy=31"* ]]
	[[ "$output" == *CPU%*MEM%* ]]
}

@test "/metrics: Prometheus text format, for viewers" {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$HERD_URL/metrics")" = 401 ]
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_expo\",\"labels\":{\"path\":\"a\\\"b\"},\"value\":2.5}]}]}"
	[[ "$output" == "200 "* ]]
	out=$(curl -sf -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics")
	grep -qx '# TYPE t_expo untyped' <<<"$out"
	grep -qxF "t_expo{cluster=\"mx\",group=\"node\",host=\"node-1\",path=\"a\\\"b\"} 2.5 $b" <<<"$out"
	grep -q '^herd_tsdb_series [0-9]' <<<"$out"
	ctype=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics")
	[[ "$ctype" == "text/plain; version=0.0.4"* ]]
}

@test "kill -9 after an acknowledged push: the samples are there after a restart" {
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_durable\",\"value\":42}]}]}"
	[[ "$output" == "200 "* ]]
	kill9
	server_start
	run http GET "/v1/metrics/latest?metric=t_durable&host=mx/node-1" "$VIEWER"
	[ "$(echo "${output#200 }" | json '{items}[0]{value}')" = 42 ]
	[ "$(echo "${output#200 }" | json '{items}[0]{ts_ms}')" = "$b" ]
}

@test "a WAL with a torn or garbled tail: the server starts, says what it skipped, serves the rest" {
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_wal\",\"value\":1}]}]}"
	[[ "$output" == "200 "* ]]
	run http POST /v1/agent/metrics "$CRED2" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_wal\",\"value\":2}]}]}"
	[[ "$output" == "200 "* ]]
	kill9
	wal=$HERD_DATA/tsdb/wal
	size=$(stat -c %s "$wal")
	[ "$size" -gt 10 ]
	# torn: the last record loses its last bytes
	truncate -s $((size - 3)) "$wal"
	: >"$HERD_DATA/server.log.before"
	cp "$HERD_DATA/server.log" "$HERD_DATA/server.log.before"
	server_start
	run diff "$HERD_DATA/server.log.before" "$HERD_DATA/server.log"
	[[ "$output" == *"tsdb: WAL '$wal': truncated record at offset"*"skipped the last"* ]]
	run http GET "/v1/metrics/latest?metric=t_wal&host=mx/node-1" "$VIEWER"
	[ "$(echo "${output#200 }" | json '{items}[0]{value}')" = 1 ]

	# garbled: garbage after the last record
	run http POST /v1/agent/metrics "$CRED2" "{\"batches\":[{\"ts_ms\":$((b + 1)),\"series\":[{\"name\":\"t_wal\",\"value\":3}]}]}"
	[[ "$output" == "200 "* ]]
	kill9
	head -c 100 /dev/urandom >>"$wal"
	cp "$HERD_DATA/server.log" "$HERD_DATA/server.log.before"
	server_start
	run diff "$HERD_DATA/server.log.before" "$HERD_DATA/server.log"
	[[ "$output" == *"tsdb: WAL '$wal': "*"skipped the last"*"bytes"* ]]
	run http GET "/v1/metrics/latest?metric=t_wal&host=mx/node-2" "$VIEWER"
	[ "$(echo "${output#200 }" | json '{items}[0]{value}')" = 3 ]
	run http GET "/v1/metrics/latest?metric=t_wal&host=mx/node-1" "$VIEWER"
	[ "$(echo "${output#200 }" | json '{items}[0]{value}')" = 1 ]
	rm -f "$HERD_DATA/server.log.before"
}

@test "a real Prometheus scrapes /metrics with a bearer token from a file" {
	prom_require
	pdir=$BATS_FILE_TMPDIR/prom
	mkdir -p "$pdir"
	printf '%s' "$VIEWER" >"$pdir/token"
	chmod 600 "$pdir/token"
	cat >"$pdir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: herd
    metrics_path: /metrics
    authorization:
      credentials_file: $pdir/token
    static_configs:
      - targets: ['127.0.0.1:$HERD_PORT']
EOF
	prom_start "$pdir"
	b=$(base_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$((b + 2)),\"series\":[{\"name\":\"t_prom\",\"value\":77}]}]}"
	[[ "$output" == "200 "* ]]
	q="http://127.0.0.1:$PPORT/api/v1/query?query=t_prom%7Bhost%3D%22node-1%22%7D"
	if ! wait_for 60 sh -c "curl -sf '$q' | grep -q '\"77\"'"; then
		cat "$pdir/log" >&2
		curl -s "http://127.0.0.1:$PPORT/api/v1/targets" >&2 || true
		false
	fi
	run curl -sf "$q"
	[[ "$output" == *'"cluster":"mx"'* ]]
	[[ "$output" == *'"group":"node"'* ]]
	# and the agents' own series
	run curl -sf "http://127.0.0.1:$PPORT/api/v1/query?query=count(monitor_up)"
	[[ "$output" == *'"status":"success"'* ]]
	prom_stop "$pdir"
}
