// 0525-console-upgrades.mjs - drives the console's group page in Debian's
// Chromium (tests/console/browser.mjs) for tests/e2e/0525-console-upgrades.bats.
// PHASE=behind: the hosts are behind template version VERSION (from OLD);
// the page marks them and sums up what changed, HTML as text. PHASE=refresh:
// a refresh held by its warm-up is running; the panel shows its state and
// progress, and its Pause, Resume and Cancel buttons change it.
// PHASE=rolling: rolling run RUN (batch 1, 2 hosts, a script that sleeps)
// is listed with its batch and its hosts by step. Prints what
// it did; exits 1 with the reason on the first failure.
//
// Environment: HERD_URL, TOKEN (admin), OUT_DIR (screenshots), CLUSTER,
// GROUP, PHASE, and for behind VERSION and OLD, for rolling RUN.
import { join } from 'node:path';
import { launch, watchErrors } from '../console/browser.mjs';

const env = process.env;
const URL0 = env.HERD_URL.replace(/\/$/, '');
const OUT = env.OUT_DIR || 'test-output/console';
let errors = [];

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

async function waitFor(page, fn, arg, timeout, what) {
	try {
		await page.waitForFunction(fn, arg, { timeout, polling: 100 });
	} catch {
		fail(`timed out after ${timeout} ms waiting for ${what}`);
	}
}

const text = (page, sel) => page.$eval(sel, e => e.textContent);

// Loads the console until its sign-in form shows: a load that lost a
// module to ERR_NETWORK_CHANGED (tests/console/browser.mjs) is loaded again,
// once or twice; any other reason fails.
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

async function signIn(page) {
	await load(page, '/?poll=1');
	await page.fill('#token', env.TOKEN);
	await page.click('#signin button[type=submit]');
	await page.waitForSelector('#who', { timeout: 10000 });
	await page.evaluate(h => { location.hash = h; },
		`#/group/${encodeURIComponent(env.CLUSTER)}/${encodeURIComponent(env.GROUP)}`);
	await page.waitForSelector('#hosts table', { timeout: 15000 });
}

async function behind(page) {
	await waitFor(page, () => document.querySelectorAll('#hosts tr[data-behind="true"]').length === 2, null, 30000,
		'both hosts marked behind');
	for (const row of await page.locator('#hosts tr[data-behind="true"]').allTextContents()) {
		say('host: ' + row);
		if (!row.includes(env.OLD)) fail(`a behind host's row does not show its version ${env.OLD}: ${row}`);
	}
	const want = `2 of 2 hosts behind template version ${env.VERSION}`;
	await waitFor(page, w => (document.querySelector('#upgrade-summary') || {}).textContent?.includes(w), want, 15000,
		`the summary "${want}"`);
	say('summary: ' + await text(page, '#upgrade-summary'));
	const changes = await page.locator('#upgrade-changes li').allTextContents();
	say('changes: ' + changes.join(' | '));
	if (!changes.some(c => c.includes('image: "img-1" -> "<b>x</b>"')))
		fail('the changed image is not listed as text: ' + changes.join(' | '));
	if (await page.$('#upgrade-changes b')) fail('a changed value became markup');
	await shot(page, 'upgrades-behind');
}

async function clickAndWait(page, id, state) {
	page.once('dialog', d => d.accept());
	await page.click(id);
	await waitFor(page, s => document.querySelector(`#refresh[data-state="${s}"]`), state, 15000, `the refresh ${state}`);
	say(`${id}: the panel says ${state}`);
}

async function refresh(page) {
	await waitFor(page, () => document.querySelector('#refresh[data-state="running"]'), null, 15000, 'a running refresh');
	await waitFor(page, () => /waiting for/.test(document.querySelector('#refresh').textContent), null, 60000,
		'what the refresh waits for');
	const t = await text(page, '#refresh');
	say('refresh: ' + t);
	for (const w of ['running', 'batch 1 of 2', '0 of 2 hosts replaced', 'surge 1', 'min healthy 100%', 'warm-up 30m', 'started'])
		if (!t.includes(w)) fail(`the refresh panel does not say "${w}": ${t}`);
	if (!(await page.$('#refresh-activities tr[data-activity]'))) fail('no refresh activity in the panel');
	if (await page.$('#refresh-resume')) fail('Resume offered on a running refresh');
	await shot(page, 'upgrades-refresh');
	await clickAndWait(page, '#refresh-pause', 'paused');
	await clickAndWait(page, '#refresh-resume', 'running');
	await clickAndWait(page, '#refresh-cancel', 'cancelled');
	await waitFor(page, () => !document.querySelector('#refresh button'), null, 15000, 'no button on a cancelled refresh');
}

async function rolling(page) {
	const row = `#rolling-runs tr[data-run="${env.RUN}"]`;
	await waitFor(page, s => {
		const t = document.querySelector(s)?.textContent || '';
		return t.includes('1 of 2') && t.includes('run 1') && t.includes('wait 1');
	}, row, 60000, `run ${env.RUN} in batch 1 of 2 with a host running and one waiting`);
	say('rolling run: ' + await text(page, row));
	if (!(await page.$(`${row} a[href="#/scripts/slow.sh"]`))) fail('no link to the run\'s script');
	await shot(page, 'upgrades-rolling');
}

const { ctx, close } = await launch();
errors = watchErrors(ctx);
const page = ctx.pages()[0] || await ctx.newPage();
let rc = 0;
try {
	await signIn(page);
	if (env.PHASE === 'behind') await behind(page);
	else if (env.PHASE === 'refresh') await refresh(page);
	else if (env.PHASE === 'rolling') await rolling(page);
	else fail('unknown PHASE ' + env.PHASE);
	if (errors.length) fail('console errors: ' + errors.join('; '));
	say(`upgrades ${env.PHASE}: ok`);
} catch (e) {
	console.log(`not ok: upgrades ${env.PHASE}: ${e.message}`);
	for (const m of errors) console.log('# browser: ' + m);
	await shot(page, 'failed-upgrades-' + env.PHASE).catch(() => {});
	rc = 1;
} finally {
	await close();
}
process.exit(rc);
