/* test-lb-spec.c - lb_spec_from_json() and lb_health_path_valid(): the one
 * check of an LB spec that both the LB API (at the door) and the controller
 * and haproxy driver (when writing the configuration) use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lb/lb.h"

static void
test_health_path(void **state)
{
	char long_path[300];

	assert_true(lb_health_path_valid("/"));
	assert_true(lb_health_path_valid("/healthz"));
	assert_true(lb_health_path_valid("/healthz?x=1&y=%20"));
	assert_false(lb_health_path_valid(NULL));
	assert_false(lb_health_path_valid(""));
	assert_false(lb_health_path_valid("healthz"));
	assert_false(lb_health_path_valid("/a b#x"));
	assert_false(lb_health_path_valid("/a#x"));
	assert_false(lb_health_path_valid("/a\"x"));
	assert_false(lb_health_path_valid("/a'x"));
	assert_false(lb_health_path_valid("/a\\x"));
	assert_false(lb_health_path_valid("/a\tx"));
	assert_false(lb_health_path_valid("/a\n\tserver evil 1.2.3.4:80"));
	assert_false(lb_health_path_valid("/\xc3\xa9"));
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_false(lb_health_path_valid(long_path));
	long_path[255] = '\0';
	assert_true(lb_health_path_valid(long_path));
}

/* Parses {"listen":..., "backend_port":8080, "health_check":{"interval":IV}}. */
static int
spec_with(const char *listen, const char *interval, const char *drain, struct lb_spec *sp,
	  struct herr *err)
{
	json_t *j = json_pack("{s:s,s:i,s:{s:s}}", "listen", listen, "backend_port", 8080,
			      "health_check", "type", "tcp");
	int rc;

	if (interval)
		json_object_set_new(json_object_get(j, "health_check"), "interval", json_string(interval));
	if (drain)
		json_object_set_new(j, "drain_timeout", json_string(drain));
	rc = lb_spec_from_json("web", j, sp, err);
	json_decref(j);
	return rc;
}

static void
test_spec_durations(void **state)
{
	struct herr err = HERR_INIT;
	struct lb_spec sp;

	assert_int_equal(spec_with("127.0.0.1:8080", NULL, NULL, &sp, &err), 0);
	assert_int_equal(sp.check.interval_ms, LB_DEFAULT_CHECK_MS);
	assert_int_equal(sp.drain_timeout_ms, LB_DEFAULT_DRAIN_MS);
	assert_int_equal(spec_with("127.0.0.1:8080", "1m", "1m30s", &sp, &err), 0);
	assert_int_equal(sp.check.interval_ms, 60000);
	assert_int_equal(sp.drain_timeout_ms, 90000);
	assert_int_equal(spec_with("127.0.0.1:8080", "bogus", NULL, &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "health_check.interval");
	herr_clear(&err);
	assert_int_equal(spec_with("127.0.0.1:8080", "10ms", NULL, &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "health_check.interval");
	herr_clear(&err);
	assert_int_equal(spec_with("127.0.0.1:8080", NULL, "nan", &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "drain_timeout");
	herr_clear(&err);
	assert_int_equal(spec_with("127.0.0.1:8080", NULL, "2h", &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "drain_timeout");
	herr_clear(&err);
	assert_int_equal(spec_with("127.0.0.1: 80", NULL, NULL, &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "listen");
}

/* eip: "auto" or an "eip-..." id, kept in the spec with the network. */
static void
test_spec_eip(void **state)
{
	static const char *const good[] = { "auto", "eip-abc123", "eip-0" };
	static const char *const bad[] = { "", "Auto", "1.2.3.4", "eip-", "eip-ABC", "eip-a b",
					   "eip-0123456789abcdef012345678" };
	struct herr err = HERR_INIT;
	struct lb_spec sp;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		j = json_pack("{s:s, s:s, s:i, s:s}", "network", "n1", "listen", "0.0.0.0:80",
			      "backend_port", 80, "eip", good[i]);
		assert_int_equal(lb_spec_from_json("web", j, &sp, &err), 0);
		assert_string_equal(sp.eip, good[i]);
		assert_string_equal(sp.network, "n1");
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		herr_clear(&err);
		j = json_pack("{s:s, s:i, s:s}", "listen", "0.0.0.0:80", "backend_port", 80, "eip",
			      bad[i]);
		assert_int_equal(lb_spec_from_json("web", j, &sp, &err), HERR_INVALID);
		assert_string_equal(err.field, "eip");
		json_decref(j);
	}
	/* no eip: a private LB */
	j = json_pack("{s:s, s:i}", "listen", "0.0.0.0:80", "backend_port", 80);
	assert_int_equal(lb_spec_from_json("web", j, &sp, &err), 0);
	assert_string_equal(sp.eip, "");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_path),
		cmocka_unit_test(test_spec_durations),
		cmocka_unit_test(test_spec_eip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
