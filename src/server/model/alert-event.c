/* model/alert-event.c - alerting's transitions (model/alert-event.h): one
 * INSERT per event, read back oldest first by the history and by the
 * notifiers that tail the table, or newest first (the console's pages). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/alert-event.h"
#include "store/store.h"
#include "xalloc.h"

static bool
one_of(const char *s, const char *const *set)
{
	for (; s && *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

int
alert_event_add(struct store *st, struct alert_event *ev, struct herr *err)
{
	static const char *const states[] = { ALERT_FIRING, ALERT_RESOLVED, NULL };
	static const char *const severities[] = { "critical", "warning", "info", NULL };
	json_t *ret = NULL, *value;
	char *labels;
	int rc;

	if (!one_of(ev->state, states))
		return herr_field(err, HERR_INVALID, "state", "unknown alert state '%s'",
				  ev->state ? ev->state : "");
	if (!one_of(ev->severity, severities))
		return herr_field(err, HERR_INVALID, "severity",
				  "unknown severity '%s' (critical, warning or info)",
				  ev->severity ? ev->severity : "");
	if (ev->rule == NULL || *ev->rule == '\0')
		return herr_field(err, HERR_INVALID, "rule", "an alert event needs a rule");
	/* jansson has no NaN or infinity: those are "no value" */
	value = isfinite(ev->value) ? json_real(ev->value) : json_null();
	labels = ev->labels ? json_dumps(ev->labels, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}");
	rc = store_q(st, &ret, NULL, err,
		     "INSERT INTO alert_events (ts_ms, rule, cluster, grp, key, state, severity,"
		     " summary, labels, value, started_ms, repeat, silenced)"
		     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
		     "[IssssssssoIii]", (json_int_t)ev->ts_ms, ev->rule, ev->cluster ? ev->cluster : "",
		     ev->group ? ev->group : "", ev->key ? ev->key : "", ev->state, ev->severity,
		     ev->summary ? ev->summary : "", labels, value, (json_int_t)ev->started_ms,
		     ev->repeat ? 1 : 0, ev->silenced ? 1 : 0);
	free(labels);
	if (rc == 0) {
		const json_t *id = json_object_get(json_array_get(ret, 0), "id");
		ev->id = json_is_integer(id) ? (int64_t)json_integer_value(id) : 0;
	}
	json_decref(ret);
	return rc;
}

/* The rows of alert_events as the API shows them: labels an object,
 * "grp" as "group", repeat and silenced booleans. */
static void
rows_shape(json_t *rows)
{
	json_t *r;
	size_t i;

	json_array_foreach(rows, i, r) {
		json_t *l = json_loads(json_string_value(json_object_get(r, "labels")), 0, NULL);

		json_object_set_new(r, "labels", json_is_object(l) ? l : json_object());
		if (!json_is_object(l))
			json_decref(l);
		json_object_set(r, "group", json_object_get(r, "grp"));
		json_object_del(r, "grp");
		json_object_set_new(r, "repeat",
				    json_boolean(json_integer_value(json_object_get(r, "repeat"))));
		json_object_set_new(r, "silenced",
				    json_boolean(json_integer_value(json_object_get(r, "silenced"))));
	}
}

/* One page of events in either direction from a cursor: after (ascending,
 * ids > cursor) or before (descending, ids < cursor; 0 = from the newest). */
static int
event_page(struct store *st, bool before, int64_t cursor, int limit, const char *rule,
	   const char *cluster, const char *group, json_t **out, struct herr *err)
{
	json_t *rows = NULL;
	int rc;

	*out = NULL;
	if (limit < 1 || limit > 10000)
		return herr_field(err, HERR_INVALID, "limit", "limit must be 1..10000, not %d", limit);
	rule = rule ? rule : "";
	cluster = cluster ? cluster : "";
	group = group ? group : "";
	if ((rc = store_q(st, &rows, NULL, err,
		    before ? "SELECT id, ts_ms, rule, cluster, grp, key, state, severity, summary, labels,"
			     " value, started_ms, repeat, silenced FROM alert_events"
			     " WHERE (CAST(? AS BIGINT) = 0 OR id < ?) AND (? = '' OR rule = ?) AND (? = '' OR cluster = ?)"
			     " AND (? = '' OR grp = ?) ORDER BY id DESC LIMIT ?"
			   : "SELECT id, ts_ms, rule, cluster, grp, key, state, severity, summary, labels,"
			     " value, started_ms, repeat, silenced FROM alert_events"
			     " WHERE (CAST(? AS BIGINT) = 0 OR id > ?) AND (? = '' OR rule = ?) AND (? = '' OR cluster = ?)"
			     " AND (? = '' OR grp = ?) ORDER BY id LIMIT ?",
		    "[IIssssssi]", (json_int_t)cursor, (json_int_t)cursor, rule, rule, cluster, cluster,
		    group, group, limit)) < 0)
		return rc;
	rows_shape(rows);
	*out = rows;
	return 0;
}

int
alert_event_list(struct store *st, int64_t after_id, int limit, const char *rule,
		 const char *cluster, const char *group, json_t **out, struct herr *err)
{
	return event_page(st, false, after_id, limit, rule, cluster, group, out, err);
}

int
alert_event_list_before(struct store *st, int64_t before_id, int limit, const char *rule,
			const char *cluster, const char *group, json_t **out, struct herr *err)
{
	return event_page(st, true, before_id, limit, rule, cluster, group, out, err);
}
