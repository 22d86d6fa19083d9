// console.test.mjs SCENARIO - drives the console in Debian's Chromium
// (playwright-core) against a running herd server; called by
// tests/e2e/0060-console.bats, one scenario per test. Prints what it did;
// exits 1 with the reason on the first failure.
//
// Environment: HERD_URL, TOKEN (the token to sign in with), OUT_DIR (for
// screenshots), CLUSTER/GROUP (the group with hosts), EXPECT ("cl/group
// ..." the overview must list), HOSTS (hosts the group starts with, 0 =
// none), PUSH_S (the agents' push interval), SCALE_TO, SCRIPT, LB_MEMBERS
// (members the load balancers page must show).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, watchErrors } from './browser.mjs';

const env = process.env;
const URL0 = env.HERD_URL.replace(/\/$/, '');
const OUT = env.OUT_DIR || 'test-output/console';
const CLUSTER = env.CLUSTER || 'demo';
const GROUP = env.GROUP || 'node';
const HOSTS = Number(env.HOSTS || 0);
const PUSH_S = Number(env.PUSH_S || 5);
const scenario = process.argv[2];
let errors = [];        // the browser's, from watchErrors

mkdirSync(OUT, { recursive: true });

function fail(msg) {
	throw new Error(msg);
}

function say(msg) {
	console.log('# ' + msg);
}

async function shot(page, name) {
	const path = join(OUT, name + '.png');
	await page.screenshot({ path, fullPage: true });
	say('screenshot ' + path);
}

// Loads the console until its sign-in form shows: a load that lost a
// module to ERR_NETWORK_CHANGED (see browser.mjs) is loaded again, once or
// twice; any other reason fails.
async function load(page, path) {
	for (let i = 0; ; i++) {
		const before = errors.networkChanged;
		await page.goto(URL0 + path);
		try {
			await page.waitForSelector('#signin, #who', { timeout: 10000 });
			return;
		} catch (e) {
			if (i === 2 || errors.networkChanged === before) throw e;
			say('the console lost a file to ERR_NETWORK_CHANGED; loading it again');
		}
	}
}

// Signs in through the form; ?poll=1 makes the console refresh every second.
async function signIn(page, token) {
	await load(page, '/?poll=1');
	await page.waitForSelector('#signin');
	await page.fill('#token', token);
	await page.click('#signin button[type=submit]');
	await page.waitForSelector('#who', { timeout: 10000 });
}

async function go(page, hash, selector) {
	await page.evaluate(h => { location.hash = h; }, hash);
	if (selector) await page.waitForSelector(selector, { timeout: 15000 });
}

async function count(page, selector) {
	return page.locator(selector).count();
}

async function waitFor(page, fn, arg, timeout, what) {
	try {
		await page.waitForFunction(fn, arg, { timeout, polling: 100 });
	} catch {
		fail(`timed out after ${timeout} ms waiting for ${what}`);
	}
}

async function hasEndpoint(page, path) {
	return page.evaluate(async p => {
		const r = await fetch('/v1/endpoints', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('herd.token') } });
		return (await r.json()).items.some(e => e.path === p);
	}, path);
}

