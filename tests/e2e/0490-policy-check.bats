#!/usr/bin/env bats
# shellcheck disable=SC2154  # $stderr is set by run --separate-stderr
# Flapping caught before it costs (issue 17): `herd policy check` predicts,
# for each scale-out rule, what one step later does at the same load. The
# seed's rules (avg(busy) > 32 -> +1, min(busy) < 20 -> -1) at 150 items on
# nodes of 40 slots oscillate 4 <-> 5 and are flagged (exit 3) naming the
# rules and numbers, as a what-if and from the group's `expect`, and `herd
# apply` warns on stderr but applies; the demo's blueprint
# (examples/queue/cluster.yaml: the same rules, items of 45 s) passes. apply
# also warns of a local group whose max would outgrow the machine's
# neighbour table. The groups here have no hosts (size 0): nothing launches.

load lib
bats_require_minimum_version 1.5.0

setup_file() {
	server_start
	export CIDR
	CIDR=$(random_cidr)
	export BP="$BATS_FILE_TMPDIR/bp"
	mkdir -p "$BP"
	# the account, network and template every document here uses
	export FL_BASE
	FL_BASE=$(cat <<-YAML
	accounts:
	  - name: fl-here
	    driver: local
	networks:
	  - name: fl-net
	    account: fl-here
	    cidr: $CIDR
	templates:
	  - name: fl-node
	    account: fl-here
	    network: fl-net
	YAML
	)
	cat >"$BP/seed.yaml" <<-YAML
	$FL_BASE
	monitors:
	  - name: busy
	    command: echo 0
	clusters:
	  - name: fl-seed
	    groups:
	      - name: node
	        template: fl-node
	        size: 0
	        min: 0
	        max: 6
	        monitors: [busy]
	        expect: {load: 150, hosts: 3, slots: 40}
	        policies:
	          - name: grow
	            when: avg(busy) > 32
	            for: 6s
	            adjust: +1
	            cooldown: 60s
	          - name: shrink
	            when: min(busy) < 20
	            for: 10s
	            adjust: -1
	            cooldown: 30s
	YAML
	# the demo's blueprint as it is, but no host launched: sizes 0
	cp -r "$BATS_TEST_DIRNAME/../../examples/queue/scripts" "$BP/"
	sed -e "s|CIDR|$(random_cidr)|" -e "s|LISTEN|127.0.0.1:$(free_port)|" \
		-e 's/size: [0-9]*/size: 0/' -e 's/min: [0-9]*/min: 0/' \
		"$BATS_TEST_DIRNAME/../../examples/queue/cluster.yaml" >"$BP/demo.yaml"
}

teardown_file() {
	server_cleanup
}

@test "apply of the seed's rules warns on stderr and still applies" {
	run --separate-stderr herd apply -f "$BP/seed.yaml"
	echo "out: $output"
	echo "err: $stderr"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"warning: group fl-seed/node: grow: oscillates 4 <-> 5 hosts"* ]]
	[[ "$stderr" == *"min(busy) < 20 of shrink"* ]]
	herd policy explain fl-seed/node/grow >/dev/null
	[ "$(herd group show fl-seed/node --json | json '{expect}{load}')" = 150 ]
}

@test "policy check flags the seed's rules at 150 items / 40 slots (what-if), naming rules and numbers" {
	run herd policy check fl-seed/node --load 150 --hosts 3 --slots 40
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"oscillates"*"grow: oscillates 4 <-> 5 hosts: avg(busy) = 37.5 meets avg(busy) > 32 on 4, grow adds host 5, then min(busy) = 0 meets min(busy) < 20 of shrink"* ]]
	run herd policy check fl-seed/node --load 150 --hosts 3 --slots 40 --json
	[ "$status" -eq 3 ]
	[ "$(echo "$output" | json '{findings}[0]{verdict}')" = oscillates ]
	[ "$(echo "$output" | json '{findings}[0]{scale_in}')" = shrink ]
	[ "$(echo "$output" | json '{metric_kind}')" = additive ]
}

@test "policy check uses the group's expect when no host has data" {
	run herd policy check fl-seed/node
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"from expect"* ]]
	[[ "$output" == *"oscillates 4 <-> 5"* ]]
}

@test "policy check passes the same rules when the load ends before a second step" {
	run herd policy check fl-seed/node --load 150 --hosts 3 --slots 40 --lasts 45s
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ends before grow can act again (66s)"* ]]
	# under the threshold there is nothing to predict
	run herd policy check fl-seed/node --load 90 --hosts 3 --slots 40
	[ "$status" -eq 0 ]
	[[ "$output" == *"does not meet avg(busy) > 32"* ]]
}

@test "the demo's blueprint passes: apply without a warning, policy check exit 0" {
	run --separate-stderr herd apply -f "$BP/demo.yaml"
	echo "out: $output"
	echo "err: $stderr"
	[ "$status" -eq 0 ]
	[[ "$stderr" != *warning* ]]
	run herd policy check demo/node
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"from expect"* ]]
	[[ "$output" == *"ok"*"grow"* ]]
}

@test "a local group that may grow past this machine's neighbour table is warned of at apply, naming both figures; one that fits is not" {
	local thresh3 entries left
	read -r thresh3 </proc/sys/net/ipv4/neigh/default/gc_thresh3
	entries=$((16#$(awk 'NR == 2 { print $1 }' /proc/net/stat/arp_cache)))
	left=$(((thresh3 - thresh3 / 8 - entries) / 2))
	echo "room for $left local hosts (gc_thresh3 $thresh3, $entries entries)"
	[ "$left" -lt 990 ] || skip "gc_thresh3 is raised here: room for $left local hosts, more than a group takes"
	cat >"$BP/room.yaml" <<-YAML
	$FL_BASE
	clusters:
	  - name: fl-room
	    groups:
	      - name: big
	        template: fl-node
	        size: 0
	        max: 1000
	      - name: small
	        template: fl-node
	        size: 0
	        max: 2
	YAML
	run --separate-stderr herd apply -f "$BP/room.yaml"
	echo "out: $output"
	echo "err: $stderr"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"warning: group fl-room/big: may grow by 1000 local host(s) (max 1000, 0 now), but this machine has room for "*" more: "*"gc_thresh3 = $thresh3"*"launches past it are refused"* ]]
	[[ "$stderr" != *"fl-room/small"* ]]
	# applied all the same
	[ "$(herd group show fl-room/big --json | json '{max}')" = 1000 ]
}

@test "no data and no expect: cannot tell (exit 4), never a pass; bad what-if names the field" {
	run http GET "/v1/groups/node/policy-check?cluster=fl-seed&load=abc" "$HERD_TOKEN"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = load ]
	run http GET "/v1/groups/node/policy-check?cluster=fl-seed&slots=40" "$HERD_TOKEN"
	[[ "$output" == "400 "* ]]
	[ "$(echo "${output#400 }" | json '{error}{field}')" = load ]
	sed -e '/expect:/d' -e 's/fl-seed/fl-bare/' "$BP/seed.yaml" >"$BP/bare.yaml"
	herd apply -f "$BP/bare.yaml" >/dev/null
	run herd policy check fl-bare/node
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"cannot_tell"*"cannot tell"* ]]
}

@test "a blueprint's expect is validated, naming the field" {
	sed -e 's/expect: {load: 150, hosts: 3, slots: 40}/expect: {load: 150, lasts: forever}/' \
		"$BP/seed.yaml" >"$BP/bad.yaml"
	run herd apply -f "$BP/bad.yaml"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"expect.lasts"* ]]
}
