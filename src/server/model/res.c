/* res.c - storage of declarative resources (accounts, networks, templates,
 * groups, ...): one row each in `resources` with the spec as JSON, and the
 * references between them in `refs`, so deleting something still referred
 * to is refused naming the referrer. Every write also moves the resources
 * generation (res_gen_take / res_gen_current) that caches follow. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "model/res.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

/* --- the resources generation ---
 * A write bumps res_changes after its statements and, before that, raises
 * res_pending to the store generation read before them. Inside a
 * transaction (BEGIN IMMEDIATE: no other write commits until ours does)
 * the store generation moves past res_pending only when ours commits; so a
 * snapshot whose store generation is above res_pending began reading after
 * every counted write was committed, and one taken earlier fails the test.
 * Outside a transaction each statement has committed before the bump.
 * A rolled-back write leaves snapshots not current until the next commit
 * anywhere: a cache rebuilds, never serves stale. */
static uint64_t res_changes;
static uint64_t res_pending;

static void
res_changed(uint64_t store_before)
{
	uint64_t p = __atomic_load_n(&res_pending, __ATOMIC_ACQUIRE);

	while (p < store_before &&
	       !__atomic_compare_exchange_n(&res_pending, &p, store_before, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	__atomic_add_fetch(&res_changes, 1, __ATOMIC_ACQ_REL);
}

void
res_gen_take(struct res_gen *g)
{
	g->res = __atomic_load_n(&res_changes, __ATOMIC_ACQUIRE);
	g->store = store_generation();
}

bool
res_gen_current(const struct res_gen *g)
{
	return __atomic_load_n(&res_changes, __ATOMIC_ACQUIRE) == g->res &&
	       g->store > __atomic_load_n(&res_pending, __ATOMIC_ACQUIRE);
}

void
res_release(struct res *r)
{
	json_decref(r->spec);
	r->spec = NULL;
}

static int
res_from_row(json_t *row, struct res *out, struct herr *err)
{
	json_error_t jerr;
	const char *spec = json_string_value(json_object_get(row, "spec"));

	memset(out, 0, sizeof(*out));
	out->id = json_integer_value(json_object_get(row, "id"));
	snprintf(out->scope, sizeof(out->scope), "%s",
		 json_string_value(json_object_get(row, "scope")));
	snprintf(out->name, sizeof(out->name), "%s", json_string_value(json_object_get(row, "name")));
	out->version = json_integer_value(json_object_get(row, "version"));
	out->created_ms = json_integer_value(json_object_get(row, "created_ms"));
	out->updated_ms = json_integer_value(json_object_get(row, "updated_ms"));
	out->spec = json_loads(spec ? spec : "{}", 0, &jerr);
	if (out->spec == NULL)
		return herr_set(err, HERR_STORE, "stored spec of '%s' is not JSON", out->name);
	return 0;
}

/* The resources row of k named name in scope (owned), or NULL with err set
 * (HERR_NOTFOUND when there is none). */
static json_t *
res_get_row(struct store *st, const struct kind *k, const char *scope, const char *name,
	    struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT id, scope, name, spec, version, created_ms, updated_ms"
				" FROM resources WHERE kind = ? AND scope = ? AND name = ?",
				"[sss]", k->name, scope ? scope : "", name);

	if (row == NULL && err->code == 0)
		herr_set(err, HERR_NOTFOUND, "no %s named '%s%s%s'", k->name,
			 scope && *scope ? scope : "", scope && *scope ? "/" : "", name);
	return row;
}

/* The row of k named name in any scope, or SCOPE/NAME (owned), or NULL with
 * err set: HERR_NOTFOUND, or HERR_CONFLICT when the name is ambiguous. */
static json_t *
res_find_row(struct store *st, const struct kind *k, const char *name, struct herr *err)
{
	json_t *rows = NULL, *row = NULL;
	const char *slash = strrchr(name, '/');

	if (slash && k->scope != SCOPE_NONE) {
		char scope[130];
		snprintf(scope, sizeof(scope), "%.*s", (int)(slash - name), name);
		return res_get_row(st, k, scope, slash + 1, err);
	}
	if (store_q(st, &rows, NULL, err,
		    "SELECT id, scope, name, spec, version, created_ms, updated_ms"
		    " FROM resources WHERE kind = ? AND name = ? ORDER BY scope LIMIT 2",
		    "[ss]", k->name, name) < 0)
		return NULL;
	if (json_array_size(rows) == 0)
		herr_set(err, HERR_NOTFOUND, "no %s named '%s'", k->name, name);
	else if (json_array_size(rows) > 1)
		herr_set(err, HERR_CONFLICT,
			 "%s name '%s' is ambiguous: give it as SCOPE/%s (e.g. '%s/%s')", k->name,
			 name, name,
			 json_string_value(json_object_get(json_array_get(rows, 0), "scope")), name);
	else
		row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return row;
}

int
res_get(struct store *st, const struct kind *k, const char *scope, const char *name,
	struct res *out, struct herr *err)
{
	json_t *row = res_get_row(st, k, scope, name, err);
	int rc;

	if (row == NULL)
		return err->code;
	rc = res_from_row(row, out, err);
	json_decref(row);
	return rc;
}

int
res_find(struct store *st, const struct kind *k, const char *name, struct res *out,
	 struct herr *err)
{
	json_t *row = res_find_row(st, k, name, err);
	int rc;

	if (row == NULL)
		return err->code;
	rc = res_from_row(row, out, err);
	json_decref(row);
	return rc;
}

struct ref_ctx {
	struct store *st;
	int64_t from_id;
	bool insert;
};

static int
ref_one(const struct kind *to, const char *scope, const char *name, const char *path, void *arg,
	struct herr *err)
{
	struct ref_ctx *c = arg;
	struct herr e2 = HERR_INIT;
	json_t *row = store_row(c->st, &e2,
				"SELECT id FROM resources WHERE kind = ? AND scope = ? AND name = ?",
				"[sss]", to->name, scope, name);
	int rc = 0;

	if (row == NULL) {
		if (e2.code)
			return herr_set(err, e2.code, "%s", e2.msg);
		return herr_field(err, HERR_INVALID, path, "unknown %s '%s'", to->name, name);
	}
	if (c->insert)
		rc = store_q(c->st, NULL, NULL, err,
			     "INSERT INTO refs (from_id, to_id) SELECT ?, ? WHERE NOT EXISTS"
			     " (SELECT 1 FROM refs WHERE from_id = ? AND to_id = ?)",
			     "[IIII]", (json_int_t)c->from_id,
			     json_integer_value(json_object_get(row, "id")), (json_int_t)c->from_id,
			     json_integer_value(json_object_get(row, "id")));
	json_decref(row);
	return rc;
}

static int res_put_rows(struct store *st, const struct kind *k, const char *scope,
			const char *name, json_t *spec, const char *path, bool *created,
			struct herr *err);

int
res_put(struct store *st, const struct kind *k, const char *scope, const char *name, json_t *spec,
	const char *path, bool *created, struct herr *err)
{
	uint64_t before = store_generation();
	int rc = res_put_rows(st, k, scope, name, spec, path, created, err);

	res_changed(before);   /* even on error: some rows may be written */
	return rc;
}

static int
res_put_rows(struct store *st, const struct kind *k, const char *scope, const char *name,
	     json_t *spec, const char *path, bool *created, struct herr *err)
{
	struct ref_ctx c = { st, 0, false };
	char *text;
	json_t *row;
	int64_t now = now_ms();
	int rc;

	/* Check references first, so nothing is written for a bad spec. */
	if ((rc = kind_refs(k, scope, spec, path, ref_one, &c, err)) < 0)
		return rc;
	text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	row = store_row(st, err, "SELECT id FROM resources WHERE kind = ? AND scope = ? AND name = ?",
			"[sss]", k->name, scope ? scope : "", name);
	if (err->code) {
		free(text);
		return err->code;
	}
	if (row) {
		c.from_id = json_integer_value(json_object_get(row, "id"));
		rc = store_q(st, NULL, NULL, err,
			     "UPDATE resources SET spec = ?, version = version + 1, updated_ms = ?"
			     " WHERE id = ?",
			     "[sII]", text, (json_int_t)now, (json_int_t)c.from_id);
		if (rc == 0)
			rc = store_q(st, NULL, NULL, err, "DELETE FROM refs WHERE from_id = ?", "[I]",
				     (json_int_t)c.from_id);
		*created = false;
	} else {
		rc = store_q(st, NULL, NULL, err,
			     "INSERT INTO resources (kind, scope, name, spec, version, created_ms,"
			     " updated_ms) VALUES (?, ?, ?, ?, 1, ?, ?)",
			     "[ssssII]", k->name, scope ? scope : "", name, text, (json_int_t)now,
			     (json_int_t)now);
		json_decref(row);
		row = rc == 0 ? store_row(st, err,
					  "SELECT id FROM resources WHERE kind = ? AND scope = ?"
					  " AND name = ?",
					  "[sss]", k->name, scope ? scope : "", name)
			      : NULL;
		if (row)
			c.from_id = json_integer_value(json_object_get(row, "id"));
		else if (rc == 0)
			rc = herr_set(err, HERR_STORE, "created %s '%s' is not in the store", k->name,
				      name);
		*created = true;
	}
	json_decref(row);
	free(text);
	if (rc < 0)
		return rc;
	c.insert = true;
	return kind_refs(k, scope, spec, path, ref_one, &c, err);
}

int
res_delete(struct store *st, const struct kind *k, const char *scope, const char *name,
	   struct herr *err)
{
	struct res r;
	json_t *row;
	uint64_t before;
	int rc;

	if ((rc = res_get(st, k, scope, name, &r, err)) < 0)
		return rc;
	res_release(&r);
	row = store_row(st, err,
			"SELECT f.kind, f.scope, f.name FROM refs JOIN resources f ON f.id = refs.from_id"
			" WHERE refs.to_id = ? ORDER BY f.kind, f.scope, f.name LIMIT 1",
			"[I]", (json_int_t)r.id);
	if (row) {
		const char *fs = json_string_value(json_object_get(row, "scope"));
		rc = herr_set(err, HERR_CONFLICT, "%s '%s' is still referred to by %s '%s%s%s'",
			      k->name, name, json_string_value(json_object_get(row, "kind")),
			      fs, *fs ? "/" : "", json_string_value(json_object_get(row, "name")));
		json_decref(row);
		return rc;
	}
	if (err->code)
		return err->code;
	before = store_generation();
	rc = store_q(st, NULL, NULL, err, "DELETE FROM resources WHERE id = ?", "[I]",
		     (json_int_t)r.id);
	res_changed(before);
	return rc;
}

json_t *
res_to_json(const struct kind *k, const struct res *r)
{
	json_t *o = json_deep_copy(r->spec);
	char ts[40];

	json_object_set_new(o, "name", json_string(r->name));
	if (k->scope == SCOPE_CLUSTER) {
		json_object_set_new(o, "cluster", json_string(r->scope));
	} else if (k->scope == SCOPE_GROUP) {
		const char *slash = strchr(r->scope, '/');
		if (slash) {
			json_object_set_new(o, "cluster", json_stringn(r->scope, (size_t)(slash - r->scope)));
			json_object_set_new(o, "group", json_string(slash + 1));
		}
	}
	json_object_set_new(o, "version", json_integer(r->version));
	json_object_set_new(o, "created", json_string(fmt_time(r->created_ms, ts, sizeof(ts))));
	json_object_set_new(o, "updated", json_string(fmt_time(r->updated_ms, ts, sizeof(ts))));
	return o;
}

int
res_list(struct store *st, const struct kind *k, const char *scope, const char *after, int limit,
	 json_t **out, struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;
	int rc;

	if (scope)
		rc = store_q(st, &rows, NULL, err,
			     "SELECT id, scope, name, spec, version, created_ms, updated_ms"
			     " FROM resources WHERE kind = ? AND scope = ? AND name > ?"
			     " ORDER BY name LIMIT ?",
			     "[sssi]", k->name, scope, after ? after : "", limit);
	else
		rc = store_q(st, &rows, NULL, err,
			     "SELECT id, scope, name, spec, version, created_ms, updated_ms"
			     " FROM resources WHERE kind = ? AND (scope || '/' || name) > ?"
			     " ORDER BY scope, name LIMIT ?",
			     "[ssi]", k->name, after ? after : "", limit);
	if (rc < 0)
		return rc;
	*out = json_array();
	json_array_foreach(rows, i, row) {
		struct res r;
		if (res_from_row(row, &r, err) < 0)
			continue;
		json_array_append_new(*out, res_to_json(k, &r));
		res_release(&r);
	}
	json_decref(rows);
	return 0;
}

/* --- the API form printed straight from rows (GETs) ---
 * res_to_json builds a tree that only gets printed: a list of 100 costs
 * 100 parses, deep copies and prints. A spec is stored as jansson printed
 * it (res_put), so it is copied as is when jsonw_is_canonical() says
 * jansson would print it back the same; anything else (a real, a
 * migration's rewrite) takes the jansson path. Both print the same bytes
 * (tests/unit/test-jsonw.c). */

/* The keys res_to_json sets: a spec holding one (split_object drops them)
 * takes the jansson path, where the set replaces it in place. */
static const char *const res_api_keys[] = { "name", "cluster", "group", "version",
					    "created", "updated", NULL };

/* A resources row as the printers read it: borrowed bytes. */
struct res_row {
	const char *scope, *name, *spec;
	size_t scope_len, name_len, spec_len;
	int64_t version, created_ms, updated_ms;
};

/* The jansson path: what res_to_json prints (compact, reals at 15 digits). */
static int
row_write_jansson(const struct kind *k, const struct res_row *v, bool open, struct buf *b,
		  struct herr *err)
{
	json_t *row = json_pack("{s:s%,s:s%,s:s%,s:I,s:I,s:I}", "scope", v->scope, v->scope_len,
				"name", v->name, v->name_len, "spec", v->spec, v->spec_len,
				"version", (json_int_t)v->version, "created_ms",
				(json_int_t)v->created_ms, "updated_ms", (json_int_t)v->updated_ms);
	struct res r;
	json_t *o;
	char *text;
	size_t n;
	int rc;

	rc = row ? res_from_row(row, &r, err) : herr_set(err, HERR_STORE, "stored %s is not UTF-8",
							   k->name);
	json_decref(row);
	if (rc < 0)
		return rc;
	o = res_to_json(k, &r);
	res_release(&r);
	text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (text == NULL)
		return herr_set(err, HERR_STORE, "stored %s '%s' cannot be printed", k->name, r.name);
	n = strlen(text);
	rc = buf_add(b, text, open && n > 0 ? n - 1 : n);   /* open: without its '}' */
	free(text);
	return rc < 0 ? herr_set(err, rc, "%s list is too large", k->name) : 0;
}

/* Appends ",\"key\":" and the string s (n bytes). */
static int
put_str(struct buf *b, const char *key, const char *s, size_t n)
{
	int rc;

	if ((rc = jsonw_raw(b, ",\"", 2)) < 0 || (rc = jsonw_raw(b, key, strlen(key))) < 0 ||
	    (rc = jsonw_raw(b, "\":", 2)) < 0)
		return rc;
	return jsonw_str(b, s, n);
}

/* The copy path: 0, -EINVAL when the spec is not canonical (or a name is
 * not UTF-8), or HERR_TOOBIG; b may hold a part on error. */
static int
row_write_fast(const struct kind *k, const struct res_row *v, bool open, struct buf *b)
{
	size_t sn = v->spec_len, cn = v->scope_len, nn = v->name_len, cl;
	const char *spec = v->spec, *scope = v->scope, *name = v->name;
	const char *slash = memchr(scope, '/', cn);
	char created[40], updated[40];
	int rc;

	if (!jsonw_is_canonical(spec, sn, res_api_keys))
		return -EINVAL;
	fmt_time(v->created_ms, created, sizeof(created));
	fmt_time(v->updated_ms, updated, sizeof(updated));
	/* "{...", without its '}'; the comma only after a field */
	if ((rc = jsonw_raw(b, spec, sn - 1)) < 0)
		return rc;
	if (sn == 2)   /* "{}": name is the first field */
		rc = jsonw_raw(b, "\"name\":", 7) < 0 ? HERR_TOOBIG : jsonw_str(b, name, nn);
	else
		rc = put_str(b, "name", name, nn);
	if (rc < 0)
		return rc;
	if (k->scope == SCOPE_CLUSTER && (rc = put_str(b, "cluster", scope, cn)) < 0)
		return rc;
	if (k->scope == SCOPE_GROUP && slash) {
		cl = (size_t)(slash - scope);
		if ((rc = put_str(b, "cluster", scope, cl)) < 0 ||
		    (rc = put_str(b, "group", slash + 1, cn - cl - 1)) < 0)
			return rc;
	}
	if ((rc = jsonw_raw(b, ",\"version\":", 11)) < 0 ||
	    (rc = jsonw_int(b, v->version)) < 0 ||
	    (rc = put_str(b, "created", created, strlen(created))) < 0 ||
	    (rc = put_str(b, "updated", updated, strlen(updated))) < 0)
		return rc;
	return open ? 0 : jsonw_raw(b, "}", 1);
}

/* Appends row's API form to b (without its closing '}' when open). */
static int
row_write(const struct kind *k, const struct res_row *row, bool open, struct buf *b,
	  struct herr *err)
{
	size_t start = b->len;
	int rc = row_write_fast(k, row, open, b);

	if (rc == 0)
		return 0;
	b->len = start;   /* not canonical, or a name jansson would refuse too */
	if (b->p)
		b->p[start] = '\0';
	if (rc == HERR_TOOBIG)
		return herr_set(err, rc, "%s list is too large", k->name);
	return row_write_jansson(k, row, open, b, err);
}

/* Copies n bytes of s into dst (cut to its size), NUL-terminated: per row
 * of a list, so no printf. */
static void
copy_cut(char *dst, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static void
key_of(const struct res_row *row, struct res_key *key)
{
	if (key == NULL)
		return;
	copy_cut(key->scope, sizeof(key->scope), row->scope, row->scope_len);
	copy_cut(key->name, sizeof(key->name), row->name, row->name_len);
}

/* res_write's query: its one row printed from the columns in hand, a
 * second one (a name in two scopes) noted and the rest left. */
struct one_ctx {
	const struct kind *k;
	bool open;
	struct buf *b;
	struct res_key *key;
	struct herr *err;
	int rows;
	char first_scope[130];   /* the row printed: for the ambiguity message */
};

static int
one_row(const struct store_cols *c, void *arg)
{
	struct one_ctx *x = arg;
	struct res_row v;

	if (x->rows++ > 0)
		return HERR_CONFLICT;   /* stops store_each: ambiguous */
	v.scope = store_col_text(c, 0, &v.scope_len);
	v.name = store_col_text(c, 1, &v.name_len);
	v.spec = store_col_text(c, 2, &v.spec_len);
	v.version = store_col_int(c, 3);
	v.created_ms = store_col_int(c, 4);
	v.updated_ms = store_col_int(c, 5);
	copy_cut(x->first_scope, sizeof(x->first_scope), v.scope, v.scope_len);
	key_of(&v, x->key);
	return row_write(x->k, &v, x->open, x->b, x->err);
}

int
res_write(struct store *st, const struct kind *k, const char *scope, const char *name,
	  bool open, struct buf *b, struct res_key *key, struct herr *err)
{
	struct one_ctx x = { .k = k, .open = open, .b = b, .key = key, .err = err };
	const char *slash = strrchr(name, '/');
	char sbuf[130];
	int rc;

	if (scope == NULL && slash && k->scope != SCOPE_NONE) {
		/* SCOPE/NAME: as res_find_row */
		snprintf(sbuf, sizeof(sbuf), "%.*s", (int)(slash - name), name);
		scope = sbuf;
		name = slash + 1;
	}
	if (scope)
		rc = store_each(st, err, one_row, &x,
				"SELECT scope, name, spec, version, created_ms, updated_ms"
				" FROM resources WHERE kind = ? AND scope = ? AND name = ?",
				"[sss]", k->name, scope, name);
	else
		rc = store_each(st, err, one_row, &x,
				"SELECT scope, name, spec, version, created_ms, updated_ms"
				" FROM resources WHERE kind = ? AND name = ? ORDER BY scope LIMIT 2",
				"[ss]", k->name, name);
	if (rc == HERR_CONFLICT && x.rows > 1)
		return herr_set(err, HERR_CONFLICT,
				"%s name '%s' is ambiguous: give it as SCOPE/%s (e.g. '%s/%s')",
				k->name, name, name, x.first_scope, name);
	if (rc < 0)
		return err->code ? err->code : herr_set(err, rc, "%s is too large", k->name);
	if (x.rows == 0)
		return scope ? herr_set(err, HERR_NOTFOUND, "no %s named '%s%s%s'", k->name,
					*scope ? scope : "", *scope ? "/" : "", name)
			     : herr_set(err, HERR_NOTFOUND, "no %s named '%s'", k->name, name);
	return 0;
}

struct list_ctx {
	const struct kind *k;
	struct buf *b;
	int *count;
	struct res_key *last;
};

/* One row of res_list_write: columns as its SELECT names them. */
static int
list_row(const struct store_cols *c, void *arg)
{
	struct list_ctx *x = arg;
	struct herr e2 = HERR_INIT;
	struct res_row v;
	size_t mark = x->b->len;
	int rc;

	v.scope = store_col_text(c, 0, &v.scope_len);
	v.name = store_col_text(c, 1, &v.name_len);
	v.spec = store_col_text(c, 2, &v.spec_len);
	v.version = store_col_int(c, 3);
	v.created_ms = store_col_int(c, 4);
	v.updated_ms = store_col_int(c, 5);
	if (*x->count > 0 && (rc = buf_add(x->b, ",", 1)) < 0)
		return rc;
	if (row_write(x->k, &v, false, x->b, &e2) < 0) {
		if (e2.code == HERR_TOOBIG)
			return HERR_TOOBIG;
		x->b->len = mark;   /* a stored spec that is not JSON: left out, as res_list */
		x->b->p[mark] = '\0';
		return 0;
	}
	key_of(&v, x->last);
	(*x->count)++;
	return 0;
}

int
res_list_write(struct store *st, const struct kind *k, const char *scope, const char *after,
	       int limit, struct buf *b, int *count, struct res_key *last, struct herr *err)
{
	struct list_ctx x = { k, b, count, last };
	int rc;

	*count = 0;
	if ((rc = buf_add(b, "[", 1)) < 0)
		return herr_set(err, rc, "%s list is too large", k->name);
	if (scope)
		rc = store_each(st, err, list_row, &x,
				"SELECT scope, name, spec, version, created_ms, updated_ms"
				" FROM resources WHERE kind = ? AND scope = ? AND name > ?"
				" ORDER BY name LIMIT ?",
				"[sssi]", k->name, scope, after ? after : "", limit);
	else
		rc = store_each(st, err, list_row, &x,
				"SELECT scope, name, spec, version, created_ms, updated_ms"
				" FROM resources WHERE kind = ? AND (scope || '/' || name) > ?"
				" ORDER BY scope, name LIMIT ?",
				"[ssi]", k->name, after ? after : "", limit);
	if (rc == HERR_TOOBIG || (rc == 0 && (rc = buf_add(b, "]", 1)) < 0))
		return herr_set(err, rc, "%s list is too large", k->name);
	return rc;
}

int
res_all(struct store *st, const struct kind *k, const char *scope, json_t **out,
	struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;
	int rc;

	*out = NULL;
	if (scope)
		rc = store_q(st, &rows, NULL, err,
			     "SELECT scope, name, spec FROM resources WHERE kind = ? AND scope = ?"
			     " ORDER BY name",
			     "[ss]", k->name, scope);
	else
		rc = store_q(st, &rows, NULL, err,
			     "SELECT scope, name, spec FROM resources WHERE kind = ?"
			     " ORDER BY scope, name",
			     "[s]", k->name);
	if (rc < 0)
		return rc;
	*out = json_array();
	json_array_foreach(rows, i, row) {
		json_error_t jerr;
		json_t *spec = json_loads(json_string_value(json_object_get(row, "spec")), 0, &jerr);
		if (spec == NULL)
			continue;   /* written by res_put from valid JSON: cannot happen */
		json_array_append_new(*out, json_pack("{s:O, s:O, s:o}", "scope",
						      json_object_get(row, "scope"), "name",
						      json_object_get(row, "name"), "spec", spec));
	}
	json_decref(rows);
	return 0;
}

/* --- kind --- */

int
res_names(struct store *st, const struct kind *k, const char *scope, json_t **out,
	  struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;

	*out = NULL;
	if (store_q(st, &rows, NULL, err,
		    "SELECT name FROM resources WHERE kind = ? AND scope = ? ORDER BY name", "[ss]",
		    k->name, scope) < 0)
		return err->code;
	*out = json_array();
	json_array_foreach(rows, i, row)
		json_array_append(*out, json_object_get(row, "name"));
	json_decref(rows);
	return 0;
}

/* --- ctl --- */

int
net_gone_add(struct store *st, const char *name, const json_t *spec, int64_t now_ms,
	     struct herr *err)
{
	const char *account = json_string_value(json_object_get(spec, "account"));
	char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS), *atext = NULL;
	struct res a;
	int rc;

	if (text == NULL)
		return herr_set(err, HERR_INVALID, "network '%s' has no spec", name);
	if (account && res_get(st, &kind_account, "", account, &a, err) == 0) {
		atext = json_dumps(a.spec, JSON_COMPACT | JSON_SORT_KEYS);
		res_release(&a);
	} else if (err->code != 0 && err->code != HERR_NOTFOUND) {
		free(text);
		return err->code;
	}
	herr_clear(err);
	rc = store_q(st, NULL, NULL, err,
		     "INSERT INTO networks_gone (name, account, spec, account_spec, deleted_ms)"
		     " VALUES (?, ?, ?, ?, ?)",
		     "[ssss?I]", name, account ? account : "", text, atext, (json_int_t)now_ms);
	free(text);
	free(atext);
	return rc;
}

int
net_gone_list(struct store *st, json_t **out, struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = store_q(st, &rows, NULL, err,
			  "SELECT id, name, account, spec, account_spec, deleted_ms FROM networks_gone"
			  " ORDER BY id",
			  NULL)) < 0)
		return rc;
	*out = json_array();
	json_array_foreach(rows, i, row) {
		json_t *spec = json_loads(json_string_value(json_object_get(row, "spec")), 0, NULL);
		const char *at = json_string_value(json_object_get(row, "account_spec"));
		json_t *aspec = at ? json_loads(at, 0, NULL) : NULL;
		json_array_append_new(*out, json_pack("{s:O, s:O, s:O, s:o, s:o, s:O}", "id",
						      json_object_get(row, "id"), "name",
						      json_object_get(row, "name"), "account",
						      json_object_get(row, "account"), "spec",
						      spec ? spec : json_object(), "account_spec",
						      aspec ? aspec : json_null(), "deleted_ms",
						      json_object_get(row, "deleted_ms")));
	}
	json_decref(rows);
	return 0;
}

int
net_gone_done(struct store *st, int64_t id, struct herr *err)
{
	return store_q(st, NULL, NULL, err, "DELETE FROM networks_gone WHERE id = ?", "[I]",
		       (json_int_t)id);
}
