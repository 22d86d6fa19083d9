/* model/alert-state.c - alert instances and silences (model/alert-state.h):
 * the SQL behind the evaluator's memory and `herd alert silence`. */
#include <math.h>
#include <string.h>

#include "model/alert-event.h"
#include "model/alert-state.h"
#include "store/store.h"

int
alert_state_list(struct store *st, const char *rule, const char *cluster, const char *group,
		 json_t **out, struct herr *err)
{
	json_t *rows = NULL, *r;
	size_t i;
	int rc;

	*out = NULL;
	rule = rule ? rule : "";
	cluster = cluster ? cluster : "";
	group = group ? group : "";
	if ((rc = store_q(st, &rows, NULL, err,
			  "SELECT rule, cluster, grp, key, state, since_ms, started_ms, last_event_ms,"
			  " severity, summary, value, silenced FROM alert_states"
			  " WHERE (? = '' OR rule = ?) AND (? = '' OR cluster = ?) AND (? = '' OR grp = ?)"
			  " ORDER BY rule, cluster, grp, key",
			  "[ssssss]", rule, rule, cluster, cluster, group, group)) < 0)
		return rc;
	json_array_foreach(rows, i, r) {
		json_object_set(r, "group", json_object_get(r, "grp"));
		json_object_del(r, "grp");
		json_object_set_new(r, "silenced",
				    json_boolean(json_integer_value(json_object_get(r, "silenced"))));
	}
	*out = rows;
	return 0;
}

int
alert_state_put(struct store *st, const struct alert_inst *a, struct herr *err)
{
	json_t *value = isfinite(a->value) ? json_real(a->value) : json_null();

	return store_q(st, NULL, NULL, err,
		       "INSERT INTO alert_states (rule, cluster, grp, key, state, since_ms,"
		       " started_ms, last_event_ms, severity, summary, value, silenced)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		       " ON CONFLICT (rule, cluster, grp, key) DO UPDATE SET state = excluded.state,"
		       " since_ms = excluded.since_ms, started_ms = excluded.started_ms,"
		       " last_event_ms = excluded.last_event_ms, severity = excluded.severity,"
		       " summary = excluded.summary, value = excluded.value,"
		       " silenced = excluded.silenced",
		       "[sssssIIIssoi]", a->rule, a->cluster ? a->cluster : "",
		       a->group ? a->group : "", a->key ? a->key : "", a->state,
		       (json_int_t)a->since_ms, (json_int_t)a->started_ms,
		       (json_int_t)a->last_event_ms, a->severity, a->summary ? a->summary : "", value,
		       a->silenced ? 1 : 0);
}

int
alert_state_del(struct store *st, const char *rule, const char *cluster, const char *group,
		const char *key, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "DELETE FROM alert_states WHERE rule = ? AND cluster = ? AND grp = ? AND key = ?",
		       "[ssss]", rule, cluster ? cluster : "", group ? group : "", key ? key : "");
}

int
alert_silence_add(struct store *st, const char *rule, const char *cluster, const char *group,
		  const char *reason, const char *by, int64_t now_ms, int64_t until_ms,
		  int64_t *id, struct herr *err)
{
	json_t *row, *ret = NULL;
	int rc;

	row = store_row(st, err, "SELECT count(*) AS n FROM alert_silences WHERE until_ms > ?", "[I]",
			(json_int_t)now_ms);
	if (row == NULL && err->code)
		return err->code;
	if (json_integer_value(json_object_get(row, "n")) >= ALERT_SILENCES_MAX) {
		json_decref(row);
		return herr_set(err, HERR_TOOBIG, "at most %d silences may be in force",
				ALERT_SILENCES_MAX);
	}
	json_decref(row);
	rc = store_q(st, &ret, NULL, err,
		     "INSERT INTO alert_silences (rule, cluster, grp, reason, created_by, created_ms,"
		     " until_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
		     "[sssssII]", rule, cluster ? cluster : "", group ? group : "", reason ? reason : "",
		     by ? by : "", (json_int_t)now_ms, (json_int_t)until_ms);
	if (rc == 0)
		*id = json_integer_value(json_object_get(json_array_get(ret, 0), "id"));
	json_decref(ret);
	return rc;
}

int
alert_silence_list(struct store *st, int64_t now_ms, json_t **out, struct herr *err)
{
	json_t *r;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = store_q(st, out, NULL, err,
			  "SELECT id, rule, cluster, grp, reason, created_by, created_ms, until_ms"
			  " FROM alert_silences WHERE until_ms > ? ORDER BY id",
			  "[I]", (json_int_t)now_ms)) < 0)
		return rc;
	json_array_foreach(*out, i, r) {
		json_object_set(r, "group", json_object_get(r, "grp"));
		json_object_del(r, "grp");
	}
	return 0;
}

int
alert_silence_delete(struct store *st, int64_t id, struct herr *err)
{
	int64_t n = 0;
	int rc;

	if ((rc = store_q(st, NULL, &n, err, "DELETE FROM alert_silences WHERE id = ?", "[I]",
			  (json_int_t)id)) < 0)
		return rc;
	if (n == 0)
		return herr_set(err, HERR_NOTFOUND, "no silence %lld", (long long)id);
	return 0;
}
