// metrics.js - reads the metric store through the API (/v1/metrics/...),
// in the shapes the charts take: [{name, points: [[ts_ms, value], ...]}].
// Every call answers null when this server has no metrics endpoints, so a
// panel can say "not available" instead of failing.

import * as api from './api.js';

// The agent's system series (docs/agent-metrics.md) shown in tables/charts.
// (cpu, memory, load and disk are the machine's on the local provider:
// its hosts share one kernel; network is each host's own.)
export const SYSTEM = [
	{ metric: 'cpu_busy_pct', title: 'CPU busy', unit: '%', zero: true },
	{ metric: 'mem_used_pct', title: 'Memory used', unit: '%', zero: true },
	{ metric: 'load1', title: 'Load (1 min)', unit: '', zero: true },
	{ metric: 'disk_used_pct', title: 'Disk used', unit: '%', zero: true },
	{ metric: 'net_rx_bytes_per_s', title: 'Network in', unit: 'B/s', zero: true },
	{ metric: 'net_tx_bytes_per_s', title: 'Network out', unit: 'B/s', zero: true },
];

export function available() {
	return api.has('GET', '/v1/metrics/query');
}

// A step that keeps a window at ~200 points per series (a chart is 500-700
// pixels wide: more points add bytes, not detail), never below minStepS.
export function stepFor(sinceS, minStepS) {
	return Math.max(minStepS || 1, Math.ceil(sinceS / 200));
}

function points(s) {
	const ps = s.points || s.values || [];
	return ps.map(p => Array.isArray(p) ? [p[0], p[1]] : [p.ts_ms ?? p.t, p.value ?? p.v])
		.filter(p => p[1] !== null && p[1] !== undefined);
}

function seriesName(s) {
	const l = s.labels || {};
	return s.host || l.host || s.name || l.name || s.metric || '?';
}

// The answer of /v1/metrics/query as [{name, labels, points}].
export function parseSeries(r) {
	const list = r.series || r.items || (r.points ? [r] : []);
	return list.map(s => ({ name: seriesName(s), labels: s.labels || {}, points: points(s) }));
}

// Each host's series of metric in a group (or of one host).
export async function query(params) {
	if (!available()) return null;
	return parseSeries(await api.get('/v1/metrics/query' + api.qs(params)));
}

export async function perHost(metric, { cluster, group, host, sinceS, stepS }) {
	return query({ metric, cluster, group, host, since: sinceS + 's', step: stepS ? stepS + 's' : undefined });
}

// The group's aggregate agg of metric; toMs (optional) ends the window, so
// several aggregates asked one after the other share one step grid.
export async function aggregate(metric, { cluster, group, agg, sinceS, stepS, toMs }) {
	const s = await query({ metric, cluster, group, agg, since: sinceS + 's', step: stepS + 's', to: toMs });
	if (s === null) return null;
	return s.length ? s[0].points : [];
}

// Latest value of metric per host of a group: Map(host -> value). hosts
// (names, at most 100) asks for those hosts only: the rows a page shows,
// not the whole group's series (an empty list asks nothing).
export async function latest(metric, { cluster, group, hosts }) {
	if (!api.has('GET', '/v1/metrics/latest')) return null;
	const m = new Map();
	if (hosts && !hosts.length) return m;
	const only = hosts ? hosts.join(',') : undefined;
	// pages of at most 1,000 series; a group view stops after 20 pages
	let after;
	for (let page = 0; page < 20; page++) {
		const r = await api.get('/v1/metrics/latest' + api.qs({ metric, cluster, group, hosts: only, after }));
		for (const s of r.items || r.series || []) m.set(seriesName(s), s.value ?? (s.points && s.points.length ? s.points[s.points.length - 1][1] : null));
		if (!r.next) break;
		after = r.next;
	}
	return m;
}

// "avg(busy) > 32" -> {agg: 'avg', metric: 'busy', op: '>', value: 32}.
export function parseRule(text) {
	const m = /^\s*(avg|min|max|sum|count)\s*\(\s*([A-Za-z0-9_.:-]+)\s*\)\s*(>=|<=|==|=|>|<)\s*(-?[0-9.]+)/.exec(text || '');
	return m ? { agg: m[1], metric: m[2], op: m[3], value: Number(m[4]) } : null;
}
