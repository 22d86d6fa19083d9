/* tsdb-bench.c - the metric store's benchmark program, built by
 * bench/tsdb.sh against build/libherd.a. It generates host metrics the way
 * herd's agent produces them (docs/agent-metrics.md: one timestamp per
 * batch on the 5 s grid, a late cycle now and then; percentages rounded to
 * 0.01, byte counts and rates integers, constants, counters, noisy gauges)
 * and measures herd's figures:
 *
 *   tsdb-bench openmetrics HOSTS STEPS   the same data as OpenMetrics text
 *                                        (for promtool's backfill)
 *   tsdb-bench size HOSTS STEPS DIR      bytes per sample in herd's blocks
 *   tsdb-bench codec                     encode/decode ns per sample
 *   tsdb-bench ingest DIR                samples/s on one core, and with
 *                                        fsync + 4 appenders (group commit)
 *   tsdb-bench query HOSTS DIR           group average over 1 h: median ms
 *   tsdb-bench close SERIES DIR          seconds tsdb_close takes with that
 *                                        many series (the server's SIGTERM),
 *                                        beside one write + fsync of the
 *                                        bytes it leaves on disk
 *   tsdb-bench compact HOSTS DAYS DIR    DAYS of simulated time at 1 min
 *                                        steps (checkpoints every 5 min, no
 *                                        compaction), then every merge due,
 *                                        timed beside a plain copy (read,
 *                                        write, fsync) of the same block
 *                                        files, and queries before/after */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/chunk.h"
#include "tsdb/tsdb.h"
#include "util.h"

#define STEP_MS 5000
#define MAXS 40

/* --- the data --- */

struct gen {
	uint64_t rng;
	int host;
	double busy, load[3], avail, disk, rx[2], tx[2], procs, uptime, work;
};

struct series_def {
	const char *metric, *lname, *lvalue;
};

static const struct series_def defs[] = {
	{ "cpu_busy_pct", "scope", "machine" },
	{ "cpu_mode_pct", "mode", "user" }, { "cpu_mode_pct", "mode", "nice" },
	{ "cpu_mode_pct", "mode", "system" }, { "cpu_mode_pct", "mode", "idle" },
	{ "cpu_mode_pct", "mode", "iowait" }, { "cpu_mode_pct", "mode", "irq" },
	{ "cpu_mode_pct", "mode", "softirq" }, { "cpu_mode_pct", "mode", "steal" },
	{ "load1", "scope", "machine" }, { "load5", "scope", "machine" }, { "load15", "scope", "machine" },
	{ "mem_total_bytes", "scope", "machine" }, { "mem_available_bytes", "scope", "machine" },
	{ "mem_used_bytes", "scope", "machine" }, { "mem_used_pct", "scope", "machine" },
	{ "disk_used_bytes", "mount", "/" }, { "disk_free_bytes", "mount", "/" },
	{ "disk_used_pct", "mount", "/" },
	{ "net_rx_bytes_per_s", "iface", "eth0" }, { "net_tx_bytes_per_s", "iface", "eth0" },
	{ "net_rx_bytes_per_s", "iface", "lo" }, { "net_tx_bytes_per_s", "iface", "lo" },
	{ "net_rx_errors_per_s", "iface", "eth0" }, { "net_tx_errors_per_s", "iface", "eth0" },
	{ "net_rx_errors_per_s", "iface", "lo" }, { "net_tx_errors_per_s", "iface", "lo" },
	{ "procs", "scope", "host" }, { "uptime_s", "scope", "machine" },
	{ "monitor_up", "monitor", "busy" }, { "busy", NULL, NULL },
	{ "agent_dropped_batches_total", NULL, NULL },
};
#define NS (sizeof(defs) / sizeof(defs[0]))

static double
rnd(struct gen *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return (double)(g->rng >> 11) / 9007199254740992.0;
}

static double
r2(double v)
{
	return round(v * 100) / 100;
}

static double
clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
gen_init(struct gen *g, int host)
{
	memset(g, 0, sizeof(*g));
	g->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(host + 1);
	g->host = host;
	g->busy = 20 + 40 * rnd(g);
	g->load[0] = g->load[1] = g->load[2] = 1;
	g->avail = 6e9;
	g->disk = 20e9 + 1e9 * host;
	g->procs = 100 + host % 20;
	g->uptime = 86400 + 3600 * host;
	g->work = 10 + host % 25;
}

