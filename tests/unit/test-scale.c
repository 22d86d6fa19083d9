/* test-scale.c - the autoscaling decision, driven with plain structs and an
 * injected clock: the seed's two policies, guards, missing data, target
 * tracking and schedules; extreme metric values (1e300, NaN, ±Inf, DBL_MAX)
 * that must never turn into a scale-in; policies refused at parse time;
 * the thresholds agents watch (edge pushes) and which partial newest step
 * may be decided on at once. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/model/metrics.h"
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

/* policy_parse must refuse `json` naming `field`. */
static void
refused(const char *json, const char *field)
{
	struct policy p;
	struct herr err = HERR_INIT;
	json_t *spec = json_loads(json, 0, NULL);

	assert_non_null(spec);
	if (policy_parse("p", spec, &p, &err) != HERR_INVALID)
		fail_msg("accepted: %s", json);
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field '%s', want '%s' (%s)", json, err.field, field, err.msg);
	json_decref(spec);
}

static const double extremes[] = {
	1e300, -1e300, NAN, INFINITY, -INFINITY, DBL_MAX, -DBL_MAX, 1e16, -1e16, -5, -1e-300,
};
#define NEXTREMES (sizeof(extremes) / sizeof(extremes[0]))
/* For a threshold, -5 is data like any other (a metric may be negative):
 * only the absurd ones must never scale in. */
static const double absurd[] = { 1e300, -1e300, NAN, INFINITY, -INFINITY, DBL_MAX, -DBL_MAX, 1e16, -1e16 };
#define NABSURD (sizeof(absurd) / sizeof(absurd[0]))

/* Target tracking over every aggregate and every extreme value, the value
 * on all hosts or on one host among normal ones: never below the current
 * size; huge load saturates at max; the reason says why. */
static void
test_target_extremes_never_scale_in(void **state)
{
	static const char *const specs[] = {
		"{\"target\":\"avg(busy) = 60\",\"cooldown\":\"30s\"}",
		"{\"target\":\"sum(busy) = 60\",\"cooldown\":\"30s\"}",
		"{\"target\":\"max(busy) = 60\",\"cooldown\":\"30s\"}",
		"{\"target\":\"avg(busy) = 1e-300\",\"cooldown\":\"30s\"}",
	};
	struct agg_point pts[1];
	struct decision d;

	for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
		struct policy tt = parse(specs[s]);
		for (size_t i = 0; i < NEXTREMES; i++) {
			double v = extremes[i];
			struct group_view g = group(2, 1, 6);

			series(pts, 1, T0, v, 2);
			policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
			if (d.desired < g.desired || (d.kind == DEC_ACT && d.desired < 2))
				fail_msg("%s with %g: desired %d (%s)", specs[s], v, d.desired, d.reason);
			assert_true(d.desired <= g.max);
			if (v > 1e15 || (s == 3 && v > 0 && isfinite(v))) {
				/* huge load: saturate at max */
				assert_int_equal(d.kind, DEC_ACT);
				assert_int_equal(d.desired, 6);
			} else if (!(v > 0)) {
				/* NaN, negative, -Inf: no data, and the reason says so */
				assert_int_equal(d.kind, DEC_NODATA);
				assert_non_null(strstr(d.reason, "not acting"));
			}
		}
	}
}

/* Tiny targets and zero load: well-defined, between min and max. */
static void
test_target_tiny_and_zero(void **state)
{
	struct policy tiny = parse("{\"target\":\"avg(busy) = 1e-300\"}");
	struct policy tt = parse("{\"target\":\"avg(busy) = 60\"}");
	struct group_view g = group(3, 1, 6);
	struct agg_point pts[1];
	struct decision d;

	series(pts, 1, T0, 1, 3);
	policy_decide(&tiny, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 6);
	/* zero load is real data: scale in to min, not below */
	series(pts, 1, T0, 0, 3);
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 1);
	/* a target that bypassed the parser (0, negative, NaN): never acts */
	for (int i = 0; i < 4; i++) {
		struct policy bad = tt;
		bad.cond.value = (double[]){ 0, -60, NAN, INFINITY }[i];
		series(pts, 1, T0, 90, 3);
		policy_decide(&bad, &g, pts, 1, STEP, 15000, 0, T0, &d);
		assert_int_equal(d.kind, DEC_NODATA);
		assert_int_equal(d.desired, 3);
	}
}

