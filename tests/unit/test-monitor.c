/* test-monitor.c - monitors with real commands, driven by the real
 * collection scheduler at 200 ms: a command that sleeps past its timeout
 * yields state `timeout` (its process group killed) while the system
 * collection keeps its schedule - cycles due exactly one interval apart, a
 * cycle's timestamp its due instant when on time (the truth when late: a
 * loaded machine may be late, so the test never requires punctuality);
 * one-number, `name value` and failing commands; a config change that
 * keeps an unchanged monitor running. Waits are bounded conditions, never
 * sleeps that assume a speed. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/exec.h"
#include "agent/push.h"
#include "util.h"
#include "xalloc.h"

#define INTERVAL_MS 200
#define MAX_TICKS 64

static char tdir[256];
static char *test_env[] = {
	(char *)"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	(char *)"HOME=/root",
	NULL,
};

struct ticks {
	pthread_mutex_t lock;
	size_t n;
	struct push_tick t[MAX_TICKS];
	char *json[MAX_TICKS];      /* owned copies */
};

static void
on_tick(const struct push_tick *t, void *arg)
{
	struct ticks *k = arg;

	pthread_mutex_lock(&k->lock);
	if (k->n < MAX_TICKS) {
		k->t[k->n] = *t;
		k->json[k->n] = xstrndup(t->json, t->len);
		k->n++;
	}
	pthread_mutex_unlock(&k->lock);
}

static void
ticks_release(struct ticks *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->json[i]);
	pthread_mutex_destroy(&k->lock);
}

static int
setup(void **state)
{
	snprintf(tdir, sizeof(tdir), "/tmp/herd-test-monitor.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	/* orphans of killed commands come back to us and are reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	exec_set_reap_all(true);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	exec_reap();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
spec(struct mon_spec *s, const char *name, const char *cmd, int64_t interval_ms,
     int64_t timeout_ms)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->command = (char *)cmd;   /* borrowed: push_apply_config copies */
	s->interval_ms = interval_ms;
	s->timeout_ms = timeout_ms;
}

static struct push *
start(struct ticks *k)
{
	struct push_opts o = { 0 };
	struct push *p;

	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	o.interval_ms = INTERVAL_MS;
	o.monitor_dir = tdir;
	o.env = test_env;
	o.on_tick = on_tick;
	o.arg = k;
	p = push_new(&o);
	assert_int_equal(push_start(p), 0);
	return p;
}

/* The monitor entry of batch j named name, or NULL. */
static json_t *
mon_of(json_t *batch, const char *name)
{
	size_t i;
	json_t *m;

	json_array_foreach(json_object_get(batch, "monitors"), i, m)
		if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
			return m;
	return NULL;
}

/* The series named name (with label monitor=mon if given), or NULL. */
static json_t *
series_of(json_t *batch, const char *name, const char *mon)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(batch, "series"), i, s) {
		const char *l = json_string_value(
			json_object_get(json_object_get(s, "labels"), "monitor"));

		if (strcmp(json_string_value(json_object_get(s, "name")), name) != 0)
			continue;
		if (mon == NULL ? l == NULL : (l && strcmp(l, mon) == 0))
			return s;
	}
	return NULL;
}

/* Waits up to 30 s for cond(k) (read under the lock). */
static bool
ticks_wait(struct ticks *k, bool (*cond)(struct ticks *, void *), void *arg)
{
	int64_t end = mono_ms() + 30000;
	bool ok = false;

	while (!ok && mono_ms() < end) {
		pthread_mutex_lock(&k->lock);
		ok = cond(k, arg);
		pthread_mutex_unlock(&k->lock);
		if (!ok)
			sleep_ms(20);
	}
	return ok;
}

static bool
at_least(struct ticks *k, void *arg)
{
	return k->n >= *(size_t *)arg;
}

#define SLOW_BOUND_MS 60000   /* a tenth of the slow monitor's sleep */

