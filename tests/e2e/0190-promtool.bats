#!/usr/bin/env bats
# /metrics passes `promtool check metrics` (issue 13): a real local host's
# agent pushes its system metrics and a monitor's custom metric, the host
# credential adds a dropped-batch count and a custom metric named like a
# renamed system one; the exposition has HELP and TYPE on every family, base
# units (docs/metrics.md, "Names on /metrics"), and promtool finds nothing.
# Needs root (local hosts are network namespaces) and promtool.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	command -v promtool >/dev/null || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR/scripts"
	cp "$BATS_TEST_DIRNAME/fixtures/metrics/scripts/ok.sh" "$BP_DIR/scripts/"
	cat >"$BP_DIR/prom.yaml" <<YAML
accounts:
  - name: here
    driver: local
networks:
  - name: net
    account: here
    cidr: $(random_cidr)
scripts:
  - name: ok.sh
    file: scripts/ok.sh
templates:
  - name: pt
    account: here
    network: net
    init: [ok.sh]
monitors:
  - name: queue
    command: "echo queue_depth 3; echo queue_age_seconds 1.5"
    interval: 1s
    timeout: 2s
clusters:
  - name: pt
    groups:
      - name: node
        template: pt
        size: 1
        monitors: [queue]
YAML
	herd apply -f "$BP_DIR/prom.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show pt/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	VIEWER=$(herd token create --role viewer --name prom-viewer)
	export BP_DIR ID1 CRED1 VIEWER
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
	command -v promtool >/dev/null || skip "promtool is not installed (apt-get install -y prometheus)"
}

host_ready() {
	[ "$(herd host show pt/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

# in_host ID CMD...: runs CMD in the host's mount and network namespaces.
in_host() {
	local pid
	pid=$(cat "$HERD_DATA/hosts/$1/pid")
	shift
	nsenter -t "$pid" -m -n -- "$@"
}

# the agent's system metrics and the monitor's lines are in the store
pushed() {
	local ls
	ls=$(herd metrics ls --host pt/node-1)
	for m in cpu_busy_pct net_rx_bytes_per_s uptime_s disk_used_pct queue_depth monitor_up; do
		[[ "$ls" == *"$m "* ]] || return 1
	done
}

scrape() {
	curl -sf -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics"
}

@test "/metrics passes promtool check metrics" {
	wait_for 30 pushed
	b=$(($(date +%s%3N) - 1000))
	# dropped batches become a counter; a custom metric with a label to escape
	run curl -sf -H "Authorization: Bearer $CRED1" -H 'Content-Type: application/json' \
		--data-binary "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"t_custom\",\"labels\":{\"path\":\"a\\\"b\"},\"value\":2.5}]}],\"dropped\":2}" \
		"$HERD_URL/v1/agent/metrics"
	[ "$status" -eq 0 ]
	scrape >"$BATS_TEST_TMPDIR/metrics.txt"
	run promtool check metrics <"$BATS_TEST_TMPDIR/metrics.txt"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# every family has HELP and TYPE; one TYPE per family
	types=$(grep -c '^# TYPE ' "$BATS_TEST_TMPDIR/metrics.txt")
	helps=$(grep -c '^# HELP ' "$BATS_TEST_TMPDIR/metrics.txt")
	[ "$types" -gt 20 ]
	[ "$types" = "$helps" ]
	[ -z "$(grep '^# TYPE ' "$BATS_TEST_TMPDIR/metrics.txt" | awk '{print $3}' | sort | uniq -d)" ]
}

@test "/metrics: base units, ratios, counters; custom metrics keep their names" {
	wait_for 30 pushed
	out=$(scrape)
	grep -qx '# TYPE cpu_busy_ratio gauge' <<<"$out"
	grep -qx '# TYPE net_rx_bytes_per_second gauge' <<<"$out"
	grep -qx '# TYPE uptime_seconds gauge' <<<"$out"
	grep -qx '# TYPE agent_dropped_batches_total counter' <<<"$out"
	grep -qx '# TYPE queue_depth untyped' <<<"$out"
	grep -q '^# HELP queue_depth ' <<<"$out"
	grep -q '^queue_depth{.*monitor="queue".*} 3 ' <<<"$out"
	# the abbreviated names are gone
	run grep -qE '^[a-z_0-9]*(_pct|_per_s|_s)[{ ]' <<<"$out"
	[ "$status" -ne 0 ]
	# a ratio is the stored percentage / 100 (same sample: same timestamp);
	# herd's own API keeps the names policies use
	read -r ratio ts < <(awk '$1 ~ /^mem_used_ratio\{/ { print $2, $3; exit }' <<<"$out")
	[ -n "$ts" ]
	pct=$(curl -sf -H "Authorization: Bearer $VIEWER" \
		"$HERD_URL/v1/metrics/query?metric=mem_used_pct&host=pt/node-1&from=$ts&to=$ts" |
		json '{series}[0]{points}[0][1]')
	[ -n "$pct" ]
	perl -e 'exit !(abs($ARGV[0] / 100 - $ARGV[1]) < 1e-9 && $ARGV[1] > 0 && $ARGV[1] <= 1)' "$pct" "$ratio"
}

@test "/metrics: a custom metric named like a renamed one does not make a second family" {
	b=$(($(date +%s%3N) - 500))
	run curl -sf -H "Authorization: Bearer $CRED1" -H 'Content-Type: application/json' \
		--data-binary "{\"batches\":[{\"ts_ms\":$b,\"series\":[{\"name\":\"cpu_busy_ratio\",\"value\":7}]}]}" \
		"$HERD_URL/v1/agent/metrics"
	[ "$status" -eq 0 ]
	scrape >"$BATS_TEST_TMPDIR/metrics.txt"
	run promtool check metrics <"$BATS_TEST_TMPDIR/metrics.txt"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^# TYPE cpu_busy_ratio ' "$BATS_TEST_TMPDIR/metrics.txt")" = 1 ]
}
