/* test-host-model.c - the host state machine (model/host.c) on a real
 * SQLite store in a temporary directory: the transition rule, and every
 * writer's guard: terminal states are never left, a drain starts only from
 * ready and is taken back only from draining, a stale compare-and-set
 * changes nothing, and teardown marks what is left terminated. */
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

#include "model/host.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-host-model", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	st = store_open(path, &err);
	return st ? 0 : -1;
}

static int
teardown(void **state)
{
	store_close(st);
	tmpdb_remove(dir, path);
	return 0;
}

/* A host row in state s (the columns the writers touch; the rest default). */
static void
put_host(const char *id, const char *s)
{
	static int seq;
	struct herr err = HERR_INIT;
	char name[32];

	snprintf(name, sizeof(name), "h-%s", id);
	if (store_q(st, NULL, NULL, &err,
		    "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, client_token, private_ip, created_ms, updated_ms)"
		    " VALUES (?, ?, 'c', 'g', ?, 't', 'a', 'n', ?, ?, ?, 1, 1)",
		    "[ssisss]", id, name, ++seq, s, id, id) < 0)
		fail_msg("insert host %s: %s", id, err.msg);
}

static const char *
state_of(const char *id)
{
	static char out[32];
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, "SELECT state FROM hosts WHERE id = ?", "[s]", id);

	assert_non_null(row);
	snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(row, "state")));
	json_decref(row);
	return out;
}

/* A random source that gives the ids of arg (a NULL-ended list) in turn,
 * the last one again and again. */
static void
ids_in_turn(char *out, size_t n, void *arg)
{
	const char ***next = arg;

	snprintf(out, n, "%s", **next);
	if ((*next)[1])
		(*next)++;
}

/* A new id is one no host row has, terminated ones included: a draw that
 * meets one is drawn again, and HOST_ID_TRIES draws that all meet one are
 * a conflict, not a duplicate. */
static void
test_host_id_new(void **state)
{
	const char *list1[] = { "0000aaaa", "0000bbbb", "0000cccc", NULL }, **p1 = list1;
	const char *list2[] = { "0000aaaa", NULL }, **p2 = list2;
	const char *list3[] = { "0000dddd", NULL }, **p3 = list3;
	struct herr err = HERR_INIT;
	char id[16];

	put_host("0000aaaa", "ready");
	put_host("0000bbbb", "terminated");
	assert_int_equal(host_id_new(st, ids_in_turn, &p1, id, sizeof(id), &err), 0);
	assert_string_equal(id, "0000cccc");
	assert_int_equal(host_id_new(st, ids_in_turn, &p2, id, sizeof(id), &err), HERR_CONFLICT);
	err = (struct herr)HERR_INIT;
	assert_int_equal(host_id_new(st, ids_in_turn, &p3, id, sizeof(id), &err), 0);
	assert_string_equal(id, "0000dddd");
}

static void
test_transition_rule(void **state)
{
	(void)state;
	for (int f = 0; f < HS__COUNT; f++)
		for (int t = 0; t < HS__COUNT; t++) {
			bool ok = host_transition_ok((enum hstate)f, (enum hstate)t);
			if (f == t || f == HS_TERMINATED)
				assert_false(ok);
			else if (f == HS_TERMINATING)
				assert_int_equal(ok, t == HS_TERMINATED);
			else if (f == HS_FAILED)
				assert_int_equal(ok, t == HS_TERMINATING || t == HS_TERMINATED);
			else
				assert_true(ok);
		}
	assert_false(host_transition_ok(HS__COUNT, HS_READY));
	assert_false(host_transition_ok(HS_READY, HS__COUNT));
	for (int i = 0; i < HS__COUNT; i++)
		assert_int_equal(hstate_parse(hstate_name((enum hstate)i)), i);
	assert_int_equal(hstate_parse("bogus"), HS__COUNT);
}

