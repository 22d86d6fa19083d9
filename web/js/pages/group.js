// group.js - one group: its hosts (state, address, uptime, CPU, memory,
// monitors) a page of PAGE_ROWS at a time, a live chart of each monitor per
// host (groups of at most PER_HOST_MAX hosts) and of the group's aggregate
// (min, avg, max past that) with the policies' thresholds drawn as lines,
// the policies and their last evaluation, the group's active alerts, the
// activity timeline, the scale control, and its upgrades (upgrades.js):
// each host's template version with the hosts behind marked, the refresh
// panel and the rolling script runs in progress.

import * as api from '../api.js';
import * as metrics from '../metrics.js';
import { Chart } from '../chart.js';
import { h, fill, link, table, section, notice, enc, fmtAge, fmtNum, stateBadge } from '../dom.js';
import { activityTable } from './overview.js';
import { activeTable } from './alerts.js';
import { upgradesPanel, isBehind } from './upgrades.js';

const WINDOW_S = 15 * 60;
const WINDOWS = [[300, 'last 5 min'], [900, 'last 15 min'], [3600, 'last hour'], [6 * 3600, 'last 6 h'], [86400, 'last 24 h']];
const PAGE_ROWS = 50;      // hosts a table page shows
const PER_HOST_MAX = 20;   // past this many hosts, a line per host is unreadable: aggregates only
const STATES = ['launching', 'booting', 'initializing', 'ready', 'unhealthy', 'failed', 'draining', 'terminating', 'terminated'];
const AGG_COLORS = { avg: '#3b7dd8', min: '#3aa35b', max: '#e0752d', sum: '#8a5cc7', count: '#5d6d7e' };

export function launchedAgo(x) {
	if (!x.launch_ms && x.launch_ms !== 0) return null;
	return Date.now() - (x.created_ms + x.launch_ms);
}

function policyRule(p) {
	if (p.when) return 'when ' + p.when;
	if (p.target) return 'keep ' + p.target;
	if (p.schedule) return 'at ' + p.schedule + (p.set ? ' set ' + JSON.stringify(p.set) : '');
	return '';
}

// A policy's last evaluation ("why not scaled"), from
// GET /v1/policies/:name/explain: when, the value seen, the decision and
// its reason.
function lastEval(e) {
	if (e === undefined) return h('span', { class: 'muted' }, 'not available on this server');
	if (e === null) return h('span', { class: 'muted' }, 'not evaluated yet');
	const words = { none: 'no action', act: 'scale', blocked: 'blocked', no_data: 'no data' };
	return h('span', { class: 'eval e-' + e.decision },
		h('strong', null, words[e.decision] || e.decision), e.value !== undefined && e.value !== null ? ` at ${fmtNum(e.value)}` : '',
		e.reason ? ': ' + e.reason : '', e.evaluated ? h('span', { class: 'muted' }, ` (${e.evaluated})`) : '');
}

