/* test-store-nest.c - transactions inside transactions (store.h): the API
 * wraps a handler's change and its audit row in one transaction while the
 * model's functions keep their own begin/commit/rollback. An inner commit
 * leaves the work to the outer commit, an inner rollback undoes only the
 * inner part, an outer rollback undoes everything; store_in_tx says where
 * the thread is. A read snapshot (store_read_begin/end) sees one committed
 * state across its queries. A write that meets another connection's
 * transaction is woken by its end. On a real SQLite store in a temporary
 * directory. */
#include <pthread.h>
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

#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-store-nest", dir, sizeof(dir), path, sizeof(path)) < 0)
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

static void
put(const char *k)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_meta_set(st, k, "v", &err), 0);
}

static bool
has(const char *k)
{
	char *v = store_meta_get(st, k);
	bool r = v != NULL;

	free(v);
	return r;
}

static void
test_nested(void **state)
{
	struct herr err = HERR_INIT;
	uint64_t g;

	assert_false(store_in_tx(st));
	assert_int_equal(store_begin(st, &err), 0);
	assert_true(store_in_tx(st));
	put("outer");
	/* an inner transaction that commits: kept for the outer commit */
	assert_int_equal(store_begin(st, &err), 0);
	put("kept");
	assert_int_equal(store_commit(st, &err), 0);
	assert_true(store_in_tx(st));
	/* one that rolls back: only its part goes */
	assert_int_equal(store_begin(st, &err), 0);
	put("undone");
	store_rollback(st);
	assert_true(store_in_tx(st));
	assert_true(has("kept"));
	assert_false(has("undone"));
	g = store_generation();
	assert_int_equal(store_commit(st, &err), 0);
	assert_false(store_in_tx(st));
	assert_true(store_generation() > g);
	assert_true(has("outer"));
	assert_true(has("kept"));
	assert_false(has("undone"));

	/* an outer rollback undoes what inner commits kept */
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_begin(st, &err), 0);
	put("gone");
	assert_int_equal(store_commit(st, &err), 0);
	store_rollback(st);
	assert_false(store_in_tx(st));
	assert_false(has("gone"));
	store_rollback(st);   /* outside any: nothing */
	assert_false(store_in_tx(st));
}

/* The writer's batch (api/writer.c): one outer transaction, each request a
 * savepoint (depth 2) with the model's own inside it (depth 3); a request
 * undone leaves the others of the batch to the one commit. */
static void
test_batch_depth(void **state)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_tx_depth(st), 0);
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_tx_depth(st), 1);
	assert_int_equal(store_begin(st, &err), 0);          /* request a */
	put("batch_a");
	assert_int_equal(store_begin(st, &err), 0);          /* its model's */
	assert_int_equal(store_tx_depth(st), 3);
	put("batch_a2");
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_tx_depth(st), 1);
	assert_int_equal(store_begin(st, &err), 0);          /* request b fails */
	put("batch_b");
	store_rollback(st);
	assert_int_equal(store_begin(st, &err), 0);          /* request c */
	put("batch_c");
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_tx_depth(st), 0);
	assert_true(has("batch_a") && has("batch_a2") && has("batch_c"));
	assert_false(has("batch_b"));
}

/* A transaction the database ended by itself (here: a ROLLBACK behind the
 * store's back, as SQLite does on a full disk) is no transaction: depth 0,
 * and a begin refuses to open a savepoint that would commit on its own. */
static void
test_vanished(void **state)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_begin(st, &err), 0);
	put("vanish");
	assert_int_equal(store_q(st, NULL, NULL, &err, "ROLLBACK", NULL), 0);
	assert_int_equal(store_tx_depth(st), 0);
	assert_int_not_equal(store_begin(st, &err), 0);
	assert_int_not_equal(store_commit(st, &err), 0);
	assert_false(store_in_tx(st));
	assert_false(has("vanish"));
}

/* Another thread's write, on its own connection, committed at once. */
static void *
write_elsewhere(void *arg)
{
	put(arg);
	return NULL;
}

static void
put_from_thread(const char *k)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, write_elsewhere, (void *)k), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* The queries between store_read_begin and store_read_end see the state
 * committed before the first of them, not a commit made in between; after
 * the end, the next query sees it. Inside a write transaction both do
 * nothing: the end commits nothing and leaves the depth alone. */
static void
test_read_snapshot(void **state)
{
	struct herr err = HERR_INIT;

	put_from_thread("snap_before");
	assert_int_equal(store_read_begin(st, &err), 0);
	assert_true(has("snap_before"));
	put_from_thread("snap_during");
	assert_false(has("snap_during"));   /* the same snapshot */
	store_read_end(st);
	assert_true(has("snap_during"));
	assert_int_equal(store_tx_depth(st), 0);

	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_read_begin(st, &err), 0);
	put("snap_in_tx");
	store_read_end(st);
	assert_int_equal(store_tx_depth(st), 1);
	store_rollback(st);
	assert_false(has("snap_in_tx"));
}

/* A write that waits for another connection's transaction on its own
 * connection (returns its status through arg). */
static void *
put_waiting(void *arg)
{
	struct herr err = HERR_INIT;

	*(int *)arg = store_meta_set(st, "lock_waiter", "v", &err);
	return NULL;
}

/* A write that meets another connection's open transaction waits, and is
 * woken by its commit: with the longest wait without a wake-up made longer
 * than the busy timeout itself, it could only have gone through by being
 * woken (SQLite's own handler looked again after 1..100 ms sleeps, so a
 * commit was seen up to 100 ms late). */
static void
test_lock_wakeup(void **state)
{
	struct store_lock_stats before, during, after;
	struct herr err = HERR_INIT;
	pthread_t t;
	int rc = 99;

	store_lock_stats(st, &before, 60000);
	assert_int_equal(store_begin(st, &err), 0);
	put("lock_holder");
	assert_int_equal(pthread_create(&t, NULL, put_waiting, &rc), 0);
	for (int i = 0; i < 10000; i++) {   /* bounded: 10 s */
		store_lock_stats(st, &during, 0);
		if (during.waits > before.waits)
			break;
		usleep(1000);
	}
	assert_true(during.waits > before.waits);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	store_lock_stats(st, &after, 5);
	assert_int_equal(rc, 0);
	assert_true(has("lock_waiter"));
	assert_true(has("lock_holder"));
	assert_true(after.woken > before.woken);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_batch_depth),
		cmocka_unit_test(test_vanished),
		cmocka_unit_test(test_read_snapshot),
		cmocka_unit_test(test_lock_wakeup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
