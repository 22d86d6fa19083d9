// upgrades.js - the group page's upgrades card (docs/upgrades.md): how many
// hosts are behind the template's current version and what changed (GET
// /v1/groups/:name/diff), the group's latest instance refresh with its
// progress, what it waits for and its last activities (GET
// /v1/refreshes?cluster=&group=&limit=1; Pause, Resume and Cancel for an
// operator: POST /v1/groups/:name/refresh/:action), and
// the group's rolling script runs in progress (GET /v1/runs?state=running,
// then each one's hosts with their batch and step).

import * as api from '../api.js';
import { h, fill, link, table, enc, fmtTime, stateBadge } from '../dom.js';
import { activityTable } from './overview.js';

// A refresh in these states is shown whatever its age; one that ended
// (done, cancelled, rolled_back) for RECENT_MS after its last change.
const LIVE = new Set(['running', 'paused', 'failed']);
export const RECENT_MS = 3600 * 1000;
const REFRESH_ACTS = 10;     // refresh activities the panel lists
const ACTS_READ = 200;       // the group's latest activities read to find them
const RUNS_MAX = 200;        // running runs read to find the group's rolling ones
const PHASES = ['wait', 'drain', 'run', 'gate', 'done', 'failed', 'held'];

// True when host x (GET /v1/hosts) was not launched from the group's
// current template version; undefined without a diff.
export function isBehind(x, diff) {
	if (!diff) return undefined;
	return x.template !== diff.template || x.template_version !== diff.version;
}

// One change of the diff as `herd group diff` prints it: `field: from -> to`
// with the values as JSON ("script web.sh: 1 -> 2").
export function changeLine(c) {
	const v = x => x === undefined ? 'null' : JSON.stringify(x);
	return `${c.field}: ${v(c.from)} -> ${v(c.to)}`;
}

// What changed for the hosts behind: each distinct change line once, with
// how many hosts it applies to, in the order first seen.
export function changeSummary(diff) {
	const m = new Map();
	for (const b of diff.behind || [])
		for (const c of b.changes || []) {
			const l = changeLine(c);
			m.set(l, (m.get(l) || 0) + 1);
		}
	return [...m].map(([line, hosts]) => ({ line, hosts }));
}

// Whether the page shows refresh r (null: none) at now.
export function refreshShown(r, now) {
	if (!r) return false;
	return LIVE.has(r.state) || now - (r.updated_ms || r.started_ms) < RECENT_MS;
}

// A refresh's batch size for desired hosts: "N", or "P%" of desired
// rounded up, at least 1 (as refresh_batch_size()).
export function batchSize(batch, desired) {
	const s = String(batch ?? '1');
	if (s.endsWith('%')) return Math.max(1, Math.ceil((desired * Number(s.slice(0, -1))) / 100));
	return Math.max(1, Number(s) || 1);
}

// Progress of refresh r: the old hosts still in service are the diff's
// hosts behind that r has not taken out yet; the batches left are those
// hosts a batch at a time. {batch, batches, replaced, total}.
export function refreshProgress(r, diff, desired) {
	const out = new Set(r.hosts_replaced || []);
	const left = diff ? (diff.behind || []).filter(b => !out.has(b.host)).length : 0;
	const size = batchSize(r.params && r.params.batch, desired);
	const batches = r.batches + Math.ceil(left / size);
	return { batch: left > 0 ? r.batches + 1 : r.batches, batches, replaced: r.replaced, total: r.replaced + left };
}

// A rolling run's progress from its hosts: the batch going on (the highest
// whose hosts left `wait`), the number of batches, and hosts per step.
export function rollProgress(run) {
	const steps = {};
	let batch = 0, batches = 0;
	for (const x of run.hosts || []) {
		batches = Math.max(batches, x.batch || 0);
		if (x.phase !== 'wait') batch = Math.max(batch, x.batch || 0);
		steps[x.phase] = (steps[x.phase] || 0) + 1;
	}
	return { batch: batch || (batches ? 1 : 0), batches, steps };
}

export function fmtDuration(ms) {
	if (!ms) return '0s';
	if (ms % 3600000 === 0) return ms / 3600000 + 'h';
	if (ms % 60000 === 0) return ms / 60000 + 'm';
	return Math.round(ms / 1000) + 's';
}

function steps(s) {
	const keys = Object.keys(s).sort((a, b) => PHASES.indexOf(a) - PHASES.indexOf(b));
	return h('span', { class: 'counts' }, keys.map(k => h('span', { class: 'count p-' + k, dataset: { phase: k } }, `${k} ${s[k]}`)));
}

