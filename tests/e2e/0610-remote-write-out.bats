#!/usr/bin/env bats
# remote_write out (issue 20): herd sends the samples of agents' pushes to a
# real Prometheus (Debian's, started here with its remote write receiver)
# with herd's labels, relabelled; Prometheus down for 60 s while hosts push
# loses nothing (the same count there as in herd's own store for the
# window); a herd restart while it is down resends the queue; a 4xx is
# dropped and not retried, a 5xx is retried; a queue past max_bytes drops
# its oldest and counts every sample; bad remotes are refused at apply
# naming the field. Needs root (a local host is a network namespace).

load lib
load prom

PY=/usr/bin/python3

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	command -v prometheus >/dev/null || return 0
	server_start --push-interval 1s
	T=$BATS_FILE_TMPDIR
	mkdir -p "$T/bp/scripts" "$T/prom" "$T/bad" "$T/flaky"
	cp "$BATS_TEST_DIRNAME/fixtures/metrics/scripts/ok.sh" "$T/bp/scripts/"
	PPORT=$(free_port)
	BAD_PORT=$(free_port)
	FLAKY_PORT=$(free_port)
	printf 'global:\n  evaluation_interval: 1m\n' >"$T/prom/prometheus.yml"
	prom_up
	# a remote that refuses everything with 400; one that answers 503 twice, then 204
	"$PY" "$BATS_TEST_DIRNAME/0610-status-server.py" "$BAD_PORT" "$T/bad" 400 \
		>"$T/bad/log" 2>&1 3>&- &
	BAD_PID=$!
	"$PY" "$BATS_TEST_DIRNAME/0610-status-server.py" "$FLAKY_PORT" "$T/flaky" 503 503 204 \
		>"$T/flaky/log" 2>&1 3>&- &
	FLAKY_PID=$!
	cat >"$T/bp/rw.yaml" <<EOF
accounts:
  - name: here
    driver: local
networks:
  - name: vpc1
    account: here
    cidr: $(random_cidr)
scripts:
  - name: ok.sh
    file: scripts/ok.sh
templates:
  - name: node
    account: here
    network: vpc1
    init: [ok.sh]
clusters:
  - name: rw
    groups:
      - name: node
        template: node
        size: 1
remote_writes:
  - name: prom
    url: http://127.0.0.1:$PPORT/api/v1/write
    headers:
      X-Scope-OrgID: herd-e2e
    relabel:
      - source_labels: [host]
        target_label: instance
      - action: labeldrop
        regex: host
      - action: drop
        source_labels: [__name__]
        regex: rw_hidden_.*
    queue:
      batch_send_deadline: 200ms
      min_backoff: 50ms
      max_backoff: 1s
  - name: bad
    url: http://127.0.0.1:$BAD_PORT/api/v1/write
    relabel:
      - action: keep
        source_labels: [__name__]
        regex: rw_to_bad
    queue:
      batch_send_deadline: 100ms
  - name: flaky
    url: http://127.0.0.1:$FLAKY_PORT/api/v1/write
    relabel:
      - action: keep
        source_labels: [__name__]
        regex: rw_to_flaky
    queue:
      batch_send_deadline: 100ms
      min_backoff: 50ms
      max_backoff: 200ms
EOF
	herd apply -f "$T/bp/rw.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show rw/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	export T PPORT BAD_PORT FLAKY_PORT BAD_PID FLAKY_PID ID1 CRED1
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# Prometheus may have been restarted by a test: its pid file knows
	prom_stop "$BATS_FILE_TMPDIR/prom"
	for p in "${BAD_PID:-}" "${FLAKY_PID:-}"; do
		if [ -n "$p" ]; then
			kill "$p" 2>/dev/null || true
			while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
		fi
	done
	server_cleanup
}

setup() {
	require_root
	prom_require
}

teardown() {
	# CI keeps only the output: a failed test prints what it saw (it failed
	# once in a full run and never alone)
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		herd remote-write ls 2>&1 || true
		diag_hosts rw
	fi
}

