/* model/account.c - the typed account (model/account.h), loaded from its
 * stored spec with json_unpack; the kind itself is in kind-account.c. */
#include <stdio.h>
#include <string.h>

#include "model/account.h"
#include "model/spec-read.h"

static const char *const account_types[] = { "driver:s", "server_url:s", NULL };

int
account_from_spec(const char *name, const json_t *spec, struct account_spec *out,
		  struct herr *err)
{
	const char *driver = NULL, *url = NULL;
	char what[100];
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "account '%s'", name ? name : "");
	if ((rc = spec_read_str(what, "name", name, out->name, sizeof(out->name), err)) < 0)
		return rc;
	if (json_unpack((json_t *)spec, "{s?s, s?s}", "driver", &driver, "server_url", &url) < 0)
		return spec_read_fail(spec, what, account_types, err);
	if ((rc = spec_read_str(what, "driver", driver, out->driver, sizeof(out->driver), err)) < 0 ||
	    (rc = spec_read_str(what, "server_url", url, out->server_url, sizeof(out->server_url),
				err)) < 0)
		return rc;
	return 0;
}
