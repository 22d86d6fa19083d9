/* test-flap.c - the flapping predictor and the direction counter
 * (scale/flap.h) on the seed's numbers (150 items, nodes of 40 slots,
 * avg(busy) > 32 -> +1, min(busy) < 20 -> -1: flagged) and the demo's
 * (the same rules, items of 45 s: the load ends before a second step). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/scale/flap.h"

static struct policy
parse(const char *name, const char *json)
{
	struct policy p;
	struct herr err = HERR_INIT;
	json_t *spec = json_loads(json, 0, NULL);

	assert_non_null(spec);
	assert_int_equal(policy_parse(name, spec, &p, &err), 0);
	json_decref(spec);
	return p;
}

/* the seed's (and the demo's) two rules */
static void
seed_rules(struct policy *p)
{
	p[0] = parse("grow", "{\"when\":\"avg(busy) > 32\",\"for\":\"6s\",\"adjust\":\"+1\","
		     "\"cooldown\":\"60s\"}");
	p[1] = parse("shrink", "{\"when\":\"min(busy) < 20\",\"for\":\"10s\",\"adjust\":\"-1\","
		     "\"cooldown\":\"30s\"}");
}

static void
whatif(double load, int hosts, double slots, int64_t lasts_ms, struct policy *p, size_t np,
       struct flap_finding *f)
{
	double v[64];
	struct flap_load l;

	flap_load_whatif(FLAP_ADDITIVE, load, hosts, slots, v, &l);
	l.min = 2;
	l.max = 6;
	l.lasts_ms = lasts_ms;
	flap_decide(p, np, 0, FLAP_ADDITIVE, &l, f);
}

static void
test_seed_oscillates(void **state)
{
	struct policy p[2];
	struct flap_finding f;

	(void)state;
	seed_rules(p);
	/* 3 x 40 running, 30 waiting: node 4 takes the 30 (37.5 > 32), node 5
	 * gets nothing (min 0 < 20): 4 <-> 5 */
	whatif(150, 3, 40, 0, p, 2, &f);
	assert_int_equal(f.verdict, FLAP_OSCILLATES);
	assert_string_equal(f.policy, "grow");
	assert_string_equal(f.other, "shrink");
	assert_int_equal(f.from, 4);
	assert_int_equal(f.to, 5);
	assert_non_null(strstr(f.text, "avg(busy) = 37.5 meets avg(busy) > 32 on 4"));
	assert_non_null(strstr(f.text, "min(busy) = 0 meets min(busy) < 20"));
}

static void
test_seed_runaway_without_scale_in(void **state)
{
	struct policy p[2];
	struct flap_finding f;

	(void)state;
	seed_rules(p);
	/* grow alone: 3 -> 4 -> 5, where 150 / 5 = 30 is under 32 */
	whatif(150, 3, 40, 0, p, 1, &f);
	assert_int_equal(f.verdict, FLAP_RUNAWAY);
	assert_int_equal(f.from, 3);
	assert_int_equal(f.to, 5);
}

static void
test_demo_short_items_pass(void **state)
{
	struct policy p[2];
	struct flap_finding f;

	(void)state;
	seed_rules(p);
	/* items of 45 s: grow acts at 6 s (3 -> 4, node 4 takes the 30
	 * waiting: min 30), could act again only at 66 s, after the load */
	whatif(150, 3, 40, 45000, p, 2, &f);
	assert_int_equal(f.verdict, FLAP_OK);
	assert_non_null(strstr(f.text, "ends before grow can act again (66s)"));
}

static void
test_one_step_enough(void **state)
{
	struct policy p[2];
	struct flap_finding f;

	(void)state;
	seed_rules(p);
	/* 100 items on 3 (33.3 each): a 4th empty host gives min 0 < 20 */
	whatif(100, 3, 40, 0, p, 2, &f);
	assert_int_equal(f.verdict, FLAP_OSCILLATES);
	/* with a rule that reads the average for scale-in it does not: 25 */
	p[1] = parse("shrink", "{\"when\":\"avg(busy) < 20\",\"adjust\":\"-1\"}");
	whatif(100, 3, 40, 0, p, 2, &f);
	assert_int_equal(f.verdict, FLAP_OK);
	assert_non_null(strstr(f.text, "brings avg(busy) to 25"));
	/* under the threshold: nothing to predict */
	whatif(90, 3, 40, 0, p, 2, &f);
	assert_int_equal(f.verdict, FLAP_OK);
	assert_non_null(strstr(f.text, "does not meet"));
}

