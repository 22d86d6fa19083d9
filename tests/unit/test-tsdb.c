/* test-tsdb.c - the metric store: append and the queries (range, aggregate
 * at aligned steps with the number of series per step, latest, series,
 * Prometheus exposition), ordering rules, persistence through checkpoints,
 * WAL replay after a crash (a child process that exits without closing), a
 * truncated and a garbled WAL tail and a torn block file (opens, logs,
 * serves the rest), retention, and concurrent appenders sharing fsyncs
 * while checkpoints and queries run. Safety (issue 12): series quotas per
 * host and per cluster (counted, rebuilt after a restart and a WAL replay),
 * latest by pages, the streamed exposition, per-metric counts without a
 * copy of every series, and close in linear time. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb/tsdb.h"
#include "util.h"

static char dir[256];
static const int64_t STEP = 5000;
static int64_t T0;

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/herd-test-tsdb.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	/* recent enough for the retention, aligned to the chunk span */
	T0 = (now_ms() - 3600 * 1000) / (30 * 60 * 1000) * (30 * 60 * 1000);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct tsdb *
open_db(int64_t retention_ms)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;

	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.chunk_max_samples = 20;
	if (retention_ms)
		o.retention_ms = retention_ms;
	db = tsdb_open(dir, &o, &err);
	if (db == NULL)
		fail_msg("tsdb_open: %s", err.msg);
	return db;
}

/* One push of host h: cpu (noisy decimal), busy (integer), a constant. */
static void
push(struct tsdb *db, int h, int64_t ts, double busy)
{
	struct herr err = HERR_INIT;
	char host[16];
	struct tsdb_label l[3] = { { "host", host }, { "group", "node" }, { "cluster", "demo" } };
	struct tsdb_label lm[4] = { { "cluster", "demo" }, { "mode", "user" }, { "group", "node" },
				    { "host", host } };
	struct tsdb_sample s[4] = {
		{ "busy", l, 3, busy },
		{ "cpu_busy_pct", l, 3, round(((double)(ts / STEP % 97) + h) * 100) / 100 },
		{ "cpu_mode_pct", lm, 4, 1.5 },
		{ "mem_total_bytes", l, 3, 8e9 },
	};

	snprintf(host, sizeof(host), "node-%d", h);
	if (tsdb_append(db, ts, s, 4, &err) != 4)
		fail_msg("append: %s", err.msg);
}

/* busy of host h at step i */
static double
busy_of(int h, int i)
{
	return 10 * h + i % 7;
}

static void
fill(struct tsdb *db, int hosts, int steps)
{
	for (int i = 0; i < steps; i++)
		for (int h = 1; h <= hosts; h++)
			push(db, h, T0 + i * STEP, busy_of(h, i));
}

static void
check_filled(struct tsdb *db, int hosts, int steps)
{
	struct herr err = HERR_INIT;
	struct tsdb_range_series *r;
	size_t n;
	struct tsdb_matcher m[1] = { { "host", "node-2", false } };

	assert_int_equal(tsdb_range(db, "busy", m, 1, T0, T0 + steps * STEP, 100000, &r, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].n, steps);
	for (int i = 0; i < steps; i++) {
		assert_int_equal(r[0].ts_ms[i], T0 + i * STEP);
		assert_true(r[0].values[i] == busy_of(2, i));
	}
	assert_string_equal(r[0].info.metric, "busy");
	assert_int_equal(r[0].info.nlabels, 3);
	assert_string_equal(r[0].info.labels[0].name, "cluster");
	assert_string_equal(r[0].info.labels[2].value, "node-2");
	tsdb_range_free(r, n);
	(void)hosts;
}

