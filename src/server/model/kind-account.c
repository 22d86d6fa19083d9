/* model/kind-account.c - the account kind: a provider account, i.e. which
 * driver makes the hosts and networks that refer to it, that driver's
 * settings, and (server_url) where that account's hosts reach the server.
 * The server_url rule is prov_server_url_check's, the one the drivers use. */
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
	{ "server_url", F_STR, 0, NULL, 0, 0 },   /* overrides --advertise-url */
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
account_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	static const char *const drivers[] = { "local", "qingcloud", NULL };
	const char *d = json_string_value(json_object_get(obj, "driver"));
	char fp[256];

	for (int i = 0; drivers[i]; i++)
		if (strcmp(d, drivers[i]) == 0)
			goto driver_ok;
	snprintf(fp, sizeof(fp), "%s%sdriver", path, *path ? "." : "");
	return herr_field(err, HERR_INVALID, fp, "unknown driver '%s' (known: local, qingcloud)", d);
driver_ok:
	if (json_object_get(obj, "server_url")) {
		struct herr e = HERR_INIT;

		if (prov_server_url_check(json_string_value(json_object_get(obj, "server_url")),
					  &e) < 0) {
			snprintf(fp, sizeof(fp), "%s%sserver_url", path, *path ? "." : "");
			return herr_field(err, HERR_INVALID, fp, "%s", e.msg);
		}
	}
	if (strcmp(d, "qingcloud") == 0) {
		static const char *const need[] = { "zone", "access_key_id", "secret_file", NULL };
		for (int i = 0; need[i]; i++) {
			if (json_object_get(obj, need[i]) == NULL) {
				snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", need[i]);
				return herr_field(err, HERR_INVALID, fp,
						  "is required for a qingcloud account");
			}
		}
	}
	return 0;
}

const struct kind kind_account = {
	.name = "account",
	.plural = "accounts",
	.scope = SCOPE_NONE,
	.fields = account_fields,
	.check = account_check,
};
