#!/usr/bin/env bats
# TLS (issue 16): a server forced to HTTPS on loopback and on its local
# bridges (--tls always). Local hosts pin its CA (ca_sha256 in their config),
# join and push over HTTPS; an agent given another fingerprint refuses to
# talk (its log names both, the server never sees its join); the CLI
# verifies like curl (refused by default, --cacert, --insecure); GET
# /v1/tls/ca is the CA openssl fingerprints. Needs root for the hosts.

load lib

setup_file() {
	HERD_DATA=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/herd-data.XXXXXX")
	HERD_PORT=$(free_port)
	export HERD_URL="https://127.0.0.1:$HERD_PORT"
	store_opts "$HERD_DATA"
	"$HERD" server --data "$HERD_DATA" "${STORE_OPTS[@]}" --listen "127.0.0.1:$HERD_PORT" --tls always \
		>>"$HERD_DATA/server.log" 2>&1 &
	SERVER_PID=$!
	echo "$SERVER_PID" >"$HERD_DATA/server.pid"
	wait_for 10 curl -sf --cacert "$HERD_DATA/tls/ca.pem" "$HERD_URL/healthz" >/dev/null
	HERD_TOKEN=$(cat "$HERD_DATA/admin.token")
	export HERD_DATA HERD_PORT SERVER_PID HERD_TOKEN
}

teardown_file() {
	if [ -n "${AGENT_PID:-}" ]; then
		kill "$AGENT_PID" 2>/dev/null || true
	fi
	server_cleanup
}

herdc() { # herd trusting the server's CA
	"$HERD" --cacert "$HERD_DATA/tls/ca.pem" "$@"
}

