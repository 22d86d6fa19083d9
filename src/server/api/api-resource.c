/* api-resource.c - the generic HTTP side of every declarative kind: the
 * list/get/create/update/delete handlers that routes.def points at for each
 * kind. Validation (the kind's field table, 400 naming the field) and
 * reference discovery are the model's (model/kind.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "ctl/ctl.h"
#include "jsonw.h"
#include "model/group-state.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* The scope named by ?cluster= and ?group= (policies), or NULL for any. */
static const char *
req_scope(struct req *rq, const struct kind *k, char *buf, size_t n)
{
	const char *c = req_query(rq, "cluster"), *g = req_query(rq, "group");

	if (k->scope == SCOPE_CLUSTER && c)
		return snprintf(buf, n, "%s", c), buf;
	if (k->scope == SCOPE_GROUP && c && g)
		return snprintf(buf, n, "%s/%s", c, g), buf;
	return NULL;
}

/* Lists and single GETs are printed straight into a buffer (res_write,
 * jsonw.h): the same bytes json_dumps would print, without the tree. */
#define ANSWER_MAX_BYTES ((size_t)64 << 20)

/* Hands b to rq as its 200 answer, a line as httpd.c sends JSON. */
static void
reply_buf(struct req *rq, struct buf *b)
{
	size_t n;

	if (buf_add(b, "\n", 1) < 0) {
		buf_release(b);
		return reply_errf(rq, HERR_TOOBIG, "", "the answer is larger than %zu bytes",
				  ANSWER_MAX_BYTES);
	}
	n = b->len;
	reply_raw(rq, 200, "application/json", buf_steal(b), n, false);
}

void
api_res_list(struct req *rq)
{
	const struct kind *k = rq->route->arg;
	struct herr err = HERR_INIT;
	const char *lim = req_query(rq, "limit"), *after = req_query(rq, "after");
	char sbuf[200], next[300];
	const char *scope = req_scope(rq, k, sbuf, sizeof(sbuf));
	int limit = LIST_DEFAULT, count;
	struct res_key last;
	struct buf b;

	if (lim) {
		char *end;
		long l = strtol(lim, &end, 10);
		if (*end || l < 1 || l > LIST_MAX)
			return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d", LIST_MAX);
		limit = (int)l;
	}
	buf_init(&b, ANSWER_MAX_BYTES);
	if (jsonw_raw(&b, "{\"items\":", 9) < 0 ||
	    res_list_write(rq->srv->store, k, scope, after, limit, &b, &count, &last, &err) < 0) {
		buf_release(&b);
		return reply_err(rq, &err);
	}
	if (count == limit) {
		/* the cursor: the last item's name as ?after= compares it */
		if (scope)
			snprintf(next, sizeof(next), "%s", last.name);
		else if (k->scope != SCOPE_NONE)
			snprintf(next, sizeof(next), "%s/%s", last.scope, last.name);
		else
			snprintf(next, sizeof(next), "/%s", last.name);
		if (jsonw_raw(&b, ",\"next\":", 8) < 0 || jsonw_str(&b, next, strlen(next)) < 0) {
			buf_release(&b);
			return reply_errf(rq, HERR_TOOBIG, "", "the answer is too large");
		}
	}
	if (jsonw_raw(&b, "}", 1) < 0) {
		buf_release(&b);
		return reply_errf(rq, HERR_TOOBIG, "", "the answer is too large");
	}
	reply_buf(rq, &b);
}

/* Resolves the :name of the URL (NAME, or SCOPE/NAME, or ?cluster=). */
static int
lookup(struct req *rq, const struct kind *k, struct res *r, struct herr *err)
{
	char sbuf[200];
	const char *scope = req_scope(rq, k, sbuf, sizeof(sbuf));

	if (scope || k->scope == SCOPE_NONE)
		return res_get(rq->srv->store, k, scope ? scope : "", req_param(rq, 0), r, err);
	return res_find(rq->srv->store, k, req_param(rq, 0), r, err);
}

/* GET of one resource is the API's hottest read (dashboards, scripts polling
 * a group): its answer is cached by URL and served while the store has
 * committed nothing since it was made (store_generation). A request saying
 * Cache-Control: no-cache is answered from the store (the same bytes: the
 * cache is never stale); bench/api.sh measures that path with it. */
#define GET_CACHE_SLOTS 256
#define GET_CACHE_MAX_BYTES 16384

struct get_slot {
	char key[300];
	uint64_t gen;
	char *text;
	size_t len;
};

