/* test-push-edge.c - edge-triggered pushes on the agent: the crossing
 * detector (both directions, the first value already past, equality as
 * the policy's expression decides it, NaN and infinities never), the scan
 * of a batch (per series, by metric name, sides kept across scans and
 * forgotten when the thresholds change) and the config's "thresholds"
 * (malformed ones skipped, naming the field). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/push.h"

static const struct push_threshold gt32 = { "busy", OP_GT, 32 };
static const struct push_threshold ge32 = { "busy", OP_GE, 32 };
static const struct push_threshold lt20 = { "busy", OP_LT, 20 };

static void
test_crossed(void **state)
{
	enum push_side s;

	/* the first value: a crossing only when already past */
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_UNKNOWN, 10, &s));
	assert_int_equal(s, PUSH_SIDE_OFF);
	assert_true(push_edge_crossed(&gt32, PUSH_SIDE_UNKNOWN, 50, &s));
	assert_int_equal(s, PUSH_SIDE_ON);
	/* moving on one side is no crossing; either direction across is */
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_OFF, 31, &s));
	assert_true(push_edge_crossed(&gt32, PUSH_SIDE_OFF, 33, &s));
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_ON, 90, &s));
	assert_true(push_edge_crossed(&gt32, PUSH_SIDE_ON, 5, &s));
	assert_int_equal(s, PUSH_SIDE_OFF);
	/* equality as the expression: 32 > 32 does not hold, 32 >= 32 does */
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_OFF, 32, &s));
	assert_true(push_edge_crossed(&ge32, PUSH_SIDE_OFF, 32, &s));
	assert_true(push_edge_crossed(&lt20, PUSH_SIDE_OFF, 19.5, &s));
	assert_false(push_edge_crossed(&lt20, PUSH_SIDE_OFF, 20, &s));
	/* NaN and infinities never cross and leave the side alone */
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_OFF, NAN, &s));
	assert_int_equal(s, PUSH_SIDE_OFF);
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_OFF, INFINITY, &s));
	assert_false(push_edge_crossed(&gt32, PUSH_SIDE_UNKNOWN, NAN, &s));
	assert_int_equal(s, PUSH_SIDE_UNKNOWN);
	assert_false(push_edge_crossed(&lt20, PUSH_SIDE_OFF, -INFINITY, &s));
}

static struct col_batch b;

static void
batch(double busy_a, double busy_b, double other)
{
	b.n = 0;
	b.overflow = 0;
	col_add(&b, "busy", busy_a, "monitor", "a", NULL, NULL);
	col_add(&b, "busy", busy_b, "monitor", "b", NULL, NULL);
	col_add(&b, "other", other, NULL, NULL, NULL, NULL);
}

static void
test_scan(void **state)
{
	static struct push_edge e;
	struct push_threshold t[2] = { gt32, lt20 };
	const char *first;

	memset(&e, 0, sizeof(e));
	batch(50, 99, 50);
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);   /* no thresholds: nothing */
	push_edge_set(&e, t, 2);
	batch(25, 25, 50);
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);   /* between both */
	assert_null(first);
	batch(25, 40, 99);
	assert_int_equal(push_edge_scan(&e, &b, &first), 1);   /* b crossed 32 */
	assert_string_equal(first, "busy");
	batch(25, 40, 0);
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);   /* sides kept; "other" unwatched */
	batch(10, 40, 0);
	assert_int_equal(push_edge_scan(&e, &b, &first), 1);   /* a crossed 20 downward */
	batch(10, NAN, 0);                                     /* not added: not finite */
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);
	batch(10, 40, 0);
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);   /* b is where it was */
	/* the same thresholds again keep the sides; new ones start afresh */
	push_edge_set(&e, t, 2);
	assert_int_equal(push_edge_scan(&e, &b, &first), 0);
	push_edge_set(&e, t, 1);
	assert_int_equal(push_edge_scan(&e, &b, &first), 1);   /* b at 40 is past 32 */
}

static void
test_config(void **state)
{
	struct herr err = HERR_INIT;
	struct push_config c;
	json_t *j = json_loads("{\"version\":7,\"push_interval_s\":30,\"monitors\":[],"
			       "\"thresholds\":[{\"metric\":\"busy\",\"op\":\">\",\"value\":32},"
			       "{\"metric\":\"busy\",\"op\":\"=\",\"value\":1},"
			       "{\"metric\":\"x\",\"op\":\"<=\",\"value\":\"NaN\"},"
			       "{\"op\":\"<\",\"value\":1},"
			       "{\"metric\":\"cpu\",\"op\":\"<\",\"value\":54.5}]}", 0, NULL);

	assert_int_equal(push_config_parse(j, &c, &err), 0);
	assert_int_equal(c.nthr, 2);
	assert_string_equal(c.thr[0].metric, "busy");
	assert_int_equal(c.thr[0].op, OP_GT);
	assert_true(c.thr[0].value == 32);
	assert_string_equal(c.thr[1].metric, "cpu");
	assert_int_equal(c.thr[1].op, OP_LT);
	assert_true(c.thr[1].value == 54.5);
	push_config_release(&c);
	json_decref(j);
	j = json_loads("{\"version\":7,\"thresholds\":{}}", 0, NULL);
	assert_int_equal(push_config_parse(j, &c, &err), HERR_INVALID);
	assert_string_equal(err.field, "thresholds");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crossed),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
