/* test-config-cache.c - the resources generation (model/res.c) and the
 * agents' configuration cached on it (model/metrics.c), on a real SQLite
 * store: a snapshot stops being current at every resource write, one taken
 * while a write is not yet committed (or was rolled back) is never current,
 * and the configuration is computed from the store once per change, not
 * per call, with the version following the content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "store/store.h"

static char dir[64];
static struct server srv;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;
	char p[128];

	snprintf(dir, sizeof(dir), "/tmp/test-config-cache.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/herd.db", dir);
	srv.store = store_open(p, &err);
	if (srv.store == NULL)
		return -1;
	srv.push_interval_ms = 5000;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	store_close(srv.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* put: res_put of KIND SCOPE/NAME with spec JSON, or fails the test. */
static void
put(const struct kind *k, const char *scope, const char *name, const char *text)
{
	struct herr err = HERR_INIT;
	json_error_t je;
	json_t *spec = json_loads(text, 0, &je);
	bool created;

	if (spec == NULL)
		fail_msg("bad test JSON: %s", je.text);
	if (res_put(srv.store, k, scope, name, spec, "", &created, &err) < 0)
		fail_msg("put %s %s: %s", k->name, name, err.msg);
	json_decref(spec);
}

static void
test_generation(void **state)
{
	struct herr err = HERR_INIT;
	struct res_gen g, in_tx;

	res_gen_take(&g);
	/* nothing written yet in this process: a fresh snapshot is current
	 * only once the store has committed something after any write */
	put(&kind_monitor, "", "m1", "{\"name\":\"m1\",\"command\":\"true\"}");
	assert_false(res_gen_current(&g));
	res_gen_take(&g);
	assert_true(res_gen_current(&g));
	/* inside a transaction: a snapshot taken after the write, before the
	 * commit, may have read the old rows (another connection would): never
	 * current, not even after the commit */
	assert_int_equal(store_begin(srv.store, &err), 0);
	put(&kind_monitor, "", "m1", "{\"name\":\"m1\",\"command\":\"false\"}");
	res_gen_take(&in_tx);
	assert_false(res_gen_current(&in_tx));
	assert_false(res_gen_current(&g));
	assert_int_equal(store_commit(srv.store, &err), 0);
	assert_false(res_gen_current(&in_tx));
	res_gen_take(&g);
	assert_true(res_gen_current(&g));
	/* rolled back: not current until something commits (rebuilt, never stale) */
	assert_int_equal(store_begin(srv.store, &err), 0);
	put(&kind_monitor, "", "m1", "{\"name\":\"m1\",\"command\":\"echo\"}");
	store_rollback(srv.store);
	res_gen_take(&g);
	assert_false(res_gen_current(&g));
	put(&kind_monitor, "", "m2", "{\"name\":\"m2\",\"command\":\"true\"}");
	res_gen_take(&g);
	assert_true(res_gen_current(&g));
}

static json_int_t
version(void)
{
	return metrics_agent_config_version(&srv, "cc", "web");
}

static void
test_config_once_per_change(void **state)
{
	json_int_t v1, v2;
	uint64_t b;
	json_t *cfg;

	put(&kind_monitor, "", "busy", "{\"name\":\"busy\",\"command\":\"true\",\"timeout\":\"2s\"}");
	put(&kind_cluster, "", "cc", "{\"name\":\"cc\"}");
	put(&kind_template, "", "t", "{\"name\":\"t\"}");
	put(&kind_group, "cc", "web", "{\"name\":\"web\",\"template\":\"t\",\"monitors\":[\"busy\"]}");
	b = metrics_agent_config_builds();
	v1 = version();
	assert_int_equal(metrics_agent_config_builds(), b + 1);
	/* a thousand pushes later: computed once */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(version(), v1);
	assert_int_equal(metrics_agent_config_builds(), b + 1);
	/* the full configuration agrees, from the same cache */
	cfg = metrics_agent_config(&srv, "cc", "web");
	assert_int_equal(json_integer_value(json_object_get(cfg, "version")), v1);
	json_decref(cfg);
	assert_int_equal(metrics_agent_config_builds(), b + 1);
	/* a monitor changes: the next call sees it, then it is cached again */
	put(&kind_monitor, "", "busy", "{\"name\":\"busy\",\"command\":\"true\",\"timeout\":\"3s\"}");
	v2 = version();
	assert_true(v2 != v1);
	assert_int_equal(metrics_agent_config_builds(), b + 2);
	assert_int_equal(version(), v2);
	assert_int_equal(metrics_agent_config_builds(), b + 2);
	/* the version is the content's: back to the first content, first version */
	put(&kind_monitor, "", "busy", "{\"name\":\"busy\",\"command\":\"true\",\"timeout\":\"2s\"}");
	assert_int_equal(version(), v1);
	/* another group (none: no monitors) has its own slot */
	assert_true(metrics_agent_config_version(&srv, "cc", "db") != v1);
	assert_int_equal(version(), v1);
	assert_int_equal(metrics_agent_config_builds(), b + 4);
	/* the group's list changes */
	put(&kind_group, "cc", "web", "{\"name\":\"web\",\"template\":\"t\",\"monitors\":[]}");
	assert_int_equal(version(), metrics_agent_config_version(&srv, "cc", "db"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generation),
		cmocka_unit_test(test_config_once_per_change),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
