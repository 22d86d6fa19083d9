/* test-group-model.c - the typed group, template, network and account of
 * the model (model/group.c, template.c, network.c, account.c): stored specs
 * with and without their optional fields (the kinds' defaults), specs
 * written around the API (a wrong type is an error naming the field, never
 * a crash), the bound on after[], and group_get/template_get/network_get on
 * a real SQLite store in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/account.h"
#include "model/group.h"
#include "model/network.h"
#include "model/res.h"
#include "model/template.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-group-model", dir, sizeof(dir), path, sizeof(path)) < 0)
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

static json_t *
spec(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

/* Only the required template: every other field takes its default. */
static void
test_group_defaults(void **state)
{
	struct herr err = HERR_INIT;
	struct group *g = calloc(1, sizeof(*g));
	json_t *j = spec("{\"template\":\"web\"}");

	assert_int_equal(group_from_spec("prod", "web", j, g, &err), 0);
	assert_string_equal(g->cluster, "prod");
	assert_string_equal(g->name, "web");
	assert_string_equal(g->template_, "web");
	assert_int_equal(g->desired, -1);   /* absent: unknown, never 0 */
	assert_int_equal(g->min, -1);
	assert_int_equal(g->max, -1);
	assert_int_equal(g->nafter, 0);
	assert_string_equal(g->termination, "");
	assert_int_equal(g->warmup_ms, 0);
	assert_int_equal(g->max_provision_ms, GROUP_DEFAULT_PROVISION_MS);
	assert_int_equal(g->unhealthy_after_ms, GROUP_DEFAULT_UNHEALTHY_MS);
	assert_int_equal(g->max_unhealthy_pct, 34);
	assert_int_equal(g->max_actions_per_hour, 0);
	json_decref(j);
	free(g);
}

/* Every field given, durations parsed once; unknown and output-only
 * fields (labels, hosts) are ignored; sizes clamped. */
static void
test_group_full(void **state)
{
	struct herr err = HERR_INIT;
	struct group *g = calloc(1, sizeof(*g));
	json_t *j = spec("{\"template\":\"t1\",\"desired\":3,\"min\":1,\"max\":9,"
			 "\"after\":[\"db\",\"cache\"],\"termination\":\"least:cpu_pct\","
			 "\"warmup\":\"90s\",\"max_provision_time\":\"2m\",\"unhealthy_after\":\"500ms\","
			 "\"max_unhealthy\":50,\"max_actions_per_hour\":6,\"labels\":{\"a\":\"b\"},"
			 "\"hosts\":{}}");

	assert_int_equal(group_from_spec("c", "g", j, g, &err), 0);
	assert_string_equal(g->template_, "t1");
	assert_int_equal(g->desired, 3);
	assert_int_equal(g->min, 1);
	assert_int_equal(g->max, 9);
	assert_int_equal(g->nafter, 2);
	assert_string_equal(g->after[0], "db");
	assert_string_equal(g->after[1], "cache");
	assert_string_equal(g->termination, "least:cpu_pct");
	assert_int_equal(g->warmup_ms, 90000);
	assert_int_equal(g->max_provision_ms, 120000);
	assert_int_equal(g->unhealthy_after_ms, 500);
	assert_int_equal(g->max_unhealthy_pct, 50);
	assert_int_equal(g->max_actions_per_hour, 6);
	json_decref(j);

	/* written around the API: out of int's range is clamped, never wrapped */
	j = spec("{\"desired\":-5,\"max\":99999999999}");
	assert_int_equal(group_from_spec("c", "g", j, g, &err), 0);
	assert_int_equal(g->desired, 0);
	assert_int_equal(g->max, 2147483647);
	json_decref(j);
	free(g);
}

/* A wrong type names its field; a bad duration too; never a crash. */
static void
test_group_invalid(void **state)
{
	static const struct {
		const char *spec, *field;
	} cases[] = {
		{ "{\"desired\":\"3\"}", "desired" },
		{ "{\"template\":7}", "template" },
		{ "{\"min\":1,\"max\":true}", "max" },
		{ "{\"termination\":[]}", "termination" },
		{ "{\"warmup\":10}", "warmup" },
		{ "{\"unhealthy_after\":\"soon\"}", "unhealthy_after" },
		{ "{\"after\":\"db\"}", "after" },
		{ "{\"after\":[\"db\",3]}", "after[1]" },
		{ "{\"max_unhealthy\":1.5}", "max_unhealthy" },
	};
	struct group *g = calloc(1, sizeof(*g));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct herr err = HERR_INIT;
		json_t *j = spec(cases[i].spec);

		assert_int_equal(group_from_spec("c", "g", j, g, &err), HERR_STORE);
		assert_string_equal(err.field, cases[i].field);
		assert_non_null(strstr(err.msg, "group 'c/g'"));
		json_decref(j);
	}
	{
		struct herr err = HERR_INIT;
		json_t *j = json_array();
		assert_int_equal(group_from_spec("c", "g", j, g, &err), HERR_STORE);
		json_decref(j);
	}
	free(g);
}

