// host.js - one host: its record, metric charts (CPU, memory, disk,
// network, the group's monitors), the results of its init scripts with
// their output, and the script runs on it with their logs.

import * as api from '../api.js';
import * as metrics from '../metrics.js';
import { Chart } from '../chart.js';
import { h, fill, link, table, section, notice, enc, fmtAge, fmtTime, stateBadge } from '../dom.js';
import { launchedAgo } from './group.js';
import { runsPanel } from './scripts.js';

const WINDOW_S = 15 * 60;

function output(label, text, truncated) {
	if (!text) return null;
	return h('details', { class: 'output', open: text.length < 4000 }, h('summary', null, label, truncated ? ' (truncated)' : ''),
		h('pre', null, text));
}

function initResults(items) {
	if (!items || !items.length) return notice('No init script has reported yet.');
	return items.map(r => h('div', { class: 'init-result', dataset: { script: r.script, exit: r.exit_code } },
		h('p', null, h('strong', null, r.script), r.version ? ` v${r.version}` : '', ' · ',
			r.timed_out ? h('span', { class: 'error' }, 'timed out') :
				r.signal ? h('span', { class: 'error' }, 'killed by signal ' + r.signal) :
					h('span', { class: r.exit_code === 0 ? 'ok' : 'error' }, 'exit ' + r.exit_code),
			` · ${(r.duration_ms / 1000).toFixed(1)} s · ${fmtTime(r.started_ms)}`),
		output('stdout', r.stdout, r.stdout_truncated), output('stderr', r.stderr, r.stderr_truncated)));
}

export async function render(main, ctx, cluster, name) {
	const q = api.qs({ cluster });
	let x = await api.get(`/v1/hosts/${enc(name)}${q}`);
	const g = await api.get(`/v1/groups/${enc(x.group)}${api.qs({ cluster })}`).catch(() => ({}));
	const monitors = g.monitors || [];
	const facts = h('dl', { class: 'facts', id: 'host-facts' });
	const init = h('div', { id: 'init' });
	const chartsEl = h('div', { class: 'charts', id: 'charts' });
	const runs = runsPanel({ host: name, cluster, group: x.group });
	const actions = h('p', { class: 'actions' });

	if (api.can('operator')) {
		actions.append(
			h('button', { class: 'terminate', onclick: async () => {
				if (!confirm(`Terminate ${name}? The group's desired size drops by one.`)) return;
				try { await api.post(`/v1/hosts/${enc(name)}/terminate${q}`); await page.refresh(); } catch (e) { alert(e.message); }
			} }, 'Terminate'), ' ',
			h('button', { class: 'protect', onclick: async () => {
				const verb = x.protected ? 'unprotect' : 'protect';
				try { await api.post(`/v1/hosts/${enc(name)}/${verb}${q}`); await page.refresh(); } catch (e) { alert(e.message); }
			} }, 'Toggle scale-in protection'));
	}
	main.append(
		h('h1', null, h('a', { href: '#/' }, cluster), ' / ', link(`/group/${enc(cluster)}/${enc(x.group)}`, x.group), ' / ', name),
		actions, section('Host', facts), section('Metrics', chartsEl),
		section('Init scripts', init), section('Script runs', runs.el));

	const charts = new Map();
	const list = [...metrics.SYSTEM, ...monitors.map(m => ({ metric: m, title: m, unit: '' }))];
	if (!metrics.available()) chartsEl.append(notice('Metrics are not available on this server.'));

	const page = {
		async refresh() {
			x = await api.get(`/v1/hosts/${enc(name)}${q}`);
			const kv = [['state', stateBadge(x.state)], ['reason', x.reason], ['private IP', x.private_ip],
				['template', x.template], ['network', x.network], ['instance', x.instance_id],
				['uptime', fmtAge(launchedAgo(x))], ['created', x.created], ['ready', x.ready],
				['last heartbeat', x.heartbeat], ['protected', x.protected ? 'yes' : 'no'],
				['labels', Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ')]];
			fill(facts, kv.filter(([, v]) => v !== null && v !== undefined && v !== '')
				.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
			facts.dataset.state = x.state;
			fill(init, initResults(x.init));
			await runs.refresh();
			if (!metrics.available()) return;
			const stepS = metrics.stepFor(WINDOW_S, Math.max(1, Math.round(ctx.pollMs / 1000)));
			await Promise.all(list.map(async s => {
				const per = await metrics.perHost(s.metric, { cluster, host: name, sinceS: WINDOW_S, stepS });
				if (!charts.has(s.metric))
					charts.set(s.metric, new Chart(chartsEl, { title: s.title, metric: s.metric, unit: s.unit, zero: s.zero, windowS: WINDOW_S }));
				charts.get(s.metric).set((per || []).map(p => ({ ...p, name: p.labels.iface || p.labels.mount || p.name })), [], stepS);
			}));
		},
		dispose() {
			for (const c of charts.values()) c.dispose();
		},
	};
	return page;
}