static void
test_timeout_does_not_delay_collection(void **state)
{
	struct ticks k;
	struct push_config c = { .version = 1, .interval_ms = INTERVAL_MS, .nmon = 4 };
	struct push *p = start(&k);
	bool saw_timeout = false, saw_busy = false, saw_multi = false, saw_failed = false;
	size_t want = 9;
	int64_t stop_ms;

	/* sleeps 600 s with a 300 ms timeout: the group is killed every run.
	 * The bounds below are a tenth of that sleep, not a guess at the
	 * machine's speed: a stop or a cycle that waited for the command
	 * would take 600 s, one that did not takes milliseconds even on a
	 * loaded machine (a 4 s bound on a 5 s sleep was the suspect when
	 * this test failed once under load). */
	spec(&c.mon[0], "slow", "sleep 600; echo 1", INTERVAL_MS, 300);
	spec(&c.mon[1], "busy", "echo 7", INTERVAL_MS, 1000);
	spec(&c.mon[2], "multi", "printf 'pods 3\\nqueue_len 1.5\\n'", INTERVAL_MS, 1000);
	c.mon[2].labels.n = 1;
	snprintf(c.mon[2].labels.key[0], MON_NAME_MAX, "team");
	snprintf(c.mon[2].labels.val[0], MON_LABEL_MAX, "q");
	spec(&c.mon[3], "broken", "echo oops >&2; exit 3", INTERVAL_MS, 1000);
	push_apply_config(p, &c);
	/* 9 cycles of 200 ms while "slow" would sleep 600 s each run */
	assert_true(ticks_wait(&k, at_least, &want));
	stop_ms = mono_ms();
	assert_true(push_stop(p));
	/* stopping kills the sleeping command, never waits for its end */
	assert_true(mono_ms() - stop_ms < SLOW_BOUND_MS);
	push_free(p);

	assert_true(k.n >= 9);
	for (size_t i = 0; i < k.n; i++) {
		json_t *j = json_loads(k.json[i], 0, NULL), *m, *s;
		int64_t late = k.t[i].started_ms - k.t[i].due_ms;

		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(j, "ts_ms")), k.t[i].ts_ms);
		/* due on the interval's grid, never started early; stamped with
		 * the due instant when on time, with the truth when late */
		assert_int_equal(k.t[i].due_ms % INTERVAL_MS, 0);
		assert_true(late >= -5);
		assert_int_equal(k.t[i].ts_ms,
				 late <= PUSH_TS_SNAP_MS ? k.t[i].due_ms : k.t[i].started_ms);
		/* never waiting for a command: the next cycle is due well
		 * before the 600 s the slow one would sleep */
		if (i > 0) {
			assert_true(k.t[i].due_ms > k.t[i - 1].due_ms);
			assert_true(k.t[i].due_ms - k.t[i - 1].due_ms < SLOW_BOUND_MS);
			assert_int_equal((k.t[i].due_ms - k.t[i - 1].due_ms) % INTERVAL_MS, 0);
		}
		assert_true(k.t[i].cpu_ns < 50 * 1000000);
		assert_non_null(series_of(j, "cpu_busy_pct", NULL));
		assert_non_null(series_of(j, "mem_total_bytes", NULL));

		m = mon_of(j, "slow");
		if (m && strcmp(json_string_value(json_object_get(m, "state")), "timeout") == 0) {
			saw_timeout = true;
			assert_string_equal(json_string_value(json_object_get(m, "error")),
					    "timed out after 300ms");
			assert_null(series_of(j, "slow", NULL));
		}
		m = mon_of(j, "busy");
		if (m) {
			assert_string_equal(json_string_value(json_object_get(m, "state")), "ok");
			s = series_of(j, "busy", NULL);
			assert_non_null(s);
			assert_true(json_number_value(json_object_get(s, "value")) == 7);
			saw_busy = true;
		}
		m = mon_of(j, "multi");
		if (m) {
			s = series_of(j, "pods", "multi");
			assert_non_null(s);
			assert_true(json_number_value(json_object_get(s, "value")) == 3);
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(s, "labels"), "team")),
					    "q");
			s = series_of(j, "queue_len", "multi");
			assert_non_null(s);
			assert_true(json_number_value(json_object_get(s, "value")) == 1.5);
			saw_multi = true;
		}
		m = mon_of(j, "broken");
		if (m) {
			assert_string_equal(json_string_value(json_object_get(m, "state")), "failed");
			assert_string_equal(json_string_value(json_object_get(m, "error")),
					    "exited with code 3: oops");
			saw_failed = true;
		}
		json_decref(j);
	}
	assert_true(saw_timeout);
	assert_true(saw_busy);
	assert_true(saw_multi);
	assert_true(saw_failed);
	ticks_release(&k);
}

