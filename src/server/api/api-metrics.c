/* api-metrics.c - the metrics endpoints over the metrics model
 * (model/metrics.c) and the store (tsdb/): the agents' push (its JSON or
 * protobuf body checked and decoded by metrics_push_decode or
 * metrics_push_decode_wire, stored by metrics_push_ingest, answered
 * here), the monitor configuration agents
 * poll, the viewer queries (list, range, group aggregate, latest), monitor
 * states, and the Prometheus exposition at /metrics (herd's names mapped to
 * Prometheus conventions there, prom_families[]). Formats: docs/metrics.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "agent-contract.h"
#include "api.h"
#include "ctl/rwout.h"
#include "model/alert-delivery.h"
#include "model/metrics.h"
#include "promwire.h"
#include "pushwire.h"
#include "log.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"
#include "xalloc.h"

#define QUERY_MAX_POINTS 200000
#define EXPOSE_CHUNK_SERIES 256      /* series per piece of the streamed /metrics */
#define EXPOSE_PIECE_MAX_BYTES ((size_t)4 << 20) /* 256 series of 16 labels of 256 bytes fit */
#define LATEST_LIMIT 1000            /* series per page of /v1/metrics/latest */
#define LATEST_LIMIT_MAX 10000
#define LATEST_HOSTS_MAX 100         /* names in ?hosts= of /v1/metrics/latest */
#define EXPOSE_MAX_AGE_MS (5 * 60 * 1000)

/* --- monitor configuration --- */

void
api_agent_config(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct metrics_host h;

	if (metrics_host_ident(rq->srv, rq->who.host_id, &h, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, metrics_agent_config(rq->srv, h.cluster, h.group));
}

/* --- the push --- */

/* The push's answer, written out directly: every push gets one, and
 * building it as a jansson object to dump it again cost more than the
 * text (a few us of a push's floor, docs/scale.md "Pushes"). Only numbers
 * and the refusal's fixed name: nothing to escape. */
#define PUSH_ANSWER_MAX 320

static void
push_answer(struct req *rq, const struct metrics_push_result *res)
{
	char *t = xmalloc(PUSH_ANSWER_MAX);
	int n = snprintf(t, PUSH_ANSWER_MAX, "{\"config_version\":%lld,\"accepted\":%zu,\"rejected\":%zu",
			 (long long)res->config_version, res->accepted, res->rejected);

	if (res->refused)
		n += snprintf(t + n, PUSH_ANSWER_MAX - (size_t)n,
			      ",\"refused\":{\"series\":%zu,\"reason\":\"%s\",\"host_series\":%zu,"
			      "\"host_max_series\":%zu,\"host_refused_total\":%llu}",
			      res->refused, tsdb_refusal_name(res->refusal.reason),
			      res->refusal.host_series, res->refusal.host_max,
			      (unsigned long long)res->refusal.host_refused);
	n += snprintf(t + n, PUSH_ANSWER_MAX - (size_t)n, "}\n");
	BUG_ON(n <= 0 || n >= PUSH_ANSWER_MAX);
	reply_raw(rq, 200, "application/json", t, (size_t)n, false);
}

/* Pushes answered 200 since the server started, by body format
 * (herd_agent_pushes_total): [0] JSON, [1] protobuf. */
static uint64_t pushes_total[2];

/* Whether header h of rq is want, any case, optionally followed by
 * parameters (";..."). */
static bool
header_is(struct req *rq, const char *h, const char *want)
{
	const char *v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, h);
	size_t n = strlen(want);

	return v && strncasecmp(v, want, n) == 0 && (v[n] == '\0' || v[n] == ';' || v[n] == ' ');
}

/* The decoded push p of body format pb (0 JSON, 1 protobuf) stored for the
 * pushing host and answered. */
static void
push_store(struct req *rq, struct metrics_push *p, int pb)
{
	struct herr err = HERR_INIT;
	struct metrics_push_result res;
	struct metrics_host h;

	if (metrics_host_ident(rq->srv, rq->who.host_id, &h, &err) < 0 ||
	    /* on error the batches before the failing one are stored: the
	     * agent may resend them, and same-timestamp samples just replace */
	    metrics_push_ingest(rq->srv, &h, p, &res, &err) < 0)
		return reply_err(rq, &err);
	__atomic_fetch_add(&pushes_total[pb], 1, __ATOMIC_RELAXED);
	push_answer(rq, &res);
}

/* A protobuf body (proto/push.proto): unpacked into an arena on this
 * thread's stack (libmicrohttpd's threads have the default stack of
 * several MiB; an agent's push fits the arena's 32 KiB without heap),
 * then checked by the same model code as the JSON body. An empty body is
 * a push of no batches. */
static void
push_protobuf(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct pushwire_arena a;
	struct pushwire_push w;
	struct metrics_push p;

	if (pushwire_decode(rq->body.p, rq->body.len, PUSH_MAX_BATCHES_PER_REQUEST, &a, &w,
			    &err) < 0) {
		pushwire_arena_release(&a);
		return reply_err(rq, &err);
	}
	if (metrics_push_decode_wire(&w, now_ms(), &p, &err) < 0)
		reply_err(rq, &err);
	else
		push_store(rq, &p, 1);
	metrics_push_release(&p);
	pushwire_arena_release(&a);
}

