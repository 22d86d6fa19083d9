/* test-week.c - a simulated week at 50 hosts (issue 15): the data directory
 * (herd.db with its WAL, and tsdb/) stays flat once retention and
 * compaction run, and query results are identical across compaction.
 *
 * Everything goes through the code the server runs, on real files in a
 * temporary directory, with an injected clock (tsdb_opts.clock_ms, the
 * now_ms the model and retain_pass take): every push interval (30 s;
 * WEEK_TICK_S=10 for 10 s) each host pushes the agent's own series set
 * (col-*.c: cpu, cpu modes, load, mem, disk, net on eth0 and lo, procs,
 * uptime; a custom monitor and its monitor_up; the
 * agent_dropped_batches_total the server adds), labelled as
 * metrics_push_ingest labels them, through tsdb_append_q; every 5 minutes
 * a TSDB checkpoint followed by compactions, as its background thread
 * does; retain_pass on every tick, as the reconcile loop calls it (due
 * once a simulated minute); every hour a group scaling's activities and
 * audit rows; every 3 hours a run with output on 5 hosts (run_create,
 * run_take, run_start, run_output_add, run_result_record); every 6 hours a
 * host replaced (terminated row retained, new host, new series).
 *
 * At each simulated midnight, after the checkpoint and an SQLite WAL
 * checkpoint, the directory's allocated bytes are measured, and its peak
 * after any checkpoint of the day. With every retention at 2 days the
 * store holds 2 days of rows and samples at midnight, and up to a day
 * more before it (the TSDB drops a merged day's block whole once its
 * newest chunk is past the retention); the state repeats day after day,
 * so from day 3 on both are flat: the test asserts max/min <= 1.25 over
 * days 3..7 for each. The control runs the same simulation with every
 * retention at a year for 5 days: the size grows every day and the same
 * bound fails, so the flatness is retention's doing, not an artefact of
 * the measurement.
 *
 * Query identity: before each checkpoint that sealed a new block in the
 * first hours of a day (the previous day's window is then due for a merge)
 * raw ranges, aggregates of every kind, the model's group aggregate and
 * the series list are recorded; when the compactions that follow merged
 * anything, the same queries must answer byte for byte the same. */
#include <dirent.h>
#include <inttypes.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl/ctl.h"
#include "log.h"
#include "model/activity.h"
#include "model/audit.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "model/run.h"
#include "server.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"

#define HOSTS 50
#define CKPT_MS (5LL * 60 * 1000)        /* the TSDB's checkpoint_interval_ms */
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define RETAIN_MS (2 * DAY_MS)           /* every retention, flat run */
#define NO_RETAIN_MS (365 * DAY_MS)      /* every retention, control */
#define FLAT_MAX 1.25                    /* max/min of days 3..7 */
#define NSER 32                          /* series per host */
#define NMON_LABELS 6                    /* host, group, cluster + up to 3 */

/* a simulated midnight far from the wall clock, which must not matter */
static const int64_t T0 = 19676LL * DAY_MS;
static int64_t sim_now;
/* The agents' push interval: 30 s by default, so the week takes about
 * 30 s of CPU (the TSDB's own ingest is ~1 us a sample with its label
 * lookups: 97 M samples at 10 s are ~100 s); WEEK_TICK_S=10 runs it at
 * 10 s (a divisor of 300). */
static int64_t tick_ms = 30000;

static int64_t
sim_clock(void)
{
	return sim_now;
}

/* --- the agent's series set --- */

struct ser {
	const char *metric;
	const char *k1, *v1, *k2, *v2;   /* besides host/group/cluster */
};

