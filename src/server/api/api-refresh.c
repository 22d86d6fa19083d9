/* api-refresh.c - instance refreshes (`herd group refresh`, model/refresh.h):
 * start one (the group's `refresh:` defaults, then the request's values;
 * dry_run answers the plan and stores nothing), read the latest, pause,
 * resume or cancel it. The controller drives it (ctl/refresh.h). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "model/group.h"
#include "model/refresh.h"
#include "model/template-version.h"
#include "store/store.h"
#include "util.h"

#define REFRESH_LIST_MAX 1000    /* ?limit= of GET /v1/refreshes */

/* The group of rq's :name (?cluster= if ambiguous) into *r. */
static int
group_of(struct req *rq, struct res *r, struct herr *err)
{
	const char *cl = req_query(rq, "cluster");

	return cl ? res_get(rq->srv->store, &kind_group, cl, req_param(rq, 0), r, err)
		  : res_find(rq->srv->store, &kind_group, req_param(rq, 0), r, err);
}

/* The spec of the version most hosts behind run (its snapshot's "spec"),
 * for rollback: owned, or an empty object when none is kept. */
static json_t *
old_spec_of(struct store *st, const json_t *diff)
{
	struct herr err = HERR_INIT;
	json_t *counts = json_object(), *h, *snap, *spec;
	const char *best = NULL, *tname = NULL;
	json_int_t most = 0;
	size_t i;

	json_array_foreach(json_object_get(diff, "behind"), i, h) {
		const char *ver = json_string_value(json_object_get(h, "version"));
		json_int_t n;

		if (ver == NULL || strcmp(ver, "unknown") == 0)
			continue;
		n = json_integer_value(json_object_get(counts, ver)) + 1;
		json_object_set_new(counts, ver, json_integer(n));
		if (n > most) {
			most = n;
			best = json_string_value(json_object_get(h, "version"));
			tname = json_string_value(json_object_get(h, "template"));
		}
	}
	snap = best ? template_version_get(st, tname, best, &err) : NULL;
	json_decref(counts);
	spec = json_incref(json_object_get(snap, "spec"));
	json_decref(snap);
	return spec ? spec : json_object();
}

/* POST /v1/groups/:name/refresh {batch, surge, min_healthy, warmup,
 * pause_after, rollback, dry_run}: 201 and the refresh, or with dry_run 200
 * and the plan. 409 when nothing is behind or one is already going. */
void
api_group_refresh(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct store *st = rq->srv->store;
	json_t *body = req_json(rq), *diff = NULL, *o, *old = NULL, *dry;
	struct refresh_params p;
	struct refresh r = { 0 };
	struct res g = { 0 };
	int64_t id = 0;
	json_int_t desired;

	if (body == NULL)
		return;
	dry = json_object_get(body, "dry_run");
	if (dry && !json_is_boolean(dry))
		return reply_errf(rq, HERR_INVALID, "dry_run", "must be true or false");
	json_incref(dry);
	json_object_del(body, "dry_run");
	refresh_params_default(&p);
	if (group_of(rq, &g, &err) < 0)
		goto fail;
	desired = json_integer_value(json_object_get(g.spec, "desired"));
	if (refresh_params_read(json_object_get(g.spec, "refresh"), "refresh", &p, &err) < 0 ||
	    refresh_params_read(body, "", &p, &err) < 0 ||
	    group_diff(st, g.scope, g.name, &diff, &err) < 0)
		goto fail;
	if (json_array_size(json_object_get(diff, "behind")) == 0) {
		herr_set(&err, HERR_CONFLICT, "every host of %s/%s is on version %s: nothing to refresh",
			 g.scope, g.name, json_string_value(json_object_get(diff, "version")));
		goto fail;
	}
	if (json_is_true(dry)) {
		o = json_pack("{s:s, s:s, s:O, s:O, s:O, s:i, s:i, s:b}", "cluster", g.scope,
			      "group", g.name, "template", json_object_get(diff, "template"),
			      "target_version", json_object_get(diff, "version"), "behind",
			      json_object_get(diff, "behind"), "batch_size",
			      refresh_batch_size(&p, (int)desired), "min_ready",
			      refresh_min_healthy(&p, (int)desired), "dry_run", 1);
		reply_json(rq, 200, o);
		goto out;
	}
	old = old_spec_of(st, diff);
	if (store_begin(st, &err) < 0)
		goto fail;
	if (refresh_create(st, g.scope, g.name, json_string_value(json_object_get(diff, "template")),
			   json_string_value(json_object_get(diff, "version")), &p, old, now_ms(), &id,
			   &err) < 0 ||
	    activity_add(st, g.scope, g.name, NULL, "refresh_start", "manual", NULL, &err,
			 "refresh %lld to version %s by %s: %zu host(s) behind", (long long)id,
			 json_string_value(json_object_get(diff, "version")), rq->who.name,
			 json_array_size(json_object_get(diff, "behind"))) < 0 ||
	    refresh_latest(st, g.scope, g.name, &r, &err) < 0 || store_commit(st, &err) < 0) {
		store_rollback(st);
		goto fail;
	}
	server_kick(rq->srv);
	reply_json(rq, 201, refresh_to_json(st, &r));
	goto out;
fail:
	reply_err(rq, &err);
out:
	refresh_release(&r);
	res_release(&g);
	json_decref(dry);
	json_decref(diff);
	json_decref(old);
}