/* One batch: the timestamp of step i and the value of each series. */
static int64_t
gen_step(struct gen *g, int64_t t0, int i, double *v)
{
	const double total = 8589934592.0;
	int64_t ts = t0 + (int64_t)i * STEP_MS;
	double iow, used;

	if (rnd(g) < 0.01)
		ts += 51 + (int64_t)(rnd(g) * 250); /* a late cycle keeps its real time */
	g->busy = clampd(g->busy + (rnd(g) - 0.5) * 8, 1, 99);
	iow = r2(rnd(g) * 2);
	v[0] = r2(g->busy);
	v[1] = r2(g->busy * 0.7);
	v[2] = 0;
	v[3] = r2(g->busy * 0.25);
	v[4] = r2(100 - g->busy - iow);
	v[5] = iow;
	v[6] = 0;
	v[7] = r2(g->busy * 0.05);
	v[8] = 0;
	for (int k = 0; k < 3; k++) {
		double a = k == 0 ? 0.08 : k == 1 ? 0.016 : 0.0055;
		g->load[k] += a * (g->busy / 25 - g->load[k]);
		v[9 + k] = r2(g->load[k]);
	}
	g->avail = clampd(g->avail + round((rnd(g) - 0.5) * 2000) * 4096, 1e9, total);
	used = total - g->avail;
	v[12] = total;
	v[13] = g->avail;
	v[14] = used;
	v[15] = r2(100 * used / total);
	if (rnd(g) < 0.3)
		g->disk += round(rnd(g) * 64) * 4096;
	v[16] = g->disk;
	v[17] = 100e9 - g->disk;
	v[18] = r2(100 * g->disk / 100e9);
	for (int k = 0; k < 2; k++) {
		double base = k == 0 ? 20000 : 300;
		g->rx[k] = round(base * (0.5 + rnd(g)));
		g->tx[k] = round(base * 0.6 * (0.5 + rnd(g)));
		v[19 + 2 * k] = g->rx[k];
		v[20 + 2 * k] = g->tx[k];
	}
	v[23] = v[24] = v[25] = v[26] = 0;
	if (rnd(g) < 0.05)
		g->procs += rnd(g) < 0.5 ? -1 : 1;
	v[27] = g->procs;
	v[28] = round(g->uptime + (double)(ts - t0) / 1000);
	v[29] = 1;
	if (rnd(g) < 0.1)
		g->work = clampd(g->work + (rnd(g) < 0.5 ? -1 : 1), 0, 40);
	v[30] = g->work;
	v[31] = 0;
	return ts;
}

static int64_t
aligned_t0(int64_t back_ms)
{
	/* on a 30-minute boundary, so the hour fills whole chunks */
	int64_t t = now_ms() - back_ms;
	return t - t % (30 * 60 * 1000);
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct tsdb *
open_db(const char *dir, bool fsync_on)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;

	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.no_fsync = !fsync_on;
	if ((db = tsdb_open(dir, &o, &err)) == NULL) {
		fprintf(stderr, "tsdb_open: %s\n", err.msg);
		exit(1);
	}
	return db;
}

/* Appends HOSTS x STEPS batches (one per host per step). */
static void
load(struct tsdb *db, int hosts, int steps, int64_t t0)
{
	struct gen *g = calloc((size_t)hosts, sizeof(*g));
	struct tsdb_label lab[NS][4];
	struct tsdb_sample s[NS];
	char hname[32];
	double v[MAXS];
	struct herr err = HERR_INIT;

	for (int h = 0; h < hosts; h++)
		gen_init(&g[h], h);
	for (int i = 0; i < steps; i++) {
		for (int h = 0; h < hosts; h++) {
			int64_t ts = gen_step(&g[h], t0, i, v);
			snprintf(hname, sizeof(hname), "node-%d", h + 1);
			for (size_t k = 0; k < NS; k++) {
				size_t nl = 0;
				lab[k][nl++] = (struct tsdb_label){ "host", hname };
				lab[k][nl++] = (struct tsdb_label){ "group", "node" };
				lab[k][nl++] = (struct tsdb_label){ "cluster", "demo" };
				if (defs[k].lname)
					lab[k][nl++] = (struct tsdb_label){ defs[k].lname, defs[k].lvalue };
				s[k] = (struct tsdb_sample){ defs[k].metric, lab[k], nl, v[k] };
			}
			if (tsdb_append(db, ts, s, NS, &err) != (int)NS) {
				fprintf(stderr, "append: %s\n", err.msg);
				exit(1);
			}
		}
	}
	free(g);
}

