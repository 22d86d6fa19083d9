#!/usr/bin/env bats
# Controller bookkeeping (last scale-out, last scale-in, last manual scale)
# lives in its own table (group_state), not in the declarative group spec: a
# scale does not show it in GET /v1/groups/x, the policies' cooldowns survive
# a restart, an old data dir with the keys in the spec is migrated, and
# deleting a group deletes its row. One host, driven like 0070 (a monitor
# reads a file the test writes); generous waits only.

load lib

# makes a store at an older schema version with the real migrations
STORE_AT=${STORE_AT_BIN:-$(dirname "$HERD")/tests/store-at}

setup_file() {
	require_root
	server_start
	export CIDR
	CIDR=$(random_cidr)
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/scale/scripts" "$BATS_FILE_TMPDIR/bp/"
	cat >"$BATS_FILE_TMPDIR/bp/bk.yaml" <<-EOF
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
	  - name: bk
	    groups:
	      - name: node
	        template: node
	        size: 1
	        min: 1
	        max: 3
	        monitors: [busy]
	        policies:
	          - name: grow
	            when: avg(busy) > 32
	            for: 2s
	            adjust: +1
	            cooldown: 60s
	      - name: empty
	        template: node
	        size: 0
	        min: 0
	        max: 2
	EOF
	herd apply -f "$BATS_FILE_TMPDIR/bp/bk.yaml" >/dev/null
	wait_for 90 ready_is 1
}

teardown_file() {
	server_cleanup
}

# The test of an old data dir runs a second server on a store of its own
# (OLD_DATA, HERD_DATA inside that test): stopped and removed after it.
teardown() {
	if [ -n "${OLD_DATA:-}" ]; then
		server_cleanup
	fi
}

