#!/usr/bin/env bats
# The agent's protobuf push (issue 15): a server that offers protobuf in
# the agent config ("push_formats") gets a real agent's pushes as
# application/x-protobuf. Shown through /metrics (herd_agent_pushes_total
# by format: the protobuf count grows, the JSON count no longer does once
# a protobuf push went through) and the metric API (a monitor's value the
# agent pushed is the latest one held). One local host (a network
# namespace) running the static herd-agent: needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start --push-interval 1s
	export CIDR BP ID1 CRED1
	CIDR=$(random_cidr)
	BP=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scale/scripts" "$BP/"
	blueprint >"$BP/pf.yaml"
	herd apply -f "$BP/pf.yaml" >/dev/null
	wait_for 60 host_ready
	ID1=$(herd host show pf/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# One host whose monitor reads /var/lib/herd/busy every second.
blueprint() {
	cat <<YAML
accounts:
  - name: here
    driver: local
networks:
  - name: vpc1
    account: here
    cidr: $CIDR
scripts:
  - name: init.sh
    file: scripts/init.sh
templates:
  - name: node
    account: here
    network: vpc1
    init: [init.sh]
monitors:
  - name: busy
    command: cat /var/lib/herd/busy
    interval: 1s
clusters:
  - name: pf
    groups:
      - name: node
        template: node
        size: 1
        monitors: [busy]
YAML
}

host_ready() {
	[ "$(herd host show pf/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

# pushes FORMAT: herd_agent_pushes_total{format="FORMAT"} on /metrics (0
# when the server has not counted any).
pushes() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/metrics" |
		awk -v n="herd_agent_pushes_total{format=\"$1\"}" '$1 == n { v = $2 } END { print v + 0 }'
}

# pushes_above FORMAT N: more than N pushes in FORMAT counted.
pushes_above() {
	[ "$(pushes "$1")" -gt "$2" ]
}

set_busy() {
	echo "$1" >"$HERD_DATA/hosts/$ID1/busy.tmp"
	mv "$HERD_DATA/hosts/$ID1/busy.tmp" "$HERD_DATA/hosts/$ID1/busy"
}

# The newest busy value of node-1 the server holds ("" when none).
latest_is() {
	[ "$(http GET "/v1/metrics/latest?metric=busy&group=node&cluster=pf" "$HERD_TOKEN" |
		cut -d' ' -f2- | json '{items}[0]{value}' 2>/dev/null)" = "$1" ]
}

@test "the agent config offers protobuf pushes" {
	run http GET /v1/agent/config "$CRED1"
	echo "$output"
	[[ "$output" == "200 "* ]]
	[[ "$(echo "${output#200 }" | json '{push_formats}')" == *'"protobuf"'* ]]
}

@test "the agent pushes protobuf: counted by format, its values queryable" {
	wait_for 30 pushes_above protobuf 0
	# once a protobuf push went through, no JSON one follows: batches go
	# out in order, and every batch made after the config is protobuf
	json1=$(pushes json)
	pb1=$(pushes protobuf)
	wait_for 30 pushes_above protobuf $((pb1 + 2))
	[ "$(pushes json)" = "$json1" ]
	# what the agent pushed in protobuf is what the server holds
	set_busy 41
	wait_for 30 latest_is 41
	set_busy 17
	wait_for 30 latest_is 17
	run herd metrics ls --cluster pf --group node --json
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"cpu_busy_pct"'* ]]
}
