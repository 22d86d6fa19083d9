#!/usr/bin/env bats
# Edge-triggered pushes (issue 16): the agent config lists the thresholds of
# the group's policies (its version changes with a policy), and a monitor
# value crossing one is pushed at once instead of at the next interval.
# Agents push every 60 s here (at each whole minute: --push-interval): a value
# seen by the server before the minute it was written in ends can only have
# come from an immediate push. One local host: needs root. No timing
# thresholds: the assertions are on order (which minute) and counts.

load lib

setup_file() {
	require_root
	server_start --push-interval 60s
	export CIDR BP
	CIDR=$(random_cidr)
	BP=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scale/scripts" "$BP/"
	blueprint "max(busy) > 32" >"$BP/edge.yaml"
	herd apply -f "$BP/edge.yaml" >/dev/null
	wait_for 60 host_ready
	export ID1 CRED1
	ID1=$(herd host show edge/node-1 --json | json '{id}')
	CRED1=$(in_host "$ID1" cat /run/herd/host.json | json '{credential}')
	set_busy 10
	# the first interval push (at a whole minute) brings the 10
	wait_for 75 latest_is 10
}

teardown_file() {
	server_cleanup
}

setup() {
	require_root
}

# blueprint WHEN: one host whose monitor reads /var/lib/herd/busy every
# second, and one policy grow: WHEN -> +1.
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
  - name: edge
    groups:
      - name: node
        template: node
        size: 1
        min: 1
        max: 3
        monitors: [busy]
        policies:
          - name: grow
            when: $1
            adjust: +1
            cooldown: 10m
YAML
}

host_ready() {
	[ "$(herd host show edge/node-1 --json 2>/dev/null | json '{state}')" = ready ]
}

set_busy() {
	echo "$1" >"$HERD_DATA/hosts/$ID1/busy.tmp"
	mv "$HERD_DATA/hosts/$ID1/busy.tmp" "$HERD_DATA/hosts/$ID1/busy"
}

# The newest busy value of node-1 the server holds ("" when none).
latest() {
	http GET "/v1/metrics/latest?metric=busy&group=node&cluster=edge" "$HERD_TOKEN" |
		cut -d' ' -f2- | json '{items}[0]{value}' 2>/dev/null
}

latest_is() {
	[ "$(latest)" = "$1" ]
}

desired_is() {
	[ "$(herd group show edge/node --json | json '{desired}')" = "$1" ]
}

# Waits until the wall clock is 5-30 s into a minute: a value written then
# and seen by the server before the minute changes came before the next
# interval push.
early_in_minute() {
	local s
	s=$((10#$(date +%S)))
	[ "$s" -ge 5 ] && [ "$s" -le 30 ]
}

config() {
	http GET /v1/agent/config "$CRED1" | cut -d' ' -f2-
}

@test "the agent config carries the policies' thresholds; its version changes with a policy" {
	local c v1 v2
	c=$(config)
	[ "$(echo "$c" | json_count '{thresholds}')" = 1 ]
	[ "$(echo "$c" | json '{thresholds}[0]{metric}')" = busy ]
	[ "$(echo "$c" | json '{thresholds}[0]{op}')" = ">" ]
	[ "$(echo "$c" | json '{thresholds}[0]{value}')" = 32 ]
	v1=$(echo "$c" | json '{version}')
	blueprint "max(busy) >= 40" >"$BP/edge2.yaml"
	herd apply -f "$BP/edge2.yaml" >/dev/null
	c=$(config)
	v2=$(echo "$c" | json '{version}')
	[ "$v2" != "$v1" ]
	[ "$(echo "$c" | json '{thresholds}[0]{op}')" = ">=" ]
	[ "$(echo "$c" | json '{thresholds}[0]{value}')" = 40 ]
	# back: the first version again (the version is the content's)
	herd apply -f "$BP/edge.yaml" >/dev/null
	[ "$(config | json '{version}')" = "$v1" ]
}

@test "a value that moves without crossing is not pushed before the interval" {
	local m
	wait_for 70 early_in_minute
	m=$(date +%H%M)
	set_busy 20
	sleep 3    # three monitor runs
	[ "$(date +%H%M)" = "$m" ] || skip "the minute changed meanwhile"
	[ "$(latest)" = 10 ]
	[ "$(herd group show edge/node --json | json '{desired}')" = 1 ]
}

@test "a value crossing the threshold reaches the server and scales the group before the interval" {
	local m
	wait_for 70 early_in_minute
	m=$(date +%H%M)
	set_busy 50
	wait_for 70 latest_is 50
	# seen in the minute it was written in: no interval push came between
	[ "$(date +%H%M)" = "$m" ]
	wait_for 70 desired_is 2
	[ "$(date +%H%M)" = "$m" ]
	herd activity ls --group edge/node --json | grep -qF 'policy:grow'
}
