#!/usr/bin/env bats
# The console's group page at fleet scale (issue 15): a group of 60 hosts
# launched by the server on the fake QingCloud (--instances none: nothing
# boots, so they stay launching; no namespaces are made). The host list is
# paged (GET /v1/hosts?limit=&after=, with next and total; bad values
# refused naming the field; `herd host ls` still lists all), and in
# Chromium the group page shows 50 rows, then the other 10 on its next
# page, and charts the group's aggregates only: no per-host query, whose
# answer would carry a series per host; the table's latest values are asked
# for the hosts of its page only (GET /v1/metrics/latest?hosts=). Needs root for the harness's
# conventions only.

load lib
load qingcloud

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
KEY_ID=QYCONSOLESCALEKEY
N=60

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	[ -x "$FAKE" ] || return 0
	WEB=$BATS_FILE_TMPDIR/web
	mkdir -p "$WEB"
	(cd "$REPO/web" && tar --exclude=node_modules -cf - .) | tar -xf - -C "$WEB"
	HERD_PORT=$(free_port)
	server_start --web "$WEB" --advertise-url "http://127.0.0.1:$HERD_PORT"
	fq_init SCALE
	fq_start --instances none --pending-ms 0 --job-ms 0 --quota-instances 200
	export WEB
	bp >"$BATS_FILE_TMPDIR/scale.yaml"
	herd apply -f "$BATS_FILE_TMPDIR/scale.yaml" >&2
	wait_for 180 hosts_are "$N"
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	server_cleanup   # terminates the instances through the fake: it must still run
	fq_cleanup
}

setup() {
	require_root
	fq_require
}

bp() {
	cat <<YAML
accounts:
  - name: scale-qc
    driver: qingcloud
    zone: pek3a
    access_key_id: $KEY_ID
    secret_file: $FQ_DIR/secret
    endpoint: $FQ_URL
networks:
  - name: scalenet
    account: scale-qc
    cidr: $(random_cidr)
templates:
  - name: scalet
    account: scale-qc
    network: scalenet
    image: img-scale
    instance_type: c1m1
monitors:
  - name: busy
    command: cat /nonexistent/busy
    interval: 5s
clusters:
  - name: big
    groups:
      - name: sim
        template: scalet
        size: $N
        max: 100
        max_provision_time: 1h
        monitors: [busy]
YAML
}

# hosts_are N: the group lists N hosts (any state), through the CLI.
hosts_are() {
	[ "$(herd host ls --cluster big --group sim --json | json_count "{items}")" -ge "$1" ]
}

# api PATH: the answer's body (any status), the status in $BATS_TEST_TMPDIR/code.
api() {
	curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H "Authorization: Bearer $HERD_TOKEN" \
		"$HERD_URL$1" >"$BATS_TEST_TMPDIR/code"
	cat "$BATS_TEST_TMPDIR/body"
}

# names JSON: the items' names, one a line.
names() {
	perl -MJSON::PP -e 'print map { "$_->{name}\n" } @{decode_json(join "", <STDIN>)->{items}}'
}

