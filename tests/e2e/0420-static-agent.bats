#!/usr/bin/env bats
# The static herd-agent (issue 16): build/herd-agent links no shared library;
# it runs in a root filesystem that has none at all (an empty directory with
# only the binary, /proc and /sys) and joins a real server there; and the
# local provider's hosts run it (as /run/herd/bin/herd) and still go ready
# and run their init scripts. Needs root.
#
# The empty-rootfs host is made as 0270 makes its "cloud host": a local host
# whose account's server_url (127.0.0.1:1, its own loopback) its own agent
# cannot reach waits with its join token unspent; the test takes its
# agent.json, points "server" at the local network's gateway (numerically:
# there is no /etc/hosts in the rootfs) and starts herd-agent chrooted into
# the empty directory, in a network namespace of its own (a veth pair in
# 198.18.0.0/15) and fresh mount and PID namespaces.

load lib

AGENT_BIN=$(dirname "$HERD")/herd-agent
MINI=$BATS_TEST_DIRNAME/../../build/tests/test-httpc-mini

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	CIDR=$(random_cidr)
	VCIDR=$(random_cidr)
	while [ "$VCIDR" = "$CIDR" ]; do VCIDR=$(random_cidr); done
	# the veth pair's own /24, neither network's: a fixed 198.19.254.0/30
	# met sbnet's /24 one run in 512, and h-1's answers went to the veth
	WCIDR=$(random_cidr)
	while [ "$WCIDR" = "$CIDR" ] || [ "$WCIDR" = "$VCIDR" ]; do WCIDR=$(random_cidr); done
	W=${WCIDR%.0/24}
	GW=${CIDR%.0/24}.1
	NS=hsa-$$-$RANDOM
	VETH=hsa$RANDOM
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cat >"$BATS_FILE_TMPDIR/bp/sa.yaml" <<YAML
accounts:
  - name: sa
    driver: local
    server_url: http://127.0.0.1:1
  - name: sb
    driver: local
networks:
  - name: sanet
    account: sa
    cidr: $CIDR
  - name: sbnet
    account: sb
    cidr: $VCIDR
scripts:
  - name: hello
    content: |
      #!/bin/sh
      herd meta self name >/run/hello.out
templates:
  - name: sat
    account: sa
    network: sanet
  - name: sbt
    account: sb
    network: sbnet
    init: [hello]
clusters:
  - name: sa
    groups:
      - name: g
        template: sat
        size: 1
      - name: h
        template: sbt
        size: 1
YAML
	herd apply -f "$BATS_FILE_TMPDIR/bp/sa.yaml" >/dev/null
	ip netns add "$NS"
	ip link add "$VETH" type veth peer name eth0 netns "$NS"
	ip addr add "$W.1/30" dev "$VETH"
	ip link set "$VETH" up
	ip -n "$NS" addr add "$W.2/30" dev eth0
	ip -n "$NS" link set lo up
	ip -n "$NS" link set eth0 up
	ip -n "$NS" route add default via "$W.1"
	export CIDR GW NS VETH
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -s "$BATS_FILE_TMPDIR/tls.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/tls.pid")" 2>/dev/null || true
	fi
	if [ -s "$BATS_FILE_TMPDIR/chroot.pid" ]; then
		# unshare --fork ignores SIGTERM; SIGKILL ends it, --kill-child the rest
		kill -KILL "$(cat "$BATS_FILE_TMPDIR/chroot.pid")" 2>/dev/null || true
		sleep 0.2
	fi
	[ -n "${NS:-}" ] && ip netns del "$NS" 2>/dev/null
	[ -n "${VETH:-}" ] && ip link del "$VETH" 2>/dev/null
	if [ -d "$BATS_FILE_TMPDIR/root" ]; then
		umount "$BATS_FILE_TMPDIR/root/proc" "$BATS_FILE_TMPDIR/root/sys" 2>/dev/null || true
		rm -rf "$BATS_FILE_TMPDIR/root"
	fi
	server_cleanup
}

setup() {
	require_root
}