# prom_up: Prometheus (prom.bash) back with its remote write receiver on
# PPORT, its data kept in $T/prom/data across restarts.
prom_up() {
	prom_start "$T/prom" --web.enable-remote-write-receiver
}

host_ready() {
	[ "$(herd host ls --group rw/node --json | json '{items}[0]{state}' 2>/dev/null)" = ready ]
}

now_ms() { date +%s%3N; }

# promq QUERY [TIME]: the result of an instant query on Prometheus (JSON).
promq() {
	local args=(-sf --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1")
	[ -z "${2:-}" ] || args+=(--data-urlencode "time=$2")
	curl "${args[@]}"
}

# prom_value QUERY [TIME]: the value of the query's single result ("" if none).
prom_value() {
	# shellcheck disable=SC2016 # perl's $d, not the shell's
	promq "$@" | json '{data}{result}[0] ? $d->{data}{result}[0]{value}[1] : ""'
}

# rw FIELD NAME: that figure of remote NAME from GET /v1/remote-writes.
rw() {
	http GET /v1/remote-writes "$HERD_TOKEN" | cut -d' ' -f2- |
		json "{items} ? ((grep { \$_->{name} eq '$2' } @{\$d->{items}})[0] // {})->{$1} : ''"
}

# push NAME VALUE TS_MS: a sample of metric NAME pushed as the host's agent.
push() {
	local out
	out=$(http POST /v1/agent/metrics "$CRED1" \
		"{\"batches\":[{\"ts_ms\":$3,\"series\":[{\"name\":\"$1\",\"value\":$2}]}]}")
	[[ "$out" == "200 "* ]] || { echo "push: $out" >&2; return 1; }
}

# herd_count METRIC FROM TO: points of the host's METRIC in herd's store in [FROM, TO].
herd_count() {
	http GET "/v1/metrics/query?metric=$1&host=rw/node-1&from=$2&to=$3" "$HERD_TOKEN" | cut -d' ' -f2- |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); my $n = 0;
			$n += scalar(@{$_->{points}}) for @{$d->{series}}; print "$n\n"'
}

# drained NAME: nothing of remote NAME is waiting.
drained() {
	[ "$(rw pending_samples "$1")" = 0 ] && [ "$(rw pending_bytes "$1")" = 0 ]
}

@test "a bad remote_write is refused at apply, naming the file, line and field" {
	cat >"$T/bp/bad.yaml" <<EOF
remote_writes:
  - name: broken
    url: http://127.0.0.1:9/api/v1/write
    relabel:
      - source_labels: [host]
        target_label: instance
      - action: replace
        source_labels: [host]
        regex: "(unclosed"
        target_label: x
EOF
	run herd apply -f "$T/bp/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"bad.yaml:"*"relabel[1].regex"* ]]
	cat >"$T/bp/bad.yaml" <<EOF
remote_writes:
  - name: broken
    url: http://127.0.0.1:9/api/v1/write
    headers:
      Content-Encoding: gzip
EOF
	run herd apply -f "$T/bp/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"headers.Content-Encoding"*"reserved"* ]]
	cat >"$T/bp/bad.yaml" <<EOF
remote_writes:
  - name: broken
    url: ftp://127.0.0.1/x
EOF
	run herd apply -f "$T/bp/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"url"*"http://"* ]]
	run http GET /v1/remote_writes/broken "$HERD_TOKEN"
	[[ "$output" == "404 "* ]]
}

