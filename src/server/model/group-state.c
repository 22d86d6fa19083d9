/* model/group-state.c - reads and writes the group_state table (group-state.h):
 * the autoscaler's cooldown clocks and the manual-scale pause, one row per
 * group, written with an upsert so the first action creates it. */
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "model/group-state.h"
#include "store/store.h"
#include "util.h"

int
group_state_get(struct store *st, const char *cluster, const char *group,
		struct group_state *out, struct herr *err)
{
	json_t *row;

	out->last_scale_out_ms = out->last_scale_in_ms = out->manual_scale_ms = 0;
	row = store_row(st, err,
			"SELECT last_scale_out_ms, last_scale_in_ms, manual_scale_ms FROM group_state"
			" WHERE cluster = ? AND grp = ?",
			"[ss]", cluster, group);
	if (row == NULL)
		return err->code;
	out->last_scale_out_ms = json_integer_value(json_object_get(row, "last_scale_out_ms"));
	out->last_scale_in_ms = json_integer_value(json_object_get(row, "last_scale_in_ms"));
	out->manual_scale_ms = json_integer_value(json_object_get(row, "manual_scale_ms"));
	json_decref(row);
	return 0;
}

int
group_state_note(struct store *st, const char *cluster, const char *group,
		 enum group_event ev, int64_t at_ms, struct herr *err)
{
	/* One literal statement per event: no column name is ever pasted. */
	static const char *const sql[] = {
		[GROUP_SCALED_OUT] =
			"INSERT INTO group_state (cluster, grp, last_scale_out_ms) VALUES (?, ?, ?)"
			" ON CONFLICT (cluster, grp) DO UPDATE SET"
			" last_scale_out_ms = excluded.last_scale_out_ms",
		[GROUP_SCALED_IN] =
			"INSERT INTO group_state (cluster, grp, last_scale_in_ms) VALUES (?, ?, ?)"
			" ON CONFLICT (cluster, grp) DO UPDATE SET"
			" last_scale_in_ms = excluded.last_scale_in_ms",
		[GROUP_SCALED_MANUALLY] =
			"INSERT INTO group_state (cluster, grp, manual_scale_ms) VALUES (?, ?, ?)"
			" ON CONFLICT (cluster, grp) DO UPDATE SET"
			" manual_scale_ms = excluded.manual_scale_ms",
	};

	return store_q(st, NULL, NULL, err, sql[ev], "[ssI]", cluster, group, (json_int_t)at_ms);
}

static json_t *
time_or_null(int64_t ts_ms)
{
	char ts[40];

	return ts_ms > 0 ? json_string(fmt_time(ts_ms, ts, sizeof(ts))) : json_null();
}

json_t *
group_state_to_json(const struct group_state *gs)
{
	return json_pack("{s:o,s:o,s:o}", "last_scale_out", time_or_null(gs->last_scale_out_ms),
			 "last_scale_in", time_or_null(gs->last_scale_in_ms), "manual_scale",
			 time_or_null(gs->manual_scale_ms));
}

/* time_or_null, printed */
static int
write_time(struct buf *b, const char *key, int64_t ts_ms)
{
	char ts[40];
	int rc;

	if ((rc = jsonw_raw(b, key, strlen(key))) < 0)
		return rc;
	if (ts_ms <= 0)
		return jsonw_raw(b, "null", 4);
	fmt_time(ts_ms, ts, sizeof(ts));
	return jsonw_str(b, ts, strlen(ts));
}

int
group_state_write_status(struct store *st, const char *cluster, const char *group,
			 struct buf *b, struct herr *err)
{
	struct group_state gs;
	int rc;

	if (group_state_get(st, cluster, group, &gs, err) < 0)
		return err->code;
	if ((rc = write_time(b, ",\"status\":{\"last_scale_out\":", gs.last_scale_out_ms)) < 0 ||
	    (rc = write_time(b, ",\"last_scale_in\":", gs.last_scale_in_ms)) < 0 ||
	    (rc = write_time(b, ",\"manual_scale\":", gs.manual_scale_ms)) < 0 ||
	    (rc = jsonw_raw(b, "}", 1)) < 0)
		return herr_set(err, rc, "the status of group '%s/%s' is too large", cluster, group);
	return 0;
}

int
group_state_add_status(struct store *st, const char *cluster, const char *group, json_t *o,
		       struct herr *err)
{
	struct group_state gs;

	if (group_state_get(st, cluster, group, &gs, err) < 0)
		return err->code;
	json_object_set_new(o, "status", group_state_to_json(&gs));
	return 0;
}
