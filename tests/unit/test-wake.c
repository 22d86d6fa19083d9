/* test-wake.c - wake-ups across the servers of a store (wake.h): the
 * announcement payload built from gathered kicks and read back (its own
 * origin ignored, the host ids bounded, "every host" past the limit), and,
 * with HERD_TEST_PG_DSN set, PostgreSQL's listener: an announcement made on
 * one store handle reaches the listener of another. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server.h"
#include "store/store.h"
#include "wake.h"

static void
payload_of(struct wake_batch *b, char *out)
{
	wake_payload(b, "0123abcd", out, STORE_NOTIFY_MAX + 1);
}

static void
test_payload_kinds(void **state)
{
	struct wake_batch b;
	char p[STORE_NOTIFY_MAX + 1];
	const char *ids[2] = { "h-1", "h-2" };

	memset(&b, 0, sizeof(b));
	wake_batch_add(&b, NULL, 0, false);
	assert_true(b.any);
	payload_of(&b, p);
	assert_string_equal(p, "0123abcd k");

	wake_batch_add(&b, ids, 2, true);
	payload_of(&b, p);
	assert_string_equal(p, "0123abcd c h-1 h-2");

	wake_batch_add(&b, NULL, 0, true);   /* any host: the ids no longer matter */
	payload_of(&b, p);
	assert_string_equal(p, "0123abcd c *");
	wake_batch_add(&b, ids, 1, true);
	payload_of(&b, p);
	assert_string_equal(p, "0123abcd c *");
}

/* Past WAKE_IDS_MAX bytes of ids the announcement says every host, and
 * stays under PostgreSQL's limit. */
static void
test_payload_bounded(void **state)
{
	struct wake_batch b;
	char p[STORE_NOTIFY_MAX + 1], id[32];
	const char *one[1] = { id };
	int i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < 2000 && !b.cmds_all; i++) {
		snprintf(id, sizeof(id), "host-%08d", i);
		wake_batch_add(&b, one, 1, true);
		payload_of(&b, p);
		assert_true(strlen(p) <= STORE_NOTIFY_MAX);
	}
	assert_true(b.cmds_all);
	assert_true(i > 400);   /* some 540 ids of 13 bytes fit */
	payload_of(&b, p);
	assert_string_equal(p, "0123abcd c *");

	memset(&b, 0, sizeof(b));
	one[0] = "a b";            /* an id with a space cannot be named */
	wake_batch_add(&b, one, 1, true);
	assert_true(b.cmds_all);
}

static void
test_parse(void **state)
{
	const char *ids[4];
	size_t n;
	bool cmds;
	char p1[] = "me k", p2[] = "other k", p3[] = "other c h-1 h-2", p4[] = "other c *";
	char p5[] = "other c a b c d e", p6[] = "other x", p7[] = "lonely", p8[] = "";

	assert_false(wake_parse(p1, "me", &cmds, ids, 4, &n));   /* its own */
	assert_true(wake_parse(p2, "me", &cmds, ids, 4, &n));
	assert_false(cmds);
	assert_true(wake_parse(p3, "me", &cmds, ids, 4, &n));
	assert_true(cmds);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "h-1");
	assert_string_equal(ids[1], "h-2");
	assert_true(wake_parse(p4, "me", &cmds, ids, 4, &n));
	assert_true(cmds);
	assert_int_equal(n, 0);
	assert_true(wake_parse(p5, "me", &cmds, ids, 4, &n));   /* more than max: all */
	assert_int_equal(n, 0);
	assert_false(wake_parse(p6, "me", &cmds, ids, 4, &n));
	assert_false(wake_parse(p7, "me", &cmds, ids, 4, &n));
	assert_false(wake_parse(p8, "me", &cmds, ids, 4, &n));
}

/* --- PostgreSQL's listener (HERD_TEST_PG_DSN) --- */

static pthread_mutex_t heard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t heard_cond = PTHREAD_COND_INITIALIZER;
static char heard[STORE_NOTIFY_MAX + 1];
static bool heard_rolled_back;   /* the rolled-back announcement came */