@test "herd's samples reach a real Prometheus with herd's labels, relabelled" {
	q='cpu_busy_pct{group="node",cluster="rw"}'
	if ! wait_for 60 sh -c "curl -sf --get 'http://127.0.0.1:$PPORT/api/v1/query' --data-urlencode 'query=$q' | grep -q node-1"; then
		cat "$T/prom/log" >&2
		http GET /v1/remote-writes "$HERD_TOKEN" >&2
		false
	fi
	run promq "$q"
	[[ "$output" == *'"instance":"node-1"'* ]]   # host renamed to instance
	[[ "$output" != *'"host":'* ]]               # and host dropped
	[[ "$output" == *'"__name__":"cpu_busy_pct"'* ]]
	# a drop rule: of two series of one batch, only the kept one arrives
	b=$(now_ms)
	run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"rw_hidden_x\",\"value\":1},{\"name\":\"rw_shown_x\",\"value\":2,\"labels\":{\"q\":\"a\"}}]}]}"
	[[ "$output" == "200 "* ]]
	wait_for 30 sh -c "curl -sf --get 'http://127.0.0.1:$PPORT/api/v1/query' --data-urlencode 'query=rw_shown_x' | grep -q '\"q\":\"a\"'"
	[ "$(promq 'count(rw_hidden_x)' | json '{data}{result}' )" = "[]" ]
	# herd's own store has both
	[ "$(herd_count rw_hidden_x "$b" "$b")" = 1 ]
	[ "$(rw dropped_4xx prom)" = 0 ]
	[ "$(rw dropped_queue prom)" = 0 ]
	[ "$(rw sent prom)" -gt 0 ]
}