/* --- subcommands --- */

static int
cmd_openmetrics(int hosts, int steps)
{
	int64_t t0 = aligned_t0(2 * 3600 * 1000);
	double (*vals)[MAXS] = malloc((size_t)steps * sizeof(*vals));
	int64_t *ts = malloc((size_t)steps * sizeof(*ts));
	const char *last = "";

	/* family by family (OpenMetrics), series by series, oldest first */
	for (size_t k = 0; k < NS; k++) {
		if (strcmp(last, defs[k].metric) != 0) {
			printf("# TYPE %s gauge\n", defs[k].metric);
			last = defs[k].metric;
		}
		for (int h = 0; h < hosts; h++) {
			struct gen g;
			gen_init(&g, h);
			for (int i = 0; i < steps; i++)
				ts[i] = gen_step(&g, t0, i, vals[i]);
			for (int i = 0; i < steps; i++) {
				printf("%s{cluster=\"demo\",group=\"node\",host=\"node-%d\"", defs[k].metric, h + 1);
				if (defs[k].lname)
					printf(",%s=\"%s\"", defs[k].lname, defs[k].lvalue);
				printf("} %.17g %" PRId64 ".%03d\n", vals[i][k], ts[i] / 1000, (int)(ts[i] % 1000));
			}
		}
	}
	printf("# EOF\n");
	free(vals);
	free(ts);
	return 0;
}

static int
cmd_size(int hosts, int steps, const char *dir)
{
	struct tsdb *db = open_db(dir, false);
	struct tsdb_stats st;
	struct herr err = HERR_INIT;
	uint64_t in_chunks;

	load(db, hosts, steps, aligned_t0(2 * 3600 * 1000));
	tsdb_checkpoint(db, 0, &err);
	tsdb_stats(db, &st);
	in_chunks = st.appended - st.head_samples;
	printf("herd_series %zu\nherd_samples_in_chunks %" PRIu64 "\nherd_chunks %zu\n"
	       "herd_block_bytes %" PRIu64 "\n",
	       st.series, in_chunks, st.chunks, st.block_bytes);
	tsdb_close(db);
	return 0;
}

static int
cmd_codec(void)
{
	enum { N = 360, HOSTS = 20 };
	static int64_t ts[HOSTS][N], dts[N];
	static double v[HOSTS][NS][N], dv[N];
	static uint8_t out[HOSTS][NS][8192];
	static size_t len[HOSTS][NS], tlen[HOSTS];
	static uint8_t tout[HOSTS][4096];
	double t, enc, dec;
	size_t bytes = 0, rounds = 30, n;
	uint64_t samples = 0;
	double col[MAXS];

	for (int h = 0; h < HOSTS; h++) {
		struct gen g;
		gen_init(&g, h);
		for (int i = 0; i < N; i++) {
			ts[h][i] = gen_step(&g, aligned_t0(0), i, col);
			for (size_t k = 0; k < NS; k++)
				v[h][k][i] = col[k];
		}
	}
	/* encode: each series' values, plus one timestamp block per host batch */
	t = mono_s();
	for (size_t r = 0; r < rounds; r++)
		for (int h = 0; h < HOSTS; h++) {
			tlen[h] = chunk_ts_encode(ts[h], N, tout[h]);
			for (size_t k = 0; k < NS; k++)
				len[h][k] = chunk_val_encode(v[h][k], N, out[h][k]);
		}
	enc = (mono_s() - t) * 1e9 / (double)(rounds * HOSTS * NS * N);
	t = mono_s();
	for (size_t r = 0; r < rounds; r++)
		for (int h = 0; h < HOSTS; h++) {
			chunk_ts_decode(tout[h], tlen[h], dts, N, &n, NULL);
			for (size_t k = 0; k < NS; k++) {
				/* each series decodes its (shared) timestamps too, as a query does */
				if (k)
					chunk_ts_decode(tout[h], tlen[h], dts, N, &n, NULL);
				chunk_val_decode(out[h][k], len[h][k], N, dv, NULL);
				samples += N;
			}
		}
	dec = (mono_s() - t) * 1e9 / (double)samples;
	for (int h = 0; h < HOSTS; h++) {
		bytes += tlen[h];
		for (size_t k = 0; k < NS; k++)
			bytes += len[h][k];
	}
	printf("codec_encode_ns_per_sample %.2f\ncodec_decode_ns_per_sample %.2f\n"
	       "codec_bytes_per_sample %.3f\n", enc, dec, (double)bytes / (HOSTS * NS * N));
	return 0;
}