static struct get_slot get_cache[GET_CACHE_SLOTS];
static pthread_rwlock_t get_lock = PTHREAD_RWLOCK_INITIALIZER;

static bool
get_cache_key(struct req *rq, char *key, size_t n)
{
	const char *c = req_query(rq, "cluster"), *g = req_query(rq, "group");

	return snprintf(key, n, "%s?%s&%s", rq->path, c ? c : "", g ? g : "") < (int)n;
}

static bool
wants_fresh(struct req *rq)
{
	const char *cc = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CACHE_CONTROL);

	return cc && strcasestr(cc, "no-cache") != NULL;
}

static struct get_slot *
get_slot_of(const char *key)
{
	unsigned h = 2166136261u;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &get_cache[h % GET_CACHE_SLOTS];
}

void
api_res_get(struct req *rq)
{
	const struct kind *k = rq->route->arg;
	struct herr err = HERR_INIT;
	uint64_t gen = store_generation();
	struct get_slot *sl = NULL;
	char key_text[300], sbuf[200], *text;
	const char *scope;
	struct res_key key;
	struct buf b;

	if (!wants_fresh(rq) && get_cache_key(rq, key_text, sizeof(key_text))) {
		sl = get_slot_of(key_text);
		pthread_rwlock_rdlock(&get_lock);
		if (sl->text && sl->gen == gen && strcmp(sl->key, key_text) == 0) {
			text = xstrndup(sl->text, sl->len);
			pthread_rwlock_unlock(&get_lock);
			return reply_raw(rq, 200, "application/json", text, strlen(text), false);
		}
		pthread_rwlock_unlock(&get_lock);
	}
	/* NAME, SCOPE/NAME or ?cluster=: lookup()'s choice, printed */
	scope = req_scope(rq, k, sbuf, sizeof(sbuf));
	if (scope == NULL && k->scope == SCOPE_NONE)
		scope = "";
	buf_init(&b, ANSWER_MAX_BYTES);
	/* a group is two reads (its row, its status row): one snapshot, one
	 * read lock for both */
	if (k == &kind_group && store_read_begin(rq->srv->store, &err) < 0)
		return buf_release(&b), reply_err(rq, &err);
	if (res_write(rq->srv->store, k, scope, req_param(rq, 0), k == &kind_group, &b, &key,
		      &err) < 0 ||
	    (k == &kind_group &&   /* unknown is not absent: no status made up */
	     (group_state_write_status(rq->srv->store, key.scope, key.name, &b, &err) < 0 ||
	      jsonw_raw(&b, "}", 1) < 0))) {
		store_read_end(rq->srv->store);
		buf_release(&b);
		return err.code ? reply_err(rq, &err)
				: reply_errf(rq, HERR_TOOBIG, "", "the answer is too large");
	}
	store_read_end(rq->srv->store);
	if (sl && b.len + 1 < GET_CACHE_MAX_BYTES && store_generation() == gen) {
		pthread_rwlock_wrlock(&get_lock);
		free(sl->text);
		snprintf(sl->key, sizeof(sl->key), "%s", key_text);
		sl->text = xmalloc(b.len + 2);
		memcpy(sl->text, b.p, b.len);
		memcpy(sl->text + b.len, "\n", 2);
		sl->len = b.len + 1;
		sl->gen = gen;
		pthread_rwlock_unlock(&get_lock);
	}
	reply_buf(rq, &b);
}

/* Splits an API object into scope + name + spec (the spec keeps only the
 * kind's own fields). */
static int
split_object(const struct kind *k, json_t *obj, char *scope, size_t sn, char *name, size_t nn,
	     struct herr *err)
{
	const char *nm = json_string_value(json_object_get(obj, "name"));
	const char *cl = json_string_value(json_object_get(obj, "cluster"));
	const char *gr = json_string_value(json_object_get(obj, "group"));
	bool script = k == &kind_script;

	if (nm == NULL)
		return herr_field(err, HERR_INVALID, "name", "is required");
	if (script ? !script_name_is_valid(nm) : !name_is_valid(nm))
		return herr_field(err, HERR_INVALID, "name",
				  script ? "must be 1-100 characters [A-Za-z0-9._-]"
					 : "must be a name of 1-63 characters [a-z0-9-], not starting or ending with '-'");
	snprintf(name, nn, "%s", nm);
	scope[0] = '\0';
	if (k->scope != SCOPE_NONE) {
		if (cl == NULL || !name_is_valid(cl))
			return herr_field(err, HERR_INVALID, "cluster", "must name the cluster");
		snprintf(scope, sn, "%s", cl);
	}
	if (k->scope == SCOPE_GROUP) {
		if (gr == NULL || !name_is_valid(gr))
			return herr_field(err, HERR_INVALID, "group", "must name the group");
		snprintf(scope, sn, "%s/%s", cl, gr);
	}
	json_object_del(obj, "name");
	json_object_del(obj, "cluster");
	json_object_del(obj, "group");
	json_object_del(obj, "version");
	json_object_del(obj, "created");
	json_object_del(obj, "updated");
	return 0;
}


