/* model/activity.h - the activity log: the user-visible record of every
 * decision and actuation (launch, terminate, scale, wait), each with its
 * cause, a reason for people and the inputs it was decided on. */
#ifndef HERD_MODEL_ACTIVITY_H
#define HERD_MODEL_ACTIVITY_H

#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

/* Records one activity; fmt makes its reason. */
int activity_add(struct store *st, const char *cluster, const char *group, const char *host,
		 const char *kind, const char *cause, json_t *inputs, struct herr *err,
		 const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* activity_add stamped ts_ms instead of the wall clock (tests of
 * simulated time; callers that act now use activity_add). */
int activity_add_at(struct store *st, int64_t ts_ms, const char *cluster, const char *group,
		    const char *host, const char *kind, const char *cause, json_t *inputs,
		    struct herr *err, const char *fmt, ...) __attribute__((format(printf, 10, 11)));

/* The activities of cluster/group ("" or NULL = any) with id > since_id:
 * the newest `limit`, oldest first, as an owned array of API objects
 * (inputs parsed, "group" and a formatted "time"). 0 or a store error. */
int activity_list(struct store *st, const char *cluster, const char *group, int64_t since_id,
		  int limit, json_t **out, struct herr *err);

/* --- retention --- */

/* Deletes up to max_rows activities older than before_ms (ts_ms, wall),
 * oldest first, except the policy scale_out/scale_in rows from
 * policy_keep_ms on: the autoscaler's max_actions_per_hour counts those
 * (activity_count_policy_scales), so they outlive a short retention.
 * Only rows before the first one at or after before_ms are looked at (the
 * scan stops there): one written after the clock stepped back waits.
 * *deleted: how many went. 0 or a store error. */
int activity_prune(struct store *st, int64_t before_ms, int64_t policy_keep_ms, int max_rows,
		   int64_t *deleted, struct herr *err);

#endif
