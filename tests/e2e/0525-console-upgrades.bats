#!/usr/bin/env bats
# The console's view of upgrades (issue 18), in Debian's Chromium with
# playwright-core (0525-console-upgrades.mjs): a group of 2 local hosts whose
# template changes to a new version (its image set to a value holding HTML):
# the group page marks both hosts behind and sums up what changed, the
# changed value shown as text; a refresh held by a long warm-up shows its
# state and progress in the page's refresh panel, and the panel's Pause,
# Resume and Cancel buttons change it (the API agrees); a rolling script
# run on the group shows its batch and its hosts by step. Local provider
# (root); no timing thresholds.

load lib

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	WEB=$BATS_FILE_TMPDIR/web
	mkdir -p "$WEB"
	(cd "$REPO/web" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$WEB"
	server_start --web "$WEB" --push-interval 1s
	CLUSTER=cu$RANDOM
	BP_DIR=$BATS_FILE_TMPDIR/bp
	CIDR=$(random_cidr)
	mkdir -p "$BP_DIR"
	printf '#!/bin/sh\necho web\n' >"$BP_DIR/web.sh"
	printf '#!/bin/sh\nsleep 600\n' >"$BP_DIR/slow.sh"
	herd apply -f "$(blueprint '"img-1"')" >/dev/null
	# launching hosts changes the machine's links (ERR_NETWORK_CHANGED in
	# Chromium: tests/console/browser.mjs): let the hosts settle first
	wait_for 90 ready_is 2
	OUT_DIR=${HERD_TEST_OUTPUT:-$REPO/test-output}/console
	mkdir -p "$OUT_DIR"
	export WEB CLUSTER BP_DIR CIDR OUT_DIR
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup
}

setup() {
	require_root
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "chromium not installed (tools/deps.sh check)"
	[ -d "$REPO/web/node_modules/playwright-core" ] || skip "playwright-core not installed (make web)"
}

# blueprint IMAGE: writes the blueprint with that image (YAML), prints its path.
blueprint() {
	sed -e "s|@CIDR@|$CIDR|" -e "s|@CLUSTER@|$CLUSTER|" -e "s|@SCRIPT@|$BP_DIR/web.sh|" \
		-e "s|@SLOW@|$BP_DIR/slow.sh|" \
		-e "s|@IMAGE@|$1|" "$BATS_TEST_DIRNAME/fixtures/console-upgrades/upgrades.yaml" \
		>"$BP_DIR/upgrades.yaml"
	echo "$BP_DIR/upgrades.yaml"
}

# settled: the group's 2 hosts ready and no other left (after a refresh's
# surge host went)
settled() {
	[ "$(herd host ls --group "$CLUSTER/web" --json | perl -MJSON::PP -e '
		my @h = grep { $_->{state} ne "terminated" } @{decode_json(join "", <STDIN>)->{items}};
		print scalar(@h), " ", scalar(grep { $_->{state} eq "ready" } @h)')" = "2 2" ]
}

ready_is() {
	[ "$(herd host ls --group "$CLUSTER/web" --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

# page PHASE [VAR=VALUE...]: runs the browser's part PHASE (behind, refresh)
page() {
	local phase=$1
	shift
	run env HERD_URL="$HERD_URL" TOKEN="$HERD_TOKEN" OUT_DIR="$OUT_DIR" CLUSTER="$CLUSTER" GROUP=web \
		PHASE="$phase" "$@" timeout 300 node "$BATS_TEST_DIRNAME/0525-console-upgrades.mjs"
	echo "$output"
	[ "$status" -eq 0 ]
}

refresh_state() {
	herd group refresh "$CLUSTER/web" --status --json | json '{state}'
}

@test "console: a group page marks hosts behind its template version and says what changed, HTML as text" {
	local v1 v2 r
	v1=$(herd group diff "$CLUSTER/web" --json | json '{version}')
	[[ "$v1" =~ ^[0-9a-f]{12}$ ]]
	run herd apply -f "$(blueprint '"<b>x</b>"')"
	[ "$status" -eq 0 ]
	v2=$(herd group diff "$CLUSTER/web" --json | json '{version}')
	[ "$v2" != "$v1" ]
	[ "$(herd group diff "$CLUSTER/web" --json | json_count '{behind}')" = 2 ]
	# no refresh yet: an empty list (what the page asks every poll), not a 404
	r=$(http GET "/v1/refreshes?cluster=$CLUSTER&group=web&limit=1" "$HERD_TOKEN")
	[ "${r%% *}" = 200 ]
	[ "$(json_count '{items}' <<<"${r#* }")" = 0 ]
	r=$(http GET "/v1/refreshes?limit=0" "$HERD_TOKEN")
	[ "${r%% *}" = 400 ]
	[[ "$r" == *'"field":"limit"'* || "$r" == *'"field": "limit"'* ]]
	page behind VERSION="$v2" OLD="$v1"
	[ -s "$OUT_DIR/upgrades-behind.png" ]
}

@test "console: a running refresh shows its state and progress; Pause, Resume and Cancel from the panel" {
	local acts r
	[ "$(herd group diff "$CLUSTER/web" --json | json_count '{behind}')" = 2 ] || skip "needs the first test's new version"
	# held by its warm-up: the surge host is launched, then the refresh waits
	run herd group refresh "$CLUSTER/web" --batch 1 --surge 1 --min-healthy 100% --warmup 30m
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(refresh_state)" = running ]
	r=$(http GET "/v1/refreshes?cluster=$CLUSTER&group=web&limit=1" "$HERD_TOKEN")
	[ "${r%% *}" = 200 ]
	[ "$(json '{items}[0]{state}' <<<"${r#* }")" = running ]
	[ -n "$(json '{items}[0]{updated}' <<<"${r#* }")" ]
	page refresh
	# the page's buttons acted through the API: the refresh is cancelled
	[ "$(refresh_state)" = cancelled ]
	acts=$(herd activity ls --group "$CLUSTER/web" --limit 200 --json)
	[[ "$acts" == *"paused by"* ]]
	[[ "$acts" == *"resumed by"* ]]
	[[ "$acts" == *"cancelled by"* ]]
	[ -s "$OUT_DIR/upgrades-refresh.png" ]
}

@test "console: a rolling script run in progress shows its batch and its hosts by step" {
	local id
	wait_for 120 settled
	run herd script run slow.sh --group "$CLUSTER/web" --batch 1 --json
	echo "$output"
	[ "$status" -eq 0 ]
	id=$(echo "$output" | json '{id}')
	[ "$(echo "$output" | json_count '{hosts}')" = 2 ]
	page rolling RUN="$id"
	run herd run cancel "$id"
	[ "$status" -eq 0 ]
	[ -s "$OUT_DIR/upgrades-rolling.png" ]
}
