/* model/group-state.h - a group's controller bookkeeping: when the autoscaler last
 * scaled it out and in, and when an operator last scaled it by hand. Kept in
 * its own table (group_state), never in the declarative spec, so recording
 * an action neither shows in the group's spec nor bumps its version. A
 * deleted group's row goes with it (a trigger of the store's schema). */
#ifndef HERD_MODEL_GROUP_STATE_H
#define HERD_MODEL_GROUP_STATE_H

#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "herr.h"

struct store;

struct group_state {
	int64_t last_scale_out_ms;   /* last scale-out, any cause; 0 = never */
	int64_t last_scale_in_ms;    /* last scale-in, any cause; 0 = never */
	int64_t manual_scale_ms;     /* last manual scale (pauses policies); 0 = never */
};

enum group_event {
	GROUP_SCALED_OUT,
	GROUP_SCALED_IN,
	GROUP_SCALED_MANUALLY,
};

/* Fills *out with the group's bookkeeping (all 0 when it has none yet).
 * Returns 0 or the store's error. */
int group_state_get(struct store *st, const char *cluster, const char *group,
		    struct group_state *out, struct herr *err);
/* Records that ev happened at at_ms, in the caller's transaction if any.
 * Returns 0 or the store's error. */
int group_state_note(struct store *st, const char *cluster, const char *group,
		     enum group_event ev, int64_t at_ms, struct herr *err);
/* The read-only API form, for a group's "status": each time as text, null
 * when it never happened. Owned. */
json_t *group_state_to_json(const struct group_state *gs);
/* The same status printed into b as ,"status":{...} (as json_dumps prints
 * group_state_to_json), to follow a group's fields (res_write, open). */
int group_state_write_status(struct store *st, const char *cluster, const char *group,
			     struct buf *b, struct herr *err);
/* Sets o's "status" (the group view's read-only part) to the group's
 * bookkeeping. Returns 0 or the store's error (o unchanged). */
int group_state_add_status(struct store *st, const char *cluster, const char *group, json_t *o,
			   struct herr *err);

#endif