/* Step policies in both directions: an absurd value in the window is no
 * data for a scale-in; a scale-out saturates at max. */
static void
test_step_extremes(void **state)
{
	static const char *const shrinks[] = {
		"{\"when\":\"min(busy) < 20\",\"for\":\"10s\",\"adjust\":\"-1\"}",
		"{\"when\":\"avg(busy) <= 20\",\"for\":\"10s\",\"adjust\":\"-50%\"}",
		"{\"when\":\"max(busy) < 20\",\"for\":\"10s\",\"adjust\":\"=1\"}",
	};
	static const char *const grows[] = {
		"{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}",
		"{\"when\":\"max(busy) >= 32\",\"adjust\":\"+10000%\"}",
		"{\"when\":\"sum(busy) > 32\",\"adjust\":\"=6\"}",
	};
	struct agg_point pts[3];
	struct decision d;

	for (size_t s = 0; s < 3; s++) {
		struct policy shrink = parse(shrinks[s]), grow = parse(grows[s]);
		for (size_t i = 0; i < NABSURD; i++) {
			struct group_view g = group(4, 1, 6);

			series(pts, 3, T0, absurd[i], 4);
			policy_decide(&shrink, &g, pts, 3, STEP, 15000, 0, T0, &d);
			if (d.desired < g.desired)
				fail_msg("%s with %g: desired %d (%s)", shrinks[s], absurd[i], d.desired,
					 d.reason);
			/* one absurd step among normal ones is enough to hold back */
			series(pts, 3, T0, 10, 4);
			pts[1].value = absurd[i];
			policy_decide(&shrink, &g, pts, 3, STEP, 15000, 0, T0, &d);
			if (d.desired < g.desired)
				fail_msg("%s with %g in the window: desired %d (%s)", shrinks[s],
					 absurd[i], d.desired, d.reason);
			series(pts, 3, T0, absurd[i], 4);
			policy_decide(&grow, &g, pts, 3, STEP, 15000, 0, T0, &d);
			assert_true(d.desired >= g.desired && d.desired <= g.max);
			if (absurd[i] > 32) {
				assert_int_equal(d.kind, DEC_ACT);
				assert_true(d.desired > g.desired);
			}
		}
	}
}

/* Adjustments that bypassed the parser, beyond int: saturate, never wrap. */
static void
test_step_adjust_saturates(void **state)
{
	struct policy grow = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}");
	struct group_view g = group(4, 1, 6);
	struct agg_point pts[1];
	struct decision d;

	series(pts, 1, T0, 50, 4);
	grow.adjust.n = 3000000000LL;           /* (int) of it is negative */
	policy_decide(&grow, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 6);
	grow.adjust.n = LLONG_MAX;
	policy_decide(&grow, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.desired, 6);
	grow.adjust.kind = ADJ_EXACT;
	grow.adjust.n = 4294967297LL;           /* (int) of it is 1 */
	policy_decide(&grow, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.desired, 6);
	/* cooldown arithmetic near the end of time does not wrap either */
	grow.adjust.kind = ADJ_DELTA;
	grow.adjust.n = 1;
	grow.cooldown_ms = INT64_MAX;
	g.last_out_ms = T0 - 1000;
	policy_decide(&grow, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_BLOCKED);
}

/* Group sizes that are unknown (absent in the stored spec) or do not fit
 * in an int: never 0, never wrapped; no decision on them. */
