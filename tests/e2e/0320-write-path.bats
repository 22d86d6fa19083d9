#!/usr/bin/env bats
# The write path (issue 15): a change and its audit row are one commit (one
# fdatasync per POST, refused ones included), and agents' heartbeats are
# kept in memory and written lazily, so a quiet fleet does not fsync per
# heartbeat while `herd host show` still shows them fresh. fdatasync calls
# are counted with strace attached to the server. Needs root (strace -p;
# hosts in namespaces).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	stop_trace
	server_cleanup
}

setup() {
	require_root
	command -v strace >/dev/null || skip "strace is not installed"
}

# start_trace: logs the server's fdatasync/fsync calls (all threads, with
# the file each one syncs) into $HERD_DATA/trace.out until stop_trace. Waits
# until strace is attached.
start_trace() {
	rm -f "$HERD_DATA/trace.out" "$HERD_DATA/trace.err"
	strace -f -y -e trace=fdatasync,fsync -o "$HERD_DATA/trace.out" -p "$SERVER_PID" \
		2>"$HERD_DATA/trace.err" &
	TRACE_PID=$!
	echo "$TRACE_PID" >"$HERD_DATA/trace.pid"
	wait_for 10 grep -q "Process $SERVER_PID attached" "$HERD_DATA/trace.err"
}

# stop_trace: detaches strace (SIGINT makes it print its summary).
stop_trace() {
	[ -n "${HERD_DATA:-}" ] && [ -f "$HERD_DATA/trace.pid" ] || return 0
	local p
	p=$(cat "$HERD_DATA/trace.pid")
	rm -f "$HERD_DATA/trace.pid"
	kill -INT "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# syncs: fdatasync + fsync calls on the store (herd.db and its -wal) in the
# last trace; the TSDB's WAL (metric pushes) is not the store.
syncs() {
	grep -E 'f(data)?sync\([0-9]+<' "$HERD_DATA/trace.out" | grep -vc '/tsdb/' || true
}

post() { # post PATH BODY -> prints the HTTP status
	curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $HERD_TOKEN" \
		-H 'Content-Type: application/json' --data-binary "$2" "$HERD_URL$1"
}

@test "a change and its audit row are one commit: N POSTs cost at most N+3 fdatasyncs" {
	local n=40 i
	skip_on_pg "counts the server's fdatasyncs of herd.db (PostgreSQL syncs in its own processes)"
	start_trace
	for i in $(seq 1 $n); do
		[ "$(post /v1/tokens "{\"name\":\"wp$i\",\"role\":\"viewer\"}")" = 201 ]
	done
	stop_trace
	echo "fdatasync+fsync for $n POSTs: $(syncs)" >&3
	[ "$(syncs)" -ge "$n" ]
	[ "$(syncs)" -le $((n + 3)) ]
	# each one audited
	[ "$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/audit?limit=1000" |
		grep -o '"path":"/v1/tokens"' | grep -c .)" -ge "$n" ]
}

@test "a refused change still has its audit row, in one commit" {
	local n=20 i
	start_trace
	for i in $(seq 1 $n); do
		[ "$(post /v1/tokens '{"name":"bad name!","role":"viewer"}')" = 400 ]
	done
	stop_trace
	echo "fdatasync+fsync for $n refused POSTs: $(syncs)" >&3
	[ "$(syncs)" -le $((n + 3)) ]
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/audit?limit=1" |
		grep -q '"status":400'
}

# ready_at_least N: at least N hosts are ready.
ready_at_least() {
	[ "$(herd host ls --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}}), "\n"')" -ge "$1" ]
}

# heartbeat_age CLUSTER/NAME: seconds since the host's heartbeat, as shown.
heartbeat_age() {
	local hb
	hb=$(herd host show "$1" --json | json '{heartbeat}')
	echo $(( $(date +%s) - $(date -d "$hb" +%s) ))
}

@test "heartbeats are kept in memory: no fdatasync per heartbeat, host show stays fresh" {
	local bp=$BATS_FILE_TMPDIR/bp
	mkdir -p "$bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/hosts/scripts" "$bp/"
	sed "s|@CIDR@|$(random_cidr)|" "$BATS_TEST_DIRNAME/fixtures/hosts/hosts.yaml" >"$bp/hosts.yaml"
	run herd apply -f "$bp/hosts.yaml"
	[ "$status" -eq 0 ]
	wait_for 90 ready_at_least 5
	sleep 1
	# 5 hosts x 12 s at one heartbeat per 5 s: ~12 heartbeats, none fsynced
	start_trace
	sleep 12
	stop_trace
	echo "fdatasync+fsync in 12 s at 5 ready hosts: $(syncs)" >&3
	grep -E 'f(data)?sync' "$HERD_DATA/trace.out" | grep -v '/tsdb/' || true
	[ "$(syncs)" -le 2 ]
	# what readers see is the heartbeat in memory
	[ "$(heartbeat_age demo/master-1)" -le 7 ]
}
