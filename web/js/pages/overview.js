// overview.js - clusters and their groups (min/desired/max, hosts by
// state), the hosts that are failing, and the latest activities.

import * as api from '../api.js';
import { h, fill, link, table, section, enc, fmtTime, stateBadge } from '../dom.js';

const ORDER = ['ready', 'launching', 'booting', 'initializing', 'unhealthy', 'failed', 'terminating'];
export const FAILING = new Set(['failed', 'unhealthy']);

export function stateCounts(hosts) {
	const c = {};
	for (const x of hosts) c[x.state] = (c[x.state] || 0) + 1;
	const keys = Object.keys(c).sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
	return h('span', { class: 'counts' }, keys.length ? keys.map(k => h('span', { class: 'count s-' + k }, `${k} ${c[k]}`)) : 'no hosts');
}

export function activityTable(items, showGroup) {
	const rows = items.slice().reverse();
	return table(showGroup ? ['time', 'group', 'host', 'what', 'cause', 'reason'] : ['time', 'host', 'what', 'cause', 'reason'],
		rows, a => {
			const cells = [fmtTime(a.ts_ms), a.host || '', h('span', { class: 'kind k-' + a.kind }, a.kind), a.cause || '', a.reason || ''];
			if (showGroup) cells.splice(1, 0, a.group ? link(`/group/${enc(a.cluster)}/${enc(a.group)}`, `${a.cluster}/${a.group}`) : a.cluster || '');
			return cells;
		}, a => ({ dataset: { activity: a.id } }));
}

export async function render(main) {
	const clusters = h('div', { id: 'clusters' });
	const failing = h('div', { id: 'failing' });
	const acts = h('div', { id: 'activities' });
	main.append(h('h1', null, 'Overview'), clusters,
		section('Failing hosts', failing), section('Recent activities', acts));

	return {
		async refresh() {
			const [cl, gr, ho, ac] = await Promise.all([
				api.get('/v1/clusters?limit=1000'), api.get('/v1/groups?limit=1000'),
				api.get('/v1/hosts'), api.get('/v1/activities?limit=20')]);
			fill(clusters, cl.items.length ? cl.items.map(c => {
				const groups = gr.items.filter(g => g.cluster === c.name);
				return h('section', { class: 'card cluster', dataset: { cluster: c.name } },
					h('h2', null, 'Cluster ', c.name, c.description ? h('small', null, ' — ' + c.description) : null),
					table(['group', 'template', 'min', 'desired', 'max', 'hosts'], groups, g => [
						link(`/group/${enc(c.name)}/${enc(g.name)}`, g.name),
						g.template, g.min, g.desired, g.max,
						stateCounts(ho.items.filter(x => x.cluster === c.name && x.group === g.name)),
					], g => ({ dataset: { group: g.name } })));
			}) : h('p', { class: 'notice' }, 'No clusters yet: `herd apply -f blueprint.yaml` makes them.'));
			const bad = ho.items.filter(x => FAILING.has(x.state));
			fill(failing, bad.length ? table(['host', 'group', 'state', 'reason', 'since'], bad, x => [
				link(`/host/${enc(x.cluster)}/${enc(x.name)}`, x.name),
				link(`/group/${enc(x.cluster)}/${enc(x.group)}`, `${x.cluster}/${x.group}`),
				stateBadge(x.state), x.reason || '', x.heartbeat || x.created || '',
			]) : h('p', { class: 'ok' }, 'none'));
			fill(acts, activityTable(ac.items, true));
		},
	};
}