/* POST /v1/agent/metrics: see docs/metrics.md. The whole push is checked
 * (and decoded, one walk of its JSON or protobuf body) before anything is
 * stored. Content-Type application/x-protobuf is the protobuf body; any
 * other (or none) is read as JSON, as before the protobuf body existed. */
void
api_agent_metrics(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct metrics_push p;
	json_t *body;

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (rq->srv->tsdb == NULL)
		return reply_errf(rq, HERR_UNAVAIL, "", "the metric store is not open");
	if (header_is(rq, MHD_HTTP_HEADER_CONTENT_TYPE, PUSHWIRE_CONTENT_TYPE))
		return push_protobuf(rq);
	if ((body = req_json(rq)) == NULL)
		return;
	if (metrics_push_decode(json_object_get(body, "batches"), json_object_get(body, "dropped"),
				now_ms(), &p, &err) < 0)
		reply_err(rq, &err);
	else
		push_store(rq, &p, 0);
	metrics_push_release(&p);
}

/* --- remote write: POST /api/v1/write (docs/prometheus.md) --- */

/* 415: a body herd cannot read, named (no herr code maps to it). */
static void
reply_unsupported(struct req *rq, const char *field, const char *want)
{
	char m[160];

	snprintf(m, sizeof(m), "%s must be %s (Prometheus remote write 1.0)", field, want);
	reply_json(rq, 415, json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "unsupported_media_type",
				      "message", m, "field", field));
}

/* Prometheus's remote_write into herd: the spec's answers (2xx stored, 4xx
 * do not retry, 5xx retry). A series of an unknown host is not an error. */
void
api_remote_write(struct req *rq)
{
	struct herr err = HERR_INIT;
	struct metrics_rw_result res;
	char t[256];

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (!header_is(rq, MHD_HTTP_HEADER_CONTENT_ENCODING, PROMWIRE_CONTENT_ENCODING))
		return reply_unsupported(rq, "Content-Encoding", PROMWIRE_CONTENT_ENCODING);
	if (!header_is(rq, MHD_HTTP_HEADER_CONTENT_TYPE, PROMWIRE_CONTENT_TYPE))
		return reply_unsupported(rq, "Content-Type", PROMWIRE_CONTENT_TYPE);
	if (metrics_remote_write(rq->srv, rq->body.p, rq->body.len, rq->srv->remote_write_host_label,
				 now_ms(), &res, &err) < 0) {
		if (err.code == HERR_INVALID || err.code == HERR_TOOBIG)
			log_warn("remote write from %s refused: %s", rq->who.name, err.msg);
		return reply_err(rq, &err);
	}
	snprintf(t, sizeof(t),
		 "{\"stored\":%llu,\"unknown_host\":%llu,\"quota\":%llu,\"invalid\":%llu,"
		 "\"rejected\":%llu}\n",
		 (unsigned long long)res.samples[RW_STORED],
		 (unsigned long long)res.samples[RW_UNKNOWN_HOST],
		 (unsigned long long)res.samples[RW_QUOTA], (unsigned long long)res.samples[RW_INVALID],
		 (unsigned long long)res.samples[RW_REJECTED]);
	reply_raw(rq, 200, "application/json", xstrdup(t), strlen(t), false);
}

/* --- viewer queries --- */

struct sel {
	char cluster[64], group[64], host[96];
	struct tsdb_matcher m[4];   /* + scope, for group aggregates */
	size_t nm;
};

static bool
copy_param(struct req *rq, const char *field, const char *v, char *out, size_t n)
{
	if (strlen(v) >= n) {
		reply_errf(rq, HERR_INVALID, field, "must be at most %zu characters", n - 1);
		return false;
	}
	snprintf(out, n, "%s", v);
	return true;
}

/* The series selection of ?host=[C/]H, ?group=[C/]G, ?cluster=C. A group
 * without a cluster is looked up; answers and returns false on error. */
static bool
selection(struct req *rq, struct sel *sel)
{
	const char *host = req_query(rq, "host"), *group = req_query(rq, "group");
	const char *cluster = req_query(rq, "cluster"), *slash;

	memset(sel, 0, sizeof(*sel));
	if (cluster && !copy_param(rq, "cluster", cluster, sel->cluster, sizeof(sel->cluster)))
		return false;
	if (host && *host) {
		if ((slash = strchr(host, '/')) != NULL) {
			if ((size_t)(slash - host) >= sizeof(sel->cluster)) {
				reply_errf(rq, HERR_INVALID, "host", "cluster name too long");
				return false;
			}
			snprintf(sel->cluster, sizeof(sel->cluster), "%.*s", (int)(slash - host), host);
			host = slash + 1;
		}
		if (!copy_param(rq, "host", host, sel->host, sizeof(sel->host)))
			return false;
	}
	if (group && *group) {
		if ((slash = strchr(group, '/')) != NULL) {
			if ((size_t)(slash - group) >= sizeof(sel->cluster)) {
				reply_errf(rq, HERR_INVALID, "group", "cluster name too long");
				return false;
			}
			snprintf(sel->cluster, sizeof(sel->cluster), "%.*s", (int)(slash - group), group);
			group = slash + 1;
		}
		if (!copy_param(rq, "group", group, sel->group, sizeof(sel->group)))
			return false;
		if (sel->cluster[0] == '\0') {
			struct herr err = HERR_INIT;
			struct res r;
			int rc = res_find(rq->srv->store, &kind_group, sel->group, &r, &err);
			if (rc == 0) {
				snprintf(sel->cluster, sizeof(sel->cluster), "%s", r.scope);
				res_release(&r);
			} else if (rc == HERR_CONFLICT) {
				reply_errf(rq, HERR_CONFLICT, "group",
					   "group '%s' is in several clusters: give CLUSTER/%s or cluster=",
					   sel->group, sel->group);
				return false;
			}
		}
	}
	if (sel->cluster[0])
		sel->m[sel->nm++] = (struct tsdb_matcher){ "cluster", sel->cluster, false };
	if (sel->group[0])
		sel->m[sel->nm++] = (struct tsdb_matcher){ "group", sel->group, false };
	if (sel->host[0])
		sel->m[sel->nm++] = (struct tsdb_matcher){ "host", sel->host, false };
	return true;
}

