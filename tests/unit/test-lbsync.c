/* test-lbsync.c - lb-sync's decision, with plain structs and an injected
 * clock: ready hosts join, leaving hosts drain first and go once their
 * sessions end or the drain timeout passes, a draining host that is wanted
 * again comes back, and LBs not in the input are left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/ctl/lbsync.h"

#define T0 1000000LL

static const struct lbs_lb lbs[] = { { "web", 30000 }, { "api", 5000 } };

static size_t
decide(const struct lbs_want *w, size_t nw, const struct lbs_have *h, size_t nh, int64_t now,
       struct lbs_action *out)
{
	return lbsync_decide(lbs, 2, w, nw, h, nh, now, out, 16);
}

static void
test_ready_hosts_join(void **state)
{
	struct lbs_want w[] = { { "web", "h1", "198.18.1.2", 8080 }, { "web", "h2", "198.18.1.3", 8080 } };
	struct lbs_have h[] = { { "web", "h1", "198.18.1.2", 8080, LBI_ACTIVE, 3, 0 } };
	struct lbs_action a[16];
	size_t n = decide(w, 2, h, 1, T0, a);

	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, LBS_ADD);
	assert_string_equal(a[0].member, "h2");
	assert_ptr_equal(a[0].want, &w[1]);
	/* a joining member (check not passed yet) is not added again */
	h[0].intent = LBI_JOINING;
	assert_int_equal(decide(w, 1, h, 1, T0, a), 0);
}

static void
test_leaving_hosts_drain_then_go(void **state)
{
	struct lbs_have h[] = { { "web", "h1", "198.18.1.2", 8080, LBI_ACTIVE, 4, 0 } };
	struct lbs_action a[16];

	assert_int_equal(decide(NULL, 0, h, 1, T0, a), 1);
	assert_int_equal(a[0].kind, LBS_DRAIN);
	/* draining with sessions left: wait */
	h[0].intent = LBI_DRAINING;
	h[0].drain_since_ms = T0;
	assert_int_equal(decide(NULL, 0, h, 1, T0 + 1000, a), 0);
	/* sessions ended: remove */
	h[0].scur = 0;
	assert_int_equal(decide(NULL, 0, h, 1, T0 + 1500, a), 1);
	assert_int_equal(a[0].kind, LBS_REMOVE);
	assert_string_equal(a[0].reason, "drained");
}

static void
test_drain_timeout(void **state)
{
	struct lbs_have h[] = { { "api", "h9", "198.18.1.9", 80, LBI_DRAINING, 7, T0 } };
	struct lbs_action a[16];

	assert_int_equal(decide(NULL, 0, h, 1, T0 + 4999, a), 0);
	assert_int_equal(decide(NULL, 0, h, 1, T0 + 5000, a), 1);
	assert_int_equal(a[0].kind, LBS_REMOVE);
	assert_non_null(strstr(a[0].reason, "7 sessions"));
}

static void
test_wanted_again_and_moved(void **state)
{
	struct lbs_want w[] = { { "web", "h1", "198.18.1.2", 8080 } };
	struct lbs_have h[] = { { "web", "h1", "198.18.1.2", 8080, LBI_DRAINING, 2, T0 } };
	struct lbs_action a[16];

	assert_int_equal(decide(w, 1, h, 1, T0 + 10, a), 1);
	assert_int_equal(a[0].kind, LBS_ADD);
	h[0].intent = LBI_ACTIVE;
	h[0].port = 8081;   /* backend_port changed */
	assert_int_equal(decide(w, 1, h, 1, T0 + 10, a), 1);
	assert_int_equal(a[0].kind, LBS_ADD);
}

static void
test_unknown_lbs_left_alone(void **state)
{
	struct lbs_want w[] = { { "gone", "h1", "198.18.1.2", 8080 } };
	struct lbs_have h[] = { { "other", "h5", "198.18.1.5", 80, LBI_ACTIVE, 0, 0 } };
	struct lbs_action a[16];

	assert_int_equal(decide(w, 1, h, 1, T0, a), 0);
	/* and at most max actions are written */
	{
		struct lbs_want many[] = { { "web", "a", "198.18.1.2", 1 }, { "web", "b", "198.18.1.3", 1 },
					   { "web", "c", "198.18.1.4", 1 } };
		assert_int_equal(lbsync_decide(lbs, 2, many, 3, NULL, 0, T0, a, 2), 2);
	}
}

/* A host being terminated: each pass takes one step from the stored start
 * of its drain, never waiting; a restart (same since) resumes the drain. */
static void
test_terminated_host_drain_steps(void **state)
{
	/* not draining yet: drain it, whatever its sessions */
	assert_int_equal(lbsync_drain_decide(LBI_ACTIVE, 3, T0, T0, 60000), LBD_DRAIN);
	assert_int_equal(lbsync_drain_decide(LBI_JOINING, 0, T0, T0 + 50, 60000), LBD_DRAIN);
	/* draining with sessions: wait, up to the timeout */
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, 1, T0, T0 + 59999, 60000), LBD_WAIT);
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, 1, T0, T0 + 60000, 60000), LBD_REMOVE);
	/* no sessions: removed, once a session being set up would be counted */
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, 0, T0, T0 + 10, 60000), LBD_WAIT);
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, 0, T0, T0 + 1000, 60000), LBD_REMOVE);
	/* sessions not known (the LB's answer did not parse): not "none
	 * left", waits for the timeout */
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, -1, T0, T0 + 1000, 60000), LBD_WAIT);
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, -1, T0, T0 + 60000, 60000), LBD_REMOVE);
	/* after a restart the driver may show the member active again (a new
	 * engine): drained again, but the timeout still counts from since */
	assert_int_equal(lbsync_drain_decide(LBI_ACTIVE, 2, T0, T0 + 30000, 60000), LBD_DRAIN);
	assert_int_equal(lbsync_drain_decide(LBI_ACTIVE, 2, T0, T0 + 61000, 60000), LBD_REMOVE);
	/* a clock stepped back is no time gone by: no early removal */
	assert_int_equal(lbsync_drain_decide(LBI_DRAINING, 5, T0, T0 - 3600000, 60000), LBD_WAIT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_hosts_join),
		cmocka_unit_test(test_leaving_hosts_drain_then_go),
		cmocka_unit_test(test_drain_timeout),
		cmocka_unit_test(test_wanted_again_and_moved),
		cmocka_unit_test(test_unknown_lbs_left_alone),
		cmocka_unit_test(test_terminated_host_drain_steps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
