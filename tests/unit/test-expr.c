/* test-expr.c - policy conditions and adjustments: what parses, what each
 * error says and where, canonical text round trips, and size arithmetic. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "expr.h"

static void
expect_expr(const char *s, enum expr_agg agg, const char *metric, enum expr_op op, double v,
	    const char *canon)
{
	struct herr err = HERR_INIT;
	struct expr e, e2;
	char text[EXPR_TEXT_MAX];

	memset(&e, 0x55, sizeof(e));
	if (expr_parse(s, &e, &err) != 0)
		fail_msg("'%s': %s", s, err.msg);
	assert_int_equal(e.agg, agg);
	assert_string_equal(e.metric, metric);
	assert_int_equal(e.op, op);
	if (e.value != v)
		fail_msg("'%s': value %.17g, want %.17g", s, e.value, v);
	if (expr_format(&e, text, sizeof(text)) != (int)strlen(canon) || strcmp(text, canon) != 0)
		fail_msg("'%s' formats as '%s', want '%s'", s, text, canon);
	assert_int_equal(expr_parse(text, &e2, &err), 0);
	assert_true(e2.value == e.value && e2.op == e.op && e2.agg == e.agg);
	assert_string_equal(e2.metric, e.metric);
}

static void
expect_expr_err(const char *s, const char *msg)
{
	struct herr err = HERR_INIT;
	struct expr e;

	if (expr_parse(s, &e, &err) != HERR_INVALID)
		fail_msg("'%s' parsed", s);
	assert_int_equal(err.code, HERR_INVALID);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("'%s': got \"%s\", want \"%s\"", s, err.msg, msg);
}

static void
test_expr_good(void **state)
{
	(void)state;
	expect_expr("avg(busy) > 32", AGG_AVG, "busy", OP_GT, 32, "avg(busy) > 32");
	expect_expr("min( busy )<20", AGG_MIN, "busy", OP_LT, 20, "min(busy) < 20");
	expect_expr("avg(cpu) = 60", AGG_AVG, "cpu", OP_EQ, 60, "avg(cpu) = 60");
	expect_expr("avg(cpu)==60", AGG_AVG, "cpu", OP_EQ, 60, "avg(cpu) = 60");
	expect_expr("max(mem.used_pct)>=90.5", AGG_MAX, "mem.used_pct", OP_GE, 90.5,
		    "max(mem.used_pct) >= 90.5");
	expect_expr("  sum ( queue:depth-1 )  <=  -0.25  ", AGG_SUM, "queue:depth-1", OP_LE, -0.25,
		    "sum(queue:depth-1) <= -0.25");
	expect_expr("COUNT(_x)>0", AGG_COUNT, "_x", OP_GT, 0, "count(_x) > 0");
	expect_expr("\tavg\t(\tload1\t)\t>\t1e3\t", AGG_AVG, "load1", OP_GT, 1000,
		    "avg(load1) > 1000");
	expect_expr("avg(x) > +5", AGG_AVG, "x", OP_GT, 5, "avg(x) > 5");
	expect_expr("avg(x) > -0", AGG_AVG, "x", OP_GT, 0, "avg(x) > 0");
	expect_expr("avg(x) > 0.1", AGG_AVG, "x", OP_GT, 0.1, "avg(x) > 0.1");
	expect_expr("avg(x) > 1.5E-7", AGG_AVG, "x", OP_GT, 1.5e-7, "avg(x) > 1.5e-07");
	expect_expr("avg(x) > 123456789012345678901234567890", AGG_AVG, "x", OP_GT,
		    1.2345678901234568e29, "avg(x) > 1.2345678901234568e+29");
	expect_expr("avg(x) > 9007199254740993", AGG_AVG, "x", OP_GT, 9007199254740992.0,
		    "avg(x) > 9007199254740992");
}

static void
test_expr_metric_length(void **state)
{
	char s[200], name[EXPR_METRIC_MAX + 2], canon[200];

	(void)state;
	memset(name, 'm', EXPR_METRIC_MAX);
	name[EXPR_METRIC_MAX] = '\0';
	snprintf(s, sizeof(s), "avg(%s) > 1", name);
	snprintf(canon, sizeof(canon), "avg(%s) > 1", name);
	expect_expr(s, AGG_AVG, name, OP_GT, 1, canon);
	name[EXPR_METRIC_MAX] = 'm';
	name[EXPR_METRIC_MAX + 1] = '\0';
	snprintf(s, sizeof(s), "avg(%s) > 1", name);
	expect_expr_err(s, "metric name at column 5 longer than 100 characters");
}

static void
test_expr_bad(void **state)
{
	(void)state;
	expect_expr_err("", "expected avg, min, max, sum or count at column 1");
	expect_expr_err("   ", "expected avg, min, max, sum or count at column 4");
	expect_expr_err("mean(x) > 1", "expected avg, min, max, sum or count at column 1");
	expect_expr_err("avgx(x) > 1", "expected avg, min, max, sum or count at column 1");
	expect_expr_err("avg x) > 1", "expected '(' at column 5");
	expect_expr_err("avg[x] > 1", "expected '(' at column 4");
	expect_expr_err("avg() > 1", "expected metric name at column 5");
	expect_expr_err("avg(1x) > 1", "expected metric name at column 5");
	expect_expr_err("avg(a b) > 1", "expected ')' at column 7, found 'b'");
	expect_expr_err("avg(a", "expected ')' at column 6, found end of text");
	expect_expr_err("avg(a$) > 1", "expected ')' at column 6, found '$'");
	expect_expr_err("avg(a) 32", "expected '>', '>=', '<', '<=' or '=' at column 8");
	expect_expr_err("avg(a) != 32", "expected '>', '>=', '<', '<=' or '=' at column 8");
	expect_expr_err("avg(a) =< 32", "expected number at column 9");
	expect_expr_err("avg(a) >", "expected number at column 9");
	expect_expr_err("avg(a) > x", "expected number at column 10");
	expect_expr_err("avg(a) > .5", "expected number at column 10");
	expect_expr_err("avg(a) > 5.", "expected number at column 10");
	expect_expr_err("avg(a) > - 5", "expected number at column 10");
	expect_expr_err("avg(a) > 5 5", "unexpected '5' at column 12");
	expect_expr_err("avg(a) > 5%", "unexpected '%' at column 11");
	expect_expr_err("avg(a) > 5e", "unexpected 'e' at column 11");
	expect_expr_err("avg(a) > 0x10", "unexpected 'x' at column 11");
	expect_expr_err("avg(a) > inf", "expected number at column 10");
	expect_expr_err("avg(a) > nan", "expected number at column 10");
	expect_expr_err("avg(a) > 1e999", "number at column 10 is out of range");
	expect_expr_err("avg(a) > 1\x01", "unexpected byte 0x01 at column 11");
	expect_expr_err("avg(a) > 00000000000000000000000000000000000000000000000000000000000000001",
			"number at column 10 is too long");
}

static void
test_expr_holds(void **state)
{
	static const struct { const char *s; double v; bool want; } cases[] = {
		{ "avg(x) > 32", 32, false }, { "avg(x) > 32", 32.001, true },
		{ "avg(x) >= 32", 32, true }, { "avg(x) >= 32", 31.9, false },
		{ "avg(x) < 20", 20, false }, { "avg(x) < 20", -5, true },
		{ "avg(x) <= 20", 20, true }, { "avg(x) <= 20", 21, false },
		{ "avg(x) = 60", 60, true }, { "avg(x) = 60", 60.5, false },
		{ "avg(x) > -1", NAN, false }, { "avg(x) < 1", NAN, false },
		{ "avg(x) > 1", INFINITY, true },
	};
	struct herr err = HERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct expr e;

		assert_int_equal(expr_parse(cases[i].s, &e, &err), 0);
		if (expr_holds(&e, cases[i].v) != cases[i].want)
			fail_msg("%s with %g", cases[i].s, cases[i].v);
	}
}

static void
test_expr_names_and_format(void **state)
{
	struct expr e = { AGG_COUNT, "hosts", OP_LE, 4 };
	char small[8];

	(void)state;
	assert_string_equal(expr_agg_name(AGG_AVG), "avg");
	assert_string_equal(expr_agg_name(AGG_COUNT), "count");
	assert_string_equal(expr_agg_name((enum expr_agg)42), "?");
	assert_string_equal(expr_op_name(OP_GE), ">=");
	assert_string_equal(expr_op_name(OP_EQ), "=");
	assert_string_equal(expr_op_name((enum expr_op)-1), "?");
	assert_int_equal(expr_format(&e, small, sizeof(small)), 17);
	assert_string_equal(small, "count(h");
}

static void
expect_adjust(const char *s, int kind, long long n, const char *canon)
{
	struct herr err = HERR_INIT;
	struct adjust a;
	char text[32];

	if (adjust_parse(s, &a, &err) != 0)
		fail_msg("'%s': %s", s, err.msg);
	assert_int_equal(a.kind, kind);
	assert_true(a.n == n);
	adjust_format(&a, text, sizeof(text));
	assert_string_equal(text, canon);
}

static void
expect_adjust_err(const char *s, const char *msg)
{
	struct herr err = HERR_INIT;
	struct adjust a;

	if (adjust_parse(s, &a, &err) != HERR_INVALID)
		fail_msg("'%s' parsed", s);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("'%s': got \"%s\", want \"%s\"", s, err.msg, msg);
}

static void
test_adjust_parse(void **state)
{
	(void)state;
	expect_adjust("+1", ADJ_DELTA, 1, "+1");
	expect_adjust("-2", ADJ_DELTA, -2, "-2");
	expect_adjust("3", ADJ_DELTA, 3, "+3");
	expect_adjust(" + 4 ", ADJ_DELTA, 4, "+4");
	expect_adjust("+20%", ADJ_PERCENT, 20, "+20%");
	expect_adjust("-10%", ADJ_PERCENT, -10, "-10%");
	expect_adjust("-100%", ADJ_PERCENT, -100, "-100%");
	expect_adjust("+10000%", ADJ_PERCENT, 10000, "+10000%");
	expect_adjust("=5", ADJ_EXACT, 5, "=5");
	expect_adjust("=0", ADJ_EXACT, 0, "=0");
	expect_adjust("+1000000", ADJ_DELTA, 1000000, "+1000000");

	expect_adjust_err("", "expected '+', '-', '=' or digit at column 1");
	expect_adjust_err("x", "expected '+', '-', '=' or digit at column 1");
	expect_adjust_err("+", "expected digit at column 2");
	expect_adjust_err("=-1", "expected digit at column 2");
	expect_adjust_err("+-1", "expected digit at column 2");
	expect_adjust_err("+1.5", "unexpected '.' at column 3");
	expect_adjust_err("+1 2", "unexpected '2' at column 4");
	expect_adjust_err("=5%", "'=' takes a host count, not a percentage (column 3)");
	expect_adjust_err("-101%", "percent must be between -100 and 10000");
	expect_adjust_err("+10001%", "percent must be between -100 and 10000");
	expect_adjust_err("+1000001", "adjustment must be at most 1000000 hosts");
	expect_adjust_err("+99999999999999999999999", "number at column 2 is too large");
	expect_adjust_err("+0", "adjustment '+0' changes nothing");
	expect_adjust_err(" -0% ", "adjustment '-0% ' changes nothing");
}

static void
test_adjust_apply(void **state)
{
	static const struct { int kind; long long n, cur, want; } cases[] = {
		{ ADJ_DELTA, 1, 3, 4 },
		{ ADJ_DELTA, -1, 3, 2 },
		{ ADJ_DELTA, -5, 3, 0 },
		{ ADJ_EXACT, 5, 3, 5 },
		{ ADJ_EXACT, 0, 3, 0 },
		{ ADJ_PERCENT, 10, 3, 4 },     /* 0.3 -> 1 */
		{ ADJ_PERCENT, -10, 3, 2 },
		{ ADJ_PERCENT, 20, 10, 12 },   /* exact */
		{ ADJ_PERCENT, 25, 10, 13 },   /* 2.5 -> 3 */
		{ ADJ_PERCENT, -25, 10, 7 },   /* -2.5 -> -3 */
		{ ADJ_PERCENT, -50, 7, 3 },    /* -3.5 -> -4 */
		{ ADJ_PERCENT, -100, 7, 0 },
		{ ADJ_PERCENT, 100, 7, 14 },
		{ ADJ_PERCENT, 20, 0, 1 },     /* at least one host */
		{ ADJ_PERCENT, -20, 0, 0 },
		{ ADJ_PERCENT, 10000, LLONG_MAX / 2, LLONG_MAX },
		{ ADJ_DELTA, 1000000, LLONG_MAX - 5, LLONG_MAX },
		{ ADJ_PERCENT, 10, -50, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct adjust a;
		long long got;

		a.kind = cases[i].kind;
		a.n = cases[i].n;
		got = adjust_apply(&a, cases[i].cur);
		if (got != cases[i].want)
			fail_msg("case %zu: %lld, want %lld", i, got, cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expr_good),
		cmocka_unit_test(test_expr_metric_length),
		cmocka_unit_test(test_expr_bad),
		cmocka_unit_test(test_expr_holds),
		cmocka_unit_test(test_expr_names_and_format),
		cmocka_unit_test(test_adjust_parse),
		cmocka_unit_test(test_adjust_apply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
