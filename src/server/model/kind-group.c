/* model/kind-group.c - the group kind: min/desired/max, the template, launch
 * order (`after`), monitors, termination order, alert rules. The blueprint's `size` sets
 * `desired` when it is first given or changed; otherwise a re-apply keeps the
 * desired size the autoscaler or an operator chose. `expect` is the load the
 * group is designed for (and on how many hosts) (`herd policy check` and the warning on apply
 * predict flapping at it when the hosts have no data yet). */
#include <stdio.h>
#include <string.h>

#include "model/alert-rule.h"
#include "model/kind.h"
#include "model/refresh.h"
#include "util.h"
#include "tsdb/tsdb.h"

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
	{ "expect", F_OBJECT, 0, NULL, 0, 0 },
	{ "refresh", F_OBJECT, 0, NULL, 0, 0 },       /* model/refresh.h */
	{ "alerts", F_LIST, 0, NULL, 0, 0 },          /* model/alert-rule.h */
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

/* expect: {load: N, hosts: H, slots: S, lasts: DURATION}, all optional but
 * load. */
static int
expect_check(const json_t *e, char *fp, size_t fn, const char *path, struct herr *err)
{
	const char *key;
	json_t *v;
	int64_t ms;

	json_object_foreach((json_t *)e, key, v) {
		snprintf(fp, fn, "%s%sexpect.%s", path, *path ? "." : "", key);
		if (strcmp(key, "load") == 0 || strcmp(key, "slots") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9)
				return herr_field(err, HERR_INVALID, fp, "must be a number from 0 to 1e9");
		} else if (strcmp(key, "hosts") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > GROUP_MAX_SIZE)
				return herr_field(err, HERR_INVALID, fp, "must be an integer from 1 to %d",
						  GROUP_MAX_SIZE);
		} else if (strcmp(key, "lasts") == 0) {
			if (!json_is_string(v) || parse_duration_ms(json_string_value(v), &ms) < 0 ||
			    ms <= 0 || ms > 86400000)
				return herr_field(err, HERR_INVALID, fp, "must be a duration from 1s to 24h");
		} else {
			return herr_field(err, HERR_INVALID, fp, "unknown (expect has load, hosts, slots, lasts)");
		}
	}
	if (json_object_size(e) && !json_object_get(e, "load")) {
		snprintf(fp, fn, "%s%sexpect.load", path, *path ? "." : "");
		return herr_field(err, HERR_INVALID, fp, "is required with expect");
	}
	return 0;
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
	if (json_object_get(obj, "expect") &&
	    expect_check(json_object_get(obj, "expect"), fp, sizeof(fp), path, err) < 0)
		return err->code;
	if (term && strcmp(term, "newest") != 0 && strcmp(term, "oldest") != 0 &&
	    !(strncmp(term, "least:", 6) == 0 && tsdb_metric_name_ok(term + 6)))
		return herr_field(err, HERR_INVALID, FP("termination"),
				  "must be newest, oldest or least:<metric> (a metric name: [A-Za-z_:][A-Za-z0-9_:]*)");
	if (alert_rules_check(json_object_get(obj, "alerts"), FP("alerts"), err) < 0)
		return err->code;
	if (json_object_get(obj, "refresh")) {
		struct refresh_params rp;

		refresh_params_default(&rp);
		if (refresh_params_read(json_object_get(obj, "refresh"), FP("refresh"), &rp, err) < 0)
			return err->code;
	}
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
