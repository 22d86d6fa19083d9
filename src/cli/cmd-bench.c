/* cmd-bench.c - `herd bench agents`: N simulated agents from one process and
 * one thread (libcurl's multi interface driven by epoll through
 * curl_multi_socket_action: the work per wake-up follows the sockets that
 * are ready, not the N parked long-polls), to load a server as N hosts would.
 * Each agent speaks the real agent protocol with a host identity the server
 * made: it joins with the one-time join token of the host's user data (the
 * agent configs of --configs, one JSON object a line, as the bootstrap script
 * carries them), reports "ready", heartbeats at the server's heartbeat_s,
 * pushes a few series with varying values every --interval (jitter ±10 %) and
 * keeps a command long-poll parked. Commands delivered are not run. Prints a
 * line per interval: agents joined, pushes ok/failed, push latency p50/p99,
 * heartbeats, long-polls parked; with --token-file, GET /v1/hosts of the group
 * is timed twice a second (its p99 printed) and its ready hosts counted
 * (token: --token-file, else the CLI's own).
 * With --step-metric NAME every agent also pushes NAME: 0, except the step
 * agent (--step-agent first, the default, or last: the first or the last
 * of the configs, so the first or the last of each aligned round's pushes
 * to be sent), which pushes --step-value V in every odd period of --step-every
 * since the start and 0 in the even ones; the first push of each new level
 * is printed with its wall-clock send time ("step: ..."), so a script can
 * time the autoscaler's decision from the push that made a policy's
 * condition true (bench/decision.sh). With --aligned, agents push at the
 * multiples of --interval on the wall clock, stamped with that multiple, as
 * the real agent does (no jitter). With --edge, the first agent behaves as
 * the real agent with edge-triggered pushes: it reads the thresholds of its
 * agent config (GET /v1/agent/config, the agent's own parser) and, when its
 * step level crosses one (the agent's own detector, push-edge.c), pushes at
 * once, stamped with the interval it falls in; the "step:" line then also
 * carries the instant the level changed (changed_ms). Pushes are protobuf
 * when the server's agent config offers it (push_formats), JSON otherwise,
 * as the real agent decides (every agent reads its config first), falling
 * back to JSON after a 415; --push-format json|protobuf forces one, to
 * compare (docs/scale.md). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/push.h"
#include "cli.h"
#include "pushwire.h"
#include "util.h"
#include "xalloc.h"

#define BENCH_AGENTS_MAX 20000        /* --count */
#define BENCH_CONFIG_MAX (8 * 1024)   /* one line of --configs */
#define BENCH_RESP_MAX (4u << 20)     /* bytes of one answer kept (the host list) */
#define BENCH_INFLIGHT_MAX 512        /* joins, states, heartbeats and pushes at once */
#define BENCH_POLL_WAIT_S 25          /* ?wait= of the long-poll, as the real agent */
#define BENCH_REQ_TIMEOUT_MS 30000
#define BENCH_PROBE_EVERY_MS 500      /* the API GET probe */
#define BENCH_LAT_MAX 200000          /* latencies kept per interval (then sampled out) */
#define BENCH_BODY_MAX 1024
#define BENCH_METRIC_MAX 64           /* --step-metric */

enum bench_phase { BP_JOIN, BP_STATE, BP_CONFIG, BP_RUN };
enum bench_kind { BK_JOIN, BK_STATE, BK_HEARTBEAT, BK_PUSH, BK_POLL, BK_CONFIG, BK_PROBE };

struct bench_xfer {
	CURL *h;
	struct curl_slist *hdrs;
	char *resp;                  /* owned, up to BENCH_RESP_MAX */
	size_t len;
	char body[BENCH_BODY_MAX];
	size_t blen;                 /* of a protobuf body; 0: body is JSON text */
	enum bench_kind kind;
	struct bench_agent *a;       /* NULL for the probe */
	bool busy;
	int mi;                      /* the multi it was added to (bench.mu) */
};

/* A libcurl multi handle and its timer. Two: libcurl looks for a reusable
 * connection by walking every connection to the server (its connection
 * cache keeps one bundle per host), so with the N parked long-polls in the
 * same multi each push or heartbeat walked N connections; that walk was
 * most of the bench's CPU at 10,000 agents. The long-polls have their own. */
enum { BENCH_MU_MAIN, BENCH_MU_POLL, BENCH_MU_N };

struct bench_multi {
	CURLM *m;
	int64_t timer_at;            /* mono ms libcurl wants a call at; -1 = none */
	struct bench *b;
	int mi;
};

struct bench_agent {
	char host_id[64];
	char join_token[256];
	char credential[128];
	enum bench_phase phase;
	int64_t next_hb_ms, next_push_ms, next_try_ms;  /* monotonic */
	int64_t next_poll_ms;        /* after a failed long-poll: not at once */
	int64_t push_ts_ms;          /* --aligned: the wall-clock multiple of the next push */
	double step_sent;            /* the step metric's last pushed level (-1: none yet) */
	double cpu, mem, load;       /* the random walks pushed */
	bool pb;                     /* push protobuf (offered, or --push-format) */
	struct bench_xfer main;      /* join, state, heartbeats, pushes: one at a time */
	struct bench_xfer poll;      /* the parked long-poll */
};

struct bench_lat {
	uint32_t *ms;
	size_t n;
};

struct bench_count {
	uint64_t push_ok, push_fail, hb_ok, hb_fail, join_fail, poll_fail, cmds;
	struct bench_lat push, probe;
};

