/* test-kind.c - the kind engine (model/kind.c) and the kinds' checks
 * (model/kind-<name>.c): lookup, field-table validation and defaults,
 * references; the LB health check path is one rule, so what the API takes
 * is exactly what the HAProxy driver writes; and apply's model reads
 * (res_names, host_count_live) on a real SQLite store in a temp dir. */
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

#include "buf.h"
#include "lb/lb.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/res.h"
#include "store/store.h"
#include "tmpdb.h"

static char dir[64], path[128];
static struct store *st;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;

	if (tmpdb_make("test-kind", dir, sizeof(dir), path, sizeof(path)) < 0)
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

static void
test_find(void **state)
{
	int n = 0;

	for (; kinds[n]; n++)
		assert_non_null(kinds[n]->fields);
	assert_int_equal(n, 11);
	assert_ptr_equal(kind_find("group"), &kind_group);
	assert_ptr_equal(kind_find("policies"), &kind_policy);
	assert_ptr_equal(kind_find("lbs"), &kind_lb);
	assert_ptr_equal(kind_find("loadbalancer"), &kind_lb);
	assert_ptr_equal(kind_find("receivers"), &kind_receiver);
	assert_ptr_equal(kind_find("remote_writes"), &kind_remote_write);
	assert_null(kind_find("nosuch"));
}

static void
test_validate(void **state)
{
	struct herr err = HERR_INIT;
	json_t *o;

	/* group: size sets desired; min and max get their defaults */
	o = json_pack("{s:s,s:i}", "template", "t", "size", 3);
	assert_int_equal(kind_validate(&kind_group, o, NULL, "", &err), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "desired")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "min")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "max")), 100);
	json_decref(o);
	/* errors name the field under the path */
	o = json_pack("{s:s,s:i}", "template", "t", "sise", 3);
	assert_int_equal(kind_validate(&kind_group, o, NULL, "groups[0]", &err), HERR_INVALID);
	assert_string_equal(err.field, "groups[0].sise");
	json_decref(o);
	herr_clear(&err);
	o = json_pack("{s:s,s:i}", "template", "t", "size", GROUP_MAX_SIZE + 1);
	assert_int_equal(kind_validate(&kind_group, o, NULL, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "size");
	json_decref(o);
	herr_clear(&err);
	o = json_pack("{s:i}", "size", 1);
	assert_int_equal(kind_validate(&kind_group, o, NULL, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "template");
	json_decref(o);
	herr_clear(&err);
	/* monitor defaults */
	o = json_pack("{s:s}", "command", "echo 1");
	assert_int_equal(kind_validate(&kind_monitor, o, NULL, "", &err), 0);
	assert_string_equal(json_string_value(json_object_get(o, "interval")), "5s");
	assert_string_equal(json_string_value(json_object_get(o, "timeout")), "3s");
	json_decref(o);
	/* account: the driver list */
	o = json_pack("{s:s}", "driver", "nosuch");
	assert_int_equal(kind_validate(&kind_account, o, NULL, "", &err), HERR_INVALID);
	assert_string_equal(err.field, "driver");
	json_decref(o);
	herr_clear(&err);
	/* policy: policy_parse's rules, field relative to the path */
	o = json_pack("{s:s,s:s}", "when", "avg(busy) > 50", "adjust", "+1");
	assert_int_equal(kind_validate(&kind_policy, o, NULL, "", &err), 0);
	json_decref(o);
	o = json_pack("{s:s}", "adjust", "+1");
	assert_int_equal(kind_validate(&kind_policy, o, NULL, "policy", &err), HERR_INVALID);
	assert_int_equal(strncmp(err.field, "policy", 6), 0);
	json_decref(o);
	herr_clear(&err);
}

struct seen {
	char what[8][200];
	int n;
};

static int
note_ref(const struct kind *to, const char *scope, const char *name, const char *fpath,
	 void *arg, struct herr *err)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->what[s->n++], sizeof(s->what[0]), "%s %s/%s %s", to->name, scope, name, fpath);
	return 0;
}

static void
test_refs(void **state)
{
	struct herr err = HERR_INIT;
	struct seen s = { .n = 0 };
	json_t *o = json_pack("{s:s,s:[ss]}", "template", "web", "after", "db", "cache");

	assert_int_equal(kind_refs(&kind_group, "prod", o, "groups[1]", note_ref, &s, &err), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.what[0], "cluster /prod groups[1]");
	assert_string_equal(s.what[1], "template /web groups[1].template");
	assert_string_equal(s.what[2], "group prod/db groups[1].after[0]");
	assert_string_equal(s.what[3], "group prod/cache groups[1].after[1]");
	json_decref(o);
}

