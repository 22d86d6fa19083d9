/* api-group.c - host groups: min/desired/max, the template, launch order
 * (`after`), monitors and the manual scale action. The blueprint's `size`
 * sets `desired` when it is first given or changed; otherwise a re-apply
 * keeps the desired size the autoscaler or an operator chose. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "model/group.h"
#include "model/group-state.h"
#include "model/template-version.h"
#include "store/store.h"
#include "util.h"

/* POST /v1/groups/:name/scale {"desired": N} (?cluster= if ambiguous). The
 * new size must lie within min/max; it pauses the group's policies for their
 * cooldown (the time is bookkeeping, in group_state: a scale to the current
 * size changes neither the spec nor its version). Answers the group with its
 * read-only "status". */
void
api_group_scale(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *d, *o;
	const char *cl = req_query(rq, "cluster");
	struct res r = { 0 };
	struct group g;
	char scope[sizeof(r.scope)], name[sizeof(r.name)];
	json_int_t n, old, min, max;
	bool created;
	int rc;

	if (body == NULL)
		return;
	d = json_object_get(body, "desired");
	if (!json_is_integer(d))
		return reply_errf(rq, HERR_INVALID, "desired", "must be an integer");
	n = json_integer_value(d);
	if (store_begin(rq->srv->store, &err) < 0)
		return reply_err(rq, &err);
	rc = cl ? res_get(rq->srv->store, &kind_group, cl, req_param(rq, 0), &r, &err)
		: res_find(rq->srv->store, &kind_group, req_param(rq, 0), &r, &err);
	if (rc < 0 || group_from_spec(r.scope, r.name, r.spec, &g, &err) < 0)
		goto fail;
	min = g.min < 0 ? 0 : g.min;   /* absent (-1): no bound below */
	max = g.max < 0 ? GROUP_MAX_SIZE : g.max;
	if (n < min || n > max) {
		herr_field(&err, HERR_INVALID, "desired", "must be between min (%lld) and max (%lld)",
			   (long long)min, (long long)(g.max < 0 ? 0 : g.max));
		goto fail;
	}
	old = g.desired < 0 ? 0 : g.desired;
	if (group_state_note(rq->srv->store, r.scope, r.name, GROUP_SCALED_MANUALLY, now_ms(), &err) < 0)
		goto fail;
	if (old != n) {
		json_object_set_new(r.spec, "desired", json_integer(n));
		if (res_put(rq->srv->store, &kind_group, r.scope, r.name, r.spec, "", &created, &err) < 0)
			goto fail;
		json_t *in = json_pack("{s:I,s:I}", "from", old, "to", n);

		activity_add(rq->srv->store, r.scope, r.name, NULL, n > old ? "scale_out" : "scale_in",
			     "manual", in, &err, "desired %lld -> %lld by %s", (long long)old,
			     (long long)n, rq->who.name);
		json_decref(in);
	}
	if (store_commit(rq->srv->store, &err) < 0)
		goto fail_nr;
	res_release(&r);
	server_kick(rq->srv);
	/* as it is now, with its read-only status (res_get clears r first) */
	snprintf(scope, sizeof(scope), "%s", r.scope);
	snprintf(name, sizeof(name), "%s", r.name);
	if (res_get(rq->srv->store, &kind_group, scope, name, &r, &err) < 0)
		return reply_err(rq, &err);
	o = res_to_json(&kind_group, &r);
	res_release(&r);
	if (group_state_add_status(rq->srv->store, scope, name, o, &err) < 0) {
		json_decref(o);
		return reply_err(rq, &err);
	}
	reply_json(rq, 200, o);
	return;
fail:
	store_rollback(rq->srv->store);
fail_nr:
	res_release(&r);
	reply_err(rq, &err);
}

/* GET /v1/groups/:name/diff (?cluster= if ambiguous): the group's current
 * template version and its hosts behind it, with what changed
 * (group_diff()). */
void
api_group_diff(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *cl = req_query(rq, "cluster");
	struct res r = { 0 };
	json_t *out = NULL;
	int rc;

	rc = cl ? res_get(rq->srv->store, &kind_group, cl, req_param(rq, 0), &r, &err)
		: res_find(rq->srv->store, &kind_group, req_param(rq, 0), &r, &err);
	if (rc < 0)
		return reply_err(rq, &err);
	if (group_diff(rq->srv->store, r.scope, r.name, &out, &err) < 0)
		reply_err(rq, &err);
	else
		reply_json(rq, 200, out);
	res_release(&r);
}