struct bench {
	struct bench_multi mu[BENCH_MU_N];
	int ep;                      /* epoll: the sockets both multis want watched */
	struct bench_agent *ag;
	size_t n;
	const char *server;
	char auth[512];              /* the probe's token */
	char probe_path[512];
	struct bench_xfer probe;
	int64_t interval_ms, heartbeat_ms;
	size_t inflight;             /* main transfers under way */
	size_t joined, parked, ready_seen;
	bool told[BK_PROBE + 1];     /* the first failure of each kind was printed */
	uint64_t rng;
	struct bench_count iv, all;  /* this interval, the whole run */
	bool aligned;                /* push at wall-clock multiples of the interval */
	int push_format;             /* -1: as the config offers; else enum push_format */
	uint64_t pushes_pb;          /* protobuf pushes acknowledged */
	char step_metric[BENCH_METRIC_MAX];  /* empty: no step metric */
	bool step_last;              /* --step-agent last */
	struct bench_agent *step_ag; /* the agent that pushes the step */
	double step_value;
	int64_t step_every_ms, start_wall_ms;
	unsigned step_changes;       /* "step:" lines printed */
	bool edge;                   /* --edge: the first agent pushes on a crossing */
	struct push_edge *det;       /* its detector (the agent's) */
	struct col_batch *edge_batch;    /* its step series, for the detector */
	bool edge_pending;
	int64_t edge_last_ms;        /* mono: its last immediate push */
	int64_t edge_changed_ms;     /* wall: when the level it pushes changed */
};

static volatile sig_atomic_t bench_stop;

static void
bench_on_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

static uint64_t
bench_rand(struct bench *b)
{
	/* xorshift64*: values and jitter only, nothing secret */
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ULL;
}

/* A uniform double in [0, 1). */
static double
bench_unit(struct bench *b)
{
	return (double)(bench_rand(b) >> 11) / 9007199254740992.0;
}

static int64_t
bench_jitter(struct bench *b, int64_t ms)
{
	return ms - ms / 10 + (int64_t)(bench_unit(b) * (double)(ms / 5 + 1));
}

static void
lat_add(struct bench_lat *l, uint32_t ms)
{
	if (l->n < BENCH_LAT_MAX)
		l->ms[l->n++] = ms;
}

static int
lat_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The q-quantile (0..1) in ms, nearest rank; -1 with no samples. Sorts. */
static long
lat_q(struct bench_lat *l, double q)
{
	size_t i;

	if (l->n == 0)
		return -1;
	qsort(l->ms, l->n, sizeof(*l->ms), lat_cmp);
	i = (size_t)ceil(q * (double)l->n);
	return l->ms[i > 0 ? i - 1 : 0];
}

static size_t
bench_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct bench_xfer *x = arg;
	size_t n = size * nmemb, room = BENCH_RESP_MAX - x->len;

	if (n > room)
		n = room;   /* kept up to the cap; a cut answer fails to parse, counted */
	if (n) {
		x->resp = xrealloc(x->resp, x->len + n + 1);
		memcpy(x->resp + x->len, p, n);
		x->len += n;
		x->resp[x->len] = '\0';
	}
	return size * nmemb;
}

static void
xfer_init(struct bench_xfer *x, struct bench_agent *a)
{
	x->h = curl_easy_init();
	BUG_ON(x->h == NULL);
	x->a = a;
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, bench_write);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
}

static void
xfer_release(struct bench *b, struct bench_xfer *x)
{
	if (x->h) {
		if (x->busy)
			curl_multi_remove_handle(b->mu[x->mi].m, x->h);
		curl_easy_cleanup(x->h);
	}
	curl_slist_free_all(x->hdrs);
	free(x->resp);
	memset(x, 0, sizeof(*x));
}

/* Starts x: method GET without a body, POST with x->body. */
static void
xfer_start(struct bench *b, struct bench_xfer *x, enum bench_kind kind, const char *path,
	   const char *auth, long timeout_ms)
{
	char url[768];

	snprintf(url, sizeof(url), "%s%s", b->server, path);
	curl_slist_free_all(x->hdrs);
	x->hdrs = curl_slist_append(NULL, x->blen ? "Content-Type: " PUSHWIRE_CONTENT_TYPE
					    : "Content-Type: application/json");
	if (auth && *auth) {
		char h[600];
		snprintf(h, sizeof(h), "Authorization: Bearer %s", auth);
		x->hdrs = curl_slist_append(x->hdrs, h);
	}
	x->kind = kind;
	x->len = 0;
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (kind == BK_POLL || kind == BK_PROBE || kind == BK_CONFIG) {
		curl_easy_setopt(x->h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE,
				 (long)(x->blen ? x->blen : strlen(x->body)));
	}
	x->busy = true;
	x->mi = kind == BK_POLL ? BENCH_MU_POLL : BENCH_MU_MAIN;
	curl_multi_add_handle(b->mu[x->mi].m, x->h);
}

static void
bench_start_main(struct bench *b, struct bench_agent *a, enum bench_kind kind, const char *path)
{
	b->inflight++;
	xfer_start(b, &a->main, kind, path, kind == BK_JOIN ? NULL : a->credential,
		   BENCH_REQ_TIMEOUT_MS);
}

static double
walk(struct bench *b, double v, double step, double lo, double hi)
{
	v += (bench_unit(b) * 2 - 1) * step;
	return v < lo ? lo : v > hi ? hi : v;
}

