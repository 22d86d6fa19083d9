// alerts.js - the alerts page: the firing and pending alerts (newest
// first), the history newest first, paged back with the API's cursor
// (before=) and filtered by rule and group, the silences in force with making one (a rule, for a duration)
// and deleting one (operator). Also the active-alerts table the group
// page shows and the navigation's count of firing alerts.

import * as api from '../api.js';
import { h, fill, link, table, section, notice, enc, fmtTime, fmtAge, fmtNum } from '../dom.js';

const HISTORY_ROWS = 50;   // events a history page shows

function badge(cls, text) {
	return h('span', { class: 'state ' + cls }, text);
}

function severity(s) {
	return badge('sev-' + (s || 'warning'), s || 'warning');
}

function groupLink(x) {
	if (!x.group) return x.cluster || '';
	return link(`/group/${enc(x.cluster)}/${enc(x.group)}`, `${x.cluster}/${x.group}`);
}

function labels(l) {
	return Object.entries(l || {}).map(([k, v]) => `${k}=${v}`).join(' ');
}

// Newest first: by when the instance entered its state.
export function byNewest(items) {
	return items.slice().sort((a, b) => (b.since_ms || 0) - (a.since_ms || 0));
}

// Counts for the navigation: firing and not silenced (what needs someone),
// and the rest for its title.
export function alertCounts(items) {
	const c = { firing: 0, pending: 0, silenced: 0 };
	for (const a of items) {
		if (a.silenced) c.silenced++;
		else if (a.state === 'firing') c.firing++;
		else c.pending++;
	}
	return c;
}

// The active alerts (GET /v1/alerts) as a table; showGroup adds the group.
export function activeTable(items, showGroup) {
	const cols = ['severity', 'state', 'rule', ...(showGroup ? ['group'] : []), 'key', 'summary', 'value', 'since'];
	return table(cols, byNewest(items), a => [
		severity(a.severity),
		[badge('a-' + a.state, a.state), a.silenced ? [' ', badge('a-silenced', 'silenced')] : null],
		a.rule,
		...(showGroup ? [groupLink(a)] : []),
		a.key || '',
		a.summary || '',
		fmtNum(a.value),
		h('span', { title: fmtTime(a.since_ms) }, fmtAge(Date.now() - a.since_ms)),
	], a => ({ dataset: { rule: a.rule, state: a.state, group: `${a.cluster}/${a.group}`, key: a.key || '',
		silenced: String(!!a.silenced) } }));
}

function historyTable(items) {
	return table(['time', 'event', 'severity', 'rule', 'group', 'key', 'summary', 'value', 'labels'], items, e => [
		fmtTime(e.ts_ms),
		[badge('a-' + e.state, e.repeat ? 'reminder' : e.state), e.silenced ? [' ', badge('a-silenced', 'silenced')] : null],
		severity(e.severity), e.rule, groupLink(e), e.key || '', e.summary || '', fmtNum(e.value), labels(e.labels),
	], e => ({ dataset: { event: e.id, rule: e.rule, state: e.state, group: `${e.cluster}/${e.group}` } }));
}

function scope(s) {
	if (s.group) return `group ${s.cluster}/${s.group}`;
	if (s.cluster) return `cluster ${s.cluster}`;
	return 'everywhere';
}

