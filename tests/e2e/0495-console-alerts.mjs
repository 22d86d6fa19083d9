// 0495-console-alerts.mjs - drives the console's alerts page in Debian's
// Chromium (tests/console/browser.mjs) for tests/e2e/0495-console-alerts.bats:
// writes the host's monitor value (BUSY_FILE) over the rule's threshold and
// back, and checks what the pages show. Prints what it did; exits 1 with
// the reason on the first failure.
//
// Environment: HERD_URL, TOKEN (admin), OUT_DIR (screenshots), CLUSTER,
// GROUP (the group with rule "hot": avg(busy) > 36), BUSY_FILE.
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { launch, watchErrors } from '../console/browser.mjs';

const env = process.env;
const URL0 = env.HERD_URL.replace(/\/$/, '');
const OUT = env.OUT_DIR || 'test-output/console';
const CG = `${env.CLUSTER}/${env.GROUP}`;
const HOT = `tr[data-rule="hot"][data-group="${CG}"]`;
let errors = [];

function fail(msg) {
	throw new Error(msg);
}

function say(msg) {
	console.log('# ' + msg);
}

function setBusy(v) {
	writeFileSync(env.BUSY_FILE + '.tmp', v + '\n');
	renameSync(env.BUSY_FILE + '.tmp', env.BUSY_FILE);
	say(`busy is now ${v}`);
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

async function go(page, hash, selector) {
	await page.evaluate(h => { location.hash = h; }, hash);
	await page.waitForSelector(selector, { timeout: 15000 });
}

const navCount = () => {
	const el = document.querySelector('#nav-alerts-count');
	return el ? el.textContent : null;
};

async function run(page) {
	await page.goto(URL0 + '/?poll=1');
	await page.waitForSelector('#signin');
	await page.fill('#token', env.TOKEN);
	await page.click('#signin button[type=submit]');
	await page.waitForSelector('#who', { timeout: 10000 });

	await go(page, '#/alerts', '#alerts-active table');
	await waitFor(page, navCount, null, 10000, 'the navigation\'s alert count');
	if (await page.evaluate(navCount) !== '0') fail('the navigation counts alerts before any: ' + await page.evaluate(navCount));
	say('alerts page shown; the navigation counts 0');

	setBusy(40);
	await waitFor(page, s => document.querySelector(`#alerts-active ${s}[data-state="firing"]`), HOT, 60000,
		'hot firing on the alerts page');
	const row = (await page.locator(`#alerts-active ${HOT}`).allTextContents())[0];
	say('firing: ' + row);
	if (!row.includes(`<b>${CG}</b> busy 40 on `)) fail('the summary is not shown as text: ' + row);
	if (!/critical/.test(row)) fail('no severity in the row');
	await waitFor(page, navCount, null, 10000, 'a count');
	await waitFor(page, () => document.querySelector('#nav-alerts-count').textContent === '1', null, 10000,
		'the navigation to count 1 firing alert');
	say('the navigation counts 1');
	// the history lists the firing event, its label as text
	await waitFor(page, s => document.querySelector(`#alert-history ${s}[data-state="firing"]`), HOT, 15000,
		'the firing event in the history');
	const ev = (await page.locator(`#alert-history ${HOT}[data-state="firing"]`).allTextContents())[0];
	say('history: ' + ev);
	if (!ev.includes('note=<i>markup</i>')) fail('the label is not shown as text: ' + ev);
	if (await page.evaluate(() => document.querySelectorAll('#main b, #main i').length)) fail('HTML from the API became markup');
	say('summary and label shown as text, no <b> or <i> element in the page');
	// filters: a rule that never fired lists nothing; the group lists hot
	await page.fill('#history-rule', 'host_failed');
	await page.press('#history-rule', 'Enter');
	await waitFor(page, () => !document.querySelector('#alert-history tr[data-rule]'), null, 15000, 'an empty history for host_failed');
	await page.fill('#history-rule', '');
	await page.press('#history-rule', 'Enter');
	await page.selectOption('#history-group', CG);
	await waitFor(page, s => document.querySelector(`#alert-history ${s}`), HOT, 15000, 'the history filtered by group');
	say('history filters by rule and by group');
	await shot(page, 'alerts');

	// the count from another page, and the group page's alerts
	await go(page, `#/group/${env.CLUSTER}/${env.GROUP}`, `#group-alerts ${HOT}`);
	if (await page.evaluate(navCount) !== '1') fail('the group page\'s navigation does not count the alert');
	say('group page lists hot; the navigation still counts 1');

	// a silence from the page marks it silenced; deleting it from the page
	await go(page, '#/alerts', '#silence');
	await page.fill('#silence-rule', 'hot');
	await page.selectOption('#silence-group', CG);
	await page.fill('#silence-for', '1h');
	await page.fill('#silence-reason', '<i>load test</i>');
	await page.click('#silence button[type=submit]');
	await waitFor(page, () => document.querySelector('#silences tr[data-rule="hot"]'), null, 15000, 'the silence listed');
	const sil = (await page.locator('#silences tr[data-rule="hot"]').allTextContents())[0];
	say('silence: ' + sil);
	if (!sil.includes('<i>load test</i>')) fail('the reason is not shown as text');
	await waitFor(page, s => document.querySelector(`#alerts-active ${s}[data-silenced="true"]`), HOT, 30000,
		'hot marked silenced');
	await waitFor(page, () => document.querySelector('#nav-alerts-count').textContent === '0', null, 10000,
		'the navigation not to count a silenced alert');
	say('hot marked silenced; the navigation counts 0');
	page.once('dialog', d => d.accept());
	await page.click('#silences tr[data-rule="hot"] button.delete');
	await waitFor(page, () => !document.querySelector('#silences tr[data-rule]'), null, 15000, 'the silence gone');
	say('silence deleted from the page');

	setBusy(25);
	await waitFor(page, s => !document.querySelector(`#alerts-active ${s}`), HOT, 60000, 'hot gone from the active list');
	await waitFor(page, s => document.querySelector(`#alert-history ${s}[data-state="resolved"]`), HOT, 15000,
		'the resolved event in the history');
	say('resolved: ' + (await page.locator(`#alert-history ${HOT}[data-state="resolved"]`).allTextContents())[0]);
	// newest first: the resolved event heads the history
	const top = await page.$eval('#alert-history tr[data-rule]', t => `${t.dataset.rule}:${t.dataset.state}`);
	if (top !== 'hot:resolved') fail('the history does not start with the newest event: ' + top);
	say('the history is newest first');
	await waitFor(page, () => document.querySelector('#nav-alerts-count').textContent === '0', null, 10000, 'a count of 0');
	await shot(page, 'alerts-resolved');
	if (errors.length) fail('console errors: ' + errors.join('; '));
}

const { ctx, close } = await launch();
errors = watchErrors(ctx);
const page = ctx.pages()[0] || await ctx.newPage();
let rc = 0;
try {
	await run(page);
	say('alerts: ok');
} catch (e) {
	console.log(`not ok: alerts: ${e.message}`);
	for (const m of errors) console.log('# browser: ' + m);
	await shot(page, 'failed-alerts').catch(() => {});
	rc = 1;
} finally {
	await close();
}
process.exit(rc);
