/* api-policy.c - autoscaling policies of a group: threshold/step (`when` +
 * `adjust`), target tracking (`target`), or scheduled (`schedule` + `set`).
 * Expressions are parsed here so a bad one is refused at apply time. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "expr.h"
#include "scale/scale.h"
#include "util.h"

static const struct field policy_fields[] = {
	{ "when", F_EXPR, 0, NULL, 0, 0 },
	{ "for", F_DURATION, 0, NULL, 0, 86400 },
	{ "adjust", F_ADJUST, 0, NULL, 0, 0 },
	{ "cooldown", F_DURATION, 0, NULL, 0, 86400 },
	{ "target", F_EXPR, 0, NULL, 0, 0 },
	{ "tolerance", F_INT, 0, NULL, 0, 100 },
	{ "scale_in_cooldown", F_DURATION, 0, NULL, 0, 86400 },
	{ "schedule", F_CRON, 0, NULL, 0, 0 },
	{ "timezone", F_STR, 0, NULL, 0, 0 },
	{ "set", F_OBJECT, 0, NULL, 0, 0 },
	{ "before_terminate", F_SCRIPTNAME, 0, "script", 0, 0 },
	{ "drain_timeout", F_DURATION, 0, NULL, 0, 86400 },
	{ "mode", F_STR, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
policy_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	     struct herr *err)
{
	json_t *when = json_object_get(obj, "when"), *target = json_object_get(obj, "target");
	json_t *sched = json_object_get(obj, "schedule"), *set = json_object_get(obj, "set");
	const char *mode = json_string_value(json_object_get(obj, "mode"));
	struct expr e;
	char fp[256];
	const char *key;
	json_t *v;

#define FP(f) (snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", f), fp)
	if ((when != NULL) + (target != NULL) + (sched != NULL) != 1)
		return herr_field(err, HERR_INVALID, FP("when"),
				  "a policy needs exactly one of when (threshold), target (tracking) or schedule");
	if (when) {
		if (expr_parse(json_string_value(when), &e, err) < 0)
			return herr_field(err, HERR_INVALID, FP("when"), "%s", "invalid condition");
		if (e.op == OP_EQ)
			return herr_field(err, HERR_INVALID, FP("when"),
					  "use >, >=, < or <= in when ('=' is for target)");
		if (json_object_get(obj, "adjust") == NULL)
			return herr_field(err, HERR_INVALID, FP("adjust"),
					  "is required with when (e.g. +1, -1, +20%%, =5)");
	}
	if (target) {
		if (expr_parse(json_string_value(target), &e, err) < 0)
			return herr_field(err, HERR_INVALID, FP("target"), "%s", "invalid target");
		if (e.op != OP_EQ)
			return herr_field(err, HERR_INVALID, FP("target"),
					  "must be like 'avg(cpu) = 60'");
		if (e.value <= 0)
			return herr_field(err, HERR_INVALID, FP("target"), "the target must be above 0");
	}
	if (sched && set == NULL)
		return herr_field(err, HERR_INVALID, FP("set"),
				  "is required with schedule (e.g. {min: 4, desired: 4})");
	json_object_foreach(set, key, v) {
		if ((strcmp(key, "min") && strcmp(key, "max") && strcmp(key, "desired")) ||
		    !json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000) {
			snprintf(fp, sizeof(fp), "%s%sset.%s", path, *path ? "." : "", key);
			return herr_field(err, HERR_INVALID, fp,
					  "set takes min, desired and max, integers 0-1000");
		}
	}
	if (mode && strcmp(mode, "active") != 0 && strcmp(mode, "shadow") != 0)
		return herr_field(err, HERR_INVALID, FP("mode"), "must be active or shadow");
	herr_clear(err);
	return 0;
#undef FP
}

const struct kind kind_policy = {
	.name = "policy",
	.plural = "policies",
	.scope = SCOPE_GROUP,
	.fields = policy_fields,
	.check = policy_check,
	.columns = "cluster,group,name,when,target,schedule,adjust",
};

/* Finds the policy of the URL (NAME, or ?cluster=&group=). */
static int
policy_lookup(struct req *rq, struct res *r, char *cluster, char *group, struct herr *err)
{
	const char *c = req_query(rq, "cluster"), *g = req_query(rq, "group"), *slash;
	int rc;

	if (c && g) {
		char scope[200];
		snprintf(scope, sizeof(scope), "%s/%s", c, g);
		rc = res_get(rq->srv->store, &kind_policy, scope, req_param(rq, 0), r, err);
	} else {
		rc = res_find(rq->srv->store, &kind_policy, req_param(rq, 0), r, err);
	}
	if (rc < 0)
		return rc;
	slash = strchr(r->scope, '/');
	snprintf(cluster, 64, "%.*s", (int)(slash - r->scope), r->scope);
	snprintf(group, 64, "%s", slash + 1);
	return 0;
}

void
api_policy_explain(struct req *rq)
{
	struct herr err = HERR_INIT;
	char cluster[64], group[64];
	struct res r;
	json_t *e;

	if (policy_lookup(rq, &r, cluster, group, &err) < 0)
		return reply_err(rq, &err);
	e = autoscale_explain(cluster, group, r.name);
	reply_json(rq, 200, json_pack("{s:s,s:s,s:s,s:o,s:o}", "cluster", cluster, "group", group,
				      "name", r.name, "policy", json_deep_copy(r.spec), "last",
				      e ? e : json_null()));
	res_release(&r);
}

void
api_policy_simulate(struct req *rq)
{
	struct herr err = HERR_INIT;
	char cluster[64], group[64];
	json_t *body = req_json(rq), *spec, *out = NULL;
	const char *since;
	int64_t since_ms = 3600 * 1000, now = now_ms();
	struct res r;

	if (body == NULL)
		return;
	since = json_string_value(json_object_get(body, "since"));
	if (since && parse_duration_ms(since, &since_ms) < 0)
		return reply_errf(rq, HERR_INVALID, "since", "must be a duration like 1h");
	if (policy_lookup(rq, &r, cluster, group, &err) < 0)
		return reply_err(rq, &err);
	spec = json_object_get(body, "policy");
	if (spec) {
		/* a policy file to try instead of the stored one: validated like one */
		spec = json_deep_copy(spec);
		json_object_del(spec, "name");
		if (kind_validate(&kind_policy, spec, NULL, "policy", &err) < 0) {
			json_decref(spec);
			res_release(&r);
			return reply_err(rq, &err);
		}
	} else {
		spec = json_incref(r.spec);
	}
	if (policy_simulate(rq->srv, cluster, group, r.name, spec, now - since_ms, now, &out, &err) < 0)
		reply_err(rq, &err);
	else
		reply_json(rq, 200, out);
	json_decref(spec);
	res_release(&r);
}
