/* test-run.c - the pure parts of script runs (model/run.h): checks of a
 * run's env, what a host's result means, the state of a whole run, and
 * cutting output at a UTF-8 character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/run.h"

static int
env_check(const char *json, char *field, size_t n)
{
	struct herr err = HERR_INIT;
	json_t *env = json_loads(json, JSON_ALLOW_NUL, NULL);
	int rc;

	assert_non_null(env);
	rc = run_env_check(env, &err);
	snprintf(field, n, "%s", err.field);
	json_decref(env);
	return rc;
}

static void
test_env_ok(void **state)
{
	char f[128];

	(void)state;
	assert_int_equal(run_env_check(NULL, NULL), 0);
	assert_int_equal(env_check("{}", f, sizeof(f)), 0);
	assert_int_equal(env_check("{\"K8S_VERSION\":\"1.30\",\"_X\":\"\",\"A1\":\"$(id); `id`\"}", f,
				   sizeof(f)), 0);
}

static void
test_env_refused(void **state)
{
	char f[128], big[RUN_ENV_VALUE_MAX + 32], *many;
	size_t n = 0;

	(void)state;
	assert_int_equal(env_check("{\"1X\":\"v\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.1X");
	assert_int_equal(env_check("{\"A-B\":\"v\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.A-B");
	assert_int_equal(env_check("{\"HERD_HOST\":\"v\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.HERD_HOST");
	/* the finding: bash reads BASH_ENV before the script starts */
	assert_int_equal(env_check("{\"K\":\"v\",\"BASH_ENV\":\"$(id)\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.BASH_ENV");
	assert_int_equal(env_check("{\"LD_PRELOAD\":\"/x.so\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.LD_PRELOAD");
	assert_int_equal(env_check("{\"PATH\":\"/bin\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.PATH");
	assert_int_equal(env_check("{\"http_proxy\":\"x\"}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.http_proxy");
	assert_int_equal(env_check("{\"N\":1}", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.N");
	assert_int_equal(env_check("{\"N\":\"a\\u0000b\"}", f, sizeof(f)), HERR_INVALID);
	assert_int_equal(env_check("[\"x\"]", f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env");
	/* a value of exactly the limit passes; one byte more does not */
	snprintf(big, sizeof(big), "{\"V\":\"%0*d\"}", RUN_ENV_VALUE_MAX, 0);
	assert_int_equal(env_check(big, f, sizeof(f)), 0);
	snprintf(big, sizeof(big), "{\"V\":\"%0*d\"}", RUN_ENV_VALUE_MAX + 1, 0);
	assert_int_equal(env_check(big, f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env.V");
	/* RUN_ENV_MAX variables pass; one more does not */
	many = malloc(16 * (RUN_ENV_MAX + 2) + 4);
	n = (size_t)sprintf(many, "{");
	for (int i = 0; i <= RUN_ENV_MAX; i++)
		n += (size_t)sprintf(many + n, "%s\"V%d\":\"x\"", i ? "," : "", i);
	sprintf(many + n, "}");
	assert_int_equal(env_check(many, f, sizeof(f)), HERR_INVALID);
	assert_string_equal(f, "env");
	free(many);
}

static void
test_env_names(void **state)
{
	json_t *env = json_pack("{s:s,s:s,s:s}", "POD_CIDR", "10.244.0.0/16", "K8S_VERSION",
				"s3cr3t", "A", "x");
	char out[64], small[24];

	(void)state;
	run_env_names(env, out, sizeof(out));
	assert_string_equal(out, "A,K8S_VERSION,POD_CIDR");
	/* what does not fit is counted, never dropped silently */
	run_env_names(env, small, 23);  /* exactly fits */
	assert_string_equal(small, "A,K8S_VERSION,POD_CIDR");
	run_env_names(env, small, 22);
	assert_string_equal(small, "A,K8S_VERSION,+1 more");
	run_env_names(env, small, 16);
	assert_string_equal(small, "A,+2 more");
	json_decref(env);
	run_env_names(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

static void
test_outcome(void **state)
{
	char r[128];

	(void)state;
	assert_int_equal(run_outcome(0, 0, false, false, NULL, 1000, r, sizeof(r)), RH_SUCCEEDED);
	assert_string_equal(r, "exited with code 0");
	assert_int_equal(run_outcome(3, 0, false, false, NULL, 1000, r, sizeof(r)), RH_FAILED);
	assert_string_equal(r, "exited with code 3");
	assert_int_equal(run_outcome(-1, 9, false, false, NULL, 1000, r, sizeof(r)), RH_FAILED);
	assert_string_equal(r, "killed by signal 9");
	/* a timeout kills with a signal: it is still a timeout */
	assert_int_equal(run_outcome(-1, 15, true, false, NULL, 600000, r, sizeof(r)), RH_TIMED_OUT);
	assert_true(strncmp(r, "timed out after 10m", 19) == 0);
	assert_int_equal(run_outcome(-1, 15, false, true, NULL, 1000, r, sizeof(r)), RH_CANCELLED);
	assert_int_equal(run_outcome(-1, 0, false, false, "could not start: no such file", 1000, r,
				     sizeof(r)), RH_FAILED);
	assert_string_equal(r, "could not start: no such file");
}

static void
test_run_state(void **state)
{
	int c[RH__COUNT];

	(void)state;
	memset(c, 0, sizeof(c));
	c[RH_SUCCEEDED] = 2;
	c[RH_RUNNING] = 1;
	assert_string_equal(run_state_of(c, false), "running");
	c[RH_RUNNING] = 0;
	assert_string_equal(run_state_of(c, false), "succeeded");
	c[RH_SKIPPED] = 1;
	assert_string_equal(run_state_of(c, false), "succeeded");
	c[RH_TIMED_OUT] = 1;
	assert_string_equal(run_state_of(c, false), "failed");
	c[RH_CANCELLED] = 1;
	assert_string_equal(run_state_of(c, true), "cancelled");
	memset(c, 0, sizeof(c));
	c[RH_SKIPPED] = 3;
	assert_string_equal(run_state_of(c, false), "skipped");
	memset(c, 0, sizeof(c));
	c[RH_QUEUED] = 1;
	c[RH_CANCELLED] = 2;
	assert_string_equal(run_state_of(c, true), "running");
	assert_true(run_hstate_is_final(RH_SKIPPED));
	assert_false(run_hstate_is_final(RH_QUEUED));
	assert_int_equal(run_hstate_parse("timed_out"), RH_TIMED_OUT);
	assert_int_equal(run_hstate_parse("bogus"), RH__COUNT);
}

static void
test_utf8_cut(void **state)
{
	const char *s = "ab\xC3\xA9" "cd";   /* "abécd": é is 2 bytes at 2..3 */

	(void)state;
	assert_int_equal(run_utf8_cut(s, 6, 10), 6);
	assert_int_equal(run_utf8_cut(s, 6, 4), 4);
	assert_int_equal(run_utf8_cut(s, 6, 3), 2);  /* not in the middle of é */
	assert_int_equal(run_utf8_cut(s, 6, 2), 2);
	assert_int_equal(run_utf8_cut("\xE2\x82\xAC", 3, 2), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_ok),
		cmocka_unit_test(test_env_refused),
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_outcome),
		cmocka_unit_test(test_run_state),
		cmocka_unit_test(test_utf8_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
