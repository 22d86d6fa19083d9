/* model/kind-monitor.c - the monitor kind: a script-defined metric, a
 * command printing one number (or `name value` lines), run on every host of
 * the groups that list it; interval and timeout default to 5s and 3s. */
#include "model/kind.h"

static const struct field monitor_fields[] = {
	{ "command", F_STR, FL_REQ, NULL, 0, 0 },
	{ "interval", F_DURATION, 0, NULL, 1, 3600 },   /* the agent counts in s */
	{ "timeout", F_DURATION, 0, NULL, 1, 3600 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
monitor_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	if (json_object_get(obj, "interval") == NULL)
		json_object_set_new(obj, "interval", json_string("5s"));
	if (json_object_get(obj, "timeout") == NULL)
		json_object_set_new(obj, "timeout", json_string("3s"));
	return 0;
}

const struct kind kind_monitor = {
	.name = "monitor",
	.plural = "monitors",
	.scope = SCOPE_NONE,
	.fields = monitor_fields,
	.check = monitor_check,
};
