/* test-scale.c - the autoscaling decision, driven with plain structs and an
 * injected clock: the seed's two policies, guards, missing data, target
 * tracking and schedules. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/scale/scale.h"

#define T0 1800000000000LL   /* some time in 2027 */
#define STEP 5000

static struct policy
parse(const char *json)
{
	struct policy p;
	struct herr err = HERR_INIT;
	json_t *spec = json_loads(json, 0, NULL);

	assert_non_null(spec);
	assert_int_equal(policy_parse("p", spec, &p, &err), 0);
	json_decref(spec);
	return p;
}

/* n steps ending at `end`, all with value v from k series. */
static size_t
series(struct agg_point *pts, size_t n, int64_t end, double v, int k)
{
	for (size_t i = 0; i < n; i++) {
		pts[i].ts_ms = end - (int64_t)(n - 1 - i) * STEP;
		pts[i].value = v;
		pts[i].nseries = k;
	}
	return n;
}

static struct group_view
group(int desired, int min, int max)
{
	struct group_view g = { 0 };

	g.desired = desired;
	g.min = min;
	g.max = max;
	g.ready = desired;
	return g;
}

static void
test_seed_scale_out_once(void **state)
{
	struct policy grow = parse("{\"when\":\"avg(busy) > 32\",\"for\":\"10s\",\"adjust\":\"+1\",\"cooldown\":\"30s\"}");
	struct group_view g = group(3, 2, 6);
	struct agg_point pts[8];
	struct decision d;
	int64_t now = T0;

	/* 40 on every host, for 15 s: +1 */
	series(pts, 4, now, 40, 3);
	policy_decide(&grow, &g, pts, 4, STEP, 15000, 0, now, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 4);
	assert_non_null(strstr(d.reason, "desired 3 -> 4"));
	/* evaluated again while the new host launches: no second scale-out */
	g.desired = 4;
	g.pending = 1;
	g.last_out_ms = now;
	policy_decide(&grow, &g, pts, 4, STEP, 15000, 0, now + 1000, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	assert_non_null(strstr(d.reason, "count as capacity"));
	/* ready now, still in cooldown */
	g.pending = 0;
	g.ready = 4;
	series(pts, 4, now + 20000, 40, 4);
	policy_decide(&grow, &g, pts, 4, STEP, 15000, 0, now + 20000, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	assert_non_null(strstr(d.reason, "cooldown until"));
}

static void
test_for_window(void **state)
{
	struct policy grow = parse("{\"when\":\"avg(busy) > 32\",\"for\":\"10s\",\"adjust\":1}");
	struct group_view g = group(3, 2, 6);
	struct agg_point pts[6];
	struct decision d;

	/* only the last step is above: holds 5 s of 10 s */
	series(pts, 6, T0, 20, 3);
	pts[5].value = 40;
	policy_decide(&grow, &g, pts, 6, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NONE);
	assert_non_null(strstr(d.reason, "holds for 5s of 10s"));
	/* a gap (no data) in the window breaks it */
	series(pts, 6, T0, 40, 3);
	pts[4].nseries = 0;
	policy_decide(&grow, &g, pts, 6, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NONE);
}

static void
test_scale_in_needs_complete_data(void **state)
{
	struct policy shrink = parse("{\"when\":\"min(busy) < 20\",\"for\":\"10s\",\"adjust\":\"-1\",\"cooldown\":\"60s\"}");
	struct group_view g = group(4, 2, 6);
	struct agg_point pts[4];
	struct decision d;

	series(pts, 4, T0, 10, 4);
	policy_decide(&shrink, &g, pts, 4, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 3);
	/* one host stopped reporting: unknown is not absent */
	pts[2].nseries = 3;
	policy_decide(&shrink, &g, pts, 4, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NODATA);
	assert_non_null(strstr(d.reason, "only 3 of 4 hosts"));
	/* everything stale */
	series(pts, 4, T0 - 60000, 10, 4);
	policy_decide(&shrink, &g, pts, 4, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NODATA);
	/* nothing at all */
	policy_decide(&shrink, &g, pts, 0, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NODATA);
}

static void
test_guards(void **state)
{
	struct policy shrink = parse("{\"when\":\"min(busy) < 20\",\"adjust\":\"-1\",\"cooldown\":\"60s\"}");
	struct policy grow = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+2\",\"cooldown\":\"30s\"}");
	struct group_view g = group(2, 2, 6);
	struct agg_point pts[2];
	struct decision d;

	series(pts, 2, T0, 10, 2);
	/* at min: blocked, says so */
	policy_decide(&shrink, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	assert_non_null(strstr(d.reason, "at its min"));
	/* a scale-in right after a scale-out waits for the cooldown */
	g = group(4, 2, 6);
	series(pts, 2, T0, 10, 4);
	g.last_out_ms = T0 - 10000;
	policy_decide(&shrink, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	/* manual scale pauses policies */
	g = group(4, 2, 6);
	g.manual_ms = T0 - 1000;
	policy_decide(&shrink, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	assert_non_null(strstr(d.reason, "manual"));
	/* max always holds: +2 from 5 gives 6 */
	g = group(5, 2, 6);
	series(pts, 2, T0, 50, 5);
	policy_decide(&grow, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 6);
	/* hourly cap */
	g.actions_last_hour = 3;
	g.max_actions_per_hour = 3;
	policy_decide(&grow, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	/* shadow mode never acts */
	grow.shadow = true;
	g.actions_last_hour = 0;
	policy_decide(&grow, &g, pts, 2, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	assert_non_null(strstr(d.reason, "shadow"));
}

static void
test_resolve_scale_out_wins(void **state)
{
	struct decision d[3] = { 0 };

	d[0].kind = DEC_ACT;
	d[0].desired = 2;
	d[1].kind = DEC_ACT;
	d[1].desired = 5;
	d[2].kind = DEC_BLOCKED;
	d[2].desired = 9;
	assert_int_equal(policy_resolve(d, 3, 3), 1);
	d[1].kind = DEC_NONE;
	assert_int_equal(policy_resolve(d, 3, 3), 0);
	d[0].kind = DEC_NODATA;
	assert_int_equal(policy_resolve(d, 3, 3), -1);
}

static void
test_target_tracking(void **state)
{
	struct policy tt = parse("{\"target\":\"avg(cpu) = 60\",\"cooldown\":\"30s\"}");
	struct group_view g = group(4, 1, 10);
	struct agg_point pts[1];
	struct decision d;

	/* 90% on 4 hosts = 360 -> ceil(360/60) = 6 */
	series(pts, 1, T0, 90, 4);
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 6);
	/* within tolerance */
	series(pts, 1, T0, 63, 4);
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NONE);
	/* 20% on 4 = 80 -> 2 hosts; scale-in cooldown is slower (3x = 90 s) */
	series(pts, 1, T0, 20, 4);
	g.last_in_ms = T0 - 60000;
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
	g.last_in_ms = T0 - 100000;
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 2);
}

static void
test_schedule(void **state)
{
	struct policy s = parse("{\"schedule\":\"0 9 * * 1-5\",\"timezone\":\"UTC\",\"set\":{\"min\":4,\"desired\":4}}");
	struct group_view g = group(2, 1, 10);
	struct decision d;
	/* 2027-01-15 is a Friday; 1800000000000 = 2027-01-15T08:00:00Z */
	int64_t nine = 1800000000000LL + 3600000LL;

	policy_decide(&s, &g, NULL, 0, STEP, 15000, nine - 60000, nine - 1000, &d);
	assert_int_equal(d.kind, DEC_NONE);
	policy_decide(&s, &g, NULL, 0, STEP, 15000, nine - 1000, nine + 500, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 4);
	assert_int_equal(d.set_min, 4);
	/* not again in the next evaluation */
	policy_decide(&s, &g, NULL, 0, STEP, 15000, nine + 500, nine + 1500, &d);
	assert_int_equal(d.kind, DEC_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_scale_out_once),
		cmocka_unit_test(test_for_window),
		cmocka_unit_test(test_scale_in_needs_complete_data),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_resolve_scale_out_wins),
		cmocka_unit_test(test_target_tracking),
		cmocka_unit_test(test_schedule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