/* ?since=10m (default dflt_ms; 0 = none), or ?from=MS&to=MS. */
static bool
window(struct req *rq, int64_t dflt_ms, int64_t *from, int64_t *to)
{
	const char *since = req_query(rq, "since"), *f = req_query(rq, "from"), *t = req_query(rq, "to");
	int64_t ms = dflt_ms;
	char *end;

	*to = now_ms();
	if (t) {
		*to = strtoll(t, &end, 10);
		if (*end || end == t) {
			reply_errf(rq, HERR_INVALID, "to", "must be a time in ms since the epoch");
			return false;
		}
	}
	if (since && (parse_duration_ms(since, &ms) < 0 || ms <= 0)) {
		reply_errf(rq, HERR_INVALID, "since", "must be a duration like 10m, 1h, 2d");
		return false;
	}
	*from = ms ? *to - ms : INT64_MIN + 1;
	if (f) {
		*from = strtoll(f, &end, 10);
		if (*end || end == f) {
			reply_errf(rq, HERR_INVALID, "from", "must be a time in ms since the epoch");
			return false;
		}
	}
	if (*from > *to) {
		reply_errf(rq, HERR_INVALID, "from", "must not be after to");
		return false;
	}
	return true;
}

static json_t *
num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *
labels_json(const struct tsdb_series_info *si)
{
	json_t *o = json_object();

	for (size_t i = 0; i < si->nlabels; i++)
		json_object_set_new(o, si->labels[i].name, json_string(si->labels[i].value));
	return o;
}

static const char *
label_of(const struct tsdb_series_info *si, const char *name)
{
	for (size_t i = 0; i < si->nlabels; i++)
		if (strcmp(si->labels[i].name, name) == 0)
			return si->labels[i].value;
	return NULL;
}

static bool
parse_agg(const char *s, enum expr_agg *out)
{
	static const char *const names[] = { "avg", "min", "max", "sum", "count" };
	static const enum expr_agg vals[] = { AGG_AVG, AGG_MIN, AGG_MAX, AGG_SUM, AGG_COUNT };

	for (size_t i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = vals[i];
			return true;
		}
	return false;
}

/* GET /v1/metrics[?host=|group=&cluster=]: metric names with their series
 * (counted in the store, one metric at a time: nothing per series). */
void
api_metrics_list(struct req *rq)
{
	struct tsdb_metric_count *mc;
	struct sel sel;
	json_t *items;
	size_t n;

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (!selection(rq, &sel))
		return;
	if (rq->srv->tsdb == NULL || tsdb_metric_counts(rq->srv->tsdb, sel.m, sel.nm, &mc, &n) < 0)
		return reply_errf(rq, HERR_UNAVAIL, "", "the metric store is not open");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, json_pack("{s:s,s:I,s:I}", "name", mc[i].name, "series",
						       (json_int_t)mc[i].series, "last_ts_ms",
						       (json_int_t)mc[i].last_ts_ms));
	tsdb_metric_counts_free(mc, n);
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

