/* test-remote-write.c - Prometheus's remote_write into the store
 * (metrics_remote_write, model/metrics.c) on a real SQLite store and a real
 * metric store: series mapped to live hosts by the host label or instance
 * (its port dropped), CLUSTER/NAME for a name in two clusters, herd's
 * labels replacing the sender's, unknown hosts counted and not stored,
 * out-of-order and future samples, names the store cannot hold, stale
 * markers kept as NaN, the cluster's series quota, a malformed body stored
 * nowhere; and one figure: samples stored per second for a 100,000-sample
 * body (printed, not asserted). */
#include <math.h>
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
#include "promwire.h"
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

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-rw.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/herd.db", dir);
	if ((srv.store = store_open(p, &err)) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/tsdb", dir);
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	if ((srv.tsdb = tsdb_open(p, &o, &err)) == NULL)
		return -1;
	srv.push_interval_ms = 10000;
	T0 = now_ms() / 1000 * 1000 - 60000;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
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

/* Encodes the series and writes them: metrics_remote_write's return. */
static int
write_series(const struct pw_series *s, size_t n, struct metrics_rw_result *r)
{
	struct herr err = HERR_INIT;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (promwire_encode(s, n, &body, &len, &err) < 0)
		fail_msg("encode: %s", err.msg);
	rc = metrics_remote_write(&srv, body, len, "host", now_ms(), r, &err);
	free(body);
	return rc;
}

/* The newest sample of metric on cluster/host: its value, and a label. */
static bool
latest(const char *metric, const char *cluster, const char *host, double *v, const char *label,
       char *lv, size_t n)
{
	struct herr err = HERR_INIT;
	struct tsdb_matcher m[2] = { { "cluster", cluster, false }, { "host", host, false } };
	struct tsdb_series_info *si = NULL;
	size_t ns = 0;
	bool found;

	assert_int_equal(tsdb_latest(srv.tsdb, metric, m, 2, 0, &si, &ns, &err), 0);
	found = ns > 0;
	if (found) {
		*v = si[0].last_value;
		if (label) {
			lv[0] = '\0';
			for (size_t i = 0; i < si[0].nlabels; i++)
				if (strcmp(si[0].labels[i].name, label) == 0)
					snprintf(lv, n, "%s", si[0].labels[i].value);
		}
	}
	tsdb_series_free(si, ns);
	return found;
}

static void
test_mapping(void **state)
{
	struct metrics_rw_result r;
	struct pw_label l1[] = { { "__name__", "rw_a" }, { "cluster", "evil" }, { "group", "g" },
				 { "host", "node-1" }, { "job", "j" } };
	struct pw_label l2[] = { { "__name__", "rw_a" }, { "host", "nobody" } };
	struct pw_label l3[] = { { "__name__", "rw_b" }, { "instance", "node-1:9100" } };
	struct pw_label l4[] = { { "__name__", "rw_c" }, { "host", "node-2" } };
	struct pw_label l5[] = { { "__name__", "rw_c" }, { "host", "c2/node-2" } };
	struct pw_label l6[] = { { "__name__", "up" }, { "instance", "127.0.0.1:9090" } };
	struct pw_sample s2[] = { { 1, T0 }, { 2, T0 + 1000 } };
	struct pw_sample s1[] = { { 7, T0 } };
	struct pw_series ser[] = {
		{ l1, 5, s2, 2 }, { l2, 2, s1, 1 }, { l3, 2, s1, 1 },
		{ l4, 2, s1, 1 }, { l5, 2, s1, 1 }, { l6, 2, s1, 1 },
	};
	struct metrics_rw_result tot;
	char lv[64];
	double v;

	(void)state;
	put_host("h-1", "node-1", "c1", "app");
	put_host("h-2", "node-2", "c1", "app");
	put_host("h-3", "node-2", "c2", "web");
	assert_int_equal(write_series(ser, 6, &r), 0);
	assert_int_equal(r.samples[RW_STORED], 4);
	assert_int_equal(r.samples[RW_UNKNOWN_HOST], 3);   /* nobody, node-2 twice, 127.0.0.1 */
	assert_int_equal(r.samples[RW_INVALID], 0);
	/* herd's labels, not the sender's; other labels kept */
	assert_true(latest("rw_a", "c1", "node-1", &v, "cluster", lv, sizeof(lv)));
	assert_true(v == 2);
	assert_string_equal(lv, "c1");
	assert_true(latest("rw_a", "c1", "node-1", &v, "group", lv, sizeof(lv)));
	assert_string_equal(lv, "app");
	assert_true(latest("rw_a", "c1", "node-1", &v, "job", lv, sizeof(lv)));
	assert_string_equal(lv, "j");
	assert_false(latest("rw_a", "evil", "node-1", &v, NULL, NULL, 0));
	/* instance without its port */
	assert_true(latest("rw_b", "c1", "node-1", &v, NULL, NULL, 0));
	assert_true(v == 7);
	/* a name in two clusters needs CLUSTER/NAME */
	assert_false(latest("rw_c", "c1", "node-2", &v, NULL, NULL, 0));
	assert_true(latest("rw_c", "c2", "node-2", &v, "group", lv, sizeof(lv)));
	assert_string_equal(lv, "web");
	metrics_remote_write_totals(&tot);
	assert_true(tot.samples[RW_STORED] >= 4);
	assert_string_equal(metrics_rw_outcome_name(RW_UNKNOWN_HOST), "unknown_host");
}

static void
test_samples(void **state)
{
	struct metrics_rw_result r;
	struct pw_label l1[] = { { "__name__", "rw_o" }, { "host", "node-1" } };
	struct pw_label l2[] = { { "__name__", "rw-bad" }, { "host", "node-1" } };
	struct pw_label l3[] = { { "__name__", "rw_stale" }, { "host", "node-1" } };
	struct pw_sample now1[] = { { 5, T0 + 5000 } };
	struct pw_sample old[] = { { 4, T0 + 1000 }, { 9, now_ms() + 3600 * 1000 } };
	struct pw_sample stale[] = { { NAN, T0 + 5000 } };
	struct pw_series a[] = { { l1, 2, now1, 1 } };
	struct pw_series b[] = { { l1, 2, old, 2 }, { l2, 2, now1, 1 }, { l3, 2, stale, 1 } };
	double v;

	(void)state;
	assert_int_equal(write_series(a, 1, &r), 0);
	assert_int_equal(r.samples[RW_STORED], 1);
	assert_int_equal(write_series(b, 3, &r), 0);
	assert_int_equal(r.samples[RW_REJECTED], 1);   /* older than the newest */
	assert_int_equal(r.samples[RW_INVALID], 2);    /* an hour ahead; a name the store refuses */
	assert_int_equal(r.samples[RW_STORED], 1);     /* the stale marker */
	assert_true(latest("rw_o", "c1", "node-1", &v, NULL, NULL, 0));
	assert_true(v == 5);
	assert_true(latest("rw_stale", "c1", "node-1", &v, NULL, NULL, 0));
	assert_true(isnan(v));
}

/* A label value that is not UTF-8 would make every JSON answer that shows
 * the series fail: the series is invalid at the door, the others stored. */
static void
test_not_utf8(void **state)
{
	struct metrics_rw_result r;
	struct pw_label bad[] = { { "__name__", "rw_u8" }, { "host", "node-1" }, { "k", "a\xff" } };
	struct pw_label cut[] = { { "__name__", "rw_u8" }, { "host", "node-1" }, { "k", "\xc3" } };
	struct pw_label ok[] = { { "__name__", "rw_u8ok" }, { "host", "node-1" },
				 { "k", "caf\xc3\xa9" } };
	struct pw_sample one[] = { { 7, T0 + 6000 } };
	struct pw_series s[] = { { bad, 3, one, 1 }, { cut, 3, one, 1 }, { ok, 3, one, 1 } };
	char lv[32];
	double v;

	(void)state;
	assert_int_equal(write_series(s, 3, &r), 0);
	assert_int_equal(r.samples[RW_INVALID], 2);
	assert_int_equal(r.samples[RW_STORED], 1);
	assert_false(latest("rw_u8", "c1", "node-1", &v, NULL, NULL, 0));
	assert_true(latest("rw_u8ok", "c1", "node-1", &v, "k", lv, sizeof(lv)));
	assert_string_equal(lv, "caf\xc3\xa9");
}

static void
test_quota_and_malformed(void **state)
{
	struct herr err = HERR_INIT;
	struct metrics_rw_result r;
	bool created;
	json_t *spec = json_pack("{s:i}", "series_per_host", 1);
	struct pw_label l1[] = { { "__name__", "q_a" }, { "host", "node-q" } };
	struct pw_label l2[] = { { "__name__", "q_b" }, { "host", "node-q" } };
	struct pw_sample s1[] = { { 1, T0 } };
	struct pw_series ser[] = { { l1, 2, s1, 1 }, { l2, 2, s1, 1 } };

	(void)state;
	assert_int_equal(res_put(srv.store, &kind_cluster, "", "qc", spec, "", &created, &err), 0);
	json_decref(spec);
	put_host("h-q", "node-q", "qc", "app");
	assert_int_equal(write_series(ser, 2, &r), 0);
	assert_int_equal(r.samples[RW_STORED], 1);
	assert_int_equal(r.samples[RW_QUOTA], 1);
	/* not snappy: refused, nothing counted */
	assert_int_equal(metrics_remote_write(&srv, "garbage", 7, "host", now_ms(), &r, &err),
			 HERR_INVALID);
	assert_int_equal(r.samples[RW_STORED] + r.samples[RW_UNKNOWN_HOST], 0);
}

/* One figure: a 100,000-sample body (10,000 series of 10 hosts, 10
 * samples each), decoded and stored. */
static void
test_figure(void **state)
{
	enum { HOSTS = 10, SERIES = 10000, SAMPLES = 10 };
	static struct pw_label lab[SERIES][2];
	static struct pw_sample smp[SAMPLES];
	static struct pw_series ser[SERIES];
	static char names[SERIES][32], hosts[HOSTS][16];
	struct metrics_rw_result r;
	int64_t t;

	(void)state;
	for (int h = 0; h < HOSTS; h++) {
		char id[16];
		snprintf(hosts[h], sizeof(hosts[h]), "fig-%d", h);
		snprintf(id, sizeof(id), "h-fig-%d", h);
		put_host(id, hosts[h], "fig", "app");
	}
	for (int k = 0; k < SAMPLES; k++)
		smp[k] = (struct pw_sample){ k, T0 + 10000 + k * 1000 };
	for (int i = 0; i < SERIES; i++) {
		snprintf(names[i], sizeof(names[i]), "fig_%d", i / HOSTS);
		lab[i][0] = (struct pw_label){ "__name__", names[i] };
		lab[i][1] = (struct pw_label){ "host", hosts[i % HOSTS] };
		ser[i] = (struct pw_series){ lab[i], 2, smp, SAMPLES };
	}
	t = mono_ms();
	assert_int_equal(write_series(ser, SERIES, &r), 0);
	t = mono_ms() - t;
	assert_int_equal(r.samples[RW_STORED], SERIES * SAMPLES);
	print_message("remote write: %d samples (%d series, %d hosts) encoded, decoded and stored"
		      " in %lld ms\n", SERIES * SAMPLES, SERIES, HOSTS, (long long)t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_quota_and_malformed),
		cmocka_unit_test(test_figure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
