/* model/kind-account.c - the account kind: a provider account, i.e. which
 * driver makes the hosts and networks that refer to it, that driver's
 * settings, and (server_url) where that account's hosts reach the server.
 * The server_url rule is prov_server_url_check's, the one the drivers use;
 * the driver is found with prov_find() and checks its own fields
 * (prov_ops.config_check): no driver name is compared here. */
#include <stdio.h>
#include <string.h>

#include "model/kind.h"
#include "prov/prov.h"

static const struct field account_fields[] = {
	{ "driver", F_STR, FL_REQ, NULL, 0, 0 },
	{ "zone", F_STR, 0, NULL, 0, 0 },
	{ "access_key_id", F_STR, 0, NULL, 0, 0 },
	{ "secret_file", F_STR, 0, NULL, 0, 0 },
	{ "endpoint", F_STR, 0, NULL, 0, 0 },
	{ "router", F_STR, 0, NULL, 0, 0 },       /* qingcloud: an existing router id */
	{ "server_url", F_STR, 0, NULL, 0, 0 },   /* overrides --advertise-url */
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
account_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	const char *d = json_string_value(json_object_get(obj, "driver"));
	const struct prov_ops *ops = prov_find(d);
	char fp[256], known[256];

	if (ops == NULL) {
		prov_names(known, sizeof(known));
		snprintf(fp, sizeof(fp), "%s%sdriver", path, *path ? "." : "");
		return herr_field(err, HERR_INVALID, fp, "unknown driver '%s' (known: %s)", d,
				  known);
	}
	if (json_object_get(obj, "server_url")) {
		struct herr e = HERR_INIT;

		if (prov_server_url_check(json_string_value(json_object_get(obj, "server_url")),
					  &e) < 0) {
			snprintf(fp, sizeof(fp), "%s%sserver_url", path, *path ? "." : "");
			return herr_field(err, HERR_INVALID, fp, "%s", e.msg);
		}
	}
	/* the driver's own fields (zone, keys, ...): only it knows them */
	return prov_config_check(ops, obj, path, err);
}

const struct kind kind_account = {
	.name = "account",
	.plural = "accounts",
	.scope = SCOPE_NONE,
	.fields = account_fields,
	.check = account_check,
};
