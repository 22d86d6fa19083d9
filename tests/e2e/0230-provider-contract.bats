#!/usr/bin/env bats
# The provider contract (issue 13): the URL hosts use to reach the server
# comes from configuration: `herd server --advertise-url URL`, overridden by
# an account's server_url; both are checked (exit 2, 400 naming the field).
# The advertised hosts here cannot reach it (a .invalid name): only their
# agent config is read, inside the host. Needs root.

load lib

ADV_HOST=herd-adv.invalid
ACCT_URL=http://herd-acct.invalid:7999/base

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	HERD_PORT=$(free_port)
	ADV_URL="http://$ADV_HOST:$HERD_PORT/herd/"
	server_start --advertise-url "$ADV_URL"
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	CIDR=$(random_cidr)
	write_bp "$BP_DIR/pc.yaml" ""
	export BP_DIR CIDR ADV_URL
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# write_bp FILE EXTRA: a blueprint of one local account (EXTRA: more of its
# fields, one "key: value" line), a network and one group of one host.
write_bp() {
	cat >"$1" <<YAML
accounts:
  - name: pc
    driver: local
${2:+    $2}
networks:
  - name: pcnet
    account: pc
    cidr: $CIDR
templates:
  - name: pct
    account: pc
    network: pcnet
clusters:
  - name: pc
    groups:
      - name: g
        template: pct
        size: 1
        max: 4
YAML
}

# host_ids: the ids of the group's hosts, one per line.
host_ids() {
	herd host ls --group pc/g --json | perl -MJSON::PP -e '
		my $d = decode_json(join "", <STDIN>);
		print "$_->{id}\n" for @{$d->{items}}'
}

# agent_server ID: the server URL in the host's own /run/herd/agent.json.
agent_server() {
	[ -s "$HERD_DATA/hosts/$1/pid" ] || return 1
	in_host "$1" cat /run/herd/agent.json | json '{server}'
}

@test "a bad --advertise-url: exit 2, naming the option and what is wrong" {
	local d
	d=$(mktemp -d "$BATS_FILE_TMPDIR/bad.XXXXXX")
	for url in ftp://x.example 'http://' 'http://a b' 'http://h:0' 'http://u@h' 'http://h/"x'; do
		run "$HERD" server --data "$d" --listen "127.0.0.1:$(free_port)" --advertise-url "$url"
		echo "$url: $status $output"
		[ "$status" -eq 2 ]
		[[ "$output" == *"--advertise-url: "* ]]
		[[ "$output" != *"unrecognized option"* ]]
	done
	rm -rf "$d"
}

@test "--advertise-url reaches a launched host's agent config (trailing slash dropped)" {
	run herd apply -f "$BP_DIR/pc.yaml"
	[ "$status" -eq 0 ]
	wait_for 30 host_ids
	id=$(host_ids | head -1)
	wait_for 30 agent_server "$id"
	echo "agent config server: $(agent_server "$id")"
	[ "$(agent_server "$id")" = "${ADV_URL%/}" ]
}

@test "an account's server_url overrides --advertise-url for the hosts launched after it" {
	before=$(host_ids | sort)
	write_bp "$BP_DIR/pc2.yaml" "server_url: $ACCT_URL"
	run herd apply -f "$BP_DIR/pc2.yaml"
	[ "$status" -eq 0 ]
	run herd group scale pc/g 2
	[ "$status" -eq 0 ]
	new_host() { comm -13 <(echo "$before") <(host_ids | sort) | grep -q .; }
	wait_for 30 new_host
	id=$(comm -13 <(echo "$before") <(host_ids | sort) | head -1)
	wait_for 30 agent_server "$id"
	echo "agent config server: $(agent_server "$id")"
	[ "$(agent_server "$id")" = "$ACCT_URL" ]
}

@test "an account's server_url is checked: 400 naming server_url; a good one is taken" {
	for url in gopher://x 'https://' 'http://h:99999' 'http://h?q=1'; do
		run http POST /v1/accounts "$HERD_TOKEN" "{\"name\":\"pcbad\",\"driver\":\"local\",\"server_url\":\"$url\"}"
		echo "$url: $output"
		[[ "$output" == "400 "* ]]
		[ "$(echo "${output#400 }" | json '{error}{field}')" = server_url ]
		[[ "$(echo "${output#400 }" | json '{error}{message}')" != *"unknown"* ]]
	done
	run http POST /v1/accounts "$HERD_TOKEN" '{"name":"pcgood","driver":"local","server_url":"https://herd.example.com:8443"}'
	echo "$output"
	[[ "$output" == "201 "* ]]
	run http GET /v1/accounts/pcgood "$HERD_TOKEN"
	[[ "$output" == "200 "* ]]
	[ "$(echo "${output#200 }" | json '{server_url}')" = https://herd.example.com:8443 ]
}