@test "Prometheus down for 60 s while hosts push: every sample arrives once it is back" {
	wait_for 30 drained prom
	prom_stop "$T/prom"
	from=$(now_ms)
	# the agent pushes cpu_busy_pct every second; we push a probe twice a second
	for i in $(seq 1 120); do
		push rw_probe "$i" "$(now_ms)"
		sleep 0.5
	done
	to=$(now_ms)
	[ "$(rw retried prom)" -gt 0 ]
	[ "$(rw pending_samples prom)" -gt 0 ]
	prom_up
	wait_for 120 drained prom
	[ "$(rw dropped_queue prom)" = 0 ]
	[ "$(rw dropped_4xx prom)" = 0 ]
	at=$(perl -e "printf '%.3f', $to / 1000")
	range="$((to - from + 1))ms"
	[ "$(herd_count rw_probe "$from" "$to")" = 120 ]
	[ "$(prom_value "count_over_time(rw_probe{instance=\"node-1\"}[$range])" "$at")" = 120 ]
	want=$(herd_count cpu_busy_pct "$from" "$to")
	[ "$want" -ge 10 ]
	got=$(prom_value "sum(count_over_time(cpu_busy_pct{instance=\"node-1\",cluster=\"rw\"}[$range]))" "$at")
	echo "cpu_busy_pct in the outage: herd $want, Prometheus $got" >&3
	[ "$got" = "$want" ]
}

@test "a herd restart while Prometheus is down resends what was not acknowledged" {
	wait_for 30 drained prom
	prom_stop "$T/prom"
	from=$(now_ms)
	for i in $(seq 1 10); do
		push rw_restart "$i" "$(now_ms)"
	done
	to=$(now_ms)
	server_stop
	server_start --push-interval 1s
	prom_up
	wait_for 120 drained prom
	at=$(perl -e "printf '%.3f', $to / 1000")
	[ "$(prom_value "count_over_time(rw_restart[$((to - from + 1))ms])" "$at")" = 10 ]
}

@test "a 4xx is dropped and not retried; a 5xx is retried until it is taken" {
	b=$(now_ms)
	push rw_to_bad 1 "$b"
	push rw_to_flaky 1 "$b"
	wait_for 30 sh -c "[ \"\$(cat '$T/bad/requests' 2>/dev/null | wc -l)\" -ge 1 ]"
	wait_for 30 sh -c "grep -q 204 '$T/flaky/requests' 2>/dev/null"
	wait_for 10 drained bad
	[ "$(rw dropped_4xx bad)" = 1 ]
	[ "$(rw retried bad)" = 0 ]
	[ "$(rw sent bad)" = 0 ]
	[[ "$(rw last_error bad)" == *"400"*"refused: test"* ]]
	# one request, never again (the next sample would be another request)
	sleep 2
	[ "$(wc -l <"$T/bad/requests")" = 1 ]
	grep -q "remote_write 'bad'.*refused 1 samples with 400" "$HERD_DATA/server.log"
	# 503, 503, then 204: sent once, retried twice
	[ "$(tr '\n' ' ' <"$T/flaky/requests")" = "503 503 204 " ]
	[ "$(rw sent flaky)" = 1 ]
	[ "$(rw retried flaky)" = 2 ]
	[ "$(rw dropped_4xx flaky)" = 0 ]
}

rw_listed() { [ -n "$(rw name "$1")" ]; }
# rw_accounted NAME N: dropped_queue + pending_samples of NAME is N.
rw_accounted() { [ $(($(rw dropped_queue "$1") + $(rw pending_samples "$1"))) = "$2" ]; }

@test "a remote down past queue.max_bytes: the oldest are dropped, and every sample is counted" {
	dead=$(free_port)
	cat >"$T/bp/tiny.yaml" <<EOF
remote_writes:
  - name: tiny
    url: http://127.0.0.1:$dead/api/v1/write
    relabel:
      - action: keep
        source_labels: [__name__]
        regex: rw_tiny
    queue:
      max_bytes: 1MiB
EOF
	herd apply -f "$T/bp/tiny.yaml" >/dev/null
	wait_for 10 rw_listed tiny
	series=$(perl -e 'print join ",", map { "{\"name\":\"rw_tiny\",\"labels\":{\"i\":\"$_\"},\"value\":$_}" } 1..1000')
	b=$(now_ms)
	for i in $(seq 1 30); do
		run http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$((b + i)),\"series\":[$series]}]}"
		[[ "$output" == "200 "* ]]
	done
	# 30,000 samples of about 90 bytes do not fit in 1 MiB: the oldest
	# segments went, and no sample is lost uncounted
	wait_for 10 rw_accounted tiny 30000
	[ "$(rw dropped_queue tiny)" -gt 0 ]
	[ "$(rw pending_samples tiny)" -gt 0 ]
	[ "$(rw pending_bytes tiny)" -le $((1 << 20)) ]
	[ "$(rw sent tiny)" = 0 ]
	[ "$(rw dropped_4xx tiny)" = 0 ]
	grep -q "remote_write 'tiny': queue over 1048576 bytes: dropped its oldest" "$HERD_DATA/server.log"
	# a deleted remote takes its queue with it
	[ -d "$HERD_DATA/remote-write/tiny" ]
	run http DELETE /v1/remote_writes/tiny "$HERD_TOKEN"
	[[ "$output" == 2* ]]
	wait_for 10 refute rw_listed tiny
	[ ! -d "$HERD_DATA/remote-write/tiny" ]
}

@test "/metrics and herd remote-write ls show each remote's figures" {
	run http GET /metrics "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
	[[ "$output" == *'herd_remote_write_samples_total{remote="bad",outcome="dropped_4xx"} 1'* ]]
	[[ "$output" == *'herd_remote_write_samples_total{remote="prom",outcome="sent"} '* ]]
	[[ "$output" == *'herd_remote_write_pending_bytes{remote="prom"} '* ]]
	[[ "$output" == *'herd_remote_write_shards{remote="prom"} '* ]]
	# and the exposition stays valid with them
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" >"$T/metrics.txt"
	run promtool check metrics <"$T/metrics.txt"
	echo "$output"
	[ "$status" -eq 0 ]
	run herd remote-write ls
	[ "$status" -eq 0 ]
	[[ "$output" == *"bad"*"http://127.0.0.1:$BAD_PORT/api/v1/write"* ]]
	[[ "$output" == *"refused with 400"* ]]
	run herd remote-write ls --json
	[ "$(echo "$output" | json_count '{items}')" = 3 ]   # tiny was deleted
}
