#!/usr/bin/env bats
# A join whose answer is lost (a timeout after the server took the token, a
# dropped connection) must not strand the host until it is replaced: the
# join token stays good until the host's first state report, a join again
# with it gets a new credential and the one never received stops working.
# After that report the token is spent for good. Seen at 10,000 simulated
# agents (docs/scale.md, run h): 1,670 hosts replaced for lost answers.
#
# Hosts that wait with their token unspent, as 0270 makes them: a local
# account whose server_url (127.0.0.1:1) their own agents cannot reach. The
# test reads a host's agent.json and plays the lost answer itself; the
# second host's join is then the real agent's (this build, a plain process
# on this machine's loopback). Needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	CIDR=$(random_cidr)
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cat >"$BATS_FILE_TMPDIR/bp/jr.yaml" <<YAML
accounts:
  - name: jr
    driver: local
    server_url: http://127.0.0.1:1
networks:
  - name: jrnet
    account: jr
    cidr: $CIDR
templates:
  - name: jrt
    account: jr
    network: jrnet
clusters:
  - name: jr
    groups:
      - name: g
        template: jrt
        size: 2
YAML
	herd apply -f "$BATS_FILE_TMPDIR/bp/jr.yaml" >/dev/null
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	if [ -s "$BATS_FILE_TMPDIR/agent.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/agent.pid")" 2>/dev/null || true
	fi
	server_cleanup
}

setup() {
	require_root
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || diag_hosts jr
}

host_json() { # host_json NAME
	herd host ls --group jr/g --json |
		perl -MJSON::PP -e 'for (@{decode_json(join "", <STDIN>)->{items}}) {
			print JSON::PP->new->canonical->encode($_), "\n" if $_->{name} eq $ARGV[0] }' "$1"
}
host_id() { host_json "$1" | json '{id}'; }
state_of() { host_json "$1" | json '{state}'; }
waiting() { # the host is up, its agent.json written, its token unspent
	local id
	id=$(host_id "$1")
	[ -n "$id" ] && [ -s "$HERD_DATA/hosts/$id/pid" ] && in_host "$id" test -s /run/herd/agent.json
}
join_body() { # join_body NAME: the join the host's agent would send
	in_host "$(host_id "$1")" cat /run/herd/agent.json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>);
			print encode_json({host_id => $d->{host_id}, join_token => $d->{join_token}})'
}

@test "a join again before any report: a new credential, the lost one refused" {
	wait_for 60 waiting g-1
	body=$(join_body g-1)
	run http POST /v1/agent/join "" "$body"
	[[ "$output" == "200 "* ]]
	lost=$(echo "${output#200 }" | json '{credential}')
	[[ "$lost" == hc_* ]]
	# the answer never reached the agent: it joins again
	run http POST /v1/agent/join "" "$body"
	[[ "$output" == "200 "* ]]
	cred=$(echo "${output#200 }" | json '{credential}')
	[[ "$cred" == hc_* ]]
	[ "$cred" != "$lost" ]
	run http GET /v1/meta/self "$lost"
	[[ "$output" == "401 "* ]]
	run http GET /v1/meta/self "$cred"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json '{name}')" = g-1 ]
	grep -q "host 'g-1' ($(host_id g-1)) joined again" "$HERD_DATA/server.log"
	# its first report spends the token: no third credential
	run http POST /v1/agent/state "$cred" '{"state":"initializing"}'
	[[ "$output" == "200 "* ]]
	run http POST /v1/agent/join "" "$body"
	[[ "$output" == "401 "* ]]
	[[ "$output" != *credential* ]]
	[[ "$output" == *"invalid, used or expired join token"* ]]
	run http GET /v1/meta/self "$cred"
	[[ "$output" == "200 "* ]]
	[ "$(state_of g-1)" = initializing ]
}

@test "the real agent whose first answer was lost joins and becomes ready" {
	wait_for 60 waiting g-2
	body=$(join_body g-2)
	run http POST /v1/agent/join "" "$body"   # taken, and the answer lost
	[[ "$output" == "200 "* ]]
	[ "$(state_of g-2)" = booting ]
	dir=$BATS_FILE_TMPDIR/agent
	mkdir -p "$dir/run" "$dir/state"
	in_host "$(host_id g-2)" cat /run/herd/agent.json |
		perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>);
			@$d{qw(server run_dir state_dir)} = @ARGV;
			print JSON::PP->new->canonical->encode($d)' "$HERD_URL" "$dir/run" "$dir/state" \
		>"$dir/agent.json"
	"$HERD" agent --config "$dir/agent.json" </dev/null >"$dir/agent.log" 2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/agent.pid"
	ready() { [ "$(state_of g-2)" = ready ]; }
	wait_for 30 ready || { cat "$dir/agent.log"; false; }
	grep -q "joined: host 'g-2'" "$dir/agent.log"
	refute grep -q "join failed; trying again" "$dir/agent.log"   # never refused
}
