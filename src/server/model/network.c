/* model/network.c - the typed network (model/network.h), loaded from its
 * stored spec with json_unpack; the kind itself is in kind-network.c. */
#include <stdio.h>
#include <string.h>

#include "model/network.h"
#include "model/res.h"
#include "model/spec-read.h"

static const char *const network_types[] = { "account:s", "cidr:s", NULL };

int
network_from_spec(const char *name, const json_t *spec, struct network_spec *out,
		  struct herr *err)
{
	const char *acct = NULL, *cidr = NULL;
	char what[100];
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "network '%s'", name ? name : "");
	if ((rc = spec_read_str(what, "name", name, out->name, sizeof(out->name), err)) < 0)
		return rc;
	if (json_unpack((json_t *)spec, "{s?s, s?s}", "account", &acct, "cidr", &cidr) < 0)
		return spec_read_fail(spec, what, network_types, err);
	if ((rc = spec_read_str(what, "account", acct, out->account, sizeof(out->account), err)) < 0 ||
	    (rc = spec_read_str(what, "cidr", cidr, out->cidr, sizeof(out->cidr), err)) < 0)
		return rc;
	return 0;
}

int
network_get(struct store *st, const char *name, struct network_spec *out, struct herr *err)
{
	struct res r;
	int rc;

	if ((rc = res_get(st, &kind_network, "", name, &r, err)) < 0)
		return rc;
	rc = network_from_spec(r.name, r.spec, out, err);
	res_release(&r);
	return rc;
}
