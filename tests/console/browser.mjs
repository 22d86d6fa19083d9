// browser.mjs - Debian's Chromium driven by playwright-core (from web/'s
// devDependencies; never a browser download), shared by the console tests
// and bench/console.sh. Each launch gets a fresh profile directory, removed
// on close; the flags keep Chromium off the network (the machine has none)
// and inside this run.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../web/package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch() {
	const profile = mkdtempSync(join(process.env.TMPDIR || tmpdir(), 'herd-chromium-'));
	const ctx = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		viewport: { width: 1400, height: 1000 },
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
			'--disable-dev-shm-usage'],
	});
	const close = async () => {
		await ctx.close().catch(() => {});
		rmSync(profile, { recursive: true, force: true });
	};
	return { ctx, close };
}

// Chromium aborts its requests in flight when an address or link of the
// machine changes (net::ERR_NETWORK_CHANGED). Here the local provider adds
// bridges and veths on the very machine the browser runs on, which a real
// operator's browser never sees; the console retries such a failed read,
// and these messages are not counted as the console's errors.
export const NETWORK_CHANGED = /net::ERR_NETWORK_CHANGED/;

// Collects console errors and page errors of every page of ctx.
export function watchErrors(ctx) {
	const errors = [];
	errors.networkChanged = 0;   // messages not counted (see above)
	const watch = page => {
		page.on('console', m => {
			if (m.type() !== 'error') return;
			if (NETWORK_CHANGED.test(m.text())) errors.networkChanged++;
			else errors.push(`${page.url()}: console: ${m.text()}`);
		});
		page.on('pageerror', e => errors.push(`${page.url()}: pageerror: ${e.message}`));
	};
	ctx.pages().forEach(watch);
	ctx.on('page', watch);
	return errors;
}
