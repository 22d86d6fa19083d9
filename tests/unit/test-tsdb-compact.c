/* test-tsdb-compact.c - TSDB block compaction (issue 15), on real files in
 * a temporary directory with an injected clock (tsdb_opts.clock_ms):
 * a week of simulated time at 50 hosts with checkpoints and compactions
 * every 5 minutes as the background thread does them, then a second week
 * under a 7-day retention (block count and directory size stay flat, every
 * sample inside the retention is there once with its value, nothing much
 * older is kept); raw and aggregated query results compared byte for byte
 * before and after compaction, while a reader and an appender run, and
 * after a reopen; and a crash at each step of a merge (temporary file
 * whole or torn, merged block beside all or some of its sources). */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb/tsdb.h"
#include "util.h"

#define DAY_MS (86400LL * 1000)
#define TICK_MS (60LL * 1000)       /* one push per host per minute */
#define CKPT_MS (5LL * 60 * 1000)   /* checkpoints as in production */
#define NMETRICS 4

static char dir[256];
static int64_t sim_now;
/* a day boundary in 2023: far from the wall clock, which must not matter */
static const int64_t T0 = 19676LL * DAY_MS;
static const char *metrics[NMETRICS] = { "cpu_busy_pct", "mem_used_bytes", "load1", "net_rx" };

static int64_t
sim_clock(void)
{
	return sim_now;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/herd-test-tsdb-compact.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void
sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

static struct tsdb *
open_at(const char *path, int64_t retention_ms)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;

	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1; /* the test plays the background thread */
	o.retention_ms = retention_ms;
	o.no_fsync = true;
	o.clock_ms = sim_clock;
	if (getenv("TSDB_TEST_NO_COMPACT"))
		o.compact_span_ms = -1; /* to watch the bounds fail without compaction */
	db = tsdb_open(path, &o, &err);
	if (db == NULL)
		fail_msg("tsdb_open: %s", err.msg);
	return db;
}

/* Host h's value of metric m at tick t: decimals, integers, a float. */
static double
value_of(int h, int m, int64_t t)
{
	switch (m) {
	case 0: return (double)((h * 7 + t * 3) % 1000) / 10;
	case 1: return 1e9 + (double)((h * 131 + t * 17) % 100000) * 4096;
	case 2: return sin((double)(t + h)) * 2 + 2;
	default: return (double)(h + t * (h + 1)) * 1500;
	}
}

static void
push_tick(struct tsdb *db, int hosts, int64_t t)
{
	struct herr err = HERR_INIT;

	for (int h = 0; h < hosts; h++) {
		char host[16];
		struct tsdb_label l[2] = { { "host", host }, { "cluster", "demo" } };
		struct tsdb_sample s[NMETRICS];

		snprintf(host, sizeof(host), "h%02d", h);
		for (int m = 0; m < NMETRICS; m++)
			s[m] = (struct tsdb_sample){ metrics[m], l, 2, value_of(h, m, t) };
		if (tsdb_append(db, T0 + t * TICK_MS, s, NMETRICS, &err) != NMETRICS)
			fail_msg("append at tick %lld: %s", (long long)t, err.msg);
	}
}

/* Ticks [from, to) with a checkpoint every 5 minutes, each followed by
 * compactions when compact (what bg_main does). */
static void
run(struct tsdb *db, int hosts, int64_t from, int64_t to, bool compact)
{
	struct herr err = HERR_INIT;

	for (int64_t t = from; t < to; t++) {
		sim_now = T0 + t * TICK_MS;
		push_tick(db, hosts, t);
		if ((t + 1) * TICK_MS % CKPT_MS != 0)
			continue;
		sim_now += TICK_MS - 1;
		if (tsdb_checkpoint(db, 0, &err) < 0)
			fail_msg("checkpoint: %s", err.msg);
		for (int k = 0; compact && k < 4; k++) {
			int rc = tsdb_compact(db, &err);
			if (rc < 0)
				fail_msg("compact: %s", err.msg);
			if (rc == 0)
				break;
		}
	}
}

/* Disk space of the regular files under path (recursive): allocated
 * blocks, as du counts them - the block being written is sparse. */