static void
on_heard(const char *payload, void *arg)
{
	pthread_mutex_lock(&heard_lock);
	if (payload)
		snprintf(heard, sizeof(heard), "%s", payload);
	if (payload && strcmp(payload, "rolled back") == 0)
		heard_rolled_back = true;
	pthread_cond_broadcast(&heard_cond);
	pthread_mutex_unlock(&heard_lock);
}

/* Waits for the payload want (a hang guard of 30 s, not a latency bound). */
static bool
heard_wait(const char *want)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&heard_lock);
	while (strcmp(heard, want) != 0 &&
	       pthread_cond_timedwait(&heard_cond, &heard_lock, &ts) == 0)
		;
	ok = strcmp(heard, want) == 0;
	pthread_mutex_unlock(&heard_lock);
	return ok;
}

static void
test_pg_listen(void **state)
{
	const char *dsn = getenv("HERD_TEST_PG_DSN");
	struct herr err = HERR_INIT;
	struct store *a, *b;

	if (dsn == NULL || !*dsn)
		skip();
	a = store_open(dsn, &err);
	assert_non_null(a);
	b = store_open(dsn, &err);
	assert_non_null(b);
	assert_true(store_can_notify(a));
	assert_int_equal(store_listen(b, "herd_wake_test", on_heard, NULL, &err), 0);
	/* the listener may not be listening yet: announce until it hears */
	for (int i = 0; i < 300; i++) {
		struct timespec d = { 0, 100 * 1000000 };
		bool got;

		assert_int_equal(store_notify(a, "herd_wake_test", "x k", &err), 0);
		nanosleep(&d, NULL);
		pthread_mutex_lock(&heard_lock);
		got = strcmp(heard, "x k") == 0;
		pthread_mutex_unlock(&heard_lock);
		if (got)
			break;
	}
	assert_true(heard_wait("x k"));
	/* inside a transaction: heard after the commit, with the commit */
	assert_int_equal(store_begin(a, &err), 0);
	assert_int_equal(store_notify(a, "herd_wake_test", "y c h-1", &err), 0);
	assert_int_equal(store_commit(a, &err), 0);
	assert_true(heard_wait("y c h-1"));
	/* a rolled back one is never heard; the next one is */
	assert_int_equal(store_begin(a, &err), 0);
	assert_int_equal(store_notify(a, "herd_wake_test", "rolled back", &err), 0);
	store_rollback(a);
	assert_int_equal(store_notify(a, "herd_wake_test", "z k", &err), 0);
	assert_true(heard_wait("z k"));   /* in order: after it, the rolled back one never comes */
	assert_false(heard_rolled_back);
	/* bad channels and long payloads are refused before PostgreSQL */
	assert_int_equal(store_notify(a, "Bad; DROP", "x", &err), HERR_INVALID);
	char big[STORE_NOTIFY_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_notify(a, "herd_wake_test", big, &err), HERR_TOOBIG);
	store_close(b);   /* stops the listener */
	store_close(a);
}

/* SQLite has no announcements: one process per store. */
static void
test_sqlite_none(void **state)
{
	struct herr err = HERR_INIT;
	char dir[] = "/tmp/test-wake-XXXXXX", path[64];
	struct store *st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "sqlite:%s/herd.db", dir);
	st = store_open(path, &err);
	assert_non_null(st);
	assert_false(store_can_notify(st));
	assert_true(store_notify(st, "herd_wake", "x k", &err) < 0);
	store_close(st);
	snprintf(path, sizeof(path), "%s/herd.db", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload_kinds),
		cmocka_unit_test(test_payload_bounded),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_sqlite_none),
		cmocka_unit_test(test_pg_listen),   /* last: only with a DSN */
	};
	const char *d = getenv("HERD_TEST_PG_DSN");
	size_t n = sizeof(tests) / sizeof(tests[0]);

	/* Not cmocka's skip(): its TAP says "not ok # SKIP", a failure to prove. */
	if (d == NULL || *d == '\0') {
		printf("# the PostgreSQL test is left out: HERD_TEST_PG_DSN is unset\n");
		n--;
	}
	return _cmocka_run_group_tests("wake", tests, n, NULL, NULL);
}