static const struct ser sers[NSER] = {
	{ "cpu_busy_pct", "scope", "machine", NULL, NULL },
	{ "cpu_mode_pct", "scope", "machine", "mode", "user" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "nice" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "system" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "idle" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "iowait" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "irq" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "softirq" },
	{ "cpu_mode_pct", "scope", "machine", "mode", "steal" },
	{ "load1", "scope", "machine", NULL, NULL },
	{ "load5", "scope", "machine", NULL, NULL },
	{ "load15", "scope", "machine", NULL, NULL },
	{ "mem_total_bytes", "scope", "machine", NULL, NULL },
	{ "mem_available_bytes", "scope", "machine", NULL, NULL },
	{ "mem_used_bytes", "scope", "machine", NULL, NULL },
	{ "mem_used_pct", "scope", "machine", NULL, NULL },
	{ "disk_used_bytes", "scope", "machine", "mount", "/" },
	{ "disk_free_bytes", "scope", "machine", "mount", "/" },
	{ "disk_used_pct", "scope", "machine", "mount", "/" },
	{ "net_rx_bytes_per_s", "scope", "host", "iface", "eth0" },
	{ "net_tx_bytes_per_s", "scope", "host", "iface", "eth0" },
	{ "net_rx_errors_per_s", "scope", "host", "iface", "eth0" },
	{ "net_tx_errors_per_s", "scope", "host", "iface", "eth0" },
	{ "net_rx_bytes_per_s", "scope", "host", "iface", "lo" },
	{ "net_tx_bytes_per_s", "scope", "host", "iface", "lo" },
	{ "net_rx_errors_per_s", "scope", "host", "iface", "lo" },
	{ "net_tx_errors_per_s", "scope", "host", "iface", "lo" },
	{ "procs", "scope", "host", NULL, NULL },
	{ "uptime_s", "scope", "machine", NULL, NULL },
	{ "queue_depth", "monitor", "queue_depth", NULL, NULL }, /* a one-number monitor */
	{ "monitor_up", "monitor", "queue_depth", NULL, NULL },
	{ "agent_dropped_batches_total", NULL, NULL, NULL, NULL },
};

/* --- the simulation's state --- */

struct slot {
	char id[16], name[32];
	int64_t born_ms;
	uint64_t rng;
	struct tsdb_label lab[NSER][NMON_LABELS];
	struct tsdb_sample smp[NSER];
};

static char dir[128];
static struct server srv;
static struct slot slots[HOSTS];
static int next_seq = 1;
static int merges_checked;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double
round_to(double v, double unit)
{
	return floor(v / unit + 0.5) * unit;
}

/* This tick's values of a slot: shapes like a real host's (a daily cycle,
 * noise, counters that climb), with the agent's rounding. */
static void
values(struct slot *sl, int64_t t)
{
	double day = sin((double)(t % DAY_MS) / (double)DAY_MS * 2 * M_PI);
	double noise = (double)(rnd(&sl->rng) % 1000) / 1000;
	double busy = 25 + 15 * day + 10 * noise, up = (double)(t - sl->born_ms) / 1000;
	double used = 6e8 + 2e8 * day + (double)(rnd(&sl->rng) % 4096) * 4096;
	double disk = 4e9 + (double)((t - sl->born_ms) / 60000) * 8192;
	double v[NSER];
	int k = 0;

	v[k++] = round_to(busy, 0.01);
	v[k++] = round_to(busy * 0.6, 0.01);
	v[k++] = 0;
	v[k++] = round_to(busy * 0.3, 0.01);
	v[k++] = round_to(100 - busy, 0.01);
	v[k++] = round_to(busy * 0.05 * noise, 0.01);
	v[k++] = 0;
	v[k++] = round_to(busy * 0.05, 0.01);
	v[k++] = 0;
	v[k++] = round_to(busy / 50 + noise, 0.01);
	v[k++] = round_to(busy / 50 + 0.5, 0.01);
	v[k++] = round_to(busy / 50 + 0.3, 0.01);
	v[k++] = 2147483648.0;
	v[k++] = 2147483648.0 - used;
	v[k++] = used;
	v[k++] = round_to(100 * used / 2147483648.0, 0.01);
	v[k++] = disk;
	v[k++] = 2e10 - disk;
	v[k++] = round_to(100 * disk / 2e10, 0.01);
	v[k++] = round_to(busy * 4000 + (double)(rnd(&sl->rng) % 20000), 1);
	v[k++] = round_to(busy * 9000 + (double)(rnd(&sl->rng) % 50000), 1);
	v[k++] = 0;
	v[k++] = rnd(&sl->rng) % 5000 == 0 ? 0.1 : 0;
	v[k++] = round_to((double)(rnd(&sl->rng) % 300), 1);
	v[k] = v[k - 1];
	k++;
	v[k++] = 0;
	v[k++] = 0;
	v[k++] = (double)(40 + rnd(&sl->rng) % 8);
	v[k++] = round_to(up, 1);
	v[k++] = (double)(rnd(&sl->rng) % 12);
	v[k++] = 1;
	v[k++] = 0;
	for (int i = 0; i < NSER; i++)
		sl->smp[i].value = v[i];
}