/* The last batch has both monitors' first results. */
static bool
both_ran(struct ticks *k, void *arg)
{
	json_t *j;
	bool ok;

	if (k->n == 0)
		return false;
	j = json_loads(k->json[k->n - 1], 0, NULL);
	ok = j && mon_of(j, "garbage") && series_of(j, "stay", NULL);
	json_decref(j);
	return ok;
}

/* The last batch no longer has "garbage". */
static bool
garbage_gone(struct ticks *k, void *arg)
{
	json_t *j;
	bool ok;

	if (k->n == 0)
		return false;
	j = json_loads(k->json[k->n - 1], 0, NULL);
	ok = j && mon_of(j, "garbage") == NULL;
	json_decref(j);
	return ok;
}

/* Output that does not parse is a failed state naming the line; a config
 * that keeps a monitor unchanged keeps its thread and last result. */
static void
test_unparsable_and_reconfig(void **state)
{
	struct ticks k;
	struct push_config c = { .version = 1, .interval_ms = INTERVAL_MS, .nmon = 2 };
	struct push *p = start(&k);
	json_t *j;
	size_t n;

	spec(&c.mon[0], "garbage", "echo hello world again", 10000, 1000);
	spec(&c.mon[1], "stay", "echo $$", 10000, 1000);   /* its pid: which run */
	push_apply_config(p, &c);
	assert_true(ticks_wait(&k, both_ran, NULL));
	pthread_mutex_lock(&k.lock);
	n = k.n;
	j = json_loads(k.json[n - 1], 0, NULL);
	pthread_mutex_unlock(&k.lock);
	assert_string_equal(json_string_value(json_object_get(mon_of(j, "garbage"), "state")),
			    "failed");
	assert_string_equal(json_string_value(json_object_get(mon_of(j, "garbage"), "error")),
			    "unparsable output: line 1: want 'name value' or one number");
	double pid = json_number_value(json_object_get(series_of(j, "stay", NULL), "value"));
	assert_true(pid > 0);
	json_decref(j);

	/* drop "garbage", keep "stay" (10 s interval: a restart would run it again) */
	c.mon[0] = c.mon[1];
	c.nmon = 1;
	c.version = 2;
	push_apply_config(p, &c);
	assert_true(ticks_wait(&k, garbage_gone, NULL));
	pthread_mutex_lock(&k.lock);
	j = json_loads(k.json[k.n - 1], 0, NULL);
	pthread_mutex_unlock(&k.lock);
	assert_null(mon_of(j, "garbage"));
	assert_true(json_number_value(json_object_get(series_of(j, "stay", NULL), "value")) == pid);
	json_decref(j);

	/* the interval changes from the next cycle */
	c.interval_ms = 2 * INTERVAL_MS;
	c.version = 3;
	pthread_mutex_lock(&k.lock);
	n = k.n + 3;
	pthread_mutex_unlock(&k.lock);
	push_apply_config(p, &c);
	assert_true(ticks_wait(&k, at_least, &n));
	assert_true(push_stop(p));
	push_free(p);
	/* due on the new grid: two intervals apart (a late cycle keeps its
	 * due instant; only its timestamp says it was late) */
	assert_int_equal((k.t[k.n - 1].due_ms - k.t[k.n - 2].due_ms) % (2 * INTERVAL_MS), 0);
	assert_true(k.t[k.n - 1].due_ms > k.t[k.n - 2].due_ms);
	ticks_release(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_does_not_delay_collection),
		cmocka_unit_test(test_unparsable_and_reconfig),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