ca_fp() { # the CA's fingerprint as openssl prints it: lower-case hex, no ':'
	openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

@test "GET /v1/tls/ca is the CA in the data dir; its fingerprint is the logged one" {
	curl -sf --cacert "$HERD_DATA/tls/ca.pem" "$HERD_URL/v1/tls/ca" >"$BATS_TEST_TMPDIR/ca.pem"
	want=$(ca_fp "$HERD_DATA/tls/ca.pem")
	[ "$(ca_fp "$BATS_TEST_TMPDIR/ca.pem")" = "$want" ]
	grep -q "CA fingerprint (SHA-256) $want" "$HERD_DATA/server.log"
	[ "$(stat -c %a "$HERD_DATA/tls/ca.key")" = 600 ]
	[ "$(stat -c %a "$HERD_DATA/tls/server.key")" = 600 ]
	# plain HTTP is not served on it
	refute curl -sf "http://127.0.0.1:$HERD_PORT/healthz"
}

@test "the CLI refuses an unknown certificate unless told: --cacert, HERD_CACERT, --insecure" {
	run herd group ls
	[ "$status" -ne 0 ]
	[[ "$output" == *"TLS certificate"*"not trusted"*"--cacert"* ]]
	run herd --cacert "$HERD_DATA/tls/ca.pem" cluster ls
	[ "$status" -eq 0 ]
	HERD_CACERT="$HERD_DATA/tls/ca.pem" run herd cluster ls
	[ "$status" -eq 0 ]
	run herd -k cluster ls
	[ "$status" -eq 0 ]
	run herd cluster ls --insecure
	[ "$status" -eq 0 ]
	# herd login --cacert keeps the CA with the saved server
	home=$BATS_TEST_TMPDIR/home
	mkdir -p "$home"
	HOME=$home run "$HERD" --cacert "$HERD_DATA/tls/ca.pem" login "$HERD_URL" --token-file "$HERD_DATA/admin.token"
	[ "$status" -eq 0 ]
	HOME=$home run env -u HERD_URL -u HERD_TOKEN "$HERD" cluster ls
	[ "$status" -eq 0 ]
}

group_ready() {
	[ "$(herdc host ls --group tls/node --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print scalar(grep { $_->{state} eq "ready" } @{$d->{items}})')" = 2 ]
}

pushed() { # pushed NAME: the host's cpu_busy_pct reached the server
	local v
	v=$(herdc metrics query cpu_busy_pct --host "tls/$1" --since 2m --json |
		json '{series}[0]{points}[0][1]' 2>/dev/null)
	[ -n "$v" ]
}

@test "local hosts pin the CA, join and push over HTTPS" {
	require_root
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/metrics/scripts" "$BATS_FILE_TMPDIR/bp/"
	sed "s|@CIDR@|$(random_cidr)|; s|- name: mx|- name: tls|" \
		"$BATS_TEST_DIRNAME/fixtures/metrics/metrics.yaml" >"$BATS_FILE_TMPDIR/bp/tls.yaml"
	herdc apply -f "$BATS_FILE_TMPDIR/bp/tls.yaml" >/dev/null
	wait_for 60 group_ready
	id=$(herdc host show tls/node-1 --json | json '{id}')
	cfg=$(in_host "$id" cat /run/herd/agent.json)
	[[ "$(json '{server}' <<<"$cfg")" == https://* ]]
	[ "$(json '{ca_sha256}' <<<"$cfg")" = "$(ca_fp "$HERD_DATA/tls/ca.pem")" ]
	# the bridge's gateway serves HTTPS (--tls always): no plain HTTP there
	gw=$(json '{server}' <<<"$cfg")
	grep -q "listening on $gw" "$HERD_DATA/server.log"
	wait_for 30 pushed node-1
	# `herd meta` on the host trusts the CA its agent pinned
	[ "$(in_host "$id" /run/herd/bin/herd meta self name)" = node-1 ]
}

@test "an agent given another fingerprint refuses the server and never sends its join" {
	dir=$BATS_FILE_TMPDIR/bad-agent
	mkdir -p "$dir/run" "$dir/state"
	bad=00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF
	printf '{"server":"%s","host_id":"tlsbad%s","join_token":"hj_notreal","ca_sha256":"%s","run_dir":"%s","state_dir":"%s"}\n' \
		"$HERD_URL" "$RANDOM" "$bad" "$dir/run" "$dir/state" >"$dir/agent.json"
	joins_before=$(herdc audit ls --json | grep -c '/v1/agent/join' || true)
	"$HERD" agent --config "$dir/agent.json" >"$dir/agent.log" 2>&1 &
	AGENT_PID=$!
	wait_for 20 grep -q "refusing the server" "$dir/agent.log"
	want=$(tr 'A-F' 'a-f' <<<"$bad")
	grep "refusing the server" "$dir/agent.log" | grep -q "$want"
	grep "refusing the server" "$dir/agent.log" | grep -q "$(ca_fp "$HERD_DATA/tls/ca.pem")"
	kill "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
	refute grep -q "joining" "$dir/agent.log"
	[ "$(herdc audit ls --json | grep -c '/v1/agent/join' || true)" = "$joins_before" ]
	# the same agent with the right fingerprint does reach the join (and
	# is refused there: its token is not real)
	sed -i "s/$bad/$(ca_fp "$HERD_DATA/tls/ca.pem")/" "$dir/agent.json"
	"$HERD" agent --config "$dir/agent.json" >"$dir/agent2.log" 2>&1 &
	AGENT_PID=$!
	wait_for 20 grep -q "agent/join: server answered HTTP 4" "$dir/agent2.log"
	kill "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
	grep -q "server CA pinned" "$dir/agent2.log"
	[ "$(herdc audit ls --json | grep -c '/v1/agent/join' || true)" -gt "$joins_before" ]
}

@test "an operator certificate whose key is another's is refused at start, naming the files" {
	d=$BATS_TEST_TMPDIR/op
	mkdir -p "$d/data"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=a -keyout "$d/a.key" -out "$d/a.pem" 2>/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=b -keyout "$d/b.key" -out "$d/b.pem" 2>/dev/null
	run "$HERD" server --data "$d/data" --listen "127.0.0.1:$(free_port)" \
		--tls-cert "$d/a.pem" --tls-key "$d/b.key"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$d/a.pem"*"$d/b.key"* ]]
	run "$HERD" server --data "$d/data" --listen "127.0.0.1:$(free_port)" \
		--tls-cert "$d/missing.pem" --tls-key "$d/b.key"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$d/missing.pem"* ]]
}

@test "restarts keep the CA; new names remake only the server certificate" {
	d=$BATS_TEST_TMPDIR/names
	mkdir -p "$d"
	port=$(free_port)
	start_stop() { # start_stop ARGS...: a server until it serves, then stopped
		"$HERD" server --data "$d" --listen "127.0.0.1:$port" --tls always "$@" >>"$d/log" 2>&1 &
		pid=$!
		wait_for 10 curl -sf --cacert "$d/tls/ca.pem" "https://127.0.0.1:$port/healthz" >/dev/null
		if [ $# -gt 0 ]; then # by its new name too
			curl -sf --cacert "$d/tls/ca.pem" --resolve "herd.example.test:$port:127.0.0.1" \
				"https://herd.example.test:$port/healthz" >/dev/null
		fi
		kill "$pid"
		wait "$pid" || true
	}
	start_stop
	ca=$(ca_fp "$d/tls/ca.pem")
	cert=$(ca_fp "$d/tls/server.pem")
	start_stop
	[ "$(ca_fp "$d/tls/ca.pem")" = "$ca" ]
	[ "$(ca_fp "$d/tls/server.pem")" = "$cert" ]
	# the new certificate is what it serves, verified by that name
	start_stop --tls-name herd.example.test
	[ "$(ca_fp "$d/tls/ca.pem")" = "$ca" ]
	[ "$(ca_fp "$d/tls/server.pem")" != "$cert" ]
	openssl x509 -in "$d/tls/server.pem" -noout -ext subjectAltName | grep -q "DNS:herd.example.test"
	grep -q "made the server certificate" "$d/log"
}

@test "--tls auto: HTTPS on 0.0.0.0, plain HTTP on 127.0.0.1; --tls never says it is insecure" {
	d=$BATS_TEST_TMPDIR/auto
	mkdir -p "$d"
	p1=$(free_port)
	p2=$(free_port)
	while [ "$p2" = "$p1" ]; do p2=$(free_port); done
	"$HERD" server --data "$d" --listen "127.0.0.1:$p1" --listen "0.0.0.0:$p2" >"$d/log" 2>&1 &
	pid=$!
	wait_for 10 curl -sf "http://127.0.0.1:$p1/healthz" >/dev/null
	curl -sf --cacert "$d/tls/ca.pem" "https://127.0.0.1:$p2/healthz" >/dev/null
	refute curl -sf "http://127.0.0.1:$p2/healthz"
	kill "$pid"
	wait "$pid" || true
	grep -q "also listening on https://0.0.0.0:$p2" "$d/log"
	refute grep -q INSECURE "$d/log"
	"$HERD" server --data "$d" --listen "0.0.0.0:$p2" --tls never >"$d/log2" 2>&1 &
	pid=$!
	wait_for 10 curl -sf "http://127.0.0.1:$p2/healthz" >/dev/null
	kill "$pid"
	wait "$pid" || true
	grep -q "INSECURE: 0.0.0.0:$p2 serves plain HTTP" "$d/log2"
}