/* The API's verdict on an LB whose health check GETs p. */
static bool
api_takes(const char *p)
{
	struct herr err = HERR_INIT;
	json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:{s:s,s:s}}", "network", "n", "listen",
			      "127.0.0.1:8080", "backend_port", 8080, "mode", "http",
			      "health_check", "type", "http", "path", p);
	int rc = kind_validate(&kind_lb, o, NULL, "", &err);

	json_decref(o);
	if (rc < 0)
		assert_string_equal(err.field, "health_check.path");
	return rc == 0;
}

/* The HAProxy driver's verdict on the same path, given straight to it. */
static bool
driver_takes(const char *p)
{
	struct herr err = HERR_INIT;
	json_t *o = json_pack("{s:s,s:i,s:s,s:{s:s}}", "listen", "127.0.0.1:8080", "backend_port",
			      8080, "mode", "http", "health_check", "type", "http");
	struct lb_spec spec;
	struct buf b;
	int rc;

	assert_int_equal(lb_spec_from_json("web", o, &spec, &err), 0);
	json_decref(o);
	snprintf(spec.check.path, sizeof(spec.check.path), "%s", p);
	buf_init(&b, 1 << 20);
	rc = haproxy_config(&b, "/tmp/x.sock", &spec, 1, NULL, NULL, &err);
	buf_release(&b);
	return rc == 0;
}

/* One rule for health_check.path: the API refuses exactly what the driver
 * would refuse (issue 13: "/a b#x" was accepted and never started). */
static void
test_lb_path_one_rule(void **state)
{
	static const char *const paths[] = {
		"/", "/healthz", "/healthz?x=1&y=%20", "/a b#x", "/a#x", "/a\"x", "/a'x",
		"/a\\x", "/a\tx", "/a\n\tserver evil 1.2.3.4:80", "/\xc3\xa9", "healthz", "", NULL,
	};

	for (int i = 0; paths[i]; i++) {
		bool api = api_takes(paths[i]);
		assert_int_equal(api, driver_takes(paths[i]));
		assert_int_equal(api, lb_health_path_valid(paths[i]));
	}
	assert_false(api_takes("/a b#x"));
	assert_true(api_takes("/healthz"));
}

static void
test_res_names(void **state)
{
	struct herr err = HERR_INIT;
	json_t *spec = json_object(), *names = NULL;
	bool created;

	assert_int_equal(res_put(st, &kind_cluster, "", "prod", spec, "", &created, &err), 0);
	assert_int_equal(res_put(st, &kind_cluster, "", "dev", spec, "", &created, &err), 0);
	assert_int_equal(res_names(st, &kind_cluster, "", &names, &err), 0);
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "dev");
	assert_string_equal(json_string_value(json_array_get(names, 1)), "prod");
	json_decref(names);
	assert_int_equal(res_names(st, &kind_group, "prod", &names, &err), 0);
	assert_int_equal(json_array_size(names), 0);
	json_decref(names);
	json_decref(spec);
}

static void
put_host(const char *id, const char *grp, const char *s)
{
	static int seq;
	struct herr err = HERR_INIT;

	if (store_q(st, NULL, NULL, &err,
		    "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, client_token, private_ip, created_ms, updated_ms)"
		    " VALUES (?, ?, 'c', ?, ?, 't', 'a', 'n', ?, ?, ?, 1, 1)",
		    "[sssisss]", id, id, grp, ++seq, s, id, id) < 0)
		fail_msg("insert host %s: %s", id, err.msg);
}

static void
test_host_count_live(void **state)
{
	struct herr err = HERR_INIT;
	int64_t n = -1;

	assert_int_equal(host_count_live(st, "c", "g", &n, &err), 0);
	assert_int_equal(n, 0);
	put_host("h1", "g", "ready");
	put_host("h2", "g", "failed");
	put_host("h3", "g", "terminated");
	put_host("h4", "other", "ready");
	assert_int_equal(host_count_live(st, "c", "g", &n, &err), 0);
	assert_int_equal(n, 2);   /* failed still counts: it is not gone yet */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_lb_path_one_rule),
		cmocka_unit_test_setup_teardown(test_res_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_count_live, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
