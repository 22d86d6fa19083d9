/* test-run.c - script runs (model/run.h): the pure parts (checks of a
 * run's env, what a host's result means, the state of a whole run, cutting
 * output at a UTF-8 character boundary), then the stored runs on a real
 * SQLite store in a temporary directory: delivery within `parallel`, the
 * one start, output offsets, results and repeats, cancel, settling records
 * of vanished hosts, and script versions (model/script.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/res.h"
#include "model/run.h"
#include "model/script.h"
#include "store/store.h"
#include "tmpdb.h"

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

/* --- stored runs --- */

#define T0 1700000000000LL   /* a wall clock time, ms */

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-run", dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	st = store_open(path, &err);
	return st ? 0 : -1;
}

static int
teardown(void **state)
{
	store_close(st);
	tmpdb_remove(dir, path);
	return 0;
}

/* Runs one statement (store_q's arguments after err) or fails the test. */
#define SQL(...)                                                           \
	do {                                                               \
		struct herr e_ = HERR_INIT;                                \
		if (store_q(st, NULL, NULL, &e_, __VA_ARGS__) < 0)         \
			fail_msg("sql: %s", e_.msg);                       \
	} while (0)

static void
put_host(const char *id, const char *state)
{
	static int seq;

	SQL("INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network, state,"
	    " client_token, private_ip, created_ms, updated_ms)"
	    " VALUES (?, ?, 'c', 'g', ?, 't', 'a', 'n', ?, ?, ?, 1, 1)",
	    "[ssisss]", id, id, ++seq, state, id, id);
}

/* Run id of script "s" version 1 on the given hosts, all queued. */
static void
put_run(int64_t id, int parallel, int64_t timeout_ms, const char *const *hosts)
{
	SQL("INSERT OR IGNORE INTO script_versions (name, version, content, hash, interpreter,"
	    " created_ms) VALUES ('s', 1, 'echo hi', 'abc', '/bin/sh', 1)", NULL);
	SQL("INSERT INTO runs (id, script, version, hash, target_kind, target, env, timeout_ms,"
	    " parallel, created_by, created_ms, state) VALUES (?, 's', 1, 'abc', 'group', 'c/g',"
	    " '{\"A\":\"1\"}', ?, ?, 'test', 1, 'running')",
	    "[IIi]", (json_int_t)id, (json_int_t)timeout_ms, parallel);
	for (int i = 0; hosts[i]; i++) {
		char delivery[64];

		snprintf(delivery, sizeof(delivery), "%lld-%s", (long long)id, hosts[i]);
		SQL("INSERT INTO run_hosts (run_id, seq, host_id, host, cluster, grp, state, delivery)"
		    " VALUES (?, ?, ?, ?, 'c', 'g', 'queued', ?)",
		    "[Iisss]", (json_int_t)id, i, hosts[i], hosts[i], delivery);
	}
}

