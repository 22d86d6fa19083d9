/* api.c - the API's plumbing: authentication (tokens and host credentials,
 * stored only as SHA-256 hashes), role checks, JSON bodies with limits,
 * error answers naming the field, and the audit trail of every mutation. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "model/audit.h"
#include "model/host.h"
#include "model/token.h"
#include "store/store.h"
#include "util.h"

#define JSON_MAX_DEPTH 64

const char *
req_param(struct req *rq, int i)
{
	return i < rq->nparams ? rq->params[i] : NULL;
}

const char *
req_query(struct req *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *
role_name(enum role r)
{
	switch (r) {
	case ROLE_HOST: return "host";
	case ROLE_VIEWER: return "viewer";
	case ROLE_OPERATOR: return "operator";
	case ROLE_ADMIN: return "admin";
	default: return "none";
	}
}

enum role
role_parse(const char *s)
{
	if (s == NULL)
		return ROLE_NONE;
	if (strcmp(s, "viewer") == 0)
		return ROLE_VIEWER;
	if (strcmp(s, "operator") == 0)
		return ROLE_OPERATOR;
	if (strcmp(s, "admin") == 0)
		return ROLE_ADMIN;
	return ROLE_NONE;
}

bool
req_role_at_least(const struct req *rq, enum role r)
{
	return rq->who.role != ROLE_HOST && rq->who.role >= r;
}

void
reply_json(struct req *rq, int status, json_t *body)
{
	json_decref(rq->resp);
	rq->status = status;
	rq->resp = body;
}

void
reply_err(struct req *rq, const struct herr *err)
{
	json_t *e = json_pack("{s:s,s:s}", "code", herr_word(err->code), "message",
			      err->msg[0] ? err->msg : herr_word(err->code));

	if (err->field[0])
		json_object_set_new(e, "field", json_string(err->field));
	reply_json(rq, herr_http_status(err->code), json_pack("{s:o}", "error", e));
}

void
reply_errf(struct req *rq, int code, const char *field, const char *fmt, ...)
{
	struct herr err = HERR_INIT;
	va_list ap;

	err.code = code;
	snprintf(err.field, sizeof(err.field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	reply_err(rq, &err);
}

void
reply_raw(struct req *rq, int status, const char *ctype, char *data, size_t n, bool is_static)
{
	if (!rq->raw_static)
		free(rq->raw);
	rq->status = status;
	rq->raw = data;
	rq->raw_len = n;
	rq->raw_static = is_static;
	rq->ctype = ctype;
}

/* Depth of a JSON text, counted without parsing, so a 10,000-deep array is
 * refused before jansson recurses into it. Strings are skipped. */
static int
json_depth(const char *p, size_t n)
{
	int depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
			if (max > JSON_MAX_DEPTH)
				return max;
		} else if (c == ']' || c == '}')
			depth--;
	}
	return max;
}