static void
put(struct req *rq, bool create)
{
	const struct kind *k = rq->route->arg;
	struct herr err = HERR_INIT;
	char scope[200], name[128];
	json_t *obj = req_json(rq), *spec;
	struct res old = { 0 };
	bool created = false, have_old;

	if (obj == NULL)
		return;
	spec = json_deep_copy(obj);
	if (split_object(k, spec, scope, sizeof(scope), name, sizeof(name), &err) < 0)
		goto fail;
	if (!create && strcmp(name, req_param(rq, 0)) != 0) {
		herr_field(&err, HERR_INVALID, "name", "does not match the URL ('%s')",
			   req_param(rq, 0));
		goto fail;
	}
	if (store_begin(rq->srv->store, &err) < 0)
		goto fail;
	have_old = res_get(rq->srv->store, k, scope, name, &old, &err) == 0;
	herr_clear(&err);
	if (create && have_old) {
		herr_field(&err, HERR_CONFLICT, "name", "%s '%s' already exists", k->name, name);
		goto fail_tx;
	}
	if (!create && !have_old) {
		herr_set(&err, HERR_NOTFOUND, "no %s named '%s'", k->name, name);
		goto fail_tx;
	}
	if (kind_validate(k, spec, have_old ? old.spec : NULL, "", &err) < 0)
		goto fail_tx;
	if (k == &kind_script && script_store_version(rq->srv->store, name, spec, &err) < 0)
		goto fail_tx;
	if (res_put(rq->srv->store, k, scope, name, spec, "", &created, &err) < 0)
		goto fail_tx;
	if (store_commit(rq->srv->store, &err) < 0)
		goto fail;
	res_release(&old);
	json_decref(spec);
	if (lookup_after_put(rq, k, scope, name) < 0)
		return;
	rq->status = created ? 201 : 200;
	server_kick(rq->srv);
	return;
fail_tx:
	store_rollback(rq->srv->store);
fail:
	res_release(&old);
	json_decref(spec);
	reply_err(rq, &err);
}

int
lookup_after_put(struct req *rq, const struct kind *k, const char *scope, const char *name)
{
	struct herr err = HERR_INIT;
	struct res r;

	if (res_get(rq->srv->store, k, scope, name, &r, &err) < 0) {
		reply_err(rq, &err);
		return -1;
	}
	reply_json(rq, 200, res_to_json(k, &r));
	res_release(&r);
	return 0;
}

void
api_res_create(struct req *rq)
{
	put(rq, true);
}

void
api_res_update(struct req *rq)
{
	put(rq, false);
}


void
api_res_delete(struct req *rq)
{
	const struct kind *k = rq->route->arg;
	struct herr err = HERR_INIT;
	struct res r;

	if (lookup(rq, k, &r, &err) < 0)
		return reply_err(rq, &err);
	if (k == &kind_script && json_is_true(json_object_get(r.spec, "builtin"))) {
		herr_set(&err, HERR_FORBIDDEN, "built-in script '%s' cannot be deleted", r.name);
		goto fail;
	}
	if (store_begin(rq->srv->store, &err) < 0)
		goto fail;
	if (k == &kind_group && group_delete_check(rq->srv->store, r.scope, r.name, &err) < 0)
		goto fail_tx;
	if (res_delete(rq->srv->store, k, r.scope, r.name, &err) < 0)
		goto fail_tx;
	/* its bridge: the controller removes it (kicked below) */
	if (k == &kind_network &&
	    net_gone_add(rq->srv->store, r.name, r.spec, now_ms(), &err) < 0)
		goto fail_tx;
	if (store_commit(rq->srv->store, &err) < 0)
		goto fail;
	res_release(&r);
	reply_json(rq, 200, json_pack("{s:b}", "deleted", 1));
	server_kick(rq->srv);
	return;
fail_tx:
	store_rollback(rq->srv->store);
fail:
	res_release(&r);
	reply_err(rq, &err);
}
