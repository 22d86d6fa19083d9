#!/usr/bin/env bats
# The cloud bootstrap (issue 14): the user-data script a cloud driver sends
# (prov/bootstrap.c) fetches the agent from GET /v1/agent/binary with the
# host's join token, checks its SHA-256, installs it and starts it as a
# daemon (no systemd here), and the host joins and becomes ready.
#
# The honest path to "a launching host with its join token", without a cloud:
# a local-provider host whose account's server_url (http://127.0.0.1:1, its
# own loopback) its agent cannot reach. The server makes the host exactly as
# for any provider (row, join token, user data) and the host stays booting
# with its token unspent; the test reads that user data from inside it (as
# 0020 does), points "server" at the network's gateway (where the server
# listens) and asks test-bootstrap --emit for the script the server would
# build. The script then runs as a cloud host's first boot would: in its own
# network namespace (a veth pair in 198.18.0.0/15), mount namespace (tmpfs on
# /usr/local/bin, /run, /var/lib and /var/log, an overlay on /etc: this
# machine's files are untouched) and PID namespace (killing it ends
# everything it started). Needs root.

load lib

BOOT=$BATS_TEST_DIRNAME/../../build/tests/test-bootstrap
# what the server serves: herd-agent beside it (the static build), else itself
AGENT_BIN=$(dirname "$HERD")/herd-agent
[ -x "$AGENT_BIN" ] || AGENT_BIN=$HERD

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	CIDR=$(random_cidr)
	VCIDR=$(random_cidr)
	while [ "$VCIDR" = "$CIDR" ]; do VCIDR=$(random_cidr); done
	GW=${CIDR%.0/24}.1
	NS=hbt-$$-$RANDOM
	VETH=hbt$RANDOM
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cat >"$BATS_FILE_TMPDIR/bp/bt.yaml" <<YAML
accounts:
  - name: bt
    driver: local
    server_url: http://127.0.0.1:1
networks:
  - name: btnet
    account: bt
    cidr: $CIDR
templates:
  - name: btt
    account: bt
    network: btnet
clusters:
  - name: bt
    groups:
      - name: g
        template: btt
        size: 1
YAML
	herd apply -f "$BATS_FILE_TMPDIR/bp/bt.yaml" >/dev/null
	# the namespace the "cloud host" boots in, reaching the gateway by a veth
	ip netns add "$NS"
	ip link add "$VETH" type veth peer name eth0 netns "$NS"
	ip addr add "${VCIDR%.0/24}.1/24" dev "$VETH"
	ip link set "$VETH" up
	ip -n "$NS" addr add "${VCIDR%.0/24}.2/24" dev eth0
	ip -n "$NS" link set lo up
	ip -n "$NS" link set eth0 up
	ip -n "$NS" route add default via "${VCIDR%.0/24}.1"
	export CIDR GW NS VETH
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -s "$BATS_FILE_TMPDIR/boot.pid" ]; then
		# unshare --fork ignores SIGTERM; SIGKILL ends it, --kill-child the rest
		kill -KILL "$(cat "$BATS_FILE_TMPDIR/boot.pid")" 2>/dev/null || true
	fi
	[ -n "${NS:-}" ] && ip netns del "$NS" 2>/dev/null
	[ -n "${VETH:-}" ] && ip link del "$VETH" 2>/dev/null
	for m in "$BATS_FILE_TMPDIR"/root-*; do
		[ -d "$m" ] && rm -rf "$m"
	done
	server_cleanup
}

setup() {
	require_root
}

host_json() {
	herd host ls --group bt/g --json | json '{items}[0]'
}
host_id() { host_json | json '{id}'; }
host_state() { host_json | json '{state}'; }
booted() { [ -s "$HERD_DATA/hosts/$(host_id)/pid" ] && in_host "$(host_id)" test -s /run/herd/agent.json; }
is_ready() { [ "$(host_state)" = ready ]; }

# emit SHA256 OUT: the script the server would send for the host, reaching
# it at the gateway.
emit() {
	local id cfg
	id=$(host_id)
	cfg=$BATS_FILE_TMPDIR/agent.json
	in_host "$id" cat /run/herd/agent.json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); $d->{server} = $ARGV[0];
			print JSON::PP->new->canonical->encode($d)' "http://$GW:$HERD_PORT" >"$cfg"
	"$BOOT" --emit "http://$GW:$HERD_PORT" "$1" "$id" "$(json '{join_token}' <"$cfg")" "$cfg" >"$2"
}

