#!/usr/bin/env bats
# The web console (issue 8): static files served by the server (types,
# caching, gzip, CSP, no way out of the web directory), and the console
# itself driven in Debian's Chromium by playwright-core
# (tests/console/console.test.mjs): sign-in, the overview of a blueprint,
# a group of 3 local hosts with its live monitor chart and scaling from the
# page, a viewer without controls (and refused by the API anyway), every
# page free of console errors. Screenshots go to test-output/console/.
# The host parts need root (network namespaces).

load lib

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
NODE_TEST=$REPO/tests/console/console.test.mjs

setup_file() {
	# The server serves a copy of web/ with symlinks leading out of it.
	WEB=$BATS_FILE_TMPDIR/web
	mkdir -p "$WEB" "$BATS_FILE_TMPDIR/outside"
	(cd "$REPO/web" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$WEB"
	echo 'export const secret = 1;' >"$BATS_FILE_TMPDIR/outside/secret.js"
	ln -s ../outside/secret.js "$WEB/secret.js"
	ln -s ../outside "$WEB/out"
	server_start --web "$WEB"
	HOSTS=0
	[ "$(id -u)" = 0 ] && HOSTS=3
	BP=$BATS_FILE_TMPDIR/console.yaml
	sed -e "s|@CIDR@|$(random_cidr)|" -e "s|@SIZE@|$HOSTS|" -e "s|@LBPORT@|$(free_port)|" \
		"$BATS_TEST_DIRNAME/fixtures/console/console.yaml" >"$BP"
	[ "$HOSTS" != 0 ] || sed -i '/# lb$/d' "$BP"
	herd apply -f "$BP" >/dev/null
	# Hosts launching change the machine's links, which makes Chromium drop
	# its requests (see tests/console/browser.mjs): let them settle first.
	[ "$HOSTS" = 0 ] || wait_for 90 group_ready 3
	OUT_DIR=${HERD_TEST_OUTPUT:-$REPO/test-output}/console
	mkdir -p "$OUT_DIR"
	export WEB BP HOSTS OUT_DIR
}

teardown_file() {
	server_cleanup
}

# The browser tests need Chromium and playwright-core (`make check` installs
# both: tools/deps.sh and `make web`).
need_browser() {
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "chromium not installed (tools/deps.sh check)"
	[ -d "$REPO/web/node_modules/playwright-core" ] || skip "playwright-core not installed (make web)"
	[ -f "$REPO/web/vendor/uPlot.iife.min.js" ] || skip "uPlot not in web/vendor (make web)"
}

# console SCENARIO [VAR=VALUE...]: runs one scenario of console.test.mjs.
console_run() {
	local s=$1
	shift
	run env HERD_URL="$HERD_URL" OUT_DIR="$OUT_DIR" CLUSTER=demo GROUP=node "$@" \
		timeout 300 node "$NODE_TEST" "$s"
	echo "$output"
	[ "$status" -eq 0 ]
}

hdr() { # hdr PATH [curl args]: the response headers, lower-cased names
	curl -s -D - -o /dev/null "${@:2}" "$HERD_URL$1" | tr -d '\r' | sed 's/^\([^:]*\):/\L\1:/'
}

code() { # code PATH [curl args]: the status code
	curl -s -o /dev/null -w '%{http_code}' "${@:2}" "$HERD_URL$1"
}

@test "the console's files: content types, security headers, no-cache html" {
	h=$(hdr /)
	echo "$h"
	[[ "$h" == "HTTP/1.1 200"* ]]
	grep -qx 'content-type: text/html; charset=utf-8' <<<"$h"
	grep -qx 'cache-control: no-cache' <<<"$h"
	grep -qx "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" <<<"$h"
	grep -qx 'x-frame-options: DENY' <<<"$h"
	grep -qx 'referrer-policy: no-referrer' <<<"$h"
	grep -qx 'x-content-type-options: nosniff' <<<"$h"
	grep -q '^etag: "' <<<"$h"
	grep -q '^last-modified: ' <<<"$h"
	grep -qx 'content-type: text/javascript; charset=utf-8' <<<"$(hdr /ui/js/app.js)"
	grep -qx 'content-type: text/css; charset=utf-8' <<<"$(hdr /ui/css/app.css)"
	grep -qx 'content-type: image/svg+xml' <<<"$(hdr /ui/favicon.svg)"
	# the same page at /ui/, and HEAD
	[ "$(code /ui/)" = 200 ]
	[ "$(code / -I)" = 200 ]
	# the API's answers are never documents
	grep -qx "content-security-policy: default-src 'none'; frame-ancestors 'none'" <<<"$(hdr /healthz)"
}

@test "the console's files: ETag and Last-Modified revalidate to 304; versioned vendor files are immutable" {
	etag=$(hdr /ui/js/app.js | sed -n 's/^etag: //p')
	lm=$(hdr /ui/js/app.js | sed -n 's/^last-modified: //p')
	[ -n "$etag" ] && [ -n "$lm" ]
	[ "$(code /ui/js/app.js -H "If-None-Match: $etag")" = 304 ]
	[ "$(code /ui/js/app.js -H 'If-None-Match: "other"')" = 200 ]
	[ "$(code /ui/js/app.js -H "If-Modified-Since: $lm")" = 304 ]
	[ "$(code /ui/js/app.js -H 'If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT')" = 200 ]
	# index.html asks for uPlot with ?v=<its version in package.json>
	v=$(perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0]; print decode_json(<$f>)->{dependencies}{uplot}' "$REPO/web/package.json")
	grep -q "uPlot.iife.min.js?v=$v\"" "$REPO/web/index.html"
	grep -q "uPlot.min.css?v=$v\"" "$REPO/web/index.html"
	[ -f "$WEB/vendor/uPlot.iife.min.js" ] || skip "uPlot not in web/vendor (make web)"
	grep -qx 'cache-control: public, max-age=31536000, immutable' <<<"$(hdr "/ui/vendor/uPlot.iife.min.js?v=$v")"
}

@test "the console's files: the build's .gz twin goes to clients taking gzip, identical once inflated" {
	[ -f "$WEB/js/app.js.gz" ] || skip "no .gz files (make web makes them)"
	h=$(hdr /ui/js/app.js -H 'Accept-Encoding: gzip, deflate')
	grep -qx 'content-encoding: gzip' <<<"$h"
	grep -qx 'vary: Accept-Encoding' <<<"$h"
	curl -s -H 'Accept-Encoding: gzip' "$HERD_URL/ui/js/app.js" | gunzip | cmp - "$WEB/js/app.js"
	# not to the others, nor to those refusing it
	# (bats ignores a failing `! cmd`: asserted on the output instead)
	run hdr /ui/js/app.js
	[[ "$output" != *content-encoding* ]]
	run hdr /ui/js/app.js -H 'Accept-Encoding: gzip;q=0'
	[[ "$output" != *content-encoding* ]]
	curl -s "$HERD_URL/ui/js/app.js" | cmp - "$WEB/js/app.js"
	# a stale twin (older than its file) is not served
	touch "$WEB/js/dom.js"
	touch -d '2001-01-01' "$WEB/js/dom.js.gz"
	run hdr /ui/js/dom.js -H 'Accept-Encoding: gzip'
	[[ "$output" != *content-encoding* ]]
}

@test "the console's files: no way out of the web directory" {
	for p in /ui/../herd.db /ui/%2e%2e/herd.db /ui/%2E%2E/%2E%2E/etc/passwd /ui/..%2fherd.db \
		/ui/js/../../herd.db /ui//etc/passwd /ui/%252e%252e/x.js /ui/.%2e/x.js \
		/ui/secret.js /ui/out/secret.js /ui/js/app.js.gz /ui/node_modules/uplot/package.json \
		/ui/package.json /ui/package.json%00.js /ui/nope.js /ui/js /herd.db /admin.token; do
		c=$(code "$p" --path-as-is)
		echo "$p -> $c"
		[ "$c" = 404 ]
	done
	# the symlinked file itself is there, just not reachable
	[ -f "$WEB/secret.js" ]
	# and nothing of the data dir leaks through a 404's body
	run curl -s --path-as-is "$HERD_URL/ui/%2e%2e/admin.token"
	[[ "$output" != *"$HERD_TOKEN"* ]]
}

@test "/v1/endpoints lists the API's routes for the console (viewer and up)" {
	[ "$(code /v1/endpoints)" = 401 ]
	run curl -sf -H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/endpoints"
	[ "$status" -eq 0 ]
	[[ "$output" == *'{"method":"POST","path":"/v1/groups/:name/scale","role":"operator"}'* ]]
	[[ "$output" != *'/v1/agent/'* ]]
}

@test "console: sign in with a token kept in the tab, sent as a header, never in a URL" {
	need_browser
	console_run signin TOKEN="$HERD_TOKEN"
}

@test "console: the overview lists the blueprint's clusters and groups" {
	need_browser
	console_run overview TOKEN="$HERD_TOKEN" EXPECT="demo/node edge/api"
	[ -s "$OUT_DIR/overview.png" ]
}

@test "console: a group of 3 hosts: live monitor chart, scaling from the page adds a host" {
	require_root
	need_browser
	# each host's monitor reads its own file: 5, 10, 15, + 0..9 by the second
	busy_writer &
	BUSY_PID=$!
	console_run group TOKEN="$HERD_TOKEN" HOSTS=3 SCALE_TO=4 PUSH_S="${PUSH_S:-5}"
	kill "$BUSY_PID" 2>/dev/null || true
	wait "$BUSY_PID" 2>/dev/null || true
	[ "$(herd group show demo/node --json | json '{desired}')" = 4 ]
	[ -s "$OUT_DIR/group.png" ] && [ -s "$OUT_DIR/host.png" ]
}

group_ready() { # group_ready N: demo/node has N hosts, all ready
	[ "$(herd host ls --group demo/node --json | perl -MJSON::PP -e '
		print scalar grep { $_->{state} eq "ready" } @{decode_json(join "", <STDIN>)->{items}}')" -eq "$1" ]
}

# Writes each host's busy file (5, 10, 15, ... + seconds) every second.
busy_writer() {
	local i n
	for n in $(seq 1 300); do
		i=0
		for d in "$HERD_DATA"/hosts/*/; do
			[ -d "$d" ] || continue
			i=$((i + 1))
			echo $((i * 5 + n % 10)) >"$d/busy.tmp" && mv "$d/busy.tmp" "$d/busy"
		done
		sleep 1
	done
}

@test "console: a script run from the page shows each host's output; the host page lists it" {
	require_root
	need_browser
	console_run run TOKEN="$HERD_TOKEN" SCRIPT=hello.sh
}

@test "console: a viewer sees no scale, run or terminate control, and the API refuses them anyway" {
	need_browser
	viewer=$(herd token create --role viewer --name console-viewer)
	before=$(herd group show demo/node --json | json '{desired}')
	console_run viewer TOKEN="$viewer" HOSTS=$((HOSTS > 0 ? 1 : 0))
	auth=(-H "Authorization: Bearer $viewer" -H 'Content-Type: application/json')
	[ "$(code /v1/groups/node/scale?cluster=demo -X POST "${auth[@]}" -d '{"desired":1}')" = 403 ]
	[ "$(code /v1/hosts/node-1/terminate?cluster=demo -X POST "${auth[@]}")" = 403 ]
	[ "$(code /v1/tokens -X POST "${auth[@]}" -d '{"role":"admin"}')" = 403 ]
	if grep -q '"POST", "/v1/runs"' "$REPO/src/server/api/routes.def"; then
		[ "$(code /v1/runs -X POST "${auth[@]}" -d '{"script":"hello.sh","group":"node","cluster":"demo"}')" = 403 ]
	fi
	[ "$(herd group show demo/node --json | json '{desired}')" = "$before" ]
}

@test "console: every page renders and refreshes without a console error (screenshots in test-output/console)" {
	need_browser
	console_run pages TOKEN="$HERD_TOKEN" LB_MEMBERS=$((HOSTS > 0 ? 4 : 0))
	ls "$OUT_DIR"/page-*.png
}