/* The slot's samples and labels, as metrics_push_ingest builds them. */
static void
slot_labels(struct slot *sl)
{
	for (int i = 0; i < NSER; i++) {
		struct tsdb_label *l = sl->lab[i];
		size_t n = 0;

		l[n++] = (struct tsdb_label){ "host", sl->name };
		l[n++] = (struct tsdb_label){ "group", "web" };
		l[n++] = (struct tsdb_label){ "cluster", "prod" };
		if (sers[i].k1)
			l[n++] = (struct tsdb_label){ sers[i].k1, sers[i].v1 };
		if (sers[i].k2)
			l[n++] = (struct tsdb_label){ sers[i].k2, sers[i].v2 };
		sl->smp[i] = (struct tsdb_sample){ sers[i].metric, l, n, 0 };
	}
}

/* --- the store's rows, through the model --- */

static void
put_res(const struct kind *k, const char *scope, const char *name, const char *spec)
{
	struct herr err = HERR_INIT;
	json_t *j = json_loads(spec, 0, NULL);
	bool created;

	assert_non_null(j);
	if (kind_validate(k, j, NULL, "", &err) < 0 ||
	    (k == &kind_script && script_store_version(srv.store, name, j, &err) < 0) ||
	    res_put(srv.store, k, scope, name, j, "", &created, &err) < 0)
		fail_msg("put %s %s: %s", k->name, name, err.msg);
	json_decref(j);
}

/* A new ready host in slot h at t (a launch, as far as the rows go). */
static void
host_launch(int h, int64_t t)
{
	struct slot *sl = &slots[h];
	struct herr err = HERR_INIT;
	struct host ho;
	int seq = next_seq++;

	memset(&ho, 0, sizeof(ho));
	snprintf(sl->id, sizeof(sl->id), "h%06d", seq);
	snprintf(sl->name, sizeof(sl->name), "web-%d", seq);
	snprintf(ho.id, sizeof(ho.id), "%s", sl->id);
	snprintf(ho.name, sizeof(ho.name), "%s", sl->name);
	snprintf(ho.cluster, sizeof(ho.cluster), "prod");
	snprintf(ho.grp, sizeof(ho.grp), "web");
	snprintf(ho.template_, sizeof(ho.template_), "tpl");
	snprintf(ho.account, sizeof(ho.account), "acc");
	snprintf(ho.network, sizeof(ho.network), "net");
	snprintf(ho.client_token, sizeof(ho.client_token), "ct-%s", sl->id);
	snprintf(ho.private_ip, sizeof(ho.private_ip), "198.18.%d.%d", 9 + seq / 250, 2 + seq % 250);
	ho.seq = seq;
	if (host_create(srv.store, &ho, "0123456789abcdef", t + 600000, t, &err) < 0 ||
	    host_state_write(srv.store, ho.id, HS_LAUNCHING, HS_READY, NULL, t, NULL, &err) < 0 ||
	    activity_add_at(srv.store, t, "prod", "web", ho.name, "launch", "replace", NULL, &err,
			    "host %s launched", ho.name) < 0)
		fail_msg("launch %s: %s", ho.name, err.msg);
	sl->born_ms = t;
	sl->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)seq;
	slot_labels(sl);
}

