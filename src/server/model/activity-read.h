/* model/activity-read.h - what the controllers read back from the activity
 * log: how often a group's policies acted lately (the autoscaler's hourly
 * cap) and a group's scaling history (simulate replays it). Writing is
 * activity_add (model/activity.h). */
#ifndef HERD_MODEL_ACTIVITY_READ_H
#define HERD_MODEL_ACTIVITY_READ_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* How many scale_out/scale_in activities a policy (cause "policy:...") of
 * cluster/grp recorded after since_ms, in *n. 0 or the store's error (*n
 * is then 0). */
int activity_count_policy_scales(struct store *st, const char *cluster, const char *grp,
				 int64_t since_ms, int *n, struct herr *err);

/* The group's scale_out, scale_in and schedule activities at or after
 * since_ms (0 = all), oldest first, as an owned array of
 * {"ts_ms","kind","cause","reason","inputs"} (inputs as stored: JSON text
 * or null). 0 or the store's error. */
int activity_list_scales(struct store *st, const char *cluster, const char *grp,
			 int64_t since_ms, json_t **out, struct herr *err);

#endif
