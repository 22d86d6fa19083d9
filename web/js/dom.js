// dom.js - the console's whole "framework": h() makes elements, a few
// formatters. Text goes in as text nodes, never as HTML, so data from the
// API cannot inject markup; styles are classes (the CSP has no inline styles).

// h('tr', {class: 'x', dataset: {host: 'n'}, onclick: f}, 'text', child, [more])
export function h(tag, attrs, ...kids) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k === 'class') el.className = v;
		else if (k === 'dataset') Object.assign(el.dataset, v);
		else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
		else if (k in el && typeof v !== 'string') el[k] = v;
		else el.setAttribute(k, v === true ? '' : v);
	}
	add(el, kids);
	return el;
}

function add(el, kids) {
	for (const k of kids) {
		if (k === null || k === undefined || k === false) continue;
		if (Array.isArray(k)) add(el, k);
		else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
	}
}

// Replaces el's children.
export function fill(el, ...kids) {
	el.replaceChildren();
	add(el, kids);
	return el;
}

export function link(hash, text, attrs) {
	return h('a', { href: '#' + hash, ...attrs }, text);
}

// A table from column titles and rows of cells; rowAttrs(row) per row.
export function table(cols, rows, cells, rowAttrs) {
	return h('table', { class: 'grid' },
		h('thead', null, h('tr', null, cols.map(c => h('th', null, c)))),
		h('tbody', null, rows.length ? rows.map((r, i) => h('tr', rowAttrs ? rowAttrs(r) : null,
			cells(r, i).map(c => h('td', null, c))))
			: h('tr', null, h('td', { class: 'empty', colSpan: cols.length }, 'none'))));
}

export function section(title, ...kids) {
	return h('section', { class: 'card' }, h('h2', null, title), ...kids);
}

export function notice(text, kind) {
	return h('p', { class: 'notice ' + (kind || '') }, text);
}

export const enc = encodeURIComponent;

export function fmtTime(ms) {
	if (!ms) return '';
	const d = new Date(ms);
	const p = n => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtAge(ms) {
	if (ms === null || ms === undefined || ms < 0) return '';
	const s = Math.floor(ms / 1000);
	if (s < 60) return s + 's';
	if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
	if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
	return Math.floor(s / 86400) + 'd' + Math.floor(s / 3600) % 24 + 'h';
}

export function fmtNum(v, unit) {
	if (v === null || v === undefined || Number.isNaN(v)) return '';
	const a = Math.abs(v);
	const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, '') || '0';
	return unit ? s + unit : s;
}

export function fmtBytes(v) {
	if (v === null || v === undefined) return '';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
	return fmtNum(v) + ' ' + u[i];
}

export function stateBadge(state) {
	return h('span', { class: 'state s-' + (state || 'unknown') }, state || '?');
}