static void
host_replace(int h, int64_t t)
{
	struct slot *sl = &slots[h];
	struct herr err = HERR_INIT;
	struct audit_entry e = { .ts_ms = t, .who = "admin", .role = "admin", .method = "DELETE",
				 .path = "/v1/hosts/x", .status = 200 };

	if (host_state_write(srv.store, sl->id, HS_READY, HS_TERMINATING, "replaced", t, NULL,
			     &err) < 0 ||
	    host_mark_terminated(srv.store, sl->id, t + 20000, &err) < 0 ||
	    activity_add_at(srv.store, t, "prod", "web", sl->name, "terminate", "manual", NULL,
			    &err, "host %s terminated by admin", sl->name) < 0 ||
	    audit_add(srv.store, &e, &err) < 0)
		fail_msg("replace %s: %s", sl->name, err.msg);
	host_launch(h, t + 20000);
}

/* A run of "deploy" on the host in slot h, with its output, 30 s long. */
static void
run_on(int h, int64_t t)
{
	static const char line[] = "deploy: step done, 12 files changed, service restarted ok\n";
	struct run_spec rs = { .script = "deploy", .target_kind = "host",
			       .target = slots[h].name, .timeout_ms = 600000,
			       .who = "admin", .now_ms = t };
	struct herr err = HERR_INIT;
	struct run_cmd *cmds = NULL;
	struct run_output_in out = { 0 }, errout = { 0 };
	struct run_result res = { .has_exit_code = true };
	char detail[512], text[2048], reason[128];
	enum run_hstate to;
	bool cancel, repeat;
	int64_t id;
	size_t n = 0, len = 0;

	while (len + sizeof(line) < sizeof(text)) {
		memcpy(text + len, line, sizeof(line) - 1);
		len += sizeof(line) - 1;
	}
	text[len] = 0;
	out = (struct run_output_in){ text, len, 0 };
	res.out = text;
	if (run_create(&srv, &rs, &id, detail, sizeof(detail), &err) < 0 ||
	    run_take(srv.store, slots[h].id, t + 1000, 60000, 4, &cmds, &n, &err) < 0)
		fail_msg("run on %s: %s", slots[h].name, err.msg);
	assert_int_equal(n, 1);
	if (run_start(srv.store, id, slots[h].id, cmds[0].delivery, "nonce", t + 1000, &err) < 0 ||
	    run_output_add(srv.store, id, slots[h].id, cmds[0].delivery, &out, &errout, &cancel,
			   &err) < 0 ||
	    run_result_record(srv.store, id, slots[h].id, cmds[0].delivery, &res, t + 30000, &to,
			      &repeat, reason, sizeof(reason), &err) < 0)
		fail_msg("run %lld on %s: %s", (long long)id, slots[h].name, err.msg);
	run_cmds_free(cmds, n);
}

/* One simulated hour's control-plane rows: a group scaling out and back
 * (activities, audit), every 3 h a run on 5 hosts, every 6 h a host
 * replaced. */
static void
fleet_hour(int64_t t, int64_t hour)
{
	struct herr err = HERR_INIT;
	struct audit_entry e = { .ts_ms = t, .who = "admin", .role = "admin", .method = "POST",
				 .path = "/v1/clusters/prod/groups/web/scale", .status = 200,
				 .detail = "desired 50 -> 51" };
	json_t *in = json_pack("{s:f,s:i}", "avg_cpu_busy_pct", 71.5, "hosts", HOSTS);

	if (activity_add_at(srv.store, t, "prod", "web", NULL, "scale_out", "policy:busy", in,
			    &err, "avg(cpu_busy_pct) 71.5 > 70 for 5m: desired 50 -> 51") < 0 ||
	    activity_add_at(srv.store, t + 60000, "prod", "web", NULL, "scale_in", "policy:idle",
			    in, &err, "avg(cpu_busy_pct) 21.5 < 30 for 10m: desired 51 -> 50") < 0 ||
	    activity_add_at(srv.store, t + 61000, "prod", "web", NULL, "terminate", "scale_in",
			    NULL, &err, "the newest host leaves") < 0 ||
	    audit_add(srv.store, &e, &err) < 0)
		fail_msg("hour %lld: %s", (long long)hour, err.msg);
	json_decref(in);
	e.ts_ms = t + 60000;
	e.path = "/v1/apply";
	e.detail = "group web: max 60";
	if (audit_add(srv.store, &e, &err) < 0)
		fail_msg("audit: %s", err.msg);
	if (hour % 3 == 0)
		for (int k = 0; k < 5; k++)
			run_on((int)((hour / 3 * 5 + k) % HOSTS), t + 120000);
	if (hour % 6 == 5)
		host_replace((int)(hour / 6 % HOSTS), t + 300000);
}

