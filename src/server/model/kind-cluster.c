/* model/kind-cluster.c - the cluster kind: a named set of groups whose hosts
 * see each other's metadata (and nothing of other clusters), with its metric
 * series quotas. */
#include "model/kind.h"

static const struct field cluster_fields[] = {
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	/* metric series quotas (tsdb.h); absent: 10,000 and 200,000 */
	{ "series_per_host", F_INT, 0, NULL, 1, 1000000 },
	{ "series_per_cluster", F_INT, 0, NULL, 1, 10000000 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

const struct kind kind_cluster = {
	.name = "cluster",
	.plural = "clusters",
	.scope = SCOPE_NONE,
	.fields = cluster_fields,
};
