// admin.js - admin pages: API tokens (made here, shown once, removed) and
// the audit log of every change.

import * as api from '../api.js';
import { h, fill, table, section, enc, fmtTime } from '../dom.js';

export async function tokens(main) {
	const el = h('div', { id: 'tokens' });
	const name = h('input', { id: 'token-name', placeholder: 'name (a-z0-9-)', pattern: '[a-z0-9-]{1,63}' });
	const role = h('select', { id: 'token-role' }, ['viewer', 'operator', 'admin'].map(r => h('option', { value: r }, r)));
	const out = h('div', { class: 'msg', id: 'token-made' });
	const page = {
		async refresh() {
			const r = await api.get('/v1/tokens');
			const me = api.whoami().name;
			fill(el, table(['token', 'role', 'created', ''], r.items, t => [t.name, t.role, fmtTime(t.created_ms),
				t.name === me ? h('span', { class: 'muted' }, 'in use') :
					h('button', { class: 'small delete', onclick: async () => {
						if (!confirm(`Delete token ${t.name}?`)) return;
						try { await api.del('/v1/tokens/' + enc(t.name)); await page.refresh(); } catch (e) { out.textContent = e.message; }
					} }, 'delete')], t => ({ dataset: { name: t.name } })));
		},
	};
	main.append(h('h1', null, 'Tokens'),
		section('New token', h('form', { id: 'token-form', onsubmit: async ev => {
			ev.preventDefault();
			try {
				const t = await api.post('/v1/tokens', { role: role.value, ...(name.value ? { name: name.value } : {}) });
				fill(out, h('p', null, `Token ${t.name} (${t.role}) — shown only now:`), h('pre', { class: 'secret' }, t.token));
				name.value = '';
				await page.refresh();
			} catch (e) {
				fill(out, h('p', { class: 'error' }, e.message));
			}
		} }, name, ' ', role, ' ', h('button', { type: 'submit' }, 'Create')), out),
		section('Tokens', el));
	return page;
}

export async function audit(main) {
	const el = h('div', { id: 'audit' });
	main.append(h('h1', null, 'Audit log'), el);
	return {
		async refresh() {
			const r = await api.get('/v1/audit?limit=200');
			fill(el, table(['time', 'who', 'role', 'request', 'status', 'detail'], r.items, a => [
				fmtTime(a.ts_ms), a.who, a.role, `${a.method} ${a.path}`,
				h('span', { class: a.status >= 400 ? 'error' : 'ok' }, String(a.status)), a.detail || '',
			]));
		},
	};
}