const scenarios = {
	// Sign-in: a wrong token is refused on the page; the right one is kept
	// in sessionStorage only, sent as a header, never in a URL.
	async signin(page) {
		const urls = [];
		const auth = [];
		page.on('request', r => {
			urls.push(r.url());
			if (r.url().includes('/v1/')) auth.push(r.headers().authorization || '');
		});
		await load(page, '/');
		await page.fill('#token', 'hd_not_a_token');
		await page.click('#signin button[type=submit]');
		await page.waitForFunction(() => document.querySelector('#signin-error').textContent !== '');
		const msg = await page.textContent('#signin-error');
		if (!/not valid/.test(msg)) fail('a wrong token gave: ' + msg);
		if (!auth.length || !auth.every(a => a === 'Bearer hd_not_a_token')) fail('the wrong token was not sent as a bearer token');
		say('wrong token refused: ' + msg);
		auth.length = 0;
		await page.fill('#token', env.TOKEN);
		await page.click('#signin button[type=submit]');
		await page.waitForSelector('#who');
		const stored = await page.evaluate(() => [sessionStorage.getItem('herd.token'), localStorage.length, document.cookie]);
		if (stored[0] !== env.TOKEN) fail('the token is not in sessionStorage');
		if (stored[1] !== 0 || stored[2] !== '') fail('something went to localStorage or cookies');
		if (urls.some(u => u.includes(env.TOKEN))) fail('the token appeared in a URL');
		if (!auth.length || !auth.every(a => a === 'Bearer ' + env.TOKEN)) fail('an API call went without the bearer token');
		say(`signed in; ${auth.length} API calls, all with Authorization: Bearer, none with the token in a URL`);
		// a reload keeps the session (same tab), sign-out forgets it
		await page.reload();
		await page.waitForSelector('#who');
		await page.click('#signout');
		await page.waitForSelector('#signin');
		if (await page.evaluate(() => sessionStorage.getItem('herd.token')) !== null) fail('sign-out kept the token');
		say('reload kept the session; sign-out removed the token');
	},

	// The overview lists the blueprint's clusters and groups.
	async overview(page, errors) {
		await signIn(page, env.TOKEN);
		for (const cg of (env.EXPECT || '').split(/\s+/).filter(Boolean)) {
			const [c, g] = cg.split('/');
			await page.waitForSelector(`#clusters .cluster[data-cluster="${c}"] tr[data-group="${g}"]`, { timeout: 10000 });
			say(`overview lists ${c}/${g}`);
		}
		const row = page.locator(`.cluster[data-cluster="${CLUSTER}"] tr[data-group="${GROUP}"] td`);
		const cells = await row.allTextContents();
		say(`${CLUSTER}/${GROUP}: ${cells.join(' | ')}`);
		await shot(page, 'overview');
		if (errors.length) fail('console errors: ' + errors.join('; '));
	},

	// The group page: hosts, live monitor chart (3 series, a new point within
	// two push intervals), scaling from the page.
	async group(page, errors) {
		await signIn(page, env.TOKEN);
		await go(page, `#/group/${CLUSTER}/${GROUP}`, '#hosts table');
		await waitFor(page, n => document.querySelectorAll('#hosts tr[data-state="ready"]').length >= n, HOSTS, 60000,
			`${HOSTS} ready hosts in the table`);
		say(`${await count(page, '#hosts tr[data-host]')} hosts in the table`);
		if (await hasEndpoint(page, '/v1/metrics/query')) {
			const sel = '.chart[data-metric="busy"]';
			await waitFor(page, ([s, n]) => {
				const el = document.querySelector(s);
				return el && Number(el.dataset.series) === n && el.querySelector('canvas');
			}, [sel, HOSTS], 60000, `the busy chart with ${HOSTS} series`);
			const names = await page.getAttribute(sel, 'data-names');
			const last = Number(await page.getAttribute(sel, 'data-last'));
			say(`busy chart: ${HOSTS} series (${names}), last point ${new Date(last).toISOString()}`);
			const t0 = Date.now();
			await waitFor(page, ([s, l]) => Number(document.querySelector(s).dataset.last) > l, [sel, last],
				2 * PUSH_S * 1000, 'a new point on the busy chart');
			say(`a new point appeared after ${Date.now() - t0} ms (push interval ${PUSH_S} s)`);
			const agg = '.chart[data-metric="busy:group"]';
			await page.waitForSelector(agg + ' canvas', { timeout: 10000 });
			say(`group chart: ${await page.getAttribute(agg, 'data-names')}`);
		} else {
			say('SKIP chart checks: this server has no /v1/metrics/query yet');
		}
		await shot(page, 'group');
		const to = Number(env.SCALE_TO || HOSTS + 1);
		await page.fill('#scale-n', String(to));
		await page.click('#scale-btn');
		await waitFor(page, n => document.querySelector('#group-summary').dataset.desired === String(n), to, 10000,
			`desired ${to} on the page`);
		const desired = await page.evaluate(async ([c, g]) => {
			const r = await fetch(`/v1/groups/${g}?cluster=${c}`, { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('herd.token') } });
			return (await r.json()).desired;
		}, [CLUSTER, GROUP]);
		if (desired !== to) fail(`the API says desired ${desired}, not ${to}`);
		say(`scaled from the page: desired is ${desired}`);
		await waitFor(page, n => document.querySelectorAll('#hosts tr[data-host]').length === n, to, 60000,
			`${to} hosts in the table`);
		let hosts = await page.$$eval('#hosts tr[data-host]', trs => trs.map(t => t.dataset.host + ':' + t.dataset.state));
		say('hosts in the table: ' + hosts.join(' '));
		await waitFor(page, n => document.querySelectorAll('#hosts tr[data-state="ready"]').length === n, to, 60000,
			`${to} ready hosts in the table`);
		hosts = await page.$$eval('#hosts tr[data-host]', trs => trs.map(t => t.dataset.host + ':' + t.dataset.state));
		say('then: ' + hosts.join(' '));
		await shot(page, 'group-scaled');
		// the host page of the first host
		const first = hosts[0].split(':')[0];
		await go(page, `#/host/${CLUSTER}/${first}`, '#host-facts dt');
		await page.waitForSelector('#init .init-result', { timeout: 20000 });
		if (await hasEndpoint(page, '/v1/metrics/query'))
			await page.waitForSelector('.chart.has-data canvas', { timeout: 20000 });
		await page.waitForTimeout(1200);
		await shot(page, 'host');
		if (errors.length) fail('console errors: ' + errors.join('; '));
	},

	// A script run from the scripts page, its output shown as it comes; the
	// host page lists the run among the host's runs.
	async run(page, errors) {
		await signIn(page, env.TOKEN);
		if (!await hasEndpoint(page, '/v1/runs')) {
			say('SKIP: this server has no /v1/runs');
			return;
		}
		const script = env.SCRIPT || 'hello.sh';
		await go(page, `#/scripts/${script}`, '#run');
		await page.selectOption('#run-kind', 'group');
		await page.fill('#run-target', `${CLUSTER}/${GROUP}`);
		await page.click('#run button.run');
		await page.waitForSelector('.run-detail', { timeout: 10000 });
		const id = await page.getAttribute('.run-detail', 'data-run');
		say(`run ${id} started from the page: ${await page.textContent('#run-msg')}`);
		await waitFor(page, () => {
			const d = document.querySelector('.run-detail');
			return d && d.dataset.state !== 'running';
		}, null, 60000, 'the run to end');
		const state = await page.getAttribute('.run-detail', 'data-state');
		const outs = await page.$$eval('.run-detail .run-host', hs => hs.map(x =>
			`${x.dataset.host}:${x.dataset.state}:${(x.querySelector('pre.out') || {}).textContent || ''}`.trim()));
		say(`run ${id} ${state}: ${outs.join(' | ')}`);
		if (state !== 'succeeded') fail(`run ${id} ended ${state}`);
		if (!outs.length || !outs.every(o => /hello from/.test(o))) fail('a host shows no output');
		await shot(page, 'script-run');
		const host = outs[0].split(':')[0];
		await go(page, `#/host/${CLUSTER}/${host}`, `.runs tr[data-run="${id}"]`);
		say(`the host page of ${host} lists run ${id}`);
		await page.click(`.runs tr[data-run="${id}"] a.open-run`);
		await page.waitForSelector(`#run-${id} .run-host[data-host="${host}"] pre.out`, { timeout: 10000 });
		await shot(page, 'host-run');
		if (errors.length) fail('console errors: ' + errors.join('; '));
	},

	// A viewer sees no button that would fail.
	async viewer(page, errors) {
		await signIn(page, env.TOKEN);
		const role = await page.getAttribute('#who', 'data-role');
		if (role !== 'viewer') fail('signed in as ' + role);
		const nav = await page.$$eval('#nav a', as => as.map(a => a.dataset.nav));
		if (nav.includes('tokens') || nav.includes('audit')) fail('a viewer sees admin pages: ' + nav.join(','));
		await go(page, `#/group/${CLUSTER}/${GROUP}`, '#hosts table');
		await waitFor(page, n => document.querySelectorAll('#hosts tr[data-host]').length >= n, HOSTS, 60000, 'the hosts');
		await page.waitForTimeout(1500);   // a refresh or two
		for (const s of ['#scale', '#scale-btn', 'button.terminate', 'button.scale'])
			if (await count(page, s)) fail(`a viewer sees ${s} on the group page`);
		say('group page: no scale or terminate control');
		const host = await page.$$eval('#hosts tr[data-host]', trs => trs.map(t => t.dataset.host));
		if (host.length) {
			await go(page, `#/host/${CLUSTER}/${host[0]}`, '#host-facts dt');
			for (const s of ['button.terminate', 'button.protect'])
				if (await count(page, s)) fail(`a viewer sees ${s} on the host page`);
			say('host page: no terminate control');
		}
		await go(page, `#/scripts/${env.SCRIPT || 'hello.sh'}`, '#script-content');
		for (const s of ['#run', 'button.run'])
			if (await count(page, s)) fail(`a viewer sees ${s} on the scripts page`);
		say('scripts page: no run control');
		if (await hasEndpoint(page, '/v1/alerts/silences')) {
			await go(page, '#/alerts', '#silences table');
			if (await count(page, '#silence') || await count(page, '#silences button.delete'))
				fail('a viewer sees the silence controls on the alerts page');
			say('alerts page: no silence control');
		}
		await go(page, '#/tokens', 'main p.notice');
		say('tokens page: ' + await page.textContent('main p.notice'));
		if (errors.length) fail('console errors: ' + errors.join('; '));
	},

	// Every page renders and refreshes without a console error.
	async pages(page, errors) {
		await signIn(page, env.TOKEN);
		const host = await page.evaluate(async () => {
			const r = await fetch('/v1/hosts', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('herd.token') } });
			const j = await r.json();
			return j.items.length ? [j.items[0].cluster, j.items[0].name] : null;
		});
		const pages = [
			['overview', '#/', '#clusters .cluster'],
			['group', `#/group/${CLUSTER}/${GROUP}`, '#hosts table'],
			host ? ['host', `#/host/${host[0]}/${host[1]}`, '#host-facts dt'] : null,
			['scripts', '#/scripts', '#library table'],
			['script', `#/scripts/${env.SCRIPT || 'hello.sh'}`, '#script-content'],
			['templates', '#/templates', '#list table'],
			['networks', '#/networks', '#list table'],
			['lbs', '#/lbs', '#list table'],
			['alerts', '#/alerts', '#alerts-active table'],
			['tokens', '#/tokens', '#tokens table'],
			['audit', '#/audit', '#audit table'],
		].filter(Boolean);
		for (const [name, hash, sel] of pages) {
			await go(page, hash, sel);
			if (name === 'lbs' && Number(env.LB_MEMBERS || 0) > 0) {
				await waitFor(page, n => document.querySelectorAll('#members tr[data-member]').length >= n,
					Number(env.LB_MEMBERS), 30000, `${env.LB_MEMBERS} load balancer members`);
				const ms = await page.$$eval('#members tr[data-member]', trs => trs.map(t => `${t.dataset.member}:${t.dataset.state}`));
				say('load balancer members: ' + ms.join(' '));
			}
			await page.waitForTimeout(1300);   // at least one live refresh
			await shot(page, 'page-' + name);
			if (errors.length) fail(`console errors on ${name}: ` + errors.join('; '));
			say(`${name}: rendered and refreshed, no console error`);
		}
	},
};

const fn = scenarios[scenario];
if (!fn) {
	console.error('usage: console.test.mjs ' + Object.keys(scenarios).join('|'));
	process.exit(2);
}
const { ctx, close } = await launch();
errors = watchErrors(ctx);
const page = ctx.pages()[0] || await ctx.newPage();
let rc = 0;
try {
	await fn(page, errors);
	say(`${scenario}: ok` + (errors.networkChanged ? ` (${errors.networkChanged} net::ERR_NETWORK_CHANGED not counted)` : ''));
} catch (e) {
	console.log(`not ok: ${scenario}: ${e.message}`);
	for (const m of errors) console.log('# browser: ' + m);
	await shot(page, `failed-${scenario}`).catch(() => {});
	rc = 1;
} finally {
	await close();
}
process.exit(rc);