// The card: el to put on the page; diff() reads the diff (null when this
// server has no such endpoint) for the hosts table and show(); show(gr,
// diff) reads the refresh (and its activities) and the runs and fills the
// card.
export function upgradesPanel(ctx, cluster, name) {
	const q = api.qs({ cluster });
	const summary = h('p', { id: 'upgrade-summary' });
	const changes = h('ul', { id: 'upgrade-changes', class: 'changes' });
	const refreshEl = h('div', { id: 'refresh' });
	const runsEl = h('div', { id: 'rolling-runs' });
	const msg = h('span', { class: 'msg', id: 'refresh-msg' });
	const el = h('section', { class: 'card', id: 'upgrades' }, h('h2', null, 'Upgrades'), summary, changes, refreshEl,
		h('h3', null, 'Rolling script runs in progress'), runsEl);

	async function act(r, action) {
		if (!confirm(`${action[0].toUpperCase() + action.slice(1)} refresh ${r.id} of ${cluster}/${name}?`)) return;
		msg.textContent = '';
		try {
			await api.post(`/v1/groups/${enc(name)}/refresh/${action}${q}`);
			await ctx.refreshNow?.();
		} catch (e) {
			msg.textContent = e.message;
			msg.className = 'msg error';
		}
	}

	function buttons(r) {
		if (!api.can('operator') || !api.has('POST', '/v1/groups/:name/refresh/:action')) return [];
		const b = [];
		const btn = (action, text) => h('button', { id: 'refresh-' + action, class: 'small', type: 'button',
			onclick: () => act(r, action) }, text);
		if (r.state === 'running') b.push(btn('pause', 'Pause'));
		if (r.state === 'paused' || r.state === 'failed') b.push(btn('resume', 'Resume'));
		if (r.state === 'running' || r.state === 'paused') b.push(btn('cancel', 'Cancel'));
		return b.length ? [h('p', { class: 'refresh-actions' }, b.flatMap(x => [x, ' ']), msg)] : [];
	}

	async function showRefresh(r, gr, diff) {
		if (!refreshShown(r, Date.now())) {
			refreshEl.dataset.state = 'none';
			fill(refreshEl, h('p', { class: 'muted' }, 'No refresh in progress or ended in the last hour.'));
			return;
		}
		const acts = (await api.get('/v1/activities' + api.qs({ cluster, group: name, limit: ACTS_READ }))).items;
		refreshEl.dataset.state = r.state;
		const p = r.params || {};
		const pr = refreshProgress(r, diff, gr.desired || 0);
		const mine = acts.filter(a => a.kind && a.kind.startsWith('refresh_')).slice(-REFRESH_ACTS);
		fill(refreshEl,
			h('h3', null, `Refresh ${r.id} to ${r.template} version ${r.target_version} `, stateBadge(r.state)),
			h('dl', { class: 'facts' },
				h('dt', null, 'progress'), h('dd', { id: 'refresh-progress' },
					`batch ${pr.batch} of ${pr.batches} · ${pr.replaced} of ${pr.total} hosts replaced`),
				h('dt', null, 'parameters'), h('dd', { id: 'refresh-params' },
					`batch ${p.batch} · surge ${p.surge} · min healthy ${p.min_healthy} · warm-up ${fmtDuration(p.warmup_ms)}`,
					p.pause_after ? ` · pause after ${p.pause_after}` : '', p.rollback ? ' · rollback' : ''),
				h('dt', null, 'now'), h('dd', { id: 'refresh-reason' }, r.reason || ''),
				h('dt', null, 'time'), h('dd', { id: 'refresh-times' },
					`started ${fmtTime(r.started_ms)}`, r.updated_ms ? ` · updated ${fmtTime(r.updated_ms)}` : ''),
				r.hosts_replaced && r.hosts_replaced.length ? [h('dt', null, 'replaced'),
					h('dd', null, r.hosts_replaced.flatMap((n, i) => [i ? ', ' : '', link(`/host/${enc(cluster)}/${enc(n)}`, n)]))] : null),
			...buttons(r),
			h('div', { id: 'refresh-activities' }, activityTable(mine, false)));
	}

	function showRuns(runs) {
		fill(runsEl, table(['run', 'script', 'batch', 'hosts by step', 'state', 'by', 'started'], runs, x => {
			const pr = rollProgress(x);
			return [String(x.id), link('/scripts/' + enc(x.script), `${x.script} v${x.version}`),
				`${pr.batch} of ${pr.batches}`, steps(pr.steps), stateBadge(x.state), x.created_by || '', fmtTime(x.created_ms)];
		}, x => ({ dataset: { run: x.id, state: x.state } })));
	}

	// the latest refresh (null: none), from the list: a group without one
	// is an empty list, not a 404 the browser would log every poll
	async function readRefresh() {
		if (!api.has('GET', '/v1/refreshes')) return undefined;
		const r = await api.get('/v1/refreshes' + api.qs({ cluster, group: name, limit: 1 }));
		return r.items[0] || null;
	}

	async function readRuns() {
		if (!api.has('GET', '/v1/runs')) return null;
		const r = await api.get('/v1/runs' + api.qs({ state: 'running', limit: RUNS_MAX }));
		const mine = r.items.filter(x => x.rolling && x.target_kind === 'group' && x.target === `${cluster}/${name}`);
		return Promise.all(mine.map(x => api.get(`/v1/runs/${enc(x.id)}`)));
	}

	return {
		el,
		diff() {
			return api.getIf('/v1/groups/:name/diff', `/v1/groups/${enc(name)}/diff${q}`);
		},
		async show(gr, diff) {
			const [r, runs] = await Promise.all([readRefresh(), readRuns()]);
			if (!diff) {
				fill(summary, h('span', { class: 'muted' }, 'Template versions are not available on this server.'));
				fill(changes);
			} else {
				const n = (diff.behind || []).length;
				summary.dataset.behind = n;
				fill(summary, n ? `${n} of ${diff.hosts} hosts behind template version ${diff.version}`
					: `all ${diff.hosts} hosts on template ${diff.template} version ${diff.version}`);
				fill(changes, changeSummary(diff).map(c => h('li', null, h('code', null, c.line),
					c.hosts === n ? '' : h('span', { class: 'muted' }, ` (${c.hosts} of them)`))));
			}
			if (r === undefined) fill(refreshEl, h('p', { class: 'muted' }, 'Refreshes are not available on this server.'));
			else await showRefresh(r, gr, diff);
			if (runs === null) fill(runsEl, h('p', { class: 'muted' }, 'Script runs are not available on this server.'));
			else showRuns(runs);
		},
	};
}