static void
test_intensive_and_unknown(void **state)
{
	struct policy p[2];
	struct flap_finding f;
	double v[8];
	struct flap_load l;

	(void)state;
	assert_int_equal(flap_metric_kind("cpu_busy_pct"), FLAP_INTENSIVE);
	assert_int_equal(flap_metric_kind("busy"), FLAP_ADDITIVE);
	p[0] = parse("up", "{\"when\":\"avg(cpu_busy_pct) > 60\",\"adjust\":\"+1\"}");
	p[1] = parse("down", "{\"when\":\"max(cpu_busy_pct) < 50\",\"adjust\":\"-1\"}");
	/* 70% on 2 hosts: 140 over 3 = 46.7 each, max < 50: oscillates */
	flap_load_whatif(FLAP_INTENSIVE, 70, 2, 0, v, &l);
	l.min = 1;
	l.max = 10;
	flap_decide(p, 2, 0, FLAP_INTENSIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_OSCILLATES);
	/* 70% on 4: 280 / 5 = 56, neither rule */
	flap_load_whatif(FLAP_INTENSIVE, 70, 4, 0, v, &l);
	l.min = 1;
	l.max = 10;
	flap_decide(p, 2, 0, FLAP_INTENSIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_OK);
	/* no hosts, NaN, or rules on different metrics: cannot tell */
	l.n = 0;
	flap_decide(p, 2, 0, FLAP_INTENSIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_UNKNOWN);
	flap_load_whatif(FLAP_INTENSIVE, NAN, 2, 0, v, &l);
	l.max = 10;
	flap_decide(p, 2, 0, FLAP_INTENSIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_UNKNOWN);
	p[1] = parse("down", "{\"when\":\"min(busy) < 20\",\"adjust\":\"-1\"}");
	flap_load_whatif(FLAP_INTENSIVE, 70, 2, 0, v, &l);
	l.max = 10;
	flap_decide(p, 2, 0, FLAP_INTENSIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_UNKNOWN);
	assert_non_null(strstr(f.text, "reads busy"));
}

static void
test_at_max(void **state)
{
	struct policy p[2];
	struct flap_finding f;
	double v[8];
	struct flap_load l;

	(void)state;
	seed_rules(p);
	flap_load_whatif(FLAP_ADDITIVE, 240, 6, 40, v, &l);
	l.min = 2;
	l.max = 6;
	flap_decide(p, 2, 0, FLAP_ADDITIVE, &l, &f);
	assert_int_equal(f.verdict, FLAP_OK);
	assert_non_null(strstr(f.text, "at its max 6"));
}

static void
test_counter(void **state)
{
	/* out, in, out, in, out: 4 changes of direction; out, out: none */
	struct flap_change c[] = { { 1000, 1 }, { 2000, -1 }, { 3000, 1 }, { 4000, -1 },
				   { 5000, 1 }, { 6000, 1 } };
	int k = -1;

	(void)state;
	assert_true(flap_counter_decide(c, 6, 6000, 10000, 3, &k));
	assert_int_equal(k, 4);
	assert_false(flap_counter_decide(c, 6, 6000, 10000, 4, &k));
	/* the window (3000, 6000]: the in at 4000 and the out at 5000 */
	assert_false(flap_counter_decide(c, 6, 6000, 3000, 2, &k));
	assert_int_equal(k, 2);
	assert_false(flap_counter_decide(c, 2, 6000, 1000, 0, &k));
	assert_int_equal(k, 0);
	assert_false(flap_counter_decide(NULL, 0, 6000, 1000, 0, &k));
	assert_int_equal(k, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_oscillates),
		cmocka_unit_test(test_seed_runaway_without_scale_in),
		cmocka_unit_test(test_demo_short_items_pass),
		cmocka_unit_test(test_one_step_enough),
		cmocka_unit_test(test_intensive_and_unknown),
		cmocka_unit_test(test_at_max),
		cmocka_unit_test(test_counter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
