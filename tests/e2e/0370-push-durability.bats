#!/usr/bin/env bats
# The durability policy of pushed samples (issue 15): `herd server
# --metrics-sync D` (default 1s) answers a push once its samples are written
# to the metric store's WAL and fdatasyncs the WAL at most D later; 0 syncs
# before each answer, as before. Shown through /metrics
# (herd_tsdb_wal_fsyncs_total, herd_tsdb_wal_unsynced_bytes) and kill -9:
# inside the window nothing is lost either (the kernel holds what was
# written; only a power loss could lose that window, which no test here can
# cause), after it the WAL is on disk. One local host (a network
# namespace) for its credential: needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BP_DIR/"
	sed -e "s|@CIDR@|$(random_cidr)|" -e 's|size: 2|size: 1|' -e 's|^  - name: mx$|  - name: pd|' \
		"$BATS_TEST_DIRNAME/fixtures/metrics/metrics.yaml" >"$BP_DIR/pd.yaml"
	herd apply -f "$BP_DIR/pd.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show pd/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	VIEWER=$(herd token create --role viewer --name durability-viewer)
	export BP_DIR ID1 CRED1 VIEWER
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

host_ready() {
	[ "$(herd host show pd/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

# figure NAME: the value of the server's own figure NAME on /metrics.
figure() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" |
		awk -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }'
}

synced() { [ "$(figure herd_tsdb_wal_unsynced_bytes)" = 0 ]; }

# restart ARGS...: the same server (data dir, port) again with ARGS.
restart() {
	server_stop
	server_start "$@"
}

kill9() {
	SERVER_PID=$(cat "$HERD_DATA/server.pid")
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done
	SERVER_PID=
}

# push_n METRIC N BASE: N pushes of METRIC, values 1..N at BASE + i s,
# each answered 200 with its sample accepted.
push_n() {
	local out i
	for i in $(seq 1 "$2"); do
		out=$(http POST /v1/agent/metrics "$CRED1" \
			"{\"batches\":[{\"ts_ms\":$(($3 + i * 1000)),\"series\":[{\"name\":\"$1\",\"value\":$i}]}]}")
		[[ "$out" == "200 "* ]] || { echo "push $i: $out" >&2; return 1; }
		[ "$(echo "${out#200 }" | json '{accepted}')" = 1 ] || { echo "push $i: $out" >&2; return 1; }
	done
}

# stored METRIC FROM: how many samples of METRIC the host has since FROM.
stored() {
	local out
	out=$(http GET "/v1/metrics/query?metric=$1&host=pd/node-1&from=$2&to=$(date +%s%3N)" "$VIEWER")
	[[ "$out" == "200 "* ]] || { echo "query: $out" >&2; return 1; }
	echo "${out#200 }" | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		my $n = 0; $n += scalar @{$_->{points}} for @{$d->{series}}; print $n'
}

@test "--metrics-sync is validated, naming the option" {
	for bad in 61s -1s soon 1x; do
		run "$HERD" server --data "$BATS_TEST_TMPDIR/d" --metrics-sync "$bad"
		[ "$status" = 2 ]
		[[ "$output" == *"--metrics-sync: want a duration from 0 to 60s"* ]]
	done
	run "$HERD" server --help
	[[ "$output" == *"--metrics-sync D"* ]]
}

@test "inside the window: pushes are answered before any fdatasync, and kill -9 loses none of them" {
	restart --metrics-sync 60s
	b=$(($(date +%s%3N) - 60000))
	f0=$(figure herd_tsdb_wal_fsyncs_total)
	push_n t_window 20 "$b"
	# answered without a sync: the WAL holds them, not yet on disk
	[ "$(figure herd_tsdb_wal_fsyncs_total)" = "$f0" ]
	[ "$(figure herd_tsdb_wal_unsynced_bytes)" -gt 0 ]
	[ "$(stored t_window "$b")" = 20 ]
	kill9
	server_start --metrics-sync 60s
	[ "$(stored t_window "$b")" = 20 ]
}

@test "after the window: the WAL is synced, and kill -9 loses nothing" {
	restart --metrics-sync 1s
	b=$(($(date +%s%3N) - 60000))
	f0=$(figure herd_tsdb_wal_fsyncs_total)
	push_n t_synced 20 "$b"
	wait_for 30 synced
	[ "$(figure herd_tsdb_wal_fsyncs_total)" -gt "$f0" ]
	kill9
	server_start --metrics-sync 1s
	[ "$(stored t_synced "$b")" = 20 ]
}

@test "--metrics-sync 0: every push is fdatasync'ed before its answer" {
	restart --metrics-sync 0
	b=$(($(date +%s%3N) - 60000))
	f0=$(figure herd_tsdb_wal_fsyncs_total)
	push_n t_each 20 "$b"
	# one push at a time: each waited for its own fdatasync
	[ "$(figure herd_tsdb_wal_fsyncs_total)" -ge $((f0 + 20)) ]
	kill9
	server_start --metrics-sync 0
	[ "$(stored t_each "$b")" = 20 ]
}