struct ing {
	struct tsdb *db;
	int host0, hosts, steps;
	int64_t t0;
};

static void *
ingest_thread(void *arg)
{
	struct ing *a = arg;
	struct gen *g = calloc((size_t)a->hosts, sizeof(*g));
	struct tsdb_label lab[NS][4];
	struct tsdb_sample s[NS];
	char hname[32];
	double v[MAXS];
	struct herr err = HERR_INIT;

	for (int h = 0; h < a->hosts; h++)
		gen_init(&g[h], a->host0 + h);
	for (int i = 0; i < a->steps; i++)
		for (int h = 0; h < a->hosts; h++) {
			int64_t ts = gen_step(&g[h], a->t0, i, v);
			snprintf(hname, sizeof(hname), "node-%d", a->host0 + h + 1);
			for (size_t k = 0; k < NS; k++) {
				size_t nl = 0;
				lab[k][nl++] = (struct tsdb_label){ "host", hname };
				lab[k][nl++] = (struct tsdb_label){ "group", "node" };
				lab[k][nl++] = (struct tsdb_label){ "cluster", "demo" };
				if (defs[k].lname)
					lab[k][nl++] = (struct tsdb_label){ defs[k].lname, defs[k].lvalue };
				s[k] = (struct tsdb_sample){ defs[k].metric, lab[k], nl, v[k] };
			}
			tsdb_append(a->db, ts, s, NS, &err);
		}
	free(g);
	return NULL;
}