/* GET /v1/metrics/query?metric=M&(host=H|group=G[&cluster=C])[&agg=][&since=][&step=] */
void
api_metrics_query(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *metric = req_query(rq, "metric"), *aggs = req_query(rq, "agg");
	const char *steps = req_query(rq, "step");
	int64_t from, to, step = 0;
	enum expr_agg agg = AGG_AVG;
	struct sel sel;
	struct tsdb *db = rq->srv->tsdb;

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (metric == NULL || !tsdb_metric_name_ok(metric))
		return reply_errf(rq, HERR_INVALID, "metric", "is required: a metric name");
	if (aggs && !parse_agg(aggs, &agg))
		return reply_errf(rq, HERR_INVALID, "agg", "must be avg, min, max, sum or count");
	if (!selection(rq, &sel) || !window(rq, 10 * 60 * 1000, &from, &to))
		return;
	if (from < to - 400LL * 86400 * 1000)
		from = to - 400LL * 86400 * 1000;
	if (steps && (parse_duration_ms(steps, &step) < 0 || step < 1))
		return reply_errf(rq, HERR_INVALID, "step", "must be a duration like 10s");
	if (db == NULL)
		return reply_errf(rq, HERR_UNAVAIL, "", "the metric store is not open");
	if (aggs) {
		struct tsdb_agg_point *p;
		json_t *pts = json_array();
		size_t n;

		if (step == 0) {
			/* about 120 steps, at least 5 s, a whole number of seconds */
			step = ((to - from) / 120 + 999) / 1000 * 1000;
			if (step < 5000)
				step = 5000;
		}
		if (metrics_agg_scoped(db, metric, sel.m, sel.nm, agg, from, to, step, &p, &n,
				       &err) < 0) {
			json_decref(pts);
			return reply_err(rq, &err);
		}
		for (size_t i = 0; i < n; i++)
			json_array_append_new(pts, json_pack("{s:I,s:o,s:i}", "ts_ms", (json_int_t)p[i].ts_ms,
							     "value", num(p[i].value), "series", p[i].nseries));
		free(p);
		reply_json(rq, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "metric", metric,
					      "agg", expr_agg_name(agg), "cluster", sel.cluster, "group",
					      sel.group, "host", sel.host, "from_ms", (json_int_t)from,
					      "to_ms", (json_int_t)to, "step_ms", (json_int_t)step,
					      "points", pts));
		return;
	}
	{
		struct tsdb_range_series *r;
		json_t *series = json_array();
		size_t n;

		if (tsdb_range(db, metric, sel.m, sel.nm, from, to, QUERY_MAX_POINTS, &r, &n, &err) < 0) {
			json_decref(series);
			if (err.code == HERR_TOOBIG)
				return reply_errf(rq, HERR_INVALID, "since", "%s", err.msg);
			return reply_err(rq, &err);
		}
		for (size_t i = 0; i < n; i++) {
			json_t *pts = json_array();
			for (size_t k = 0; k < r[i].n; k++) {
				int64_t t = r[i].ts_ms[k];
				if (step) {
					/* the last sample of each step, at the step's end */
					int64_t end = (t / step + (t % step > 0)) * step;
					if (k + 1 < r[i].n && r[i].ts_ms[k + 1] <= end)
						continue;
					t = end;
				}
				json_array_append_new(pts, json_pack("[I,o]", (json_int_t)t, num(r[i].values[k])));
			}
			json_array_append_new(series, json_pack("{s:o,s:o}", "labels", labels_json(&r[i].info),
								"points", pts));
		}
		tsdb_range_free(r, n);
		reply_json(rq, 200, json_pack("{s:s,s:I,s:I,s:I,s:o}", "metric", metric, "from_ms",
					      (json_int_t)from, "to_ms", (json_int_t)to, "step_ms",
					      (json_int_t)step, "series", series));
	}
}

/* The hosts of ?hosts=A,B,C-1/D (at most LATEST_HOSTS_MAX names, each
 * NAME or CLUSTER/NAME) split in place in s: one set of matchers per name
 * in sets (host, then cluster when given), m holding 2 per name. Returns
 * how many, or -1 with err naming hosts. */
static int
latest_hosts_parse(char *s, struct tsdb_matcher *m, struct tsdb_match_set *sets,
		   struct herr *err)
{
	int n = 0;

	for (char *p = s, *next; p; p = next) {
		char *slash, *host = p;
		struct tsdb_matcher *hm = &m[2 * n];

		if ((next = strchr(p, ',')) != NULL)
			*next++ = '\0';
		if (n == LATEST_HOSTS_MAX) {
			herr_field(err, HERR_INVALID, "hosts", "at most %d host names",
				   LATEST_HOSTS_MAX);
			return -1;
		}
		sets[n] = (struct tsdb_match_set){ hm, 1 };
		if ((slash = strchr(p, '/')) != NULL) {
			*slash = '\0';
			host = slash + 1;
			if (*p == '\0' || slash - p >= 64) {
				herr_field(err, HERR_INVALID, "hosts",
					   "a cluster must be 1 to 63 characters (CLUSTER/NAME)");
				return -1;
			}
			hm[1] = (struct tsdb_matcher){ "cluster", p, false };
			sets[n].nm = 2;
		}
		if (*host == '\0' || strlen(host) >= 96 || strchr(host, '/')) {
			herr_field(err, HERR_INVALID, "hosts",
				   "must be host names (NAME or CLUSTER/NAME, at most 95 characters)"
				   " separated by commas");
			return -1;
		}
		hm[0] = (struct tsdb_matcher){ "host", host, false };
		n++;
	}
	return n;
}

/* GET /v1/metrics/latest[?metric=M][&host=|hosts=|group=&cluster=][&since=]
 * [&limit=N][&after=CURSOR]: a page of at most limit series (default
 * LATEST_LIMIT), with "next" to pass as after= while there are more.
 * hosts= keeps the series of those hosts only, looked up host by host. */
