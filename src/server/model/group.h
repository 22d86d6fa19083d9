/* model/group.h - a group as the controllers read it: the typed form of a
 * stored group spec (sizes, template, launch order, health and termination
 * rules), loaded once with the defaults kind-group.c documents, so
 * reconcile, lb-sync, the autoscaler and simulate read fields, not JSON.
 * The spec itself stays what was declared (the API shows it as is). */
#ifndef HERD_MODEL_GROUP_H
#define HERD_MODEL_GROUP_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define GROUP_NAME_MAX 64                           /* names are 1-63 bytes */
#define GROUP_AFTER_MAX 100                         /* the kind's bound on a list */
#define GROUP_DEFAULT_PROVISION_MS (5LL * 60 * 1000)
#define GROUP_DEFAULT_UNHEALTHY_MS (30LL * 1000)
#define GROUP_DEFAULT_MAX_UNHEALTHY_PCT 34

struct group {
	char cluster[130];
	char name[128];
	char template_[GROUP_NAME_MAX];
	int desired, min, max;          /* -1: absent (unknown, never 0); else clamped to
					   [0, INT_MAX] (a value written around the API
					   cannot wrap through int) */
	char after[GROUP_AFTER_MAX][GROUP_NAME_MAX]; /* groups of the same cluster first */
	int nafter;
	char termination[160];          /* "newest" (when absent: ""), "oldest", "least:<metric>" */
	int64_t warmup_ms;              /* 0 when absent */
	int64_t max_provision_ms;       /* GROUP_DEFAULT_PROVISION_MS when absent */
	int64_t unhealthy_after_ms;     /* GROUP_DEFAULT_UNHEALTHY_MS when absent */
	int max_unhealthy_pct;          /* GROUP_DEFAULT_MAX_UNHEALTHY_PCT when absent */
	int max_actions_per_hour;       /* 0 when absent: no cap */
};

/* Fills *out from a stored group spec (borrowed) of cluster/name, with the
 * defaults above for absent fields. A field of the wrong type, a duration
 * that does not parse, a name too long or an `after` over GROUP_AFTER_MAX
 * (only a spec written around the API) is HERR_STORE naming the field;
 * *out then holds the defaults and whatever parsed. Returns 0 or that code. */
int group_from_spec(const char *cluster, const char *name, const json_t *spec,
		    struct group *out, struct herr *err);

/* Loads group cluster/name from the store into *out. Returns 0,
 * HERR_NOTFOUND, the store's error or group_from_spec's. */
int group_get(struct store *st, const char *cluster, const char *name, struct group *out,
	      struct herr *err);

#endif