teardown() {
	# CI keeps only the output: a failed test prints what it saw
	[ -n "${BATS_TEST_COMPLETED:-}" ] || diag_hosts sa
}

host_json() { # host_json CLUSTER/GROUP
	herd host ls --group "$1" --json | json '{items}[0]'
}
host_id() { host_json "$1" | json '{id}'; }
is_ready() { [ "$(host_json "$1" | json '{state}')" = ready ]; }
booted() { [ -s "$HERD_DATA/hosts/$(host_id sa/g)/pid" ] && in_host "$(host_id sa/g)" test -s /run/herd/agent.json; }

@test "herd-agent: no shared libraries, no interpreter; it runs" {
	[ -x "$AGENT_BIN" ]
	run readelf -d "$AGENT_BIN"
	echo "$output"
	refute grep -q NEEDED <<<"$output"
	run readelf -l "$AGENT_BIN"
	refute grep -q 'INTERP' <<<"$output"
	run "$AGENT_BIN" version
	[ "$status" = 0 ]
	[[ "$output" == "herd "* ]]
	[ "$output" = "$("$HERD" version)" ]
	echo "size: $(stat -c %s "$AGENT_BIN") bytes" >&3
}

@test "in an empty root filesystem (no libraries, no /etc): it joins and its metrics reach the server" {
	wait_for 60 booted
	id=$(host_id sa/g)
	[ "$(host_json sa/g | json '{state}')" = booting ]
	r=$BATS_FILE_TMPDIR/root
	mkdir -p "$r/proc" "$r/sys" "$r/run/herd"
	cp "$AGENT_BIN" "$r/herd-agent"
	in_host "$id" cat /run/herd/agent.json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); $d->{server} = $ARGV[0];
			print JSON::PP->new->canonical->encode($d)' "http://$GW:$HERD_PORT" >"$r/run/herd/agent.json"
	# nothing but the agent, its config and two empty mount points
	[ "$(find "$r" -type f | wc -l)" = 2 ]
	# the inner shell runs on this machine's root; only paths made here
	nsenter --net="/run/netns/$NS" -- unshare --mount --propagation private --pid --fork \
		--kill-child sh -c "mount -t proc proc $r/proc && mount -t sysfs sys $r/sys &&
			exec chroot $r /herd-agent agent --config /run/herd/agent.json" \
		</dev/null >"$BATS_FILE_TMPDIR/chroot.log" 2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/chroot.pid"
	wait_for 60 is_ready sa/g || { cat "$BATS_FILE_TMPDIR/chroot.log"; false; }
	has_mem() {
		local out
		out=$(http GET "/v1/metrics/latest?metric=mem_total_bytes&group=g&cluster=sa" "$HERD_TOKEN")
		[[ "$out" == "200 "* ]] && [ "$(echo "${out#200 }" | json_count '{items}')" = 1 ] &&
			[ "$(echo "${out#200 }" | json '{items}[0]{value}')" -gt 0 ]
	}
	wait_for 30 has_mem
	# the process that joined is the static binary in the chroot
	apid=$(pgrep -f '^/herd-agent agent' | head -1)
	[ -n "$apid" ]
	[ "$(readlink "/proc/$apid/root")" = "$r" ]
	grep VmRSS "/proc/$apid/status" >&3
}

@test "local hosts run herd-agent as /run/herd/bin/herd and still run their init scripts" {
	wait_for 60 is_ready sa/h
	id=$(host_id sa/h)
	pid=$(cat "$HERD_DATA/hosts/$id/pid")
	# the host's agent: the same bytes as build/herd-agent, not the server's
	exe=$(readlink "/proc/$pid/exe")
	echo "host $id pid $pid exe $exe"
	[ "$exe" = /run/herd/bin/herd ]
	[ "$(sha256sum <"/proc/$pid/exe" | cut -c1-64)" = "$(sha256sum <"$AGENT_BIN" | cut -c1-64)" ]
	echo "local host agent: $(grep VmRSS "/proc/$pid/status")" >&3
	# its init script ran `herd meta` (that same binary) and got the host's name
	run in_host "$id" cat /run/hello.out
	[ "$output" = "$(host_json sa/h | json '{name}')" ]
}

# tls_start: a CA, a server certificate it signed (for 127.0.0.1 by IP
# subjectAltName) and openssl s_server answering files from a temp dir:
# v1/tls/ca (the CA, PEM) and v1/ok (JSON). Sets TLS_URL and CA_SHA.
tls_start() {
	local d=$BATS_FILE_TMPDIR/tls port
	if [ -s "$BATS_FILE_TMPDIR/tls.pid" ]; then   # an earlier test started it
		TLS_URL=$(cat "$d/url")
		CA_SHA=$(cat "$d/ca.sha")
		return 0
	fi
	mkdir -p "$d/www/v1/tls"
	(
		cd "$d" || exit 1
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.pem -days 2 -subj /CN=herd-test-ca
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout other.key -out other.pem -days 2 -subj /CN=herd-other-ca
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout srv.key -out srv.csr -subj /CN=herd-test-server
		printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
		openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out srv.pem -days 2 -extfile san.ext
	) >"$d/gen.log" 2>&1
	cp "$d/ca.pem" "$d/www/v1/tls/ca"
	echo '{"ok":true}' >"$d/www/v1/ok"
	port=$(free_port)
	(cd "$d/www" && exec openssl s_server -accept "127.0.0.1:$port" -cert ../srv.pem \
		-key ../srv.key -WWW -quiet </dev/null >"$d/server.log" 2>&1 3>&-) &
	echo $! >"$BATS_FILE_TMPDIR/tls.pid"
	TLS_URL=https://127.0.0.1:$port
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
	CA_SHA=$(openssl x509 -in "$d/ca.pem" -outform DER | sha256sum | cut -c1-64)
	echo "$TLS_URL" >"$d/url"
	echo "$CA_SHA" >"$d/ca.sha"
}

@test "TLS: a pinned CA fingerprint (any case, with colons) is trusted, and only it" {
	tls_start
	run "$MINI" --get "$TLS_URL" /v1/ok --pin "$CA_SHA"
	echo "$output"
	[ "$status" = 0 ]
	[ "${lines[0]}" = "status 200" ]
	[ "${lines[1]}" = '{"ok":true}' ]
	upper=$(echo "$CA_SHA" | tr a-f A-F | sed 's/../&:/g; s/:$//')
	run "$MINI" --get "$TLS_URL" /v1/ok --pin "$upper"
	[ "$status" = 0 ]
	wrong=$(printf '%064d' 7)
	run "$MINI" --get "$TLS_URL" /v1/ok --pin "$wrong"
	echo "$output"
	[ "$status" = 1 ]
	[[ "$output" == *"presents CA sha256 $CA_SHA, not the pinned $wrong"* ]]
}

@test "TLS: an untrusted certificate is refused; a cafile with its CA, or insecure, is accepted" {
	tls_start
	run "$MINI" --get "$TLS_URL" /v1/ok
	echo "$output"
	[ "$status" = 1 ]
	[[ "$output" == *"certificate is not trusted"* ]]
	run "$MINI" --get "$TLS_URL" /v1/ok --ca-pem "$BATS_FILE_TMPDIR/tls/other.pem"
	echo "$output"
	[ "$status" = 1 ]
	[[ "$output" == *"not trusted"* ]]
	# names checked: the certificate's IP subjectAltName is 127.0.0.1
	run "$MINI" --get "$TLS_URL" /v1/ok --cafile "$BATS_FILE_TMPDIR/tls/ca.pem"
	echo "$output"
	[ "$status" = 0 ]
	[ "${lines[0]}" = "status 200" ]
	run "$MINI" --get "${TLS_URL/127.0.0.1/localhost}" /v1/ok --cafile "$BATS_FILE_TMPDIR/tls/ca.pem"
	echo "$output"
	[ "$status" = 1 ]
	run "$MINI" --get "$TLS_URL" /v1/ok --insecure
	[ "$status" = 0 ]
	[ "${lines[0]}" = "status 200" ]
}
