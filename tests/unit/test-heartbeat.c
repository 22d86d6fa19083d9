/* test-heartbeat.c - heartbeats kept in memory (model/host.c "heartbeats
 * in memory") on a real SQLite store in a temporary directory: readers see
 * the newer of the stored and the in-memory heartbeat, nothing is written
 * until the persist interval is due (then all pending in one transaction),
 * a flush writes them all and empties the table, a full table writes
 * heartbeats through instead of growing, thousands of hosts are each
 * found again by id, and on a store several servers share the interval is
 * HB_PERSIST_SHARED_MS. */
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

	if (tmpdb_make("test-heartbeat", dir, sizeof(dir), path, sizeof(path)) < 0)
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
add_host(const char *id, int seq)
{
	struct herr err = HERR_INIT;
	struct host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.id, sizeof(h.id), "%s", id);
	snprintf(h.name, sizeof(h.name), "g-%d", seq);
	snprintf(h.cluster, sizeof(h.cluster), "c");
	snprintf(h.grp, sizeof(h.grp), "g");
	snprintf(h.template_, sizeof(h.template_), "t");
	snprintf(h.account, sizeof(h.account), "a");
	snprintf(h.network, sizeof(h.network), "n");
	snprintf(h.private_ip, sizeof(h.private_ip), "10.0.0.%d", seq + 1);
	snprintf(h.client_token, sizeof(h.client_token), "ct-%s", id);
	h.seq = seq;
	if (host_create(st, &h, "hash", 5000, 1000, &err) < 0)
		fail_msg("create host %s: %s", id, err.msg);
}

/* The heartbeat in the store itself, not what readers see. */
static int64_t
stored(const char *id)
{
	struct herr err = HERR_INIT;
	json_t *row = store_row(st, &err, "SELECT heartbeat_ms FROM hosts WHERE id = ?", "[s]", id);
	int64_t v = row ? json_integer_value(json_object_get(row, "heartbeat_ms")) : -1;

	json_decref(row);
	return v;
}

static void
set_stored(const char *id, int64_t ms)
{
	struct herr err = HERR_INIT;

	assert_int_equal(store_q(st, NULL, NULL, &err, "UPDATE hosts SET heartbeat_ms = ? WHERE id = ?",
				 "[Is]", (json_int_t)ms, id), 0);
}

/* What every reader of struct host sees. */
static int64_t
seen(const char *id)
{
	struct herr err = HERR_INIT;
	struct host h;

	assert_int_equal(host_get(st, id, &h, &err), 0);
	return h.heartbeat_ms;
}

static void
test_max_and_lazy_persist(void **state)
{
	struct herr err = HERR_INIT;
	const int64_t t0 = 1000000;

	add_host("h1", 1);
	add_host("h2", 2);
	set_stored("h1", t0 - 1000);
	set_stored("h2", t0 - 1000);

	/* the first heartbeat starts the interval; nothing is written */
	assert_int_equal(host_heartbeat(st, "h1", t0, NULL, &err), 0);
	assert_int_equal(stored("h1"), t0 - 1000);
	assert_int_equal(seen("h1"), t0);
	assert_int_equal(host_heartbeats_pending(), 1);

	/* an older one (a retry that arrives late) does not go back */
	assert_int_equal(host_heartbeat(st, "h1", t0 - 500, NULL, &err), 0);
	assert_int_equal(seen("h1"), t0);

	/* a newer stored value (the ready transition stamps it) wins */
	set_stored("h2", t0 + 2000);
	assert_int_equal(host_heartbeat(st, "h2", t0 + 1000, NULL, &err), 0);
	assert_int_equal(seen("h2"), t0 + 2000);
	assert_int_equal(host_heartbeats_pending(), 2);

	/* still inside the interval: nothing written */
	assert_int_equal(host_heartbeat(st, "h1", t0 + HB_PERSIST_MS - 1, NULL, &err), 0);
	assert_int_equal(stored("h1"), t0 - 1000);

	/* due: every pending heartbeat written in one go, the table empty; a
	 * stored value newer than the pending one is kept */
	assert_int_equal(host_heartbeat(st, "h1", t0 + HB_PERSIST_MS, NULL, &err), 0);
	assert_int_equal(stored("h1"), t0 + HB_PERSIST_MS);
	assert_int_equal(stored("h2"), t0 + 2000);
	assert_int_equal(host_heartbeats_pending(), 0);
	assert_int_equal(seen("h1"), t0 + HB_PERSIST_MS);

	/* the shutdown flush writes what is pending at once */
	assert_int_equal(host_heartbeat(st, "h2", t0 + HB_PERSIST_MS + 5, NULL, &err), 0);
	assert_int_equal(stored("h2"), t0 + 2000);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
	assert_int_equal(stored("h2"), t0 + HB_PERSIST_MS + 5);
	assert_int_equal(host_heartbeats_pending(), 0);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);   /* nothing: fine */
}

