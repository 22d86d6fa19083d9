// scripts.js - the script library (every script, its content), running a
// script on a host, a group or a cluster with its output shown live as the
// hosts send it, and the runs panel that the host page reuses.

import * as api from '../api.js';
import { h, fill, link, table, section, notice, enc, fmtTime, stateBadge } from '../dom.js';

export function runsAvailable() {
	return api.has('GET', '/v1/runs');
}

// The output of one run, per host: followed chunk by chunk while the run
// goes on (GET /v1/runs/:id/logs?follow=1&offset=C&wait=0), read whole once
// it has ended.
class RunView {
	constructor(id, host) {
		this.id = id;
		this.host = host;          // "cluster/name" to show one host only
		this.cursor = 0;
		this.out = new Map();      // host -> {stdout, stderr}
		this.final = null;         // the whole logs once the run ended
		this.el = h('div', { class: 'run-detail', id: 'run-' + id, dataset: { run: id } });
	}

	async refresh() {
		const run = await api.get(`/v1/runs/${enc(this.id)}`);
		const hq = this.host ? { host: this.host } : {};
		if (run.state === 'running') {
			for (let i = 0; i < 20; i++) {
				const r = await api.get(`/v1/runs/${enc(this.id)}/logs` + api.qs({ follow: 1, offset: this.cursor, wait: 0, ...hq }));
				for (const c of r.chunks) {
					const o = this.out.get(c.host) || { stdout: '', stderr: '' };
					o[c.stream] += c.data;
					this.out.set(c.host, o);
				}
				this.cursor = r.offset;
				if (r.done || !r.chunks.length) break;
			}
		} else if (this.final === null) {
			this.final = await api.get(`/v1/runs/${enc(this.id)}/logs` + api.qs(hq));
		}
		const hosts = (this.final ? this.final.hosts : run.hosts)
			.filter(x => !this.host || `${x.cluster}/${x.host}` === this.host);
		this.el.dataset.state = run.state;
		fill(this.el, h('h3', null, `Run ${run.id}: ${run.script} v${run.version} on ${run.target_kind} ${run.target} — `,
			stateBadge(run.state), run.summary ? ' ' + run.summary : ''),
		hosts.length ? hosts.map(x => {
			const o = this.final ? x : (this.out.get(x.host) || {});
			return h('div', { class: 'run-host', dataset: { host: x.host, state: x.state } },
				h('p', null, h('strong', null, x.host), ' ', stateBadge(x.state),
					x.exit_code !== null && x.exit_code !== undefined ? ` exit ${x.exit_code}` : '',
					x.reason ? ' · ' + x.reason : '',
					x.duration_ms !== null && x.duration_ms !== undefined ? ` · ${(x.duration_ms / 1000).toFixed(1)} s` : ''),
				o.stdout ? h('pre', { class: 'out' }, o.stdout) : null,
				o.stderr ? h('pre', { class: 'err' }, o.stderr) : null);
		}) : notice('no host in this run'));
	}
}

// A panel of recent runs; for a host page (filter {host, cluster, group})
// only the runs that included that host. A click opens a run's output.
export function runsPanel(filter) {
	const el = h('div', { class: 'runs' });
	const hostKey = filter.host ? `${filter.cluster}/${filter.host}` : null;
	const member = new Map();      // run id -> bool, for ended runs
	let view = null;

	async function includesHost(r) {
		if (!hostKey) return true;
		if (r.target_kind === 'host') return r.target === hostKey;
		if (r.target_kind === 'group' && r.target !== `${filter.cluster}/${filter.group}`) return false;
		if (r.target_kind === 'cluster' && r.target !== filter.cluster) return false;
		if (member.has(r.id)) return member.get(r.id);
		const full = await api.get(`/v1/runs/${enc(r.id)}`);
		const yes = full.hosts.some(x => `${x.cluster}/${x.host}` === hostKey);
		if (full.state !== 'running') member.set(r.id, yes);
		return yes;
	}

	const panel = {
		el,
		open(id) {
			view = new RunView(id, hostKey);
		},
		async refresh() {
			if (!runsAvailable()) {
				fill(el, notice('Script runs are not available on this server.'));
				return;
			}
			const r = await api.get('/v1/runs' + api.qs({ limit: hostKey ? 50 : 20 }));
			const items = [];
			for (const x of r.items) if (await includesHost(x)) items.push(x);
			if (view) await view.refresh();
			fill(el, table(['run', 'script', 'target', 'state', 'hosts', 'by', 'started'], items, x => [
				h('a', { href: '#', class: 'open-run', onclick: ev => { ev.preventDefault(); panel.open(x.id); panel.refresh(); } }, String(x.id)),
				`${x.script} v${x.version}`, `${x.target_kind} ${x.target}`, stateBadge(x.state), x.summary || '',
				x.created_by || '', fmtTime(x.created_ms)],
			x => ({ dataset: { run: x.id, state: x.state }, class: view && x.id === view.id ? 'selected' : null })),
			view ? view.el : null);
		},
	};
	return panel;
}

export async function render(main, ctx, name) {
	const lib = h('div', { id: 'library' });
	const view = h('div', { id: 'script-view' });
	const runs = runsPanel({});
	main.append(h('h1', null, 'Scripts'), section('Library', lib), view, section('Runs', runs.el));

	if (name) {
		const s = await api.get(`/v1/scripts/${enc(name)}`);
		let form = null;
		if (api.can('operator') && api.has('POST', '/v1/runs')) {
			const kind = h('select', { id: 'run-kind' }, ['group', 'host', 'cluster'].map(k => h('option', { value: k }, k)));
			const target = h('input', { id: 'run-target', placeholder: 'CLUSTER/NAME', required: true });
			const msg = h('span', { class: 'msg', id: 'run-msg' });
			const btn = h('button', { class: 'run', type: 'submit' }, 'Run');
			form = h('form', { class: 'run-form', id: 'run', onsubmit: async ev => {
				ev.preventDefault();
				btn.disabled = true;
				msg.textContent = '';
				try {
					const r = await api.post('/v1/runs', { script: name, [kind.value]: target.value.trim() });
					msg.textContent = `run ${r.id} started (${r.summary})`;
					msg.className = 'msg ok';
					runs.open(r.id);
					await runs.refresh();
				} catch (e) {
					msg.textContent = e.message;
					msg.className = 'msg error';
				} finally {
					btn.disabled = false;
				}
			} }, 'Run on ', kind, ' ', target, ' ', btn, ' ', msg);
		}
		fill(view, section(`${s.name}${s.latest ? ' v' + s.latest : ''}`,
			s.description ? h('p', null, s.description) : null,
			h('p', { class: 'muted' }, `interpreter ${s.interpreter || ''}${s.builtin ? ' · built-in' : ''}`),
			form, h('pre', { class: 'script', id: 'script-content' }, s.content || '')));
	}

	return {
		async refresh() {
			const r = await api.get('/v1/scripts?limit=1000');
			fill(lib, table(['script', 'version', 'interpreter', 'description'], r.items, s => [
				link('/scripts/' + enc(s.name), s.name), s.latest || '', s.interpreter || '', s.description || '',
			], s => ({ dataset: { script: s.name }, class: s.name === name ? 'selected' : null })));
			await runs.refresh();
		},
	};
}
