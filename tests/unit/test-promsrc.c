/* test-promsrc.c - PromQL as a policy metric source: the instant query's
 * answer read as one number or as unknown (and why), the policy fields
 * (source, url, query, `query OP N`) refused naming the field, and the
 * kept results as the autoscaler's aggregate steps, through the pure
 * decision: an unknown round is no data, never a scale-in. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/promsrc.h"
#include "model/policy.h"
#include "scale/scale.h"

static void
expect_known(const char *body, double want)
{
	char why[PROMSRC_WHY_MAX] = "";
	double v = NAN;

	if (promsrc_answer_parse(body, strlen(body), &v, why, sizeof(why)) != 0)
		fail_msg("'%s': unknown (%s)", body, why);
	if (v != want)
		fail_msg("'%s': %.17g, want %.17g", body, v, want);
}

static void
expect_unknown(const char *body, const char *why_has)
{
	char why[PROMSRC_WHY_MAX] = "";
	double v;

	if (promsrc_answer_parse(body, strlen(body), &v, why, sizeof(why)) == 0)
		fail_msg("'%s': known (%g)", body, v);
	if (strstr(why, why_has) == NULL)
		fail_msg("'%s': why '%s' lacks '%s'", body, why, why_has);
}

static void
test_answers(void **state)
{
	(void)state;
	expect_known("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
		     "[{\"metric\":{},\"value\":[1700000000.123,\"12.5\"]}]}}", 12.5);
	expect_known("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
		     "[1700000000,\"-3\"]}}", -3);
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
		       "empty vector");
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
		       "[{\"metric\":{\"a\":\"1\"},\"value\":[1,\"1\"]},"
		       "{\"metric\":{\"a\":\"2\"},\"value\":[1,\"2\"]}]}}",
		       "2 series where one is expected");
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
		       "[{\"metric\":{},\"value\":[1,\"NaN\"]}]}}", "NaN");
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
		       "[{\"metric\":{},\"value\":[1,\"+Inf\"]}]}}", "+Inf");
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
		       "matrix");
	expect_unknown("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}",
		       "parse error");
	expect_unknown("<html>", "not JSON");
	expect_unknown("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
		       "[{\"metric\":{},\"value\":[1,\"12abc\"]}]}}", "not a number");
}

static json_t *
spec(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);

	if (j == NULL)
		fail_msg("bad test JSON '%s': %s", text, e.text);
	return j;
}

static void
expect_field(const char *text, const char *field)
{
	struct herr err = HERR_INIT;
	struct policy p;
	json_t *j = spec(text);

	if (policy_parse("p", j, &p, &err) != HERR_INVALID)
		fail_msg("'%s' parsed", text);
	if (strcmp(err.field, field) != 0)
		fail_msg("'%s': field '%s' (%s), want '%s'", text, err.field, err.msg, field);
	json_decref(j);
}

static void
test_policy_fields(void **state)
{
	struct herr err = HERR_INIT;
	struct policy p;
	char t[EXPR_TEXT_MAX + 16];
	json_t *j;

	(void)state;
	j = spec("{\"source\":\"prometheus\",\"url\":\"http://127.0.0.1:9090/\","
		 "\"query\":\"sum(rate(x[1m]))\",\"when\":\"query > 100\",\"adjust\":1}");
	assert_int_equal(policy_parse("p", j, &p, &err), 0);
	assert_string_equal(p.prom_url, "http://127.0.0.1:9090");
	assert_string_equal(p.prom_query, "sum(rate(x[1m]))");
	assert_int_equal(p.cond.op, OP_GT);
	assert_true(p.cond.value == 100);
	policy_cond_format(&p, t, sizeof(t));
	assert_string_equal(t, "query > 100");
	{
		struct policy_threshold th[POLICY_THRESHOLDS_MAX];
		assert_int_equal(policy_thresholds(&p, th), 0);
	}
	json_decref(j);
	j = spec("{\"source\":\"prometheus\",\"url\":\"https://prom.example/prom\","
		 "\"query\":\"q\",\"target\":\"query = 50\"}");
	assert_int_equal(policy_parse("p", j, &p, &err), 0);
	assert_int_equal(p.kind, POL_TARGET);
	assert_int_equal(p.cond.agg, AGG_AVG);
	json_decref(j);
	expect_field("{\"source\":\"graphite\",\"url\":\"http://a\",\"query\":\"q\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "source");
	expect_field("{\"url\":\"http://a\",\"query\":\"q\",\"when\":\"query > 1\",\"adjust\":1}",
		     "source");
	expect_field("{\"source\":\"prometheus\",\"url\":\"ftp://a\",\"query\":\"q\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "url");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://\",\"query\":\"q\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "url");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a/?x=1\",\"query\":\"q\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "url");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "query");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"q\\u0000x\","
		     "\"when\":\"query > 1\",\"adjust\":1}", "query");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"q\","
		     "\"when\":\"avg(busy) > 1\",\"adjust\":1}", "when");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"q\","
		     "\"target\":\"query > 1\"}", "target");
	expect_field("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"q\","
		     "\"schedule\":\"0 9 * * *\",\"set\":{\"min\":1}}", "source");
	/* a query longer than the limit */
	{
		char big[POLICY_PROM_QUERY_MAX + 200];
		int k = snprintf(big, sizeof(big), "{\"source\":\"prometheus\",\"url\":\"http://a\","
				 "\"when\":\"query > 1\",\"adjust\":1,\"query\":\"");
		memset(big + k, 'x', POLICY_PROM_QUERY_MAX + 1);
		snprintf(big + k + POLICY_PROM_QUERY_MAX + 1, sizeof(big) - (size_t)k -
			 POLICY_PROM_QUERY_MAX - 1, "\"}");
		expect_field(big, "query");
	}
}

/* No results yet: every step has no data, and a scale-in policy does not act. */
static void
test_unknown_never_scales_in(void **state)
{
	struct herr err = HERR_INIT;
	struct policy p;
	struct promsrc_ctx c = { "cl", "gr", 3 };
	struct group_view g = { .desired = 3, .min = 1, .max = 5, .ready = 3 };
	struct agg_point *pts = NULL;
	struct decision d;
	size_t n = 0;
	json_t *j = spec("{\"source\":\"prometheus\",\"url\":\"http://a\",\"query\":\"q\","
			 "\"when\":\"query < 5\",\"adjust\":-1}");
	int64_t now = 1700000002000;

	(void)state;
	assert_int_equal(policy_parse("p", j, &p, &err), 0);
	assert_int_equal(promsrc_agg(&c, &p, now, 15000, 5000, NULL, 0, &pts, &n, &err), 0);
	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pts[i].nseries, 0);
		assert_int_equal(pts[i].ts_ms % 5000, 0);
	}
	assert_true(pts[n - 1].ts_ms <= now);
	policy_decide(&p, &g, pts, n, 5000, 15000, now, now, &d);
	assert_int_equal(d.kind, DEC_NODATA);
	assert_int_equal(d.desired, 3);
	free(pts);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_policy_fields),
		cmocka_unit_test(test_unknown_never_scales_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
