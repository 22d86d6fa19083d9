/* test-notify.c - alert delivery's pure parts (notify/notify.c,
 * notify-*.c, ctl/notify.c's notify_plan_decide) and its per-receiver
 * state on a real SQLite store (model/alert-delivery.c): the webhook's
 * HMAC header against a value computed by Python's hmac module, the
 * Alertmanager payload, routing, the retry schedule, the outcome of an
 * attempt, grouping for group_wait, receiver validation naming the field,
 * an email header that an event's summary cannot break, and the cursor. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl/notify.h"
#include "model/alert-delivery.h"
#include "model/alert-event.h"
#include "notify/notify.h"
#include "store/store.h"

static json_t *
ev(int64_t id, int64_t ts_ms, const char *rule, const char *group, const char *key,
   const char *state, const char *severity, bool silenced)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:f, s:I, s:b, s:b}",
			 "id", (json_int_t)id, "ts_ms", (json_int_t)ts_ms, "rule", rule, "cluster", "k8s",
			 "group", group, "key", key, "state", state, "severity", severity, "summary",
			 "busy 37.5 on node-1", "labels", "team", "ops", "value", 37.5, "started_ms",
			 (json_int_t)1700000000000, "repeat", 0, "silenced", silenced);
}

static void
parse_ok(const char *yaml_json, json_t **spec, struct receiver *r)
{
	struct herr err = HERR_INIT;

	*spec = json_loads(yaml_json, 0, NULL);
	assert_non_null(*spec);
	if (receiver_parse("r", *spec, r, &err) < 0)
		fail_msg("receiver_parse: %s: %s", err.field, err.msg);
}

static void
parse_fails(const char *text, const char *field)
{
	struct herr err = HERR_INIT;
	struct receiver r;
	json_t *spec = json_loads(text, 0, NULL);

	assert_non_null(spec);
	assert_int_equal(receiver_parse("r", spec, &r, &err), HERR_INVALID);
	assert_string_equal(err.field, field);
	json_decref(spec);
}

static void
test_hmac_header(void **state)
{
	char out[72];
	const char *body = "{\"a\":1}";

	notify_webhook_sign((const unsigned char *)"k", 1, 1700000000, body, strlen(body), out);
	/* python3: hmac.new(b'k', b'1700000000.{"a":1}', hashlib.sha256).hexdigest() */
	assert_string_equal(out,
			    "sha256=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3");
	/* another timestamp, another MAC: the timestamp is covered */
	notify_webhook_sign((const unsigned char *)"k", 1, 1700000001, body, strlen(body), out);
	assert_string_not_equal(out,
				"sha256=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3");
}

static void
test_webhook_body(void **state)
{
	json_t *evs = json_array(), *b;
	char fp[17];

	json_array_append_new(evs, ev(7, 1700000001000, "busy_high", "node", "node-1", "firing",
				      "warning", false));
	json_array_append_new(evs, ev(9, 1700000002000, "busy_high", "node", "node-2", "resolved",
				      "warning", false));
	b = notify_webhook_body("ops", evs);
	assert_string_equal(json_string_value(json_object_get(b, "status")), "firing");
	assert_int_equal(json_array_size(json_object_get(b, "event_ids")), 2);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(b, "event_ids"), 1)), 9);
	notify_fingerprint(json_array_get(evs, 0), fp);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(b, "alerts"), 0), "fingerprint")), fp);
	assert_null(json_object_get(json_array_get(json_object_get(b, "alerts"), 0), "silenced"));
	json_decref(b);
	json_decref(evs);
}

