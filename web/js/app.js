// app.js - the console's entry: sign-in, the frame (navigation with the
// count of firing alerts, who is signed in), hash routing
// ("#/group/demo/node") and the live loop that asks the current page to
// refresh, and the count to update, every poll interval (5 s, the agents'
// push interval; "?poll=1" in the page's URL makes it 1 s).

import * as api from './api.js';
import { h, fill } from './dom.js';
import * as overview from './pages/overview.js';
import * as group from './pages/group.js';
import * as host from './pages/host.js';
import * as scripts from './pages/scripts.js';
import * as resources from './pages/resources.js';
import * as admin from './pages/admin.js';
import * as alerts from './pages/alerts.js';

const POLL_MS = Math.max(250, 1000 * (Number(new URLSearchParams(location.search).get('poll')) || 5));

// [pattern, render(main, ctx, ...params), nav key, least role]
const ROUTES = [
	[/^\/?$/, overview.render, 'overview'],
	[/^\/group\/([^/]+)\/([^/]+)$/, group.render, 'overview'],
	[/^\/host\/([^/]+)\/([^/]+)$/, host.render, 'overview'],
	[/^\/scripts(?:\/([^/]+))?$/, scripts.render, 'scripts'],
	[/^\/templates$/, resources.templates, 'templates'],
	[/^\/networks$/, resources.networks, 'networks'],
	[/^\/lbs$/, resources.lbs, 'lbs'],
	[/^\/alerts$/, alerts.render, 'alerts'],
	[/^\/tokens$/, admin.tokens, 'tokens', 'admin'],
	[/^\/audit$/, admin.audit, 'audit', 'admin'],
];

const NAV = [
	['overview', '/', 'Overview'],
	['scripts', '/scripts', 'Scripts'],
	['templates', '/templates', 'Templates'],
	['networks', '/networks', 'Networks'],
	['lbs', '/lbs', 'Load balancers'],
	['alerts', '/alerts', 'Alerts'],
	['tokens', '/tokens', 'Tokens', 'admin'],
	['audit', '/audit', 'Audit log', 'admin'],
];

const root = document.getElementById('app');
let page = null;        // {refresh(), dispose()} of the shown page
let timer = null;
let busy = false;
let status = null;      // the frame's "live" indicator
let alertCount = null;  // the navigation's count of firing alerts

function signInView(message) {
	const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off',
		placeholder: 'hd_…', required: true, spellcheck: 'false' });
	const msg = h('p', { class: 'error', id: 'signin-error' }, message || '');
	const form = h('form', { class: 'signin', id: 'signin', onsubmit: async ev => {
		ev.preventDefault();
		msg.textContent = '';
		try {
			await api.signIn(input.value);
			start();
		} catch (e) {
			msg.textContent = e.status === 401 ? 'this token is not valid' : 'cannot sign in: ' + e.message;
		}
	} },
	h('h1', null, 'herd'),
	h('label', { for: 'token' }, 'API token'),
	input,
	h('button', { type: 'submit' }, 'Sign in'),
	msg,
	h('p', { class: 'hint' }, 'The admin token is in DATA/admin.token; `herd token create` makes others. ' +
		'It is kept in this tab only.'));
	stop();
	fill(root, form);
	input.focus();
}

function frame() {
	const me = api.whoami();
	status = h('span', { class: 'live', title: 'refreshes every ' + POLL_MS / 1000 + ' s' }, '●');
	alertCount = api.has('GET', '/v1/alerts') ? h('span', { class: 'alert-count zero', id: 'nav-alerts-count' }) : null;
	const nav = h('nav', { id: 'nav' }, NAV.filter(n => !n[3] || api.can(n[3]))
		.map(([key, hash, text]) => h('a', { href: '#' + hash, dataset: { nav: key } }, text,
			key === 'alerts' && alertCount ? [' ', alertCount] : null)));
	const main = h('main', { id: 'main' });
	fill(root,
		h('header', null,
			h('a', { class: 'brand', href: '#/' }, 'herd'),
			nav,
			h('span', { class: 'who', id: 'who', dataset: { role: me.role } }, status, ' ', me.name, ' · ', me.role),
			h('button', { class: 'link', id: 'signout', onclick: () => { api.signOut(); signInView(); } }, 'Sign out')),
		main);
	return main;
}

async function route() {
	const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
	if (page) {
		page.dispose && page.dispose();
		page = null;
	}
	const main = document.getElementById('main') || frame();
	fill(main);
	for (const [re, render, key, role] of ROUTES) {
		const m = path.match(re);
		if (!m) continue;
		for (const a of document.querySelectorAll('#nav a'))
			a.classList.toggle('active', a.dataset.nav === key);
		if (role && !api.can(role)) {
			main.append(h('p', { class: 'notice' }, `this page needs the ${role} role`));
			return;
		}
		const ctx = { pollMs: POLL_MS, search: new URLSearchParams(location.search) };
		try {
			page = (await render(main, ctx, ...m.slice(1).map(s => s === undefined ? undefined : s))) || {};
			await refresh();
		} catch (e) {
			main.append(h('p', { class: 'error' }, 'cannot show this page: ' + e.message));
		}
		return;
	}
	main.append(h('p', { class: 'notice' }, 'no such page: ' + path));
}

// The navigation's count: firing alerts that nobody silenced; the title
// tells pending and silenced ones too.
async function countAlerts() {
	if (!alertCount) return;
	const c = alerts.alertCounts((await api.get('/v1/alerts')).items);
	alertCount.textContent = String(c.firing);
	alertCount.classList.toggle('zero', c.firing === 0);
	alertCount.title = `${c.firing} firing, ${c.pending} pending, ${c.silenced} silenced`;
}

async function refresh() {
	if (busy) return;
	busy = true;
	try {
		await Promise.all([page && page.refresh ? page.refresh() : null, countAlerts()]);
		if (status) { status.classList.remove('stale'); status.title = 'updated ' + new Date().toLocaleTimeString(); }
	} catch (e) {
		if (status) { status.classList.add('stale'); status.title = 'update failed: ' + e.message; }
	} finally {
		busy = false;
	}
}

function stop() {
	if (timer) clearInterval(timer);
	timer = null;
	if (page && page.dispose) page.dispose();
	page = null;
}

function start() {
	fill(root);
	frame();
	route();
	timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
}

async function boot() {
	api.setOnAuthLost(() => signInView('signed out: the token is no longer valid'));
	window.addEventListener('hashchange', () => { if (api.signedIn()) route(); });
	if (api.hasToken()) {
		try {
			await api.load();
			return start();
		} catch (e) {
			api.signOut();
			return signInView(e.status === 401 ? '' : 'cannot reach the server: ' + e.message);
		}
	}
	signInView();
}

boot();