json_t *
req_json(struct req *rq)
{
	json_error_t jerr;

	if (rq->json)
		return rq->json;
	if (rq->body.len == 0) {
		reply_errf(rq, HERR_INVALID, "", "request body must be a JSON object");
		return NULL;
	}
	if (json_depth(rq->body.p, rq->body.len) > JSON_MAX_DEPTH) {
		reply_errf(rq, HERR_INVALID, "", "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
		return NULL;
	}
	rq->json = json_loadb(rq->body.p, rq->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (rq->json == NULL) {
		reply_errf(rq, HERR_INVALID, "", "invalid JSON at line %d column %d: %s", jerr.line,
			   jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(rq->json)) {
		json_decref(rq->json);
		rq->json = NULL;
		reply_errf(rq, HERR_INVALID, "", "request body must be a JSON object");
		return NULL;
	}
	return rq->json;
}

/* Resolved credentials are cached for a moment (keyed by a keyed 128-bit
 * SipHash of the token, cache_hash: a hit costs no SHA-256, which only the
 * store's lookup needs), so a busy client costs one store lookup per AUTH_CACHE_MS,
 * not per request.
 * A slot is good only under the credentials generation it was filled in:
 * token_invalidate() (token deleted, host terminated) empties the cache. */
#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_MS 2000

struct auth_slot {
	unsigned char key[CACHE_HASH_BYTES];
	struct principal who;
	int64_t until_ms;
	uint64_t generation;    /* token_generation() when filled */
};

static struct auth_slot auth_cache[AUTH_CACHE_SLOTS];
static pthread_rwlock_t auth_lock = PTHREAD_RWLOCK_INITIALIZER;

void
auth_invalidate(void)
{
	token_invalidate();
}

static struct auth_slot *
auth_slot(const unsigned char *key)
{
	unsigned h = (unsigned)key[0] << 8 | key[1];

	return &auth_cache[h % AUTH_CACHE_SLOTS];
}

static bool
auth_cached(const unsigned char *key, struct principal *who)
{
	struct auth_slot *sl = auth_slot(key);
	uint64_t gen = token_generation();
	bool hit;

	pthread_rwlock_rdlock(&auth_lock);
	hit = sl->until_ms > mono_ms() && sl->generation == gen &&
	      mem_ct_equal(sl->key, key, CACHE_HASH_BYTES);
	if (hit)
		*who = sl->who;
	pthread_rwlock_unlock(&auth_lock);
	return hit;
}

/* Remembers who under gen, the generation read before its lookup: a
 * token_invalidate() during the lookup leaves the slot already stale. */
static void
auth_remember(const unsigned char *key, const struct principal *who, uint64_t gen)
{
	struct auth_slot *sl = auth_slot(key);

	pthread_rwlock_wrlock(&auth_lock);
	memcpy(sl->key, key, sizeof(sl->key));
	sl->who = *who;
	sl->until_ms = mono_ms() + AUTH_CACHE_MS;
	sl->generation = gen;
	pthread_rwlock_unlock(&auth_lock);
}

/* Resolves the bearer token into rq->who. */
static void
authenticate(struct req *rq)
{
	const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	struct herr err = HERR_INIT;
	unsigned char key[CACHE_HASH_BYTES];
	char hash[65];
	uint64_t gen;
	size_t n;

	memset(&rq->who, 0, sizeof(rq->who));
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return;
	h += 7;
	if ((n = strlen(h)) > 200)
		return;
	cache_hash(h, n, key);
	if (auth_cached(key, &rq->who))
		return;
	gen = token_generation();
	sha256_hex(h, n, hash);
	if (strncmp(h, "hc_", 3) == 0) {
		struct host host;
		if (host_find_by_credential(rq->srv->store, hash, &host, &err) == 0) {
			rq->who.role = ROLE_HOST;
			snprintf(rq->who.name, sizeof(rq->who.name), "%s", host.name);
			snprintf(rq->who.host_id, sizeof(rq->who.host_id), "%s", host.id);
			snprintf(rq->who.cluster, sizeof(rq->who.cluster), "%s", host.cluster);
		}
	} else {
		struct token t;
		if (token_find_by_hash(rq->srv->store, hash, &t, &err) == 0) {
			rq->who.role = role_parse(t.role);
			snprintf(rq->who.name, sizeof(rq->who.name), "%s", t.name);
		}
	}
	if (rq->who.role != ROLE_NONE)
		auth_remember(key, &rq->who, gen);
}

/* Agents' periodic reports (heartbeats, metric pushes, run output) are not
 * operator actions: auditing them would bury the trail (and cost a store
 * write per push). Everything else that changes state is audited. */
static bool
is_telemetry(const struct route *rt)
{
	return rt->role == ROLE_HOST &&
	       (strcmp(rt->pattern, "/v1/agent/heartbeat") == 0 ||
		strcmp(rt->pattern, "/v1/agent/metrics") == 0 ||
		strcmp(rt->pattern, "/v1/agent/runs/:delivery/output") == 0);
}

/* Samples pushed by a Prometheus-compatible sender (POST /api/v1/write)
 * are telemetry too: not audited and not a transaction (the metric store
 * is not the control-plane store); a refused one is audited. */
static bool
is_ingest(const struct route *rt)
{
	return strcmp(rt->pattern, "/api/v1/write") == 0;
}

static bool
is_mutation(const struct req *rq)
{
	return strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0;
}

void
api_audit(struct req *rq, const char *detail)
{
	struct herr err = HERR_INIT;
	struct audit_entry e = {
		.ts_ms = now_ms(),
		.who = rq->who.name[0] ? rq->who.name : "anonymous",
		.role = role_name(rq->who.role),
		.method = rq->method,
		.path = rq->path,
		.status = rq->status,
		.detail = detail,
	};

	if (audit_add(rq->srv->store, &e, &err) < 0)
		log_err("cannot write audit entry for %s %s: %s", rq->method, rq->path, err.msg);
}

void
api_not_found(struct req *rq)
{
	reply_errf(rq, HERR_NOTFOUND, "", "no such endpoint: %s", rq->path);
}

void
api_add_headers(struct req *rq, struct MHD_Response *r)
{
	char s[16];

	web_add_headers(rq, r);
	agent_binary_add_headers(rq, r);
	if (rq->retry_after_s > 0) {
		snprintf(s, sizeof(s), "%d", rq->retry_after_s);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, s);
	}
}

bool
api_authorize(struct req *rq)
{
	const struct route *rt = rq->route;

	if (rq->authorized)
		return true;
	if (rq->who.role == ROLE_NONE && rt->role != ROLE_NONE)
		authenticate(rq);
	if (rt->role == ROLE_HOST) {
		if (rq->who.role != ROLE_HOST) {
			reply_errf(rq, HERR_AUTH, "", "a valid host credential is required");
			goto denied;
		}
	} else if (rt->role != ROLE_NONE) {
		if (rq->who.role == ROLE_NONE || rq->who.role == ROLE_HOST) {
			reply_errf(rq, HERR_AUTH, "", "a valid token is required (Authorization: Bearer ...)");
			goto denied;
		}
		if (rq->who.role < rt->role) {
			reply_errf(rq, HERR_FORBIDDEN, "", "role '%s' may not %s %s (needs '%s')",
				   role_name(rq->who.role), rq->method, rq->path, role_name(rt->role));
			goto denied;
		}
	}
	rq->authorized = true;
	return true;
denied:
	if (is_mutation(rq) && !is_telemetry(rt))
		api_audit(rq, NULL);
	return false;
}

/* A mutation and its audit row are one transaction, so one commit (one
 * fdatasync) each: the handler's own begin/commit nest inside it (savepoints,
 * store.h), the audit row goes in after the handler with the status it
 * answered, a refused or failed change still gets its row. Routes that ask
 * a provider (a network call) must not hold the store's write lock: they
 * keep their own commits and the audit row its own. */
static bool
joins_audit_tx(const struct route *rt)
{
	return strcmp(rt->pattern, "/v1/accounts/:name/check") != 0;
}

/* Kicks made inside the transaction woke waiters before the change was
 * visible: kick again now that it is (if the handler kicked at all). */
static void
rekick(struct req *rq, uint64_t gen_before)
{
	if (__atomic_load_n(&rq->srv->generation, __ATOMIC_ACQUIRE) != gen_before)
		server_kick(rq->srv);
}

bool
api_runs_in_tx(const struct req *rq)
{
	return rq->route && rq->authorized && is_mutation(rq) && !is_telemetry(rq->route) &&
	       !is_ingest(rq->route) && joins_audit_tx(rq->route);
}

/* Ends the transaction begun in api_handle at depth base+1: the audit row
 * (unless the request is parked), then the commit (a RELEASE when base > 0:
 * the writer's batch commits it, writer.c). A failed commit lost the change
 * and its row: the answer says so and the row is tried on its own. */
static void
finish_tx(struct req *rq, bool audit, int base)
{
	struct store *st = rq->srv->store;
	struct herr err = HERR_INIT;
	const char *detail = rq->audit_detail[0] ? rq->audit_detail : NULL;

	if (store_tx_depth(st) <= base) {
		/* a handler's stray rollback ended it: as before, on its own */
		if (audit)
			api_audit(rq, detail);
		return;
	}
	if (audit)
		api_audit(rq, detail);
	if (store_commit(st, &err) < 0) {
		log_err("cannot commit %s %s: %s", rq->method, rq->path, err.msg);
		reply_err(rq, &err);
		if (audit)
			api_audit(rq, detail);
	}
}

void
api_handle(struct req *rq)
{
	const struct route *rt = rq->route;
	struct herr err = HERR_INIT;
	bool audit, tx = false;
	uint64_t gen = 0;
	int base = 0;

	if (!api_authorize(rq))
		return;
	audit = is_mutation(rq) && !is_telemetry(rt) && !is_ingest(rt);
	if (audit && joins_audit_tx(rt)) {
		gen = __atomic_load_n(&rq->srv->generation, __ATOMIC_ACQUIRE);
		base = store_tx_depth(rq->srv->store);
		tx = store_begin(rq->srv->store, &err) == 0;
		if (!tx)
			log_warn("%s %s: no transaction for the change and its audit row (%s):"
				 " they commit apart", rq->method, rq->path, err.msg);
	}
	rt->fn(rq);
	if (rq->status == 0 && !rq->suspended)
		reply_json(rq, 200, json_object());
	if (tx) {
		finish_tx(rq, !rq->suspended, base);
		if (base == 0)
			rekick(rq, gen);   /* inside a batch: the writer kicks after its commit */
	} else if (audit && !rq->suspended) {
		api_audit(rq, rq->audit_detail[0] ? rq->audit_detail : NULL);
	}
}

void
api_healthz(struct req *rq)
{
	reply_json(rq, 200, json_pack("{s:s,s:s}", "status", "ok", "instance", rq->srv->instance));
}

void
api_whoami(struct req *rq)
{
	reply_json(rq, 200, json_pack("{s:s,s:s}", "name", rq->who.name, "role",
				      role_name(rq->who.role)));
}
