/* model/refresh.c - instance refreshes in the store (model/refresh.h): the
 * parameters (pure), the refresh row and the hosts it took out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/refresh.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

void
refresh_params_default(struct refresh_params *p)
{
	memset(p, 0, sizeof(*p));
	p->batch = 1;
	p->surge = 1;
	p->min_healthy_pct = 100;
}

/* A whole number from lo to hi in text s, with an optional '%' (into
 * *pct); 0 or -1. */
static int
num_pct(const char *s, long lo, long hi, long *v, bool *pct)
{
	char *end = NULL;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	*v = strtol(s, &end, 10);
	*pct = *end == '%';
	if (*pct)
		end++;
	if (*end != '\0' || *v < lo || *v > hi)
		return -1;
	return 0;
}

int
refresh_params_read(const json_t *o, const char *path, struct refresh_params *p,
		    struct herr *err)
{
	const char *key;
	char fp[160];
	json_t *v;

	if (o == NULL)
		return 0;
	if (!json_is_object(o))
		return herr_field(err, HERR_INVALID, path, "must be a mapping");
	json_object_foreach((json_t *)o, key, v) {
		char num[32];
		long n = 0;
		bool pct = false;

		snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", key);
		if (json_is_integer(v))
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		else if (json_is_string(v))
			snprintf(num, sizeof(num), "%.31s", json_string_value(v));
		else if (!json_is_boolean(v))
			return herr_field(err, HERR_INVALID, fp, "must be a number or a string");
		if (strcmp(key, "batch") == 0) {
			if (json_is_boolean(v) || num_pct(num, 1, REFRESH_BATCH_MAX, &n, &pct) < 0 ||
			    (pct && n > 100))
				return herr_field(err, HERR_INVALID, fp,
						  "must be a number of hosts from 1 to %d, or a share"
						  " from 1%% to 100%%", REFRESH_BATCH_MAX);
			p->batch = pct ? 0 : (int)n;
			p->batch_pct = pct ? (int)n : 0;
		} else if (strcmp(key, "surge") == 0) {
			if (json_is_boolean(v) || num_pct(num, 0, REFRESH_BATCH_MAX, &n, &pct) < 0 || pct)
				return herr_field(err, HERR_INVALID, fp,
						  "must be a number of hosts from 0 to %d",
						  REFRESH_BATCH_MAX);
			p->surge = (int)n;
		} else if (strcmp(key, "min_healthy") == 0) {
			if (json_is_boolean(v) || num_pct(num, 0, 100, &n, &pct) < 0)
				return herr_field(err, HERR_INVALID, fp,
						  "must be a share from 0%% to 100%%");
			p->min_healthy_pct = (int)n;
		} else if (strcmp(key, "warmup") == 0) {
			int64_t ms;

			if (!json_is_string(v) || parse_duration_ms(json_string_value(v), &ms) < 0 ||
			    ms < 0 || ms > REFRESH_WARMUP_MAX_MS)
				return herr_field(err, HERR_INVALID, fp,
						  "must be a duration from 0s to 1h (e.g. 30s)");
			p->warmup_ms = ms;
		} else if (strcmp(key, "pause_after") == 0) {
			if (json_is_boolean(v) || num_pct(num, 0, 1000, &n, &pct) < 0 || pct)
				return herr_field(err, HERR_INVALID, fp,
						  "must be a number of batches from 0 to 1000");
			p->pause_after = (int)n;
		} else if (strcmp(key, "rollback") == 0) {
			if (!json_is_boolean(v))
				return herr_field(err, HERR_INVALID, fp, "must be true or false");
			p->rollback = json_is_true(v);
		} else {
			return herr_field(err, HERR_INVALID, fp,
					  "unknown (refresh has batch, surge, min_healthy, warmup,"
					  " pause_after, rollback)");
		}
	}
	if (p->surge == 0 && p->min_healthy_pct >= 100) {
		snprintf(fp, sizeof(fp), "%s%smin_healthy", path, *path ? "." : "");
		return herr_field(err, HERR_INVALID, fp,
				  "must be below 100%% when surge is 0 (no host could be taken out)");
	}
	return 0;
}

int
refresh_batch_size(const struct refresh_params *p, int desired)
{
	int n = p->batch_pct > 0 ? (desired * p->batch_pct + 99) / 100 : p->batch;

	return n < 1 ? 1 : n;
}

int
refresh_min_healthy(const struct refresh_params *p, int desired)
{
	return desired <= 0 ? 0 : (desired * p->min_healthy_pct + 99) / 100;
}

static json_t *
params_to_json(const struct refresh_params *p)
{
	char batch[16], mh[16];

	snprintf(mh, sizeof(mh), "%d%%", p->min_healthy_pct);
	if (p->batch_pct > 0)
		snprintf(batch, sizeof(batch), "%d%%", p->batch_pct);
	else
		snprintf(batch, sizeof(batch), "%d", p->batch);
	return json_pack("{s:s, s:i, s:s, s:I, s:i, s:b}", "batch", batch, "surge", p->surge,
			 "min_healthy", mh, "warmup_ms", (json_int_t)p->warmup_ms,
			 "pause_after", p->pause_after, "rollback", p->rollback);
}