/* --- measuring --- */

/* Allocated bytes of the regular files under path (as du counts them). */
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

static int64_t
rows_of(const char *table)
{
	struct herr err = HERR_INIT;
	char sql[128];
	json_t *row;
	int64_t n;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) AS n FROM %s", table);
	row = store_row(srv.store, &err, sql, NULL);
	if (row == NULL)
		fail_msg("%s: %s", sql, err.msg);
	n = json_integer_value(json_object_get(row, "n"));
	json_decref(row);
	return n;
}

/* --- query snapshots --- */

struct snap {
	uint8_t *p;
	size_t len, cap;
};

static void
snap_add(struct snap *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		while (s->len + n > s->cap)
			s->cap = s->cap ? s->cap * 2 : 1 << 20;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void
snap_info(struct snap *s, const struct tsdb_series_info *in)
{
	snap_add(s, in->metric, strlen(in->metric) + 1);
	for (size_t k = 0; k < in->nlabels; k++) {
		snap_add(s, in->labels[k].name, strlen(in->labels[k].name) + 1);
		snap_add(s, in->labels[k].value, strlen(in->labels[k].value) + 1);
	}
	snap_add(s, &in->first_ts_ms, sizeof(in->first_ts_ms));
	snap_add(s, &in->last_ts_ms, sizeof(in->last_ts_ms));
	snap_add(s, &in->last_value, sizeof(in->last_value));
}

static void
snap_points(struct snap *s, const struct tsdb_agg_point *pt, size_t n)
{
	snap_add(s, &n, sizeof(n));
	for (size_t i = 0; i < n; i++) {   /* field by field: the struct has padding */
		snap_add(s, &pt[i].ts_ms, sizeof(pt[i].ts_ms));
		snap_add(s, &pt[i].value, sizeof(pt[i].value));
		snap_add(s, &pt[i].nseries, sizeof(pt[i].nseries));
	}
}

/* Every query kind the store answers: raw ranges of two hosts' every
 * series (the whole store, and a window across midnight); aggregates of
 * every kind across all hosts at 1 min, 7 min and 1 h steps over the
 * last 3 days; the model's group aggregate the autoscaler reads; the
 * series list with each one's first and last sample. */
static void
snapshot(struct snap *s)
{
	static const char *const agg_metrics[] = { "cpu_busy_pct", "mem_used_bytes",
						   "net_rx_bytes_per_s", "queue_depth" };
	const int64_t steps[] = { 60000, 7 * 60000, HOUR_MS };
	const int64_t mid = sim_now - sim_now % DAY_MS;
	struct herr err = HERR_INIT;
	struct tsdb_series_info *si;
	struct tsdb_agg_point *pt;
	size_t n;

	s->len = 0;
	for (int h = 0; h < HOSTS; h += HOSTS / 2 - 1) {
		struct tsdb_matcher m = { "host", slots[h].name, false };
		const int64_t ranges[][2] = { { 0, INT64_MAX },
					      { mid - 3 * HOUR_MS - 123, mid + 7 * 60000 } };

		for (int i = 0; i < NSER; i++)
			for (int r = 0; r < 2; r++) {
				struct tsdb_range_series *rs;

				if (tsdb_range(srv.tsdb, sers[i].metric, &m, 1, ranges[r][0],
					       ranges[r][1], 10000000, &rs, &n, &err) < 0)
					fail_msg("range %s: %s", sers[i].metric, err.msg);
				snap_add(s, &n, sizeof(n));
				for (size_t k = 0; k < n; k++) {
					snap_info(s, &rs[k].info);
					snap_add(s, &rs[k].n, sizeof(rs[k].n));
					snap_add(s, rs[k].ts_ms, rs[k].n * sizeof(*rs[k].ts_ms));
					snap_add(s, rs[k].values, rs[k].n * sizeof(*rs[k].values));
				}
				tsdb_range_free(rs, n);
			}
	}
	for (size_t i = 0; i < sizeof(agg_metrics) / sizeof(agg_metrics[0]); i++)
		for (int agg = AGG_AVG; agg <= AGG_COUNT; agg++)
			for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
				if (tsdb_agg(srv.tsdb, agg_metrics[i], NULL, 0, (enum expr_agg)agg,
					     sim_now - 3 * DAY_MS, sim_now, steps[k], &pt, &n,
					     &err) < 0)
					fail_msg("agg %s: %s", agg_metrics[i], err.msg);
				snap_points(s, pt, n);
				free(pt);
			}
	if (metrics_group_agg(&srv, "prod", "web", "cpu_busy_pct", AGG_AVG, sim_now, RETAIN_MS,
			      60000, NULL, 0, &pt, &n, &err) < 0)
		fail_msg("group agg: %s", err.msg);
	snap_points(s, pt, n);
	free(pt);
	if (tsdb_series(srv.tsdb, NULL, NULL, 0, &si, &n, &err) < 0)
		fail_msg("series: %s", err.msg);
	snap_add(s, &n, sizeof(n));
	for (size_t k = 0; k < n; k++)
		snap_info(s, &si[k]);
	tsdb_series_free(si, n);
}