static int
cmd_ingest(const char *dir)
{
	char d1[1024], d2[1024];
	struct tsdb *db;
	struct tsdb_stats st;
	struct ing a;
	pthread_t th[4];
	struct ing args[4];
	double t, cpu_rate, durable_rate;
	struct timespec c0, c1;

	/* CPU cost: one thread, no fsync, 100 hosts x 720 steps */
	snprintf(d1, sizeof(d1), "%s/ingest-cpu", dir);
	db = open_db(d1, false);
	a = (struct ing){ db, 0, 100, 720, aligned_t0(2 * 3600 * 1000) };
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	t = mono_s();
	ingest_thread(&a);
	t = mono_s() - t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	tsdb_stats(db, &st);
	cpu_rate = (double)st.appended /
		   ((double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
	printf("ingest_samples %" PRIu64 "\ningest_wall_s %.3f\ningest_samples_per_cpu_s %.0f\n",
	       st.appended, t, cpu_rate);
	tsdb_close(db);
	/* durable: 4 appenders with fsync, group commit */
	snprintf(d2, sizeof(d2), "%s/ingest-fsync", dir);
	db = open_db(d2, true);
	t = mono_s();
	for (int i = 0; i < 4; i++) {
		args[i] = (struct ing){ db, i * 25, 25, 40, aligned_t0(2 * 3600 * 1000) };
		pthread_create(&th[i], NULL, ingest_thread, &args[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t = mono_s() - t;
	tsdb_stats(db, &st);
	durable_rate = (double)st.appended / t;
	printf("durable_batches %d\ndurable_fsyncs %" PRIu64 "\ndurable_samples_per_s %.0f\n",
	       100 * 40, st.fsyncs, durable_rate);
	tsdb_close(db);
	return 0;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_query(int hosts, const char *dir)
{
	struct tsdb *db = open_db(dir, false);
	struct tsdb_matcher m[2] = { { "cluster", "demo", false }, { "group", "node", false } };
	int64_t t0 = aligned_t0(3600 * 1000 + 60000), to = t0 + 3600 * 1000;
	struct herr err = HERR_INIT;
	double lat[101];
	int runs = 101;

	load(db, hosts, 721, t0);
	tsdb_checkpoint(db, 0, &err);
	for (int r = 0; r < runs; r++) {
		struct tsdb_agg_point *p;
		size_t n;
		double t = mono_s();
		if (tsdb_agg(db, "cpu_busy_pct", m, 2, AGG_AVG, to - 3600 * 1000 + 1, to, 10000, &p, &n, &err) < 0) {
			fprintf(stderr, "agg: %s\n", err.msg);
			return 1;
		}
		lat[r] = (mono_s() - t) * 1000;
		if (r == 0 && (n != 360 || p[n - 1].nseries != hosts)) {
			fprintf(stderr, "agg: %zu steps, %d series in the last\n", n, p[n - 1].nseries);
			return 1;
		}
		free(p);
	}
	qsort(lat, (size_t)runs, sizeof(double), cmp_d);
	printf("query_hosts %d\nquery_samples %d\nquery_median_ms %.3f\nquery_p90_ms %.3f\n", hosts,
	       hosts * 720, lat[runs / 2], lat[runs * 9 / 10]);
	tsdb_close(db);
	return 0;
}

/* Bytes of the regular files under dir (one level of subdirectories). */
static uint64_t
dir_bytes(const char *dir)
{
	uint64_t n = 0;
	struct dirent *e;
	DIR *d = opendir(dir);
	char p[2048];
	struct stat sb;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			n += dir_bytes(p);
		else if (S_ISREG(sb.st_mode))
			n += (uint64_t)sb.st_size;
	}
	closedir(d);
	return n;
}

/* Creates nseries series (1000 per host, 3 samples each) in a store with
 * durability on and quotas out of the way, then times tsdb_close (final
 * checkpoint and freeing). The reference writes the bytes the store holds
 * on disk afterwards to one file with one fsync. */
static int
cmd_close(int nseries, const char *dir)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;
	struct tsdb_sample s[1000];
	struct tsdb_label lab[1000][4];
	char hname[32], val[1000][16], ref[2100];
	int64_t t0 = now_ms() - 60000;
	uint64_t bytes;
	double t, close_s, ref_s;
	char *chunk;
	int fd;

	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.max_series = (size_t)nseries * 2 + 2000; /* a cluster may take half */
	o.host_max_series = 1000;
	o.cluster_max_series = o.max_series;
	if ((db = tsdb_open(dir, &o, &err)) == NULL) {
		fprintf(stderr, "tsdb_open: %s\n", err.msg);
		return 1;
	}
	for (int k = 0; k < 1000; k++)
		snprintf(val[k], sizeof(val[k]), "%d", k);
	for (int step = 0; step < 3; step++)
		for (int h = 0; h * 1000 < nseries; h++) {
			snprintf(hname, sizeof(hname), "node-%d", h + 1);
			for (int k = 0; k < 1000; k++) {
				lab[k][0] = (struct tsdb_label){ "host", hname };
				lab[k][1] = (struct tsdb_label){ "group", "node" };
				lab[k][2] = (struct tsdb_label){ "cluster", "demo" };
				lab[k][3] = (struct tsdb_label){ "item", val[k] };
				s[k] = (struct tsdb_sample){ "bench_item", lab[k], 4, (double)(k + step) };
			}
			if (tsdb_append(db, t0 + step * STEP_MS, s, 1000, &err) != 1000) {
				fprintf(stderr, "append: %s\n", err.msg);
				return 1;
			}
		}
	t = mono_s();
	tsdb_close(db);
	close_s = mono_s() - t;
	bytes = dir_bytes(dir);
	snprintf(ref, sizeof(ref), "%s/ref", dir);
	chunk = calloc(1, 1 << 20);
	t = mono_s();
	fd = open(ref, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (uint64_t done = 0; fd >= 0 && done < bytes; done += 1 << 20)
		if (write(fd, chunk, bytes - done < (1 << 20) ? bytes - done : (1 << 20)) < 0)
			break;
	if (fd >= 0) {
		fdatasync(fd);
		close(fd);
	}
	ref_s = mono_s() - t;
	unlink(ref);
	free(chunk);
	printf("close_series %d\nclose_s %.3f\nclose_bytes %" PRIu64 "\nclose_ref_s %.3f\n",
	       nseries, close_s, bytes, ref_s);
	return 0;
}

static int64_t bench_now;

static int64_t
bench_clock(void)
{
	return bench_now;
}

/* Median ms of a group average over one day at 5 min steps and a raw hour
 * across a day's edge, each run 21 times. */
static void
compact_queries(struct tsdb *db, int64_t t0, double *agg_ms, double *raw_ms)
{
	struct tsdb_matcher m[2] = { { "cluster", "demo", false }, { "group", "node", false } };
	struct herr err = HERR_INIT;
	double la[21], lr[21];

	for (int r = 0; r < 21; r++) {
		struct tsdb_agg_point *p;
		struct tsdb_range_series *rs;
		size_t n;
		double t = mono_s();
		if (tsdb_agg(db, "cpu_busy_pct", m, 2, AGG_AVG, t0 + 86400000LL,
			     t0 + 2 * 86400000LL, 300000, &p, &n, &err) == 0)
			free(p);
		la[r] = (mono_s() - t) * 1000;
		t = mono_s();
		if (tsdb_range(db, "cpu_busy_pct", m, 2, t0 + 86400000LL - 1800000,
			       t0 + 86400000LL + 1800000, 10000000, &rs, &n, &err) == 0)
			tsdb_range_free(rs, n);
		lr[r] = (mono_s() - t) * 1000;
	}
	qsort(la, 21, sizeof(double), cmp_d);
	qsort(lr, 21, sizeof(double), cmp_d);
	*agg_ms = la[10];
	*raw_ms = lr[10];
}

/* The reference: every block file (the merges' sources and the last
 * day's, which stay) read and written to one file, fsynced - what any
 * rewrite of them costs at least. */
static double
compact_ref(const char *bdir, uint64_t *bytes)
{
	char out[2100], p[2400];
	struct dirent *e;
	DIR *d = opendir(bdir);
	char *buf = malloc(1 << 20);
	double t = mono_s();
	int fd;

	*bytes = 0;
	snprintf(out, sizeof(out), "%s.ref", bdir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	while (d && fd >= 0 && (e = readdir(d)) != NULL) {
		int in;
		ssize_t r;
		if (strncmp(e->d_name, "b-", 2) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", bdir, e->d_name);
		if ((in = open(p, O_RDONLY)) < 0)
			continue;
		while ((r = read(in, buf, 1 << 20)) > 0) {
			if (write(fd, buf, (size_t)r) != r)
				break;
			*bytes += (uint64_t)r;
		}
		close(in);
	}
	if (fd >= 0) {
		fdatasync(fd);
		close(fd);
	}
	t = mono_s() - t;
	if (d)
		closedir(d);
	unlink(out);
	free(buf);
	return t;
}

static int
cmd_compact(int hosts, int days, const char *dir)
{
	struct tsdb_opts o;
	struct herr err = HERR_INIT;
	struct tsdb *db;
	struct tsdb_stats st0, st;
	struct gen *g = calloc((size_t)hosts, sizeof(*g));
	struct tsdb_label lab[NS][4];
	struct tsdb_sample s[NS];
	double v[MAXS], agg0, raw0, agg1, raw1, t, cmp_s, ref_s;
	int64_t t0 = 19676LL * 86400000, steps = (int64_t)days * 1440;
	char hname[32], bdir[2048];
	uint64_t ref_bytes;
	int merges = 0, rc;

	tsdb_opts_default(&o);
	o.checkpoint_interval_ms = -1;
	o.retention_ms = (int64_t)(days + 1) * 86400000;
	o.clock_ms = bench_clock;
	o.no_fsync = true; /* loading only: compaction runs durable, below */
	bench_now = t0;
	if ((db = tsdb_open(dir, &o, &err)) == NULL) {
		fprintf(stderr, "tsdb_open: %s\n", err.msg);
		return 1;
	}
	for (int h = 0; h < hosts; h++)
		gen_init(&g[h], h);
	for (int64_t i = 0; i < steps; i++) {
		for (int h = 0; h < hosts; h++) {
			/* the generator's 5 s grid stretched to 1 min */
			int64_t ts = t0 + (gen_step(&g[h], 0, (int)i, v) - 0) * 12;
			snprintf(hname, sizeof(hname), "node-%d", h + 1);
			for (size_t k = 0; k < NS; k++) {
				size_t nl = 0;
				lab[k][nl++] = (struct tsdb_label){ "host", hname };
				lab[k][nl++] = (struct tsdb_label){ "group", "node" };
				lab[k][nl++] = (struct tsdb_label){ "cluster", "demo" };
				if (defs[k].lname)
					lab[k][nl++] = (struct tsdb_label){ defs[k].lname, defs[k].lvalue };
				s[k] = (struct tsdb_sample){ defs[k].metric, lab[k], nl, v[k] };
			}
			bench_now = ts;
			tsdb_append(db, ts, s, NS, &err);
		}
		if ((i + 1) % 5 == 0) {
			bench_now = t0 + (i + 1) * 60000;
			tsdb_checkpoint(db, 0, &err);
		}
	}
	free(g);
	/* the reference first, on the files as they are before the merges */
	tsdb_close(db);
	snprintf(bdir, sizeof(bdir), "%s/blocks", dir);
	ref_s = compact_ref(bdir, &ref_bytes);
	o.no_fsync = false;
	if ((db = tsdb_open(dir, &o, &err)) == NULL) {
		fprintf(stderr, "tsdb_open: %s\n", err.msg);
		return 1;
	}
	tsdb_stats(db, &st0);
	compact_queries(db, t0, &agg0, &raw0);
	t = mono_s();
	while ((rc = tsdb_compact(db, &err)) > 0)
		merges++;
	cmp_s = mono_s() - t;
	if (rc < 0) {
		fprintf(stderr, "compact: %s\n", err.msg);
		return 1;
	}
	tsdb_stats(db, &st);
	compact_queries(db, t0, &agg1, &raw1);
	tsdb_close(db);
	printf("compact_hosts %d\ncompact_days %d\ncompact_series %zu\ncompact_merges %d\n"
	       "compact_blocks_before %zu\ncompact_blocks_after %zu\n"
	       "compact_bytes_before %" PRIu64 "\ncompact_bytes_after %" PRIu64 "\n"
	       "compact_s %.3f\ncompact_ref_s %.3f\ncompact_ref_bytes %" PRIu64 "\n"
	       "compact_agg_ms_before %.3f\ncompact_agg_ms_after %.3f\n"
	       "compact_raw_ms_before %.3f\ncompact_raw_ms_after %.3f\ncompact_hold_ms %.3f\n",
	       hosts, days, st.series, merges, st0.blocks, st.blocks, st0.block_bytes,
	       st.block_bytes, cmp_s, ref_s, ref_bytes, agg0, agg1, raw0, raw1,
	       (double)st.compact_hold_us / 1000);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "openmetrics") == 0)
		return cmd_openmetrics(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "size") == 0)
		return cmd_size(atoi(argv[2]), atoi(argv[3]), argv[4]);
	if (argc >= 2 && strcmp(argv[1], "codec") == 0)
		return cmd_codec();
	if (argc >= 3 && strcmp(argv[1], "ingest") == 0)
		return cmd_ingest(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "query") == 0)
		return cmd_query(atoi(argv[2]), argv[3]);
	if (argc >= 4 && strcmp(argv[1], "close") == 0)
		return cmd_close(atoi(argv[2]), argv[3]);
	if (argc >= 5 && strcmp(argv[1], "compact") == 0)
		return cmd_compact(atoi(argv[2]), atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: tsdb-bench openmetrics|size|codec|ingest|query|close|compact ...\n");
	return 2;
}
