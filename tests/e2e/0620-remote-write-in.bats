#!/usr/bin/env bats
# Prometheus's remote_write into herd (issue 20): a real Prometheus
# (Debian's) scrapes a static file that names a herd host in a `host`
# label and remote-writes to POST /api/v1/write with an operator token from
# a file; `herd metrics query` returns the series under that host with
# herd's own cluster/group labels, a series naming no herd host is not
# stored (counted unknown_host on /metrics), a wrong token is refused (401,
# audited; Prometheus drops the batch), a malformed body is 400 naming the
# problem and a body that is not snappy protobuf is 415. Needs root (local
# hosts are network namespaces).

load lib
load prom

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	cat >"$BP_DIR/rw.yaml" <<-YAML
	accounts:
	  - name: here
	    driver: local
	networks:
	  - name: rwnet
	    account: here
	    cidr: $(random_cidr)
	scripts:
	  - name: ok.sh
	    file: scripts/ok.sh
	templates:
	  - name: node
	    account: here
	    network: rwnet
	    init: [ok.sh]
	clusters:
	  - name: rwin
	    groups:
	      - name: node
	        template: node
	        size: 1
	YAML
	herd apply -f "$BP_DIR/rw.yaml" >/dev/null
	wait_for 60 host_ready
	OPERATOR=$(herd token create --role operator --name rw-prom)
	VIEWER=$(herd token create --role viewer --name rw-viewer)
	export BP_DIR OPERATOR VIEWER
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	# the tests' processes, by the PIDs they wrote (a test's variables do
	# not reach teardown_file)
	prom_stop "$BATS_FILE_TMPDIR/prom"
	page_stop "$BATS_FILE_TMPDIR/prom"
	server_cleanup
}

setup() {
	require_root
}

host_ready() {
	herd host show rwin/node-1 --json 2>/dev/null | grep -q '"state": *"ready"'
}

# rw_count OUTCOME: herd_remote_write_received_samples_total{outcome=...}
rw_count() {
	curl -sf -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics" |
		sed -n "s/^herd_remote_write_received_samples_total{outcome=\"$1\"} //p"
}

positive() { [ -n "$1" ] && [ "$1" -gt 0 ]; }

# the newest sample of rw_test_value on rwin/node-1, by `herd metrics query`
stored_42() {
	[ "$(herd metrics query rw_test_value --host rwin/node-1 --since 5m --json 2>/dev/null |
		json '{series}[0]{points}[-1][1]' 2>/dev/null)" = 42 ]
}

@test "a real Prometheus remote-writes into herd: the series is under its host" {
	prom_require
	pdir=$BATS_FILE_TMPDIR/prom
	mkdir -p "$pdir/www"
	# the scraped page: one series of the herd host, one of a host herd
	# does not know, one that tries to write into another cluster
	cat >"$pdir/www/metrics" <<-EOF
	rw_test_value{host="node-1",cluster="other",group="evil"} 42
	rw_test_value{host="no-such-host"} 7
	EOF
	page_start "$pdir"
	printf '%s' "$OPERATOR" >"$pdir/token"
	chmod 600 "$pdir/token"
	cat >"$pdir/prometheus.yml" <<-EOF
	global:
	  scrape_interval: 1s
	scrape_configs:
	  - job_name: page
	    honor_labels: true
	    static_configs:
	      - targets: ['127.0.0.1:$WPORT']
	remote_write:
	  - url: $HERD_URL/api/v1/write
	    authorization:
	      credentials_file: $pdir/token
	    queue_config:
	      batch_send_deadline: 1s
	      min_backoff: 100ms
	      max_backoff: 1s
	EOF
	prom_start "$pdir"
	if ! wait_for 90 stored_42; then
		tail -20 "$pdir/log" >&2
		tail -20 "$HERD_DATA/server.log" >&2
		false
	fi
	# herd's labels, not the sender's: cluster rwin, group node
	run curl -sf -H "Authorization: Bearer $VIEWER" \
		"$HERD_URL/v1/metrics/latest?metric=rw_test_value&host=rwin/node-1"
	[[ "$output" == *'"cluster":"rwin"'* ]] || [[ "$output" == *'"cluster": "rwin"'* ]]
	[[ "$output" == *'"group":"node"'* ]] || [[ "$output" == *'"group": "node"'* ]]
	[[ "$output" != *evil* ]]
	[[ "$output" != *other* ]]
	# the unknown host's series is not stored anywhere, and is counted
	run curl -sf -H "Authorization: Bearer $VIEWER" "$HERD_URL/v1/metrics/latest?metric=rw_test_value"
	[[ "$output" != *no-such-host* ]]
	[ "$(echo "$output" | json_count '{items}')" = 1 ]
	positive "$(rw_count stored)"
	positive "$(rw_count unknown_host)"

	# a wrong token: Prometheus's posts are refused with 401 (audited)
	printf 'not-a-token' >"$pdir/token"
	wait_for 60 sh -c "curl -sf -H 'Authorization: Bearer $HERD_TOKEN' '$HERD_URL/v1/audit' |
		grep -q '\"path\": *\"/api/v1/write\"[^}]*\"status\": *401\\|\"status\": *401[^}]*\"path\": *\"/api/v1/write\"'"
	wait_for 30 grep -q '401' "$pdir/log"
	prom_stop "$pdir"
	page_stop "$pdir"
}