static void
test_unknown_sizes(void **state)
{
	struct policy tt = parse("{\"target\":\"avg(busy) = 60\"}");
	json_t *spec = json_loads("{\"desired\":4294967297,\"min\":-3,\"max\":\"6\"}", 0, NULL);
	struct group_view g = group(3, 1, 6);
	struct agg_point pts[1];
	struct decision d;

	assert_int_equal(scale_spec_int(spec, "desired"), INT_MAX);
	assert_int_equal(scale_spec_int(spec, "min"), 0);
	assert_int_equal(scale_spec_int(spec, "max"), -1);
	assert_int_equal(scale_spec_int(spec, "size"), -1);
	json_decref(spec);
	series(pts, 1, T0, 0, 3);
	g.max = -1;
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NODATA);
	assert_int_equal(d.desired, 3);
	g.max = 6;
	g.min = 7;
	policy_decide(&tt, &g, pts, 1, STEP, 15000, 0, T0, &d);
	assert_int_equal(d.kind, DEC_NODATA);
	assert_non_null(strstr(d.reason, "inconsistent"));
}

/* Refused at the door: the same checks the API makes. */
static void
test_parse_refuses(void **state)
{
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\",\"for\":\"bogus\"}", "for");
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\",\"cooldown\":\"5 parsecs\"}", "cooldown");
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\",\"cooldown\":\"9999999d\"}", "cooldown");
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\",\"drain_timeout\":5}", "drain_timeout");
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":9223372036854775807}", "adjust");
	refused("{\"when\":\"avg(busy) > 32\"}", "adjust");
	refused("{\"when\":\"avg(busy) = 32\",\"adjust\":\"+1\"}", "when");
	refused("{\"target\":\"avg(cpu) = 0\"}", "target");
	refused("{\"target\":\"avg(cpu) = -60\"}", "target");
	refused("{\"target\":\"avg(cpu) = 1e999\"}", "target");
	refused("{\"target\":\"avg(cpu) > 60\"}", "target");
	refused("{\"target\":\"avg(cpu) = 60\",\"tolerance\":500}", "tolerance");
	refused("{\"target\":\"avg(cpu) = 60\",\"scale_in_cooldown\":\"soon\"}", "scale_in_cooldown");
	refused("{\"schedule\":\"0 9 * * *\",\"timezone\":\"../../etc/passwd\",\"set\":{\"min\":1}}", "timezone");
	refused("{\"schedule\":\"0 9 * * *\",\"timezone\":\"Mars/Olympus\",\"set\":{\"min\":1}}", "timezone");
	refused("{\"schedule\":\"0 9 * * *\",\"timezone\":\"Asia/Shanghai/../../../etc/passwd\","
		"\"set\":{\"min\":1}}", "timezone");
	refused("{\"schedule\":\"0 9 * * *\",\"set\":{\"min\":5,\"max\":2}}", "set.min");
	refused("{\"schedule\":\"0 9 * * *\",\"set\":{\"min\":-1}}", "set.min");
	refused("{\"schedule\":\"0 9 * * *\",\"set\":{\"desired\":5000}}", "set.desired");
	refused("{\"schedule\":\"0 9 * * *\",\"set\":{\"min\":1,\"desired\":9,\"max\":5}}", "set.desired");
	refused("{\"schedule\":\"0 9 * * *\"}", "set");
	refused("{\"schedule\":\"0 9 * * *\",\"set\":{\"min\":1},\"mode\":\"yolo\"}", "mode");
	refused("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\",\"target\":\"avg(cpu) = 60\"}", "when");
	/* and what is fine stays fine */
	parse("{\"schedule\":\"0 9 * * *\",\"timezone\":\"Asia/Shanghai\",\"set\":{\"min\":2,\"max\":2}}");
	parse("{\"target\":\"avg(cpu) = 1e-300\",\"tolerance\":0}");
}

/* The thresholds a policy gives the agents: a `when` its own comparison,
 * a target its tolerance band's edges, a schedule none. */
