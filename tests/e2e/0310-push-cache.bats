#!/usr/bin/env bats
# The agent configuration and the cluster's quotas behind a push are kept
# in memory per (cluster, group) and computed again only after a resource
# changed (issue 15): many pushes do not read the store again (counted by
# herd_agent_config_builds_total on /metrics), and no push answers a stale
# configuration version or quota after a monitor, group or cluster changed
# through the API or `herd apply`. One local host (a network namespace):
# needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	CIDR=$(random_cidr)
	blueprint "[busy]" "" >"$BP_DIR/pc.yaml"
	herd apply -f "$BP_DIR/pc.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show pc/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	export BP_DIR CIDR ID1 CRED1
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# blueprint MONITORS CLUSTER-EXTRA: the metrics fixture with one host, the
# group's monitor list MONITORS and CLUSTER-EXTRA lines in the cluster.
blueprint() {
	local extra=
	[ -n "$2" ] && extra="\n    $2"
	sed -e "s|@CIDR@|$CIDR|" -e 's|size: 2|size: 1|' -e "s|monitors: \[busy\]|monitors: $1|" \
		-e "s|^  - name: mx\$|  - name: pc$extra|" \
		-e 's|^    timeout: 2s$|    timeout: 2s\n  - name: idle\n    command: cat /run/queue/idle\n    interval: 2s\n    timeout: 1s|' \
		"$BATS_TEST_DIRNAME/fixtures/metrics/metrics.yaml"
}

host_ready() {
	[ "$(herd host show pc/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

builds() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" |
		awk '$1 == "herd_agent_config_builds_total" { print $2 }'
}

# push [BODY]: the config_version a push answers (an empty push by default).
push_version() {
	local out
	out=$(http POST /v1/agent/metrics "$CRED1" "${1:-{\"batches\":[]\}}")
	[[ "$out" == "200 "* ]] || { echo "push: $out" >&2; return 1; }
	echo "${out#200 }" | json '{config_version}'
}

config_version() {
	local out
	out=$(http GET /v1/agent/config "$CRED1")
	[[ "$out" == "200 "* ]] || { echo "config: $out" >&2; return 1; }
	echo "${out#200 }" | json '{version}'
}

@test "a hundred pushes with samples read the store for the configuration at most once" {
	local b0 b1 ts out
	push_version >/dev/null
	b0=$(builds)
	[ -n "$b0" ]
	ts=$(($(date +%s%3N) - 100000))
	for i in $(seq 1 100); do
		out=$(http POST /v1/agent/metrics "$CRED1" "{\"batches\":[{\"ts_ms\":$((ts + i * 100)),\"series\":[{\"name\":\"pc_test\",\"value\":$i}]}]}")
		[[ "$out" == "200 "* ]] || { echo "push $i: $out"; false; }
		[ "$(echo "${out#200 }" | json '{accepted}')" = 1 ]
	done
	b1=$(builds)
	echo "builds before $b0, after 100 pushes $b1"
	[ "$((b1 - b0))" -le 1 ]
}

@test "no push answers a stale version after a monitor, then the group's list, changed" {
	local v1 v2 v3 v4
	v1=$(push_version)
	[ "$v1" = "$(config_version)" ]
	# the monitor changes through the API: the very next push says so
	run http PUT /v1/monitors/busy "$HERD_TOKEN" '{"name":"busy","command":"cat /run/queue/busy","interval":"1s","timeout":"3s"}'
	[[ "$output" == "200 "* ]]
	v2=$(push_version)
	[ "$v2" != "$v1" ]
	[ "$v2" = "$(config_version)" ]
	[ "$(http GET /v1/agent/config "$CRED1" | cut -d' ' -f2- | json '{monitors}[0]{timeout_s}')" = 3 ]
	# the group's monitor list changes through apply
	blueprint "[busy, idle]" "" >"$BP_DIR/pc2.yaml"
	herd apply -f "$BP_DIR/pc2.yaml" >/dev/null
	v3=$(push_version)
	[ "$v3" != "$v2" ]
	[ "$v3" = "$(config_version)" ]
	[ "$(http GET /v1/agent/config "$CRED1" | cut -d' ' -f2- | json_count '{monitors}')" = 2 ]
	# a monitor of the list changes
	run http PUT /v1/monitors/idle "$HERD_TOKEN" '{"name":"idle","command":"cat /run/queue/idle","interval":"3s","timeout":"1s"}'
	[[ "$output" == "200 "* ]]
	v4=$(push_version)
	[ "$v4" != "$v3" ]
	# back to the first content: the first version again (the version is the content's)
	run http PUT /v1/monitors/busy "$HERD_TOKEN" '{"name":"busy","command":"cat /run/queue/busy","interval":"1s","timeout":"2s"}'
	blueprint "[busy]" "" >"$BP_DIR/pc3.yaml"
	herd apply -f "$BP_DIR/pc3.yaml" >/dev/null
	[ "$(push_version)" = "$v1" ]
	[ "$(config_version)" = "$v1" ]
}

@test "a cluster's quota lowered after pushes holds for the very next push" {
	local ts body out
	push_version >/dev/null
	blueprint "[busy]" "series_per_host: 40" >"$BP_DIR/pc4.yaml"
	run herd apply -f "$BP_DIR/pc4.yaml"
	[ "$status" -eq 0 ]
	ts=$(($(date +%s%3N) - 1000))
	body=$(perl -e 'print "{\"batches\":[{\"ts_ms\":$ARGV[0],\"series\":[";
		print join(",", map { "{\"name\":\"pc_many\",\"labels\":{\"i\":\"$_\"},\"value\":1}" } 1 .. 100);
		print "]}]}"' "$ts")
	out=$(http POST /v1/agent/metrics "$CRED1" "$body")
	echo "$out"
	[[ "$out" == "200 "* ]]
	[ "$(echo "${out#200 }" | json '{refused}{reason}')" = host_quota ]
}