ready_is() {
	[ "$(herd host ls --group bk/node --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

group_get() {
	curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/groups/$1?cluster=bk"
}

# The group as GET /v1/groups/NAME shows it, without the parts that are not
# its spec (hosts, status), canonical.
group_spec() {
	group_get "$1" |
		perl -MJSON::PP -e '
			my $d = decode_json(join "", <STDIN>);
			delete @$d{qw(hosts status)};
			print JSON::PP->new->canonical->encode($d), "\n"'
}

# Keys of the group's spec that end in _ms (controller bookkeeping): none.
no_ms_keys() {
	local keys
	keys=$(group_spec "$1" | perl -MJSON::PP -e \
		'print join(" ", grep { /_ms$/ } keys %{decode_json(join "", <STDIN>)})')
	[ -z "$keys" ] || { echo "bookkeeping in the spec of $1: $keys" >&2; return 1; }
}

db() {
	store_sql "$@"
}

set_busy() {
	local id
	for id in $(herd host ls --group bk/node --json | perl -MJSON::PP -e \
		'print "$_->{id}\n" for @{decode_json(join "", <STDIN>)->{items}}'); do
		echo "$1" >"$HERD_DATA/hosts/$id/busy.tmp"
		mv "$HERD_DATA/hosts/$id/busy.tmp" "$HERD_DATA/hosts/$id/busy"
	done
}

desired_is() {
	[ "$(herd group show bk/node --json | json '{desired}')" = "$1" ]
}

explain_says() {
	herd policy explain bk/node/grow 2>/dev/null | grep -qF "$1"
}

restart() {
	server_stop
	server_start
}

@test "herd group scale to the same size leaves the group's spec and version alone" {
	local before after
	before=$(group_spec node)
	run herd group scale bk/node 1 --json
	[ "$status" -eq 0 ]
	after=$(group_spec node)
	echo "before: $before"
	echo "after:  $after"
	[ "$before" = "$after" ]
	no_ms_keys node
	# the pause it starts is recorded, in its own table, and shown read-only
	[ "$(db "SELECT COUNT(*) FROM group_state WHERE cluster = 'bk' AND grp = 'node' AND manual_scale_ms > 0")" = 1 ]
	[ -n "$(group_get node | json '{status}{manual_scale}')" ]
	[ -z "$(group_get node | json '{status}{last_scale_out}')" ]
	[ -n "$(echo "$output" | json '{status}{manual_scale}')" ]
}

@test "the manual pause and a policy's cooldown hold across a restart; a policy scale changes only desired" {
	local before after
	set_busy 40
	wait_for 60 explain_says "paused after a manual scale"
	restart
	wait_for 60 explain_says "paused after a manual scale"
	[ "$(herd group show bk/node --json | json '{desired}')" = 1 ]
	before=$(group_spec node)
	# the pause (60 s from the manual scale) ends: one scale-out
	wait_for 120 desired_is 2
	after=$(group_spec node)
	echo "before: $before"
	echo "after:  $after"
	no_ms_keys node
	# only desired and the version moved
	[ "$(echo "$before" | sed 's/"desired":1/"desired":2/; s/"updated":"[^"]*"//; s/"version":\([0-9]*\)/v/')" = \
	  "$(echo "$after" | sed 's/"updated":"[^"]*"//; s/"version":\([0-9]*\)/v/')" ]
	[ "$(echo "$after" | json '{version}')" -eq $(($(echo "$before" | json '{version}') + 1)) ]
	[ "$(db "SELECT COUNT(*) FROM group_state WHERE cluster = 'bk' AND grp = 'node' AND last_scale_out_ms > 0")" = 1 ]
	[ -n "$(group_get node | json '{status}{last_scale_out}')" ]
	# the load stays: the cooldown blocks a second scale-out, also after a restart
	wait_for 60 explain_says "cooldown until"
	restart
	set_busy 40
	wait_for 60 explain_says "cooldown until"
	desired_is 2
}

@test "an old data dir with bookkeeping in a group's spec is migrated into group_state" {
	local cluster spec v
	skip_on_pg "makes an old SQLite store (tests/tools/store-at.c)"
	[ -x "$STORE_AT" ] || { echo "no $STORE_AT: make build/tests/store-at" >&2; return 1; }
	cluster=$(db "SELECT spec FROM resources WHERE kind = 'cluster' AND name = 'bk'")
	spec=$(db "SELECT json_set(spec, '\$.last_scale_out_ms', 1700000000001,
		'\$.last_scale_in_ms', 1700000000002, '\$.manual_scale_ms', 1700000000003)
		FROM resources WHERE kind = 'group' AND scope = 'bk' AND name = 'empty'")
	[ -n "$cluster" ] && [ -n "$spec" ]
	# what an older herd wrote: the keys inside the spec, no group_state
	# table (the bookkeeping migration is number 5), in a data dir of its
	# own made at version 4 by the real migrations; teardown removes it
	OLD_DATA=$(mktemp -d "$BATS_FILE_TMPDIR/herd-old.XXXXXX")
	HERD_DATA=$OLD_DATA
	unset HERD_PORT SERVER_PID
	"$STORE_AT" 4 "$HERD_DATA/herd.db" 2>/dev/null
	[ "$(db "PRAGMA user_version")" = 4 ]
	[ -z "$(db "SELECT name FROM sqlite_master WHERE name = 'group_state'")" ]
	db "INSERT INTO resources (kind, scope, name, spec, version, created_ms, updated_ms) VALUES
		('cluster', '', 'bk', '$cluster', 1, 1700000000000, 1700000000000),
		('group', 'bk', 'empty', '$spec', 3, 1700000000000, 1700000000000)"
	v=$(db "SELECT version FROM resources WHERE kind = 'group' AND scope = 'bk' AND name = 'empty'")
	server_start
	no_ms_keys empty
	[ "$(db "SELECT last_scale_out_ms, last_scale_in_ms, manual_scale_ms FROM group_state
		WHERE cluster = 'bk' AND grp = 'empty'")" = "1700000000001|1700000000002|1700000000003" ]
	[ "$(db "SELECT version FROM resources WHERE kind = 'group' AND scope = 'bk' AND name = 'empty'")" = "$v" ]
}

@test "deleting a group deletes its bookkeeping" {
	run herd group scale bk/empty 0
	[ "$status" -eq 0 ]
	[ "$(db "SELECT COUNT(*) FROM group_state WHERE cluster = 'bk' AND grp = 'empty'")" = 1 ]
	run herd group rm bk/empty
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(db "SELECT COUNT(*) FROM group_state WHERE cluster = 'bk' AND grp = 'empty'")" = 0 ]
}
