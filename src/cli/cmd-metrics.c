/* cmd-metrics.c - `herd metrics ls`, `herd metrics query` (a table of
 * time/value and a unicode sparkline) and `herd top` (a live table of hosts
 * with CPU, memory and their monitors, redrawn in place with ANSI). All of
 * it through the public API (/v1/metrics/..., /v1/hosts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "util.h"
#include "xalloc.h"

#define TABLE_ROWS 20      /* query rows shown before "... earlier" */
#define SPARK_WIDTH 60
#define TOP_INTERVAL_MS 2000

/* Appends "&key=value" (escaped) to *q when value is set. */
static void
qadd(char **q, const char *key, const char *value)
{
	char *e, *n;

	if (value == NULL)
		return;
	e = httpc_escape(value);
	n = xasprintf("%s&%s=%s", *q, key, e);
	free(e);
	free(*q);
	*q = n;
}

static const char *
clock_text(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, n, "%H:%M:%S", &tm);
	return out;
}

/* Prints a sparkline of vals (NaN = gap) scaled between their min and max. */
static void
sparkline(const double *vals, size_t n)
{
	static const char *const bars[] = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
	double lo = INFINITY, hi = -INFINITY;
	size_t width = n < SPARK_WIDTH ? n : SPARK_WIDTH;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (!isnan(vals[i])) {
			if (vals[i] < lo)
				lo = vals[i];
			if (vals[i] > hi)
				hi = vals[i];
		}
	if (lo > hi) {
		printf("(no data)\n");
		return;
	}
	for (size_t c = 0; c < width; c++) {
		/* the last value of the samples this column stands for */
		size_t i = (c + 1) * n / width - 1;
		double v = vals[i];
		int k;
		if (isnan(v)) {
			putchar(' ');
			continue;
		}
		k = hi > lo ? (int)((v - lo) / (hi - lo) * 7.0 + 0.5) : 3;
		fputs(bars[k < 0 ? 0 : k > 7 ? 7 : k], stdout);
	}
	printf("  min %.6g  max %.6g\n", lo, hi);
}

/* Table of the last TABLE_ROWS points, then the sparkline of all. */
static void
print_points(const int64_t *ts, const double *v, const int *nseries, size_t n)
{
	char t[32];
	size_t first = n > TABLE_ROWS ? n - TABLE_ROWS : 0;

	if (n == 0) {
		printf("  (no data)\n");
		return;
	}
	if (first)
		printf("  ... %zu earlier point(s) not shown (--json has them all)\n", first);
	printf("  %-10s %14s%s\n", "TIME", "VALUE", nseries ? "  SERIES" : "");
	for (size_t i = first; i < n; i++) {
		if (isnan(v[i]))
			printf("  %-10s %14s", clock_text(ts[i], t, sizeof(t)), "-");
		else
			printf("  %-10s %14.6g", clock_text(ts[i], t, sizeof(t)), v[i]);
		if (nseries)
			printf("  %6d", nseries[i]);
		putchar('\n');
	}
	printf("  ");
	sparkline(v, n);
}

int
cmd_metrics_ls(struct cli *c, int argc, char **argv)
{
	const char *host = cli_opt(c, "host"), *group = cli_opt(c, "group");
	const char *cluster = cli_opt(c, "cluster");
	json_t *resp = NULL, *items, *it;
	char *q = xstrdup("/v1/metrics?");
	size_t i;
	int rc;

	if (host && group) {
		free(q);
		return cli_fail("give --host or --group, not both");
	}
	qadd(&q, "host", host);
	qadd(&q, "group", group);
	qadd(&q, "cluster", cluster);
	rc = cli_call(c, "GET", q, NULL, &resp);
	free(q);
	if (rc)
		return rc;
	/* no metrics: a mistyped host or group is an error */
	if (json_array_size(json_object_get(resp, "items")) == 0 &&
	    (rc = cli_names_exist(c, host, group, cluster)) != 0) {
		json_decref(resp);
		return rc;
	}
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	items = json_object_get(resp, "items");
	json_array_foreach(items, i, it) {
		char age[32];
		int64_t ms = now_ms() - json_integer_value(json_object_get(it, "last_ts_ms"));
		json_object_set_new(it, "last", json_string(fmt_duration(ms < 0 ? 0 : ms, age, sizeof(age))));
	}
	cli_table(items, "name,series,last");
	json_decref(resp);
	return 0;
}

/* Whether a query answer has no sample: no series (host), or only points
 * without a value (group). */
