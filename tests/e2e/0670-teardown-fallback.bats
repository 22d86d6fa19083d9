#!/usr/bin/env bats
# herd server --teardown when the store cannot be opened (a corrupt herd.db,
# a schema newer than the binary's): the local provider's hosts of that data
# dir (netns, veths, bridge, agent processes, cgroups) are found without the
# store and removed; another data dir's hosts are left alone; the message
# says the store could not be opened and that cloud hosts were not looked
# for. Three servers: A (2 hosts, header corrupted, instance id from
# DATA/instance), N (1 host, user_version far ahead and DATA/instance gone:
# the id read from the store without migrating, and its host's veth gone:
# the bridge is found by DATA/nets alone) and K (1 host, kept).

load lib

# Starts a server on a data dir of its own and applies a cluster of $2 local
# hosts; saves its variables as <prefix>_DATA, _URL, _TOKEN, _PID.
start_dir() {
	local prefix=$1 size=$2 cidr
	HERD_DATA=''
	unset HERD_PORT SERVER_PID
	server_start
	# known to teardown_file from here on, whatever fails next
	export "${prefix}_DATA=$HERD_DATA" "${prefix}_URL=$HERD_URL" "${prefix}_TOKEN=$HERD_TOKEN" \
		"${prefix}_PID=$SERVER_PID"
	cidr=$(random_cidr)
	mkdir -p "$HERD_DATA/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scale/scripts" "$HERD_DATA/bp/"
	cat >"$HERD_DATA/bp/tf.yaml" <<-EOF
	accounts:
	  - name: here
	    driver: local
	networks:
	  - name: vpc1
	    account: here
	    cidr: $cidr
	scripts:
	  - name: init.sh
	    file: scripts/init.sh
	templates:
	  - name: node
	    account: here
	    network: vpc1
	    init: [init.sh]
	clusters:
	  - name: tf
	    groups:
	      - name: node
	        template: node
	        size: $size
	EOF
	herd apply -f "$HERD_DATA/bp/tf.yaml" >/dev/null
	wait_for 90 ready_is "$size"
}

