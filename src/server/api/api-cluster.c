/* api-cluster.c - clusters: named sets of groups whose hosts see each
 * other's metadata (and nothing of other clusters). */
#include "api.h"

static const struct field cluster_fields[] = {
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

const struct kind kind_cluster = {
	.name = "cluster",
	.plural = "clusters",
	.scope = SCOPE_NONE,
	.fields = cluster_fields,
	.columns = "name,description",
};
