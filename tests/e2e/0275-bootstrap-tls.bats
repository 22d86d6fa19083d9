#!/usr/bin/env bats
# The cloud bootstrap over HTTPS (issue 16): the user-data script of an https
# server with a CA of its own carries the CA's fingerprint, not its PEM. It
# fetches GET /v1/tls/ca without verification, keeps it only if the SHA-256
# of its DER is that fingerprint, and only then downloads the agent with it
# as the one CA it trusts (curl --cacert); the agent pins the same CA, joins
# and the host becomes ready. A wrong fingerprint: the script says the CA is
# not trusted, retries, and never asks for the binary.
#
# Set up as 0270-bootstrap.bats (read it first): a local-provider host whose
# agent cannot reach the server (account server_url https://127.0.0.1:1, so
# its config has ca_sha256) waits with its join token unspent; the script
# test-bootstrap --emit builds for it, pointed at the network's gateway,
# runs in its own network, mount and PID namespaces. The server here serves
# HTTPS everywhere (--tls always), its certificate naming the gateway
# (--tls-name). Needs root.

load lib

BOOT=$BATS_TEST_DIRNAME/../../build/tests/test-bootstrap
# what the server serves: herd-agent beside it (the static build), else itself
AGENT_BIN=$(dirname "$HERD")/herd-agent
[ -x "$AGENT_BIN" ] || AGENT_BIN=$HERD

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	CIDR=$(random_cidr)
	VCIDR=$(random_cidr)
	while [ "$VCIDR" = "$CIDR" ]; do VCIDR=$(random_cidr); done
	GW=${CIDR%.0/24}.1
	NS=hbs-$$-$RANDOM
	VETH=hbs$RANDOM
	# as 0430-tls.bats: server_start waits for plain HTTP
	HERD_DATA=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/herd-data.XXXXXX")
	HERD_PORT=$(free_port)
	export HERD_URL="https://127.0.0.1:$HERD_PORT"
	store_opts "$HERD_DATA"
	"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --listen "127.0.0.1:$HERD_PORT" --tls always \
		--tls-name "$GW" >>"$HERD_DATA/server.log" 2>&1 &
	SERVER_PID=$!
	echo "$SERVER_PID" >"$HERD_DATA/server.pid"
	export HERD_CACERT=$HERD_DATA/tls/ca.pem
	wait_for 10 curl -sf --cacert "$HERD_CACERT" "$HERD_URL/healthz" >/dev/null
	HERD_TOKEN=$(cat "$HERD_DATA/admin.token")
	export HERD_DATA HERD_PORT SERVER_PID HERD_TOKEN
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cat >"$BATS_FILE_TMPDIR/bp/bs.yaml" <<YAML
accounts:
  - name: bs
    driver: local
    server_url: https://127.0.0.1:1
networks:
  - name: bsnet
    account: bs
    cidr: $CIDR
templates:
  - name: bst
    account: bs
    network: bsnet
clusters:
  - name: bs
    groups:
      - name: g
        template: bst
        size: 1
YAML
	herd apply -f "$BATS_FILE_TMPDIR/bp/bs.yaml" >/dev/null
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
	if [ -s "$BATS_FILE_TMPDIR/boot.pids" ]; then
		# unshare --fork ignores SIGTERM; SIGKILL ends it, --kill-child the rest
		while read -r p; do
			kill -KILL "$p" 2>/dev/null || true
		done <"$BATS_FILE_TMPDIR/boot.pids"
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
	herd host ls --group bs/g --json | json '{items}[0]'
}
host_id() { host_json | json '{id}'; }
host_state() { host_json | json '{state}'; }
booted() { [ -s "$HERD_DATA/hosts/$(host_id)/pid" ] && in_host "$(host_id)" test -s /run/herd/agent.json; }
is_ready() { [ "$(host_state)" = ready ]; }

ca_fp() { # the CA's fingerprint as openssl prints it: lower-case hex, no ':'
	openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# emit CA_SHA256 OUT: the script the server would send for the host,
# reaching it at the gateway over HTTPS.
emit() {
	local id cfg
	id=$(host_id)
	cfg=$BATS_FILE_TMPDIR/agent.json
	in_host "$id" cat /run/herd/agent.json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); $d->{server} = $ARGV[0];
			print JSON::PP->new->canonical->encode($d)' "https://$GW:$HERD_PORT" >"$cfg"
	"$BOOT" --emit "https://$GW:$HERD_PORT" "$(sha256sum <"$AGENT_BIN" | cut -c1-64)" "$id" \
		"$(json '{join_token}' <"$cfg")" "$cfg" "$1" >"$2"
}