/* after[] holds GROUP_AFTER_MAX names; one more is refused, and a name
 * longer than a name can be too. */
static void
test_group_after_bound(void **state)
{
	struct group *g = calloc(1, sizeof(*g));
	json_t *j = json_object(), *after = json_array();
	struct herr err = HERR_INIT;
	char n[80];

	json_object_set_new(j, "after", after);
	for (int i = 0; i < GROUP_AFTER_MAX; i++) {
		snprintf(n, sizeof(n), "g%d", i);
		json_array_append_new(after, json_string(n));
	}
	assert_int_equal(group_from_spec("c", "g", j, g, &err), 0);
	assert_int_equal(g->nafter, GROUP_AFTER_MAX);
	assert_string_equal(g->after[GROUP_AFTER_MAX - 1], "g99");
	json_array_append_new(after, json_string("one-more"));
	assert_int_equal(group_from_spec("c", "g", j, g, &err), HERR_STORE);
	assert_string_equal(err.field, "after");
	json_array_clear(after);
	memset(n, 'a', sizeof(n) - 1);
	n[sizeof(n) - 1] = '\0';
	json_array_append_new(after, json_string(n));
	herr_clear(&err);
	assert_int_equal(group_from_spec("c", "g", j, g, &err), HERR_STORE);
	assert_string_equal(err.field, "after[0]");
	json_decref(j);
	free(g);
}

static void
test_template(void **state)
{
	struct template_spec *t = calloc(1, sizeof(*t));
	struct herr err = HERR_INIT;
	json_t *j = spec("{\"account\":\"a\",\"network\":\"n\"}");

	assert_int_equal(template_from_spec("t", j, t, &err), 0);
	assert_string_equal(t->name, "t");
	assert_string_equal(t->account, "a");
	assert_string_equal(t->network, "n");
	assert_string_equal(t->load_balancer, "");
	assert_string_equal(t->image, "");
	assert_int_equal(t->ninit, 0);
	assert_int_equal(t->cpu, 0);
	assert_int_equal(t->memory_mb, 0);
	assert_int_equal(t->limit_memory_mb, 0);
	assert_int_equal(t->limit_cpu_pct, 0);
	assert_int_equal(t->init_timeout_ms, 0);
	json_decref(j);

	j = spec("{\"account\":\"a\",\"network\":\"n\",\"init\":[\"base\",\"web\"],"
		 "\"load_balancer\":\"front\",\"image\":\"img-1\",\"instance_type\":\"c1m2\","
		 "\"cpu\":2,\"memory\":2048,\"keypair\":\"kp\",\"security_group\":\"sg\","
		 "\"limit_memory_mb\":256,\"limit_cpu_pct\":150,\"init_timeout\":\"10m\","
		 "\"labels\":{},\"description\":\"x\"}");
	assert_int_equal(template_from_spec("t", j, t, &err), 0);
	assert_int_equal(t->ninit, 2);
	assert_string_equal(t->init[1], "web");
	assert_string_equal(t->load_balancer, "front");
	assert_string_equal(t->image, "img-1");
	assert_string_equal(t->instance_type, "c1m2");
	assert_int_equal(t->cpu, 2);
	assert_int_equal(t->memory_mb, 2048);
	assert_string_equal(t->keypair, "kp");
	assert_string_equal(t->security_group, "sg");
	assert_int_equal(t->limit_memory_mb, 256);
	assert_int_equal(t->limit_cpu_pct, 150);
	assert_int_equal(t->init_timeout_ms, 600000);
	json_decref(j);

	j = spec("{\"account\":\"a\",\"network\":\"n\",\"cpu\":\"2\"}");
	assert_int_equal(template_from_spec("t", j, t, &err), HERR_STORE);
	assert_string_equal(err.field, "cpu");
	json_decref(j);
	j = spec("{\"account\":\"a\",\"init\":[null]}");
	herr_clear(&err);
	assert_int_equal(template_from_spec("t", j, t, &err), HERR_STORE);
	assert_string_equal(err.field, "init[0]");
	json_decref(j);
	j = spec("{\"init_timeout\":\"forever\"}");
	herr_clear(&err);
	assert_int_equal(template_from_spec("t", j, t, &err), HERR_STORE);
	assert_string_equal(err.field, "init_timeout");
	json_decref(j);
	free(t);
}

