#!/usr/bin/env bats
# The launch intents of one controller pass are one commit (issue 15): a
# scale-out of N hosts writes its N host rows `launching` (and their
# activities) in one transaction, so the store fsyncs once for them, not N
# times, and the provider is called only after that commit. The provider
# call is held forever by the failpoint `prov_launch=hang`, so the only
# writes after the scale are the intents; fdatasync calls on the store are
# counted with strace attached to the server (as 0320 does). Needs root
# (strace -p; a local network's bridge).

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	cat >"$BP_DIR/li.yaml" <<-EOF
		accounts:
		  - name: here
		    driver: local
		networks:
		  - name: linet
		    account: here
		    cidr: $(random_cidr)
		templates:
		  - name: li
		    account: here
		    network: linet
		clusters:
		  - name: li
		    groups:
		      - name: g
		        template: li
		        size: 0
		        max: 100
	EOF
	export BP=$BP_DIR/li.yaml
}

teardown() {
	[ "$(id -u)" = 0 ] || return 0
	stop_trace
	server_cleanup
}

setup() {
	require_root
	command -v strace >/dev/null || skip "strace is not installed"
}

start_trace() {
	rm -f "$HERD_DATA/trace.out" "$HERD_DATA/trace.err"
	strace -f -y -e trace=fdatasync,fsync -o "$HERD_DATA/trace.out" -p "$SERVER_PID" \
		2>"$HERD_DATA/trace.err" &
	echo $! >"$HERD_DATA/trace.pid"
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

# syncs: fdatasync + fsync calls on the store in the last trace (not the TSDB)
syncs() {
	grep -E 'f(data)?sync\([0-9]+<' "$HERD_DATA/trace.out" | grep -vc '/tsdb/' || true
}

# launching N: li/g has exactly N hosts, all launching.
launching() {
	[ "$(herd host ls --json --group li/g | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "launching" } @{$d->{items}}), "\n"')" -eq "$1" ]
}

@test "a scale-out of 40 writes its 40 intents in one commit, before any provider call" {
	local n=40
	HERD_FAILPOINTS=prov_launch=hang server_start --launch-workers 2 --log-level debug
	run herd apply -f "$BP"
	[ "$status" -eq 0 ]
	sleep 1   # the apply's own passes (size 0) are over
	start_trace
	run herd group scale li/g $n
	[ "$status" -eq 0 ]
	wait_for 30 launching $n
	# the provider is called after the commit: both workers hang in it
	wait_for 30 grep -q "failpoint 'prov_launch': hanging (call 2)" "$HERD_DATA/server.log"
	stop_trace
	echo "fdatasync+fsync for a scale to $n: $(syncs)" >&3
	# the scale (its row and audit: one), the intents (one), a spare for
	# an activity written on its own (a wait, a network applied)
	[ "$(syncs)" -le 4 ]
	grep -q "reconcile: $n launch intent(s) in one commit" "$HERD_DATA/server.log"
	# each intent has its launch activity
	[ "$(herd activity ls --json --cluster li --group g --limit 1000 | perl -MJSON::PP -e '
		print scalar(grep { $_->{kind} eq "launch" } @{decode_json(join "", <STDIN>)->{items}}), "\n"')" -eq $n ]
}
