/* model/activity-read.c - reading the activity log back for the
 * controllers (model/activity-read.h). */
#include "model/activity-read.h"
#include "store/store.h"

int
activity_count_policy_scales(struct store *st, const char *cluster, const char *grp,
			     int64_t since_ms, int *n, struct herr *err)
{
	json_t *row = store_row(st, err,
				"SELECT COUNT(*) AS n FROM activities WHERE cluster = ? AND grp = ?"
				" AND kind IN ('scale_out', 'scale_in') AND cause LIKE 'policy:%'"
				" AND ts_ms > ?",
				"[ssI]", cluster, grp, (json_int_t)since_ms);

	*n = row ? (int)json_integer_value(json_object_get(row, "n")) : 0;
	json_decref(row);
	return row == NULL && err->code ? err->code : 0;
}

int
activity_list_scales(struct store *st, const char *cluster, const char *grp, int64_t since_ms,
		     json_t **out, struct herr *err)
{
	*out = NULL;
	return store_q(st, out, NULL, err,
		       "SELECT ts_ms, kind, cause, reason, inputs FROM activities WHERE cluster = ?"
		       " AND grp = ? AND kind IN ('scale_out', 'scale_in', 'schedule') AND ts_ms >= ?"
		       " ORDER BY id",
		       "[ssI]", cluster, grp, (json_int_t)since_ms);
}