static void
test_network(void **state)
{
	struct network_spec n;
	struct herr err = HERR_INIT;
	json_t *j = spec("{\"account\":\"a\",\"cidr\":\"198.18.7.0/24\",\"vxnet\":\"v\"}");

	assert_int_equal(network_from_spec("n", j, &n, &err), 0);
	assert_string_equal(n.account, "a");
	assert_string_equal(n.cidr, "198.18.7.0/24");
	json_decref(j);
	j = spec("{\"account\":\"a\",\"cidr\":24}");
	assert_int_equal(network_from_spec("n", j, &n, &err), HERR_STORE);
	assert_string_equal(err.field, "cidr");
	json_decref(j);
}

static void
test_account(void **state)
{
	struct account_spec a;
	struct herr err = HERR_INIT;
	json_t *j = spec("{\"driver\":\"qingcloud\",\"zone\":\"pek3\","
			 "\"server_url\":\"https://herd.example:8443/\"}");

	assert_int_equal(account_from_spec("qc", j, &a, &err), 0);
	assert_string_equal(a.name, "qc");
	assert_string_equal(a.driver, "qingcloud");
	assert_string_equal(a.server_url, "https://herd.example:8443/");
	json_decref(j);
	j = spec("{\"driver\":\"local\"}");
	assert_int_equal(account_from_spec("l", j, &a, &err), 0);
	assert_string_equal(a.server_url, "");
	json_decref(j);
	j = spec("{\"driver\":[\"local\"]}");
	assert_int_equal(account_from_spec("l", j, &a, &err), HERR_STORE);
	assert_string_equal(err.field, "driver");
	json_decref(j);
}

/* The *_get functions read what the store holds (specs put directly,
 * as res_put does after the kind's checks). */
static void
test_get(void **state)
{
	struct herr err = HERR_INIT;
	struct group *g = calloc(1, sizeof(*g));
	struct template_spec *t = calloc(1, sizeof(*t));
	struct network_spec n;
	bool created;
	json_t *j;

	j = spec("{\"driver\":\"local\"}");
	assert_int_equal(res_put(st, &kind_account, "", "acc", j, "", &created, &err), 0);
	json_decref(j);
	j = spec("{\"account\":\"acc\",\"cidr\":\"198.18.9.0/24\"}");
	assert_int_equal(res_put(st, &kind_network, "", "net", j, "", &created, &err), 0);
	json_decref(j);
	j = spec("{\"account\":\"acc\",\"network\":\"net\",\"limit_cpu_pct\":50}");
	assert_int_equal(res_put(st, &kind_template, "", "tpl", j, "", &created, &err), 0);
	json_decref(j);
	j = spec("{}");
	assert_int_equal(res_put(st, &kind_cluster, "", "prod", j, "", &created, &err), 0);
	json_decref(j);
	j = spec("{\"template\":\"tpl\",\"desired\":2,\"min\":0,\"max\":5,\"warmup\":\"1m\"}");
	assert_int_equal(res_put(st, &kind_group, "prod", "web", j, "", &created, &err), 0);
	json_decref(j);

	assert_int_equal(group_get(st, "prod", "web", g, &err), 0);
	assert_string_equal(g->cluster, "prod");
	assert_string_equal(g->template_, "tpl");
	assert_int_equal(g->desired, 2);
	assert_int_equal(g->warmup_ms, 60000);
	assert_int_equal(template_get(st, "tpl", t, &err), 0);
	assert_string_equal(t->network, "net");
	assert_int_equal(t->limit_cpu_pct, 50);
	assert_int_equal(network_get(st, "net", &n, &err), 0);
	assert_string_equal(n.cidr, "198.18.9.0/24");
	assert_int_equal(group_get(st, "prod", "nosuch", g, &err), HERR_NOTFOUND);
	assert_int_equal(template_get(st, "nosuch", t, &err), HERR_NOTFOUND);
	assert_int_equal(network_get(st, "nosuch", &n, &err), HERR_NOTFOUND);
	free(g);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_defaults),
		cmocka_unit_test(test_group_full),
		cmocka_unit_test(test_group_invalid),
		cmocka_unit_test(test_group_after_bound),
		cmocka_unit_test(test_template),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_account),
		cmocka_unit_test(test_get),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
