/* ctl/promsrc.c - PromQL as a policy metric source (ctl/promsrc.h): the
 * query thread (one instant query per PromQL policy and push round, each
 * with a timeout and a capped answer, through libcurl's httpc), the answer
 * parser (pure), the results kept per policy (bounded) and the aggregate
 * steps the autoscaler reads from them. The query never runs on the
 * autoscaler's thread: a slow or dead Prometheus delays no decision, its
 * rounds just have no data. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "ctl/promsrc.h"
#include "httpc.h"
#include "log.h"
#include "model/kind.h"
#include "model/res.h"
#include "scale/scale.h"
#include "util.h"
#include "xalloc.h"

/* --- the answer --- */

/* A sample's value as Prometheus writes it: ["<ts>", "<value>"]. */
static int
sample_value(const json_t *pair, double *v, char *why, size_t n)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	char *end;

	if (!json_is_array(pair) || s == NULL) {
		snprintf(why, n, "a sample without a value");
		return -1;
	}
	errno = 0;
	*v = strtod(s, &end);
	if (end == s || *end != '\0') {
		snprintf(why, n, "the value '%.40s' is not a number", s);
		return -1;
	}
	if (!isfinite(*v)) {
		snprintf(why, n, "the value is %s", isnan(*v) ? "NaN" : *v > 0 ? "+Inf" : "-Inf");
		return -1;
	}
	return 0;
}

int
promsrc_answer_parse(const char *body, size_t len, double *v, char *why, size_t n)
{
	json_error_t jerr;
	json_t *a = json_loadb(body, len, 0, &jerr), *data, *res;
	const char *st, *type;
	int rc = -1;

	if (a == NULL) {
		snprintf(why, n, "the answer is not JSON (%s)", jerr.text);
		return -1;
	}
	st = json_string_value(json_object_get(a, "status"));
	data = json_object_get(a, "data");
	type = json_string_value(json_object_get(data, "resultType"));
	res = json_object_get(data, "result");
	if (st == NULL || strcmp(st, "success") != 0)
		snprintf(why, n, "status %.20s: %.120s", st ? st : "missing",
			 json_is_string(json_object_get(a, "error"))
				 ? json_string_value(json_object_get(a, "error"))
				 : "no error given");
	else if (type && strcmp(type, "scalar") == 0)
		rc = sample_value(res, v, why, n);
	else if (type == NULL || strcmp(type, "vector") != 0 || !json_is_array(res))
		snprintf(why, n, "a %.20s result: one value (scalar or vector) expected",
			 type ? type : "missing");
	else if (json_array_size(res) == 0)
		snprintf(why, n, "an empty vector: no series matched");
	else if (json_array_size(res) > 1)
		snprintf(why, n, "%zu series where one is expected (aggregate them, e.g. sum(...))",
			 json_array_size(res));
	else
		rc = sample_value(json_object_get(json_array_get(res, 0), "value"), v, why, n);
	json_decref(a);
	return rc;
}

/* --- the results kept --- */

struct result {
	int64_t ts_ms;            /* the round it is for */
	double value;
	bool known;
};

struct source {
	char key[200];            /* cluster/group/policy */
	char url[POLICY_PROM_URL_MAX + 1];
	char query[POLICY_PROM_QUERY_MAX + 1];
	struct result r[PROMSRC_KEEP];   /* a ring: r[(head + i) % KEEP], oldest first */
	size_t head, n;
	char why[PROMSRC_WHY_MAX];        /* of the newest result, when unknown */
	bool seen;                        /* in the last round's policies */
};

static pthread_mutex_t src_lock = PTHREAD_MUTEX_INITIALIZER;
static struct source *srcs[PROMSRC_MAX_POLICIES];
static size_t nsrcs;

static void
src_key(char *out, size_t n, const char *cluster, const char *group, const char *policy)
{
	snprintf(out, n, "%s/%s/%s", cluster, group, policy);
}

/* The source of key with p's url and query (src_lock held); a changed
 * query starts afresh. NULL when none (and !create, or full). */
