/* test-alert-event.c - alerting's transitions table (model/alert-event.c)
 * on a real SQLite store in a temporary directory: rows come back oldest
 * first after an id, or newest first before one (the console's pages),
 * filtered by rule and group; labels and the value
 * round-trip (no value is null, never 0); an unknown state or severity is
 * refused naming the field; limits are checked. */
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

#include "model/alert-event.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];

static int
setup(void **state)
{
	if (tmpdb_make("test-alert-event", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	tmpdb_remove(dir, path);
	return 0;
}

static struct store *
open_store(void)
{
	struct herr err = HERR_INIT;
	struct store *st = store_open(path, &err);

	if (st == NULL)
		fail_msg("store_open '%s': %s", path, err.msg);
	return st;
}

static int64_t
add(struct store *st, const char *rule, const char *group, const char *key, const char *state,
    double value)
{
	struct herr err = HERR_INIT;
	json_t *labels = json_pack("{ss}", "team", "ops");
	struct alert_event ev = {
		.ts_ms = 1000, .rule = rule, .cluster = "k8s", .group = group, .key = key,
		.state = state, .severity = "critical", .summary = "node-1 failed",
		.labels = labels, .value = value, .started_ms = 900,
	};

	if (alert_event_add(st, &ev, &err) < 0)
		fail_msg("alert_event_add: %s", err.msg);
	json_decref(labels);
	assert_true(ev.id > 0);
	return ev.id;
}

static void
test_round_trip(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	json_t *rows;
	int64_t a, b, c;

	a = add(st, "host_failed", "node", "node-1", ALERT_FIRING, NAN);
	b = add(st, "busy_high", "node", "", ALERT_FIRING, 37.5);
	c = add(st, "host_failed", "node", "node-1", ALERT_RESOLVED, NAN);
	assert_true(a < b && b < c);

	assert_int_equal(alert_event_list(st, 0, 100, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 3);
	json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
	assert_int_equal(json_integer_value(json_object_get(r0, "id")), a);
	assert_string_equal(json_string_value(json_object_get(r0, "group")), "node");
	assert_null(json_object_get(r0, "grp"));
	assert_true(json_is_null(json_object_get(r0, "value")));
	assert_true(json_is_false(json_object_get(r0, "repeat")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r0, "labels"), "team")),
			    "ops");
	assert_true(fabs(json_number_value(json_object_get(r1, "value")) - 37.5) < 1e-9);
	json_decref(rows);

	/* after an id: what a notifier that delivered a sees next */
	assert_int_equal(alert_event_list(st, a, 100, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), b);
	json_decref(rows);

	/* by rule; by another group: none */
	assert_int_equal(alert_event_list(st, 0, 100, "host_failed", "k8s", "node", &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	json_decref(rows);
	assert_int_equal(alert_event_list(st, 0, 100, NULL, "k8s", "master", &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);
	/* limit */
	assert_int_equal(alert_event_list(st, 0, 1, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	json_decref(rows);

	/* newest first: from the newest (0), then before an id; filtered */
	assert_int_equal(alert_event_list_before(st, 0, 2, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), c);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "id")), b);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "group")), "node");
	json_decref(rows);
	assert_int_equal(alert_event_list_before(st, b, 100, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), a);
	json_decref(rows);
	assert_int_equal(alert_event_list_before(st, 0, 100, "busy_high", NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), b);
	json_decref(rows);
	assert_int_equal(alert_event_list_before(st, 0, 0, NULL, NULL, NULL, &rows, &err), HERR_INVALID);
	assert_string_equal(err.field, "limit");
	herr_clear(&err);
	store_close(st);
}

static void
test_refused(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	struct alert_event ev = { .rule = "x", .state = "pending", .severity = "critical" };
	json_t *rows;

	assert_int_equal(alert_event_add(st, &ev, &err), HERR_INVALID);
	assert_string_equal(err.field, "state");
	ev.state = ALERT_FIRING;
	ev.severity = "page";
	herr_clear(&err);
	assert_int_equal(alert_event_add(st, &ev, &err), HERR_INVALID);
	assert_string_equal(err.field, "severity");
	ev.severity = "info";
	ev.rule = "";
	herr_clear(&err);
	assert_int_equal(alert_event_add(st, &ev, &err), HERR_INVALID);
	assert_string_equal(err.field, "rule");
	herr_clear(&err);
	assert_int_equal(alert_event_list(st, 0, 0, NULL, NULL, NULL, &rows, &err), HERR_INVALID);
	assert_string_equal(err.field, "limit");
	herr_clear(&err);
	assert_int_equal(alert_event_list(st, 0, 100, NULL, NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 0);   /* nothing was written */
	json_decref(rows);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