/* A store several servers share (PostgreSQL: not single_process): the
 * leader decides health from the stored heartbeats of hosts that push to
 * another server, so they are written every HB_PERSIST_SHARED_MS, well
 * inside the default unhealthy_after, not every HB_PERSIST_MS. */
static void
test_shared_store_persist(void **state)
{
	struct herr err = HERR_INIT;
	struct store_ops shared = *st->ops;
	const struct store_ops *own = st->ops;
	const int64_t t = 5000000000LL;

	assert_true(HB_PERSIST_SHARED_MS * 3 <= 30000);
	add_host("h-shared", 40);
	shared.single_process = false;
	st->ops = &shared;
	/* the interval starts (a flush of whatever is pending) */
	assert_int_equal(host_heartbeat(st, "h-shared", t, NULL, &err), 0);
	assert_int_equal(host_heartbeat(st, "h-shared", t + HB_PERSIST_SHARED_MS - 1, NULL, &err), 0);
	assert_int_equal(stored("h-shared"), t);
	assert_int_equal(host_heartbeat(st, "h-shared", t + HB_PERSIST_SHARED_MS, NULL, &err), 0);
	assert_int_equal(stored("h-shared"), t + HB_PERSIST_SHARED_MS);
	st->ops = own;
	/* one server alone (SQLite): the long interval again */
	assert_int_equal(host_heartbeat(st, "h-shared", t + 2 * HB_PERSIST_SHARED_MS, NULL, &err), 0);
	assert_int_equal(stored("h-shared"), t + HB_PERSIST_SHARED_MS);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
}

static void
test_bounded(void **state)
{
	struct herr err = HERR_INIT;
	const int64_t t = 5000000;
	char id[32];

	add_host("h3", 3);
	set_stored("h3", 1);
	/* the interval that began in the test above is due: written, empty */
	assert_int_equal(host_heartbeat(st, "h3", t - 2, NULL, &err), 0);
	assert_int_equal(stored("h3"), t - 2);
	assert_int_equal(host_heartbeats_pending(), 0);
	/* ids without a row are fine: only the table's size matters here */
	for (int i = 0; i < HB_MAX; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		assert_int_equal(host_heartbeat(st, id, t - 1, NULL, &err), 0);
	}
	assert_int_equal(host_heartbeats_pending(), HB_MAX);
	/* full: h3's heartbeat is written through, the table does not grow */
	assert_int_equal(host_heartbeat(st, "h3", t - 1, NULL, &err), 0);
	assert_int_equal(host_heartbeats_pending(), HB_MAX);
	assert_int_equal(stored("h3"), t - 1);
	assert_int_equal(seen("h3"), t - 1);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
	assert_int_equal(host_heartbeats_pending(), 0);
}

/* Many hosts: each found again by its id (a second heartbeat does not add
 * an entry), the newest kept per host, and after a flush empties the table
 * the ids heard again are found once more (the index is rebuilt). */
static void
test_many(void **state)
{
	struct herr err = HERR_INIT;
	const int64_t t = 9000000;
	const int n = 3000;
	char id[32];

	add_host("m-row", 4);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < n; i++) {
			snprintf(id, sizeof(id), "m%d", i);
			assert_int_equal(host_heartbeat(st, id, t + round, NULL, &err), 0);
		}
	assert_int_equal(host_heartbeats_pending(), n);
	assert_int_equal(host_heartbeat(st, "m-row", t + 7, NULL, &err), 0);
	assert_int_equal(host_heartbeat(st, "m-row", t + 3, NULL, &err), 0);
	assert_int_equal(seen("m-row"), t + 7);
	assert_int_equal(host_heartbeats_pending(), n + 1);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
	assert_int_equal(host_heartbeats_pending(), 0);
	assert_int_equal(stored("m-row"), t + 7);
	for (int i = 0; i < n; i += 2) {
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(host_heartbeat(st, id, t + 10, NULL, &err), 0);
		assert_int_equal(host_heartbeat(st, id, t + 11, NULL, &err), 0);
	}
	assert_int_equal(host_heartbeats_pending(), n / 2);
	assert_int_equal(host_heartbeat(st, "m-row", t + 12, NULL, &err), 0);
	assert_int_equal(seen("m-row"), t + 12);
	assert_int_equal(host_heartbeats_flush(st, &err), 0);
	assert_int_equal(host_heartbeats_pending(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_and_lazy_persist),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_shared_store_persist),   /* last: its clock is far ahead */
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
