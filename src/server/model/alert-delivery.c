/* model/alert-delivery.c - alert delivery's per-receiver cursor and
 * counters (model/alert-delivery.h), and their API form. */
#include <string.h>

#include "model/alert-delivery.h"
#include "model/res.h"
#include "store/store.h"
#include "util.h"

static int64_t
int_of(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

int
alert_delivery_load(struct store *st, const char *receiver, struct alert_delivery *d,
		    struct herr *err)
{
	json_t *rows = NULL, *r;
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = store_q(st, NULL, NULL, err,
			  "INSERT INTO alert_deliveries (receiver, cursor)"
			  " SELECT ?, COALESCE(MAX(id), 0) FROM alert_events WHERE true"
			  " ON CONFLICT (receiver) DO NOTHING", "[s]", receiver)) < 0)   /* WHERE: SQLite parses ON CONFLICT after a SELECT only so */
		return rc;
	if ((rc = store_q(st, &rows, NULL, err,
			  "SELECT cursor, sent, failed, dropped, failures, next_retry_ms"
			  " FROM alert_deliveries WHERE receiver = ?", "[s]", receiver)) < 0)
		return rc;
	r = json_array_get(rows, 0);
	d->cursor = int_of(r, "cursor");
	d->sent = int_of(r, "sent");
	d->failed = int_of(r, "failed");
	d->dropped = int_of(r, "dropped");
	d->failures = (int)int_of(r, "failures");
	d->next_retry_ms = int_of(r, "next_retry_ms");
	json_decref(rows);
	return 0;
}

int
alert_delivery_ack(struct store *st, const char *receiver, int64_t cursor, bool dropped,
		   const char *why, int64_t now_ms, struct herr *err)
{
	if (dropped)
		return store_q(st, NULL, NULL, err,
			       "UPDATE alert_deliveries SET cursor = ?, dropped = dropped + 1,"
			       " failures = 0, next_retry_ms = 0, last_error = ?, last_error_ms = ?"
			       " WHERE receiver = ?", "[IsIs]", (json_int_t)cursor, why ? why : "",
			       (json_int_t)now_ms, receiver);
	return store_q(st, NULL, NULL, err,
		       "UPDATE alert_deliveries SET cursor = ?, sent = sent + 1, failures = 0,"
		       " next_retry_ms = 0, last_sent_ms = ? WHERE receiver = ?", "[IIs]",
		       (json_int_t)cursor, (json_int_t)now_ms, receiver);
}

int
alert_delivery_skip(struct store *st, const char *receiver, int64_t cursor, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE alert_deliveries SET cursor = ? WHERE receiver = ? AND cursor < ?",
		       "[IsI]", (json_int_t)cursor, receiver, (json_int_t)cursor);
}

int
alert_delivery_fail(struct store *st, const char *receiver, int failures, int64_t next_retry_ms,
		    const char *why, int64_t now_ms, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "UPDATE alert_deliveries SET failed = failed + 1, failures = ?,"
		       " next_retry_ms = ?, last_error = ?, last_error_ms = ? WHERE receiver = ?",
		       "[iIsIs]", failures, (json_int_t)next_retry_ms, why ? why : "",
		       (json_int_t)now_ms, receiver);
}

int
alert_delivery_prune(struct store *st, struct herr *err)
{
	return store_q(st, NULL, NULL, err,
		       "DELETE FROM alert_deliveries WHERE receiver NOT IN"
		       " (SELECT name FROM resources WHERE kind = 'receiver')", "[]");
}

static json_t *
time_or_null(int64_t ms)
{
	char t[40];

	return ms > 0 ? json_string(fmt_time(ms, t, sizeof(t))) : json_null();
}

int
alert_delivery_list(struct store *st, json_t **out, struct herr *err)
{
	json_t *recs = NULL, *x, *items;
	size_t i;
	int rc;

	*out = NULL;
	if ((rc = res_all(st, &kind_receiver, NULL, &recs, err)) < 0)
		return rc;
	items = json_array();
	json_array_foreach(recs, i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		const json_t *spec = json_object_get(x, "spec");
		json_t *rows = NULL, *pend = NULL, *r, *o;

		if ((rc = store_q(st, &rows, NULL, err,
				  "SELECT cursor, sent, failed, dropped, failures, last_error,"
				  " last_error_ms, next_retry_ms, last_sent_ms FROM alert_deliveries"
				  " WHERE receiver = ?", "[s]", name)) < 0 ||
		    (rc = store_q(st, &pend, NULL, err,
				  "SELECT COUNT(*) AS n FROM alert_events WHERE id > ? AND silenced = 0",
				  "[I]", (json_int_t)int_of(json_array_get(rows, 0), "cursor"))) < 0) {
			json_decref(rows);
			json_decref(items);
			json_decref(recs);
			return rc;
		}
		r = json_array_get(rows, 0);
		o = json_pack("{s:s, s:O?, s:O?, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:o}",
			      "name", name, "type", json_object_get(spec, "type"), "url",
			      json_object_get(spec, "url"), "cursor", (json_int_t)int_of(r, "cursor"),
			      "pending", (json_int_t)int_of(json_array_get(pend, 0), "n"),
			      "sent", (json_int_t)int_of(r, "sent"), "failed", (json_int_t)int_of(r, "failed"),
			      "dropped", (json_int_t)int_of(r, "dropped"), "failures",
			      (json_int_t)int_of(r, "failures"), "last_error",
			      json_string_value(json_object_get(r, "last_error")) ?: "",
			      "last_error_at", time_or_null(int_of(r, "last_error_ms")),
			      "next_retry_at", time_or_null(int_of(r, "next_retry_ms")),
			      "last_sent_at", time_or_null(int_of(r, "last_sent_ms")));
		json_array_append_new(items, o);
		json_decref(rows);
		json_decref(pend);
	}
	json_decref(recs);
	*out = items;
	return 0;
}
