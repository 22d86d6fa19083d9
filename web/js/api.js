// api.js - the API client: the token lives in sessionStorage (gone with the
// tab, never in a URL) and goes out as "Authorization: Bearer"; who am I and
// which endpoints this server has (GET /v1/endpoints) are learnt once at
// sign-in, so pages hide what would fail and skip endpoints that are absent
// instead of probing them.

const KEY = 'herd.token';
const RANK = { viewer: 1, operator: 2, admin: 3 };
let me = null;          // {name, role}
let endpoints = null;   // Set of "METHOD /pattern"

export class ApiError extends Error {
	constructor(status, body) {
		const e = (body && body.error) || {};
		super(e.message || `HTTP ${status}`);
		this.status = status;
		this.code = e.code;
		this.field = e.field;
	}
}

export function signedIn() {
	return !!sessionStorage.getItem(KEY) && me !== null;
}

export function hasToken() {
	return !!sessionStorage.getItem(KEY);
}

export function signOut() {
	sessionStorage.removeItem(KEY);
	me = null;
	endpoints = null;
}

// Checks tok with /v1/whoami and keeps it; throws ApiError when refused.
export async function signIn(tok) {
	sessionStorage.setItem(KEY, tok.trim());
	try {
		await load();
	} catch (e) {
		signOut();
		throw e;
	}
}

// (Re)loads who we are and the endpoint list for the stored token.
export async function load() {
	const [w, r] = await Promise.all([get('/v1/whoami'), get('/v1/endpoints')]);
	me = w;
	endpoints = new Set(r.items.map(e => e.method + ' ' + e.path));
}

export function whoami() { return me; }

// True if the signed-in role is at least `role`.
export function can(role) {
	return me !== null && (RANK[me.role] || 0) >= RANK[role];
}

// True if this server has the endpoint (pattern as in routes.def).
export function has(method, pattern) {
	return endpoints !== null && endpoints.has(method + ' ' + pattern);
}

// "?a=1&b=x" from an object, skipping null/undefined/''.
export function qs(params) {
	const u = new URLSearchParams();
	for (const [k, v] of Object.entries(params || {}))
		if (v !== null && v !== undefined && v !== '') u.set(k, v);
	const s = u.toString();
	return s ? '?' + s : '';
}

let onAuthLost = () => {};
export function setOnAuthLost(fn) { onAuthLost = fn; }

export async function call(method, path, body) {
	const headers = { Authorization: 'Bearer ' + (sessionStorage.getItem(KEY) || '') };
	const init = { method, headers, cache: 'no-store' };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	let r;
	try {
		r = await fetch(path, init);
	} catch (e) {
		// A network error (no HTTP answer): a GET is safe to ask once more,
		// e.g. after the browser dropped its connections because the
		// machine's interfaces changed (ERR_NETWORK_CHANGED).
		if (method !== 'GET') throw e;
		await new Promise(res => setTimeout(res, 300));
		r = await fetch(path, init);
	}
	let data = null;
	const text = await r.text();
	if (text) {
		try { data = JSON.parse(text); } catch { data = null; }
	}
	if (!r.ok) {
		const err = new ApiError(r.status, data);
		if (r.status === 401 && me !== null) {
			signOut();
			onAuthLost(err);
		}
		throw err;
	}
	return data;
}

export const get = p => call('GET', p);
export const post = (p, b) => call('POST', p, b === undefined ? {} : b);
export const del = p => call('DELETE', p);

// GET that answers null instead of failing when the server lacks the
// endpoint (pattern as in routes.def): panels then say "not available".
export async function getIf(pattern, path) {
	if (!has('GET', pattern)) return null;
	return get(path);
}
