/* test-alert-state.c - the alert evaluator's instances and the silences
 * (model/alert-state.c) on a real SQLite store in a temporary directory:
 * an instance is written, replaced and removed; silences come back only
 * while in force (an expired one is simply not listed), are deleted by id
 * (404 for an unknown one), and their number in force is capped. */
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
#include "model/alert-state.h"
#include "store/store.h"
#include "tmpdb.h"

#define T0 1700000000000LL

static char dir[64], path[128];

static int
setup(void **state)
{
	if (tmpdb_make("test-alert-state", dir, sizeof(dir), path, sizeof(path)) < 0)
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

static void
test_instances(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	struct alert_inst a = { "hot", "c", "web", "", ALERT_PENDING, T0, 0, 0, "critical",
				"c/web busy 40", 40.0, false };
	json_t *rows = NULL;

	assert_int_equal(alert_state_put(st, &a, &err), 0);
	a.state = ALERT_FIRING;
	a.since_ms = a.started_ms = a.last_event_ms = T0 + 3000;
	a.silenced = true;
	assert_int_equal(alert_state_put(st, &a, &err), 0);   /* replaces */
	a.rule = "agent_silent";
	a.key = "web-1";
	a.value = NAN;
	assert_int_equal(alert_state_put(st, &a, &err), 0);
	assert_int_equal(alert_state_list(st, "hot", NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "state")),
			    ALERT_FIRING);
	assert_true(json_is_true(json_object_get(json_array_get(rows, 0), "silenced")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "group")),
			    "web");
	json_decref(rows);
	assert_int_equal(alert_state_list(st, NULL, "c", "web", &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	/* no value is null, not 0 */
	assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "value")));
	json_decref(rows);
	assert_int_equal(alert_state_del(st, "hot", "c", "web", "", &err), 0);
	assert_int_equal(alert_state_list(st, "hot", NULL, NULL, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 0);
	json_decref(rows);
	store_close(st);
}

static void
test_silences(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	json_t *rows = NULL;
	int64_t id1, id2, id;

	assert_int_equal(alert_silence_add(st, "hot", "c", "web", "load test", "admin", T0,
					   T0 + 7200000, &id1, &err), 0);
	assert_int_equal(alert_silence_add(st, "host_failed", "", "", "rollout", "admin", T0,
					   T0 + 60000, &id2, &err), 0);
	assert_true(id2 > id1);
	assert_int_equal(alert_silence_list(st, T0, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "reason")),
			    "load test");
	json_decref(rows);
	/* expired: no longer listed, nothing deleted it */
	assert_int_equal(alert_silence_list(st, T0 + 60000, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	json_decref(rows);
	assert_int_equal(alert_silence_delete(st, id1, &err), 0);
	assert_int_equal(alert_silence_delete(st, id1, &err), HERR_NOTFOUND);
	assert_int_equal(alert_silence_list(st, T0, &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 1);
	json_decref(rows);
	/* the number in force is capped */
	for (int i = 1; i < ALERT_SILENCES_MAX; i++)
		assert_int_equal(alert_silence_add(st, "r", "", "", "x", "", T0, T0 + 10, &id, &err), 0);
	assert_int_equal(alert_silence_add(st, "r", "", "", "x", "", T0, T0 + 10, &id, &err),
			 HERR_TOOBIG);
	/* expired ones do not count */
	assert_int_equal(alert_silence_add(st, "r", "", "", "x", "", T0 + 10, T0 + 20, &id, &err), 0);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silences, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
