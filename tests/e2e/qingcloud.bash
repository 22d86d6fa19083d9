# qingcloud.bash - the fake QingCloud (tests/fake-qingcloud) for the e2e
# tests that drive herd's qingcloud driver against it: fq_init makes its
# dir and secret, fq_start starts it on a free port of 127.0.0.1 (the same
# port again on a restart), fq_stop stops it by the PID it wrote, qc calls
# it as any QingCloud client. Loaded after lib.bash (free_port, wait_for);
# the test file sets KEY_ID, its own access key id.
# shellcheck shell=bash

FAKE=${FAKE_QC_BIN:-$BATS_TEST_DIRNAME/../../build/fake-qingcloud}
QC_CALL=$BATS_TEST_DIRNAME/../fake-qingcloud/qc-call.pl

# fq_require: skips the test when the fake is not built. For setup.
fq_require() {
	[ -x "$FAKE" ] || skip "fake QingCloud not built ($FAKE)"
}

# fq_init WORD [DIR]: the fake's dir, DIR (made if missing) or a new one
# under BATS_FILE_TMPDIR, with its secret file (mode 600, "WORD-<random>");
# exports FQ_DIR.
fq_init() {
	FQ_DIR=${2:-$(mktemp -d "$BATS_FILE_TMPDIR/fqc.XXXXXX")}
	mkdir -p "$FQ_DIR"
	(umask 077 && printf '%s-%s%s\n' "$1" "$RANDOM" "$RANDOM" >"$FQ_DIR/secret")
	export FQ_DIR
}

# fq_start [OPTION]...: starts the fake on FQ_DIR: its world in
# FQ_DIR/state (kept across restarts), its call log FQ_DIR/calls.log, its
# stderr appended to FQ_DIR/fake.log, its PID in FQ_DIR/fake.pid; access key
# KEY_ID with FQ_DIR/secret, zone pek3a, then OPTIONs (--instances,
# --pending-ms, --job-ms, ...: tests/fake-qingcloud/README.md). Listens on
# FQ_PORT when set (a restart keeps its port), else on a free port. Waits
# until it answers; exports FQ_PORT FQ_URL FQ_PID.
fq_start() {
	FQ_PORT=${FQ_PORT:-$(free_port)}
	FQ_URL="http://127.0.0.1:$FQ_PORT/iaas/"
	"$FAKE" --listen "127.0.0.1:$FQ_PORT" --state-dir "$FQ_DIR/state" --access-key-id "$KEY_ID" \
		--secret-file "$FQ_DIR/secret" --zone pek3a --call-log "$FQ_DIR/calls.log" "$@" \
		>/dev/null 2>>"$FQ_DIR/fake.log" 3>&- &
	FQ_PID=$!
	echo "$FQ_PID" >"$FQ_DIR/fake.pid"
	export FQ_PORT FQ_URL FQ_PID
	wait_for 10 curl -s -o /dev/null "$FQ_URL"
}

# fq_stop: stops the fake whose PID is in FQ_DIR/fake.pid (SIGTERM: it
# removes what it made; SIGKILL after 10 s) and removes that file. Nothing
# when it is not running.
fq_stop() {
	local pid
	[ -n "${FQ_DIR:-}" ] && [ -f "$FQ_DIR/fake.pid" ] || return 0
	pid=$(cat "$FQ_DIR/fake.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$FQ_DIR/fake.pid"
	FQ_PID=
}

# fq_cleanup: fq_stop, then removes FQ_DIR (kept with HERD_KEEP). For
# teardown_file.
fq_cleanup() {
	fq_stop
	[ -n "${FQ_DIR:-}" ] && [ -d "$FQ_DIR" ] || return 0
	if [ -n "${HERD_KEEP:-}" ]; then
		echo "# kept $FQ_DIR" >&3
	else
		rm -rf "$FQ_DIR"
	fi
}

# qc ACTION [KEY=VALUE]...: a signed call to the fake at FQ_URL with KEY_ID
# and FQ_DIR/secret, as any QingCloud client (qc-call.pl); prints its JSON.
qc() {
	QC_SECRET_FILE=$FQ_DIR/secret perl "$QC_CALL" "$FQ_URL" "$KEY_ID" "$@"
}

# fq_host_ids: the host id of every live instance (pending, running or
# stopped, and not terminating) of INST's server at the fake, that is named
# herd-<INST>-<host id>: one a line (twice when duplicated), sorted. Fails
# when the fake answers an error.
fq_host_ids() {
	qc DescribeInstances zone=pek3a "search_word=herd-$INST-" status.1=pending status.2=running \
		status.3=stopped limit=100 | INST=$INST perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		die "ret_code $d->{ret_code}\n" if $d->{ret_code};
		for (@{$d->{instance_set}}) {
			next if $_->{transition_status} eq "terminating";
			print "$1\n" if $_->{instance_name} =~ /^herd-\Q$ENV{INST}\E-([0-9a-f]{8})$/;
		}' | sort
}

# fq_configs: the agent config of every instance the fake launched, one
# JSON a line, from the call log (tools/userdata-configs.sh: RunInstances'
# user data, the bootstrap script, holds the config); nothing before the
# first call.
fq_configs() {
	[ -f "$FQ_DIR/calls.log" ] || return 0
	"$BATS_TEST_DIRNAME/../../tools/userdata-configs.sh" "$FQ_DIR/calls.log"
}

# fq_launched N: the fake accepted N RunInstances (or more).
fq_launched() {
	[ "$(fq_configs | wc -l)" -ge "$1" ]
}