/* The step metric's level for agent a now: V in odd periods, for the first
 * agent only; 0 otherwise. */
static double
bench_step_level(const struct bench *b, const struct bench_agent *a, int64_t wall_ms)
{
	int64_t k;

	if (a != b->step_ag || b->step_every_ms <= 0 || wall_ms < b->start_wall_ms)
		return 0;
	k = (wall_ms - b->start_wall_ms) / b->step_every_ms;
	return k % 2 == 1 ? b->step_value : 0;
}

/* The step metric's level for this push; the first push of each new level
 * is printed with its send time. */
static double
bench_push_step(struct bench *b, struct bench_agent *a, int64_t wall_ms)
{
	double v = bench_step_level(b, a, wall_ms);

	if (a == b->step_ag && v != a->step_sent) {
		/* the instant the level changed: the start of its period */
		int64_t k = (wall_ms - b->start_wall_ms) / b->step_every_ms;

		printf("step: n=%u level=%s value=%.6g sent_ms=%lld changed_ms=%lld edge=%d\n",
		       b->step_changes++, v != 0 ? "high" : "low", v, (long long)wall_ms,
		       (long long)(b->start_wall_ms + k * b->step_every_ms), b->edge_pending);
		fflush(stdout);
	}
	a->step_sent = v;
	return v;
}

/* The push as protobuf (pushwire.h): one batch of the n series, framed as
 * the agent frames its buffered batches. */
static void
bench_push_pb(struct bench *b, struct bench_agent *a, int64_t ts, const char *const *names,
	      const double *values, size_t n)
{
	static const struct pushwire_label scope = { "scope", "machine" };
	struct pushwire_series series[8];
	struct pushwire_batch batch = { .ts_ms = ts, .series = series, .nseries = n };
	struct pushwire_blob blob;
	uint8_t one[BENCH_BODY_MAX];

	BUG_ON(n > sizeof(series) / sizeof(series[0]));
	for (size_t i = 0; i < n; i++)
		series[i] = (struct pushwire_series){ .name = names[i], .value = values[i],
						      .labels = &scope, .nlabels = 1 };
	blob.data = one;
	blob.len = pushwire_encode_batch(&batch, one, sizeof(one), NULL);
	a->main.blen = blob.len ? pushwire_frame(&blob, 1, true, 0, (uint8_t *)a->main.body,
						 sizeof(a->main.body)) : 0;
	BUG_ON(a->main.blen == 0);
}

/* A push shaped as the agent's: a few machine series with varying values. */
static void
bench_push_body(struct bench *b, struct bench_agent *a, bool edge)
{
	double total = 8.0 * 1024 * 1024 * 1024;
	int64_t wall = now_ms(), ts = b->aligned && a->push_ts_ms ? a->push_ts_ms : wall;

	/* an immediate push: stamped with the interval it falls in, as the agent */
	if (edge)
		ts = wall / b->interval_ms * b->interval_ms;
	int len;

	a->cpu = walk(b, a->cpu, 8, 1, 99);
	a->mem = walk(b, a->mem, 2, 5, 95);
	a->load = walk(b, a->load, 0.3, 0, 8);
	a->main.blen = 0;
	if (a->pb) {
		const char *names[] = { "cpu_busy_pct", "mem_used_pct", "mem_used_bytes",
					"mem_total_bytes", "load1", b->step_metric };
		/* the values JSON carries (2 decimals, whole bytes) */
		double v[] = { round(a->cpu * 100) / 100, round(a->mem * 100) / 100,
			       round(total * a->mem / 100), total, round(a->load * 100) / 100, 0 };

		if (b->step_metric[0])
			v[5] = bench_push_step(b, a, wall);
		bench_push_pb(b, a, ts, names, v, b->step_metric[0] ? 6 : 5);
		return;
	}
	len = snprintf(a->main.body, sizeof(a->main.body),
		 "{\"batches\":[{\"ts_ms\":%lld,\"monitors\":[],\"series\":["
		 "{\"name\":\"cpu_busy_pct\",\"labels\":{\"scope\":\"machine\"},\"value\":%.2f},"
		 "{\"name\":\"mem_used_pct\",\"labels\":{\"scope\":\"machine\"},\"value\":%.2f},"
		 "{\"name\":\"mem_used_bytes\",\"labels\":{\"scope\":\"machine\"},\"value\":%.0f},"
		 "{\"name\":\"mem_total_bytes\",\"labels\":{\"scope\":\"machine\"},\"value\":%.0f},"
		 "{\"name\":\"load1\",\"labels\":{\"scope\":\"machine\"},\"value\":%.2f}]}]}",
		 (long long)ts, a->cpu, a->mem, total * a->mem / 100, total, a->load);
	BUG_ON(len < 4 || (size_t)len + BENCH_METRIC_MAX + 96 >= sizeof(a->main.body));
	/* the step series before the closing "]}]}" (the name is shorter than
	 * BENCH_METRIC_MAX: checked above) */
	if (b->step_metric[0])
		snprintf(a->main.body + len - 4, sizeof(a->main.body) - (size_t)len + 4,
			 ",{\"name\":\"%s\",\"labels\":{\"scope\":\"machine\"},\"value\":%.6g}]}]}",
			 b->step_metric, bench_push_step(b, a, wall));
}

/* When the agent pushes next, from monotonic now: --interval with jitter,
 * or (--aligned) the next wall-clock multiple of it, as the real agent. */