void
api_metrics_latest(struct req *rq)
{
	struct herr err = HERR_INIT;
	const char *metric = req_query(rq, "metric"), *lims = req_query(rq, "limit");
	const char *after = req_query(rq, "after"), *hostsq = req_query(rq, "hosts");
	struct tsdb_matcher hm[2 * LATEST_HOSTS_MAX];
	struct tsdb_match_set hsets[LATEST_HOSTS_MAX];
	struct tsdb_series_info *si;
	char *hostbuf = NULL;
	int nh = 0;
	json_t *items, *ans;
	int64_t from, to;
	struct sel sel;
	size_t n, limit = LATEST_LIMIT;
	uint32_t cur = 0;
	char *end;

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (metric && !tsdb_metric_name_ok(metric))
		return reply_errf(rq, HERR_INVALID, "metric", "must be a metric name");
	if (lims) {
		unsigned long long v = strtoull(lims, &end, 10);
		if (*lims < '0' || *lims > '9' || *end || v < 1 || v > LATEST_LIMIT_MAX)
			return reply_errf(rq, HERR_INVALID, "limit", "must be between 1 and %d",
					  LATEST_LIMIT_MAX);
		limit = (size_t)v;
	}
	if (after && *after) {
		unsigned long long v = strtoull(after, &end, 10);
		if (*after < '0' || *after > '9' || *end || v >= UINT32_MAX)
			return reply_errf(rq, HERR_INVALID, "after",
					  "must be the \"next\" of the previous page");
		cur = (uint32_t)v;
	}
	if (hostsq) {
		if (req_query(rq, "host"))
			return reply_errf(rq, HERR_INVALID, "hosts", "cannot be combined with host=");
		hostbuf = xstrdup(hostsq);
		if ((nh = latest_hosts_parse(hostbuf, hm, hsets, &err)) < 0) {
			free(hostbuf);
			return reply_err(rq, &err);
		}
	}
	if (!selection(rq, &sel) || !window(rq, 0, &from, &to)) {
		free(hostbuf);
		return;
	}
	if (rq->srv->tsdb == NULL ||
	    (hostbuf ? tsdb_latest_page_any(rq->srv->tsdb, metric, sel.m, sel.nm, hsets, (size_t)nh,
					    from, &cur, limit, &si, &n, &err)
		     : tsdb_latest_page(rq->srv->tsdb, metric, sel.m, sel.nm, from, &cur, limit, &si,
					&n, &err)) < 0) {
		free(hostbuf);
		return reply_errf(rq, HERR_UNAVAIL, "", "the metric store is not open");
	}
	free(hostbuf);
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *h = label_of(&si[i], "host");
		json_array_append_new(items, json_pack("{s:s,s:s?,s:o,s:I,s:o}", "metric", si[i].metric,
						       "host", h, "labels", labels_json(&si[i]), "ts_ms",
						       (json_int_t)si[i].last_ts_ms, "value",
						       num(si[i].last_value)));
	}
	tsdb_series_free(si, n);
	ans = json_pack("{s:o}", "items", items);
	if (cur != UINT32_MAX) {
		char next[16];
		snprintf(next, sizeof(next), "%u", cur);
		json_object_set_new(ans, "next", json_string(next));
	} else {
		json_object_set_new(ans, "next", json_null());
	}
	reply_json(rq, 200, ans);
}

/* GET /v1/metrics/monitors[?host=|group=&cluster=]: the last state of each
 * monitor of each host, with its error. */
void
api_metrics_monitors(struct req *rq)
{
	struct monitor_state *ms;
	struct sel sel;
	json_t *items = json_array();
	size_t n;

	if (api_forward_to_leader(rq))   /* a follower: the leader's TSDB answers */
		return;

	if (!selection(rq, &sel))
		return json_decref(items);
	n = metrics_monitor_states(sel.cluster, sel.group, sel.host, &ms);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "host", ms[i].host,
						       "cluster", ms[i].cluster, "group", ms[i].group,
						       "monitor", ms[i].name, "state", ms[i].state,
						       "error", ms[i].error, "ts_ms", (json_int_t)ms[i].ts_ms));
	free(ms);
	reply_json(rq, 200, json_pack("{s:o}", "items", items));
}

/* --- the Prometheus exposition --- */

/* The names on /metrics: Prometheus conventions (base units, ratios, a
 * counter ends in _total; prometheus.io/docs/practices/naming) over herd's
 * names, which the store, the API and policies keep (cpu_busy_pct > 70).
 * Mapped here, when the text is written, so stored history, policies and
 * the console are untouched. One line per family: the agent's system
 * metrics (src/agent/col-*.c), the series the server makes from a push,
 * then the store's own figures (stored NULL). docs/metrics.md has the
 * table of renames. */
struct prom_family {
	const char *stored;    /* in the store and herd's API; NULL: not a series */
	const char *exposed;   /* on /metrics */
	const char *type;
	double scale;          /* value on /metrics = stored value x scale */
	const char *help;
};