# boot SCRIPT: runs SCRIPT as the host's first boot in fresh mount and PID
# namespaces inside $NS, in the background (kept alive with the agent it
# starts; its pid in boot.pids). BOOT_DIR: its out (stdout+stderr, as it
# runs), rc (when it ends), up (what it wrote to /etc).
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
		exec sleep 300"
	nsenter --net="/run/netns/$NS" -- unshare --mount --propagation private --pid --fork \
		--kill-child --mount-proc sh -c "$inner" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >>"$BATS_FILE_TMPDIR/boot.pids"
	BOOT_DIR=$r
	BOOT_PID=$!
}

said_twice() { [ -f "$BOOT_DIR/out" ] && [ "$(grep -c "$1" "$BOOT_DIR/out")" -ge 2 ]; }

@test "the user data carries the CA's fingerprint: the host waits, its token unspent" {
	wait_for 60 booted
	[ "$(host_state)" = booting ]
	cfg=$(in_host "$(host_id)" cat /run/herd/agent.json)
	[ "$(json '{ca_sha256}' <<<"$cfg")" = "$(ca_fp "$HERD_CACERT")" ]
}

@test "a wrong CA fingerprint: the script says so, retries, never downloads the agent" {
	wait_for 60 booted
	# the fingerprint of another CA: a server that is not ours
	emit 842288755f9e6cb67b317459db2904a639131625ea9b74940615aa152e6c168f "$BATS_FILE_TMPDIR/bad.sh"
	refute grep -q 'BEGIN CERTIFICATE' "$BATS_FILE_TMPDIR/bad.sh"
	boot "$BATS_FILE_TMPDIR/bad.sh"
	wait_for 60 said_twice 'is not 842288755f9e6cb67b317459db2904a639131625ea9b74940615aa152e6c168f: not trusted'
	cat "$BOOT_DIR/out"
	kill -KILL "$BOOT_PID"
	wait "$BOOT_PID" 2>/dev/null || true
	# the CA was fetched (a mismatch, not an unreachable server), the
	# binary never asked for, nothing kept or started
	grep -q "the CA at https://$GW:$HERD_PORT is not" "$BOOT_DIR/out"
	refute grep -q "host $(host_id) fetches the agent binary" "$HERD_DATA/server.log"
	refute test -e "$BOOT_DIR/up/herd/ca.pem"
	refute grep -q 'agent started' "$BOOT_DIR/out"
	[ "$(host_state)" = booting ]
}

@test "the right fingerprint: the agent comes over HTTPS with the verified CA; the host joins and becomes ready" {
	wait_for 60 booted
	fp=$(ca_fp "$HERD_CACERT")
	emit "$fp" "$BATS_FILE_TMPDIR/good.sh"
	wc -c <"$BATS_FILE_TMPDIR/good.sh"
	refute grep -q 'BEGIN CERTIFICATE' "$BATS_FILE_TMPDIR/good.sh"
	sh -n "$BATS_FILE_TMPDIR/good.sh"
	# the system store does not know herd's CA: only the fetched one can verify
	refute curl -sf -o /dev/null "https://$GW:$HERD_PORT/healthz"
	boot "$BATS_FILE_TMPDIR/good.sh"
	wait_for 300 test -s "$BOOT_DIR/rc"
	cat "$BOOT_DIR/out"
	[ "$(cat "$BOOT_DIR/rc")" = 0 ]
	grep -q 'agent started' "$BOOT_DIR/out"
	refute grep -q 'not trusted' "$BOOT_DIR/out"
	# the CA the download trusted is the server's, byte for byte
	cmp "$BOOT_DIR/up/herd/ca.pem" "$HERD_CACERT"
	grep -q "host $(host_id) fetches the agent binary" "$HERD_DATA/server.log"
	# ready: the agent talked HTTPS, which it does only with the CA pinned
	wait_for 60 is_ready
	# the token is spent now: the binary is refused
	tok=$(json '{join_token}' <"$BATS_FILE_TMPDIR/agent.json")
	code=$(curl -s --cacert "$HERD_CACERT" -o /dev/null -w '%{http_code}' \
		-H "X-Herd-Host-Id: $(host_id)" -H "X-Herd-Join-Token: $tok" "$HERD_URL/v1/agent/binary")
	[ "$code" = 401 ]
	# this machine's own files were not touched
	refute test -e /etc/herd/agent.json
}
