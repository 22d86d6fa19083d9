/* test-group-state.c - a group's controller bookkeeping in its own table
 * (model/group-state.c) on a real SQLite store in a temporary directory:
 * absent is all zero, each event moves only its own clock, the API form
 * says null for never, deleting the group deletes its row, and a store
 * written before the table existed (made at schema version 4 by
 * store_open_at, the keys inside the group's spec) is migrated: values
 * moved, keys removed, version kept. */
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

#include "model/group-state.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];

static struct store *
open_store(void)
{
	struct herr err = HERR_INIT;
	struct store *st = store_open(path, &err);

	if (st == NULL)
		fail_msg("store_open '%s': %s", path, err.msg);
	return st;
}

static int
setup(void **state)
{
	if (tmpdb_make("test-group-state", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	/* exact names only: the database and its WAL files, then the dir */
	tmpdb_remove(dir, path);
	return 0;
}

static void
put_group(struct store *st, const char *scope, const char *name, const char *spec)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_q(st, NULL, NULL, &err,
				 "INSERT INTO resources (kind, scope, name, spec, version, created_ms,"
				 " updated_ms) VALUES ('group', ?, ?, ?, 7, 1, 1)",
				 "[sss]", scope, name, spec), 0);
}

static void
test_clocks(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	struct group_state gs;
	json_t *o;

	assert_int_equal(group_state_get(st, "c", "g", &gs, &err), 0);
	assert_true(gs.last_scale_out_ms == 0 && gs.last_scale_in_ms == 0 && gs.manual_scale_ms == 0);
	assert_int_equal(group_state_note(st, "c", "g", GROUP_SCALED_OUT, 1000, &err), 0);
	assert_int_equal(group_state_note(st, "c", "g", GROUP_SCALED_MANUALLY, 3000, &err), 0);
	assert_int_equal(group_state_note(st, "c", "g", GROUP_SCALED_OUT, 2000, &err), 0);
	assert_int_equal(group_state_note(st, "c", "other", GROUP_SCALED_IN, 9000, &err), 0);
	assert_int_equal(group_state_get(st, "c", "g", &gs, &err), 0);
	assert_int_equal(gs.last_scale_out_ms, 2000);
	assert_int_equal(gs.last_scale_in_ms, 0);
	assert_int_equal(gs.manual_scale_ms, 3000);
	o = group_state_to_json(&gs);
	assert_true(json_is_string(json_object_get(o, "last_scale_out")));
	assert_true(json_is_null(json_object_get(o, "last_scale_in")));
	assert_true(json_is_string(json_object_get(o, "manual_scale")));
	json_decref(o);
	store_close(st);
}

static void
test_delete_group_deletes_row(void **state)
{
	struct store *st = open_store();
	struct herr err = HERR_INIT;
	struct group_state gs;

	put_group(st, "c", "g", "{\"template\":\"t\"}");
	assert_int_equal(group_state_note(st, "c", "g", GROUP_SCALED_IN, 5000, &err), 0);
	assert_int_equal(store_q(st, NULL, NULL, &err,
				 "DELETE FROM resources WHERE kind = 'group' AND scope = 'c' AND name = 'g'",
				 NULL), 0);
	assert_int_equal(group_state_get(st, "c", "g", &gs, &err), 0);
	assert_int_equal(gs.last_scale_in_ms, 0);
	store_close(st);
}

static void
test_migration_moves_keys_out_of_spec(void **state)
{
	struct herr err = HERR_INIT;
	struct store *st;
	struct group_state gs;
	json_t *row, *spec;

	/* what a herd before the table wrote: group_state is migration 5, so
	 * the store is made at version 4 by the real migrations 1-4 */
	if ((st = store_open_at(path, 4, &err)) == NULL)
		fail_msg("store_open_at '%s' 4: %s", path, err.msg);
	row = store_row(st, &err, "PRAGMA user_version", NULL);
	assert_int_equal(json_integer_value(json_object_get(row, "user_version")), 4);
	json_decref(row);
	put_group(st, "c", "old", "{\"desired\":2,\"last_scale_in_ms\":22,\"last_scale_out_ms\":11,"
		  "\"manual_scale_ms\":33,\"template\":\"t\"}");
	put_group(st, "c", "plain", "{\"desired\":1,\"template\":\"t\"}");
	store_close(st);

	st = open_store();   /* migrates */
	assert_int_equal(group_state_get(st, "c", "old", &gs, &err), 0);
	assert_int_equal(gs.last_scale_out_ms, 11);
	assert_int_equal(gs.last_scale_in_ms, 22);
	assert_int_equal(gs.manual_scale_ms, 33);
	row = store_row(st, &err, "SELECT spec, version FROM resources WHERE name = 'old'", NULL);
	assert_non_null(row);
	spec = json_loads(json_string_value(json_object_get(row, "spec")), 0, NULL);
	assert_non_null(spec);
	assert_null(json_object_get(spec, "last_scale_out_ms"));
	assert_null(json_object_get(spec, "last_scale_in_ms"));
	assert_null(json_object_get(spec, "manual_scale_ms"));
	assert_int_equal(json_integer_value(json_object_get(spec, "desired")), 2);
	assert_int_equal(json_integer_value(json_object_get(row, "version")), 7);
	json_decref(spec);
	json_decref(row);
	/* a group that had none gets no row (all zero) */
	row = store_row(st, &err, "SELECT COUNT(*) AS n FROM group_state WHERE grp = 'plain'", NULL);
	assert_int_equal(json_integer_value(json_object_get(row, "n")), 0);
	json_decref(row);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_group_deletes_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_moves_keys_out_of_spec, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