static const struct prom_family prom_families[] = {
	{ "cpu_busy_pct", "cpu_busy_ratio", "gauge", 0.01,
	  "Share of the machine's CPU time not idle nor iowait, 0 to 1, over the last push interval." },
	{ "cpu_mode_pct", "cpu_mode_ratio", "gauge", 0.01,
	  "Share of the machine's CPU time in each mode, 0 to 1 (the modes sum to 1)." },
	{ "load1", "load1", "gauge", 1, "The machine's load average over 1 minute." },
	{ "load5", "load5", "gauge", 1, "The machine's load average over 5 minutes." },
	{ "load15", "load15", "gauge", 1, "The machine's load average over 15 minutes." },
	{ "mem_total_bytes", "mem_total_bytes", "gauge", 1, "The machine's memory (MemTotal)." },
	{ "mem_available_bytes", "mem_available_bytes", "gauge", 1,
	  "The machine's memory available to programs (MemAvailable)." },
	{ "mem_used_bytes", "mem_used_bytes", "gauge", 1,
	  "The machine's memory in use: total minus available." },
	{ "mem_used_pct", "mem_used_ratio", "gauge", 0.01,
	  "The machine's memory in use, 0 to 1 of the total." },
	{ "disk_used_bytes", "disk_used_bytes", "gauge", 1, "Bytes used on the filesystem." },
	{ "disk_free_bytes", "disk_free_bytes", "gauge", 1,
	  "Bytes available to users on the filesystem." },
	{ "disk_used_pct", "disk_used_ratio", "gauge", 0.01,
	  "Filesystem use, 0 to 1 of used plus available, as df." },
	{ "net_rx_bytes_per_s", "net_rx_bytes_per_second", "gauge", 1,
	  "Bytes received by the interface per second over the last push interval." },
	{ "net_tx_bytes_per_s", "net_tx_bytes_per_second", "gauge", 1,
	  "Bytes sent by the interface per second over the last push interval." },
	{ "net_rx_errors_per_s", "net_rx_errors_per_second", "gauge", 1,
	  "Receive errors of the interface per second over the last push interval." },
	{ "net_tx_errors_per_s", "net_tx_errors_per_second", "gauge", 1,
	  "Transmit errors of the interface per second over the last push interval." },
	{ "procs", "procs", "gauge", 1, "Processes in the host's PID namespace." },
	{ "uptime_s", "uptime_seconds", "gauge", 1, "Seconds since the machine booted." },
	{ "monitor_up", "monitor_up", "gauge", 1,
	  "1 when the script monitor's last run succeeded, else 0." },
	{ "agent_dropped_batches_total", "agent_dropped_batches_total", "counter", 1,
	  "Metric batches the host's agent reported lost, since the server started." },
	{ NULL, "herd_tsdb_series", "gauge", 1, "Series in herd's metric store." },
	{ NULL, "herd_tsdb_chunks", "gauge", 1, "Closed chunks in herd's metric store." },
	{ NULL, "herd_tsdb_block_bytes", "gauge", 1, "Bytes of the metric store's block files." },
	{ NULL, "herd_tsdb_samples_appended_total", "counter", 1,
	  "Samples stored since the server started." },
	{ NULL, "herd_tsdb_samples_rejected_total", "counter", 1,
	  "Samples refused since the server started, by reason." },
	{ NULL, "herd_tsdb_wal_fsyncs_total", "counter", 1,
	  "fdatasyncs of the metric store's write-ahead log since the server started." },
	{ NULL, "herd_tsdb_wal_unsynced_bytes", "gauge", 1,
	  "Write-ahead log bytes written but not yet fdatasync'ed (--metrics-sync)." },
	{ NULL, "herd_agent_config_builds_total", "counter", 1,
	  "Times the agents' configuration (and the cluster's quotas a push obeys) was computed"
	  " from the store since the server started: once per resource change, not per push." },
	{ NULL, "herd_agent_pushes_total", "counter", 1,
	  "Agent pushes (POST /v1/agent/metrics) stored and answered 200 since the server"
	  " started, by body format: format=\"json\" or \"protobuf\"." },
	{ NULL, "herd_longpoll_wakeups_total", "counter", 1,
	  "Parked long-polls resumed to run their handler again: by a change that concerns them"
	  " (reason=\"kick\") or at their deadline (reason=\"deadline\")." },
	{ NULL, "herd_store_lock_waits_total", "counter", 1,
	  "Times a statement of the control-plane store waited for another connection's write"
	  " lock." },
	{ NULL, "herd_store_lock_wakeups_total", "counter", 1,
	  "Lock waits ended by a transaction of this server ending (the others looked again"
	  " after a short poll: a holder in another process)." },
	{ NULL, "herd_remote_write_received_samples_total", "counter", 1,
	  "Samples received on POST /api/v1/write (Prometheus remote write), by outcome:"
	  " stored, unknown_host, quota, invalid, rejected (out of order, duplicate, too old)." },
	{ NULL, "herd_alert_notifications_total", "counter", 1,
	  "Alert notifications per receiver: delivered (result=\"sent\"), attempts that failed"
	  " and will be retried (\"failed\"), refused for good and skipped (\"dropped\")." },
	{ NULL, "herd_remote_write_samples_total", "counter", 1,
	  "Samples per remote_write endpoint: acknowledged (outcome=\"sent\"), dropped because"
	  " the buffer or the on-disk queue was full (\"dropped_queue\"), refused for good with"
	  " a 4xx (\"dropped_4xx\"), and sent again after a 5xx, 429 or no answer (\"retried\")." },
	{ NULL, "herd_remote_write_pending_bytes", "gauge", 1,
	  "Bytes waiting to be sent to the remote_write endpoint (buffer and on-disk queue)." },
	{ NULL, "herd_remote_write_pending_samples", "gauge", 1,
	  "Samples in the on-disk queue of the remote_write endpoint not yet acknowledged." },
	{ NULL, "herd_remote_write_shards", "gauge", 1,
	  "Parallel requests of the remote_write endpoint's last round (1 + backlog, up to"
	  " max_shards)." },
	{ NULL, "herd_remote_write_last_error_timestamp_seconds", "gauge", 1,
	  "When the remote_write endpoint last failed or refused a request (0: never)." },
};

#define PROM_CUSTOM_HELP "Custom metric: reported by a script monitor or pushed to herd."

static const struct prom_family *
prom_family_of_exposed(const char *name)
{
	for (size_t i = 0; i < sizeof(prom_families) / sizeof(prom_families[0]); i++)
		if (strcmp(prom_families[i].exposed, name) == 0)
			return &prom_families[i];
	return NULL;
}

