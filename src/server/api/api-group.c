/* api-group.c - host groups: min/desired/max, the template, launch order
 * (`after`), monitors and the manual scale action. The blueprint's `size`
 * sets `desired` when it is first given or changed; otherwise a re-apply
 * keeps the desired size the autoscaler or an operator chose. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "model/group-state.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"

#define GROUP_MAX_SIZE 1000
#define GROUP_DEFAULT_MAX 100

static const struct field group_fields[] = {
	{ "template", F_NAME, FL_REQ, "template", 0, 0 },
	{ "size", F_INT, 0, NULL, 0, GROUP_MAX_SIZE },
	{ "desired", F_INT, 0, NULL, 0, GROUP_MAX_SIZE },
	{ "min", F_INT, 0, NULL, 0, GROUP_MAX_SIZE },
	{ "max", F_INT, 0, NULL, 0, GROUP_MAX_SIZE },
	{ "after", F_NAMES, 0, "group", 0, 0 },
	{ "monitors", F_NAMES, 0, "monitor", 0, 0 },
	{ "termination", F_STR, 0, NULL, 0, 0 },
	{ "warmup", F_DURATION, 0, NULL, 0, 86400 },
	{ "max_provision_time", F_DURATION, 0, NULL, 0, 86400 },
	{ "unhealthy_after", F_DURATION, 0, NULL, 0, 86400 },
	{ "max_unhealthy", F_INT, 0, NULL, 0, 100 },
	{ "max_actions_per_hour", F_INT, 0, NULL, 1, 10000 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "hosts", F_OBJECT, FL_OUT, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static json_int_t
geti(const json_t *o, const char *k, json_int_t dflt)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int
group_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	    struct herr *err)
{
	json_t *size = json_object_get(obj, "size"), *desired = json_object_get(obj, "desired");
	json_int_t min, max, d;
	const char *term = json_string_value(json_object_get(obj, "termination"));
	char fp[256];

#define FP(f) (snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", f), fp)
	if (term && strcmp(term, "newest") != 0 && strcmp(term, "oldest") != 0 &&
	    !(strncmp(term, "least:", 6) == 0 && tsdb_metric_name_ok(term + 6)))
		return herr_field(err, HERR_INVALID, FP("termination"),
				  "must be newest, oldest or least:<metric> (a metric name: [A-Za-z_:][A-Za-z0-9_:]*)");
	if (desired)
		d = json_integer_value(desired);
	else if (size && (old == NULL || geti(old, "size", -1) != json_integer_value(size)))
		d = json_integer_value(size);
	else if (old)
		d = geti(old, "desired", geti(old, "size", 0));
	else
		d = size ? json_integer_value(size) : 0;
	min = geti(obj, "min", 0);
	max = geti(obj, "max", d > GROUP_DEFAULT_MAX ? d : GROUP_DEFAULT_MAX);
	if (min > max)
		return herr_field(err, HERR_INVALID, FP("min"), "must not be larger than max (%lld)",
				  (long long)max);
	if (size && (json_integer_value(size) < min || json_integer_value(size) > max))
		return herr_field(err, HERR_INVALID, FP("size"), "must be between min (%lld) and max (%lld)",
				  (long long)min, (long long)max);
	if (desired && (d < min || d > max))
		return herr_field(err, HERR_INVALID, FP("desired"),
				  "must be between min (%lld) and max (%lld)", (long long)min,
				  (long long)max);
	if (d < min)
		d = min;
	if (d > max)
		d = max;
	json_object_set_new(obj, "min", json_integer(min));
	json_object_set_new(obj, "max", json_integer(max));
	json_object_set_new(obj, "desired", json_integer(d));
	return 0;
#undef FP
}

const struct kind kind_group = {
	.name = "group",
	.plural = "groups",
	.scope = SCOPE_CLUSTER,
	.fields = group_fields,
	.check = group_check,
};

int
group_delete_check(struct store *st, const char *cluster, const char *name, struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT COUNT(*) AS n FROM hosts WHERE cluster = ? AND grp = ?"
				" AND state <> 'terminated'",
				"[ss]", cluster, name);
	json_int_t n = row ? json_integer_value(json_object_get(row, "n")) : 0;

	json_decref(row);
	if (err->code)
		return err->code;
	if (n > 0)
		return herr_set(err, HERR_CONFLICT,
				"group '%s/%s' still has %lld host(s): scale it to 0 first", cluster,
				name, (long long)n);
	return 0;
}

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
	char scope[sizeof(r.scope)], name[sizeof(r.name)];
	json_int_t n, old;
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
	if (rc < 0)
		goto fail;
	if (n < geti(r.spec, "min", 0) || n > geti(r.spec, "max", GROUP_MAX_SIZE)) {
		herr_field(&err, HERR_INVALID, "desired", "must be between min (%lld) and max (%lld)",
			   (long long)geti(r.spec, "min", 0), (long long)geti(r.spec, "max", 0));
		goto fail;
	}
	old = geti(r.spec, "desired", 0);
	if (group_state_note(rq->srv->store, r.scope, r.name, GROUP_SCALED_MANUALLY, now_ms(), &err) < 0)
		goto fail;
	if (old != n) {
		json_object_set_new(r.spec, "desired", json_integer(n));
		if (res_put(rq->srv->store, &kind_group, r.scope, r.name, r.spec, "", &created, &err) < 0)
			goto fail;
		activity_add(rq->srv->store, r.scope, r.name, NULL, n > old ? "scale_out" : "scale_in",
			     "manual", json_pack("{s:I,s:I}", "from", old, "to", n), &err,
			     "desired %lld -> %lld by %s", (long long)old, (long long)n, rq->who.name);
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
