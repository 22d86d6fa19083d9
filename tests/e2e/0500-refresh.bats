#!/usr/bin/env bats
# Upgrades (issue 18): template versions. Each host records the version of
# its template it was launched from; a change of the template's spec or of
# the version of a script it runs is a new version, and `herd group diff`
# lists the hosts behind it and what changed. Needs root.

load lib

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_start
	BP_DIR=$BATS_FILE_TMPDIR/bp
	mkdir -p "$BP_DIR"
	CIDR=$(random_cidr)
	printf '#!/bin/sh\necho web v1\n' >"$BP_DIR/web-v1.sh"
	printf '#!/bin/sh\necho web v2\n' >"$BP_DIR/web-v2.sh"
	export BP_DIR CIDR
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
}

# blueprint SCRIPT TIMEOUT: writes the blueprint with that init script file
# and init_timeout, prints its path.
blueprint() {
	sed -e "s|@CIDR@|$CIDR|" -e "s|@SCRIPT@|$BP_DIR/$1|" -e "s|@TIMEOUT@|$2|" \
		"$BATS_TEST_DIRNAME/fixtures/refresh/refresh.yaml" >"$BP_DIR/refresh.yaml"
	echo "$BP_DIR/refresh.yaml"
}

# ready_count CLUSTER/GROUP: how many of its hosts are ready.
ready_count() {
	herd host ls --group "$1" --json | perl -MJSON::PP -e '
		print scalar(grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}), "\n"'
}

ready_is() { # ready_is CLUSTER/GROUP N
	[ "$(ready_count "$1")" -eq "$2" ]
}

@test "group diff: no host behind after launch; a changed script and field put them behind, with what changed; new hosts are current" {
	run herd apply -f "$(blueprint web-v1.sh 60s)"
	[ "$status" -eq 0 ]
	wait_for 90 ready_is up/web 2

	run herd group diff up/web --json
	[ "$status" -eq 0 ]
	v1=$(echo "$output" | json '{version}')
	[[ "$v1" =~ ^[0-9a-f]{12}$ ]]
	[ "$(echo "$output" | json '{hosts}')" = 2 ]
	[ "$(echo "$output" | json '{current}')" = 2 ]
	[ "$(echo "$output" | json_count '{behind}')" = 0 ]
	# each host records the version it was launched from
	[ "$(herd host show up/web-1 --json | json '{template_version}')" = "$v1" ]
	[ "$(herd host show up/web-2 --json | json '{template_version}')" = "$v1" ]
	herd host ls --group up/web | grep -q "$v1"

	# the description is not what a host is made from: the same version
	sed -i 's|description: .*|description: changed words|' "$BP_DIR/refresh.yaml"
	run herd apply -f "$BP_DIR/refresh.yaml"
	[ "$status" -eq 0 ]
	[ "$(herd group diff up/web --json | json '{version}')" = "$v1" ]

	# a new script version and a changed field: a new version, both behind
	run herd apply -f "$(blueprint web-v2.sh 120s)"
	[ "$status" -eq 0 ]
	run herd group diff up/web --json
	[ "$status" -eq 0 ]
	v2=$(echo "$output" | json '{version}')
	[[ "$v2" =~ ^[0-9a-f]{12}$ ]]
	[ "$v2" != "$v1" ]
	[ "$(echo "$output" | json '{current}')" = 0 ]
	[ "$(echo "$output" | json_count '{behind}')" = 2 ]
	[ "$(echo "$output" | json '{behind}[0]{host}')" = web-1 ]
	[ "$(echo "$output" | json '{behind}[0]{version}')" = "$v1" ]
	changes=$(echo "$output" | json '{behind}[0]{changes}')
	[ "$changes" = '[{"field":"init_timeout","from":"60s","to":"120s"},{"field":"script web.sh","from":1,"to":2}]' ]
	# the text form says the same
	run herd group diff up/web
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "up/web: template web version $v2; 2 of 2 host(s) behind" ]]
	[[ "$output" == *'init_timeout: "60s" -> "120s"'* ]]
	[[ "$output" == *'script web.sh: 1 -> 2'* ]]

	# a host launched now is on the new version, the old ones still behind
	run herd group scale up/web 3
	[ "$status" -eq 0 ]
	wait_for 90 ready_is up/web 3
	[ "$(herd host show up/web-3 --json | json '{template_version}')" = "$v2" ]
	run herd group diff up/web --json
	[ "$(echo "$output" | json '{current}')" = 1 ]
	[ "$(echo "$output" | json_count '{behind}')" = 2 ]

	# another init_timeout, then back: the same version as before again
	run herd apply -f "$(blueprint web-v2.sh 90s)"
	[ "$status" -eq 0 ]
	[ "$(herd group diff up/web --json | json '{current}')" = 0 ]
	run herd apply -f "$(blueprint web-v2.sh 120s)"
	[ "$status" -eq 0 ]
	run herd group diff up/web --json
	[ "$(echo "$output" | json '{version}')" = "$v2" ]
	[ "$(echo "$output" | json '{current}')" = 1 ]

	# an unknown group is a clear error
	run herd group diff up/nosuch
	[ "$status" -ne 0 ]
	[[ "$output" == *nosuch* ]]
}
