/* test-rolling.c - the rolling run decision (ctl/rolling-decide.c) driven
 * with plain structs and an injected clock: batches in order, one at a time;
 * a drain before the script; the health gate's duration, its reset and its
 * failure; stop on failure (held out of the LB when draining) or going on;
 * a cancel; a restart in the middle (the stored phases alone decide); and
 * the batch size from N or P% (model/run.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/rolling.h"
#include "herr.h"
#include "model/run.h"

#define T0 1700000000000LL
#define SEC 1000LL
#define NH 4

static struct roll_host hosts[NH];
static struct roll_action acts[2 * NH + 1];

/* 4 hosts waiting, batches of size per batch. */
static void
fresh(int size)
{
	static const char *const names[NH] = { "web-1", "web-2", "web-3", "web-4" };

	memset(hosts, 0, sizeof(hosts));
	for (int i = 0; i < NH; i++) {
		hosts[i].batch = i / size;
		hosts[i].phase = RP_WAIT;
		hosts[i].state = RH_QUEUED;
		hosts[i].name = names[i];
	}
}

static size_t
decide(const struct roll_run *r, int64_t now)
{
	return roll_decide(r, hosts, NH, now, acts, sizeof(acts) / sizeof(acts[0]));
}

/* Applies what decide said, as the store would. */
static void
apply(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct roll_host *h = &hosts[acts[i].host];
		h->phase = acts[i].to;
		h->phase_ms = acts[i].phase_ms;
		h->healthy_ms = acts[i].healthy_ms;
		if (acts[i].state < RH__COUNT)
			h->state = acts[i].state;
	}
}

static void
test_first_batch_drains_first(void **state)
{
	struct roll_run r = { .drain = true, .gate_ms = 5 * SEC };
	size_t n;

	fresh(1);
	n = decide(&r, T0);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].host, 0);
	assert_int_equal(acts[0].to, RP_DRAIN);
	assert_string_equal(acts[0].kind, "roll_out");
	apply(n);
	/* still held by its LB: nothing more, and no second batch */
	assert_int_equal(decide(&r, T0 + SEC), 0);
	hosts[0].lb_free = true;
	n = decide(&r, T0 + 2 * SEC);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].to, RP_RUN);
	apply(n);
	/* running: the next batch waits */
	hosts[0].state = RH_RUNNING;
	assert_int_equal(decide(&r, T0 + 3 * SEC), 0);
}

static void
test_gate_then_next_batch(void **state)
{
	struct roll_run r = { .drain = true, .gate_ms = 5 * SEC };
	size_t n;

	fresh(2);
	apply(decide(&r, T0));
	assert_int_equal(hosts[0].phase, RP_DRAIN);
	assert_int_equal(hosts[1].phase, RP_DRAIN);
	assert_int_equal(hosts[2].phase, RP_WAIT);
	hosts[0].lb_free = hosts[1].lb_free = true;
	apply(decide(&r, T0 + SEC));
	hosts[0].state = hosts[1].state = RH_SUCCEEDED;
	apply(decide(&r, T0 + 2 * SEC));
	assert_int_equal(hosts[0].phase, RP_GATE);
	assert_int_equal(hosts[0].phase_ms, T0 + 2 * SEC);
	/* healthy from 3 s; at 7 s not yet for 5 s; unhealthy at 7.5 s resets */
	hosts[0].healthy = hosts[1].healthy = true;
	apply(decide(&r, T0 + 3 * SEC));
	assert_int_equal(hosts[0].healthy_ms, T0 + 3 * SEC);
	assert_int_equal(decide(&r, T0 + 7 * SEC), 0);
	hosts[1].healthy = false;
	apply(decide(&r, T0 + 7 * SEC + 500));
	assert_int_equal(hosts[1].healthy_ms, 0);
	/* host 0 passes at 8 s; host 1 is still in its gate: no next batch */
	n = decide(&r, T0 + 8 * SEC);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].to, RP_DONE);
	assert_string_equal(acts[0].kind, "roll_in");
	apply(n);
	hosts[1].healthy = true;
	apply(decide(&r, T0 + 9 * SEC));
	apply(decide(&r, T0 + 14 * SEC));
	assert_int_equal(hosts[1].phase, RP_DONE);
	/* the pass after: batch 2 starts */
	apply(decide(&r, T0 + 15 * SEC));
	assert_int_equal(hosts[2].phase, RP_DRAIN);
	assert_int_equal(hosts[3].phase, RP_DRAIN);
}

static void
test_no_drain_runs_at_once(void **state)
{
	struct roll_run r = { .gate_ms = 0 };
	size_t n;

	fresh(1);
	n = decide(&r, T0);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].to, RP_RUN);
	apply(n);
	hosts[0].state = RH_SUCCEEDED;
	apply(decide(&r, T0 + SEC));
	/* a gate of 0: healthy once is enough */
	hosts[0].healthy = true;
	apply(decide(&r, T0 + 2 * SEC));
	assert_int_equal(hosts[0].phase, RP_DONE);
}