/* --- the simulation --- */

struct week {
	int64_t retain_ms;     /* every retention: rows and metrics */
	int days;
	uint64_t bytes[8];     /* [d]: the directory at the end of day d */
	uint64_t peak[8];      /* [d]: its largest after a checkpoint during day d */
	int64_t rows[8];       /* [d]: activities + audit + runs + run_hosts + hosts */
	size_t series[8], blocks[8];
};

static void
open_all(int64_t retain_ms)
{
	struct herr err = HERR_INIT;
	struct tsdb_opts o;
	char p[256];

	snprintf(dir, sizeof(dir), "/tmp/herd-test-week.XXXXXX");
	assert_non_null(mkdtemp(dir));
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	pthread_cond_init(&srv.kick, NULL);
	snprintf(p, sizeof(p), "%s/herd.db", dir);
	if ((srv.store = store_open(p, &err)) == NULL)
		fail_msg("store_open: %s", err.msg);
	srv.retain_activities_ms = retain_ms;
	srv.retain_audit_ms = retain_ms;
	srv.retain_runs_ms = retain_ms;
	srv.retain_hosts_ms = retain_ms;
	tsdb_opts_default(&o);
	o.retention_ms = retain_ms;
	o.checkpoint_interval_ms = -1;  /* the test plays the background thread */
	o.clock_ms = sim_clock;
	o.no_fsync = true;              /* 3 M appends; sizes do not depend on it */
	snprintf(p, sizeof(p), "%s/tsdb", dir);
	if ((srv.tsdb = tsdb_open(p, &o, &err)) == NULL)
		fail_msg("tsdb_open: %s", err.msg);
	put_res(&kind_account, "", "acc", "{\"driver\":\"local\"}");
	put_res(&kind_network, "", "net", "{\"account\":\"acc\",\"cidr\":\"198.18.8.0/21\"}");
	put_res(&kind_template, "", "tpl", "{\"account\":\"acc\",\"network\":\"net\"}");
	put_res(&kind_cluster, "", "prod", "{}");
	put_res(&kind_group, "prod", "web", "{\"template\":\"tpl\",\"desired\":50,\"min\":1,"
		"\"max\":60}");
	put_res(&kind_script, "", "deploy", "{\"content\":\"#!/bin/sh\\necho deploying\\n\"}");
	next_seq = 1;
	merges_checked = 0;
	for (int h = 0; h < HOSTS; h++)
		host_launch(h, T0 - HOUR_MS);
}