export async function render(main, ctx, cluster, name) {
	const q = api.qs({ cluster });
	const g = await api.get(`/v1/groups/${enc(name)}${q}`);
	const monitors = g.monitors || [];
	const info = h('p', { class: 'summary', id: 'group-summary' });
	const hostsEl = h('div', { id: 'hosts' });
	// the host table's page: cursors of the pages before it (prev), its own
	const paging = { before: [], after: '', next: null, total: null };
	const pageInfo = h('span', { class: 'muted', id: 'hosts-page' });
	const prevBtn = h('button', { id: 'hosts-prev', class: 'small', type: 'button', onclick: () => {
		paging.after = paging.before.pop() ?? '';
		page.refresh();
	} }, '‹ prev');
	const nextBtn = h('button', { id: 'hosts-next', class: 'small', type: 'button', onclick: () => {
		if (!paging.next) return;
		paging.before.push(paging.after);
		paging.after = paging.next;
		page.refresh();
	} }, 'next ›');
	const stateSel = h('select', { id: 'hosts-state', class: 'window', onchange: () => {
		paging.before = [];
		paging.after = '';
		page.refresh();
	} }, h('option', { value: '' }, 'any state'), STATES.map(x => h('option', { value: x }, x)));
	const pager = h('div', { class: 'pager' }, stateSel, ' ', prevBtn, ' ', nextBtn, ' ', pageInfo);
	const chartsEl = h('div', { class: 'charts', id: 'charts' });
	const policiesEl = h('div', { id: 'policies' });
	const timeline = h('div', { id: 'timeline' });
	const alertsEl = api.has('GET', '/v1/alerts') ? h('div', { id: 'group-alerts' }) : null;
	const win = h('select', { id: 'window', class: 'window', onchange: () => {
		sessionStorage.setItem('herd.window', win.value);
		page.refresh();
	} }, WINDOWS.map(([s, t]) => h('option', { value: s }, t)));
	win.value = ctx.search.get('window') || sessionStorage.getItem('herd.window') || String(WINDOW_S);
	if (!win.value) win.value = String(WINDOW_S);
	let scaleEl = null;
	const upgrades = upgradesPanel(ctx, cluster, name);

	if (api.can('operator')) {
		const input = h('input', { type: 'number', id: 'scale-n', min: g.min, max: g.max, value: g.desired, class: 'num' });
		const msg = h('span', { class: 'msg', id: 'scale-msg' });
		const btn = h('button', { id: 'scale-btn', class: 'scale', type: 'submit' }, 'Scale');
		scaleEl = h('form', { class: 'scale-form', id: 'scale', onsubmit: async ev => {
			ev.preventDefault();
			btn.disabled = true;
			msg.textContent = '';
			try {
				const r = await api.post(`/v1/groups/${enc(name)}/scale${q}`, { desired: Number(input.value) });
				msg.textContent = `desired size is now ${r.desired}`;
				msg.className = 'msg ok';
				await ctx.refreshNow?.();
			} catch (e) {
				msg.textContent = e.message;
				msg.className = 'msg error';
			} finally {
				btn.disabled = false;
			}
		} }, h('label', { for: 'scale-n' }, 'Desired size '), input, ' ', btn, ' ', msg);
	}

	main.append(
		h('h1', null, h('a', { href: '#/' }, cluster), ' / ', name),
		info, ...(scaleEl ? [scaleEl] : []),
		...(alertsEl ? [section('Alerts', alertsEl)] : []),
		upgrades.el,
		section('Hosts', pager, hostsEl),
		h('section', { class: 'card' }, h('h2', null, 'Monitors ', win), chartsEl),
		section('Policies', policiesEl),
		section('Activity', timeline));

	const charts = new Map();     // key -> Chart
	function chart(key, opts) {
		if (!charts.has(key)) charts.set(key, new Chart(chartsEl, opts));
		return charts.get(key);
	}
	if (!metrics.available())
		chartsEl.append(notice('Metrics are not available on this server.'));
	else if (!monitors.length)
		chartsEl.append(notice('This group has no monitors.'));

	// A host's template version; "behind" when it is not the group's
	// current one (diff: GET /v1/groups/:name/diff).
	function version(x, diff) {
		const v = x.template_version || 'unknown';
		if (!isBehind(x, diff)) return v;
		return [x.template !== diff.template ? `${x.template} ${v}` : v, ' ',
			h('span', { class: 'behind', title: `the group is on ${diff.template} version ${diff.version}` }, 'behind')];
	}

	async function terminate(x) {
		if (!confirm(`Terminate ${x.name}? The group's desired size drops by one.`)) return;
		try {
			await api.post(`/v1/hosts/${enc(x.name)}/terminate${api.qs({ cluster })}`);
		} catch (e) {
			alert(e.message);
		}
	}

	async function tables(gr, hs, ps, acts, diff) {
		const lat = metrics.available() ? await Promise.all([metrics.SYSTEM[0].metric, metrics.SYSTEM[1].metric, ...monitors]
			.map(m => metrics.latest(m, { cluster, group: name, hosts: hs.items.map(x => x.name) }))) : [];
		const val = (i, host) => lat[i] ? lat[i].get(host) : undefined;

		paging.next = hs.next || null;
		paging.total = hs.total ?? hs.items.length;
		const first = paging.before.length * PAGE_ROWS;
		fill(pageInfo, hs.items.length ? `hosts ${first + 1}–${first + hs.items.length} of ${paging.total}` : `no hosts of ${paging.total}`);
		prevBtn.disabled = paging.before.length === 0;
		nextBtn.disabled = !paging.next;
		fill(info, `template `, gr.template, ` · min ${gr.min} · desired ${gr.desired} · max ${gr.max}`,
			gr.after && gr.after.length ? ` · after ${gr.after.join(', ')}` : '');
		info.dataset.desired = gr.desired;
		const cols = ['host', 'state', 'IP', 'uptime', 'template version', 'CPU', 'memory', ...monitors];
		if (api.can('operator')) cols.push('');
		fill(hostsEl, table(cols, hs.items, x => {
			const c = [link(`/host/${enc(cluster)}/${enc(x.name)}`, x.name), stateBadge(x.state),
				x.private_ip || '', fmtAge(launchedAgo(x)), version(x, diff),
				fmtNum(val(0, x.name), '%'), fmtNum(val(1, x.name), '%'),
				...monitors.map((m, i) => fmtNum(val(2 + i, x.name)))];
			if (api.can('operator'))
				c.push(h('button', { class: 'terminate small', onclick: () => terminate(x) }, 'terminate'));
			return c;
		}, x => ({ dataset: { host: x.name, state: x.state, ...(diff ? { behind: isBehind(x, diff) } : {}) } })));

		const explain = api.has('GET', '/v1/policies/:name/explain') ? await Promise.all(ps.items.map(p =>
			api.get(`/v1/policies/${enc(p.name)}/explain` + api.qs({ cluster, group: name })).then(e => e.last))) : [];
		fill(policiesEl, table(['policy', 'rule', 'for', 'adjust', 'cooldown', 'last evaluation'], ps.items,
			(p, i) => [p.name, policyRule(p), p.for || '', p.adjust || (p.set ? JSON.stringify(p.set) : ''), p.cooldown || '', lastEval(explain[i])],
			p => ({ dataset: { policy: p.name } })));
		fill(timeline, activityTable(acts.items, false));
	}

	// Each monitor: one chart per host series (a group of at most
	// PER_HOST_MAX hosts), one of the group's aggregates (avg, and each
	// aggregate a policy tests; min and max too past PER_HOST_MAX) with
	// thresholds. The server aggregates: a large group costs a few small
	// answers, not a series per host.
	async function drawCharts(policies, hostsP) {
		const windowS = Number(win.value);
		const stepS = metrics.stepFor(windowS, Math.max(1, Math.round(ctx.pollMs / 1000)));
		// one end for every aggregate, on a step boundary: their points line up
		const toMs = Math.floor(Date.now() / (stepS * 1000)) * stepS * 1000;
		const agg = (m, a) => metrics.aggregate(m, { cluster, group: name, agg: a, sinceS: windowS, stepS, toMs });
		const hs = await hostsP;
		// the group's size, not the state filter's count, decides
		const many = Math.max(hs.total ?? hs.items.length, g.desired || 0) > PER_HOST_MAX;
		await Promise.all(monitors.map(async m => {
			// asked at once; the policies only add the aggregates they test
			const perP = many ? null : metrics.perHost(m, { cluster, group: name, sinceS: windowS, stepS });
			const avgP = agg(m, 'avg');
			const rules = (await policies).items.map(p => ({ p, r: metrics.parseRule(p.when || p.target) }))
				.filter(x => x.r && x.r.metric === m);
			const aggs = [...new Set(['avg', ...(many ? ['min', 'max'] : []), ...rules.map(x => x.r.agg)])];
			const [per, ...pts] = await Promise.all([perP, ...aggs.map(a => a === 'avg' ? avgP : agg(m, a))]);
			if (many && charts.has('host:' + m)) {
				charts.get('host:' + m).dispose();
				charts.delete('host:' + m);
			}
			if (!many)
				chart('host:' + m, { title: `${m} per host`, metric: m }).set(per || [], [], stepS, windowS);
			chart('group:' + m, { title: `${m}, group aggregate`, metric: m + ':group' }).set(
				aggs.map((a, i) => ({ name: `${a}(${m})`, color: AGG_COLORS[a], points: pts[i] || [] })),
				rules.map(x => ({ value: x.r.value, label: `${x.p.name}: ${x.r.agg} ${x.r.op} ${x.r.value}`, color: AGG_COLORS[x.r.agg] })),
				stepS, windowS);
		}));
	}

	let first = g;    // the first refresh uses the group read above
	const page = {
		async refresh() {
			const policies = api.get('/v1/policies' + api.qs({ cluster, group: name }));
			const gr = first || api.get(`/v1/groups/${enc(name)}${q}`);
			first = null;
			const hostsP = api.get('/v1/hosts' + api.qs({ cluster, group: name, state: stateSel.value,
				limit: PAGE_ROWS, after: paging.after }));
			const diffP = upgrades.diff();
			const parts = [Promise.all([
				gr,
				hostsP,
				policies,
				api.get('/v1/activities' + api.qs({ cluster, group: name, limit: 50 })),
				diffP,
			]).then(r => tables(...r))];
			parts.push(Promise.all([gr, diffP]).then(([a, d]) => upgrades.show(a, d)));
			if (metrics.available() && monitors.length) parts.push(drawCharts(policies, hostsP));
			if (alertsEl) parts.push(api.get('/v1/alerts' + api.qs({ cluster, group: name }))
				.then(r => fill(alertsEl, activeTable(r.items, false))));
			await Promise.all(parts);
		},
		dispose() {
			for (const c of charts.values()) c.dispose();
		},
	};
	ctx.refreshNow = () => page.refresh();
	return page;
}