static uint64_t
dir_bytes(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	uint64_t sum = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char p[1024];
		struct stat sb;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (lstat(p, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			sum += dir_bytes(p);
		else if (S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

/* Files in path/blocks whose name ends with suffix ("" for blocks). */
static int
count_files(const char *path, const char *suffix)
{
	char b[512];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(b, sizeof(b), "%s/blocks", path);
	assert_non_null(d = opendir(b));
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (strncmp(e->d_name, "b-", 2) != 0)
			continue;
		if (sl ? (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
		       : strchr(e->d_name, '.') == NULL)
			n++;
	}
	closedir(d);
	return n;
}

/* Every sample of every series inside the retention is there once, with
 * its value; nothing older than a chunk before the cutoff survives. */
static void
check_samples(struct tsdb *db, int hosts, int64_t end_tick, int64_t retention_ms)
{
	int64_t cutoff = sim_now - retention_ms;
	struct herr err = HERR_INIT;

	for (int m = 0; m < NMETRICS; m++) {
		struct tsdb_range_series *r;
		size_t n;

		assert_int_equal(tsdb_range(db, metrics[m], NULL, 0, 0, INT64_MAX, 50000000, &r, &n,
					    &err), 0);
		assert_int_equal(n, hosts);
		for (size_t i = 0; i < n; i++) {
			int h = (int)strtol(r[i].info.labels[1].value + 1, NULL, 10); /* cluster, host */
			int64_t first = cutoff <= T0 ? 0 : (cutoff - T0 + TICK_MS - 1) / TICK_MS, kept = 0;

			assert_string_equal(r[i].info.labels[1].name, "host");
			assert_true(r[i].ts_ms[0] >= cutoff - 30 * 60 * 1000);
			for (size_t k = 0; k < r[i].n; k++) {
				int64_t t = (r[i].ts_ms[k] - T0) / TICK_MS;
				assert_int_equal(r[i].ts_ms[k], T0 + t * TICK_MS);
				if (k)
					assert_true(r[i].ts_ms[k] > r[i].ts_ms[k - 1]);
				if (r[i].values[k] != value_of(h, m, t))
					fail_msg("%s h%02d tick %lld: %.17g, want %.17g", metrics[m], h,
						 (long long)t, r[i].values[k], value_of(h, m, t));
				kept += r[i].ts_ms[k] >= cutoff;
			}
			assert_int_equal(kept, end_tick - first);
		}
		tsdb_range_free(r, n);
	}
}

static void
test_two_weeks_flat(void **state)
{
	const int hosts = 50;
	const int64_t week = 7 * DAY_MS / TICK_MS, day = DAY_MS / TICK_MS;
	uint64_t size7, smax = 0, smin = UINT64_MAX;
	size_t bmax = 0;
	struct tsdb_stats st;
	struct tsdb *db;
	double t;

	(void)state;
	sim_now = T0;
	db = open_at(dir, 7 * DAY_MS);
	t = (double)now_ms();
	run(db, hosts, 0, week, true);
	tsdb_stats(db, &st);
	size7 = dir_bytes(dir);
	print_message("# week 1: %zu series, %zu blocks (%d files), %" PRIu64 " bytes, "
		      "%" PRIu64 " compactions, %.1f s\n", st.series, st.blocks,
		      count_files(dir, ""), size7, st.compactions, ((double)now_ms() - t) / 1000);
	/* 84 blocks of 2 h without compaction: 7 windows of a day + today's */
	assert_true(st.blocks <= 7 + 12 + 1);
	for (int d = 8; d <= 14; d++) {
		uint64_t sz;
		run(db, hosts, (d - 1) * day, d * day, true);
		tsdb_stats(db, &st);
		sz = dir_bytes(dir);
		print_message("# day %d: %zu blocks (%" PRIu64 " bytes of chunk data), %" PRIu64
			      " bytes on disk (%.2f x day 7)\n", d, st.blocks, st.block_bytes, sz,
			      (double)sz / (double)size7);
		smax = sz > smax ? sz : smax;
		smin = sz < smin ? sz : smin;
		bmax = st.blocks > bmax ? st.blocks : bmax;
	}
	/* retention 7 d: between 7 and 8 windows of data, so flat */
	assert_true(bmax <= 7 + 12 + 2);
	assert_true((double)smax <= 1.3 * (double)size7);
	assert_true((double)smin >= 0.85 * (double)size7);
	check_samples(db, hosts, 2 * week, 7 * DAY_MS);
	tsdb_close(db);
	/* the files alone say the same */
	db = open_at(dir, 7 * DAY_MS);
	check_samples(db, hosts, 2 * week, 7 * DAY_MS);
	assert_int_equal(count_files(dir, ".tmp"), 0);
	tsdb_close(db);
}

/* --- query snapshots, compared byte for byte --- */

struct snap {
	uint8_t *p;
	size_t len, cap;
};

static void
snap_add(struct snap *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		while (s->len + n > s->cap)
			s->cap = s->cap ? s->cap * 2 : 65536;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

/* Raw ranges (whole, across block and window edges, inside one block) and
 * aggregates of every kind at several steps, of metric m. */
static void
snapshot(struct tsdb *db, const char *metric, struct snap *s)
{
	const int64_t ranges[][2] = {
		{ 0, INT64_MAX },
		{ T0 + DAY_MS - 7 * 60 * 1000, T0 + DAY_MS + 7 * 60 * 1000 },
		{ T0 + 2 * 3600 * 1000 - 1, T0 + 4 * 3600 * 1000 + 1 },
		{ T0 + 5 * 3600 * 1000 + 123, T0 + 2 * DAY_MS + 11 * 3600 * 1000 },
		{ T0 + 2 * DAY_MS + 1000, T0 + 2 * DAY_MS + 9000 },
	};
	const int64_t steps[] = { 60 * 1000, 7 * 60 * 1000, 3600 * 1000 };
	struct herr err = HERR_INIT;

	s->len = 0;
	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		struct tsdb_range_series *rs;
		size_t n;

		assert_int_equal(tsdb_range(db, metric, NULL, 0, ranges[r][0], ranges[r][1], 50000000,
					    &rs, &n, &err), 0);
		snap_add(s, &n, sizeof(n));
		for (size_t i = 0; i < n; i++) {
			for (size_t k = 0; k < rs[i].info.nlabels; k++)
				snap_add(s, rs[i].info.labels[k].value, strlen(rs[i].info.labels[k].value) + 1);
			snap_add(s, &rs[i].n, sizeof(rs[i].n));
			snap_add(s, rs[i].ts_ms, rs[i].n * sizeof(*rs[i].ts_ms));
			snap_add(s, rs[i].values, rs[i].n * sizeof(*rs[i].values));
			snap_add(s, &rs[i].info.first_ts_ms, sizeof(int64_t));
			snap_add(s, &rs[i].info.last_ts_ms, sizeof(int64_t));
		}
		tsdb_range_free(rs, n);
		if (ranges[r][1] == INT64_MAX)
			continue;
		for (int agg = AGG_AVG; agg <= AGG_COUNT; agg++)
			for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
				struct tsdb_agg_point *pt;
				size_t np;
				assert_int_equal(tsdb_agg(db, metric, NULL, 0, (enum expr_agg)agg,
							  ranges[r][0], ranges[r][1], steps[k], &pt,
							  &np, &err), 0);
				snap_add(s, &np, sizeof(np));
				for (size_t i = 0; i < np; i++) {
					snap_add(s, &pt[i].ts_ms, sizeof(pt[i].ts_ms));
					snap_add(s, &pt[i].value, sizeof(pt[i].value));
					snap_add(s, &pt[i].nseries, sizeof(pt[i].nseries));
				}
				free(pt);
			}
	}
}

/* A quick one for the reader: raw across a window edge and its average. */
static void
snapshot_small(struct tsdb *db, struct snap *s)
{
	struct herr err = HERR_INIT;
	struct tsdb_range_series *rs;
	struct tsdb_agg_point *pt;
	size_t n;

	s->len = 0;
	assert_int_equal(tsdb_range(db, metrics[0], NULL, 0, T0 + DAY_MS - 7 * 60 * 1000,
				    T0 + DAY_MS + 7 * 60 * 1000, 1000000, &rs, &n, &err), 0);
	for (size_t i = 0; i < n; i++) {
		snap_add(s, rs[i].ts_ms, rs[i].n * sizeof(*rs[i].ts_ms));
		snap_add(s, rs[i].values, rs[i].n * sizeof(*rs[i].values));
	}
	tsdb_range_free(rs, n);
	assert_int_equal(tsdb_agg(db, metrics[0], NULL, 0, AGG_AVG, T0 + 3600 * 1000,
				  T0 + 2 * DAY_MS, 60 * 1000, &pt, &n, &err), 0);
	for (size_t i = 0; i < n; i++) { /* field by field: the struct has padding */
		snap_add(s, &pt[i].ts_ms, sizeof(pt[i].ts_ms));
		snap_add(s, &pt[i].value, sizeof(pt[i].value));
		snap_add(s, &pt[i].nseries, sizeof(pt[i].nseries));
	}
	free(pt);
}

static void
snap_equal(const struct snap *a, const struct snap *b, const char *what)
{
	if (a->len != b->len || memcmp(a->p, b->p, a->len) != 0)
		fail_msg("query results differ %s (%zu vs %zu bytes)", what, a->len, b->len);
}

static void
snapshots(struct tsdb *db, struct snap *s)
{
	for (int m = 0; m < NMETRICS; m++)
		snapshot(db, metrics[m], &s[m]);
}

static void
snaps_equal(const struct snap *a, const struct snap *b, const char *what)
{
	for (int m = 0; m < NMETRICS; m++)
		snap_equal(&a[m], &b[m], what);
}

static void
snaps_free(struct snap *s)
{
	for (int m = 0; m < NMETRICS; m++)
		free(s[m].p);
}

struct reader {
	struct tsdb *db;
	const struct snap *want;
	atomic_bool stop;
	atomic_int rounds;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct snap s = { 0 };

	while (!r->stop) {
		snapshot_small(r->db, &s);
		snap_equal(&s, r->want, "during a compaction");
		r->rounds++;
	}
	free(s.p);
	return NULL;
}

static void *
appender_main(void *arg)
{
	struct reader *r = arg;
	struct herr err = HERR_INIT;
	struct tsdb_label l = { "host", "other" };
	struct tsdb_sample s = { "other_metric", &l, 1, 1.0 };

	for (int64_t i = 0; !r->stop; i++) {
		s.value = (double)i;
		if (tsdb_append(r->db, sim_now - 3600 * 1000 + i, &s, 1, &err) != 1)
			fail_msg("append during a compaction: %s", err.msg);
		r->rounds++;
	}
	return NULL;
}

static void
test_identical(void **state)
{
	struct snap before[NMETRICS] = { 0 }, after[NMETRICS] = { 0 }, small = { 0 };
	struct reader rd = { 0 }, ap = { 0 };
	pthread_t tr, ta;
	struct herr err = HERR_INIT;
	struct tsdb_stats st0, st;
	struct tsdb *db;
	int rc, merges = 0;

	(void)state;
	sim_now = T0;
	db = open_at(dir, 30 * DAY_MS);
	run(db, 20, 0, 3 * DAY_MS / TICK_MS + 120, false);
	tsdb_stats(db, &st0);
	snapshots(db, before);
	snapshot_small(db, &small);
	rd.db = ap.db = db;
	rd.want = &small;
	pthread_create(&tr, NULL, reader_main, &rd);
	pthread_create(&ta, NULL, appender_main, &ap);
	while (atomic_load(&rd.rounds) == 0 || atomic_load(&ap.rounds) == 0)
		usleep(1000); /* both under way before the first merge */
	while ((rc = tsdb_compact(db, &err)) > 0)
		merges++;
	assert_int_equal(rc, 0);
	atomic_store(&rd.stop, true);
	atomic_store(&ap.stop, true);
	pthread_join(tr, NULL);
	pthread_join(ta, NULL);
	tsdb_stats(db, &st);
	print_message("# %d merges: %zu blocks (%" PRIu64 " bytes) -> %zu (%" PRIu64 " bytes); "
		      "%d queries and %d appends ran meanwhile\n", merges, st0.blocks,
		      st0.block_bytes, st.blocks, st.block_bytes, atomic_load(&rd.rounds),
		      atomic_load(&ap.rounds));
	assert_int_equal(merges, 3); /* three whole days; the fourth is today */
	assert_true(st.blocks < st0.blocks);
	assert_true(st.block_bytes < st0.block_bytes);
	assert_true(st.chunks >= st0.chunks); /* the appender's may be cut meanwhile */
	snapshots(db, after);
	snaps_equal(before, after, "after compaction");
	tsdb_close(db);
	db = open_at(dir, 30 * DAY_MS);
	snapshots(db, after);
	snaps_equal(before, after, "after a reopen");
	assert_int_equal(tsdb_compact(db, &err), 0); /* nothing left to merge */
	tsdb_close(db);
	snaps_free(before);
	snaps_free(after);
	free(small.p);
}

/* --- crash points --- */

/* The names (b-N) in pre/blocks missing from post/blocks: the sources a
 * merge unlinked; *first gets the name of the merged block. */
static int
removed_sources(const char *pre, const char *post, char names[][32], int max, char *first)
{
	char b[512], p[1024];
	struct dirent **e;
	int n, k = 0;
	struct stat sb;

	snprintf(b, sizeof(b), "%s/blocks", pre);
	n = scandir(b, &e, NULL, alphasort);
	assert_true(n > 0);
	first[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strncmp(e[i]->d_name, "b-", 2) == 0) {
			snprintf(p, sizeof(p), "%s/blocks/%s", post, e[i]->d_name);
			if (stat(p, &sb) == 0) {
				if (k == 0)
					snprintf(first, 32, "%s", e[i]->d_name);
			} else if (k < max) {
				snprintf(names[k++], 32, "%s", e[i]->d_name);
			}
		}
		free(e[i]);
	}
	free(e);
	return k;
}

static void
crash_case(const char *path, const struct snap *want, int blocks, const char *what)
{
	struct snap got[NMETRICS] = { 0 };
	struct tsdb_stats st;
	struct tsdb *db = open_at(path, 30 * DAY_MS);

	snapshots(db, got);
	snaps_equal(want, got, what);
	tsdb_stats(db, &st);
	assert_int_equal(st.blocks, blocks);
	assert_int_equal(count_files(path, ".tmp"), 0);
	assert_int_equal(count_files(path, ""), blocks);
	tsdb_close(db);
	snaps_free(got);
}

static void
test_crash_points(void **state)
{
	char pre[300], post[300], c[300], names[64][32], first[32];
	struct snap want[NMETRICS] = { 0 };
	struct herr err = HERR_INIT;
	struct tsdb_stats st_pre, st_post;
	struct tsdb *db;
	int nrem;
	struct stat sb;

	(void)state;
	snprintf(pre, sizeof(pre), "%s/pre", dir);
	snprintf(post, sizeof(post), "%s/post", dir);
	sim_now = T0;
	db = open_at(pre, 30 * DAY_MS);
	run(db, 10, 0, DAY_MS / TICK_MS + 300, false);
	tsdb_close(db);
	sh("cp -a '%s' '%s'", pre, post);
	db = open_at(pre, 30 * DAY_MS);
	snapshots(db, want);
	tsdb_stats(db, &st_pre);
	tsdb_close(db);
	db = open_at(post, 30 * DAY_MS);
	assert_int_equal(tsdb_compact(db, &err), 1);
	tsdb_stats(db, &st_post);
	tsdb_close(db);
	nrem = removed_sources(pre, post, names, 64, first);
	assert_true(nrem >= 2);
	assert_int_equal((int)st_post.blocks, (int)st_pre.blocks - nrem);
	print_message("# merged %s and %d more; crashes replayed around it\n", first, nrem);

	/* before the rename: the whole merged file under its temporary name */
	snprintf(c, sizeof(c), "%s/a", dir);
	sh("cp -a '%s' '%s' && cp '%s/blocks/%s' '%s/blocks/%s.tmp'", pre, c, post, first, c, first);
	crash_case(c, want, (int)st_pre.blocks, "with a whole temporary file");

	/* torn while writing it */
	snprintf(c, sizeof(c), "%s/b", dir);
	sh("cp -a '%s' '%s'", pre, c);
	{
		char src[600], dst[600];
		snprintf(src, sizeof(src), "%s/blocks/%s", post, first);
		snprintf(dst, sizeof(dst), "%s/blocks/%s.tmp", c, first);
		assert_int_equal(stat(src, &sb), 0);
		sh("head -c %lld '%s' > '%s'", (long long)sb.st_size / 2, src, dst);
	}
	crash_case(c, want, (int)st_pre.blocks, "with a torn temporary file");

	/* renamed, nothing unlinked yet: merged block and every source */
	snprintf(c, sizeof(c), "%s/c", dir);
	sh("cp -a '%s' '%s' && cp '%s/blocks/%s' '%s/blocks/%s'", pre, c, post, first, c, first);
	crash_case(c, want, (int)st_post.blocks, "with the merged block beside its sources");

	/* some unlinked: the last source only is left */
	snprintf(c, sizeof(c), "%s/d", dir);
	sh("cp -a '%s' '%s' && cp '%s/blocks/%s' '%s/blocks/'", post, c, pre, names[nrem - 1], c);
	crash_case(c, want, (int)st_post.blocks, "with one source left");

	/* and the store goes on: new blocks are numbered past the covered ones */
	db = open_at(c, 30 * DAY_MS);
	run(db, 10, DAY_MS / TICK_MS + 300, DAY_MS / TICK_MS + 600, true);
	tsdb_close(db);
	db = open_at(c, 30 * DAY_MS);
	check_samples(db, 10, DAY_MS / TICK_MS + 600, 30 * DAY_MS);
	tsdb_close(db);
	snaps_free(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identical, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_weeks_flat, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
