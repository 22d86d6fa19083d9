/* model/kind-template.c - the template kind: how a host of a group is made
 * (account, network, image, size, init scripts, load balancer attachment,
 * labels). */
#include "model/kind.h"

static const struct field template_fields[] = {
	{ "account", F_NAME, FL_REQ, "account", 0, 0 },
	{ "network", F_NAME, FL_REQ, "network", 0, 0 },
	{ "init", F_NAMES, 0, "script", 0, 0 },
	{ "load_balancer", F_NAME, 0, "lb", 0, 0 },
	{ "image", F_STR, 0, NULL, 0, 0 },
	{ "instance_type", F_STR, 0, NULL, 0, 0 },
	{ "cpu", F_INT, 0, NULL, 1, 256 },
	{ "memory", F_INT, 0, NULL, 64, 4194304 },
	{ "keypair", F_STR, 0, NULL, 0, 0 },
	{ "security_group", F_STR, 0, NULL, 0, 0 },
	{ "limit_memory_mb", F_INT, 0, NULL, 16, 1048576 },
	{ "limit_cpu_pct", F_INT, 0, NULL, 1, 25600 },
	{ "init_timeout", F_DURATION, 0, NULL, 1, 86400 },   /* the agent counts in s */
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

const struct kind kind_template = {
	.name = "template",
	.plural = "templates",
	.scope = SCOPE_NONE,
	.fields = template_fields,
};
