/* model/kind-lb.c - the lb kind: a load balancer, a listener forwarding to
 * the hosts of the groups whose template attaches to it. Its check ends with
 * lb_spec_from_json, the parser the controller and the HAProxy driver use,
 * so a spec stored here never fails in the driver. */
#include <stdio.h>
#include <string.h>

#include "lb/lb.h"
#include "model/kind.h"

static const struct field lb_fields[] = {
	{ "network", F_NAME, FL_REQ, "network", 0, 0 },
	{ "listen", F_ADDR, FL_REQ, NULL, 0, 0 },
	{ "backend_port", F_INT, FL_REQ, NULL, 1, 65535 },
	{ "mode", F_STR, 0, NULL, 0, 0 },
	{ "algorithm", F_STR, 0, NULL, 0, 0 },
	{ "health_check", F_OBJECT, 0, NULL, 0, 0 },
	{ "drain_timeout", F_DURATION, 0, NULL, 0, 3600 },
	{ "eip", F_STR, 0, NULL, 0, 0 },     /* qingcloud: "auto" or "eip-..." */
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
one_of(json_t *obj, const char *key, const char *const *allowed, const char *path,
       struct herr *err)
{
	const char *v = json_string_value(json_object_get(obj, key));
	char fp[256];

	if (v == NULL)
		return 0;
	for (int i = 0; allowed[i]; i++)
		if (strcmp(v, allowed[i]) == 0)
			return 0;
	snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", key);
	return herr_field(err, HERR_INVALID, fp, "'%s' is not one of the allowed values", v);
}

static int
lb_check(const struct kind *k, json_t *obj, const json_t *old, const char *path, struct herr *err)
{
	static const char *const modes[] = { "tcp", "http", NULL };
	static const char *const algos[] = { "roundrobin", "leastconn", "source", NULL };
	json_t *hc = json_object_get(obj, "health_check");
	struct lb_spec spec;
	char fp[256];
	const char *key;
	json_t *v;

	if (one_of(obj, "mode", modes, path, err) < 0 || one_of(obj, "algorithm", algos, path, err) < 0)
		return err->code;
	json_object_foreach(hc, key, v) {
		snprintf(fp, sizeof(fp), "%s%shealth_check.%s", path, *path ? "." : "", key);
		if (strcmp(key, "type") == 0 && json_is_string(v) &&
		    (strcmp(json_string_value(v), "tcp") == 0 || strcmp(json_string_value(v), "http") == 0))
			continue;
		if (strcmp(key, "path") == 0 && json_is_string(v) && json_string_value(v)[0] == '/')
			continue;
		if (strcmp(key, "expect") == 0 && json_is_integer(v) && json_integer_value(v) >= 100 &&
		    json_integer_value(v) <= 599)
			continue;
		if (strcmp(key, "interval") == 0 && json_is_string(v))
			continue;
		return herr_field(err, HERR_INVALID, fp,
				  "health_check takes type (tcp|http), path (/...), expect (status), interval");
	}
	/* What the controller will read, checked by the same function: a spec
	 * stored here never fails in the driver. */
	if (lb_spec_from_json("lb", obj, &spec, err) < 0) {
		char field[sizeof(err->field)];
		snprintf(field, sizeof(field), "%s", err->field);
		snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", field);
		snprintf(err->field, sizeof(err->field), "%s", fp);
		return err->code;
	}
	return 0;
}

const struct kind kind_lb = {
	.name = "lb",
	.plural = "lbs",
	.scope = SCOPE_NONE,
	.fields = lb_fields,
	.check = lb_check,
};