static void
test_state_write_guards(void **state)
{
	struct herr err = HERR_INIT;
	int64_t changed = -1;

	(void)state;
	put_host("00000001", "initializing");
	assert_int_equal(host_state_write(st, "00000001", HS_INITIALIZING, HS_READY, "", 100,
					  &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_equal(state_of("00000001"), "ready");
	/* a stale compare-and-set (the caller read initializing) changes nothing */
	assert_int_equal(host_state_write(st, "00000001", HS_INITIALIZING, HS_FAILED, "late", 200,
					  &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(state_of("00000001"), "ready");
	/* terminal states are never left */
	put_host("00000002", "terminated");
	herr_clear(&err);
	assert_true(host_state_write(st, "00000002", HS_TERMINATED, HS_READY, "", 300, &changed,
				     &err) < 0);
	assert_int_equal(err.code, HERR_CONFLICT);
	assert_string_equal(state_of("00000002"), "terminated");
	herr_clear(&err);
	assert_int_equal(host_mark_terminating(st, "00000002", "again", 0, 300, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(state_of("00000002"), "terminated");
}

static void
test_drain_and_reclaim(void **state)
{
	struct herr err = HERR_INIT;
	int64_t changed = -1;

	(void)state;
	put_host("00000003", "initializing");
	/* a drain starts only from ready */
	assert_int_equal(host_mark_draining(st, "00000003", 7, 1000, "drain", 10, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(state_of("00000003"), "initializing");
	assert_int_equal(host_reclaim(st, "00000003", 10, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(host_state_write(st, "00000003", HS_INITIALIZING, HS_READY, "", 20, NULL,
					  &err), 0);
	assert_int_equal(host_mark_draining(st, "00000003", 7, 1000, "drain", 30, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_equal(state_of("00000003"), "draining");
	assert_int_equal(host_reclaim(st, "00000003", 40, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_equal(state_of("00000003"), "ready");
	/* terminating keeps the reason unless one is given, and is not entered twice */
	assert_int_equal(host_mark_terminating(st, "00000003", NULL, 50, 50, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(host_mark_terminating(st, "00000003", "twice", 60, 60, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(state_of("00000003"), "terminating");
}

static void
test_instance_and_teardown(void **state)
{
	struct herr err = HERR_INIT;

	(void)state;
	put_host("00000004", "launching");
	put_host("00000005", "initializing");
	assert_int_equal(host_record_instance(st, "00000004", "i-4", 5, 5, &err), 0);
	assert_string_equal(state_of("00000004"), "booting");
	/* a host that moved on keeps its state; its instance is still recorded */
	assert_int_equal(host_record_instance(st, "00000005", "i-5", 5, 5, &err), 0);
	assert_string_equal(state_of("00000005"), "initializing");
	put_host("00000006", "failed");
	assert_int_equal(host_mark_group_failed_terminating(st, "c", "g", 9, &err), 0);
	assert_string_equal(state_of("00000006"), "terminating");
	assert_string_equal(state_of("00000005"), "initializing");
	assert_int_equal(host_mark_terminated(st, "00000004", 10, &err), 0);
	assert_string_equal(state_of("00000004"), "terminated");
	assert_int_equal(host_mark_terminated(st, NULL, 11, &err), 0);
	assert_string_equal(state_of("00000005"), "terminated");
	assert_string_equal(state_of("00000006"), "terminated");
}

/* host_get: the typed row, every column read; a missing id is NOTFOUND. */
static void
test_host_get(void **state)
{
	struct herr err = HERR_INIT;
	struct host h;

	(void)state;
	put_host("00000007", "booting");
	assert_int_equal(host_record_instance(st, "00000007", "i-7", 12, 13, &err), 0);
	assert_int_equal(host_get(st, "00000007", &h, &err), 0);
	assert_string_equal(h.id, "00000007");
	assert_string_equal(h.name, "h-00000007");
	assert_string_equal(h.cluster, "c");
	assert_string_equal(h.grp, "g");
	assert_string_equal(h.template_, "t");
	assert_string_equal(h.private_ip, "00000007");
	assert_string_equal(h.instance_id, "i-7");
	assert_int_equal(h.state, HS_BOOTING);
	assert_int_equal(h.launched_ms, 12);
	assert_true(h.seq > 0);
	assert_int_equal(host_get(st, "nosuch", &h, &err), HERR_NOTFOUND);
	assert_int_equal(err.code, HERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_rule),
		cmocka_unit_test(test_state_write_guards),
		cmocka_unit_test(test_drain_and_reclaim),
		cmocka_unit_test(test_instance_and_teardown),
		cmocka_unit_test(test_host_get),
		cmocka_unit_test(test_host_id_new),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
