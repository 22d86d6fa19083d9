/* model/activity.c - the activity log (model/activity.h): written by
 * controllers and handlers as they decide and act, read back by
 * `GET /v1/activities` oldest first. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "model/activity.h"
#include "model/lease.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

/* The one INSERT of both: the row stamped ts_ms. */
static int
activity_vadd(struct store *st, int64_t ts_ms, const char *cluster, const char *group,
	      const char *host, const char *kind, const char *cause, json_t *inputs,
	      struct herr *err, const char *fmt, va_list ap)
{
	char reason[1024], *in, server[LEASE_HOLDER_MAX];
	int64_t epoch;
	int rc;

	vsnprintf(reason, sizeof(reason), fmt, ap);
	in = inputs ? json_dumps(inputs, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}");
	/* a controller's: the server and lease epoch it acted under (the
	 * fence checks that epoch in this very transaction); an API
	 * request's: none ("", 0) */
	lease_acting(st, server, sizeof(server), &epoch);
	rc = store_q(st, NULL, NULL, err,
		     "INSERT INTO activities (ts_ms, cluster, grp, host, kind, cause, reason, inputs,"
		     " server, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		     "[IssssssssI]", (json_int_t)ts_ms, cluster ? cluster : "", group ? group : "",
		     host ? host : "", kind, cause ? cause : "", reason, in, server,
		     (json_int_t)epoch);
	free(in);
	if (rc != HERR_FENCED)   /* a fenced controller's: never happened */
		log_info("activity: %s%s%s %s: %s", cluster ? cluster : "", group ? "/" : "",
			 group ? group : "", kind, reason);
	return rc;
}

int
activity_add(struct store *st, const char *cluster, const char *group, const char *host,
	     const char *kind, const char *cause, json_t *inputs, struct herr *err,
	     const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = activity_vadd(st, now_ms(), cluster, group, host, kind, cause, inputs, err, fmt, ap);
	va_end(ap);
	return rc;
}

int
activity_list(struct store *st, const char *cluster, const char *group, int64_t since_id,
	      int limit, json_t **out, struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = store_q(st, &rows, NULL, err,
		    "SELECT * FROM (SELECT id, ts_ms, cluster, grp, host, kind, cause, reason, inputs,"
		    " server, epoch"
		    " FROM activities WHERE (? = '' OR cluster = ?) AND (? = '' OR grp = ?)"
		    " AND id > ? ORDER BY id DESC LIMIT ?) AS recent ORDER BY id",
		    "[ssssIi]", cluster ? cluster : "", cluster ? cluster : "", group ? group : "",
		    group ? group : "", (json_int_t)since_id, limit)) < 0)
		return rc;
	json_array_foreach(rows, i, r) {
		json_t *in = json_loads(json_string_value(json_object_get(r, "inputs")), 0, NULL);
		char ts[40];
		json_object_set_new(r, "inputs", in ? in : json_object());
		json_object_set(r, "group", json_object_get(r, "grp"));
		json_object_del(r, "grp");
		json_object_set_new(r, "time", json_string(fmt_time(json_integer_value(json_object_get(r, "ts_ms")), ts, sizeof(ts))));
	}
	*out = rows;
	return 0;
}

/* --- retention --- */

int
activity_prune(struct store *st, int64_t before_ms, int64_t policy_keep_ms, int max_rows,
	       int64_t *deleted, struct herr *err)
{
	*deleted = 0;
	/* Oldest first by id (ids grow with time), and only below the first
	 * row young enough to stay: the scan stops there, so a pass with
	 * nothing to prune costs one row, not the table (1M rows: 0.6 s under
	 * the write lock without the bound, < 1 ms with it). A row the clock
	 * stepped back on waits until that first row is old too. */
	return store_q(st, NULL, deleted, err,
		       "DELETE FROM activities WHERE id IN (SELECT id FROM activities WHERE id <"
		       " COALESCE((SELECT id FROM activities WHERE ts_ms >= ? ORDER BY id LIMIT 1),"
		       " 9223372036854775807) AND ts_ms < ? AND NOT (kind IN ('scale_out',"
		       " 'scale_in') AND cause LIKE 'policy:%' AND ts_ms >= ?) ORDER BY id LIMIT ?)",
		       "[IIIi]", (json_int_t)before_ms, (json_int_t)before_ms,
		       (json_int_t)policy_keep_ms, max_rows);
}

/* --- simulated time --- */

int
activity_add_at(struct store *st, int64_t ts_ms, const char *cluster, const char *group,
		const char *host, const char *kind, const char *cause, json_t *inputs,
		struct herr *err, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = activity_vadd(st, ts_ms, cluster, group, host, kind, cause, inputs, err, fmt, ap);
	va_end(ap);
	return rc;
}