static void
test_append_query(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_agg_point *p;
	struct tsdb_series_info *si;
	struct tsdb_matcher g[2] = { { "cluster", "demo", false }, { "group", "node", false } };
	size_t n;

	(void)state;
	fill(db, 3, 100);
	check_filled(db, 3, 100);
	/* the aggregate at aligned 10 s steps: last sample of each host per step */
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_AVG, T0 + 1, T0 + 99 * STEP, 10000, &p, &n, &err), 0);
	assert_int_equal(n, 49);
	assert_int_equal(p[0].ts_ms, T0 + 10000);
	for (size_t k = 0; k < n; k++) {
		int i = (int)(p[k].ts_ms - T0) / 5000;  /* the last sample in (t-10s, t] */
		double want = (busy_of(1, i) + busy_of(2, i) + busy_of(3, i)) / 3;
		assert_int_equal(p[k].nseries, 3);
		if (fabs(p[k].value - want) > 1e-9)
			fail_msg("step %zu: %g, want %g", k, p[k].value, want);
	}
	free(p);
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_MIN, T0, T0 + 10 * STEP, STEP, &p, &n, &err), 0);
	assert_true(p[0].value == busy_of(1, 0));
	free(p);
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_MAX, T0, T0, STEP, &p, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(p[0].value == busy_of(3, 0));
	free(p);
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_SUM, T0, T0, STEP, &p, &n, &err), 0);
	assert_true(p[0].value == busy_of(1, 0) + busy_of(2, 0) + busy_of(3, 0));
	free(p);
	/* steps with no data: NaN and no series; count tells how many report */
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_COUNT, T0 + 99 * STEP, T0 + 110 * STEP, STEP,
				  &p, &n, &err), 0);
	assert_int_equal(n, 12);
	assert_int_equal(p[0].nseries, 3);
	assert_true(p[0].value == 3);
	assert_int_equal(p[1].nseries, 0);
	assert_true(isnan(p[1].value));
	free(p);
	/* a group with no series: all steps empty */
	g[1].value = "master";
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_AVG, T0, T0 + 10 * STEP, STEP, &p, &n, &err), 0);
	assert_int_equal(p[3].nseries, 0);
	free(p);
	/* too many steps */
	assert_int_equal(tsdb_agg(db, "busy", g, 2, AGG_AVG, T0, T0 + 100000000, 1, &p, &n, &err),
			 HERR_INVALID);
	assert_string_equal(err.field, "step");
	/* latest per host */
	g[1].value = "node";
	assert_int_equal(tsdb_latest(db, "busy", g, 2, 0, &si, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(si[0].last_ts_ms, T0 + 99 * STEP);
	assert_true(si[1].last_value == busy_of(2, 99));
	assert_int_equal(si[1].first_ts_ms, T0);
	tsdb_series_free(si, n);
	/* all series of one host, any metric; != matcher */
	{
		struct tsdb_matcher hm[2] = { { "host", "node-1", false }, { "mode", "user", true } };
		assert_int_equal(tsdb_series(db, NULL, hm, 2, &si, &n, &err), 0);
		assert_int_equal(n, 3);
		assert_string_equal(si[0].metric, "busy");
		assert_string_equal(si[1].metric, "cpu_busy_pct");
		assert_string_equal(si[2].metric, "mem_total_bytes");
		tsdb_series_free(si, n);
	}
	/* range limit */
	{
		struct tsdb_range_series *r;
		assert_int_equal(tsdb_range(db, "busy", NULL, 0, T0, T0 + 100 * STEP, 50, &r, &n, &err),
				 HERR_TOOBIG);
	}
	tsdb_close(db);
}

static void
test_ordering(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_label l[1] = { { "host", "a" } };
	struct tsdb_sample s = { "x", l, 1, 1 };
	struct tsdb_range_series *r;
	struct tsdb_stats st;
	size_t n;

	(void)state;
	assert_int_equal(tsdb_append(db, T0 + 1000, &s, 1, &err), 1);
	s.value = 2;
	/* same timestamp: replaces while in the head */
	assert_int_equal(tsdb_append(db, T0 + 1000, &s, 1, &err), 1);
	/* older: rejected and counted */
	assert_int_equal(tsdb_append(db, T0 + 999, &s, 1, &err), 0);
	/* too old for the retention */
	assert_int_equal(tsdb_append(db, now_ms() - 16LL * 86400 * 1000, &s, 1, &err), 0);
	tsdb_stats(db, &st);
	assert_int_equal(st.out_of_order, 1);
	assert_int_equal(st.too_old, 1);
	assert_int_equal(tsdb_range(db, "x", NULL, 0, 0, INT64_MAX, 10, &r, &n, &err), 0);
	assert_int_equal(r[0].n, 1);
	assert_true(r[0].values[0] == 2);
	tsdb_range_free(r, n);
	/* bad input names the field and stores nothing */
	s.metric = "9bad";
	assert_int_equal(tsdb_append(db, T0 + 2000, &s, 1, &err), HERR_INVALID);
	assert_string_equal(err.field, "name");
	s.metric = "x";
	l[0].name = "__reserved";
	assert_int_equal(tsdb_append(db, T0 + 2000, &s, 1, &err), HERR_INVALID);
	assert_string_equal(err.field, "labels");
	tsdb_close(db);
}

static void
test_persist_checkpoint(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_stats st;

	(void)state;
	fill(db, 3, 100);
	assert_int_equal(tsdb_checkpoint(db, 0, &err), 0);
	fill(db, 0, 0);
	tsdb_stats(db, &st);
	assert_true(st.chunks > 0);
	assert_true(st.block_bytes > 0);
	tsdb_close(db);
	db = open_db(0);
	check_filled(db, 3, 100);
	tsdb_stats(db, &st);
	assert_int_equal(st.series, 12);
	tsdb_close(db);
}

/* A child appends and dies without closing (like kill -9 after the ack). */
static void
crash_after(int steps)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct tsdb *db = open_db(0);
		fill(db, 3, steps);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *
capture_open(struct tsdb **db)
{
	char logp[300];
	int saved = dup(2), fd;
	size_t len;
	char *text;

	snprintf(logp, sizeof(logp), "%s.log", dir);
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fflush(stderr);
	dup2(fd, 2);
	*db = open_db(0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	text = file_read(logp, 1 << 20, &len);
	unlink(logp);
	return text;
}

static void
test_wal_replay(void **state)
{
	struct tsdb *db;
	char *log;

	(void)state;
	crash_after(50);
	log = capture_open(&db);
	assert_non_null(strstr(log, "replayed 150 batches, 600 samples"));
	free(log);
	check_filled(db, 3, 50);
	tsdb_close(db);
}

static off_t
wal_size(void)
{
	char p[300];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/wal", dir);
	assert_int_equal(stat(p, &sb), 0);
	return sb.st_size;
}

static void
test_wal_truncated_tail(void **state)
{
	struct tsdb *db;
	struct tsdb_range_series *r;
	struct herr err = HERR_INIT;
	char p[300], *log;
	size_t n;

	(void)state;
	crash_after(40);
	snprintf(p, sizeof(p), "%s/wal", dir);
	assert_int_equal(truncate(p, wal_size() - 5), 0);
	log = capture_open(&db);
	if (strstr(log, "truncated record") == NULL || strstr(log, "skipped the last") == NULL)
		fail_msg("log says: %s", log);
	free(log);
	/* the last batch (3 hosts x 4 series in one record per host) lost a host */
	assert_int_equal(tsdb_range(db, "busy", NULL, 0, T0, T0 + 100 * STEP, 1000, &r, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].n, 40);
	assert_int_equal(r[1].n, 40);
	assert_int_equal(r[2].n, 39);
	tsdb_range_free(r, n);
	/* it keeps working: appends after the cut survive another crash */
	push(db, 3, T0 + 39 * STEP, 1);
	tsdb_close(db);
	db = open_db(0);
	assert_int_equal(tsdb_range(db, "busy", NULL, 0, T0, T0 + 100 * STEP, 1000, &r, &n, &err), 0);
	assert_int_equal(r[2].n, 40);
	tsdb_range_free(r, n);
	tsdb_close(db);
}

static void
test_wal_garbled_tail(void **state)
{
	struct tsdb *db;
	char p[300], *log;
	int fd;
	off_t size;
	struct tsdb_range_series *r;
	struct herr err = HERR_INIT;
	size_t n;

	(void)state;
	crash_after(30);
	snprintf(p, sizeof(p), "%s/wal", dir);
	/* flip a byte inside the last record, then add garbage after it */
	size = wal_size();
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\x55", 1, size - 3), 1);
	assert_int_equal(pwrite(fd, "garbage garbage garbage", 23, size), 23);
	close(fd);
	log = capture_open(&db);
	if (strstr(log, "checksum mismatch") == NULL || strstr(log, "replayed") == NULL)
		fail_msg("log says: %s", log);
	free(log);
	assert_int_equal(tsdb_range(db, "busy", NULL, 0, T0, T0 + 100 * STEP, 1000, &r, &n, &err), 0);
	assert_int_equal(r[0].n, 30);
	assert_int_equal(r[2].n, 29);
	tsdb_range_free(r, n);
	tsdb_close(db);
}

static void
test_block_torn_tail(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_range_series *r;
	char p[400], *log;
	size_t n, total = 0;
	struct stat sb;

	(void)state;
	fill(db, 3, 100);
	assert_int_equal(tsdb_checkpoint(db, 0, &err), 0);
	tsdb_close(db);
	snprintf(p, sizeof(p), "%s/blocks/b-0000000000000000", dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(truncate(p, sb.st_size - 10), 0);
	log = capture_open(&db);
	if (strstr(log, "truncated record") == NULL || strstr(log, "b-0000000000000000") == NULL)
		fail_msg("log says: %s", log);
	free(log);
	/* all but the last chunk written are there */
	assert_int_equal(tsdb_range(db, NULL, NULL, 0, T0, T0 + 100 * STEP, 100000, &r, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		total += r[i].n;
	assert_true(total >= 12 * 100 - 20);
	assert_true(total < 12 * 100);
	tsdb_range_free(r, n);
	tsdb_close(db);
}

static void
test_retention(void **state)
{
	struct tsdb *db = open_db(3600 * 1000);
	struct herr err = HERR_INIT;
	struct tsdb_range_series *r;
	struct tsdb_stats st;
	size_t n;
	int64_t start = now_ms() - 50 * 60 * 1000;
	struct tsdb_label l[1] = { { "host", "a" } };
	struct tsdb_sample s = { "x", l, 1, 1 };

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(tsdb_append(db, start + i * STEP, &s, 1, &err), 1);
	assert_int_equal(tsdb_checkpoint(db, 0, &err), 0);
	tsdb_stats(db, &st);
	assert_true(st.chunks >= 4);
	assert_int_equal(st.blocks, 1);
	/* two hours later, everything is past the retention of one hour */
	assert_int_equal(tsdb_checkpoint(db, now_ms() + 2 * 3600 * 1000, &err), 0);
	tsdb_stats(db, &st);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.blocks, 0);
	assert_int_equal(st.series, 0);
	assert_int_equal(tsdb_range(db, "x", NULL, 0, 0, INT64_MAX, 1000, &r, &n, &err), 0);
	assert_int_equal(n, 0);
	tsdb_range_free(r, n);
	tsdb_close(db);
}

static void
test_expose(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_label l[2] = { { "host", "n\"1\\\n" }, { "group", "g" } };
	struct tsdb_sample s[3] = { { "up", l, 2, 1 }, { "temp", l, 2, NAN }, { "big", l, 2, -INFINITY } };
	struct buf b;
	char want[512];

	(void)state;
	assert_int_equal(tsdb_append(db, T0, s, 3, &err), 3);
	buf_init(&b, 1 << 20);
	assert_int_equal(tsdb_expose(db, &b, 0, &err), 0);
	snprintf(want, sizeof(want),
		 "# TYPE big untyped\nbig{group=\"g\",host=\"n\\\"1\\\\\\n\"} -Inf %lld\n"
		 "# TYPE temp untyped\ntemp{group=\"g\",host=\"n\\\"1\\\\\\n\"} NaN %lld\n"
		 "# TYPE up untyped\nup{group=\"g\",host=\"n\\\"1\\\\\\n\"} 1 %lld\n",
		 (long long)T0, (long long)T0, (long long)T0);
	assert_string_equal(b.p, want);
	buf_release(&b);
	/* a limit is an error, not a crash */
	buf_init(&b, 40);
	assert_int_equal(tsdb_expose(db, &b, 0, &err), HERR_TOOBIG);
	buf_release(&b);
	tsdb_close(db);
}

/* The caller's vocabulary: "up" renamed and scaled, "temp" left out, "big" as stored. */
static void
family_test(const char *metric, struct tsdb_expose_family *f)
{
	if (strcmp(metric, "up") == 0)
		*f = (struct tsdb_expose_family){ "up_ratio", "gauge", "Up, 0 to 1.", 0.01 };
	else if (strcmp(metric, "temp") == 0)
		f->name = NULL;
}

/* The stream with a family function: HELP and TYPE from it, names and
 * values mapped, a family left out entirely; with max_series 1 (a piece
 * per series) the header comes once per family. */
static void
test_expose_family(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_label l1[1] = { { "host", "a" } }, l2[1] = { { "host", "b" } };
	struct tsdb_sample s[5] = { { "up", l1, 1, 45.67 }, { "up", l2, 1, 100 },
				    { "temp", l1, 1, 3 }, { "big", l1, 1, 2 }, { "big", l2, 1, NAN } };
	struct tsdb_expose_cursor *c;
	struct buf b;
	char want[512];

	(void)state;
	assert_int_equal(tsdb_append(db, T0, s, 5, &err), 5);
	buf_init(&b, 1 << 20);
	c = tsdb_expose_begin(db, 0);
	tsdb_expose_set_family(c, family_test);
	while (tsdb_expose_next(db, c, &b, 1))
		;
	tsdb_expose_end(c);
	snprintf(want, sizeof(want),
		 "# TYPE big untyped\nbig{host=\"a\"} 2 %lld\nbig{host=\"b\"} NaN %lld\n"
		 "# HELP up_ratio Up, 0 to 1.\n# TYPE up_ratio gauge\n"
		 "up_ratio{host=\"a\"} 0.4567 %lld\nup_ratio{host=\"b\"} 1 %lld\n",
		 (long long)T0, (long long)T0, (long long)T0, (long long)T0);
	assert_string_equal(b.p, want);
	buf_release(&b);
	tsdb_close(db);
}

struct th {
	struct tsdb *db;
	int h;
};

static void *
appender(void *arg)
{
	struct th *t = arg;

	for (int i = 0; i < 200; i++)
		push(t->db, t->h, T0 + i * STEP, busy_of(t->h, i));
	return NULL;
}

static volatile int appending;

/* Checkpoints and queries while the appenders run. */
static void *
reader(void *arg)
{
	struct tsdb *db = arg;
	struct tsdb_matcher g[1] = { { "group", "node", false } };

	while (__atomic_load_n(&appending, __ATOMIC_ACQUIRE)) {
		struct herr err = HERR_INIT;
		struct tsdb_agg_point *p;
		struct tsdb_series_info *si;
		size_t n;
		assert_int_equal(tsdb_checkpoint(db, 0, &err), 0);
		assert_int_equal(tsdb_agg(db, "busy", g, 1, AGG_AVG, T0, T0 + 200 * STEP, STEP, &p, &n, &err), 0);
		free(p);
		assert_int_equal(tsdb_latest(db, NULL, g, 1, 0, &si, &n, &err), 0);
		tsdb_series_free(si, n);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct tsdb *db = open_db(0);
	pthread_t th[8], rd;
	struct th a[8];
	struct tsdb_stats st;

	(void)state;
	appending = 1;
	pthread_create(&rd, NULL, reader, db);
	for (int i = 0; i < 8; i++) {
		a[i] = (struct th){ db, i + 1 };
		pthread_create(&th[i], NULL, appender, &a[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&appending, 0, __ATOMIC_RELEASE);
	pthread_join(rd, NULL);
	tsdb_stats(db, &st);
	assert_int_equal(st.appended, 8 * 200 * 4);
	assert_int_equal(st.series, 8 * 4);
	check_filled(db, 8, 200);
	tsdb_close(db);
}


/* --- safety: quotas, pages, streaming, close (issue 12) --- */

/* Appends n series item=first..first+n-1 of host/cluster at ts; returns
 * what tsdb_append_q answered. */
static int
push_items(struct tsdb *db, const char *cluster, const char *host, int first, int n, int64_t ts,
	   const struct tsdb_limits *lim, struct tsdb_append_info *info)
{
	struct herr err = HERR_INIT;
	struct tsdb_sample *s = calloc((size_t)n, sizeof(*s));
	struct tsdb_label *l = calloc((size_t)n * 4, sizeof(*l));
	char (*item)[16] = calloc((size_t)n, sizeof(*item));
	int rc;

	for (int i = 0; i < n; i++) {
		snprintf(item[i], sizeof(item[i]), "%d", first + i);
		l[i * 4 + 0] = (struct tsdb_label){ "host", host };
		l[i * 4 + 1] = (struct tsdb_label){ "group", "node" };
		l[i * 4 + 2] = (struct tsdb_label){ "cluster", cluster };
		l[i * 4 + 3] = (struct tsdb_label){ "item", item[i] };
		s[i] = (struct tsdb_sample){ "q_item", &l[i * 4], 4, (double)i };
	}
	rc = tsdb_append_q(db, ts, s, (size_t)n, lim, info, &err);
	if (rc < 0)
		fail_msg("append: %s", err.msg);
	free(s);
	free(l);
	free(item);
	return rc;
}

/* The finding: one host's new series filled max_series and every other
 * cluster's new series were dropped. Uses only tsdb_append (the old API). */
static void
test_one_host_cannot_fill(void **state)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;
	int stored = 0;

	(void)state;
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.max_series = 30000;
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	for (int k = 0; k < 3; k++) {
		struct tsdb_sample s[10000];
		struct tsdb_label l[10000][3];
		static char item[10000][16];
		for (int i = 0; i < 10000; i++) {
			snprintf(item[i], sizeof(item[i]), "%d", k * 10000 + i);
			l[i][0] = (struct tsdb_label){ "host", "greedy" };
			l[i][1] = (struct tsdb_label){ "cluster", "a" };
			l[i][2] = (struct tsdb_label){ "item", item[i] };
			s[i] = (struct tsdb_sample){ "q_item", l[i], 3, 1 };
		}
		stored += tsdb_append(db, T0, s, 10000, &err);
	}
	assert_true(stored <= 10000);
	{
		struct tsdb_label l[3] = { { "host", "newcomer" }, { "cluster", "b" }, { "group", "g" } };
		struct tsdb_sample s[2] = { { "cpu_busy_pct", l, 3, 10 }, { "mem_used_pct", l, 3, 20 } };
		assert_int_equal(tsdb_append(db, T0, s, 2, &err), 2);
	}
	tsdb_close(db);
}

static void
test_quota_accounting(void **state)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb_append_info in;
	struct tsdb_owner_stats st;
	struct tsdb_limits more = { 120, 0 };
	struct tsdb *db;
	pid_t pid;
	int status;

	(void)state;
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.host_max_series = 100;
	o.cluster_max_series = 250;
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	/* per host: 100 stored, 50 refused and reported */
	assert_int_equal(push_items(db, "c", "h1", 0, 150, T0, NULL, &in), 100);
	assert_int_equal(in.refused, 50);
	assert_int_equal(in.reason, TSDB_REFUSED_HOST);
	assert_true(in.note);
	assert_int_equal(in.host_series, 100);
	assert_int_equal(in.host_refused, 50);
	/* the existing series keep being written; the refusal is not
	 * reported again within the hour */
	assert_int_equal(push_items(db, "c", "h1", 0, 150, T0 + STEP, NULL, &in), 100);
	assert_int_equal(in.refused, 50);
	assert_false(in.note);
	assert_int_equal(in.host_refused, 100);
	/* per cluster: h2 fills to 200, h3 gets 50 of 100 */
	assert_int_equal(push_items(db, "c", "h2", 0, 100, T0, NULL, &in), 100);
	assert_int_equal(in.refused, 0);
	assert_int_equal(push_items(db, "c", "h3", 0, 100, T0, NULL, &in), 50);
	assert_int_equal(in.reason, TSDB_REFUSED_CLUSTER);
	/* another cluster is not affected */
	assert_int_equal(push_items(db, "d", "h1", 0, 100, T0, NULL, &in), 100);
	/* a cluster's own quota: h1 of d may have 120 */
	assert_int_equal(push_items(db, "d", "h1", 0, 150, T0 + STEP, &more, &in), 120);
	assert_int_equal(in.refused, 30);
	tsdb_owner_stats(db, "c", "h1", &st);
	assert_int_equal(st.series, 100);
	assert_int_equal(st.refused, 100);
	assert_int_equal(st.reason, TSDB_REFUSED_HOST);
	assert_int_equal(st.cluster_series, 250);
	tsdb_owner_stats(db, "c", NULL, &st);
	assert_int_equal(st.series, 250);
	tsdb_owner_stats(db, "d", "h1", &st);
	assert_int_equal(st.series, 120);
	tsdb_owner_stats(db, "nope", "h1", &st);
	assert_int_equal(st.series, 0);
	tsdb_close(db);

	/* reopened from the blocks and the head: the counts are rebuilt, what
	 * was accepted stays, the quota still holds */
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	tsdb_owner_stats(db, "c", "h1", &st);
	assert_int_equal(st.series, 100);
	assert_int_equal(st.refused, 0);
	tsdb_owner_stats(db, "c", NULL, &st);
	assert_int_equal(st.series, 250);
	assert_int_equal(push_items(db, "c", "h1", 1000, 1, T0 + 2 * STEP, NULL, &in), 0);
	assert_int_equal(in.reason, TSDB_REFUSED_HOST);
	tsdb_close(db);

	/* a crash after appends: the WAL replay rebuilds the counts too */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tsdb *c = tsdb_open(dir, &o, &err);
		if (c == NULL || push_items(c, "e", "h9", 0, 60, T0, NULL, &in) != 60)
			_exit(1);
		_exit(0); /* no close: only the WAL has them */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	tsdb_owner_stats(db, "e", "h9", &st);
	assert_int_equal(st.series, 60);
	tsdb_owner_stats(db, "e", NULL, &st);
	assert_int_equal(st.series, 60);
	assert_int_equal(push_items(db, "e", "h9", 0, 101, T0 + STEP, NULL, &in), 100);
	tsdb_close(db);
}

static void
test_note_decide(void **state)
{
	(void)state;
	assert_true(tsdb_note_decide(1000, 0));
	assert_false(tsdb_note_decide(1000 + TSDB_NOTE_INTERVAL_MS - 1, 1000));
	assert_true(tsdb_note_decide(1000 + TSDB_NOTE_INTERVAL_MS, 1000));
	assert_true(tsdb_note_decide(500, 1000)); /* the clock went back */
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted lines of text (in place); returns their count. */
static size_t
lines_sorted(char *text, char ***out)
{
	size_t n = 0, cap = 16;
	char **l = malloc(cap * sizeof(*l)), *save = NULL;

	for (char *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		if (n == cap)
			l = realloc(l, (cap *= 2) * sizeof(*l));
		l[n++] = t;
	}
	qsort(l, n, sizeof(*l), cmp_line);
	*out = l;
	return n;
}

/* tsdb_latest_page_any: the series of the named hosts only (each set by
 * itself), unknown ones none, paged like tsdb_latest_page. */
static void
test_latest_any(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_series_info *si;
	struct tsdb_matcher g[2] = { { "cluster", "demo", false }, { "group", "node", false } };
	struct tsdb_matcher h[3] = { { "host", "node-3", false }, { "host", "node-7", false },
				     { "host", "nobody", false } };
	struct tsdb_match_set alt[4] = { { &h[0], 1 }, { &h[1], 1 }, { &h[2], 1 }, { &h[0], 1 } };
	struct tsdb_matcher cw[2] = { { "cluster", "other", false }, { "host", "node-7", false } };
	struct tsdb_match_set wrong[1] = { { cw, 2 } };
	size_t n, total = 0, busy = 0;
	uint32_t cur = 0;

	(void)state;
	for (int i = 1; i <= 20; i++)
		push(db, i, T0, i);
	/* node-3 (twice: once in the answer), node-7, an unknown name; pages of 3 */
	do {
		assert_int_equal(tsdb_latest_page_any(db, NULL, g, 2, alt, 4, 0, &cur, 3, &si, &n, &err), 0);
		assert_true(n <= 3);
		for (size_t i = 0; i < n; i++) {
			const char *host = NULL;
			for (size_t j = 0; j < si[i].nlabels; j++)
				if (strcmp(si[i].labels[j].name, "host") == 0)
					host = si[i].labels[j].value;
			assert_non_null(host);
			assert_true(strcmp(host, "node-3") == 0 || strcmp(host, "node-7") == 0);
			if (strcmp(si[i].metric, "busy") == 0) {
				busy++;
				assert_true(si[i].last_value == (strcmp(host, "node-3") == 0 ? 3 : 7));
			}
		}
		total += n;
		tsdb_series_free(si, n);
	} while (cur != UINT32_MAX);
	assert_int_equal(total, 8);   /* 4 series of each host */
	assert_int_equal(busy, 2);
	/* by metric */
	cur = 0;
	assert_int_equal(tsdb_latest_page_any(db, "busy", g, 2, alt, 3, 0, &cur, 100, &si, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cur, UINT32_MAX);
	tsdb_series_free(si, n);
	/* a set whose own matchers contradict m's: nothing */
	cur = 0;
	assert_int_equal(tsdb_latest_page_any(db, NULL, g, 2, wrong, 1, 0, &cur, 100, &si, &n, &err), 0);
	assert_int_equal(n, 0);
	tsdb_series_free(si, n);
	/* no sets: nothing (not the whole group) */
	cur = 0;
	assert_int_equal(tsdb_latest_page_any(db, NULL, g, 2, NULL, 0, 0, &cur, 100, &si, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cur, UINT32_MAX);
	tsdb_series_free(si, n);
	tsdb_close(db);
}

static void
test_pages_and_stream(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_series_info *si;
	struct tsdb_matcher g[1] = { { "cluster", "demo", false } };
	struct tsdb_expose_cursor *c;
	struct buf whole, part;
	char **a, **b;
	size_t n, total = 0, pages = 0, na, nb;
	uint32_t cur = 0;
	char *keys[400];

	(void)state;
	for (int h = 1; h <= 100; h++)
		push(db, h, T0, h);
	/* 400 series: pages of 7, each series exactly once */
	do {
		assert_int_equal(tsdb_latest_page(db, NULL, g, 1, 0, &cur, 7, &si, &n, &err), 0);
		assert_true(n <= 7);
		assert_true(total + n <= 400);
		for (size_t i = 0; i < n; i++) {
			char key[256];
			int len = snprintf(key, sizeof(key), "%s", si[i].metric);
			for (size_t j = 0; j < si[i].nlabels; j++)
				len += snprintf(key + len, sizeof(key) - (size_t)len, ",%s=%s",
						si[i].labels[j].name, si[i].labels[j].value);
			keys[total + i] = strdup(key);
		}
		total += n;
		pages++;
		tsdb_series_free(si, n);
		/* appends meanwhile do not disturb the walk */
		if (pages == 3)
			push(db, 1, T0 + STEP, 1);
	} while (cur != UINT32_MAX);
	assert_int_equal(total, 400);
	assert_true(pages >= 400 / 7);
	qsort(keys, total, sizeof(*keys), cmp_line);
	for (size_t i = 0; i < total; i++) {
		if (i)
			assert_true(strcmp(keys[i - 1], keys[i]) != 0);
	}
	for (size_t i = 0; i < total; i++)
		free(keys[i]);
	/* limit 1, by metric */
	cur = 0;
	assert_int_equal(tsdb_latest_page(db, "busy", NULL, 0, 0, &cur, 1, &si, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(si[0].metric, "busy");
	assert_true(cur != UINT32_MAX);
	tsdb_series_free(si, n);

	/* the stream gives the same lines as the whole exposition */
	buf_init(&whole, 1 << 24);
	buf_init(&part, 1 << 24);
	assert_int_equal(tsdb_expose(db, &whole, 0, &err), 0);
	c = tsdb_expose_begin(db, 0);
	while (tsdb_expose_next(db, c, &part, 3))
		;
	tsdb_expose_end(c);
	assert_true(part.len > 0);
	na = lines_sorted(whole.p, &a);
	nb = lines_sorted(part.p, &b);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++)
		assert_string_equal(a[i], b[i]);
	free(a);
	free(b);
	buf_release(&whole);
	buf_release(&part);
	tsdb_close(db);
}

/* The per-metric counts of GET /v1/metrics match the full listing, with
 * and without matchers. */
static void
test_metric_counts(void **state)
{
	struct tsdb *db = open_db(0);
	struct herr err = HERR_INIT;
	struct tsdb_matcher sets[2][1] = { { { "cluster", "demo", false } },
					   { { "host", "node-3", false } } };

	(void)state;
	for (int h = 1; h <= 20; h++)
		push(db, h, T0 + h, h);
	for (int k = 0; k < 3; k++) {
		const struct tsdb_matcher *m = k < 2 ? sets[k] : NULL;
		size_t nm = k < 2 ? 1 : 0, n, nc, j = 0;
		struct tsdb_series_info *si;
		struct tsdb_metric_count *mc;

		assert_int_equal(tsdb_series(db, NULL, m, nm, &si, &n, &err), 0);
		assert_int_equal(tsdb_metric_counts(db, m, nm, &mc, &nc), 0);
		assert_true(nc > 0);
		for (size_t i = 0; i < nc; i++) {
			size_t cnt = 0;
			int64_t last = INT64_MIN;
			for (; j < n && strcmp(si[j].metric, mc[i].name) == 0; j++) {
				cnt++;
				if (si[j].last_ts_ms > last)
					last = si[j].last_ts_ms;
			}
			assert_int_equal(mc[i].series, cnt);
			assert_int_equal(mc[i].last_ts_ms, last);
		}
		assert_int_equal(j, n);
		tsdb_series_free(si, n);
		tsdb_metric_counts_free(mc, nc);
	}
	tsdb_close(db);
}

/* SIGTERM closes the store: with 200,000 series that took 47 s (posting
 * lists shrunk one id at a time); the bound is generous. */
static void
test_close_fast(void **state)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;
	struct tsdb_sample *s = calloc(1000, sizeof(*s));
	struct tsdb_label (*l)[4] = calloc(1000, sizeof(*l));
	char (*item)[16] = calloc(1000, sizeof(*item));
	char host[16];
	int64_t t;

	(void)state;
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.max_series = 500000;
	o.no_fsync = true;
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	/* 200 hosts x 1000 series: within the default quotas */
	for (int h = 0; h < 200; h++) {
		snprintf(host, sizeof(host), "n%d", h);
		for (int i = 0; i < 1000; i++) {
			snprintf(item[i], sizeof(item[i]), "%d", i);
			l[i][0] = (struct tsdb_label){ "host", host };
			l[i][1] = (struct tsdb_label){ "group", "node" };
			l[i][2] = (struct tsdb_label){ "cluster", "big" };
			l[i][3] = (struct tsdb_label){ "item", item[i] };
			s[i] = (struct tsdb_sample){ "q_item", l[i], 4, i };
		}
		assert_int_equal(tsdb_append(db, T0, s, 1000, &err), 1000);
	}
	t = mono_ms();
	tsdb_close(db);
	t = mono_ms() - t;
	print_message("# close with 200000 series: %lld ms\n", (long long)t);
	assert_true(t < 5000);
	free(s);
	free(l);
	free(item);
}

/* sync_interval_ms > 0: an append returns before any fdatasync (none is
 * counted, bytes wait), the syncer syncs them within its interval (a
 * bounded wait), and a process that dies without closing loses nothing
 * written (the kernel holds it). 0: one fdatasync per lone append. */
/* Steps from..to-1 of 3 hosts (fill's samples). */
static void
fill_steps(struct tsdb *db, int from, int to)
{
	for (int i = from; i < to; i++)
		for (int h = 1; h <= 3; h++)
			push(db, h, T0 + i * STEP, busy_of(h, i));
}

static void
test_sync_window(void **state)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb_stats st;
	struct tsdb *db;
	pid_t pid;
	int status;

	(void)state;
	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.chunk_max_samples = 20;
	o.sync_interval_ms = 60000;
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	fill(db, 3, 10);
	tsdb_stats(db, &st);
	assert_int_equal(st.fsyncs, 0);
	assert_true(st.wal_unsynced > 0);
	tsdb_close(db);
	/* a short window: synced by the thread, no append waiting */
	o.sync_interval_ms = 20;
	db = tsdb_open(dir, &o, &err);
	assert_non_null(db);
	fill_steps(db, 10, 20);
	for (int i = 0; i < 1000; i++) {   /* at most 10 s */
		tsdb_stats(db, &st);
		if (st.wal_unsynced == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(st.wal_unsynced, 0);
	assert_true(st.fsyncs >= 1);
	tsdb_close(db);
	/* dies inside the window, without closing: all of it is there */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		o.sync_interval_ms = 60000;
		db = tsdb_open(dir, &o, &err);
		if (db == NULL)
			_exit(1);
		fill_steps(db, 20, 30);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	db = open_db(0);
	check_filled(db, 3, 30);
	/* the default: each lone append waits for its own fdatasync */
	tsdb_stats(db, &st);
	{
		uint64_t f0 = st.fsyncs;
		fill_steps(db, 30, 31);
		tsdb_stats(db, &st);
		assert_true(st.fsyncs > f0);
		assert_int_equal(st.wal_unsynced, 0);
	}
	tsdb_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ordering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_truncated_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_garbled_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expose_family, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_host_cannot_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_accounting, setup, teardown),
		cmocka_unit_test(test_note_decide),
		cmocka_unit_test_setup_teardown(test_pages_and_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_any, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metric_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_fast, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