@test "host list pages: limit, next as after, total; every host once, in order" {
	body=$(api "/v1/hosts?cluster=big&group=sim&limit=50")
	[ "$(cat "$BATS_TEST_TMPDIR/code")" = 200 ]
	[ "$(json_count "{items}" <<<"$body")" = 50 ]
	[ "$(json "{total}" <<<"$body")" = "$N" ]
	next=$(json "{next}" <<<"$body")
	[ -n "$next" ]
	names <<<"$body" >"$BATS_TEST_TMPDIR/pages"
	body=$(api "/v1/hosts?cluster=big&group=sim&limit=50&after=$next")
	[ "$(cat "$BATS_TEST_TMPDIR/code")" = 200 ]
	[ "$(json_count "{items}" <<<"$body")" = 10 ]
	[ -z "$(json "{next}" <<<"$body")" ]
	[ "$(json "{total}" <<<"$body")" = "$N" ]
	names <<<"$body" >>"$BATS_TEST_TMPDIR/pages"
	# the two pages are the whole list, in the same order, none twice
	api "/v1/hosts?cluster=big&group=sim" | names >"$BATS_TEST_TMPDIR/all"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/all")" = "$N" ]
	diff "$BATS_TEST_TMPDIR/all" "$BATS_TEST_TMPDIR/pages"
	[ "$(sort -u "$BATS_TEST_TMPDIR/pages" | wc -l)" = "$N" ]
	# a state filter: each state's total is its count in the whole list;
	# none is ready (nothing boots on the fake). Launches run in parallel:
	# the states are compared once no host is still launching (a host
	# moving from launching to booting between the two reads is no bug)
	settled() { [ "$(api "/v1/hosts?cluster=big&group=sim&state=launching&limit=1" | json "{total}")" = 0 ]; }
	wait_for 120 settled
	api "/v1/hosts?cluster=big&group=sim" | perl -MJSON::PP -e '
		my %n; $n{$_->{state}}++ for @{decode_json(join "", <STDIN>)->{items}};
		print map { "$_ $n{$_}\n" } sort keys %n' >"$BATS_TEST_TMPDIR/states"
	cat "$BATS_TEST_TMPDIR/states"
	while read -r st n; do
		[ "$(api "/v1/hosts?cluster=big&group=sim&state=$st&limit=1" | json "{total}")" = "$n" ]
	done <"$BATS_TEST_TMPDIR/states"
	[ "$(api "/v1/hosts?cluster=big&group=sim&state=ready" | json "{total}")" = 0 ]
	# the CLI still lists every host
	[ "$(herd host ls --group big/sim | grep -cE '^big +sim +')" = "$N" ]
}

@test "host list refuses a bad limit, cursor or state, naming the field" {
	for q in limit=0 limit=100000 limit=ten; do
		body=$(api "/v1/hosts?cluster=big&group=sim&$q")
		echo "$q: $(cat "$BATS_TEST_TMPDIR/code") ${body:0:300}"
		[ "$(cat "$BATS_TEST_TMPDIR/code")" = 400 ]
		[ "$(json "{error}{field}" <<<"$body")" = limit ]
	done
	for c in zz 00 abc 6e6f742d612d637572736f72; do
		body=$(api "/v1/hosts?cluster=big&group=sim&after=$c")
		echo "after=$c: $(cat "$BATS_TEST_TMPDIR/code") ${body:0:300}"
		[ "$(cat "$BATS_TEST_TMPDIR/code")" = 400 ]
		[ "$(json "{error}{field}" <<<"$body")" = after ]
	done
	body=$(api "/v1/hosts?cluster=big&group=sim&state=sleepy")
	[ "$(cat "$BATS_TEST_TMPDIR/code")" = 400 ]
	[ "$(json "{error}{field}" <<<"$body")" = state ]
}

