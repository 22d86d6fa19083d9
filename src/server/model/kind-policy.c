/* model/kind-policy.c - the policy kind: a group's autoscaling policy,
 * threshold/step (`when` + `adjust`), target tracking (`target`) or
 * scheduled (`schedule` + `set`). Its check is policy_parse, the one
 * validator of policy rules, so a bad policy is refused at apply time with
 * the rules the autoscaler applies. */
#include <stdio.h>
#include <string.h>

#include "model/kind.h"
#include "model/policy.h"

/* when and target are expressions, checked by policy_parse (a PromQL
 * policy's read `query > 100`, which F_EXPR would refuse). */
static const struct field policy_fields[] = {
	{ "when", F_STR, 0, NULL, 0, 0 },
	{ "for", F_DURATION, 0, NULL, 0, 86400 },
	{ "adjust", F_ADJUST, 0, NULL, 0, 0 },
	{ "cooldown", F_DURATION, 0, NULL, 0, 86400 },
	{ "target", F_STR, 0, NULL, 0, 0 },
	{ "tolerance", F_INT, 0, NULL, 0, 100 },
	{ "scale_in_cooldown", F_DURATION, 0, NULL, 0, 86400 },
	{ "schedule", F_CRON, 0, NULL, 0, 0 },
	{ "timezone", F_STR, 0, NULL, 0, 0 },
	{ "set", F_OBJECT, 0, NULL, 0, 0 },
	{ "before_terminate", F_SCRIPTNAME, 0, "script", 0, 0 },
	{ "drain_timeout", F_DURATION, 0, NULL, 0, 86400 },
	{ "mode", F_STR, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "source", F_STR, 0, NULL, 0, 0 },
	{ "url", F_STR, 0, NULL, 0, 0 },
	{ "query", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

/* The field table checks types; every policy rule (durations, target > 0,
 * set bounds, time zone, ...) is policy_parse's, the same validator the
 * autoscaler and simulate use, so what is stored is what acts. */
static int
policy_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	     struct herr *err)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	struct policy p;
	char field[sizeof(err->field)], msg[sizeof(err->msg)], fp[256];

	if (policy_parse(name ? name : "", obj, &p, err) < 0) {
		snprintf(field, sizeof(field), "%s", err->field);
		snprintf(msg, sizeof(msg), "%s", err->msg);
		snprintf(fp, sizeof(fp), "%s%s%s", path, *path && *field ? "." : "", field);
		return herr_field(err, HERR_INVALID, fp, "%s", msg);
	}
	herr_clear(err);
	return 0;
}

const struct kind kind_policy = {
	.name = "policy",
	.plural = "policies",
	.scope = SCOPE_GROUP,
	.fields = policy_fields,
	.check = policy_check,
};