ready_is() {
	[ "$(herd host ls --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

# use_dir PREFIX: points lib's variables (and herd) at that server.
use_dir() {
	local d=${1}_DATA u=${1}_URL t=${1}_TOKEN p=${1}_PID
	HERD_DATA=${!d} HERD_URL=${!u} HERD_TOKEN=${!t} SERVER_PID=${!p}
	export HERD_DATA HERD_URL HERD_TOKEN SERVER_PID
}

setup_file() {
	require_root
	if on_pg; then
		return 0
	fi
	start_dir K 1
	start_dir A 2
	start_dir N 1
}

teardown_file() {
	local p
	for p in A N K; do
		local d=${p}_DATA
		[ -n "${!d:-}" ] || continue
		use_dir "$p"
		# what the tests did to the store undone, so that a plain
		# teardown removes whatever the tested one left (the old code)
		if [ -f "$HERD_DATA/herd.db.head" ]; then
			dd if="$HERD_DATA/herd.db.head" of="$HERD_DATA/herd.db" bs=16 count=1 \
				conv=notrunc 2>/dev/null
		fi
		if [ -f "$HERD_DATA/user_version" ]; then
			sqlite3 "$HERD_DATA/herd.db" "PRAGMA user_version = $(cat "$HERD_DATA/user_version")"
		fi
		server_cleanup
	done
}

instance_of() {
	curl -sf "$1/healthz" | json '{instance}'
}

# pids NAME: the agent pids (PID 1 of each host) of that data dir.
pids() {
	local d=${1}_DATA
	cat "${!d}"/hosts/*/pid
}

# alive PID: the process runs (a zombie waiting for its reaper does not).
alive() {
	local st
	st=$(ps -o stat= -p "$1") || return 1
	[[ "$st" != Z* ]]
}

# netns_of INSTANCE: how many namespaces of that instance exist.
netns_of() {
	ip netns list | grep -c "^herd-$1-" || true
}

# bridge_of INSTANCE: the bridge of network vpc1 of that instance
# (prov_net_id: sha256 of "<instance>/<network>").
bridge_of() {
	echo "herd$(printf '%s' "$1/vpc1" | sha256sum | cut -c1-8)"
}

# veths_of PREFIX: how many of that data dir's hosts' veths exist.
veths_of() {
	local d=${1}_DATA dir n=0
	for dir in "${!d}"/hosts/*; do
		if ip link show "herdv${dir##*/}" >/dev/null 2>&1; then
			n=$((n + 1))
		fi
	done
	echo "$n"
}

# kill9 PREFIX: the server dies at once, as in a crash.
kill9() {
	local p=${1}_PID
	kill -9 "${!p}"
	while alive "${!p}"; do sleep 0.1; done
}

@test "teardown with a corrupt herd.db removes this data dir's local hosts and leaves another's" {
	local ia ik pa pk
	skip_on_pg "corrupts SQLite's herd.db"
	ia=$(instance_of "$A_URL")
	ik=$(instance_of "$K_URL")
	[ -n "$ia" ] && [ -n "$ik" ] && [ "$ia" != "$ik" ]
	[ "$(netns_of "$ia")" = 2 ]
	[ "$(netns_of "$ik")" = 1 ]
	ip link show "$(bridge_of "$ia")" >/dev/null
	pa=$(pids A)
	pk=$(pids K)
	[ "$(echo "$pa" | wc -l)" = 2 ]
	kill9 A
	# the header's magic string overwritten (after the WAL is folded in:
	# its copy of page 1 would hide it): SQLite says "not a database"
	sqlite3 "$A_DATA/herd.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	dd if="$A_DATA/herd.db" of="$A_DATA/herd.db.head" bs=16 count=1 2>/dev/null
	printf 'not a database!!' | dd of="$A_DATA/herd.db" bs=16 count=1 conv=notrunc 2>/dev/null
	run "$HERD" server --data "$A_DATA" --teardown
	echo "$output"
	# 3: all it found removed, a cloud's hosts could not be looked for
	[ "$status" -eq 3 ]
	[[ "$output" == *"cannot open the store"*"not a database"* ]]
	[[ "$output" == *"instance '$ia' (from $A_DATA/instance)"* ]]
	[[ "$output" == *"provider 'local': removed 2 host(s) and 1 network(s)"* ]]
	[[ "$output" == *"provider 'qingcloud': its hosts and networks cannot be found without the store"* ]]
	# A: no netns, veth, bridge, process or cgroup left
	[ "$(netns_of "$ia")" = 0 ]
	[ "$(veths_of A)" = 0 ]
	refute ip link show "$(bridge_of "$ia")"
	for p in $pa; do refute alive "$p"; done
	[ ! -e "/sys/fs/cgroup/herd-$ia" ]
	# K: untouched, its server still answering
	[ "$(netns_of "$ik")" = 1 ]
	[ "$(veths_of K)" = 1 ]
	ip link show "$(bridge_of "$ik")" >/dev/null
	for p in $pk; do alive "$p"; done
	curl -sf "$K_URL/healthz" >/dev/null
}

@test "teardown with a newer schema and no DATA/instance finds the instance id in the store" {
	local in ik pn
	skip_on_pg "sets SQLite's user_version"
	in=$(instance_of "$N_URL")
	ik=$(instance_of "$K_URL")
	[ "$(netns_of "$in")" = 1 ]
	pn=$(pids N)
	kill9 N
	sqlite3 "$N_DATA/herd.db" "PRAGMA user_version" >"$N_DATA/user_version"
	sqlite3 "$N_DATA/herd.db" "PRAGMA user_version = 9999"
	rm -f "$N_DATA/instance"
	# a teardown that stopped between the veth and the netns: the bridge
	# has no port left, only DATA/nets says it is this data dir's
	ip link del "herdv$(ls "$N_DATA/hosts")"
	[ -f "$N_DATA/nets/$(bridge_of "$in")" ]
	run "$HERD" server --data "$N_DATA" --teardown
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"cannot open the store"*"schema version 9999"* ]]
	[[ "$output" == *"instance '$in' (from the store's meta table"* ]]
	[[ "$output" == *"provider 'local': removed 1 host(s) and 1 network(s)"* ]]
	[ "$(netns_of "$in")" = 0 ]
	[ "$(veths_of N)" = 0 ]
	refute ip link show "$(bridge_of "$in")"
	for p in $pn; do refute alive "$p"; done
	[ "$(netns_of "$ik")" = 1 ]
	curl -sf "$K_URL/healthz" >/dev/null
}