@test "malformed remote write bodies: 400 naming the problem, 415 for another encoding" {
	printf 'garbage, not snappy' >"$BATS_TEST_TMPDIR/bad"
	run curl -s -o "$BATS_TEST_TMPDIR/out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/x-protobuf' \
		-H 'Content-Encoding: snappy' -H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
		--data-binary @"$BATS_TEST_TMPDIR/bad" "$HERD_URL/api/v1/write"
	[ "$output" = 400 ]
	grep -qi 'snappy' "$BATS_TEST_TMPDIR/out"
	# not snappy: 415 naming the header
	run curl -s -o "$BATS_TEST_TMPDIR/out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/x-protobuf' \
		--data-binary @"$BATS_TEST_TMPDIR/bad" "$HERD_URL/api/v1/write"
	[ "$output" = 415 ]
	grep -q 'Content-Encoding' "$BATS_TEST_TMPDIR/out"
	run curl -s -o "$BATS_TEST_TMPDIR/out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' \
		-H 'Content-Encoding: snappy' --data-binary '{}' "$HERD_URL/api/v1/write"
	[ "$output" = 415 ]
	grep -q 'Content-Type' "$BATS_TEST_TMPDIR/out"
	# a viewer may not write; no token is 401
	run http POST /api/v1/write "$VIEWER" '{}'
	[[ "$output" == "403 "* ]]
	run http POST /api/v1/write "" '{}'
	[[ "$output" == "401 "* ]]
	[ -n "$(rw_count invalid)" ]
}

@test "the Grafana dashboard is valid JSON whose metrics herd exposes or documents" {
	dash=$BATS_TEST_DIRNAME/../../examples/grafana/herd-dashboard.json
	python3 -m json.tool "$dash" >/dev/null
	curl -sf -H "Authorization: Bearer $VIEWER" "$HERD_URL/metrics" >"$BATS_TEST_TMPDIR/metrics"
	# every metric name in a panel's expr: in herd's /metrics now, or in its docs
	run python3 - "$dash" "$BATS_TEST_TMPDIR/metrics" "$BATS_TEST_DIRNAME"/../../docs/*.md <<-'PY'
	import json, re, sys
	dash = json.load(open(sys.argv[1]))
	known = open(sys.argv[2]).read() + "".join(open(f).read() for f in sys.argv[3:])
	promql = {"sum", "avg", "min", "max", "count", "by", "without", "rate", "increase",
		  "irate", "label_values", "on", "ignoring", "topk", "bottomk"}
	names = set()
	assert dash["templating"]["list"][0]["type"] == "datasource"
	for p in dash["panels"]:
	    assert p["datasource"]["uid"] == "${datasource}", p["title"]
	    for t in p["targets"]:
	        e = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"|\$\w+', " ", t["expr"])
	        e = re.sub(r'\b(by|without)\s*\([^)]*\)', " ", e)
	        for n in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', e):
	            if n not in promql:
	                names.add(n)
	missing = [n for n in sorted(names) if not re.search(r'\b%s\b' % re.escape(n), known)]
	print("names:", " ".join(sorted(names)))
	if missing:
	    sys.exit("not exposed or documented: " + " ".join(missing))
	PY
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *herd_remote_write_received_samples_total* ]]
	[[ "$output" == *cpu_busy_ratio* ]]
}