# boot SCRIPT KEEP: runs SCRIPT as the host's first boot in fresh mount and
# PID namespaces inside $NS; KEEP=1 keeps them (and the agent) alive in the
# background (pid in boot.pid), else waits and returns the script's status.
boot() {
	local r
	r=$(mktemp -d "$BATS_FILE_TMPDIR/root-XXXXXX")
	mkdir -p "$r/up" "$r/work"
	# the inner shell gets only paths made here (no user text)
	local inner="mount -t tmpfs none /usr/local/bin && mount -t tmpfs none /run &&
		mount -t tmpfs none /var/lib && mount -t tmpfs none /var/log &&
		mount -t overlay overlay -o lowerdir=/etc,upperdir=$r/up,workdir=$r/work /etc || exit 99
		sh $1 >$r/out 2>&1; echo \$? >$r/rc
		cp /var/log/herd-agent.log $r/agent.log 2>/dev/null
		[ $2 = 1 ] && exec sleep 300; exit 0"
	if [ "$2" = 1 ]; then
		nsenter --net="/run/netns/$NS" -- unshare --mount --propagation private --pid --fork \
			--kill-child --mount-proc sh -c "$inner" </dev/null >/dev/null 2>&1 3>&- &
		echo $! >"$BATS_FILE_TMPDIR/boot.pid"
		wait_for 300 test -s "$r/rc"
	else
		nsenter --net="/run/netns/$NS" -- unshare --mount --propagation private --pid --fork \
			--kill-child --mount-proc sh -c "$inner"
	fi
	BOOT_DIR=$r
}

@test "the host is made the normal way and waits, its join token unspent" {
	wait_for 60 booted
	[ "$(host_state)" = booting ]
}

@test "GET /v1/agent/binary: 401 without the token or with a wrong one" {
	wait_for 60 booted
	id=$(host_id)
	code=$(curl -s -o /dev/null -w '%{http_code}' "$HERD_URL/v1/agent/binary")
	[ "$code" = 401 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Herd-Host-Id: $id" \
		-H "X-Herd-Join-Token: hj_madeup" "$HERD_URL/v1/agent/binary")
	[ "$code" = 401 ]
}

@test "GET /v1/agent/binary with the token: the agent binary, its SHA-256 in a header" {
	wait_for 60 booted
	id=$(host_id)
	tok=$(in_host "$id" cat /run/herd/agent.json | json '{join_token}')
	out=$BATS_FILE_TMPDIR/bin
	hdr=$(curl -sf -D - -o "$out" -H "X-Herd-Host-Id: $id" -H "X-Herd-Join-Token: $tok" \
		"$HERD_URL/v1/agent/binary" | tr -d '\r' | sed -n 's/^X-Herd-Agent-Sha256: //ip')
	want=$(sha256sum <"$AGENT_BIN" | cut -c1-64)
	echo "header $hdr, file $want, got $(sha256sum <"$out" | cut -c1-64)"
	[ "$hdr" = "$want" ]
	[ "$(sha256sum <"$out" | cut -c1-64)" = "$want" ]
	rm -f "$out"
	[ "$(host_state)" = booting ]   # the token is not spent by a download
}

@test "a wrong checksum aborts with a message and starts nothing" {
	wait_for 60 booted
	emit 0000000000000000000000000000000000000000000000000000000000000000 "$BATS_FILE_TMPDIR/bad.sh"
	boot "$BATS_FILE_TMPDIR/bad.sh" 0
	cat "$BOOT_DIR/out"
	[ "$(cat "$BOOT_DIR/rc")" = 1 ]
	grep -q 'checksum mismatch' "$BOOT_DIR/out"
	refute grep -q 'agent started' "$BOOT_DIR/out"
	refute test -e "$BOOT_DIR/agent.log"
	[ "$(host_state)" = booting ]
}

@test "the script installs the verified agent as a daemon; the host joins and becomes ready" {
	wait_for 60 booted
	want=$(sha256sum <"$AGENT_BIN" | cut -c1-64)
	emit "$want" "$BATS_FILE_TMPDIR/good.sh"
	wc -c <"$BATS_FILE_TMPDIR/good.sh"
	sh -n "$BATS_FILE_TMPDIR/good.sh"
	boot "$BATS_FILE_TMPDIR/good.sh" 1
	cat "$BOOT_DIR/out"
	[ "$(cat "$BOOT_DIR/rc")" = 0 ]
	grep -q 'agent started' "$BOOT_DIR/out"
	wait_for 60 is_ready
	grep -q "host $(host_id) fetches the agent binary" "$HERD_DATA/server.log"
	# the token is spent now: the binary is refused
	tok=$(json '{join_token}' <"$BATS_FILE_TMPDIR/agent.json")
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Herd-Host-Id: $(host_id)" \
		-H "X-Herd-Join-Token: $tok" "$HERD_URL/v1/agent/binary")
	[ "$code" = 401 ]
	# this machine's own files were not touched
	refute test -e /etc/herd/agent.json
}
