#!/usr/bin/env bats
# The single writer (issue 15): HTTP threads hand every audited change to
# one writer thread that runs a batch of them in ONE transaction (group
# commit: one fdatasync per batch) and answers each once its batch is
# durable; reads stay on the HTTP threads and never wait on it. The store's
# write lock is held from another process (python's sqlite3, BEGIN
# IMMEDIATE; psql and the writers' advisory lock on PostgreSQL) to make
# writes wait for as long as a test needs. Needs root
# (strace -p).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start --log-level debug
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	stop_trace
	release_lock
	server_cleanup
}

setup() {
	require_root
	command -v strace >/dev/null || skip "strace is not installed"
	command -v python3 >/dev/null || skip "python3 is not installed"
	OUT=$(mktemp -d "$BATS_FILE_TMPDIR/out.XXXXXX")
}

teardown() {
	release_lock
	# the test's own background curls
	for p in ${CURL_PIDS:-}; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CURL_PIDS=
}

# start_trace/stop_trace/syncs: as in 0320-write-path.bats: the server's
# fdatasync/fsync calls on the store (not the TSDB), all threads.
start_trace() {
	rm -f "$HERD_DATA/trace.out" "$HERD_DATA/trace.err"
	strace -f -y -e trace=fdatasync,fsync -o "$HERD_DATA/trace.out" -p "$SERVER_PID" \
		2>"$HERD_DATA/trace.err" &
	TRACE_PID=$!
	echo "$TRACE_PID" >"$HERD_DATA/trace.pid"
	wait_for 10 grep -q "Process $SERVER_PID attached" "$HERD_DATA/trace.err"
}

stop_trace() {
	[ -n "${HERD_DATA:-}" ] && [ -f "$HERD_DATA/trace.pid" ] || return 0
	local p
	p=$(cat "$HERD_DATA/trace.pid")
	rm -f "$HERD_DATA/trace.pid"
	kill -INT "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

syncs() {
	grep -E 'f(data)?sync\([0-9]+<' "$HERD_DATA/trace.out" | grep -vc '/tsdb/' || true
}

# hold_lock: another process takes the store's write lock (SQLite: BEGIN
# IMMEDIATE; PostgreSQL: the advisory lock every write transaction takes
# first, store-pg.c's PG_LOCK_WRITE) and keeps it until release_lock (at
# most 30 s). Waits until it holds it.
hold_lock() {
	local dsn
	rm -f "$HERD_DATA/lock.held" "$HERD_DATA/lock.release"
	dsn=$(store_dsn "$HERD_DATA")
	if [ -n "$dsn" ]; then
		psql "$dsn" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<EOF &
BEGIN;
SELECT pg_advisory_xact_lock(1751478884);
\! touch '$HERD_DATA/lock.held'
\! i=0; while [ ! -e '$HERD_DATA/lock.release' ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i + 1)); done
COMMIT;
EOF
	else
		python3 - "$HERD_DATA/herd.db" "$HERD_DATA/lock.held" "$HERD_DATA/lock.release" <<'EOF' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
db.execute("COMMIT")
EOF
	fi
	LOCK_PID=$!
	echo "$LOCK_PID" >"$HERD_DATA/lock.pid"
	wait_for 10 test -f "$HERD_DATA/lock.held"
}

release_lock() {
	[ -n "${HERD_DATA:-}" ] && [ -f "$HERD_DATA/lock.pid" ] || return 0
	local p
	p=$(cat "$HERD_DATA/lock.pid")
	rm -f "$HERD_DATA/lock.pid"
	touch "$HERD_DATA/lock.release"
	wait "$p" 2>/dev/null || true
}

# script_body NAME: a new script's JSON.
script_body() {
	printf '{"name":"%s","content":"#!/bin/sh\\necho %s\\n"}' "$1" "$1"
}

# send_bg ID METHOD PATH BODY: the request in the background; its status
# goes to $OUT/ID.status, its headers to $OUT/ID.headers.
send_bg() {
	curl -s -o /dev/null -D "$OUT/$1.headers" -w '%{http_code}\n' -X "$2" \
		-H "Authorization: Bearer $HERD_TOKEN" -H 'Content-Type: application/json' \
		--data-binary "$4" "$HERD_URL$3" >"$OUT/$1.status" &
	CURL_PIDS="${CURL_PIDS:-} $!"
}

# wait_bg: every background request answered.
wait_bg() {
	for p in $CURL_PIDS; do
		wait "$p" || true
	done
	CURL_PIDS=
}

# established_at_least N: N client connections open to the server.
established_at_least() {
	[ "$(ss -Htn state established "( dport = :$HERD_PORT )" | grep -c .)" -ge "$1" ]
}

# answered N: at least N background requests have their status.
answered() {
	[ "$(cat "$OUT"/*.status 2>/dev/null | grep -c '^[0-9]\{3\}$')" -ge "$1" ]
}

script_count() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/scripts" |
		grep -o "\"name\":\"$1[0-9]*\.sh\"" | grep -c . || true
}

