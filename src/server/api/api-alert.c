/* api-alert.c - alerting over HTTP: the active alerts (pending and firing),
 * the history (alert_events, with a cursor), the rules in force per group
 * (built-in and user, with where each comes from), and silences. The
 * evaluator is ctl/alert.c; the state and SQL are model/alert-*.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "ctl/alert.h"
#include "model/alert-event.h"
#include "model/alert-rule.h"
#include "model/alert-state.h"
#include "util.h"

#define SILENCE_MAX_S (30 * 86400)

static void
add_time(json_t *o, const char *ms_key, const char *key)
{
	char ts[40];
	int64_t ms = json_integer_value(json_object_get(o, ms_key));

	if (ms > 0)
		json_object_set_new(o, key, json_string(fmt_time(ms, ts, sizeof(ts))));
}

void
api_alert_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *r;
	size_t i;

	if (alert_state_list(rq->srv->store, req_query(rq, "rule"), req_query(rq, "cluster"),
			     req_query(rq, "group"), &rows, &err) < 0)
		return reply_err(rq, &err);
	json_array_foreach(rows, i, r)
		add_time(r, "since_ms", "since");
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}

void
api_alert_history(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *lim = req_query(rq, "limit"), *after = req_query(rq, "after");
	const char *before = req_query(rq, "before");
	long limit = 100, after_id = 0, before_id = 0;
	json_t *rows = NULL, *r;
	size_t i;
	int rc;

	if (lim && parse_long(lim, 1, 10000, &limit) < 0)
		return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and 10000");
	if (after && parse_long(after, 0, LONG_MAX, &after_id) < 0)
		return reply_errf(rq, HERR_INVALID, "after", "must be an event id (0 or more)");
	if (before && parse_long(before, 0, LONG_MAX, &before_id) < 0)
		return reply_errf(rq, HERR_INVALID, "before", "must be an event id (0 or more: 0 is the newest)");
	if (after && before)
		return reply_errf(rq, HERR_INVALID, "before", "pages one way: either after or before");
	/* before=ID pages back, newest first; after=ID (the default) forward */
	if (before)
		rc = alert_event_list_before(rq->srv->store, before_id, (int)limit, req_query(rq, "rule"),
					     req_query(rq, "cluster"), req_query(rq, "group"), &rows, &err);
	else
		rc = alert_event_list(rq->srv->store, after_id, (int)limit, req_query(rq, "rule"),
				      req_query(rq, "cluster"), req_query(rq, "group"), &rows, &err);
	if (rc < 0)
		return reply_err(rq, &err);
	json_array_foreach(rows, i, r)
		add_time(r, "ts_ms", "time");
	/* a full page may have more beyond it: its last id is the cursor */
	r = json_array_get(rows, json_array_size(rows) - 1);
	reply_json(rq, 200, json_pack("{s:o,s:o}", "items", rows, "next",
				      r && json_array_size(rows) == (size_t)limit
					      ? json_integer(json_integer_value(json_object_get(r, "id")))
					      : json_null()));
}

void
api_alert_rules(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *rule = req_query(rq, "rule"), *cl = req_query(rq, "cluster");
	const char *gr = req_query(rq, "group");
	json_t *rows = alert_rules_effective(rq->srv, &err), *builtins = json_array();

	if (rows == NULL)
		return reply_err(rq, &err);
	if ((rule && *rule) || (cl && *cl) || (gr && *gr)) {
		json_t *keep = json_array(), *r;
		size_t i;
		json_array_foreach(rows, i, r)
			if ((!rule || !*rule ||
			     strcmp(json_string_value(json_object_get(r, "name")), rule) == 0) &&
			    (!cl || !*cl ||
			     strcmp(json_string_value(json_object_get(r, "cluster")), cl) == 0) &&
			    (!gr || !*gr || strcmp(json_string_value(json_object_get(r, "group")), gr) == 0))
				json_array_append(keep, r);
		json_decref(rows);
		rows = keep;
	}
	for (const struct alert_builtin *b = alert_builtins; b->name; b++)
		json_array_append_new(builtins, json_pack("{s:s,s:s,s:s,s:s}", "name", b->name, "severity",
							  b->severity, "summary", b->summary, "what",
							  b->what));
	reply_json(rq, 200, json_pack("{s:o,s:o}", "items", rows, "builtins", builtins));
}

void
api_alert_silence_list(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *r;
	size_t i;

	if (alert_silence_list(rq->srv->store, now_ms(), &rows, &err) < 0)
		return reply_err(rq, &err);
	json_array_foreach(rows, i, r) {
		add_time(r, "until_ms", "until");
		add_time(r, "created_ms", "created");
	}
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}

static bool
rule_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= ALERT_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

void
api_alert_silence_create(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *body = req_json(rq), *v;
	const char *rule, *cl, *gr, *reason, *dur, *key;
	int64_t for_ms, id, now = now_ms();

	if (!json_is_object(body))
		return reply_errf(rq, HERR_INVALID, "", "the body must be a JSON object");
	json_object_foreach(body, key, v)
		if (strcmp(key, "rule") && strcmp(key, "cluster") && strcmp(key, "group") &&
		    strcmp(key, "for") && strcmp(key, "reason"))
			return reply_errf(rq, HERR_INVALID, key, "unknown field '%s' for a silence", key);
	rule = json_string_value(json_object_get(body, "rule"));
	cl = json_string_value(json_object_get(body, "cluster"));
	gr = json_string_value(json_object_get(body, "group"));
	reason = json_string_value(json_object_get(body, "reason"));
	dur = json_string_value(json_object_get(body, "for"));
	if (!rule_name_ok(rule))
		return reply_errf(rq, HERR_INVALID, "rule", "must be a rule name [a-z0-9_-] (1-63)");
	if (cl && *cl && !name_is_valid(cl))
		return reply_errf(rq, HERR_INVALID, "cluster", "must be a cluster name");
	if (gr && *gr && (!name_is_valid(gr) || !cl || !*cl))
		return reply_errf(rq, HERR_INVALID, "group", "must be a group name, with its cluster");
	if (dur == NULL || parse_duration_ms(dur, &for_ms) < 0 || for_ms <= 0)
		return reply_errf(rq, HERR_INVALID, "for", "must be a duration like '30m' or '2h'");
	if (for_ms > SILENCE_MAX_S * 1000LL)
		return reply_errf(rq, HERR_INVALID, "for", "must be at most 30d");
	if (reason == NULL || *reason == '\0' || strlen(reason) > ALERT_SILENCE_REASON_MAX)
		return reply_errf(rq, HERR_INVALID, "reason", "is required (at most %d characters)",
				  ALERT_SILENCE_REASON_MAX);
	if (alert_silence_add(rq->srv->store, rule, cl, gr, reason, rq->who.name, now, now + for_ms,
			      &id, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 201, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I}", "id", (json_int_t)id, "rule", rule,
				      "cluster", cl ? cl : "", "group", gr ? gr : "", "reason", reason,
				      "until_ms", (json_int_t)(now + for_ms)));
}

void
api_alert_silence_delete(struct req *rq)
{
	struct herr err = HERR_INIT;
	long id;

	if (parse_long(req_param(rq, 0), 1, LONG_MAX, &id) < 0)
		return reply_errf(rq, HERR_INVALID, "id", "must be a silence id");
	if (alert_silence_delete(rq->srv->store, id, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
}