void
refresh_release(struct refresh *r)
{
	json_decref(r->batch);
	json_decref(r->old_spec);
	r->batch = r->old_spec = NULL;
}

void
refresh_free_all(struct refresh *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		refresh_release(&r[i]);
	free(r);
}

static void
copy_s(char *dst, size_t n, const json_t *row, const char *key)
{
	const char *v = json_string_value(json_object_get(row, key));

	snprintf(dst, n, "%s", v ? v : "");
}

/* Fills *r from a refreshes row. */
static void
refresh_from_row(const json_t *row, struct refresh *r)
{
	json_t *pj;
	struct herr e = HERR_INIT;

	memset(r, 0, sizeof(*r));
	r->id = json_integer_value(json_object_get(row, "id"));
	copy_s(r->cluster, sizeof(r->cluster), row, "cluster");
	copy_s(r->grp, sizeof(r->grp), row, "grp");
	copy_s(r->template_, sizeof(r->template_), row, "template");
	copy_s(r->target, sizeof(r->target), row, "target");
	copy_s(r->state, sizeof(r->state), row, "state");
	copy_s(r->reason, sizeof(r->reason), row, "reason");
	r->extra = (int)json_integer_value(json_object_get(row, "extra"));
	r->replaced = (int)json_integer_value(json_object_get(row, "replaced"));
	r->batches = (int)json_integer_value(json_object_get(row, "batches"));
	r->started_ms = json_integer_value(json_object_get(row, "started_ms"));
	r->updated_ms = json_integer_value(json_object_get(row, "updated_ms"));
	r->batch = json_loads(json_string_value(json_object_get(row, "batch")), 0, NULL);
	if (!json_is_array(r->batch)) {
		json_decref(r->batch);
		r->batch = json_array();
	}
	r->old_spec = json_loads(json_string_value(json_object_get(row, "old_spec")), 0, NULL);
	refresh_params_default(&r->p);
	pj = json_loads(json_string_value(json_object_get(row, "params")), 0, NULL);
	if (pj) {
		/* stored by params_to_json: min_healthy as "P%", warmup in ms */
		json_t *w = json_object_get(pj, "warmup_ms");

		r->p.warmup_ms = json_integer_value(w);
		json_object_del(pj, "warmup_ms");
		refresh_params_read(pj, "params", &r->p, &e);
		if (e.code && strstr(e.field, "min_healthy"))
			r->p.min_healthy_pct = 99;   /* stored surge 0 at 100%: cannot be */
	}
	json_decref(pj);
}

#define REFRESH_COLUMNS                                                                  \
	"id, cluster, grp, template, target, params, state, extra, batch, replaced, batches," \
	" reason, old_spec, started_ms, updated_ms"

int
refresh_create(struct store *st, const char *cluster, const char *grp, const char *tname,
	       const char *target, const struct refresh_params *p, const json_t *old_spec,
	       int64_t now_ms, int64_t *id, struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT id, state FROM refreshes WHERE cluster = ? AND grp = ?"
				" AND state IN ('running', 'paused') LIMIT 1",
				"[ss]", cluster, grp);
	json_t *pj;
	char *ptext, *stext;
	int rc;

	if (row == NULL && err->code)
		return err->code;
	if (row) {
		rc = herr_set(err, HERR_CONFLICT,
			      "group %s/%s already has a refresh (%lld, %s): cancel it first",
			      cluster, grp, (long long)json_integer_value(json_object_get(row, "id")),
			      json_string_value(json_object_get(row, "state")));
		json_decref(row);
		return rc;
	}
	pj = params_to_json(p);
	ptext = json_dumps(pj, JSON_COMPACT);
	stext = json_dumps(old_spec, JSON_COMPACT);
	json_decref(pj);
	rc = store_q(st, NULL, NULL, err,
		     "INSERT INTO refreshes (cluster, grp, template, target, params, state,"
		     " old_spec, started_ms, updated_ms) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
		     "[ssssssII]", cluster, grp, tname, target, ptext ? ptext : "{}",
		     stext ? stext : "{}", (json_int_t)now_ms, (json_int_t)now_ms);
	free(ptext);
	free(stext);
	if (rc < 0)
		return rc;
	row = store_row(st, err, "SELECT MAX(id) AS id FROM refreshes WHERE cluster = ? AND grp = ?",
			"[ss]", cluster, grp);
	if (row == NULL)
		return err->code ? err->code : herr_set(err, HERR_STORE, "refresh not stored");
	*id = json_integer_value(json_object_get(row, "id"));
	json_decref(row);
	return 0;
}

int
refresh_latest(struct store *st, const char *cluster, const char *grp, struct refresh *out,
	       struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT " REFRESH_COLUMNS " FROM refreshes WHERE cluster = ? AND grp = ?"
				" ORDER BY id DESC LIMIT 1",
				"[ss]", cluster, grp);

	memset(out, 0, sizeof(*out));
	if (row == NULL)
		return err->code ? err->code
				 : herr_set(err, HERR_NOTFOUND, "group %s/%s has no refresh", cluster,
					    grp);
	refresh_from_row(row, out);
	json_decref(row);
	return 0;
}

