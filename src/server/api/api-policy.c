/* api-policy.c - autoscaling policies of a group: threshold/step (`when` +
 * `adjust`), target tracking (`target`), or scheduled (`schedule` + `set`).
 * Expressions are parsed here so a bad one is refused at apply time. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "expr.h"

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