static int64_t
bench_next_push(struct bench *b, struct bench_agent *a, int64_t now)
{
	int64_t wall, due;

	if (!b->aligned)
		return now + bench_jitter(b, b->interval_ms);
	wall = now_ms();
	due = (wall / b->interval_ms + 1) * b->interval_ms;
	a->push_ts_ms = due;
	return now + (due - wall);
}

/* --edge: the first agent's step level against its thresholds, as the
 * agent checks a monitor's sample (every loop turn, <= 20 ms apart). */
static void
bench_edge_check(struct bench *b, struct bench_agent *a)
{
	if (!b->edge || a != b->step_ag || a->phase != BP_RUN || !b->step_metric[0])
		return;
	b->edge_batch->n = 0;
	b->edge_batch->overflow = 0;
	col_add(b->edge_batch, b->step_metric, bench_step_level(b, a, now_ms()), "scope", "machine",
		NULL, NULL);
	if (push_edge_scan(b->det, b->edge_batch, NULL) > 0)
		b->edge_pending = true;
}

/* Starts what the agent's main transfer should do next, if anything is due. */
static void
bench_agent_step(struct bench *b, struct bench_agent *a, int64_t now)
{
	bench_edge_check(b, a);
	if (a->main.busy || b->inflight >= BENCH_INFLIGHT_MAX || now < a->next_try_ms)
		return;
	switch (a->phase) {
	case BP_JOIN:
		a->main.blen = 0;
		snprintf(a->main.body, sizeof(a->main.body),
			 "{\"host_id\":\"%s\",\"join_token\":\"%s\"}", a->host_id, a->join_token);
		bench_start_main(b, a, BK_JOIN, "/v1/agent/join");
		return;
	case BP_STATE:
		a->main.blen = 0;
		snprintf(a->main.body, sizeof(a->main.body), "{\"state\":\"ready\"}");
		bench_start_main(b, a, BK_STATE, "/v1/agent/state");
		return;
	case BP_CONFIG:
		bench_start_main(b, a, BK_CONFIG, "/v1/agent/config");
		return;
	case BP_RUN:
		break;
	}
	if (!a->poll.busy && now >= a->next_poll_ms) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/agent/commands?wait=%d&max=4", BENCH_POLL_WAIT_S);
		xfer_start(b, &a->poll, BK_POLL, path, a->credential,
			   (BENCH_POLL_WAIT_S + 20) * 1000L);
		b->parked++;
	}
	if (now >= a->next_hb_ms) {
		a->next_hb_ms = now + b->heartbeat_ms;
		a->main.blen = 0;
		snprintf(a->main.body, sizeof(a->main.body), "{}");
		bench_start_main(b, a, BK_HEARTBEAT, "/v1/agent/heartbeat");
	} else if (a == b->step_ag && b->edge_pending && now >= b->edge_last_ms + PUSH_EDGE_MIN_GAP_MS) {
		bench_push_body(b, a, true);
		b->edge_pending = false;
		b->edge_last_ms = now;
		bench_start_main(b, a, BK_PUSH, "/v1/agent/metrics");
	} else if (now >= a->next_push_ms) {
		bench_push_body(b, a, false);
		b->edge_pending = false;   /* this push carries it */
		a->next_push_ms = bench_next_push(b, a, now);
		bench_start_main(b, a, BK_PUSH, "/v1/agent/metrics");
	}
}

static void
bench_count_ready(struct bench *b, const char *text)
{
	json_t *j = json_loads(text ? text : "", 0, NULL), *h;
	size_t i, n = 0;

	json_array_foreach(json_object_get(j, "items"), i, h) {
		const char *st = json_string_value(json_object_get(h, "state"));
		n += st && strcmp(st, "ready") == 0;
	}
	if (j)
		b->ready_seen = n;
	json_decref(j);
}

/* A join answer: the credential, and the heartbeat period the server wants. */
static bool
bench_take_join(struct bench *b, struct bench_agent *a)
{
	json_t *j = json_loads(a->main.resp ? a->main.resp : "", 0, NULL);
	const char *cred = json_string_value(json_object_get(j, "credential"));
	json_t *hb = json_object_get(j, "heartbeat_s");
	bool ok = cred && strlen(cred) < sizeof(a->credential);

	if (ok)
		snprintf(a->credential, sizeof(a->credential), "%s", cred);
	if (json_is_integer(hb) && json_integer_value(hb) >= 1 && json_integer_value(hb) <= 3600)
		b->heartbeat_ms = json_integer_value(hb) * 1000;
	json_decref(j);
	return ok;
}

/* An agent's config, through the agent's own parser: the format it pushes
 * in (unless --push-format says), and for --edge the first agent's
 * thresholds. */
static bool
bench_take_config(struct bench *b, struct bench_agent *a, const char *text)
{
	json_t *j = json_loads(text ? text : "", 0, NULL);
	struct herr err = HERR_INIT;
	struct push_config *cfg = xcalloc(1, sizeof(*cfg));
	bool ok = push_config_parse(j, cfg, &err) == 0;

	if (ok) {
		if (b->push_format < 0)
			a->pb = push_format_decide(cfg->protobuf, false) == PUSH_FMT_PROTOBUF;
		if (b->edge && a == &b->ag[0]) {
			push_edge_set(b->det, cfg->thr, cfg->nthr);
			printf("edge: %zu threshold(s) from config %lld\n", cfg->nthr,
			       (long long)cfg->version);
			fflush(stdout);
		}
		push_config_release(cfg);
	} else {
		fprintf(stderr, "herd: agent config: %s\n", err.msg);
	}
	free(cfg);
	json_decref(j);
	return ok;
}