static struct source *
src_find(const char *key, const struct policy *p, bool create)
{
	struct source *s;

	for (size_t i = 0; i < nsrcs; i++) {
		s = srcs[i];
		if (strcmp(s->key, key) != 0)
			continue;
		if (strcmp(s->url, p->prom_url) == 0 && strcmp(s->query, p->prom_query) == 0)
			return s;
		if (!create)
			return NULL;
		s->head = s->n = 0;
		s->why[0] = '\0';
		snprintf(s->url, sizeof(s->url), "%s", p->prom_url);
		snprintf(s->query, sizeof(s->query), "%s", p->prom_query);
		return s;
	}
	if (!create || nsrcs == PROMSRC_MAX_POLICIES)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	snprintf(s->url, sizeof(s->url), "%s", p->prom_url);
	snprintf(s->query, sizeof(s->query), "%s", p->prom_query);
	srcs[nsrcs++] = s;
	return s;
}

static void
src_add(struct source *s, int64_t ts, bool known, double v, const char *why)
{
	struct result *r;

	if (s->n == PROMSRC_KEEP) {
		s->head = (s->head + 1) % PROMSRC_KEEP;
		s->n--;
	}
	r = &s->r[(s->head + s->n++) % PROMSRC_KEEP];
	*r = (struct result){ ts, v, known };
	snprintf(s->why, sizeof(s->why), "%s", known ? "" : why);
}

int
promsrc_agg(void *ctx, const struct policy *p, int64_t now, int64_t span, int64_t step,
	    const char *const *ex, size_t nex, struct agg_point **out, size_t *n,
	    struct herr *err)
{
	const struct promsrc_ctx *c = ctx;
	int64_t last = now - now % step, first = last - span + step;
	size_t steps, k = 0;
	struct source *s;
	char key[200];

	(void)ex;
	(void)nex;
	if (step <= 0 || span <= 0)
		return herr_field(err, HERR_INVALID, "window", "must be positive");
	if (first > last)
		first = last;
	first -= first % step;
	steps = (size_t)((last - first) / step) + 1;
	*out = xcalloc(steps + 1, sizeof(**out));
	*n = steps;
	for (size_t i = 0; i < steps; i++)
		(*out)[i] = (struct agg_point){ first + (int64_t)i * step, NAN, 0 };
	src_key(key, sizeof(key), c->cluster, c->group, p->name);
	pthread_mutex_lock(&src_lock);
	s = src_find(key, p, false);
	/* the results, oldest first, into the step they end in: the newest wins */
	for (size_t i = 0; s && i < s->n; i++) {
		const struct result *r = &s->r[(s->head + i) % PROMSRC_KEEP];
		int64_t end = r->ts_ms % step ? r->ts_ms - r->ts_ms % step + step : r->ts_ms;

		if (end < first || end > last)
			continue;
		k = (size_t)((end - first) / step);
		(*out)[k].value = r->known ? r->value : NAN;
		(*out)[k].nseries = r->known ? (c->ready > 1 ? c->ready : 1) : 0;
	}
	pthread_mutex_unlock(&src_lock);
	return 0;
}

bool
promsrc_latest(const char *cluster, const char *group, const struct policy *p, double *v,
	       int64_t *ts, char *why, size_t n)
{
	struct source *s;
	char key[200];
	bool known = false;

	src_key(key, sizeof(key), cluster, group, p->name);
	pthread_mutex_lock(&src_lock);
	s = src_find(key, p, false);
	if (s == NULL || s->n == 0) {
		snprintf(why, n, "not queried yet");
	} else {
		const struct result *r = &s->r[(s->head + s->n - 1) % PROMSRC_KEEP];
		known = r->known;
		*v = r->value;
		*ts = r->ts_ms;
		snprintf(why, n, "%s", s->why);
	}
	pthread_mutex_unlock(&src_lock);
	return known;
}

/* --- the queries --- */

/* One instant query: 0 with *v, or -1 with why. */
static int
query_run(const struct policy *p, long timeout_ms, double *v, char *why, size_t n)
{
	struct herr err = HERR_INIT;
	struct httpc c;
	struct buf b;
	char *q = httpc_escape(p->prom_query), *path;
	long status = 0;
	int rc;

	httpc_init(&c, p->prom_url, NULL);
	c.timeout_ms = timeout_ms;
	c.max_response = PROMSRC_MAX_RESPONSE;
	buf_init(&b, PROMSRC_MAX_RESPONSE);
	path = xmalloc(strlen(q) + 32);
	snprintf(path, strlen(q) + 32, "/api/v1/query?query=%s", q);
	rc = httpc_text(&c, "GET", path, NULL, &status, &b, &err);
	if (rc < 0) {
		snprintf(why, n, "query failed: %s", err.msg);
	} else if ((rc = promsrc_answer_parse(b.p ? b.p : "", b.len, v, why, n)) == 0 &&
		   status != 200) {
		snprintf(why, n, "HTTP %ld", status);
		rc = -1;
	} else if (rc < 0 && status != 200) {
		char w[PROMSRC_WHY_MAX];
		snprintf(w, sizeof(w), "%s", why);
		snprintf(why, n, "HTTP %ld: %s", status, w);
	}
	buf_release(&b);
	httpc_release(&c);
	free(path);
	free(q);
	return rc < 0 ? -1 : 0;
}

