#!/usr/bin/env bats
# Safety (issue 12): arithmetic that cannot turn a decision around, and
# policies refused at the door. A group of 2 with a target-tracking policy;
# one host's monitor reports 1e300: the group must never shrink (the old
# (int)ceil() overflowed to INT_MIN, was clamped to min and terminated a
# healthy host). Then bad policies are refused with 400 naming the field.
# No timing thresholds: generous waits, a bounded observation window.

load lib

setup_file() {
	require_root
	server_start
	export CIDR
	CIDR=$(random_cidr)
	mkdir -p "$BATS_FILE_TMPDIR/bp/scripts"
	cp "$BATS_TEST_DIRNAME/fixtures/scale/scripts/init.sh" "$BATS_FILE_TMPDIR/bp/scripts/"
	cat >"$BATS_FILE_TMPDIR/bp/arith.yaml" <<YAML
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
  - name: arith
    groups:
      - name: node
        template: node
        size: 2
        min: 1
        max: 3
        monitors: [busy]
        policies:
          - name: track
            target: avg(busy) = 25
            cooldown: 5s
            scale_in_cooldown: 5s
YAML
	herd apply -f "$BATS_FILE_TMPDIR/bp/arith.yaml" >/dev/null
	wait_for 90 all_ready 2
}

teardown_file() {
	server_cleanup
}

ready_count() {
	herd host ls --group arith/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}'
}

all_ready() {
	[ "$(ready_count)" -eq "$1" ]
}

# set_busy NAME VALUE: what that host's monitor will print.
set_busy() {
	local id
	id=$(herd host show "arith/$1" --json | json '{id}')
	echo "$2" >"$HERD_DATA/hosts/$id/busy.tmp"
	mv "$HERD_DATA/hosts/$id/busy.tmp" "$HERD_DATA/hosts/$id/busy"
}

desired() {
	herd group show arith/node --json | json '{desired}'
}

activity_says() {
	herd activity ls --group arith/node --json | grep -qF "$1"
}

# post_policy JSON: POST /v1/policies; prints "STATUS BODY".
post_policy() {
	local body
	body=$(curl -s -o "$BATS_FILE_TMPDIR/resp" -w '%{http_code}' -H "Authorization: Bearer $HERD_TOKEN" \
		-X POST --data-binary "$1" "$HERD_URL/v1/policies")
	echo "$body $(cat "$BATS_FILE_TMPDIR/resp")"
}

# refused FIELD JSON-FIELDS: a policy of arith/node with those fields is a
# 400 naming FIELD, and nothing is stored.
refused() {
	local field=$1 out
	out=$(post_policy "{\"name\":\"bad\",\"cluster\":\"arith\",\"group\":\"node\",$2}")
	echo "# $out"
	[[ "$out" == "400 "* ]]
	[ "$(echo "${out#400 }" | json '{error}{field}')" = "$field" ]
	run herd policy show arith/node/bad
	[ "$status" -ne 0 ]
}

@test "one host reports 1e300 for a target-tracking metric: the group never shrinks" {
	set_busy node-1 25
	set_busy node-2 25
	set_busy node-1 1e300
	# a bounded observation window: 20 s, every 0.5 s
	min=99
	for _ in $(seq 1 40); do
		d=$(desired)
		[ "$d" -lt "$min" ] && min=$d
		sleep 0.5
	done
	echo "# smallest desired seen: $min, now $(desired)" >&3
	[ "$min" -ge 2 ]
	# huge load saturates at max, and the activity says why
	wait_for 30 activity_says "taken as saturating load"
	[ "$(desired)" -eq 3 ]
	run herd policy explain arith/node/track
	[ "$status" -eq 0 ]
	echo "# $output" | head -20 >&3
}

@test "policies refused at the door: 400 naming the field" {
	refused for '"when":"avg(busy) > 32","adjust":"+1","for":"bogus"'
	refused cooldown '"when":"avg(busy) > 32","adjust":"+1","cooldown":"5 parsecs"'
	refused timezone '"schedule":"0 9 * * *","timezone":"../../etc/passwd","set":{"min":1}'
	refused timezone '"schedule":"0 9 * * *","timezone":"Mars/Olympus","set":{"min":1}'
	refused timezone '"schedule":"0 9 * * *","timezone":"Asia/Shanghai/../../../../etc/passwd","set":{"min":1}'
	refused set.min '"schedule":"0 9 * * *","set":{"min":5,"max":2}'
	refused set.desired '"schedule":"0 9 * * *","set":{"desired":5000}'
	refused set.min '"schedule":"0 9 * * *","set":{"min":-1}'
	refused target '"target":"avg(busy) = 0"'
	refused target '"target":"avg(busy) = -5"'
	refused target '"target":"avg(busy) = 1e999"'
	# the same rules when the policy comes in a blueprint
	sed 's|target: avg(busy) = 25|schedule: "0 9 * * *"\n            timezone: Mars/Olympus\n            set: {min: 1}|' \
		"$BATS_FILE_TMPDIR/bp/arith.yaml" >"$BATS_FILE_TMPDIR/bp/bad.yaml"
	run herd apply -f "$BATS_FILE_TMPDIR/bp/bad.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"clusters[0].groups[0].policies[0].timezone"* ]]
	# and a good one is still accepted
	out=$(post_policy '{"name":"nine","cluster":"arith","group":"node","schedule":"0 9 * * *","timezone":"Asia/Shanghai","set":{"min":1,"max":3}}')
	[[ "$out" == "20"* ]]
	herd policy rm arith/node/nine
}
