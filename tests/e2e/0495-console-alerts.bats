#!/usr/bin/env bats
# The console's alerts page (issue 17), in Debian's Chromium with
# playwright-core (0495-console-alerts.mjs): a user rule on a monitor value
# the test writes fires for real; the page lists it with its summary, the
# navigation's count shows it from any page, the group page shows it, the
# history lists the firing event (filtered by rule and group); a silence made
# from the page marks it silenced and is deleted from the page; after
# recovery the history shows the resolved event. The summary and a label
# carry HTML, shown as text. Local provider (root); no timing thresholds.

load lib

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	require_root
	WEB=$BATS_FILE_TMPDIR/web
	mkdir -p "$WEB"
	(cd "$REPO/web" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$WEB"
	server_start --web "$WEB" --push-interval 1s
	CLUSTER=ca$RANDOM
	mkdir -p "$BATS_FILE_TMPDIR/bp"
	cp -r "$BATS_TEST_DIRNAME/fixtures/console-alerts/." "$BATS_FILE_TMPDIR/bp/"
	sed -i -e "s|CIDR|$(random_cidr)|" -e "s|CLUSTER|$CLUSTER|" "$BATS_FILE_TMPDIR/bp/alerts.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/bp/alerts.yaml" >/dev/null
	# launching hosts changes the machine's links (ERR_NETWORK_CHANGED in
	# Chromium: tests/console/browser.mjs): let the host settle first
	wait_for 90 ready_count_is 1
	OUT_DIR=${HERD_TEST_OUTPUT:-$REPO/test-output}/console
	mkdir -p "$OUT_DIR"
	export WEB CLUSTER OUT_DIR
}

teardown_file() {
	server_cleanup
}

setup() {
	require_root
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "chromium not installed (tools/deps.sh check)"
	[ -d "$REPO/web/node_modules/playwright-core" ] || skip "playwright-core not installed (make web)"
}

ready_count_is() {
	[ "$(herd host ls --group "$CLUSTER/node" --json | perl -MJSON::PP -e \
		'print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

# events STATE: hot's history events in STATE (not reminders)
events() {
	herd alert history --rule hot --limit 10000 --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} eq $ARGV[0] && !$_->{repeat} }
			@{decode_json(join "", <STDIN>)->{items}}' "$1"
}

@test "console: the alerts page lists a firing rule, counts it in the navigation, keeps its history; HTML shown as text" {
	local id
	id=$(herd host ls --group "$CLUSTER/node" --json | json '{items}[0]{id}')
	[ -n "$id" ]
	run env HERD_URL="$HERD_URL" TOKEN="$HERD_TOKEN" OUT_DIR="$OUT_DIR" CLUSTER="$CLUSTER" GROUP=node \
		BUSY_FILE="$HERD_DATA/hosts/$id/busy" timeout 300 node "$BATS_TEST_DIRNAME/0495-console-alerts.mjs"
	echo "$output"
	[ "$status" -eq 0 ]
	# the page's story is the API's
	[ "$(events firing)" -eq 1 ]
	[ "$(events resolved)" -eq 1 ]
	[ "$(herd alert silences --json | json_count '{items}')" -eq 0 ]
	[ -s "$OUT_DIR/alerts.png" ]
}

has_event() { [ "$(events "$1")" -ge 1 ]; }

# hist QUERY: GET /v1/alerts/history?QUERY as "STATUS BODY"
hist() {
	http GET "/v1/alerts/history?$1" "$HERD_TOKEN"
}

# set_busy VALUE: what the host's monitor reports
set_busy() {
	local id
	id=$(herd host ls --group "$CLUSTER/node" --json | json '{items}[0]{id}')
	echo "$1" >"$HERD_DATA/hosts/$id/busy.tmp"
	mv "$HERD_DATA/hosts/$id/busy.tmp" "$HERD_DATA/hosts/$id/busy"
}

@test "the history pages back newest first with before= (what the console shows); bad values refused naming the field" {
	local ids newest older r
	# events of hot: the first test's, or a firing and a resolved one now
	if [ "$(events resolved)" -lt 1 ]; then
		set_busy 40
		wait_for 60 has_event firing
		set_busy 25
		wait_for 60 has_event resolved
	fi
	ids=$(herd alert history --limit 10000 --json | perl -MJSON::PP -e '
		print join(" ", map { $_->{id} } @{decode_json(join "", <STDIN>)->{items}}), "\n"')
	newest=$(tr ' ' '\n' <<<"$ids" | tail -1)
	older=$(tr ' ' '\n' <<<"$ids" | tail -2 | head -1)
	[ "$newest" -gt "$older" ]
	r=$(hist "before=0&limit=1")
	echo "$r"
	[ "${r%% *}" = 200 ]
	[ "$(json '{items}[0]{id}' <<<"${r#* }")" = "$newest" ]
	[ "$(json '{next}' <<<"${r#* }")" = "$newest" ]
	r=$(hist "before=$newest&limit=1")
	[ "$(json '{items}[0]{id}' <<<"${r#* }")" = "$older" ]
	# filtered: hot's newest is its resolved event
	r=$(hist "before=0&limit=1&rule=hot&cluster=$CLUSTER&group=node")
	[ "$(json '{items}[0]{state}' <<<"${r#* }")" = resolved ]
	r=$(hist "before=soon")
	[ "${r%% *}" = 400 ]
	[[ "$r" == *'"field": "before"'* || "$r" == *'"field":"before"'* ]]
	r=$(hist "before=0&after=1")
	[ "${r%% *}" = 400 ]
	[[ "$r" == *'before'* ]]
}