struct promsrc {
	struct server *s;
	pthread_t thread;
	bool started;
};

static struct promsrc *g_ps;

/* One round: every PromQL policy queried once, its result stamped with
 * the round's time; the sources of policies gone are dropped. */
static void
round_run(struct server *s, int64_t round_ms)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *row;
	long timeout = s->push_interval_ms < PROMSRC_TIMEOUT_MS ? (long)s->push_interval_ms
								 : PROMSRC_TIMEOUT_MS;
	size_t i;

	if (res_all(s->store, &kind_policy, NULL, &rows, &err) < 0) {
		log_warn("promsrc: cannot read the policies: %s", err.msg);
		return;
	}
	pthread_mutex_lock(&src_lock);
	for (i = 0; i < nsrcs; i++)
		srcs[i]->seen = false;
	pthread_mutex_unlock(&src_lock);
	json_array_foreach(rows, i, row) {
		const char *scope = json_string_value(json_object_get(row, "scope"));
		const char *name = json_string_value(json_object_get(row, "name"));
		char key[200], why[PROMSRC_WHY_MAX] = "", cluster[64];
		const char *slash = scope ? strchr(scope, '/') : NULL;
		struct source *src;
		struct policy p;
		double v = NAN;
		bool known;

		if (s->stopping)
			break;
		if (slash == NULL || name == NULL ||
		    policy_parse(name, json_object_get(row, "spec"), &p, &err) < 0 ||
		    p.prom_url[0] == '\0') {
			herr_clear(&err);
			continue;
		}
		snprintf(cluster, sizeof(cluster), "%.*s", (int)(slash - scope), scope);
		src_key(key, sizeof(key), cluster, slash + 1, name);
		pthread_mutex_lock(&src_lock);
		src = src_find(key, &p, true);
		if (src)
			src->seen = true;
		pthread_mutex_unlock(&src_lock);
		if (src == NULL)
			continue;   /* past PROMSRC_MAX_POLICIES: no data, never a scale-in */
		known = query_run(&p, timeout, &v, why, sizeof(why)) == 0;
		if (!known)
			log_debug("promsrc: %s: %s", key, why);
		pthread_mutex_lock(&src_lock);
		if ((src = src_find(key, &p, false)) != NULL)
			src_add(src, round_ms, known, v, why);
		pthread_mutex_unlock(&src_lock);
		autoscale_on_push(s, cluster, slash + 1);
	}
	pthread_mutex_lock(&src_lock);
	for (i = 0; i < nsrcs;) {
		if (srcs[i]->seen) {
			i++;
			continue;
		}
		free(srcs[i]);
		srcs[i] = srcs[--nsrcs];
	}
	pthread_mutex_unlock(&src_lock);
	json_decref(rows);
}

static void *
promsrc_main(void *arg)
{
	struct promsrc *ps = arg;
	struct server *s = ps->s;
	int64_t done = 0;

	while (!s->stopping) {
		int64_t now = now_ms(), step = s->push_interval_ms;
		int64_t round = now - now % step;

		if (round > done) {
			round_run(s, round);
			done = round;
			continue;
		}
		/* until the next round (or a stop), 100 ms at a time */
		sleep_ms(round + step - now < 100 ? round + step - now : 100);
	}
	return NULL;
}

int
promsrc_start(struct server *s, struct herr *err)
{
	struct promsrc *ps = xcalloc(1, sizeof(*ps));

	ps->s = s;
	g_ps = ps;
	if (pthread_create(&ps->thread, NULL, promsrc_main, ps) != 0)
		return herr_set(err, -errno, "cannot start the PromQL source thread");
	ps->started = true;
	return 0;
}

void
promsrc_stop(struct server *s)
{
	struct promsrc *ps = g_ps;

	(void)s;
	if (ps == NULL)
		return;
	if (ps->started)
		pthread_join(ps->thread, NULL);
	g_ps = NULL;
	free(ps);
	pthread_mutex_lock(&src_lock);
	while (nsrcs > 0)
		free(srcs[--nsrcs]);
	pthread_mutex_unlock(&src_lock);
}
