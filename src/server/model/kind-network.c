/* model/kind-network.c - the network kind: a private network hosts take
 * addresses from; on the local provider a bridge, on a cloud a VxNet/subnet.
 * A cloud network may name existing parts (vxnet, router) and a public
 * endpoint: the router's EIP and port forwards from it (the local driver
 * ignores those four fields: docs/blueprint.md). Port forwards are checked
 * by prov_forwards_from_json, the parser the controller uses too. */
#include <stdio.h>
#include <string.h>

#include "model/kind.h"
#include "prov/prov.h"

static const struct field network_fields[] = {
	{ "account", F_NAME, FL_REQ, "account", 0, 0 },
	{ "cidr", F_CIDR, FL_REQ, NULL, 0, 0 },
	{ "vxnet", F_STR, 0, NULL, 0, 0 },
	{ "router", F_STR, 0, NULL, 0, 0 },
	{ "eip", F_STR, 0, NULL, 0, 0 },
	{ "port_forwards", F_LIST, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

/* A cloud id: prefix then 1-60 of [a-z0-9] (QingCloud's ids are
 * "vxnet-abcd1234", "rtr-…", "eip-…"). */
static bool
cloud_id_valid(const char *s, const char *prefix)
{
	size_t n = strlen(prefix), k;

	if (strncmp(s, prefix, n) != 0)
		return false;
	k = strspn(s + n, "abcdefghijklmnopqrstuvwxyz0123456789");
	return k >= 1 && k <= 60 && s[n + k] == '\0';
}

static int
id_field(const json_t *obj, const char *key, const char *prefix, const char *also, const char *path,
	 struct herr *err)
{
	const char *v = json_string_value(json_object_get(obj, key));
	char fp[256];

	if (v == NULL || cloud_id_valid(v, prefix) || (also && strcmp(v, also) == 0))
		return 0;
	snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", key);
	return herr_field(err, HERR_INVALID, fp, "'%s' is not %s%s... id", v,
			  also ? "\"auto\" or an " : "an existing ", prefix);
}

static int
network_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	struct prov_forward fwd[PROV_FORWARDS_MAX];
	const json_t *list = json_object_get(obj, "port_forwards");
	char fp[256];
	size_t n;

	(void)k;
	(void)old;
	if (id_field(obj, "vxnet", "vxnet-", NULL, path, err) < 0 ||
	    id_field(obj, "router", "rtr-", NULL, path, err) < 0 ||
	    id_field(obj, "eip", "eip-", "auto", path, err) < 0)
		return err->code;
	if (prov_forwards_from_json(list, json_string_value(json_object_get(obj, "cidr")), fwd, &n,
				    err) < 0) {
		char field[sizeof(err->field)];

		snprintf(field, sizeof(field), "%s", err->field);
		snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", field);
		snprintf(err->field, sizeof(err->field), "%s", fp);
		return err->code;
	}
	/* forwards are from the router's public IP: without one they forward
	 * nothing, which a reader of the blueprint would not expect */
	if (n > 0 && json_object_get(obj, "eip") == NULL) {
		snprintf(fp, sizeof(fp), "%s%seip", path, *path ? "." : "");
		return herr_field(err, HERR_INVALID, fp,
				  "port_forwards need the public IP they forward from: eip: auto "
				  "or an eip-... id");
	}
	return 0;
}

const struct kind kind_network = {
	.name = "network",
	.plural = "networks",
	.scope = SCOPE_NONE,
	.fields = network_fields,
	.check = network_check,
};