/* tsdb_expose_family_fn: herd's families by the table; any other metric
 * (a monitor's, a pushed one) keeps its name, untyped (herd cannot know
 * whether it counts), with a generic help. A custom metric named like one
 * of the table's exposed names is left out: it would be a second family of
 * that name, which makes the whole exposition invalid. */
static void
prom_family(const char *metric, struct tsdb_expose_family *f)
{
	for (size_t i = 0; i < sizeof(prom_families) / sizeof(prom_families[0]); i++) {
		const struct prom_family *p = &prom_families[i];

		if (p->stored && strcmp(p->stored, metric) == 0) {
			*f = (struct tsdb_expose_family){ p->exposed, p->type, p->help, p->scale };
			return;
		}
	}
	if (prom_family_of_exposed(metric)) {
		f->name = NULL;
		return;
	}
	f->help = PROM_CUSTOM_HELP;
}

/* Appends the HELP and TYPE lines of the table's family exposed. */
static void
prom_header(struct buf *b, const char *exposed)
{
	const struct prom_family *p = prom_family_of_exposed(exposed);

	BUG_ON(p == NULL);
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", p->exposed, p->help, p->exposed, p->type);
}

/* herd_alert_notifications_total from the receivers' delivery rows
 * (receiver names are DNS labels: nothing to escape). */
static void
expose_notifications(struct server *srv, struct buf *b)
{
	static const char *const results[] = { "sent", "failed", "dropped" };
	struct herr err = HERR_INIT;
	json_t *items = NULL, *x;
	size_t i;

	if (alert_delivery_list(srv->store, &items, &err) < 0)
		return;
	prom_header(b, "herd_alert_notifications_total");
	json_array_foreach(items, i, x)
		for (size_t k = 0; k < 3; k++)
			buf_addf(b, "herd_alert_notifications_total{receiver=\"%s\",result=\"%s\"} %lld\n",
				 json_string_value(json_object_get(x, "name")), results[k],
				 (long long)json_integer_value(json_object_get(x, results[k])));
	json_decref(items);
}

/* herd_remote_write_received_samples_total, every outcome. */
static void
expose_remote_write(struct buf *b)
{
	struct metrics_rw_result t;

	metrics_remote_write_totals(&t);
	prom_header(b, "herd_remote_write_received_samples_total");
	for (size_t i = 0; i < RW_NOUTCOMES; i++)
		buf_addf(b, "herd_remote_write_received_samples_total{outcome=\"%s\"} %llu\n",
			 metrics_rw_outcome_name((enum metrics_rw_outcome)i),
			 (unsigned long long)t.samples[i]);
}

/* remote_write out's figures, per remote (ctl/rwout.h; names are DNS
 * labels: nothing to escape). */
static void
expose_remote_writes(struct buf *b)
{
	static const char *const outcomes[] = { "sent", "dropped_queue", "dropped_4xx", "retried" };
	json_t *items = rwout_status(), *x;
	size_t i;

	if (json_array_size(items) == 0) {
		json_decref(items);
		return;
	}
	prom_header(b, "herd_remote_write_samples_total");
	json_array_foreach(items, i, x)
		for (size_t k = 0; k < 4; k++)
			buf_addf(b, "herd_remote_write_samples_total{remote=\"%s\",outcome=\"%s\"} %lld\n",
				 json_string_value(json_object_get(x, "name")), outcomes[k],
				 (long long)json_integer_value(json_object_get(x, outcomes[k])));
	prom_header(b, "herd_remote_write_pending_bytes");
	json_array_foreach(items, i, x)
		buf_addf(b, "herd_remote_write_pending_bytes{remote=\"%s\"} %lld\n",
			 json_string_value(json_object_get(x, "name")),
			 (long long)json_integer_value(json_object_get(x, "pending_bytes")));
	prom_header(b, "herd_remote_write_pending_samples");
	json_array_foreach(items, i, x)
		buf_addf(b, "herd_remote_write_pending_samples{remote=\"%s\"} %lld\n",
			 json_string_value(json_object_get(x, "name")),
			 (long long)json_integer_value(json_object_get(x, "pending_samples")));
	prom_header(b, "herd_remote_write_shards");
	json_array_foreach(items, i, x)
		buf_addf(b, "herd_remote_write_shards{remote=\"%s\"} %lld\n",
			 json_string_value(json_object_get(x, "name")),
			 (long long)json_integer_value(json_object_get(x, "shards")));
	prom_header(b, "herd_remote_write_last_error_timestamp_seconds");
	json_array_foreach(items, i, x)
		buf_addf(b, "herd_remote_write_last_error_timestamp_seconds{remote=\"%s\"} %.3f\n",
			 json_string_value(json_object_get(x, "name")),
			 (double)json_integer_value(json_object_get(x, "last_error_at")) / 1000.0);
	json_decref(items);
}