static bool
query_is_empty(json_t *resp)
{
	json_t *x;
	size_t i;

	if (json_array_size(json_object_get(resp, "series")) > 0)
		return false;
	json_array_foreach(json_object_get(resp, "points"), i, x)
		if (json_is_number(json_object_get(x, "value")))
			return false;
	return true;
}

int
cmd_metrics_query(struct cli *c, int argc, char **argv)
{
	const char *metric = argv[1];
	const char *host = cli_opt(c, "host"), *group = cli_opt(c, "group");
	const char *agg = cli_opt(c, "agg"), *since = cli_opt(c, "since");
	const char *step = cli_opt(c, "step"), *cluster = cli_opt(c, "cluster");
	json_t *resp = NULL, *x;
	char *q;
	size_t i;
	int rc;

	if (metric == NULL || (host == NULL) == (group == NULL))
		return cli_fail("usage: herd metrics query METRIC (--host H | --group G --agg "
				"avg|min|max|sum|count) [--since 10m] [--step 10s] [--json]");
	if (group && agg == NULL)
		agg = "avg";
	q = xasprintf("/v1/metrics/query?since=%s", since ? since : "10m");
	qadd(&q, "metric", metric);
	qadd(&q, "host", host);
	qadd(&q, "group", group);
	qadd(&q, "cluster", cluster);
	qadd(&q, "agg", agg);
	qadd(&q, "step", step);
	rc = cli_call(c, "GET", q, NULL, &resp);
	free(q);
	if (rc)
		return rc;
	/* no samples: a mistyped host or group is an error, not an empty series */
	if (query_is_empty(resp) && (rc = cli_names_exist(c, host, group, cluster)) != 0) {
		json_decref(resp);
		return rc;
	}
	if (c->json) {
		cli_print_json(resp);
		json_decref(resp);
		return 0;
	}
	if (agg) {
		json_t *pts = json_object_get(resp, "points");
		size_t n = json_array_size(pts);
		int64_t *ts = xcalloc(n + 1, sizeof(*ts));
		double *v = xcalloc(n + 1, sizeof(*v));
		int *ns = xcalloc(n + 1, sizeof(*ns));
		json_array_foreach(pts, i, x) {
			json_t *val = json_object_get(x, "value");
			ts[i] = json_integer_value(json_object_get(x, "ts_ms"));
			v[i] = json_is_number(val) ? json_number_value(val) : NAN;
			ns[i] = (int)json_integer_value(json_object_get(x, "series"));
		}
		printf("%s(%s) of %s/%s, step %llds\n",
		       cli_esc(json_string_value(json_object_get(resp, "agg"))), metric,
		       cli_esc(json_string_value(json_object_get(resp, "cluster"))),
		       cli_esc(json_string_value(json_object_get(resp, "group"))),
		       (long long)json_integer_value(json_object_get(resp, "step_ms")) / 1000);
		print_points(ts, v, ns, n);
		free(ts);
		free(v);
		free(ns);
	} else {
		json_t *series = json_object_get(resp, "series");
		if (json_array_size(series) == 0)
			printf("no samples of '%s' for host %s in the window\n", metric, host);
		json_array_foreach(series, i, x) {
			json_t *pts = json_object_get(x, "points"), *p, *labels = json_object_get(x, "labels");
			size_t n = json_array_size(pts), k;
			int64_t *ts = xcalloc(n + 1, sizeof(*ts));
			double *v = xcalloc(n + 1, sizeof(*v));
			const char *key, *sep = "";
			json_t *lv;

			printf("%s{", metric);
			json_object_foreach(labels, key, lv) {
				printf("%s%s=\"%s\"", sep, cli_esc(key), cli_esc(json_string_value(lv)));
				sep = ",";
			}
			printf("}\n");
			json_array_foreach(pts, k, p) {
				json_t *val = json_array_get(p, 1);
				ts[k] = json_integer_value(json_array_get(p, 0));
				v[k] = json_is_number(val) ? json_number_value(val) : NAN;
			}
			print_points(ts, v, NULL, n);
			free(ts);
			free(v);
		}
	}
	json_decref(resp);
	return 0;
}

/* --- top --- */

/* The latest value of metric for host (preferring scope="machine" for
 * machine-wide figures, any series otherwise), or NULL. */
static json_t *
latest_of(json_t *items, const char *cluster, const char *host, const char *metric)
{
	json_t *it, *found = NULL;
	size_t i;

	json_array_foreach(items, i, it) {
		json_t *l = json_object_get(it, "labels");
		const char *m = json_string_value(json_object_get(it, "metric"));
		const char *h = json_string_value(json_object_get(l, "host"));
		const char *cl = json_string_value(json_object_get(l, "cluster"));
		if (m == NULL || h == NULL || cl == NULL || strcmp(m, metric) != 0 ||
		    strcmp(h, host) != 0 || strcmp(cl, cluster) != 0)
			continue;
		found = json_object_get(it, "value");
		break;
	}
	return found;
}