static void
test_failed_script_stops_and_holds(void **state)
{
	struct roll_run r = { .drain = true, .stop_on_failure = true, .gate_ms = SEC };

	fresh(1);
	apply(decide(&r, T0));
	hosts[0].lb_free = true;
	apply(decide(&r, T0 + SEC));
	hosts[0].state = RH_FAILED;
	apply(decide(&r, T0 + 2 * SEC));
	assert_int_equal(hosts[0].phase, RP_HELD);
	for (int i = 1; i < NH; i++) {
		assert_int_equal(hosts[i].state, RH_SKIPPED);
		assert_int_equal(hosts[i].phase, RP_NONE);
	}
	assert_non_null(strstr(acts[1].reason, "after web-1 failed"));
	/* nothing more, ever */
	assert_int_equal(decide(&r, T0 + 60 * SEC), 0);
}

static void
test_failed_script_goes_on_without_stop(void **state)
{
	struct roll_run r = { .drain = true, .gate_ms = SEC };

	fresh(1);
	apply(decide(&r, T0));
	hosts[0].lb_free = true;
	apply(decide(&r, T0 + SEC));
	hosts[0].state = RH_TIMED_OUT;
	apply(decide(&r, T0 + 2 * SEC));
	/* back into its LB (its check decides), and the next batch goes */
	assert_int_equal(hosts[0].phase, RP_FAILED);
	apply(decide(&r, T0 + 3 * SEC));
	assert_int_equal(hosts[1].phase, RP_DRAIN);
}

static void
test_gate_fails_after_grace(void **state)
{
	struct roll_run r = { .drain = true, .stop_on_failure = true, .gate_ms = 2 * SEC };

	fresh(1);
	hosts[0].phase = RP_GATE;
	hosts[0].state = RH_SUCCEEDED;
	hosts[0].phase_ms = T0;
	assert_int_equal(decide(&r, T0 + 2 * SEC + ROLL_GATE_GRACE_MS - 1), 0);
	apply(decide(&r, T0 + 2 * SEC + ROLL_GATE_GRACE_MS));
	assert_int_equal(hosts[0].phase, RP_HELD);
	assert_int_equal(hosts[0].state, RH_FAILED);
	assert_int_equal(hosts[1].state, RH_SKIPPED);
}

static void
test_restart_resumes_from_phases(void **state)
{
	struct roll_run r = { .drain = true, .gate_ms = SEC };
	size_t n;

	/* as stored: batch 1 done, batch 2 running its script */
	fresh(1);
	hosts[0].phase = RP_DONE;
	hosts[0].state = RH_SUCCEEDED;
	hosts[1].phase = RP_RUN;
	hosts[1].state = RH_RUNNING;
	assert_int_equal(decide(&r, T0), 0);
	/* its result: the gate; web-1 is never run again */
	hosts[1].state = RH_SUCCEEDED;
	n = decide(&r, T0 + SEC);
	assert_int_equal(n, 1);
	assert_int_equal(acts[0].host, 1);
	assert_int_equal(acts[0].to, RP_GATE);
}

static void
test_cancel(void **state)
{
	struct roll_run r = { .drain = true, .gate_ms = SEC, .cancel_requested = true };

	/* run_cancel cancelled the queued records; those out go back */
	fresh(1);
	hosts[0].phase = RP_DRAIN;
	hosts[0].state = RH_CANCELLED;
	hosts[1].state = hosts[2].state = hosts[3].state = RH_CANCELLED;
	apply(decide(&r, T0));
	assert_int_equal(hosts[0].phase, RP_DONE);
	assert_int_equal(hosts[1].phase, RP_NONE);
	assert_int_equal(decide(&r, T0 + SEC), 0);
}

static void
test_batch_size(void **state)
{
	struct herr err = HERR_INIT;
	int b = 0;

	assert_int_equal(run_batch_size("1", 4, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(run_batch_size("25%", 4, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(run_batch_size("30%", 4, &b, &err), 0);
	assert_int_equal(b, 2);
	assert_int_equal(run_batch_size("100%", 3, &b, &err), 0);
	assert_int_equal(b, 3);
	assert_int_equal(run_batch_size("0", 4, &b, &err), HERR_INVALID);
	assert_string_equal(err.field, "batch");
	herr_clear(&err);
	assert_int_equal(run_batch_size("5", 4, &b, &err), HERR_INVALID);
	herr_clear(&err);
	assert_int_equal(run_batch_size("0%", 4, &b, &err), HERR_INVALID);
	herr_clear(&err);
	assert_int_equal(run_batch_size("101%", 4, &b, &err), HERR_INVALID);
	herr_clear(&err);
	assert_int_equal(run_batch_size("x", 4, &b, &err), HERR_INVALID);
	herr_clear(&err);
	assert_int_equal(run_batch_size("1", 0, &b, &err), HERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_batch_drains_first),
		cmocka_unit_test(test_gate_then_next_batch),
		cmocka_unit_test(test_no_drain_runs_at_once),
		cmocka_unit_test(test_failed_script_stops_and_holds),
		cmocka_unit_test(test_failed_script_goes_on_without_stop),
		cmocka_unit_test(test_gate_fails_after_grace),
		cmocka_unit_test(test_restart_resumes_from_phases),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_batch_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