/* The store's own figures, after the series. */
static void
expose_stats(struct server *srv, struct tsdb *db, struct buf *b)
{
	struct store_lock_stats ls;
	uint64_t kick, deadline;
	struct tsdb_stats st;

	tsdb_stats(db, &st);
	prom_header(b, "herd_tsdb_series");
	buf_addf(b, "herd_tsdb_series %zu\n", st.series);
	prom_header(b, "herd_tsdb_chunks");
	buf_addf(b, "herd_tsdb_chunks %zu\n", st.chunks);
	prom_header(b, "herd_tsdb_block_bytes");
	buf_addf(b, "herd_tsdb_block_bytes %llu\n", (unsigned long long)st.block_bytes);
	prom_header(b, "herd_tsdb_samples_appended_total");
	buf_addf(b, "herd_tsdb_samples_appended_total %llu\n", (unsigned long long)st.appended);
	prom_header(b, "herd_tsdb_samples_rejected_total");
	buf_addf(b,
		 "herd_tsdb_samples_rejected_total{reason=\"out_of_order\"} %llu\n"
		 "herd_tsdb_samples_rejected_total{reason=\"duplicate\"} %llu\n"
		 "herd_tsdb_samples_rejected_total{reason=\"too_old\"} %llu\n"
		 "herd_tsdb_samples_rejected_total{reason=\"series_limit\"} %llu\n",
		 (unsigned long long)st.out_of_order, (unsigned long long)st.duplicates,
		 (unsigned long long)st.too_old, (unsigned long long)st.series_limited);
	prom_header(b, "herd_tsdb_wal_fsyncs_total");
	buf_addf(b, "herd_tsdb_wal_fsyncs_total %llu\n", (unsigned long long)st.fsyncs);
	prom_header(b, "herd_tsdb_wal_unsynced_bytes");
	buf_addf(b, "herd_tsdb_wal_unsynced_bytes %llu\n", (unsigned long long)st.wal_unsynced);
	prom_header(b, "herd_agent_config_builds_total");
	buf_addf(b, "herd_agent_config_builds_total %llu\n",
		 (unsigned long long)metrics_agent_config_builds());
	prom_header(b, "herd_agent_pushes_total");
	buf_addf(b,
		 "herd_agent_pushes_total{format=\"json\"} %llu\n"
		 "herd_agent_pushes_total{format=\"protobuf\"} %llu\n",
		 (unsigned long long)__atomic_load_n(&pushes_total[0], __ATOMIC_RELAXED),
		 (unsigned long long)__atomic_load_n(&pushes_total[1], __ATOMIC_RELAXED));
	httpd_wakeups(srv, &kick, &deadline);
	prom_header(b, "herd_longpoll_wakeups_total");
	buf_addf(b,
		 "herd_longpoll_wakeups_total{reason=\"kick\"} %llu\n"
		 "herd_longpoll_wakeups_total{reason=\"deadline\"} %llu\n",
		 (unsigned long long)kick, (unsigned long long)deadline);
	store_lock_stats(srv->store, &ls, 0);
	prom_header(b, "herd_store_lock_waits_total");
	buf_addf(b, "herd_store_lock_waits_total %llu\n", (unsigned long long)ls.waits);
	prom_header(b, "herd_store_lock_wakeups_total");
	buf_addf(b, "herd_store_lock_wakeups_total %llu\n", (unsigned long long)ls.woken);
	expose_remote_write(b);
	expose_notifications(srv, b);
	expose_remote_writes(b);
}

/* A /metrics answer being sent: the text is made EXPOSE_CHUNK_SERIES
 * series at a time as the client reads, so memory stays bounded (the
 * pending piece and the metric names) however large the store is. */
struct expo {
	struct server *srv;
	struct tsdb *db;
	struct tsdb_expose_cursor *cur;
	struct buf b;              /* the piece being sent */
	size_t off;                /* bytes of b sent */
	int phase;                 /* 0: series, 1: the store's figures, 2: done */
};

static ssize_t
expo_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct expo *e = cls;
	size_t n;

	(void)pos;
	while (e->off == e->b.len) {
		e->b.len = 0;
		e->off = 0;
		if (e->phase == 0) {
			if (!tsdb_expose_next(e->db, e->cur, &e->b, EXPOSE_CHUNK_SERIES))
				e->phase = 1;
		} else if (e->phase == 1) {
			expose_stats(e->srv, e->db, &e->b);
			e->phase = 2;
		} else {
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
	}
	n = e->b.len - e->off < max ? e->b.len - e->off : max;
	memcpy(out, e->b.p + e->off, n);
	e->off += n;
	return (ssize_t)n;
}

static void
expo_free(void *cls)
{
	struct expo *e = cls;

	tsdb_expose_end(e->cur);
	buf_release(&e->b);
	free(e);
}

/* GET /metrics: Prometheus text format, latest sample of every series
 * updated in the last 5 minutes under its Prometheus name (prom_families),
 * then the store's own figures; streamed. */
void
api_metrics_prometheus(struct req *rq)
{
	struct expo *e;

	if (rq->srv->tsdb == NULL)
		return reply_errf(rq, HERR_UNAVAIL, "", "the metric store is not open");
	e = xcalloc(1, sizeof(*e));
	e->srv = rq->srv;
	e->db = rq->srv->tsdb;
	buf_init(&e->b, EXPOSE_PIECE_MAX_BYTES);
	e->cur = tsdb_expose_begin(e->db, now_ms() - EXPOSE_MAX_AGE_MS);
	tsdb_expose_set_family(e->cur, prom_family);
	rq->status = 200;
	rq->ctype = "text/plain; version=0.0.4; charset=utf-8";
	rq->stream = expo_read;
	rq->stream_cls = e;
	rq->stream_free = expo_free;
}
