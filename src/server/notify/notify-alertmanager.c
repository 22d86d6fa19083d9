/* notify/notify-alertmanager.c - the alertmanager channel: herd's events
 * POSTed to Alertmanager's v2 API (POST BASE/api/v2/alerts, a list of
 * postableAlert: labels, annotations, startsAt, endsAt), so teams that
 * route alerts with Alertmanager keep doing so. A firing alert has no
 * endsAt (Alertmanager then keeps it resolve_timeout, 5 min by default, and
 * herd's repeat events refresh it); a resolved one ends at its event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "util.h"

/* Alertmanager's label names are [a-zA-Z_][a-zA-Z0-9_]*: others dropped. */
static bool
label_name_ok(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void
set_nonempty(json_t *o, const char *k, const json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0)
		json_object_set(o, k, (json_t *)v);
}

json_t *
notify_am_payload(const json_t *events)
{
	json_t *out = json_array();
	const json_t *ev;
	size_t i;

	json_array_foreach(events, i, ev) {
		json_t *labels = json_object(), *a;
		const json_t *l = json_object_get(ev, "labels"), *v;
		const char *k;
		char t[40], fp[17];

		/* the event's own labels first: herd's names win over them */
		json_object_foreach((json_t *)l, k, v)
			if (json_is_string(v) && label_name_ok(k))
				json_object_set(labels, k, (json_t *)v);
		json_object_set(labels, "alertname", json_object_get(ev, "rule"));
		set_nonempty(labels, "cluster", json_object_get(ev, "cluster"));
		set_nonempty(labels, "group", json_object_get(ev, "group"));
		set_nonempty(labels, "key", json_object_get(ev, "key"));
		set_nonempty(labels, "severity", json_object_get(ev, "severity"));
		notify_fingerprint(ev, fp);
		a = json_pack("{s:o, s:{s:O, s:s}, s:s}", "labels", labels, "annotations", "summary",
			      json_object_get(ev, "summary"), "herd_fingerprint", fp, "startsAt",
			      fmt_time(json_integer_value(json_object_get(ev, "started_ms")), t, sizeof(t)));
		if (strcmp(json_string_value(json_object_get(ev, "state")) ?: "", "resolved") == 0)
			json_object_set_new(a, "endsAt", json_string(fmt_time(
				json_integer_value(json_object_get(ev, "ts_ms")), t, sizeof(t))));
		json_array_append_new(out, a);
	}
	return out;
}

int
notify_am_send(const struct receiver *r, const json_t *events, long *status, struct herr *err)
{
	json_t *body = notify_am_payload(events);
	char *text = json_dumps(body, JSON_COMPACT), url[1100];
	size_t n = strlen(r->url);
	int rc;

	json_decref(body);
	snprintf(url, sizeof(url), "%.*s/api/v2/alerts", (int)(n && r->url[n - 1] == '/' ? n - 1 : n),
		 r->url);
	rc = notify_http_post(url, NULL, text, strlen(text), r->timeout_ms, status, err);
	free(text);
	return rc;
}
