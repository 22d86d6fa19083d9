// resources.js - the plain declarative kinds as tables: templates,
// networks, load balancers (with their members and each member's state
// when the server reports them).

import * as api from '../api.js';
import { h, fill, table, section, notice, enc, stateBadge } from '../dom.js';

const list = v => Array.isArray(v) ? v.join(', ') : v === undefined || v === null ? '' : String(v);

function simple(title, path, cols, cells) {
	return async main => {
		const el = h('div', { id: 'list' });
		main.append(h('h1', null, title), el);
		return {
			async refresh() {
				const r = await api.get(path + '?limit=1000');
				fill(el, table(cols, r.items, cells, x => ({ dataset: { name: x.name } })));
			},
		};
	};
}

export const templates = simple('Templates', '/v1/templates',
	['template', 'account', 'network', 'image', 'type', 'init scripts', 'load balancer', 'labels'],
	t => [t.name, t.account || '', t.network || '', t.image || '', t.instance_type || '', list(t.init),
		t.load_balancer || '', Object.entries(t.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ')]);

export const networks = simple('Networks', '/v1/networks',
	['network', 'account', 'CIDR', 'description'],
	n => [n.name, n.account || '', n.cidr || '', n.description || '']);

export async function lbs(main) {
	const el = h('div', { id: 'list' });
	const members = h('div', { id: 'members' });
	main.append(h('h1', null, 'Load balancers'), el, members);
	const withMembers = api.has('GET', '/v1/lbs/:name/members');
	return {
		async refresh() {
			const r = await api.get('/v1/lbs?limit=1000');
			fill(el, table(['load balancer', 'network', 'listen', 'backend port', 'mode', 'algorithm', 'description'], r.items,
				l => [l.name, l.network || '', l.listen || '', l.backend_port || '', l.mode || 'tcp', l.algorithm || '', l.description || ''],
				l => ({ dataset: { name: l.name } })));
			if (!withMembers) {
				fill(members, notice('Member state is not available on this server.'));
				return;
			}
			const all = await Promise.all(r.items.map(l => api.get(`/v1/lbs/${enc(l.name)}/members`)
				.then(m => [l, m]).catch(e => [l, { error: e.message }])));
			fill(members, all.map(([l, m]) => {
				const e = m.engine || {};
				return section(`${l.name} members`, m.error ? notice(m.error, 'error') : [
					h('p', { class: 'muted' }, `${m.driver || ''} engine: `,
						h('span', { class: e.ok === false ? 'error' : 'ok' }, e.ok === false ? 'down' : 'up'),
						e.message ? ' · ' + e.message : '', e.problem ? ' · ' + e.problem : ''),
					table(['member', 'group', 'host state', 'address', 'state', 'status', 'check', 'sessions'], m.items || [], x => [
						x.host || x.host_id || '', x.group ? `${x.cluster}/${x.group}` : '', x.host_state ? stateBadge(x.host_state) : '',
						x.address || '', stateBadge(x.state), x.status || '', x.check_status || '', x.scur ?? ''],
					x => ({ dataset: { member: x.host || x.host_id, state: x.state } }))]);
			}));
		},
	};
}