static const char *
bench_kind_name(enum bench_kind k)
{
	static const char *const names[] = { "join", "state report", "heartbeat", "push",
					     "long-poll", "config GET", "host list GET" };

	return names[k];
}

static void
bench_done(struct bench *b, CURL *h, CURLcode res)
{
	struct bench_xfer *x = NULL;
	struct bench_agent *a;
	long status = 0;
	curl_off_t us = 0;
	bool ok;
	int64_t now = mono_ms();

	curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
	curl_multi_remove_handle(b->mu[x->mi].m, h);
	x->busy = false;
	ok = res == CURLE_OK && status >= 200 && status < 300;
	a = x->a;
	if (!ok && !b->told[x->kind]) {
		/* once per kind: the answer says why (e.g. a refused push) */
		b->told[x->kind] = true;
		fprintf(stderr, "herd: first failed %s: %s%s %ld %s\n", bench_kind_name(x->kind),
			res == CURLE_OK ? "" : curl_easy_strerror(res), res == CURLE_OK ? "HTTP" : "",
			status, res == CURLE_OK ? cli_esc(x->resp ? x->resp : "") : "");
	}
	if (x->kind != BK_POLL && x->kind != BK_PROBE)
		b->inflight--;
	switch (x->kind) {
	case BK_PROBE:
		if (ok) {
			lat_add(&b->iv.probe, (uint32_t)(us / 1000));
			lat_add(&b->all.probe, (uint32_t)(us / 1000));
			bench_count_ready(b, x->resp);
		}
		return;
	case BK_JOIN:
		if (ok && bench_take_join(b, a)) {
			a->phase = BP_STATE;
			b->joined++;
		} else {
			b->iv.join_fail++;
			b->all.join_fail++;
			a->next_try_ms = now + 2000;
		}
		return;
	case BK_CONFIG:
		if (ok && bench_take_config(b, a, x->resp)) {
			a->phase = BP_RUN;
			a->next_hb_ms = now;
			a->next_push_ms = b->aligned ? bench_next_push(b, a, now) : now;
		} else {
			a->next_try_ms = now + 2000;
		}
		return;
	case BK_STATE:
		if (ok && (b->push_format < 0 || (b->edge && a == &b->ag[0]))) {
			/* as the agent: its config first (the format, thresholds) */
			a->phase = BP_CONFIG;
		} else if (ok) {
			a->phase = BP_RUN;
			a->next_hb_ms = now;
			/* the first push anywhere in the first interval: spread out
			 * (--aligned: at the next multiple, as every agent) */
			a->next_push_ms = b->aligned ? bench_next_push(b, a, now)
				: now + (int64_t)(bench_unit(b) * (double)b->interval_ms);
		} else {
			a->next_try_ms = now + 2000;
		}
		return;
	case BK_HEARTBEAT:
		b->iv.hb_ok += ok;
		b->iv.hb_fail += !ok;
		b->all.hb_ok += ok;
		b->all.hb_fail += !ok;
		return;
	case BK_PUSH:
		/* protobuf refused: JSON from now on, as the agent (the answer's
		 * error field is not read: a 400 naming "body" counts only here) */
		if (!ok && res == CURLE_OK && x->blen && b->push_format < 0 &&
		    push_format_refused(PUSH_FMT_PROTOBUF, status, NULL))
			a->pb = false;
		if (ok && x->blen)
			b->pushes_pb++;
		if (ok) {
			b->iv.push_ok++;
			b->all.push_ok++;
			lat_add(&b->iv.push, (uint32_t)(us / 1000));
			lat_add(&b->all.push, (uint32_t)(us / 1000));
		} else {
			b->iv.push_fail++;
			b->all.push_fail++;
		}
		return;
	case BK_POLL:
		b->parked--;
		if (!ok) {
			b->iv.poll_fail++;
			b->all.poll_fail++;
			a->next_poll_ms = now + 1000;  /* no tight loop on a refusing server */
		} else if (x->resp && strstr(x->resp, "\"id\"")) {
			b->iv.cmds++;
			b->all.cmds++;
		}
		return;
	}
}

static void
bench_print_interval(struct bench *b, int64_t t_ms)
{
	printf("t=%llds agents=%zu joined=%zu parked=%zu pushes_ok=%llu pushes_failed=%llu"
	       " push_p50_ms=%ld push_p99_ms=%ld heartbeats_ok=%llu heartbeats_failed=%llu",
	       (long long)(t_ms / 1000), b->n, b->joined, b->parked,
	       (unsigned long long)b->iv.push_ok, (unsigned long long)b->iv.push_fail,
	       lat_q(&b->iv.push, 0.5), lat_q(&b->iv.push, 0.99),
	       (unsigned long long)b->iv.hb_ok, (unsigned long long)b->iv.hb_fail);
	if (b->probe.h)
		printf(" ready=%zu get_p99_ms=%ld", b->ready_seen, lat_q(&b->iv.probe, 0.99));
	printf("\n");
	fflush(stdout);
	b->iv.push_ok = b->iv.push_fail = b->iv.hb_ok = b->iv.hb_fail = 0;
	b->iv.join_fail = b->iv.poll_fail = b->iv.cmds = 0;
	b->iv.push.n = b->iv.probe.n = 0;
}

