/* test-launcher.c - the launch pool (ctl/launcher.c): --launch-workers
 * parsing; jobs run on the workers, at most `workers` at once and each key
 * in flight until its finish() returned; the pool refuses past workers +
 * LAUNCH_QUEUED_MAX (launcher_room), runs low when fewer than half of that
 * are queued; stop drops queued jobs and gives up on one that never ends. Overlap is
 * shown with a barrier, never with timing. */
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

#include "ctl/launcher.h"
#include "util.h"

static void
test_parse(void **state)
{
	struct herr err = HERR_INIT;
	int n = 0;

	assert_int_equal(launcher_workers_parse("1", &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(launcher_workers_parse("64", &n, &err), 0);
	assert_int_equal(n, 64);
	const char *bad[] = { "0", "-1", "65", "abc", "1x", "", " 3", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		assert_int_equal(launcher_workers_parse(bad[i], &n, &err), HERR_INVALID);
		assert_string_equal(err.field, "--launch-workers");
		assert_non_null(strstr(err.msg, "1 to 64"));
	}
	herr_clear(&err);
	assert_int_equal(launcher_workers_parse(NULL, &n, &err), HERR_INVALID);
}

/* Jobs that wait at a gate until the test opens it. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int entered, finished, dropped;
static bool open_gate;

static void
gate_work(void *job)
{
	pthread_mutex_lock(&mu);
	entered++;
	pthread_cond_broadcast(&cv);
	while (!open_gate)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void
count_finish(void *job)
{
	pthread_mutex_lock(&mu);
	finished++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	free(job);
}

static void
count_drop(void *job)
{
	dropped++;
	free(job);
}

static void
wait_count(int *what, int n)
{
	pthread_mutex_lock(&mu);
	while (*what < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

#define FULL (3 + LAUNCH_QUEUED_MAX) /* in flight at most, with 3 workers */

static void
test_bound_and_keys(void **state)
{
	struct herr err = HERR_INIT;
	struct launcher *l = launcher_new(3, &err);
	char key[16];

	assert_non_null(l);
	entered = finished = dropped = 0;
	open_gate = false;
	for (int i = 0; i < FULL; i++) {
		snprintf(key, sizeof(key), "h%d", i);
		assert_true(launcher_has_room(l));
		assert_int_equal(launcher_submit(l, key, gate_work, count_finish, malloc(1), &err), 0);
	}
	/* workers + LAUNCH_QUEUED_MAX in flight: one more is refused, the
	 * caller keeps its job */
	assert_false(launcher_has_room(l));
	snprintf(key, sizeof(key), "h%d", FULL);
	assert_int_equal(launcher_submit(l, key, gate_work, count_finish, NULL, &err),
			 HERR_UNAVAIL);
	/* three reach the gate together: they run at once; the rest wait */
	wait_count(&entered, 3);
	assert_int_equal(entered, 3);
	assert_int_equal((int)launcher_inflight(l), FULL);
	for (int i = 0; i < FULL; i++) {
		snprintf(key, sizeof(key), "h%d", i);
		assert_true(launcher_busy(l, key));
	}
	snprintf(key, sizeof(key), "h%d", FULL);
	assert_false(launcher_busy(l, key));
	pthread_mutex_lock(&mu);
	open_gate = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	wait_count(&finished, FULL);
	/* a key leaves the set after its finish: poll the pool, bounded */
	for (int i = 0; i < 1000 && launcher_inflight(l) > 0; i++)
		sleep_ms(5);
	assert_int_equal((int)launcher_inflight(l), 0);
	assert_false(launcher_busy(l, "h0"));
	assert_int_equal((int)launcher_peak_running(l), 3);
	assert_int_equal((int)launcher_stop(l, 1000, count_drop), 0);
	assert_int_equal(dropped, 0);
}

/* What a pass may write (launcher_room) and when a launch's end kicks a
 * pass (launcher_running_low: fewer queued than LAUNCH_QUEUED_MAX / 2). */
static void
test_room_and_low(void **state)
{
	struct herr err = HERR_INIT;
	struct launcher *l = launcher_new(2, &err);
	const int half = LAUNCH_QUEUED_MAX / 2;
	char key[16];

	assert_non_null(l);
	entered = finished = dropped = 0;
	open_gate = false;
	assert_int_equal((int)launcher_room(l), 2 + LAUNCH_QUEUED_MAX);
	assert_true(launcher_running_low(l));
	/* 2 run at the gate, the rest are queued */
	for (int i = 0; i < 2 + half - 1; i++) {
		snprintf(key, sizeof(key), "r%d", i);
		assert_int_equal(launcher_submit(l, key, gate_work, count_finish, malloc(1), &err), 0);
	}
	wait_count(&entered, 2);
	assert_int_equal((int)launcher_room(l), LAUNCH_QUEUED_MAX - half + 1);
	assert_true(launcher_running_low(l));           /* half - 1 queued */
	assert_int_equal(launcher_submit(l, "last", gate_work, count_finish, malloc(1), &err), 0);
	assert_false(launcher_running_low(l));          /* half queued */
	assert_int_equal((int)launcher_room(l), LAUNCH_QUEUED_MAX - half);
	pthread_mutex_lock(&mu);
	open_gate = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	wait_count(&finished, 2 + half);
	for (int i = 0; i < 1000 && launcher_inflight(l) > 0; i++)
		sleep_ms(5);
	assert_true(launcher_running_low(l));
	assert_int_equal((int)launcher_room(l), 2 + LAUNCH_QUEUED_MAX);
	assert_int_equal((int)launcher_stop(l, 1000, count_drop), 0);
}

static void
test_stop_gives_up(void **state)
{
	struct herr err = HERR_INIT;
	struct launcher *l = launcher_new(1, &err);

	assert_non_null(l);
	entered = finished = dropped = 0;
	open_gate = false;
	assert_int_equal(launcher_submit(l, "a", gate_work, count_finish, malloc(1), &err), 0);
	assert_int_equal(launcher_submit(l, "b", gate_work, count_finish, malloc(1), &err), 0);
	wait_count(&entered, 1);
	/* "a" never ends in time: left running, "b" dropped, no finish */
	assert_int_equal((int)launcher_stop(l, 50, count_drop), 1);
	assert_int_equal(dropped, 1);
	pthread_mutex_lock(&mu);
	open_gate = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	sleep_ms(50);   /* the released worker exits without finishing */
	assert_int_equal(finished, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bound_and_keys),
		cmocka_unit_test(test_room_and_low),
		cmocka_unit_test(test_stop_gives_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