/* GET /v1/groups/:name/refresh: the group's latest refresh. */
void
api_group_refresh_get(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct refresh r = { 0 };
	struct res g = { 0 };

	if (group_of(rq, &g, &err) < 0 ||
	    refresh_latest(rq->srv->store, g.scope, g.name, &r, &err) < 0)
		reply_err(rq, &err);
	else
		reply_json(rq, 200, refresh_to_json(rq->srv->store, &r));
	refresh_release(&r);
	res_release(&g);
}

/* GET /v1/refreshes?cluster=C&group=G&limit=N: the latest refreshes, newest
 * first (default 20, at most REFRESH_LIST_MAX), of a cluster and group when
 * given; none is an empty list, not a 404 (the console asks every poll). */
void
api_refresh_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *lim = req_query(rq, "limit");
	struct refresh *rs = NULL;
	json_t *items;
	long limit = 20;
	size_t n = 0;

	if (lim && parse_long(lim, 1, REFRESH_LIST_MAX, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d",
				  REFRESH_LIST_MAX);
	if (refresh_list(rq->srv->store, req_query(rq, "cluster"), req_query(rq, "group"),
			 (int)limit, &rs, &n, &err) < 0)
		return reply_err(rq, &err);
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, refresh_to_json(rq->srv->store, &rs[i]));
	refresh_free_all(rs, n);
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

/* POST /v1/groups/:name/refresh/:action (pause, resume, cancel): the latest
 * refresh changed; 409 when it is not in a state the action applies to. */
void
api_group_refresh_action(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct store *st = rq->srv->store;
	const char *action = req_param(rq, 1);
	struct refresh r = { 0 };
	struct res g = { 0 };
	bool ok;

	if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0 &&
	    strcmp(action, "cancel") != 0)
		return reply_errf(rq, HERR_INVALID, "action", "must be pause, resume or cancel");
	if (store_begin(st, &err) < 0)
		return reply_err(rq, &err);
	if (group_of(rq, &g, &err) < 0 || refresh_latest(st, g.scope, g.name, &r, &err) < 0)
		goto fail;
	ok = strcmp(action, "pause") == 0    ? strcmp(r.state, "running") == 0
	     : strcmp(action, "resume") == 0 ? strcmp(r.state, "paused") == 0 ||
						  strcmp(r.state, "failed") == 0
					     : strcmp(r.state, "running") == 0 ||
						  strcmp(r.state, "paused") == 0;
	if (!ok) {
		herr_set(&err, HERR_CONFLICT, "refresh %lld of %s/%s is %s: cannot %s it",
			 (long long)r.id, g.scope, g.name, r.state, action);
		goto fail;
	}
	r.extra = 0;
	json_array_clear(r.batch);
	if (strcmp(action, "resume") == 0) {
		snprintf(r.state, sizeof(r.state), "running");
		if (r.p.pause_after > 0 && r.batches >= r.p.pause_after)
			r.p.pause_after = 0;   /* its pause is over */
	} else {
		snprintf(r.state, sizeof(r.state), "%s", strcmp(action, "pause") == 0 ? "paused"
										    : "cancelled");
	}
	snprintf(r.reason, sizeof(r.reason), "%s by %s", strcmp(action, "pause") == 0 ? "paused"
							 : strcmp(action, "resume") == 0 ? "resumed"
							 : "cancelled", rq->who.name);
	if (refresh_save(st, &r, now_ms(), &err) < 0 ||
	    activity_add(st, g.scope, g.name, NULL, "refresh_state", "manual", NULL, &err,
			 "refresh %lld: %s", (long long)r.id, r.reason) < 0 ||
	    store_commit(st, &err) < 0)
		goto fail;
	server_kick(rq->srv);
	reply_json(rq, 200, refresh_to_json(st, &r));
	refresh_release(&r);
	res_release(&g);
	return;
fail:
	store_rollback(st);
	reply_err(rq, &err);
	refresh_release(&r);
	res_release(&g);
}