@test "40 concurrent changes are all stored and answered, with fewer fdatasyncs than changes" {
	local n=40
	start_trace
	seq 1 $n | xargs -P 8 -I{} sh -c '
		curl -s -o /dev/null -w "%{http_code}\n" -X POST \
			-H "Authorization: Bearer $HERD_TOKEN" -H "Content-Type: application/json" \
			--data-binary "{\"name\":\"gc{}.sh\",\"content\":\"#!/bin/sh\\necho {}\\n\"}" \
			"$HERD_URL/v1/scripts"' >"$OUT/codes"
	stop_trace
	echo "fdatasync+fsync for $n changes from 8 clients: $(syncs)" >&3
	[ "$(grep -c '^201$' "$OUT/codes")" -eq $n ]
	[ "$(script_count gc)" -eq $n ]
	[ "$(syncs)" -lt $n ]
	# each one audited
	[ "$(curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/audit?limit=1000" |
		grep -o '"path":"/v1/scripts"' | grep -c .)" -ge $n ]
}

@test "a GET answers while changes wait for the store's write lock; they answer after" {
	local threads n i
	threads=$(nproc)
	[ "$threads" -ge 2 ] || threads=2
	[ "$threads" -le 16 ] || threads=16
	n=$((2 * threads + 2))   # more waiting changes than HTTP threads
	hold_lock
	for i in $(seq 1 $n); do
		send_bg "w$i" POST /v1/scripts "$(script_body "held$i.sh")"
	done
	wait_for 10 established_at_least $n
	# the old server parked its HTTP threads in SQLite's busy wait here
	run curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/hosts"
	[ "$output" = 200 ]
	run curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/scripts/gc1.sh"
	[ "$output" = 200 ]
	# none answered yet: none is stored
	refute answered 1
	release_lock
	wait_bg
	cat "$OUT"/w*.status
	[ "$(cat "$OUT"/w*.status | grep -c '^201$')" -eq $n ]
	[ "$(script_count held)" -eq $n ]
}

# log_since N: the server's log after its first N lines.
log_since() {
	tail -n +$(($1 + 1)) "$HERD_DATA/server.log"
}

# queued_since N K: K changes queued for the writer after log line N.
queued_since() {
	[ "$(log_since "$1" | grep -c 'writer: .* queued')" -ge "$2" ]
}

@test "a refused change in a batch undoes only itself" {
	local i mark
	mark=$(wc -l <"$HERD_DATA/server.log")
	hold_lock
	send_bg first POST /v1/scripts "$(script_body mixed0.sh)"
	wait_for 10 queued_since "$mark" 1
	for i in 1 2 3 4 5; do
		send_bg "ok$i" POST /v1/scripts "$(script_body "mixed$i.sh")"
	done
	send_bg dup POST /v1/scripts "$(script_body gc1.sh)"        # exists: 409
	send_bg missing PUT /v1/scripts/nosuch.sh "$(script_body nosuch.sh)"  # 404
	wait_for 10 queued_since "$mark" 7
	release_lock
	wait_bg
	for i in 0 1 2 3 4 5; do
		[ "$(cat "$OUT/$([ $i = 0 ] && echo first || echo "ok$i").status")" = 201 ]
	done
	[ "$(cat "$OUT/dup.status")" = 409 ]
	[ "$(cat "$OUT/missing.status")" = 404 ]
	[ "$(script_count mixed)" -eq 6 ]
	# the refused ones and the stored ones committed together (the
	# first may have had a batch of its own)
	log_since "$mark" | grep -E 'writer: committed a batch of [0-9]+ \(2 refused or failed\)' \
		>"$OUT/batch"
	[ "$(grep -c . "$OUT/batch")" -eq 1 ]
	awk '{ if ($8 + 0 < 6) exit 1 }' "$OUT/batch"
	# each audited, the refused ones with their status
	run curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/audit?limit=20"
	[[ "$output" == *'"status":409'* ]]
	[[ "$output" == *'"status":404'* ]]
}

@test "--write-queue bounds the waiting changes: past it, 503 with Retry-After at once" {
	local i n=10 refused
	run "$HERD" server --data "$BATS_FILE_TMPDIR/none" --write-queue 0
	[ "$status" -eq 2 ]
	[[ "$output" == *"--write-queue"* ]]
	server_stop
	server_start --log-level debug --write-queue 2
	hold_lock
	for i in $(seq 1 $n); do
		send_bg "q$i" POST /v1/scripts "$(script_body "queued$i.sh")"
	done
	# at most 2 in the writer's batch and 2 waiting: the rest answered now,
	# all refused (nothing can be stored while the lock is held)
	wait_for 60 answered $((n - 4))
	[ "$(cat "$OUT"/q*.status | grep -c '^503$' || true)" -ge $((n - 4)) ]
	refute grep -q '^201$' "$OUT"/q*.status
	release_lock
	wait_bg
	# counted once every answer is in: a writer that took a batch of one
	# leaves 3 in flight, and the 7th refusal may come after the 6th was
	# counted (the flake this file once had)
	cat "$OUT"/q*.status
	refused=$(cat "$OUT"/q*.status | grep -c '^503$' || true)
	[ "$refused" -ge $((n - 4)) ]
	[ "$(cat "$OUT"/q*.status | grep -c '^201$')" -eq $((n - refused)) ]
	for f in "$OUT"/q*.status; do
		[ "$(cat "$f")" = 503 ] || continue
		grep -qi '^Retry-After: 1' "${f%.status}.headers"
	done
	[ "$(script_count queued)" -eq $((n - refused)) ]
}