static void
test_policy_thresholds(void **state)
{
	struct policy_threshold t[POLICY_THRESHOLDS_MAX];
	struct policy p;

	p = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}");
	assert_int_equal(policy_thresholds(&p, t), 1);
	assert_string_equal(t[0].metric, "busy");
	assert_int_equal(t[0].op, OP_GT);
	assert_true(t[0].value == 32);
	p = parse("{\"when\":\"min(busy) <= 20\",\"adjust\":\"-1\"}");
	assert_int_equal(policy_thresholds(&p, t), 1);
	assert_int_equal(t[0].op, OP_LE);
	assert_true(t[0].value == 20);
	p = parse("{\"target\":\"avg(cpu) = 60\",\"tolerance\":10}");
	assert_int_equal(policy_thresholds(&p, t), 2);
	assert_string_equal(t[0].metric, "cpu");
	assert_int_equal(t[0].op, OP_GT);
	assert_true(fabs(t[0].value - 66) < 1e-9);
	assert_int_equal(t[1].op, OP_LT);
	assert_true(fabs(t[1].value - 54) < 1e-9);
	p = parse("{\"schedule\":\"0 9 * * *\",\"set\":{\"min\":2}}");
	assert_int_equal(policy_thresholds(&p, t), 0);
}

/* The config's list: every policy's thresholds once, sorted; a policy
 * that does not parse has none. */
static void
test_thresholds_json(void **state)
{
	json_t *rows = json_loads("[{\"name\":\"b\",\"spec\":{\"when\":\"max(busy) > 32\","
				  "\"adjust\":\"+1\"}},"
				  "{\"name\":\"a\",\"spec\":{\"when\":\"avg(busy) > 32\","
				  "\"adjust\":\"+2\"}},"
				  "{\"name\":\"c\",\"spec\":{\"when\":\"min(busy) < 20\","
				  "\"adjust\":\"-1\"}},"
				  "{\"name\":\"bad\",\"spec\":{\"when\":\"avg(x) = 1\"}},"
				  "{\"name\":\"s\",\"spec\":{\"schedule\":\"0 9 * * *\","
				  "\"set\":{\"min\":1}}}]", 0, NULL);
	json_t *t = metrics_thresholds_json(rows), *none = metrics_thresholds_json(NULL);
	char *text = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);

	assert_string_equal(text, "[{\"metric\":\"busy\",\"op\":\">\",\"value\":32.0},"
				  "{\"metric\":\"busy\",\"op\":\"<\",\"value\":20.0}]");
	assert_int_equal(json_array_size(none), 0);
	free(text);
	json_decref(t);
	json_decref(none);
	json_decref(rows);
}

/* A partial newest step: only a scale-out whose condition can only stay
 * true as the other hosts report may act on it. */
