#!/usr/bin/env bats
# The build (issue 13): the README's quick start - `make`, then
# `build/herd server` - serves a console whose every asset loads, charts
# included. A copy of the tracked tree (no web/vendor, no gzip twins) is made
# with its default goal; herd itself is not recompiled there (`-o build/herd`,
# the binary under test is copied in), so the test is quick. A second `make`
# prints nothing and rewrites nothing.

load lib

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	TREE=$BATS_FILE_TMPDIR/tree
	mkdir -p "$TREE/build"
	# the tracked files as they are in the work tree (edits included)
	(cd "$REPO" && git ls-files -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) |
		tar -xf - -C "$TREE"
	cp "$HERD" "$TREE/build/herd"
	# uPlot already fetched is copied (no network, nothing written to the
	# repo); without it `make` runs npm ci in the copy, as for a new reader
	if [ -d "$REPO/web/node_modules/uplot" ]; then
		mkdir -p "$TREE/web/node_modules"
		cp -a "$REPO/web/node_modules/uplot" "$TREE/web/node_modules/"
	fi
	export TREE
}

# the server of a test is stopped, and its data dir removed, even on failure
teardown() {
	server_cleanup
}

# quick_make: the README's `make` in the copy, herd not rebuilt.
quick_make() {
	make -C "$TREE" --no-print-directory -o build/herd 2>&1
}

# ui_assets FILE: every /ui/... path an HTML page references (query dropped).
ui_assets() {
	grep -oE '(href|src)="/ui/[^"?#]*' "$1" | sed -E 's/^(href|src)="//' | sort -u
}

@test "make (the default goal) builds the console's assets, quietly and idempotently" {
	[ ! -e "$TREE/web/vendor" ]
	run quick_make
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$TREE/web/vendor/uPlot.iife.min.js" ]
	[ -f "$TREE/web/vendor/uPlot.min.css" ]
	[ -f "$TREE/web/index.html.gz" ]
	# again: nothing printed, nothing rewritten
	before=$(find "$TREE/web" -path "$TREE/web/node_modules" -prune -o -type f -printf '%p %T@\n' | sort)
	run quick_make
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	after=$(find "$TREE/web" -path "$TREE/web/node_modules" -prune -o -type f -printf '%p %T@\n' | sort)
	[ "$before" = "$after" ]
}

@test "the quick start's server serves the console and every asset it references" {
	[ -d "$TREE/web/vendor" ] || quick_make
	HERD=$TREE/build/herd
	server_start
	page=$BATS_TEST_TMPDIR/index.html
	code=$(curl -s -o "$page" -w '%{http_code}' "$HERD_URL/")
	[ "$code" = 200 ]
	run ui_assets "$page"
	[ "${#lines[@]}" -ge 5 ]
	bad=0
	for a in "${lines[@]}"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$HERD_URL$a")
		echo "$code $a"
		[ "$code" = 200 ] || bad=$((bad + 1))
	done
	[ "$bad" -eq 0 ]
	# the chart library is among them
	printf '%s\n' "${lines[@]}" | grep -qx '/ui/vendor/uPlot.iife.min.js'
}

@test "make check runs the banned-function check, which finds a call and passes src/" {
	# in the check target's recipe, before the tests (prove, through
	# tools/prove-report.sh)
	run make -C "$REPO" --no-print-directory -n check
	echo "$output" | grep -n 'check-banned\|prove' >&2 || true
	ban=$(echo "$output" | grep -n 'tools/check-banned.sh src' | head -1 | cut -d: -f1)
	prv=$(echo "$output" | grep -nE 'prove(-report\.sh)? ' | head -1 | cut -d: -f1)
	[ -n "$ban" ]
	[ -n "$prv" ]
	[ "$ban" -lt "$prv" ]
	# it finds calls, not words in comments or longer names
	d=$BATS_TEST_TMPDIR/ban
	mkdir -p "$d"
	printf '/* gets the value; atoi( in a comment */\nint f(void) { return snprintf(b, 1, "x") + my_atoi("1"); }\n' >"$d/ok.c"
	run "$REPO/tools/check-banned.sh" "$d"
	[ "$status" -eq 0 ]
	printf 'int\nf(char *d)\n{\n\tstrcat(d, "x");\n\treturn atoi (d);\n}\n' >"$d/bad.c"
	run "$REPO/tools/check-banned.sh" "$d"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad.c:4:"*"strcat("* ]]
	[[ "$output" == *"bad.c:5:"*"atoi ("* ]]
	run "$REPO/tools/check-banned.sh" "$REPO/src"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "numbers in queries are read whole: limit=5x is refused naming the field (atoi took 5)" {
	server_start
	for q in "activities?limit=5x" "audit?limit=1x" "runs?limit=2junk" "activities?limit=99999999999999999999"; do
		code=$(curl -s -o "$BATS_TEST_TMPDIR/r.json" -w '%{http_code}' \
			-H "Authorization: Bearer $HERD_TOKEN" "$HERD_URL/v1/$q")
		echo "$q -> $code $(cat "$BATS_TEST_TMPDIR/r.json")"
		[ "$code" = 400 ]
		[ "$(json '{error}{field}' <"$BATS_TEST_TMPDIR/r.json")" = limit ]
	done
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL/v1/activities?limit=5")
	[ "$code" = 200 ]
}