static void
cell_value(json_t *v, int decimals, char *out, size_t n)
{
	if (json_is_number(v))
		snprintf(out, n, "%.*f", decimals, json_number_value(v));
	else
		snprintf(out, n, "-");
}

#define LATEST_PAGES_MAX 100   /* pages of /v1/metrics/latest a command follows */

/* GET q (a /v1/metrics/latest URL) following "next" to the end, or for at
 * most LATEST_PAGES_MAX pages; *out gets {"items":[every page's items]}.
 * Returns 0 or the CLI exit code. */
static int
latest_all(struct cli *c, const char *q, json_t **out)
{
	json_t *all = json_array(), *page = NULL;
	char *url = xstrdup(q);
	int rc = 0;

	for (int i = 0; i < LATEST_PAGES_MAX; i++) {
		const char *next;

		if ((rc = cli_call(c, "GET", url, NULL, &page)) != 0)
			break;
		json_array_extend(all, json_object_get(page, "items"));
		next = json_string_value(json_object_get(page, "next"));
		free(url);
		url = NULL;
		if (next == NULL || *next == '\0') {
			json_decref(page);
			page = NULL;
			break;
		}
		url = xstrdup(q);
		qadd(&url, "after", next);
		json_decref(page);
		page = NULL;
	}
	free(url);
	if (rc) {
		json_decref(all);
		return rc;
	}
	*out = json_pack("{s:o}", "items", all);
	return 0;
}

/* The figures `herd top` shows, as JSON (what --json prints):
 * {"time_ms": T, "hosts": [{"cluster", "group", "name", "state",
 * "cpu_busy_pct", "mem_used_pct", "load1", "procs" (null: no recent
 * sample), "monitors": [{"monitor", "state", "value"}]}]}. Returns 0 with
 * *out (owned) or the CLI exit code. */
static int
top_fetch(struct cli *c, const char *cluster, const char *group, json_t **out)
{
	static const char *const figures[] = { "cpu_busy_pct", "mem_used_pct", "load1", "procs" };
	json_t *hosts = NULL, *latest = NULL, *mons = NULL, *h, *rows;
	char *qh = xstrdup("/v1/hosts?"), *ql = xstrdup("/v1/metrics/latest?since=2m"),
	     *qm = xstrdup("/v1/metrics/monitors?");
	size_t i;
	int rc;

	qadd(&qh, "group", group);
	qadd(&qh, "cluster", cluster);
	qadd(&ql, "group", group);
	qadd(&ql, "cluster", cluster);
	qadd(&qm, "group", group);
	qadd(&qm, "cluster", cluster);
	rc = cli_call(c, "GET", qh, NULL, &hosts);
	/* no hosts: a mistyped group or cluster is an error */
	if (rc == 0 && json_array_size(json_object_get(hosts, "items")) == 0)
		rc = cli_names_exist(c, NULL, group, cluster);
	if (rc == 0)
		rc = latest_all(c, ql, &latest);
	if (rc == 0)
		rc = cli_call(c, "GET", qm, NULL, &mons);
	free(qh);
	free(ql);
	free(qm);
	if (rc)
		goto out;
	rows = json_array();
	json_array_foreach(json_object_get(hosts, "items"), i, h) {
		const char *name = json_string_value(json_object_get(h, "name"));
		const char *cl = json_string_value(json_object_get(h, "cluster"));
		json_t *items = json_object_get(latest, "items"), *m, *row, *ml = json_array();
		size_t k;

		if (name == NULL || cl == NULL)
			continue;
		row = json_pack("{s:s,s:O,s:s,s:O}", "cluster", cl, "group", json_object_get(h, "group"),
				"name", name, "state", json_object_get(h, "state"));
		for (k = 0; k < sizeof(figures) / sizeof(figures[0]); k++) {
			json_t *v = latest_of(items, cl, name, figures[k]);
			json_object_set(row, figures[k], v ? v : json_null());
		}
		json_array_foreach(json_object_get(mons, "items"), k, m) {
			const char *mn = json_string_value(json_object_get(m, "monitor"));
			const char *mh = json_string_value(json_object_get(m, "host"));
			const char *mc = json_string_value(json_object_get(m, "cluster"));
			json_t *v;

			if (mn == NULL || mh == NULL || mc == NULL || strcmp(mh, name) != 0 ||
			    strcmp(mc, cl) != 0)
				continue;
			v = latest_of(items, cl, name, mn);
			json_array_append_new(ml, json_pack("{s:s,s:O,s:O}", "monitor", mn, "state",
							    json_object_get(m, "state"), "value",
							    v ? v : json_null()));
		}
		json_object_set_new(row, "monitors", ml);
		json_array_append_new(rows, row);
	}
	*out = json_pack("{s:I,s:o}", "time_ms", (json_int_t)now_ms(), "hosts", rows);
out:
	json_decref(hosts);
	json_decref(latest);
	json_decref(mons);
	return rc;
}