static void
bench_print_total(struct bench *b, int64_t t_ms)
{
	printf("total: t=%llds agents=%zu joined=%zu pushes_ok=%llu pushes_failed=%llu"
	       " push_p50_ms=%ld push_p99_ms=%ld heartbeats_ok=%llu heartbeats_failed=%llu"
	       " join_failures=%llu poll_failures=%llu commands_seen=%llu pushes_protobuf=%llu",
	       (long long)(t_ms / 1000), b->n, b->joined, (unsigned long long)b->all.push_ok,
	       (unsigned long long)b->all.push_fail, lat_q(&b->all.push, 0.5),
	       lat_q(&b->all.push, 0.99), (unsigned long long)b->all.hb_ok,
	       (unsigned long long)b->all.hb_fail, (unsigned long long)b->all.join_fail,
	       (unsigned long long)b->all.poll_fail, (unsigned long long)b->all.cmds,
	       (unsigned long long)b->pushes_pb);
	if (b->probe.h)
		printf(" get_samples=%zu get_p50_ms=%ld get_p99_ms=%ld", b->all.probe.n,
		       lat_q(&b->all.probe, 0.5), lat_q(&b->all.probe, 0.99));
	printf("\n");
	fflush(stdout);
}

/* One agent config line: host_id and join_token are required. */
static int
bench_parse_config(const char *line, struct bench_agent *a, const char *file, size_t lineno)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *id = json_string_value(json_object_get(j, "host_id"));
	const char *tok = json_string_value(json_object_get(j, "join_token"));
	int rc = 0;

	if (id == NULL || tok == NULL || !script_name_is_valid(id) ||
	    strlen(tok) >= sizeof(a->join_token) || strspn(tok, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(tok))
		rc = cli_fail("'%s' line %zu: want an agent config with 'host_id' and 'join_token'",
			      file, lineno);
	else {
		snprintf(a->host_id, sizeof(a->host_id), "%s", id);
		snprintf(a->join_token, sizeof(a->join_token), "%s", tok);
	}
	json_decref(j);
	return rc;
}

static int
bench_load_configs(struct bench *b, const char *file, long count)
{
	char line[BENCH_CONFIG_MAX];
	size_t lineno = 0;
	FILE *f = fopen(file, "r");

	if (f == NULL)
		return cli_fail("cannot read '%s': %s", file, strerror(errno));
	b->ag = xcalloc((size_t)count, sizeof(*b->ag));
	while (b->n < (size_t)count && fgets(line, sizeof(line), f)) {
		lineno++;
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		if (bench_parse_config(line, &b->ag[b->n], file, lineno)) {
			fclose(f);
			return 1;
		}
		b->n++;
	}
	fclose(f);
	if (b->n < (size_t)count)
		return cli_fail("'%s' holds %zu agent configs, --count asks for %ld", file, b->n,
				count);
	return 0;
}

static int
bench_read_token(const char *file, char *out, size_t outsz)
{
	char *t = file_read(file, 4096, NULL);
	size_t n;

	if (t == NULL)
		return cli_fail("cannot read the token in '%s'", file);
	n = strcspn(t, " \t\r\n");
	if (n == 0 || n >= outsz) {
		free(t);
		return cli_fail("no token in '%s'", file);
	}
	snprintf(out, outsz, "%.*s", (int)n, t);
	free(t);
	return 0;
}

/* More descriptors than agents: each parked long-poll holds a connection. */
static void
bench_raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* libcurl's socket callback: what to watch on s, in the epoll set (its
 * event carries the socket and which multi wants it). */