@test "console group page at $N hosts: 50 rows, a next page of 10, aggregate charts only" {
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "chromium not installed"
	[ -d "$REPO/web/node_modules/playwright-core" ] || skip "playwright-core not installed (make web)"
	[ -f "$REPO/web/vendor/uPlot.iife.min.js" ] || skip "uPlot not in web/vendor (make web)"
	cat >"$BATS_TEST_TMPDIR/page.mjs" <<'EOF'
import { createRequire } from 'node:module';
const require = createRequire(process.env.REPO + '/web/package.json');
const { chromium } = require('playwright-core');
const env = process.env;
const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium',
	headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const out = { errors: [], queries: [], latest: [] };
try {
	const ctx = await browser.newContext();
	await ctx.addInitScript(t => sessionStorage.setItem('herd.token', t), env.TOKEN);
	const page = await ctx.newPage();
	page.on('pageerror', e => out.errors.push(e.message));
	page.on('request', r => {
		const u = new URL(r.url());
		if (u.pathname === '/v1/metrics/query') out.queries.push(u.search);
		// the hosts each latest-values request names (null: the whole group)
		if (u.pathname === '/v1/metrics/latest')
			out.latest.push(u.searchParams.has('hosts') ? u.searchParams.get('hosts').split(',').sort().join(',') : null);
	});
	const rowNames = () => page.evaluate(() =>
		[...document.querySelectorAll('#hosts tr[data-host]')].map(r => r.dataset.host).sort().join(','));
	await page.goto(env.HERD_URL + '/?window=300#/group/big/sim');
	await page.waitForSelector('#hosts tr[data-host]', { timeout: 30000 });
	await page.waitForSelector('.chart[data-metric="busy:group"]', { timeout: 30000 });
	await page.waitForTimeout(500);   // lets any further chart request go out
	out.rows1 = await page.locator('#hosts tr[data-host]').count();
	out.names1 = await rowNames();
	out.latest1 = out.latest.splice(0);
	out.info1 = await page.locator('#hosts-page').textContent();
	out.charts = await page.evaluate(() => [...document.querySelectorAll('.chart')].map(c => c.dataset.metric));
	await page.click('#hosts-next');
	await page.waitForFunction(() => document.querySelectorAll('#hosts tr[data-host]').length === 10, null, { timeout: 30000 });
	out.rows2 = await page.locator('#hosts tr[data-host]').count();
	out.names2 = await rowNames();
	out.latest2 = out.latest.splice(0);
	out.info2 = await page.locator('#hosts-page').textContent();
	out.nextDisabled = await page.locator('#hosts-next').isDisabled();
	await page.click('#hosts-prev');
	await page.waitForFunction(() => document.querySelectorAll('#hosts tr[data-host]').length === 50, null, { timeout: 30000 });
	out.rows3 = await page.locator('#hosts tr[data-host]').count();
} finally {
	await browser.close();
}
console.log(JSON.stringify(out));
EOF
	run env REPO="$REPO" HERD_URL="$HERD_URL" TOKEN="$HERD_TOKEN" timeout 120 node "$BATS_TEST_TMPDIR/page.mjs"
	echo "$output"
	[ "$status" -eq 0 ]
	r=$(tail -1 <<<"$output")
	[ "$(json "{rows1}" <<<"$r")" = 50 ]
	[ "$(json "{info1}" <<<"$r")" = "hosts 1–50 of $N" ]
	[ "$(json "{rows2}" <<<"$r")" = 10 ]
	[ "$(json "{info2}" <<<"$r")" = "hosts 51–60 of $N" ]
	[ "$(json "{nextDisabled}" <<<"$r")" = true ]
	[ "$(json "{rows3}" <<<"$r")" = 50 ]
	[ "$(json_count "{errors}" <<<"$r")" = 0 ]
	# the group chart only, and every metrics query an aggregate (agg=)
	[ "$(json "{charts}" <<<"$r")" = '["busy:group"]' ]
	[ "$(json_count "{queries}" <<<"$r")" -ge 3 ]
	perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>);
		my @bad = grep { !/[?&]agg=/ } @{$d->{queries}}; print "per-host: @bad\n"; exit(@bad ? 1 : 0)' <<<"$r"
	# the latest values (CPU, memory, busy) are asked for the page's hosts
	# only: on the first page every request names its 50 rows; on the
	# second its 10 rows, and none asks for the whole group
	perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>);
		my @l1 = @{$d->{latest1}}; my @l2 = @{$d->{latest2}};
		print scalar(@l1), " + ", scalar(@l2), " latest requests\n";
		exit 1 unless @l1 >= 3 && @l2 >= 3;
		for (@l1) { exit 1 unless defined && $_ eq $d->{names1} }
		for (@l2) { exit 1 unless defined && ($_ eq $d->{names2} || $_ eq $d->{names1}) }
		exit(scalar(grep { $_ eq $d->{names2} } @l2) >= 3 ? 0 : 1)' <<<"$r"
	[ "$(json "{names2}" <<<"$r" | tr , '\n' | wc -l)" = 10 ]
}