static void
test_partial_ok(void **state)
{
	struct group_view g = group(2, 1, 10);
	struct policy mx = parse("{\"when\":\"max(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy av = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy sm = parse("{\"when\":\"sum(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy mn_in = parse("{\"when\":\"min(busy) < 20\",\"adjust\":\"-1\"}");
	struct policy mn_out = parse("{\"when\":\"min(free) < 20\",\"adjust\":\"+1\"}");
	struct policy mx_in = parse("{\"when\":\"max(busy) > 32\",\"adjust\":\"=1\"}");
	struct policy mx_eq = parse("{\"when\":\"max(busy) >= 32\",\"adjust\":\"=5\"}");
	struct policy tt = parse("{\"target\":\"max(busy) = 60\"}");

	assert_true(scale_partial_ok(&mx, &g, 50));
	assert_false(scale_partial_ok(&mx, &g, 32));     /* does not hold on it */
	assert_false(scale_partial_ok(&mx, &g, NAN));
	assert_true(scale_partial_ok(&mx_eq, &g, 32));   /* equality as the expression */
	assert_false(scale_partial_ok(&av, &g, 50));
	assert_false(scale_partial_ok(&sm, &g, 50));
	assert_false(scale_partial_ok(&mn_in, &g, 5));   /* a scale-in: never */
	assert_true(scale_partial_ok(&mn_out, &g, 5));
	assert_false(scale_partial_ok(&mx_in, &g, 50));  /* =1 from 2 is a scale-in */
	assert_false(scale_partial_ok(&tt, &g, 90));
	g.desired = -1;
	assert_false(scale_partial_ok(&mx, &g, 50));     /* unknown size */
}

/* scale_eval over a fake aggregate whose newest step only 1 of 3 hosts
 * reported, inside the round's grace. */
static struct agg_point fake_pts[4];

static int
fake_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms, int64_t step_ms,
	 const char *const *ex, size_t nex, struct agg_point **out, size_t *n, struct herr *err)
{
	*out = calloc(4, sizeof(**out));
	memcpy(*out, fake_pts, sizeof(fake_pts));
	*n = 3;
	return 0;
}

static void
test_eval_partial_step(void **state)
{
	struct group_view g = group(3, 1, 10);
	struct policy mx = parse("{\"when\":\"max(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy av = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy mn = parse("{\"when\":\"max(busy) < 20\",\"adjust\":\"-1\"}");
	struct herr err = HERR_INIT;
	struct decision d;

	series(fake_pts, 3, T0, 10, 3);
	fake_pts[2].value = 50;      /* one host's immediate push */
	fake_pts[2].nseries = 1;
	assert_int_equal(scale_eval(&mx, &g, NULL, 0, fake_agg, NULL, STEP, 15000, T0, T0 + 100,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 4);
	/* avg: the step waits for the round (decided on the step before) */
	assert_int_equal(scale_eval(&av, &g, NULL, 0, fake_agg, NULL, STEP, 15000, T0, T0 + 100,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(d.value == 10);
	/* a scale-in never acts on it */
	series(fake_pts, 3, T0, 30, 3);
	fake_pts[2].value = 5;
	fake_pts[2].nseries = 1;
	assert_int_equal(scale_eval(&mn, &g, NULL, 0, fake_agg, NULL, STEP, 15000, T0, T0 + 100,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(d.value == 30);
}

/* A tiny metric store for scale_eval: samples of a few hosts, aggregated
 * the way the TSDB does (steps (T - STEP, T] at multiples of STEP, each
 * host's newest sample in a step, steps ending in (now - span, now]). It
 * records the `now` it was asked for. */
struct smp {
	int host;
	int64_t ts;
	double v;
};
static struct smp smps[16];
static size_t nsmps;
static int64_t agg_asked;

static int
sample_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms, int64_t step_ms,
	   const char *const *ex, size_t nex, struct agg_point **out, size_t *n, struct herr *err)
{
	int64_t last = now_ms - now_ms % step_ms, first = last - span_ms + step_ms;
	size_t steps;

	agg_asked = now_ms;
	if (first < now_ms - span_ms + 1)
		first += step_ms;
	steps = (size_t)((last - first) / step_ms) + 1;
	*out = calloc(steps + 1, sizeof(**out));
	*n = steps;
	for (size_t k = 0; k < steps; k++) {
		int64_t end = first + (int64_t)k * step_ms;
		double v = NAN;
		int cnt = 0;

		for (int h = 0; h < 8; h++) {
			const struct smp *newest = NULL;

			for (size_t i = 0; i < nsmps; i++)
				if (smps[i].host == h && smps[i].ts > end - step_ms && smps[i].ts <= end &&
				    (newest == NULL || smps[i].ts >= newest->ts))
					newest = &smps[i];
			if (newest == NULL)
				continue;
			if (cnt == 0)
				v = newest->v;
			else if (p->cond.agg == AGG_MAX)
				v = fmax(v, newest->v);
			else if (p->cond.agg == AGG_MIN)
				v = fmin(v, newest->v);
			else
				v += newest->v;
			cnt++;
		}
		if (p->cond.agg == AGG_AVG && cnt)
			v /= cnt;
		if (p->cond.agg == AGG_COUNT)
			v = cnt;
		(*out)[k] = (struct agg_point){ end, v, cnt };
	}
	return 0;
}

/* The step now falls in, for a scale-out that more samples cannot make
 * false: a crossing sample in it is decided on at once (a host pushing
 * between the multiples of the interval, a late retry), not at the step's
 * end; what it holds counts up to now, not to the step's end (`for`).
 * Nothing else reads it, and an evaluation at a step's end never reads
 * past now (simulate evaluates there). */
static void
test_eval_open_step(void **state)
{
	struct group_view g = group(3, 1, 10);
	struct policy mx = parse("{\"when\":\"max(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy cnt = parse("{\"when\":\"count(busy) >= 3\",\"adjust\":\"+1\"}");
	struct policy av = parse("{\"when\":\"avg(busy) > 32\",\"adjust\":\"+1\"}");
	struct policy mn_in = parse("{\"when\":\"min(busy) < 8\",\"adjust\":\"-1\"}");
	struct policy mx_for = parse("{\"when\":\"max(busy) > 32\",\"for\":\"10s\",\"adjust\":\"+1\"}");
	struct herr err = HERR_INIT;
	struct decision d;
	int64_t T = T0 + 10 * STEP;   /* the last step that ended */

	/* three hosts at 10 in the steps up to T; host 0 at 50 at T + 1.2 s */
	nsmps = 0;
	for (int h = 0; h < 3; h++)
		for (int k = 0; k < 3; k++)
			smps[nsmps++] = (struct smp){ h, T - k * STEP - 2000, 10 };
	smps[nsmps++] = (struct smp){ 0, T + 1200, 50 };
	assert_int_equal(scale_eval(&mx, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T + 1300,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_ACT);
	assert_int_equal(d.desired, 4);
	assert_true(d.value == 50);
	assert_int_equal(d.nseries, 1);
	assert_true(agg_asked == T + STEP);
	/* before that sample is in, nothing (an empty open step: the step
	 * before, 10) */
	nsmps--;
	assert_int_equal(scale_eval(&mx, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T + 1300,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(d.value == 10);
	nsmps++;
	/* avg: another host may pull it back; it waits for the step's end */
	assert_int_equal(scale_eval(&av, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T + 1300,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(d.value == 10);
	assert_true(agg_asked == T + 1300);
	/* count: not yet 3 in the open step (1), so the step before decides */
	assert_int_equal(scale_eval(&cnt, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T + 1300,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_ACT);   /* 3 >= 3 on the complete step T */
	assert_true(d.value == 3);
	/* a scale-in never reads it */
	smps[nsmps - 1].v = 5;
	assert_int_equal(scale_eval(&mn_in, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T + 1300,
				    &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(d.value == 10);
	/* at a step's end, nothing past now: a sample stamped 1 ms later is
	 * not there yet */
	smps[nsmps - 1] = (struct smp){ 0, T + 1, 50 };
	assert_int_equal(scale_eval(&mx, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T, T, &d, NULL,
				    0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_true(agg_asked == T);
	/* for 10 s: 50 in step T (complete) and again in the open step; at
	 * T + 4.9 s it has held for 9.9 s (from T - 5 s), not the 10 s to the
	 * open step's end */
	nsmps = 0;
	for (int h = 0; h < 3; h++)
		smps[nsmps++] = (struct smp){ h, T - 2000, h == 0 ? 50 : 10 };
	smps[nsmps++] = (struct smp){ 0, T + 1200, 50 };
	assert_int_equal(scale_eval(&mx_for, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T,
				    T + 4900, &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_NONE);
	assert_non_null(strstr(d.reason, "holds for 9s of 10s"));
	assert_int_equal(scale_eval(&mx_for, &g, NULL, 0, sample_agg, NULL, STEP, 15000, T,
				    T + STEP, &d, NULL, 0, &err), 0);
	assert_int_equal(d.kind, DEC_ACT);
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
		cmocka_unit_test(test_target_extremes_never_scale_in),
		cmocka_unit_test(test_target_tiny_and_zero),
		cmocka_unit_test(test_step_extremes),
		cmocka_unit_test(test_step_adjust_saturates),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_unknown_sizes),
		cmocka_unit_test(test_policy_thresholds),
		cmocka_unit_test(test_thresholds_json),
		cmocka_unit_test(test_partial_ok),
		cmocka_unit_test(test_eval_partial_step),
		cmocka_unit_test(test_eval_open_step),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