static int
bench_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct bench_multi *mu = userp;
	struct epoll_event ev = { .data.u64 = (uint64_t)(uint32_t)s | (uint64_t)mu->mi << 32 };

	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(mu->b->ep, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(mu->m, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (socketp == NULL) {
		if (epoll_ctl(mu->b->ep, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
			epoll_ctl(mu->b->ep, EPOLL_CTL_MOD, s, &ev);
		curl_multi_assign(mu->m, s, mu);   /* any non-NULL: known */
	} else {
		epoll_ctl(mu->b->ep, EPOLL_CTL_MOD, s, &ev);
	}
	return 0;
}

/* libcurl's timer callback: when to call it back (timeouts, transfers just
 * added), whether or not a socket is ready by then. */
static int
bench_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	((struct bench_multi *)userp)->timer_at = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	return 0;
}

#define BENCH_EVENTS 512
#define BENCH_TICK_MS 20        /* the agents' schedule is looked at this often */

/* One wait: the sockets that became ready, or libcurl's timer, handed to
 * libcurl; at most BENCH_TICK_MS. */
static void
bench_wait(struct bench *b)
{
	struct epoll_event ev[BENCH_EVENTS];
	int64_t wait = BENCH_TICK_MS, now = mono_ms();
	int running, n;

	for (int k = 0; k < BENCH_MU_N; k++)
		if (b->mu[k].timer_at >= 0 && b->mu[k].timer_at - now < wait)
			wait = b->mu[k].timer_at - now < 0 ? 0 : b->mu[k].timer_at - now;
	n = epoll_wait(b->ep, ev, BENCH_EVENTS, (int)wait);
	for (int i = 0; i < n; i++) {
		int sel = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			  (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			  (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);

		curl_multi_socket_action(b->mu[ev[i].data.u64 >> 32].m,
					 (curl_socket_t)(uint32_t)ev[i].data.u64, sel, &running);
	}
	now = mono_ms();
	for (int k = 0; k < BENCH_MU_N; k++) {
		if (b->mu[k].timer_at < 0 || now < b->mu[k].timer_at)
			continue;
		b->mu[k].timer_at = -1;   /* the call sets it again if it wants one */
		curl_multi_socket_action(b->mu[k].m, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

static void
bench_loop(struct bench *b, int64_t duration_ms)
{
	int64_t start = mono_ms(), next_print = start + b->interval_ms, next_probe = start;
	int64_t next_step = start;

	while (!bench_stop) {
		int64_t now = mono_ms();
		CURLMsg *msg;
		int left;

		if (duration_ms > 0 && now - start >= duration_ms)
			break;
		/* every agent's schedule, once a tick (not on every wake-up) */
		if (now >= next_step) {
			next_step = now + BENCH_TICK_MS;
			for (size_t i = 0; i < b->n; i++)
				bench_agent_step(b, &b->ag[i], now);
		}
		if (b->probe.h && !b->probe.busy && now >= next_probe) {
			next_probe = now + BENCH_PROBE_EVERY_MS;
			xfer_start(b, &b->probe, BK_PROBE, b->probe_path, b->auth,
				   BENCH_REQ_TIMEOUT_MS);
		}
		bench_wait(b);
		for (int k = 0; k < BENCH_MU_N; k++)
			while ((msg = curl_multi_info_read(b->mu[k].m, &left)))
				if (msg->msg == CURLMSG_DONE)
					bench_done(b, msg->easy_handle, msg->data.result);
		if (now >= next_print) {
			bench_print_interval(b, now - start);
			next_print += b->interval_ms;
		}
	}
	bench_print_total(b, mono_ms() - start);
}

static int
bench_opts(struct cli *c, long *count, int64_t *interval_ms, int64_t *duration_ms)
{
	const char *cs = cli_opt(c, "count"), *is = cli_opt(c, "interval");
	const char *ds = cli_opt(c, "duration");

	if (cli_opt(c, "configs") == NULL || cs == NULL)
		return cli_fail("--configs F and --count N are required");
	if (parse_long(cs, 1, BENCH_AGENTS_MAX, count) < 0)
		return cli_fail("invalid --count '%s': must be 1-%d", cs, BENCH_AGENTS_MAX);
	if (is && (parse_duration_ms(is, interval_ms) < 0 || *interval_ms < 100 ||
		   *interval_ms > 3600000))
		return cli_fail("invalid --interval '%s': must be a duration of 100ms-1h", is);
	if (ds && (parse_duration_ms(ds, duration_ms) < 0 || *duration_ms < 0))
		return cli_fail("invalid --duration '%s': must be a duration", ds);
	if ((cli_opt(c, "cluster") == NULL) != (cli_opt(c, "group") == NULL))
		return cli_fail("--cluster C and --group G go together");
	if (cli_opt(c, "group") &&
	    (!name_is_valid(cli_opt(c, "group")) || !name_is_valid(cli_opt(c, "cluster"))))
		return cli_fail("--cluster and --group must be names");
	return 0;
}

/* --step-metric NAME --step-value V --step-every D: all three or none. */
static int
bench_step_opts(struct cli *c, struct bench *b)
{
	const char *m = cli_opt(c, "step-metric"), *v = cli_opt(c, "step-value");
	const char *e = cli_opt(c, "step-every"), *w = cli_opt(c, "step-agent");
	char *end = NULL;

	if (w && strcmp(w, "first") != 0 && strcmp(w, "last") != 0)
		return cli_fail("invalid --step-agent '%s': want first or last", cli_esc(w));
	b->step_last = w && strcmp(w, "last") == 0;
	if (m == NULL && v == NULL && e == NULL)
		return w ? cli_fail("--step-agent needs --step-metric") : 0;
	if (m == NULL || v == NULL || e == NULL)
		return cli_fail("--step-metric NAME, --step-value V and --step-every D go together");
	if (strlen(m) == 0 || strlen(m) >= BENCH_METRIC_MAX ||
	    strspn(m, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(m))
		return cli_fail("invalid --step-metric '%s': want [a-z0-9_], at most %d characters",
				cli_esc(m), BENCH_METRIC_MAX - 1);
	errno = 0;
	b->step_value = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(b->step_value) || b->step_value == 0 ||
	    fabs(b->step_value) > 1e15)
		return cli_fail("invalid --step-value '%s': want a non-zero number within ±1e15",
				cli_esc(v));
	if (parse_duration_ms(e, &b->step_every_ms) < 0 || b->step_every_ms < 1000 ||
	    b->step_every_ms > 3600000)
		return cli_fail("invalid --step-every '%s': must be a duration of 1s-1h", cli_esc(e));
	snprintf(b->step_metric, sizeof(b->step_metric), "%s", m);
	return 0;
}

int
cmd_bench_agents(struct cli *c, int argc, char **argv)
{
	struct bench b;
	long count = 0;
	int64_t duration_ms = 0;
	int rc;

	(void)argc;
	(void)argv;
	memset(&b, 0, sizeof(b));
	b.interval_ms = 10000;
	b.heartbeat_ms = 5000;
	if (bench_opts(c, &count, &b.interval_ms, &duration_ms) || bench_step_opts(c, &b))
		return 2;
	b.aligned = cli_flag(c, "aligned");
	b.push_format = -1;
	if (cli_opt(c, "push-format")) {
		const char *f = cli_opt(c, "push-format");

		if (strcmp(f, "json") == 0)
			b.push_format = PUSH_FMT_JSON;
		else if (strcmp(f, "protobuf") == 0)
			b.push_format = PUSH_FMT_PROTOBUF;
		else if (strcmp(f, "auto") != 0)
			return cli_fail("invalid --push-format '%s': want json, protobuf or auto",
					cli_esc(f));
	}
	b.edge = cli_flag(c, "edge");
	if (b.edge && !b.step_metric[0])
		return cli_fail("--edge needs --step-metric (the value the first agent watches)");
	if (b.edge) {
		b.det = xcalloc(1, sizeof(*b.det));
		b.edge_batch = xcalloc(1, sizeof(*b.edge_batch));
	}
	cli_http(c);   /* resolves --server, HERD_URL or the saved login */
	b.server = c->server;
	if (strncmp(b.server, "http://", 7) != 0 && strncmp(b.server, "https://", 8) != 0)
		return cli_fail("invalid server '%s': want an http(s) URL", cli_esc(b.server));
	if (cli_opt(c, "token-file")) {
		if (bench_read_token(cli_opt(c, "token-file"), b.auth, sizeof(b.auth)))
			return 1;
	} else if (c->token) {
		snprintf(b.auth, sizeof(b.auth), "%s", c->token);
	}
	if (cli_opt(c, "group") && b.auth[0] == '\0')
		return cli_fail("--group needs a token (--token-file F, --token or HERD_TOKEN)");
	if (bench_load_configs(&b, cli_opt(c, "configs"), count)) {
		free(b.ag);
		return 1;
	}
	b.step_ag = b.step_last ? &b.ag[b.n - 1] : &b.ag[0];
	bench_raise_nofile(b.n * 2);
	signal(SIGINT, bench_on_signal);
	signal(SIGTERM, bench_on_signal);
	signal(SIGPIPE, SIG_IGN);
	b.rng = (uint64_t)now_ms() | 1;
	b.start_wall_ms = now_ms();
	b.all.push.ms = xcalloc(BENCH_LAT_MAX, sizeof(uint32_t));
	b.iv.push.ms = xcalloc(BENCH_LAT_MAX, sizeof(uint32_t));
	b.all.probe.ms = xcalloc(BENCH_LAT_MAX, sizeof(uint32_t));
	b.iv.probe.ms = xcalloc(BENCH_LAT_MAX, sizeof(uint32_t));
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	BUG_ON(b.ep < 0);
	for (int k = 0; k < BENCH_MU_N; k++) {
		struct bench_multi *mu = &b.mu[k];

		mu->m = curl_multi_init();
		BUG_ON(mu->m == NULL);
		mu->timer_at = -1;
		mu->b = &b;
		mu->mi = k;
		/* main: the transfers under way and some idle; polls: one each */
		curl_multi_setopt(mu->m, CURLMOPT_MAXCONNECTS,
				  k == BENCH_MU_POLL ? (long)(b.n + 16) : (long)BENCH_INFLIGHT_MAX + 16);
		curl_multi_setopt(mu->m, CURLMOPT_SOCKETFUNCTION, bench_sock_cb);
		curl_multi_setopt(mu->m, CURLMOPT_SOCKETDATA, mu);
		curl_multi_setopt(mu->m, CURLMOPT_TIMERFUNCTION, bench_timer_cb);
		curl_multi_setopt(mu->m, CURLMOPT_TIMERDATA, mu);
	}
	for (size_t i = 0; i < b.n; i++) {
		struct bench_agent *a = &b.ag[i];
		a->cpu = 10 + 60 * bench_unit(&b);
		a->mem = 20 + 50 * bench_unit(&b);
		a->load = 2 * bench_unit(&b);
		a->step_sent = -1;
		a->pb = b.push_format == PUSH_FMT_PROTOBUF;
		xfer_init(&a->main, a);
		xfer_init(&a->poll, a);
	}
	if (cli_opt(c, "group")) {
		xfer_init(&b.probe, NULL);
		snprintf(b.probe_path, sizeof(b.probe_path), "/v1/hosts?cluster=%s&group=%s",
			 cli_opt(c, "cluster"), cli_opt(c, "group"));
	}
	printf("bench agents: %zu agents, push every %lld ms (%s, %s), server %s\n", b.n,
	       (long long)b.interval_ms, b.aligned ? "aligned" : "+-10%",
	       b.push_format < 0 ? "format as offered" : b.push_format == PUSH_FMT_PROTOBUF ?
	       "protobuf" : "json", b.server);
	if (b.step_metric[0])
		printf("step metric %s: the first agent pushes %.6g every other %lld ms from start_ms=%lld,"
		       " 0 otherwise\n", b.step_metric, b.step_value, (long long)b.step_every_ms,
		       (long long)b.start_wall_ms);
	fflush(stdout);
	bench_loop(&b, duration_ms);
	rc = b.joined == b.n ? 0 : 1;
	if (rc)
		fprintf(stderr, "herd: %zu of %zu agents never joined\n", b.n - b.joined, b.n);
	for (size_t i = 0; i < b.n; i++) {
		xfer_release(&b, &b.ag[i].main);
		xfer_release(&b, &b.ag[i].poll);
	}
	xfer_release(&b, &b.probe);
	for (int k = 0; k < BENCH_MU_N; k++)
		curl_multi_cleanup(b.mu[k].m);
	close(b.ep);
	free(b.ag);
	free(b.det);
	free(b.edge_batch);
	free(b.all.push.ms);
	free(b.iv.push.ms);
	free(b.all.probe.ms);
	free(b.iv.probe.ms);
	return rc;
}