int
refresh_running(struct store *st, struct refresh **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;

	*out = NULL;
	*n = 0;
	if (store_q(st, &rows, NULL, err,
		    "SELECT " REFRESH_COLUMNS " FROM refreshes WHERE state = 'running' ORDER BY id",
		    "[]") < 0)
		return err->code;
	*out = xcalloc(json_array_size(rows) + 1, sizeof(**out));
	json_array_foreach(rows, i, row)
		refresh_from_row(row, &(*out)[(*n)++]);
	json_decref(rows);
	return 0;
}

int
refresh_list(struct store *st, const char *cluster, const char *grp, int limit,
	     struct refresh **out, size_t *n, struct herr *err)
{
	json_t *rows = NULL, *row;
	size_t i;

	*out = NULL;
	*n = 0;
	if (store_q(st, &rows, NULL, err,
		    "SELECT " REFRESH_COLUMNS " FROM refreshes WHERE (? = '' OR cluster = ?)"
		    " AND (? = '' OR grp = ?) ORDER BY id DESC LIMIT ?",
		    "[ssssi]", cluster ? cluster : "", cluster ? cluster : "", grp ? grp : "",
		    grp ? grp : "", limit) < 0)
		return err->code;
	*out = xcalloc(json_array_size(rows) + 1, sizeof(**out));
	json_array_foreach(rows, i, row)
		refresh_from_row(row, &(*out)[(*n)++]);
	json_decref(rows);
	return 0;
}

int
refresh_save(struct store *st, const struct refresh *r, int64_t now_ms, struct herr *err)
{
	json_t *pj = params_to_json(&r->p);
	char *ptext = json_dumps(pj, JSON_COMPACT), *btext = json_dumps(r->batch, JSON_COMPACT);
	int rc = store_q(st, NULL, NULL, err,
			 "UPDATE refreshes SET state = ?, reason = ?, extra = ?, batch = ?,"
			 " replaced = ?, batches = ?, params = ?, updated_ms = ? WHERE id = ?",
			 "[ssIsIIsII]", r->state, r->reason, (json_int_t)r->extra,
			 btext ? btext : "[]", (json_int_t)r->replaced, (json_int_t)r->batches,
			 ptext ? ptext : "{}", (json_int_t)now_ms, (json_int_t)r->id);

	json_decref(pj);
	free(ptext);
	free(btext);
	return rc;
}

int
refresh_host_out(struct store *st, int64_t rid, const char *id, const char *name,
		 int64_t now_ms, struct herr *err)
{
	int64_t changed = 0;

	if (store_q(st, NULL, &changed, err,
		    "INSERT INTO refresh_hosts (refresh_id, host_id, host, out_ms)"
		    " VALUES (?, ?, ?, ?) ON CONFLICT (refresh_id, host_id) DO NOTHING",
		    "[IssI]", (json_int_t)rid, id, name, (json_int_t)now_ms) < 0)
		return err->code;
	return changed > 0 ? 1 : 0;
}

json_t *
refresh_hosts_out(struct store *st, int64_t rid, struct herr *err)
{
	json_t *rows = NULL, *ids = json_array(), *row;
	size_t i;

	if (store_q(st, &rows, NULL, err,
		    "SELECT host_id FROM refresh_hosts WHERE refresh_id = ? ORDER BY out_ms, host_id",
		    "[I]", (json_int_t)rid) < 0)
		return ids;
	json_array_foreach(rows, i, row)
		json_array_append(ids, json_object_get(row, "host_id"));
	json_decref(rows);
	return ids;
}

bool
refresh_took_out(struct store *st, const char *id)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err,
				"SELECT 1 AS one FROM refresh_hosts WHERE host_id = ? LIMIT 1", "[s]", id);
	bool yes = row != NULL;

	json_decref(row);
	return yes;
}

json_t *
refresh_to_json(struct store *st, const struct refresh *r)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *names = json_array(), *row;
	char ts[40], tu[40];
	size_t i;

	if (store_q(st, &rows, NULL, &err,
		    "SELECT host FROM refresh_hosts WHERE refresh_id = ? ORDER BY out_ms, host",
		    "[I]", (json_int_t)r->id) == 0)
		json_array_foreach(rows, i, row)
			json_array_append(names, json_object_get(row, "host"));
	json_decref(rows);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:i, s:i, s:o, s:o,"
			 " s:s, s:I, s:s, s:I}",
			 "id", (json_int_t)r->id, "cluster", r->cluster, "group", r->grp,
			 "template", r->template_, "target_version", r->target, "params",
			 params_to_json(&r->p), "state", r->state, "reason", r->reason, "extra",
			 r->extra, "replaced", r->replaced, "batches", r->batches, "batch",
			 r->batch ? json_incref(r->batch) : json_array(), "hosts_replaced", names, "started",
			 fmt_time(r->started_ms, ts, sizeof(ts)), "started_ms",
			 (json_int_t)r->started_ms, "updated", fmt_time(r->updated_ms, tu, sizeof(tu)),
			 "updated_ms", (json_int_t)r->updated_ms);
}