static void
test_deliver_start_result(void **state)
{
	static const char *const hosts[] = { "h1", "h2", NULL };
	struct herr err = HERR_INIT;
	struct run_output_in out = { "hi\n", 3, 0 }, none = { NULL, 0, -1 };
	struct run_result res = { .has_exit_code = true, .exit_code = 3, .out = "hi\n" };
	struct run_cmd *c = NULL;
	struct run_host *rh = NULL;
	struct run r;
	enum run_hstate to;
	char reason[128];
	bool cancel, repeat;
	size_t n = 0;

	(void)state;
	put_host("h1", "ready");
	put_host("h2", "ready");
	put_run(1, 1, 60000, hosts);

	/* parallel 1: h1 takes the slot, h2 waits; a lost answer is handed out again */
	assert_int_equal(run_take(st, "h1", T0 + 1000, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].delivery, "1-h1");
	assert_string_equal(c[0].content, "echo hi");
	assert_string_equal(json_string_value(json_object_get(c[0].env, "A")), "1");
	run_cmds_free(c, n);
	assert_int_equal(run_take(st, "h2", T0 + 2000, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 0);
	run_cmds_free(c, n);
	assert_int_equal(run_take(st, "h1", T0 + 3000, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 1);
	run_cmds_free(c, n);

	/* output before the start is refused; one start, its own retry, no other */
	assert_int_equal(run_output_add(st, 1, "h1", "1-h1", &out, &none, &cancel, &err),
			 HERR_CONFLICT);
	assert_int_equal(run_start(st, 1, "h1", "1-h1", "n1", T0 + 4000, &err), 0);
	assert_int_equal(run_start(st, 1, "h1", "1-h1", "n1", T0 + 4001, &err), 0);
	assert_int_equal(run_start(st, 1, "h1", "1-h1", "n2", T0 + 4002, &err), HERR_CONFLICT);
	assert_non_null(strstr(err.msg, "already running"));
	err = (struct herr)HERR_INIT;   /* store_row() tells "none" from a failure by err */
	assert_int_equal(run_start(st, 1, "hx", "1-hx", "n1", T0 + 4003, &err), HERR_NOTFOUND);

	/* output: a repeat is harmless, a gap names its field */
	err = (struct herr)HERR_INIT;
	assert_int_equal(run_output_add(st, 1, "h1", "1-h1", &out, &none, &cancel, &err), 0);
	assert_false(cancel);
	assert_int_equal(run_output_add(st, 1, "h1", "1-h1", &out, &none, &cancel, &err), 0);
	out.offset = 10;
	assert_int_equal(run_output_add(st, 1, "h1", "1-h1", &out, &none, &cancel, &err),
			 HERR_CONFLICT);
	assert_string_equal(err.field, "stdout_offset");

	/* the result; then a repeat changes nothing */
	err = (struct herr)HERR_INIT;
	assert_int_equal(run_result_record(st, 1, "h1", "1-h1", &res, T0 + 5000, &to, &repeat, reason,
					   sizeof(reason), &err), 0);
	assert_int_equal(to, RH_FAILED);
	assert_false(repeat);
	assert_string_equal(reason, "exited with code 3");
	res.exit_code = 0;
	assert_int_equal(run_result_record(st, 1, "h1", "1-h1", &res, T0 + 6000, &to, &repeat, reason,
					   sizeof(reason), &err), 0);
	assert_true(repeat);
	assert_int_equal(to, RH_FAILED);

	/* the slot is free: h2 gets its delivery */
	assert_int_equal(run_take(st, "h2", T0 + 7000, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 1);
	run_cmds_free(c, n);

	assert_int_equal(run_get(st, 1, &r, &err), 0);
	assert_string_equal(r.state, "running");
	assert_int_equal(r.counts[RH_FAILED], 1);
	assert_int_equal(r.counts[RH_QUEUED], 1);
	assert_string_equal(r.target, "c/g");
	run_release(&r);

	assert_int_equal(run_hosts_get(st, 1, "h1", -1, 0, true, &rh, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rh[0].exit_code, 3);
	assert_int_equal(rh[0].started_ms, T0 + 4000);
	assert_int_equal(rh[0].ended_ms, T0 + 5000);
	assert_string_equal(rh[0].stdout_text, "hi\n");
	run_hosts_free(rh, n);
	err = (struct herr)HERR_INIT;
	assert_int_equal(run_get(st, 99, &r, &err), HERR_NOTFOUND);
}

static void
test_cancel(void **state)
{
	static const char *const hosts[] = { "c1", "c2", NULL };
	struct herr err = HERR_INIT;
	struct run_output_in none = { NULL, 0, -1 };
	struct run r;
	int64_t n = 0;
	bool cancel;
	char s[16];

	(void)state;
	put_host("c1", "ready");
	put_host("c2", "ready");
	put_run(2, 0, 60000, hosts);
	assert_int_equal(run_start(st, 2, "c1", "2-c1", "", 1000, &err), 0);
	assert_int_equal(run_cancel(st, 2, 2000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(run_output_add(st, 2, "c1", "2-c1", &none, &none, &cancel, &err), 0);
	assert_true(cancel);
	assert_int_equal(run_get(st, 2, &r, &err), 0);
	assert_true(r.cancel_requested);
	assert_int_equal(r.counts[RH_CANCELLED], 1);
	assert_string_equal(r.state, "running");   /* c1 still runs */
	run_release(&r);

	/* an ended run cannot be cancelled; a drain's request is then a no-op */
	SQL("UPDATE runs SET state = 'succeeded' WHERE id = 2", NULL);
	assert_int_equal(run_cancel(st, 2, 3000, &n, &err), HERR_CONFLICT);
	assert_int_equal(run_cancel_request(st, 2, &err), 0);
	assert_int_equal(run_state_get(st, 2, s, sizeof(s), &err), 0);
	assert_string_equal(s, "succeeded");
	err = (struct herr)HERR_INIT;
	assert_int_equal(run_cancel(st, 98, 3000, &n, &err), HERR_NOTFOUND);
}

static void
test_settle(void **state)
{
	static const char *const hosts[] = { "s1", "s2", "s3", NULL };
	struct herr err = HERR_INIT;
	struct run_host rh;
	struct run *runs = NULL;
	struct run_filter f = { .host = "s1", .limit = 10 };
	int64_t n = 0;
	size_t nr = 0;

	(void)state;
	put_host("s1", "terminated");
	put_host("s2", "terminated");
	put_host("s3", "ready");
	put_run(3, 0, 1000, hosts);
	assert_int_equal(run_start(st, 3, "s2", "3-s2", "", 1000, &err), 0);
	assert_int_equal(run_start(st, 3, "s3", "3-s3", "", 1000, &err), 0);

	/* s1 queued -> skipped, s2 running -> failed; s3 is within its timeout */
	assert_int_equal(runs_settle(st, 2000, 60000, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(run_host_get(st, 3, "s1", &rh, &err), 0);
	assert_int_equal(rh.state, RH_SKIPPED);
	run_host_release(&rh);
	assert_int_equal(run_host_get(st, 3, "s2", &rh, &err), 0);
	assert_int_equal(rh.state, RH_FAILED);
	assert_string_equal(rh.reason, "the host was terminated while the script ran");
	run_host_release(&rh);
	assert_int_equal(runs_settle(st, 3000, 60000, &n, &err), 0);
	assert_int_equal(n, 0);

	/* s3 silent past timeout + grace: timed out, and the run has ended */
	assert_int_equal(runs_settle(st, 1000 + 1000 + 60001, 60000, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(run_host_get(st, 3, "s3", &rh, &err), 0);
	assert_int_equal(rh.state, RH_TIMED_OUT);
	run_host_release(&rh);

	assert_int_equal(run_list(st, &f, &runs, &nr, &err), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(runs[0].id, 3);
	assert_string_equal(runs[0].state, "failed");
	assert_int_equal(runs[0].counts[RH_TIMED_OUT], 1);
	runs_free(runs, nr);
	assert_int_equal(run_host_get(st, 3, "nope", &rh, &err), HERR_NOTFOUND);
}

static void
test_script_versions(void **state)
{
	struct herr err = HERR_INIT;
	json_t *spec = json_pack("{s:s,s:s,s:s}", "content", "echo 1", "hash", "h1",
				 "interpreter", "/bin/sh");
	json_t *rows = NULL;

	(void)state;
	assert_int_equal(script_store_version(st, "v", spec, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(spec, "latest")), 1);
	/* the same content is no new version */
	assert_int_equal(script_store_version(st, "v", spec, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(spec, "latest")), 1);
	json_object_set_new(spec, "hash", json_string("h2"));
	assert_int_equal(script_store_version(st, "v", spec, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(spec, "latest")), 2);
	assert_int_equal(script_versions_list(st, "v", &rows, &err), 0);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "hash")), "h2");
	json_decref(rows);
	assert_int_equal(script_versions_list(st, "none", &rows, &err), HERR_NOTFOUND);
	assert_null(rows);
	json_decref(spec);
}

/* A rolling run's records (run_roll_apply): a waiting host is not handed
 * out, a released one is; a host in its gate keeps the run running; the
 * hosts a draining run keeps out (run_rolling_out); a held host of a
 * stopped run goes back with a cancel. */
static void
test_rolling(void **state)
{
	static const char *const hosts[] = { "r1", "r2", NULL };
	struct herr err = HERR_INIT;
	struct run_cmd *c = NULL;
	struct run_host *rh = NULL;
	json_t *out = NULL;
	int64_t *ids = NULL, n0 = 0;
	size_t n = 0;
	char s[16];

	(void)state;
	put_host("r1", "ready");
	put_host("r2", "ready");
	put_run(3, 0, 60000, hosts);
	SQL("UPDATE runs SET batch = 1, drain = 1, stop_on_failure = 1 WHERE id = 3", NULL);
	SQL("UPDATE run_hosts SET phase = 'wait', batch = seq WHERE run_id = 3", NULL);
	assert_int_equal(run_rolling_ids(st, &ids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 3);
	free(ids);

	/* waiting, then draining: not handed out, and kept out of the LB */
	assert_int_equal(run_take(st, "r1", T0, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 0);
	run_cmds_free(c, n);
	struct run_roll_step drain = { "r1", RP_DRAIN, T0, 0, RH__COUNT, NULL };
	assert_int_equal(run_roll_apply(st, 3, &drain, 1, T0, &err), 0);
	assert_int_equal(run_rolling_out(st, &out, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(out, "r1")), 3);
	assert_null(json_object_get(out, "r2"));
	json_decref(out);
	assert_int_equal(run_take(st, "r1", T0, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 0);
	run_cmds_free(c, n);

	/* released: handed out */
	struct run_roll_step go = { "r1", RP_RUN, T0 + 1000, 0, RH__COUNT, NULL };
	assert_int_equal(run_roll_apply(st, 3, &go, 1, T0 + 1000, &err), 0);
	assert_int_equal(run_take(st, "r1", T0 + 1000, 60000, 16, &c, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].delivery, "3-r1");
	run_cmds_free(c, n);

	/* its script succeeded, r2 skipped: the gate keeps the run running */
	SQL("UPDATE run_hosts SET state = 'succeeded' WHERE run_id = 3 AND host_id = 'r1'", NULL);
	struct run_roll_step steps[] = {
		{ "r1", RP_GATE, T0 + 2000, 0, RH__COUNT, NULL },
		{ "r2", RP_NONE, T0 + 2000, 0, RH_SKIPPED, "not run" },
	};
	assert_int_equal(run_roll_apply(st, 3, steps, 2, T0 + 2000, &err), 0);
	assert_int_equal(run_state_get(st, 3, s, sizeof(s), &err), 0);
	assert_string_equal(s, "running");
	assert_int_equal(run_hosts_get(st, 3, "", -1, 0, false, &rh, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rh[0].phase, RP_GATE);
	assert_int_equal(rh[0].phase_ms, T0 + 2000);
	assert_int_equal(rh[1].state, RH_SKIPPED);
	assert_string_equal(rh[1].reason, "not run");
	assert_int_equal(rh[1].batch, 1);
	run_hosts_free(rh, n);

	/* the gate fails: held out, the run ends failed; a cancel lets it back */
	struct run_roll_step held = { "r1", RP_HELD, T0 + 3000, 0, RH_FAILED, "health gate failed" };
	assert_int_equal(run_roll_apply(st, 3, &held, 1, T0 + 3000, &err), 0);
	assert_int_equal(run_state_get(st, 3, s, sizeof(s), &err), 0);
	assert_string_equal(s, "failed");
	assert_int_equal(run_rolling_out(st, &out, &err), 0);
	assert_non_null(json_object_get(out, "r1"));
	json_decref(out);
	assert_int_equal(run_cancel(st, 3, T0 + 4000, &n0, &err), 0);
	assert_int_equal(run_rolling_out(st, &out, &err), 0);
	assert_int_equal(json_object_size(out), 0);
	json_decref(out);
	/* nothing held any more: an ended run */
	assert_int_equal(run_cancel(st, 3, T0 + 5000, &n0, &err), HERR_CONFLICT);
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
		cmocka_unit_test_setup_teardown(test_deliver_start_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolling, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
