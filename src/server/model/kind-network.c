/* model/kind-network.c - the network kind: a private network hosts take
 * addresses from; on the local provider a bridge, on a cloud a VxNet/subnet. */
#include "model/kind.h"

static const struct field network_fields[] = {
	{ "account", F_NAME, FL_REQ, "account", 0, 0 },
	{ "cidr", F_CIDR, FL_REQ, NULL, 0, 0 },
	{ "vxnet", F_STR, 0, NULL, 0, 0 },
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

const struct kind kind_network = {
	.name = "network",
	.plural = "networks",
	.scope = SCOPE_NONE,
	.fields = network_fields,
};
