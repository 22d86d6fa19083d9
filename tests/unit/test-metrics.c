/* test-metrics.c - the metrics model (model/metrics.c) on a real SQLite
 * store and a real metric store in a temporary directory: a pushing host's
 * identity comes from its hosts row (unknown: HERR_AUTH), push values and
 * reserved labels, a push stored with the server's labels and told to the
 * hook once per metric, the newest batch's monitor states kept, the dropped
 * batches counted up, the group aggregate across hosts, and a cluster's
 * series quota refusing new series with one activity. */
#include <math.h>
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

#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"

static char dir[64];
static struct server srv;
static int64_t T0;

static int
setup(void **state)
{
	struct herr err = HERR_INIT;
	struct tsdb_opts o;
	char p[128];

	snprintf(dir, sizeof(dir), "/tmp/test-metrics.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/herd.db", dir);
	srv.store = store_open(p, &err);
	if (srv.store == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/tsdb", dir);
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	srv.tsdb = tsdb_open(p, &o, &err);
	if (srv.tsdb == NULL)
		return -1;
	srv.push_interval_ms = 10000;
	T0 = now_ms() / 10000 * 10000 - 60000;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	tsdb_close(srv.tsdb);
	store_close(srv.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void
put_host(const char *id, const char *name, const char *cluster, const char *grp)
{
	static int seq;
	struct herr err = HERR_INIT;

	if (store_q(srv.store, NULL, NULL, &err,
		    "INSERT INTO hosts (id, name, cluster, grp, seq, template, account, network,"
		    " state, client_token, private_ip, created_ms, updated_ms)"
		    " VALUES (?, ?, ?, ?, ?, 't', 'a', 'n', 'ready', ?, ?, 1, 1)",
		    "[ssssiss]", id, name, cluster, grp, ++seq, id, id) < 0)
		fail_msg("insert host %s: %s", id, err.msg);
}

/* What the push hook was told last. */
static struct {
	int calls;
	char cluster[64], group[64];
	char names[512];    /* comma-separated */
} told;

static void
on_push(struct server *s, const char *cluster, const char *group, const char **metrics, size_t n)
{
	told.calls++;
	snprintf(told.cluster, sizeof(told.cluster), "%s", cluster);
	snprintf(told.group, sizeof(told.group), "%s", group);
	told.names[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(told.names);
		snprintf(told.names + l, sizeof(told.names) - l, "%s%s", i ? "," : "", metrics[i]);
	}
}

/* An autoscaling policy NAME on SCOPE (cluster/group), with the cluster
 * and group it needs. */
static void
put_policy(const char *scope, const char *name)
{
	struct herr err = HERR_INIT;
	json_t *spec = json_pack("{s:s,s:s}", "when", "avg(busy) > 50", "adjust", "+1");
	json_t *empty = json_object();
	char cl[64];
	bool created;

	snprintf(cl, sizeof(cl), "%.*s", (int)strcspn(scope, "/"), scope);
	if (res_put(srv.store, &kind_cluster, "", cl, empty, "", &created, &err) < 0 ||
	    res_put(srv.store, &kind_group, cl, strchr(scope, '/') + 1, empty, "", &created, &err) < 0)
		fail_msg("put %s: %s", scope, err.msg);
	json_decref(empty);
	if (res_put(srv.store, &kind_policy, scope, name, spec, "", &created, &err) < 0)
		fail_msg("put policy %s/%s: %s", scope, name, err.msg);
	json_decref(spec);
}

static json_t *
batches_of(const char *text)
{
	json_error_t je;
	json_t *b = json_loads(text, 0, &je);

	if (b == NULL)
		fail_msg("bad test JSON: %s", je.text);
	return b;
}

/* Decodes and stores a push of h, as the handler does. */
static int
push(const struct metrics_host *h, json_t *batches, json_t *dropped,
     struct metrics_push_result *r, struct herr *err)
{
	struct metrics_push p;
	int rc = metrics_push_decode(batches, dropped, now_ms(), &p, err);

	if (rc == 0)
		rc = metrics_push_ingest(&srv, h, &p, r, err);
	metrics_push_release(&p);
	return rc;
}

static void
test_ident(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_host h;

	assert_int_equal(metrics_host_ident(&srv, "h-none", &h, &err), HERR_AUTH);
	assert_string_equal(err.msg, "unknown host");
	put_host("h-id1", "node-1", "mc", "web");
	herr_clear(&err);
	assert_int_equal(metrics_host_ident(&srv, "h-id1", &h, &err), 0);
	assert_string_equal(h.id, "h-id1");
	assert_string_equal(h.name, "node-1");
	assert_string_equal(h.cluster, "mc");
	assert_string_equal(h.group, "web");
	/* hosts never change group: the identity is cached */
	assert_int_equal(store_q(srv.store, NULL, NULL, &err, "DELETE FROM hosts WHERE id = ?", "[s]",
				 "h-id1"), 0);
	memset(&h, 0, sizeof(h));
	assert_int_equal(metrics_host_ident(&srv, "h-id1", &h, &err), 0);
	assert_string_equal(h.name, "node-1");
}

static void
test_values_and_labels(void **state)
{
	double v = 0;
	json_t *j;

	j = json_real(2.5);
	assert_true(metrics_value_parse(j, &v));
	assert_true(v == 2.5);
	json_decref(j);
	j = json_string("NaN");
	assert_true(metrics_value_parse(j, &v) && isnan(v));
	json_decref(j);
	j = json_string("Inf");
	assert_true(metrics_value_parse(j, &v) && isinf(v) && v > 0);
	json_decref(j);
	j = json_string("-Inf");
	assert_true(metrics_value_parse(j, &v) && isinf(v) && v < 0);
	json_decref(j);
	v = 7;
	j = json_string("lots");
	assert_false(metrics_value_parse(j, &v));
	assert_true(v == 7);
	json_decref(j);
	assert_false(metrics_value_parse(NULL, &v));
	assert_true(metrics_label_reserved("host"));
	assert_true(metrics_label_reserved("cluster"));
	assert_true(metrics_label_reserved("__x"));
	assert_false(metrics_label_reserved("disk"));
}

static void
test_ingest(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result r;
	struct metrics_host h1, h2;
	struct monitor_state *ms;
	struct tsdb_agg_point *p;
	size_t n;
	char text[1024];
	json_t *b, *d = json_integer(3);

	put_host("h-a", "node-a", "pc", "app");
	put_host("h-b", "node-b", "pc", "app");
	assert_int_equal(metrics_host_ident(&srv, "h-a", &h1, &err), 0);
	assert_int_equal(metrics_host_ident(&srv, "h-b", &h2, &err), 0);
	put_policy("pc/app", "grow");
	metrics_push_hook = on_push;
	/* two batches, the newer first: its monitor state wins */
	snprintf(text, sizeof(text),
		 "[{\"ts_ms\":%lld,\"series\":[{\"name\":\"busy\",\"value\":10},"
		 "{\"name\":\"cpu\",\"labels\":{\"mode\":\"user\"},\"value\":\"NaN\"}],"
		 "\"monitors\":[{\"name\":\"probe\",\"state\":\"failed\",\"error\":\"boom\"}]},"
		 "{\"ts_ms\":%lld,\"series\":[{\"name\":\"busy\",\"value\":5}],"
		 "\"monitors\":[{\"name\":\"probe\",\"state\":\"ok\"}]}]",
		 (long long)(T0 + 10000), (long long)T0);
	b = batches_of(text);
	assert_int_equal(push(&h1, b, d, &r, &err), 0);
	json_decref(b);
	/* busy, cpu, monitor_up, dropped in the first; busy is older than the
	 * series' newest in the second, monitor_up too */
	assert_int_equal(r.accepted, 4);
	assert_int_equal(r.rejected, 2);
	assert_int_equal(r.refused, 0);
	assert_int_equal(told.calls, 1);
	assert_string_equal(told.cluster, "pc");
	assert_string_equal(told.group, "app");
	assert_string_equal(told.names, "busy,cpu,monitor_up");
	n = metrics_monitor_states("pc", "app", "node-a", &ms);
	assert_int_equal(n, 1);
	assert_string_equal(ms[0].name, "probe");
	assert_string_equal(ms[0].state, "failed");
	assert_string_equal(ms[0].error, "boom");
	assert_int_equal(ms[0].ts_ms, T0 + 10000);
	free(ms);
	/* the second host, and the dropped batches adding up for the first */
	snprintf(text, sizeof(text), "[{\"ts_ms\":%lld,\"series\":[{\"name\":\"busy\",\"value\":30}]}]",
		 (long long)(T0 + 10000));
	b = batches_of(text);
	assert_int_equal(push(&h2, b, NULL, &r, &err), 0);
	json_decref(b);
	assert_int_equal(r.accepted, 1);
	snprintf(text, sizeof(text), "[{\"ts_ms\":%lld}]", (long long)(T0 + 20000));
	b = batches_of(text);
	assert_int_equal(push(&h1, b, d, &r, &err), 0);
	json_decref(b);
	{
		struct tsdb_matcher m[2] = { { "host", "node-a", false }, { "cluster", "pc", false } };
		struct tsdb_series_info *si;
		uint32_t cur = 0;

		assert_int_equal(tsdb_latest_page(srv.tsdb, "agent_dropped_batches_total", m, 2, 0,
						  &cur, 10, &si, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_true(si[0].last_value == 6);
		tsdb_series_free(si, n);
	}
	/* the group's average busy at T0 + 10 s: (10 + 30) / 2; excluding node-b: 10 */
	assert_int_equal(metrics_group_agg(&srv, "pc", "app", "busy", AGG_AVG, T0 + 10000, 10000,
					   10000, NULL, 0, &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].nseries, 2);
	assert_true(p[0].value == 20);
	free(p);
	{
		const char *ex[] = { "node-b" };

		assert_int_equal(metrics_group_agg(&srv, "pc", "app", "busy", AGG_AVG, T0 + 10000,
						   10000, 10000, ex, 1, &p, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_true(p[0].value == 10);
		free(p);
	}
	assert_int_equal(metrics_group_agg(&srv, "pc", "app", "busy", AGG_AVG, T0, 0, 10000, NULL, 0,
					   &p, &n, &err), HERR_INVALID);
	metrics_push_hook = NULL;
	json_decref(d);
}

/* The autoscaler is told of pushes to groups a policy scales only; a
 * policy written or deleted is seen by the next push (the cache behind
 * the configuration follows the resources generation). */
static void
test_hook_scaled_only(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result r;
	struct metrics_host h;
	char text[256];
	json_t *b;
	int calls;

	put_host("h-s", "node-s", "sc", "idle");
	assert_int_equal(metrics_host_ident(&srv, "h-s", &h, &err), 0);
	metrics_push_hook = on_push;
	calls = told.calls;
	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "[{\"ts_ms\":%lld,\"series\":[{\"name\":\"busy\",\"value\":%d}]}]",
			 (long long)(T0 + i * 10000), i);
		b = batches_of(text);
		if (i == 1)
			put_policy("sc/idle", "grow");
		if (i == 3)
			assert_int_equal(res_delete(srv.store, &kind_policy, "sc/idle", "grow", &err), 0);
		assert_int_equal(push(&h, b, NULL, &r, &err), 0);
		json_decref(b);
		assert_int_equal(r.accepted, 1);
		/* no policy, a policy (two pushes), deleted again */
		assert_int_equal(told.calls, calls + (i == 1 || i == 2));
		calls = told.calls;
	}
	assert_string_equal(told.group, "idle");
	metrics_push_hook = NULL;
}

static void
test_quota(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result r;
	struct metrics_host h;
	bool created;
	char text[1024];
	json_t *b, *spec = json_pack("{s:i}", "series_per_host", 2), *row, *sum;

	assert_int_equal(res_put(srv.store, &kind_cluster, "", "qc", spec, "", &created, &err), 0);
	json_decref(spec);
	put_host("h-q", "node-q", "qc", "app");
	assert_int_equal(metrics_host_ident(&srv, "h-q", &h, &err), 0);
	snprintf(text, sizeof(text),
		 "[{\"ts_ms\":%lld,\"series\":[{\"name\":\"a\",\"value\":1},{\"name\":\"b\",\"value\":1},"
		 "{\"name\":\"c\",\"value\":1}]}]",
		 (long long)T0);
	b = batches_of(text);
	assert_int_equal(push(&h, b, NULL, &r, &err), 0);
	json_decref(b);
	assert_int_equal(r.accepted, 2);
	assert_int_equal(r.refused, 1);
	assert_int_equal(r.refusal.reason, TSDB_REFUSED_HOST);
	assert_int_equal(r.refusal.host_max, 2);
	row = store_row(srv.store, &err,
			"SELECT count(*) AS n, max(cause) AS cause FROM activities"
			" WHERE kind = 'metrics_refused' AND host = 'node-q'",
			"[]");
	assert_non_null(row);
	assert_int_equal(json_integer_value(json_object_get(row, "n")), 1);
	assert_string_equal(json_string_value(json_object_get(row, "cause")), "host_quota");
	json_decref(row);
	/* the host's summary shows the cluster's quota */
	sum = metrics_host_json(&srv, "qc", "node-q");
	assert_non_null(sum);
	assert_int_equal(json_integer_value(json_object_get(sum, "series")), 2);
	assert_int_equal(json_integer_value(json_object_get(sum, "max_series")), 2);
	assert_string_equal(json_string_value(json_object_get(sum, "refused_reason")), "host_quota");
	json_decref(sum);
}

/* A push bigger than the decoder's own arrays (6 batches, 80 series of 8
 * labels and 20 monitors each): every sample is stored under its own
 * labels once the arrays have moved to the heap. */
static void
test_push_large(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result r;
	struct metrics_host h;
	struct monitor_state *ms;
	json_t *batches = json_array();
	size_t n;

	put_host("h-l", "node-l", "lc", "big");
	assert_int_equal(metrics_host_ident(&srv, "h-l", &h, &err), 0);
	for (int i = 0; i < 6; i++) {
		json_t *series = json_array(), *mons = json_array();

		for (int j = 0; j < 80; j++) {
			json_t *labels = json_object();
			char name[16], v[16];

			for (int k = 0; k < 8; k++) {
				snprintf(name, sizeof(name), "l%d", k);
				snprintf(v, sizeof(v), "x-%d-%d", j, k);
				json_object_set_new(labels, name, json_string(v));
			}
			snprintf(name, sizeof(name), "m%d", j);
			json_array_append_new(series, json_pack("{s:s,s:o,s:i}", "name", name, "labels",
								labels, "value", i * 1000 + j));
		}
		for (int j = 0; j < 20; j++) {
			char name[16];

			snprintf(name, sizeof(name), "mon%d", j);
			json_array_append_new(mons, json_pack("{s:s,s:s}", "name", name, "state",
							      j % 2 ? "ok" : "failed"));
		}
		json_array_append_new(batches, json_pack("{s:I,s:o,s:o}", "ts_ms",
							 (json_int_t)(T0 + i * 10000), "series", series,
							 "monitors", mons));
	}
	{
		json_t *d = json_integer(2);
		assert_int_equal(push(&h, batches, d, &r, &err), 0);
		json_decref(d);
	}
	json_decref(batches);
	assert_int_equal(r.accepted, 6 * 100 + 1);
	assert_int_equal(r.rejected, 0);
	for (int j = 0; j < 80; j += 13) {
		char metric[16], v[16];
		struct tsdb_matcher m[3] = { { "host", "node-l", false }, { "l7", v, false },
					     { "cluster", "lc", false } };
		struct tsdb_series_info *si;
		uint32_t cur = 0;

		snprintf(metric, sizeof(metric), "m%d", j);
		snprintf(v, sizeof(v), "x-%d-7", j);
		assert_int_equal(tsdb_latest_page(srv.tsdb, metric, m, 3, 0, &cur, 10, &si, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(si[0].nlabels, 11);
		assert_true(si[0].last_value == 5000 + j);
		tsdb_series_free(si, n);
	}
	n = metrics_monitor_states("lc", "big", "node-l", &ms);
	assert_int_equal(n, 20);
	free(ms);
}

/* A mistake anywhere is refused naming its field, before anything is
 * stored. */
static void
test_push_invalid(void **state)
{
	static const struct {
		const char *text, *field;
	} bad[] = {
		{ "{}", "batches" },
		{ "[{\"ts_ms\":1,\"series\":[{\"name\":\"ok\",\"value\":1},"
		  "{\"name\":\"9bad\",\"value\":1}]}]", "batches[0].series[1].name" },
		{ "[{\"ts_ms\":1},{\"ts_ms\":1,\"series\":[{\"name\":\"a\",\"value\":1,"
		  "\"labels\":{\"host\":\"x\"}}]}]", "batches[1].series[0].labels.host" },
		{ "[{\"ts_ms\":1,\"series\":[{\"name\":\"a\",\"value\":\"x\"}]}]",
		  "batches[0].series[0].value" },
		{ "[{\"ts_ms\":1,\"monitors\":[{\"name\":\"m\",\"state\":\"odd\"}]}]",
		  "batches[0].monitors[0].state" },
		{ "[{\"ts_ms\":-1}]", "batches[0].ts_ms" },
	};
	struct metrics_push p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct herr err = HERR_INIT;
		json_t *b = batches_of(bad[i].text);

		assert_int_equal(metrics_push_decode(b, NULL, now_ms(), &p, &err), HERR_INVALID);
		assert_string_equal(err.field, bad[i].field);
		metrics_push_release(&p);
		json_decref(b);
	}
	{
		struct herr err = HERR_INIT;
		json_t *b = batches_of("[{\"ts_ms\":1}]"), *d = json_integer(-1);

		assert_int_equal(metrics_push_decode(b, d, now_ms(), &p, &err), HERR_INVALID);
		assert_string_equal(err.field, "dropped");
		metrics_push_release(&p);
		json_decref(b);
		json_decref(d);
	}
}

/* A metric with both scopes (a local host's cpu_busy_pct: the machine's
 * and its cgroup's): a group's aggregate reads the hosts' own figures where
 * the group has any (issue 16), and the only scope there is otherwise. */
static void
test_agg_scope(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result r;
	struct metrics_host h1, h2, h3;
	struct tsdb_agg_point *p;
	char text[512];
	json_t *b;
	size_t n;

	put_host("h-c1", "node-c1", "cg", "loc");
	put_host("h-c2", "node-c2", "cg", "loc");
	put_host("h-c3", "node-c3", "cg", "vm");
	assert_int_equal(metrics_host_ident(&srv, "h-c1", &h1, &err), 0);
	assert_int_equal(metrics_host_ident(&srv, "h-c2", &h2, &err), 0);
	assert_int_equal(metrics_host_ident(&srv, "h-c3", &h3, &err), 0);
	/* local hosts: the machine at 90 %, the hosts' own 10 % and 30 % */
	for (int i = 0; i < 2; i++) {
		snprintf(text, sizeof(text),
			 "[{\"ts_ms\":%lld,\"series\":["
			 "{\"name\":\"cpu_busy_pct\",\"labels\":{\"scope\":\"machine\"},\"value\":90},"
			 "{\"name\":\"cpu_busy_pct\",\"labels\":{\"scope\":\"host\"},\"value\":%d}]}]",
			 (long long)(T0 + 10000), i ? 30 : 10);
		b = batches_of(text);
		assert_int_equal(push(i ? &h2 : &h1, b, NULL, &r, &err), 0);
		json_decref(b);
	}
	assert_int_equal(metrics_group_agg(&srv, "cg", "loc", "cpu_busy_pct", AGG_AVG, T0 + 10000,
					   10000, 10000, NULL, 0, &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].nseries, 2);
	assert_true(p[0].value == 20);
	free(p);
	/* a cloud VM's group: the machine is the host */
	snprintf(text, sizeof(text),
		 "[{\"ts_ms\":%lld,\"series\":["
		 "{\"name\":\"cpu_busy_pct\",\"labels\":{\"scope\":\"machine\"},\"value\":70}]}]",
		 (long long)(T0 + 10000));
	b = batches_of(text);
	assert_int_equal(push(&h3, b, NULL, &r, &err), 0);
	json_decref(b);
	assert_int_equal(metrics_group_agg(&srv, "cg", "vm", "cpu_busy_pct", AGG_MAX, T0 + 10000,
					   10000, 10000, NULL, 0, &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].nseries, 1);
	assert_true(p[0].value == 70);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ident),
		cmocka_unit_test(test_values_and_labels),
		cmocka_unit_test(test_ingest),
		cmocka_unit_test(test_hook_scaled_only),
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_push_large),
		cmocka_unit_test(test_push_invalid),
		cmocka_unit_test(test_agg_scope),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
