// console.mjs - the browser half of bench/console.sh: loads a console page
// RUNS times in headless Chromium, each in a fresh browser context (empty
// cache, so every byte is fetched), signed in through sessionStorage, and
// reports per load: the time from navigation start to the first chart drawn
// with data (the page's 'herd-chart-first' mark) or, with MARK=none, to
// SELECTOR; and the bytes transferred (bodies as sent, gzip included, plus
// headers) and their uncompressed size. Prints one JSON object.
//
// Environment: HERD_URL, TOKEN, URL_PATH (/), QUERY (e.g. ?window=3600),
// PAGE (the hash, e.g. #/group/bench/web), SELECTOR (what must be on the page when it is
// ready), RUNS (5). Bytes are counted apart for the page (static files)
// and its data (/v1/ answers).
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../web/package.json'));
const { chromium } = require('playwright-core');

const env = process.env;
const RUNS = Number(env.RUNS || 5);
const url = env.HERD_URL.replace(/\/$/, '') + (env.URL_PATH || '/') + (env.QUERY || '') + (env.PAGE || '');

const browser = await chromium.launch({
	executablePath: env.CHROMIUM || '/usr/bin/chromium',
	headless: true,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync',
		'--disable-dev-shm-usage'],
});

const loads = [];
try {
	for (let i = 0; i < RUNS; i++) {
		const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
		await ctx.addInitScript(t => sessionStorage.setItem('herd.token', t), env.TOKEN);
		const page = await ctx.newPage();
		const errors = [];
		page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
		page.on('pageerror', e => errors.push(e.message));
		const responses = [];
		page.on('response', r => responses.push(r));
		await page.goto(url);
		await page.waitForSelector(env.SELECTOR || '.chart.has-data canvas', { timeout: 60000 });
		const ms = await page.evaluate(mark => {
			if (mark === 'none') return performance.now();
			const e = performance.getEntriesByName('herd-chart-first');
			return e.length ? e[0].startTime : null;
		}, env.MARK || 'herd-chart-first');
		// sizes of the first load only: what a person's first visit costs
		// the page (static files: code, styles, uPlot) apart from the data (API)
		let wire = 0, raw = 0, n = 0, data = 0, dataN = 0;
		for (const r of responses) {
			const s = await r.request().sizes().catch(() => null);
			if (!s) continue;
			const bytes = s.responseBodySize + s.responseHeadersSize;
			if (new URL(r.url()).pathname.startsWith('/v1/')) {
				data += bytes;
				dataN++;
				continue;
			}
			wire += bytes;
			raw += (await r.body().catch(() => Buffer.alloc(0))).length;
			n++;
		}
		const series = await page.evaluate(() => [...document.querySelectorAll('.chart')]
			.map(c => `${c.dataset.metric}:${c.dataset.series}x${c.dataset.points}`));
		const rows = await page.locator('#hosts tr[data-host]').count();
		loads.push({ ms, wire, raw, requests: n, data, data_requests: dataN, series, rows, errors });
		await ctx.close();
	}
} finally {
	await browser.close();
}
const ms = loads.map(l => l.ms).filter(v => v !== null).sort((a, b) => a - b);
console.log(JSON.stringify({
	median_ms: ms.length ? ms[Math.floor(ms.length / 2)] : null,
	min_ms: ms[0] ?? null,
	max_ms: ms[ms.length - 1] ?? null,
	wire_bytes: loads[0].wire,
	raw_bytes: loads[0].raw,
	requests: loads[0].requests,
	data_bytes: loads[0].data,
	data_requests: loads[0].data_requests,
	series: loads[0].series,
	rows: loads[0].rows,
	errors: loads.flatMap(l => l.errors),
	all_ms: loads.map(l => l.ms),
}));