/* One frame of `herd top` (from top_fetch()) as text into out. */
static void
top_render(json_t *frame, const char *group, struct buf *out)
{
	json_t *hosts = json_object_get(frame, "hosts"), *h;
	char t[32];
	size_t i;

	buf_addf(out, "herd top - %s - %zu host(s)%s%s\n\n",
		 clock_text(json_integer_value(json_object_get(frame, "time_ms")), t, sizeof(t)),
		 json_array_size(hosts), group ? " in group " : "", group ? cli_esc(group) : "");
	buf_addf(out, "%-24s %-10s %-12s %6s %6s %6s %6s  %s\n", "HOST", "GROUP", "STATE", "CPU%",
		 "MEM%", "LOAD1", "PROCS", "MONITORS");
	json_array_foreach(hosts, i, h) {
		char host[128], cpu[16], mem[16], load[16], procs[16];
		json_t *m;
		size_t k;
		struct buf mb;

		snprintf(host, sizeof(host), "%s/%s", cli_esc(json_string_value(json_object_get(h, "cluster"))),
			 cli_esc(json_string_value(json_object_get(h, "name"))));
		cell_value(json_object_get(h, "cpu_busy_pct"), 1, cpu, sizeof(cpu));
		cell_value(json_object_get(h, "mem_used_pct"), 1, mem, sizeof(mem));
		cell_value(json_object_get(h, "load1"), 2, load, sizeof(load));
		cell_value(json_object_get(h, "procs"), 0, procs, sizeof(procs));
		buf_init(&mb, 4096);
		json_array_foreach(json_object_get(h, "monitors"), k, m) {
			const char *mn = json_string_value(json_object_get(m, "monitor"));
			const char *st = json_string_value(json_object_get(m, "state"));
			json_t *v = json_object_get(m, "value");

			if (st && strcmp(st, "ok") == 0 && json_is_number(v))
				buf_addf(&mb, "%s%s=%.6g", mb.len ? " " : "", cli_esc(mn),
					 json_number_value(v));
			else
				buf_addf(&mb, "%s%s:%s", mb.len ? " " : "", cli_esc(mn), cli_esc(st));
		}
		buf_addf(out, "%-24s %-10s %-12s %6s %6s %6s %6s  %s\n", host,
			 cli_esc(json_string_value(json_object_get(h, "group"))),
			 cli_esc(json_string_value(json_object_get(h, "state"))), cpu, mem, load, procs,
			 mb.len ? mb.p : "-");
		buf_release(&mb);
	}
}

int
cmd_top(struct cli *c, int argc, char **argv)
{
	const char *group = cli_opt(c, "group"), *cluster = cli_opt(c, "cluster");
	/* --json: one frame, as JSON */
	bool once = cli_flag(c, "once") || c->json || !isatty(STDOUT_FILENO);
	char gbuf[128], cbuf[64];
	struct buf frame;
	int rc;

	if (group && strchr(group, '/')) {
		const char *slash = strchr(group, '/');
		snprintf(cbuf, sizeof(cbuf), "%.*s", (int)(slash - group), group);
		snprintf(gbuf, sizeof(gbuf), "%s", slash + 1);
		cluster = cbuf;
		group = gbuf;
	}
	if (!once)
		fputs("\033[2J", stdout);
	for (;;) {
		json_t *data = NULL;

		buf_init(&frame, 1 << 20);
		rc = top_fetch(c, cluster, group, &data);
		if (rc == 0 && c->json) {
			cli_print_json(data);
		} else if (rc == 0) {
			top_render(data, group, &frame);
			if (once) {
				fputs(frame.p, stdout);
			} else {
				/* home, each line cleared to its end, then the rest of the screen */
				fputs("\033[H", stdout);
				for (char *p = frame.p, *nl; *p; p = nl + 1) {
					nl = strchr(p, '\n');
					printf("%.*s\033[K\n", (int)(nl - p), p);
				}
				fputs("\033[J", stdout);
			}
			fflush(stdout);
		}
		json_decref(data);
		buf_release(&frame);
		if (rc || once)
			return rc;
		sleep_ms(TOP_INTERVAL_MS);
	}
}
