/* model/kind-cluster.c - the cluster kind: a named set of groups whose hosts
 * see each other's metadata (and nothing of other clusters), with its metric
 * series quotas, and alert rules that apply to each of its groups. */
#include <stdio.h>

#include "model/alert-rule.h"
#include "model/kind.h"

static const struct field cluster_fields[] = {
	{ "description", F_STR, 0, NULL, 0, 0 },
	{ "labels", F_OBJECT, 0, NULL, 0, 0 },
	/* metric series quotas (tsdb.h); absent: 10,000 and 200,000 */
	{ "series_per_host", F_INT, 0, NULL, 1, 1000000 },
	{ "series_per_cluster", F_INT, 0, NULL, 1, 10000000 },
	{ "alerts", F_LIST, 0, NULL, 0, 0 },   /* model/alert-rule.h */
	{ NULL, 0, 0, NULL, 0, 0 },
};

static int
cluster_check(const struct kind *k, json_t *obj, const json_t *old, const char *path,
	      struct herr *err)
{
	char fp[256];

	snprintf(fp, sizeof(fp), "%s%salerts", path, *path ? "." : "");
	return alert_rules_check(json_object_get(obj, "alerts"), fp, err);
}

const struct kind kind_cluster = {
	.name = "cluster",
	.plural = "clusters",
	.scope = SCOPE_NONE,
	.fields = cluster_fields,
	.check = cluster_check,
};