export async function render(main) {
	const activeEl = h('div', { id: 'alerts-active' });
	const historyEl = h('div', { id: 'alert-history' });
	const silencesEl = h('div', { id: 'silences' });
	const groups = (await api.get('/v1/groups?limit=1000')).items.map(g => `${g.cluster}/${g.name}`);
	const groupOptions = first => [h('option', { value: '' }, first), groups.map(g => h('option', { value: g }, g))];

	// the history's page: cursors of the newer pages (prev), its own (0 =
	// from the newest), the next older page's
	const paging = { newer: [], at: '0', next: null };
	const reset = () => {
		paging.newer = [];
		paging.at = '0';
		page.refresh();
	};
	const ruleIn = h('input', { id: 'history-rule', type: 'text', placeholder: 'any rule', spellcheck: 'false',
		onchange: reset });
	const groupSel = h('select', { id: 'history-group', class: 'window', onchange: reset }, groupOptions('any group'));
	const pageInfo = h('span', { class: 'muted', id: 'history-page' });
	const prevBtn = h('button', { id: 'history-prev', class: 'small', type: 'button', onclick: () => {
		paging.at = paging.newer.pop() ?? '0';
		page.refresh();
	} }, '‹ newer');
	const nextBtn = h('button', { id: 'history-next', class: 'small', type: 'button', onclick: () => {
		if (!paging.next) return;
		paging.newer.push(paging.at);
		paging.at = String(paging.next);
		page.refresh();
	} }, 'older ›');
	const pager = h('div', { class: 'pager' }, ruleIn, ' ', groupSel, ' ', prevBtn, ' ', nextBtn, ' ', pageInfo);

	let form = null;
	const writable = api.can('operator') && api.has('POST', '/v1/alerts/silences');
	if (writable) {
		const rule = h('input', { id: 'silence-rule', type: 'text', required: true, placeholder: 'rule', spellcheck: 'false' });
		const where = h('select', { id: 'silence-group', class: 'window' }, groupOptions('every group'));
		const dur = h('input', { id: 'silence-for', type: 'text', required: true, value: '2h', class: 'num' });
		const reason = h('input', { id: 'silence-reason', type: 'text', required: true, placeholder: 'reason' });
		const msg = h('span', { class: 'msg', id: 'silence-msg' });
		const btn = h('button', { type: 'submit' }, 'Silence');
		form = h('form', { class: 'scale-form', id: 'silence', onsubmit: async ev => {
			ev.preventDefault();
			btn.disabled = true;
			msg.textContent = '';
			const [cluster, group] = where.value ? where.value.split('/') : [];
			try {
				const r = await api.post('/v1/alerts/silences', { rule: rule.value.trim(), cluster, group,
					for: dur.value.trim(), reason: reason.value });
				msg.textContent = `silence ${r.id} until ${fmtTime(r.until_ms)}`;
				msg.className = 'msg ok';
				await page.refresh();
			} catch (e) {
				msg.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
				msg.className = 'msg error';
			} finally {
				btn.disabled = false;
			}
		} }, h('label', { for: 'silence-rule' }, 'Silence '), rule, ' in ', where, ' for ', dur, ' because ', reason, ' ', btn, msg);
	}

	async function unsilence(s) {
		if (!confirm(`Delete silence ${s.id} of ${s.rule}?`)) return;
		try {
			await api.del(`/v1/alerts/silences/${enc(s.id)}`);
			await page.refresh();
		} catch (e) {
			alert(e.message);
		}
	}

	main.append(h('h1', null, 'Alerts'),
		section('Firing and pending', activeEl),
		section('History', pager, historyEl),
		section('Silences', form, writable ? null : h('p', { class: 'muted' }, 'Making and deleting silences needs the operator role.'),
			silencesEl));

	const page = {
		async refresh() {
			if (!api.has('GET', '/v1/alerts')) {
				fill(activeEl, notice('Alerts are not available on this server.'));
				return;
			}
			const [cluster, group] = groupSel.value ? groupSel.value.split('/') : [];
			const [act, hist, sil] = await Promise.all([
				api.get('/v1/alerts'),
				api.get('/v1/alerts/history' + api.qs({ before: paging.at, limit: HISTORY_ROWS,
					rule: ruleIn.value.trim(), cluster, group })),
				api.get('/v1/alerts/silences'),
			]);
			fill(activeEl, activeTable(act.items, true));
			paging.next = hist.next ?? null;
			const first = paging.newer.length * HISTORY_ROWS;
			fill(pageInfo, hist.items.length ? `events ${first + 1}–${first + hist.items.length}, newest first` : 'no events');
			prevBtn.disabled = paging.newer.length === 0;
			nextBtn.disabled = !paging.next;
			fill(historyEl, historyTable(hist.items));
			const cols = ['id', 'rule', 'scope', 'until', 'reason', 'by', 'made'];
			if (writable) cols.push('');
			fill(silencesEl, table(cols, sil.items, s => {
				const c = [s.id, s.rule, scope(s), fmtTime(s.until_ms), s.reason || '', s.created_by || '', fmtTime(s.created_ms)];
				if (writable) c.push(h('button', { class: 'delete small', type: 'button', onclick: () => unsilence(s) }, 'delete'));
				return c;
			}, s => ({ dataset: { silence: s.id, rule: s.rule } })));
		},
	};
	return page;
}