/* Closes and removes what open_all made; also the teardown, so a failed
 * test leaves nothing behind. */
static int
close_all(void **state)
{
	char cmd[200];

	(void)state;
	if (srv.store == NULL)
		return 0;
	tsdb_close(srv.tsdb);
	store_close(srv.store);
	pthread_mutex_destroy(&srv.lock);
	pthread_cond_destroy(&srv.kick);
	srv.store = NULL;
	srv.tsdb = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The TSDB's background step at sim_now: a checkpoint, then up to 4
 * merges (bg_main). When the checkpoint sealed a block in the first hours
 * of a day, the queries are recorded before the merges and compared after
 * them if any merge was done. */
static void
tsdb_bg(size_t *blocks_seen)
{
	struct herr err = HERR_INIT;
	struct tsdb_stats st;
	struct snap before = { 0 }, after = { 0 };
	bool check, merged = false;

	if (tsdb_checkpoint(srv.tsdb, 0, &err) < 0)
		fail_msg("checkpoint: %s", err.msg);
	tsdb_stats(srv.tsdb, &st);
	check = st.blocks > *blocks_seen && sim_now % DAY_MS < 4 * HOUR_MS;
	if (check)
		snapshot(&before);
	for (int k = 0; k < 4; k++) {
		int rc = tsdb_compact(srv.tsdb, &err);

		if (rc < 0)
			fail_msg("compact: %s", err.msg);
		if (rc == 0)
			break;
		merged = true;
	}
	if (check && merged) {
		snapshot(&after);
		if (before.len != after.len || memcmp(before.p, after.p, before.len) != 0)
			fail_msg("day %lld: query results differ across compaction (%zu vs %zu bytes)",
				 (long long)((sim_now - T0) / DAY_MS), before.len, after.len);
		merges_checked++;
	}
	free(before.p);
	free(after.p);
	tsdb_stats(srv.tsdb, &st);
	*blocks_seen = st.blocks;
}

static void
simulate(struct week *w)
{
	const int64_t ticks = w->days * (DAY_MS / tick_ms);
	struct herr err = HERR_INIT;
	size_t blocks_seen = 0;
	int64_t real = now_ms();

	open_all(w->retain_ms);
	for (int64_t tick = 0; tick < ticks; tick++) {
		const int64_t t = T0 + tick * tick_ms;

		sim_now = t;
		for (int h = 0; h < HOSTS; h++) {
			values(&slots[h], t);
			if (tsdb_append_q(srv.tsdb, t, slots[h].smp, NSER, NULL, NULL, &err) != NSER)
				fail_msg("append %s at %lld: %s", slots[h].name, (long long)tick,
					 err.msg);
		}
		if (t % HOUR_MS == 0)
			fleet_hour(t, (t - T0) / HOUR_MS);
		retain_pass(&srv, t);
		if ((t + tick_ms) % CKPT_MS != 0)
			continue;
		sim_now = t + tick_ms;
		tsdb_bg(&blocks_seen);
		{
			int d = (int)((sim_now - T0 - 1) / DAY_MS) + 1;  /* midnight ends its day */
			uint64_t b = dir_bytes(dir);

			w->peak[d] = b > w->peak[d] ? b : w->peak[d];
		}
		if (sim_now % DAY_MS == 0) {
			int d = (int)((sim_now - T0) / DAY_MS);
			json_t *r = NULL;
			struct tsdb_stats st;
			uint64_t tsdb_bytes;
			char p[256];

			if (store_q(srv.store, &r, NULL, &err, "PRAGMA wal_checkpoint(TRUNCATE)",
				    NULL) < 0)
				fail_msg("wal_checkpoint: %s", err.msg);
			json_decref(r);
			tsdb_stats(srv.tsdb, &st);
			w->bytes[d] = dir_bytes(dir);
			snprintf(p, sizeof(p), "%s/tsdb", dir);
			tsdb_bytes = dir_bytes(p);
			w->rows[d] = rows_of("activities") + rows_of("audit") + rows_of("runs") +
				     rows_of("run_hosts") + rows_of("run_output") + rows_of("hosts");
			w->series[d] = st.series;
			w->blocks[d] = st.blocks;
			print_message("#   day %d: %9" PRIu64 " bytes: tsdb %" PRIu64 " (%zu series,"
				      " %zu blocks), herd.db %" PRIu64 " (%lld rows); peak %" PRIu64
				      "; %.1f s\n", d, w->bytes[d], tsdb_bytes, st.series, st.blocks,
				      w->bytes[d] - tsdb_bytes, (long long)w->rows[d], w->peak[d],
				      (double)(now_ms() - real) / 1000);
		}
	}
}

static void
min_max(const uint64_t *v, int from, int to, uint64_t *mn, uint64_t *mx)
{
	*mn = UINT64_MAX;
	*mx = 0;
	for (int d = from; d <= to; d++) {
		*mn = v[d] < *mn ? v[d] : *mn;
		*mx = v[d] > *mx ? v[d] : *mx;
	}
}

static void
test_week_flat(void **state)
{
	struct week w = { .retain_ms = RETAIN_MS, .days = 7 };
	uint64_t mn, mx;
	struct tsdb_stats st;

	(void)state;
	print_message("# a week at %d hosts x %d series every %lld s, every retention 2d:\n",
		      HOSTS, NSER, (long long)(tick_ms / 1000));
	simulate(&w);
	tsdb_stats(srv.tsdb, &st);
	min_max(w.peak, 3, 7, &mn, &mx);
	print_message("# days 3..7, peaks: min %" PRIu64 " max %" PRIu64 " bytes: max/min %.3f\n",
		      mn, mx, (double)mx / (double)mn);
	assert_true((double)mx <= FLAT_MAX * (double)mn);
	min_max(w.bytes, 3, 7, &mn, &mx);
	print_message("# days 3..7, at midnight: min %" PRIu64 " max %" PRIu64 " bytes: max/min"
		      " %.3f; %" PRIu64 " merges, %d checked for identical answers\n",
		      mn, mx, (double)mx / (double)mn, st.compactions, merges_checked);
	/* the plateau: flat from day 3 */
	assert_true((double)mx <= FLAT_MAX * (double)mn);
	/* and it is a plateau, not an empty store: days 1, 2 grow to it */
	assert_true(w.bytes[1] < w.bytes[2] && w.bytes[2] <= mx);
	/* what the retention keeps, exactly: 2 days of hourly rows */
	assert_int_equal(rows_of("audit"), 2 * 24 * 2 + 2 * 4);
	assert_true(st.compactions > 0 && merges_checked >= 5);
	/* series of replaced hosts went with their samples: 50 hosts' worth
	 * plus those replaced in the last 2 days (8) */
	assert_true(st.series <= (HOSTS + 9) * NSER);
	assert_int_equal(close_all(NULL), 0);
}

static void
test_control_grows(void **state)
{
	struct week w = { .retain_ms = NO_RETAIN_MS, .days = 5 };
	uint64_t mn, mx;

	(void)state;
	print_message("# control: the same at every retention 365d, 5 days:\n");
	simulate(&w);
	min_max(w.bytes, 3, 5, &mn, &mx);
	print_message("# days 3..5: max/min %.3f\n", (double)mx / (double)mn);
	for (int d = 2; d <= 5; d++)
		assert_true(w.bytes[d] > w.bytes[d - 1] && w.rows[d] > w.rows[d - 1]);
	/* the bound the flat week meets fails here */
	assert_true((double)mx > FLAT_MAX * (double)mn);
	assert_int_equal(close_all(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_week_flat, close_all),
		cmocka_unit_test_teardown(test_control_grows, close_all),
	};

	const char *tick = getenv("WEEK_TICK_S");

	log_set_level(LOG_WARN);   /* an activity is an info line */
	if (tick) {
		long v = strtol(tick, NULL, 10);
		if (v < 1 || 300 % v != 0) {
			fprintf(stderr, "WEEK_TICK_S: want a divisor of 300 (10, 30, 60...)\n");
			return 2;
		}
		tick_ms = v * 1000;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