static void
test_fingerprint(void **state)
{
	json_t *a = ev(1, 1, "r", "node", "node-1", "firing", "info", false);
	json_t *b = ev(2, 5, "r", "node", "node-1", "resolved", "critical", false);
	json_t *c = ev(3, 5, "r", "node", "node-2", "firing", "critical", false);
	char fa[17], fb[17], fc[17];

	notify_fingerprint(a, fa);
	notify_fingerprint(b, fb);
	notify_fingerprint(c, fc);
	assert_string_equal(fa, fb);     /* one instance, whatever its state */
	assert_string_not_equal(fa, fc);
	assert_int_equal(strlen(fa), 16);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void
test_am_payload(void **state)
{
	json_t *evs = json_array(), *p, *a, *l;

	json_array_append_new(evs, ev(1, 1700000060000, "busy_high", "node", "node-1", "firing",
				      "critical", false));
	json_array_append_new(evs, ev(2, 1700000120000, "busy_high", "", "", "resolved",
				      "critical", false));
	json_object_set_new(json_object_get(json_array_get(evs, 0), "labels"), "bad-name",
			    json_string("x"));
	json_object_set_new(json_object_get(json_array_get(evs, 0), "labels"), "alertname",
			    json_string("spoofed"));
	p = notify_am_payload(evs);
	assert_int_equal(json_array_size(p), 2);
	a = json_array_get(p, 0);
	l = json_object_get(a, "labels");
	assert_string_equal(json_string_value(json_object_get(l, "alertname")), "busy_high");
	assert_string_equal(json_string_value(json_object_get(l, "cluster")), "k8s");
	assert_string_equal(json_string_value(json_object_get(l, "group")), "node");
	assert_string_equal(json_string_value(json_object_get(l, "key")), "node-1");
	assert_string_equal(json_string_value(json_object_get(l, "severity")), "critical");
	assert_string_equal(json_string_value(json_object_get(l, "team")), "ops");
	assert_null(json_object_get(l, "bad-name"));       /* not a Prometheus label name */
	assert_string_equal(json_string_value(json_object_get(json_object_get(a, "annotations"),
							      "summary")), "busy 37.5 on node-1");
	assert_string_equal(json_string_value(json_object_get(a, "startsAt")),
			    "2023-11-14T22:13:20.000Z");
	assert_null(json_object_get(a, "endsAt"));          /* firing: open */
	a = json_array_get(p, 1);
	assert_string_equal(json_string_value(json_object_get(a, "endsAt")), "2023-11-14T22:15:20.000Z");
	assert_null(json_object_get(json_object_get(a, "labels"), "group"));   /* empty: absent */
	json_decref(p);
	json_decref(evs);
}

static void
test_match(void **state)
{
	struct receiver r;
	json_t *spec, *e1 = ev(1, 1, "busy_high", "node", "n1", "firing", "critical", false);
	json_t *e2 = ev(2, 1, "busy_high", "master", "m1", "firing", "warning", false);
	json_t *e3 = ev(3, 1, "host_failed", "node", "n1", "firing", "critical", false);

	parse_ok("{\"type\":\"webhook\",\"url\":\"http://x\"}", &spec, &r);
	assert_true(receiver_match(&r, e1) && receiver_match(&r, e2) && receiver_match(&r, e3));
	json_decref(spec);
	parse_ok("{\"type\":\"webhook\",\"url\":\"http://x\",\"match\":{\"severities\":[\"critical\"],"
		 "\"groups\":[\"k8s/node\"]}}", &spec, &r);
	assert_true(receiver_match(&r, e1));
	assert_false(receiver_match(&r, e2));
	assert_true(receiver_match(&r, e3));
	json_decref(spec);
	parse_ok("{\"type\":\"webhook\",\"url\":\"http://x\",\"match\":{\"rules\":[\"host_failed\"],"
		 "\"clusters\":[\"k8s\"]}}", &spec, &r);
	assert_false(receiver_match(&r, e1));
	assert_true(receiver_match(&r, e3));
	json_decref(spec);
	json_decref(e1);
	json_decref(e2);
	json_decref(e3);
}

static void
test_parse_errors(void **state)
{
	parse_fails("{\"url\":\"http://x\"}", "type");
	parse_fails("{\"type\":\"pager\",\"url\":\"http://x\"}", "type");
	parse_fails("{\"type\":\"webhook\",\"url\":\"smtp://x\"}", "url");
	parse_fails("{\"type\":\"webhook\",\"url\":\"http://x\",\"secret_file\":\"rel\"}", "secret_file");
	parse_fails("{\"type\":\"email\",\"url\":\"http://x\",\"from\":\"a@b\",\"to\":[\"c@d\"]}", "url");
	parse_fails("{\"type\":\"email\",\"url\":\"smtp://x\",\"to\":[\"c@d\"]}", "from");
	parse_fails("{\"type\":\"email\",\"url\":\"smtp://x\",\"from\":\"a@b\",\"to\":[]}", "to");
	parse_fails("{\"type\":\"email\",\"url\":\"smtp://x\",\"from\":\"a@b\","
		    "\"to\":[\"c@d\",\"x\\r\\nRCPT TO:<e@f>\"]}", "to[1]");
	parse_fails("{\"type\":\"webhook\",\"url\":\"http://x\",\"from\":\"a@b\"}", "from");
	parse_fails("{\"type\":\"webhook\",\"url\":\"http://x\",\"match\":{\"hosts\":[\"a\"]}}", "match");
	parse_fails("{\"type\":\"webhook\",\"url\":\"http://x\",\"match\":{\"severities\":[\"bad\"]}}",
		    "match.severities[0]");
	parse_fails("{\"type\":\"alertmanager\",\"url\":\"http://x\",\"group_wait\":\"2h\"}", "group_wait");
}

static void
test_backoff(void **state)
{
	assert_int_equal(notify_backoff_ms(1, 0), 500);
	assert_int_equal(notify_backoff_ms(1, 0.999), 500 + 499);
	assert_int_equal(notify_backoff_ms(2, 0), 1000);
	assert_int_equal(notify_backoff_ms(3, 0), 2000);
	assert_int_equal(notify_backoff_ms(9, 0), 128000);
	assert_int_equal(notify_backoff_ms(10, 0), 150000);      /* capped at 5 min */
	assert_int_equal(notify_backoff_ms(1000, 0.5), 225000);
	assert_true(notify_backoff_ms(1000, 0.9999) < NOTIFY_BACKOFF_MAX_MS);
	assert_int_equal(notify_backoff_ms(1, 7), 500);          /* a bad jitter is none */
}

static void
test_classify(void **state)
{
	assert_int_equal(notify_classify(0, 200, false), NOTIFY_OK);
	assert_int_equal(notify_classify(0, 204, false), NOTIFY_OK);
	assert_int_equal(notify_classify(HERR_UNAVAIL, 0, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(HERR_TIMEOUT, 0, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(0, 500, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(0, 503, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(0, 429, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(0, 408, false), NOTIFY_RETRY);
	assert_int_equal(notify_classify(0, 400, false), NOTIFY_DROP);
	assert_int_equal(notify_classify(0, 404, false), NOTIFY_DROP);
	assert_int_equal(notify_classify(0, 250, true), NOTIFY_OK);
	assert_int_equal(notify_classify(0, 451, true), NOTIFY_RETRY);   /* SMTP 4xx: later */
	assert_int_equal(notify_classify(0, 550, true), NOTIFY_DROP);    /* SMTP 5xx: never */
}

static void
test_plan(void **state)
{
	struct receiver r;
	struct notify_plan p;
	json_t *spec, *evs = json_array();

	parse_ok("{\"type\":\"webhook\",\"url\":\"http://x\",\"group_wait\":\"10s\","
		 "\"match\":{\"severities\":[\"critical\",\"warning\"]}}", &spec, &r);
	/* nothing: nothing to do */
	notify_plan_decide(&r, evs, true, 0, &p);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.cursor, 0);
	/* only events not for r: the cursor passes them */
	json_array_append_new(evs, ev(1, 1000, "a", "node", "n1", "firing", "info", false));
	json_array_append_new(evs, ev(2, 1000, "a", "node", "n1", "firing", "critical", true));
	notify_plan_decide(&r, evs, true, 5000, &p);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.cursor, 2);
	/* a first event: it waits group_wait from its time */
	json_array_append_new(evs, ev(3, 2000, "a", "node", "n1", "firing", "critical", false));
	json_array_append_new(evs, ev(4, 2500, "a", "node", "n2", "firing", "critical", false));
	notify_plan_decide(&r, evs, true, 5000, &p);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.wait_until_ms, 12000);
	/* after group_wait: both in one notification */
	notify_plan_decide(&r, evs, true, 12000, &p);
	assert_int_equal(p.wait_until_ms, 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.idx[0], 2);
	assert_int_equal(p.idx[1], 3);
	assert_int_equal(p.cursor, 4);
	/* another alert's event closes the batch: sent now, that one next */
	json_array_append_new(evs, ev(5, 2600, "a", "node", "n1", "firing", "info", false));
	json_array_append_new(evs, ev(6, 2700, "b", "node", "n1", "firing", "warning", false));
	json_array_append_new(evs, ev(7, 2800, "a", "node", "n3", "firing", "warning", false));
	notify_plan_decide(&r, evs, true, 5000, &p);
	assert_int_equal(p.wait_until_ms, 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.cursor, 5);      /* passes 5 (not r's), stops before 6 */
	/* a full window: behind, so no waiting for group_wait */
	json_array_remove(evs, 6);
	json_array_remove(evs, 5);
	notify_plan_decide(&r, evs, false, 5000, &p);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.wait_until_ms, 0);   /* incomplete: send what there is */
	json_decref(evs);
	/* at most NOTIFY_BATCH_MAX per notification */
	evs = json_array();
	for (int i = 0; i < NOTIFY_BATCH_MAX + 5; i++)
		json_array_append_new(evs, ev(i + 1, 1000, "a", "node", "n", "firing", "critical", false));
	notify_plan_decide(&r, evs, true, 0, &p);
	assert_int_equal(p.n, NOTIFY_BATCH_MAX);
	assert_int_equal(p.cursor, NOTIFY_BATCH_MAX);
	assert_int_equal(p.wait_until_ms, 0);
	json_decref(evs);
	json_decref(spec);
}

static void
test_email_message(void **state)
{
	struct receiver r;
	json_t *spec, *evs = json_array(), *e = ev(5, 1700000000000, "busy_high", "node", "n1",
						   "firing", "critical", false);
	char *m, *subject, *eol;

	json_object_set_new(e, "summary", json_string("evil\r\nBcc: victim@example.org"));
	json_array_append_new(evs, e);
	parse_ok("{\"type\":\"email\",\"url\":\"smtp://127.0.0.1:25\",\"from\":\"herd@example.org\","
		 "\"to\":[\"a@example.org\",\"b@example.org\"]}", &spec, &r);
	m = notify_email_message(&r, evs, 1700000000000);
	assert_non_null(strstr(m, "To: <a@example.org>, <b@example.org>\r\n"));
	subject = strstr(m, "Subject: ");
	assert_non_null(subject);
	eol = strstr(subject, "\r\n");
	assert_non_null(eol);
	assert_null(strstr(m, "\r\nBcc:"));       /* the CR LF became spaces */
	assert_true(memmem(subject, (size_t)(eol - subject), "evil  Bcc: victim", 17) != NULL);
	assert_non_null(strstr(m, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(m, "event: 5"));
	free(m);
	json_decref(evs);
	json_decref(spec);
}

/* --- the cursor, on a real store --- */
static char dir[64], path[128];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test-notify.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/herd.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char p[160];
	const char *const sfx[] = { "", "-wal", "-shm" };

	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static void
add(struct store *st)
{
	struct herr err = HERR_INIT;
	struct alert_event e = { .ts_ms = 1, .rule = "r", .state = ALERT_FIRING,
				 .severity = "warning", .value = NAN, .started_ms = 1 };

	assert_int_equal(alert_event_add(st, &e, &err), 0);
}

static void
test_cursor(void **state)
{
	struct herr err = HERR_INIT;
	struct alert_delivery d;
	struct store *st = store_open(path, &err);

	assert_non_null(st);
	add(st);
	add(st);
	/* a new receiver starts after the newest event */
	assert_int_equal(alert_delivery_load(st, "ops", &d, &err), 0);
	assert_int_equal(d.cursor, 2);
	add(st);
	assert_int_equal(alert_delivery_fail(st, "ops", 1, 5000, "refused", 1000, &err), 0);
	assert_int_equal(alert_delivery_fail(st, "ops", 2, 9000, "refused", 2000, &err), 0);
	assert_int_equal(alert_delivery_load(st, "ops", &d, &err), 0);
	assert_int_equal(d.cursor, 2);      /* failures never move it */
	assert_int_equal(d.failures, 2);
	assert_int_equal(d.failed, 2);
	assert_int_equal(d.next_retry_ms, 9000);
	assert_int_equal(alert_delivery_ack(st, "ops", 3, false, NULL, 10000, &err), 0);
	assert_int_equal(alert_delivery_load(st, "ops", &d, &err), 0);
	assert_int_equal(d.cursor, 3);
	assert_int_equal(d.sent, 1);
	assert_int_equal(d.failures, 0);
	assert_int_equal(d.next_retry_ms, 0);
	assert_int_equal(alert_delivery_ack(st, "ops", 4, true, "400", 11000, &err), 0);
	assert_int_equal(alert_delivery_skip(st, "ops", 2, &err), 0);   /* never back */
	assert_int_equal(alert_delivery_load(st, "ops", &d, &err), 0);
	assert_int_equal(d.cursor, 4);
	assert_int_equal(d.dropped, 1);
	assert_int_equal(d.sent, 1);
	/* no receiver resource named "ops": its row goes, and it starts afresh */
	add(st);
	assert_int_equal(alert_delivery_prune(st, &err), 0);
	assert_int_equal(alert_delivery_load(st, "ops", &d, &err), 0);
	assert_int_equal(d.cursor, 4);
	assert_int_equal(d.sent, 0);
	assert_int_equal(d.dropped, 0);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_header),
		cmocka_unit_test(test_webhook_body),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_am_payload),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_email_message),
		cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
