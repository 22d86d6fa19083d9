/* model/metrics.c - the metrics model (model/metrics.h): a push checked
 * and decoded in one walk of its JSON or of its protobuf body (the same
 * checks for both), then stored in the metric store
 * under the cluster's quotas, the in-memory cache of pushing hosts'
 * identities with their monitor states and dropped batches, the monitor configuration agents poll (kept per cluster/group
 * with the cluster's quotas, and computed again only after a resource
 * changed: a push reads nothing from the store), a host's series summary
 * and the group aggregate the autoscaler reads. No HTTP here: the handlers
 * in api/api-metrics.c call these and answer. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-contract.h"
#include "jsonw.h"
#include "log.h"
#include "model/activity.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/policy.h"
#include "model/res.h"
#include "model/run.h"
#include "promwire.h"
#include "pushwire.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"
#include "xalloc.h"

#define HOSTS_MAX 100000          /* hosts whose identity and monitors we cache */

metrics_push_fn metrics_push_hook;
metrics_store_fn metrics_store_hook;

__attribute__((weak)) void
metrics_on_push(struct server *s, const char *cluster, const char *group, const char **metrics,
		size_t n)
{
	metrics_push_fn fn = __atomic_load_n(&metrics_push_hook, __ATOMIC_ACQUIRE);

	if (fn)
		fn(s, cluster, group, metrics, n);
}

/* --- hosts: identity (hosts never change group) and monitor states --- */

struct mon {
	char name[64];
	char state[8];
	char error[256];
	int64_t ts_ms;
};

struct mhost {
	struct metrics_host ident;   /* first: id, name, cluster, group */
	struct mon mon[PUSH_MAX_MONITORS];
	int nmon;
	uint64_t dropped;   /* batches the agent reported lost, since we started */
	struct mhost *next;
};

#define MH_BUCKETS 1024
static pthread_mutex_t mh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mhost *mh_tab[MH_BUCKETS];
static size_t mh_count;

static unsigned
mh_hash(const char *s)
{
	unsigned h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h % MH_BUCKETS;
}


int
metrics_host_ident(struct server *s, const char *host_id, struct metrics_host *out,
		   struct herr *err)
{
	struct mhost *h;
	struct host row;
	unsigned b = mh_hash(host_id);
	int rc;

	pthread_mutex_lock(&mh_lock);
	for (h = mh_tab[b]; h; h = h->next)
		if (strcmp(h->ident.id, host_id) == 0)
			break;
	if (h)
		*out = h->ident;
	pthread_mutex_unlock(&mh_lock);
	if (h)
		return 0;
	rc = host_get(s->store, host_id, &row, err);
	if (rc == HERR_NOTFOUND)
		return herr_set(err, HERR_AUTH, "unknown host");
	if (rc < 0)
		return err->code ? err->code : rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", host_id);
	snprintf(out->name, sizeof(out->name), "%s", row.name);
	snprintf(out->cluster, sizeof(out->cluster), "%s", row.cluster);
	snprintf(out->group, sizeof(out->group), "%s", row.grp);
	pthread_mutex_lock(&mh_lock);
	if (mh_count >= HOSTS_MAX) {
		/* bounded: start over (states come back with the next pushes) */
		for (size_t i = 0; i < MH_BUCKETS; i++)
			while (mh_tab[i]) {
				struct mhost *n = mh_tab[i]->next;
				free(mh_tab[i]);
				mh_tab[i] = n;
			}
		mh_count = 0;
	}
	for (h = mh_tab[b]; h; h = h->next)
		if (strcmp(h->ident.id, out->id) == 0)
			break;
	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		h->ident = *out;
		h->next = mh_tab[b];
		mh_tab[b] = h;
		mh_count++;
	}
	pthread_mutex_unlock(&mh_lock);
	return 0;
}

/* Adds the agent's newly dropped batches; returns the running total. */
static uint64_t
dropped_add(const char *host_id, uint64_t n)
{
	struct mhost *h;
	uint64_t total = n;

	pthread_mutex_lock(&mh_lock);
	for (h = mh_tab[mh_hash(host_id)]; h; h = h->next)
		if (strcmp(h->ident.id, host_id) == 0) {
			h->dropped += n;
			total = h->dropped;
			break;
		}
	pthread_mutex_unlock(&mh_lock);
	return total;
}

static void
monitor_set(const char *host_id, const char *name, const char *state, const char *error,
	    int64_t ts)
{
	struct mhost *h;
	struct mon *m = NULL;
	size_t n;

	pthread_mutex_lock(&mh_lock);
	for (h = mh_tab[mh_hash(host_id)]; h; h = h->next)
		if (strcmp(h->ident.id, host_id) == 0)
			break;
	if (h == NULL)
		goto out;
	for (int i = 0; i < h->nmon; i++)
		if (strcmp(h->mon[i].name, name) == 0)
			m = &h->mon[i];
	if (m == NULL) {
		if (h->nmon == PUSH_MAX_MONITORS) {
			/* replace the stalest */
			m = &h->mon[0];
			for (int i = 1; i < h->nmon; i++)
				if (h->mon[i].ts_ms < m->ts_ms)
					m = &h->mon[i];
		} else {
			m = &h->mon[h->nmon++];
		}
	} else if (m->ts_ms > ts) {
		goto out;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->state, sizeof(m->state), "%s", state);
	/* cut between characters (run_utf8_cut): a cut through one leaves text
	 * no JSON answer takes (GET /v1/metrics/monitors would drop it) */
	n = run_utf8_cut(error ? error : "", error ? strlen(error) : 0, sizeof(m->error) - 1);
	memcpy(m->error, error ? error : "", n);
	m->error[n] = '\0';
	m->ts_ms = ts;
out:
	pthread_mutex_unlock(&mh_lock);
}

size_t
metrics_monitor_states(const char *cluster, const char *group, const char *host,
		       struct monitor_state **out)
{
	size_t n = 0, cap = 0;
	struct monitor_state *r = NULL;

	pthread_mutex_lock(&mh_lock);
	for (size_t b = 0; b < MH_BUCKETS; b++)
		for (struct mhost *h = mh_tab[b]; h; h = h->next) {
			if ((cluster && *cluster && strcmp(cluster, h->ident.cluster) != 0) ||
			    (group && *group && strcmp(group, h->ident.group) != 0) ||
			    (host && *host && strcmp(host, h->ident.name) != 0))
				continue;
			for (int i = 0; i < h->nmon; i++) {
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					r = xrealloc(r, cap * sizeof(*r));
				}
				memset(&r[n], 0, sizeof(r[n]));
				snprintf(r[n].host, sizeof(r[n].host), "%s", h->ident.name);
				snprintf(r[n].cluster, sizeof(r[n].cluster), "%s", h->ident.cluster);
				snprintf(r[n].group, sizeof(r[n].group), "%s", h->ident.group);
				snprintf(r[n].name, sizeof(r[n].name), "%s", h->mon[i].name);
				snprintf(r[n].state, sizeof(r[n].state), "%s", h->mon[i].state);
				snprintf(r[n].error, sizeof(r[n].error), "%s", h->mon[i].error);
				r[n].ts_ms = h->mon[i].ts_ms;
				n++;
			}
		}
	pthread_mutex_unlock(&mh_lock);
	*out = r;
	return n;
}

/* --- monitor configuration --- */

static int
duration_s(json_t *v, int dflt)
{
	int64_t ms;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (int)json_integer_value(v) : dflt;
	if (json_is_string(v) && parse_duration_ms(json_string_value(v), &ms) == 0 && ms > 0)
		return (int)((ms + 999) / 1000);
	return dflt;
}

static int
thr_cmp(const void *a, const void *b)
{
	const struct policy_threshold *x = a, *y = b;
	int c = strcmp(x->metric, y->metric);

	if (c)
		return c;
	if (x->op != y->op)
		return (int)x->op - (int)y->op;
	return x->value < y->value ? -1 : x->value > y->value;
}

/* The thresholds of a group's policies (rows of res_all: name, spec), each
 * once, sorted (the config's version hashes them), at most
 * PUSH_MAX_THRESHOLDS: [{"metric","op","value"}]. A policy that does not
 * parse has none. Pure. */
json_t *
metrics_thresholds_json(const json_t *rows)
{
	struct policy_threshold t[PUSH_MAX_THRESHOLDS + POLICY_THRESHOLDS_MAX];
	json_t *row, *out = json_array();
	size_t i, n = 0, k = 0;

	json_array_foreach(rows, i, row) {
		struct herr err = HERR_INIT;
		struct policy p;

		if (n > PUSH_MAX_THRESHOLDS)
			break;
		if (policy_parse(json_string_value(json_object_get(row, "name")),
				 json_object_get(row, "spec"), &p, &err) < 0)
			continue;
		n += policy_thresholds(&p, &t[n]);
	}
	qsort(t, n, sizeof(t[0]), thr_cmp);
	for (i = 0; i < n && k < PUSH_MAX_THRESHOLDS; i++) {
		if (i > 0 && thr_cmp(&t[i - 1], &t[i]) == 0)
			continue;
		json_array_append_new(out, json_pack("{s:s,s:s,s:f}", "metric", t[i].metric, "op",
						     expr_op_name(t[i].op), "value", t[i].value));
		k++;
	}
	return out;
}

/* The configuration computed from the store: two reads or more, a JSON
 * dump and a SHA-256, so it is cached (cfg_get below). */
static json_t *
config_build(struct server *s, const char *cluster, const char *group)
{
	struct herr err = HERR_INIT;
	json_t *mons = json_array(), *cfg, *names, *n, *pols = NULL, *thr;
	struct res g, m;
	char hash[65], *text, scope[140];
	size_t i;

	if (res_get(s->store, &kind_group, cluster, group, &g, &err) == 0) {
		names = json_object_get(g.spec, "monitors");
		json_array_foreach(names, i, n) {
			json_t *o, *labels;
			if (!json_is_string(n) ||
			    res_get(s->store, &kind_monitor, "", json_string_value(n), &m, &err) < 0)
				continue;
			o = json_pack("{s:s,s:O,s:i,s:i}", "name", m.name, "command",
				      json_object_get(m.spec, "command"), "interval_s",
				      duration_s(json_object_get(m.spec, "interval"), 5), "timeout_s",
				      duration_s(json_object_get(m.spec, "timeout"), 3));
			labels = json_object_get(m.spec, "labels");
			if (o && json_is_object(labels) && json_object_size(labels))
				json_object_set(o, "labels", labels);
			if (o)
				json_array_append_new(mons, o);
			res_release(&m);
		}
		res_release(&g);
	}
	/* the thresholds change when a policy does: any resource write voids
	 * the cached config (cfg_get), so they are computed here, not per push */
	snprintf(scope, sizeof(scope), "%s/%s", cluster, group);
	if (res_all(s->store, &kind_policy, scope, &pols, &err) < 0)
		pols = NULL;
	thr = metrics_thresholds_json(pols);
	json_decref(pols);
	/* push_formats is part of the version: an agent that began under a
	 * server without the protobuf body sees the version change and reads
	 * the offer */
	cfg = json_pack("{s:I,s:o,s:o,s:[ss]}", "push_interval_s",
			(json_int_t)(s->push_interval_ms / 1000), "monitors", mons, "thresholds", thr,
			"push_formats", "json", "protobuf");
	text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	sha256_hex(text, strlen(text), hash);
	free(text);
	hash[13] = '\0'; /* 52 bits: an exact integer in every JSON reader */
	json_object_set_new(cfg, "version", json_integer((json_int_t)strtoull(hash, NULL, 16)));
	return cfg;
}

/* --- the push --- */

bool
metrics_value_parse(const json_t *v, double *out)
{
	const char *s;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	s = json_string_value(v);
	if (s == NULL)
		return false;
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Inf") == 0)
		*out = -INFINITY;
	else
		return false;
	return true;
}

bool
metrics_label_reserved(const char *name)
{
	return strcmp(name, "host") == 0 || strcmp(name, "group") == 0 ||
	       strcmp(name, "cluster") == 0 || strncmp(name, "__", 2) == 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The series quotas of cluster (its spec's series_per_host and
 * series_per_cluster; 0 = the store's defaults). */
static void
cluster_limits(struct server *s, const char *cluster, struct tsdb_limits *lim)
{
	struct herr err = HERR_INIT;
	struct res c;

	memset(lim, 0, sizeof(*lim));
	if (res_get(s->store, &kind_cluster, "", cluster, &c, &err) < 0)
		return;
	lim->host_max_series = (size_t)json_integer_value(json_object_get(c.spec, "series_per_host"));
	lim->cluster_max_series =
		(size_t)json_integer_value(json_object_get(c.spec, "series_per_cluster"));
	res_release(&c);
}

/* --- what a push needs, per (cluster, group), cached ---
 * The configuration (and its version) and the cluster's quotas, computed
 * from the store only when no slot holds them under the current resources
 * generation (model/res.h): any resource written since, or a write not yet
 * committed when the slot was filled, makes it compute them again.
 * Direct-mapped, bounded; names too long for a slot are never cached. */
#define CFG_SLOTS 1024

struct cfg_slot {
	const struct server *srv;
	char cluster[64], group[64];
	int64_t push_ms;
	struct res_gen gen;
	json_t *cfg;               /* owned; handed out as copies */
	json_int_t version;
	struct tsdb_limits lim;
	bool scaled;               /* a policy scopes the group */
};

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg_slot cfg_tab[CFG_SLOTS];
static uint64_t cfg_builds;   /* times computed from the store */

static struct cfg_slot *
cfg_slot(const struct server *s, const char *cluster, const char *group)
{
	unsigned h = mh_hash(cluster) * 31u + mh_hash(group) + (unsigned)((uintptr_t)s >> 4);

	return &cfg_tab[h % CFG_SLOTS];
}

static bool
cfg_hit(const struct cfg_slot *sl, const struct server *s, const char *cluster,
	const char *group)
{
	return sl->cfg && sl->srv == s && sl->push_ms == s->push_interval_ms &&
	       strcmp(sl->cluster, cluster) == 0 && strcmp(sl->group, group) == 0 &&
	       res_gen_current(&sl->gen);
}

/* Whether some autoscaling policy scopes cluster/group (true when the
 * store cannot say: the autoscaler is then told, as it always was). */
static bool
group_scaled(struct server *s, const char *cluster, const char *group)
{
	struct herr err = HERR_INIT;
	char scope[140];
	json_t *pols = NULL;
	bool scaled;

	if ((size_t)snprintf(scope, sizeof(scope), "%s/%s", cluster, group) >= sizeof(scope) ||
	    res_all(s->store, &kind_policy, scope, &pols, &err) < 0)
		return true;
	scaled = json_array_size(pols) > 0;
	json_decref(pols);
	return scaled;
}

/* The version and quotas of cluster/group, whether a policy scales it
 * (scaled may be NULL) and, when cfg is not NULL, an owned copy of the
 * configuration, from the cache or the store. */
static void
cfg_get(struct server *s, const char *cluster, const char *group, json_int_t *version,
	struct tsdb_limits *lim, bool *scaled, json_t **cfg)
{
	bool sc;

	struct cfg_slot *sl = cfg_slot(s, cluster, group);
	bool fits = strlen(cluster) < sizeof(sl->cluster) && strlen(group) < sizeof(sl->group);
	struct res_gen gen;
	json_t *built;

	pthread_mutex_lock(&cfg_lock);
	if (fits && cfg_hit(sl, s, cluster, group)) {
		*version = sl->version;
		*lim = sl->lim;
		if (scaled)
			*scaled = sl->scaled;
		if (cfg)
			*cfg = json_deep_copy(sl->cfg);
		pthread_mutex_unlock(&cfg_lock);
		return;
	}
	pthread_mutex_unlock(&cfg_lock);
	res_gen_take(&gen);   /* before reading: a change after it voids the slot */
	built = config_build(s, cluster, group);
	cluster_limits(s, cluster, lim);
	sc = group_scaled(s, cluster, group);
	if (scaled)
		*scaled = sc;
	*version = json_integer_value(json_object_get(built, "version"));
	if (cfg)
		*cfg = json_deep_copy(built);
	pthread_mutex_lock(&cfg_lock);
	if (cfg_builds < UINT64_MAX)
		cfg_builds++;
	if (fits) {
		json_decref(sl->cfg);
		sl->srv = s;
		snprintf(sl->cluster, sizeof(sl->cluster), "%s", cluster);
		snprintf(sl->group, sizeof(sl->group), "%s", group);
		sl->push_ms = s->push_interval_ms;
		sl->gen = gen;
		sl->cfg = built;
		sl->version = *version;
		sl->lim = *lim;
		sl->scaled = sc;
		built = NULL;
	}
	pthread_mutex_unlock(&cfg_lock);
	json_decref(built);
}

json_t *
metrics_agent_config(struct server *s, const char *cluster, const char *group)
{
	struct tsdb_limits lim;
	json_int_t version;
	json_t *cfg;

	cfg_get(s, cluster, group, &version, &lim, NULL, &cfg);
	return cfg;
}

json_int_t
metrics_agent_config_version(struct server *s, const char *cluster, const char *group)
{
	struct tsdb_limits lim;
	json_int_t version;

	cfg_get(s, cluster, group, &version, &lim, NULL, NULL);
	return version;
}

uint64_t
metrics_agent_config_builds(void)
{
	uint64_t n;

	pthread_mutex_lock(&cfg_lock);
	n = cfg_builds;
	pthread_mutex_unlock(&cfg_lock);
	return n;
}

json_t *
metrics_host_json(struct server *s, const char *cluster, const char *host)
{
	struct tsdb_owner_stats st;
	struct tsdb_limits lim;
	char t[40];

	if (s->tsdb == NULL)
		return NULL;
	tsdb_owner_stats(s->tsdb, cluster, host, &st);
	/* a spec that cannot be read gives the defaults: a quota, never none */
	cluster_limits(s, cluster, &lim);
	return json_pack("{s:I,s:I,s:I,s:s,s:o,s:I,s:I}", "series", (json_int_t)st.series,
			 "max_series", (json_int_t)(lim.host_max_series ? lim.host_max_series
									: st.max_series),
			 "refused", (json_int_t)st.refused, "refused_reason",
			 tsdb_refusal_name(st.reason), "last_refused",
			 st.refused_ms ? json_string(fmt_time(st.refused_ms, t, sizeof(t))) : json_null(),
			 "cluster_series", (json_int_t)st.cluster_series, "cluster_max_series",
			 (json_int_t)(lim.cluster_max_series ? lim.cluster_max_series
							     : TSDB_CLUSTER_MAX_SERIES));
}

/* Records that a host's new series were refused: tsdb_note_decide lets
 * this through on the first refusal and then once an hour per host. */
static void
quota_note(struct server *s, const struct metrics_host *h, size_t refused,
	   const struct tsdb_append_info *info)
{
	struct herr err = HERR_INIT;
	const char *why = tsdb_refusal_name(info->reason);
	json_t *in = json_pack("{s:I,s:s,s:I,s:I,s:I}", "refused", (json_int_t)refused, "reason", why,
			       "host_series", (json_int_t)info->host_series, "host_max_series",
			       (json_int_t)info->host_max, "refused_total",
			       (json_int_t)info->host_refused);

	log_warn("metrics: host %s/%s: %zu new series refused (%s)", h->cluster, h->name, refused, why);
	if (activity_add(s->store, h->cluster, h->group, h->name, "metrics_refused", why, in, &err,
			 "%zu new metric series of %s refused (%s: %s); reported again in an"
			 " hour at the latest if it goes on",
			 refused, h->name, why,
			 info->reason == TSDB_REFUSED_HOST ? "the host has reached its series quota"
			 : info->reason == TSDB_REFUSED_CLUSTER
				 ? "the cluster has reached its series quota"
				 : "the metric store is full") < 0)
		log_err("metrics: cannot record the refusal: %s", err.msg);
	json_decref(in);
}

/* --- the push: decoded in one walk, then stored ---
 * One set of checks for both bodies: the JSON walk (metrics_push_decode)
 * checks what only JSON can get wrong (an object, an array, a string),
 * the protobuf walk (metrics_push_decode_wire) nothing of the kind; both
 * then call the push_*_check and push_*_add functions below on plain C
 * values, which check what the values mean and add them, with the same
 * messages and field names. */

/* Room for need elements in *arr (used of them in use; its capacity *cap,
 * at first the struct's own array stack): doubled, moved to the heap
 * past the stack. */
static void
push_room(void **arr, void *stack, size_t used, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap;
	void *np;

	if (need <= *cap)
		return;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 / size ? need : ncap * 2;
	if (*arr == stack) {
		np = xmalloc(ncap * size);
		memcpy(np, *arr, used * size);
	} else {
		np = xrealloc(*arr, ncap * size);
	}
	*arr = np;
	*cap = ncap;
}

#define PUSH_ROOM(p, what, need)                                                         \
	push_room((void **)&(p)->what, (p)->what##_stack, (p)->n##what, &(p)->cap##what,  \
		  (need), sizeof(*(p)->what))

/* A new sample with 3 label slots for host, group and cluster (filled by
 * metrics_push_ingest) and room for extra labels more. */
static struct tsdb_sample *
push_sample(struct metrics_push *p, const char *metric, double value, size_t extra)
{
	struct tsdb_sample *smp;

	PUSH_ROOM(p, samples, p->nsamples + 1);
	PUSH_ROOM(p, labels, p->nlabels + 3 + extra);
	smp = &p->samples[p->nsamples++];
	*smp = (struct tsdb_sample){ .metric = metric, .value = value, .nlabels = 3 };
	p->nlabels += 3;
	return smp;
}

/* An empty push, its arrays the struct's own. */
static void
push_init(struct metrics_push *p)
{
	memset(p, 0, offsetof(struct metrics_push, batches_stack));
	p->batches = p->batches_stack;
	p->samples = p->samples_stack;
	p->labels = p->labels_stack;
	p->monitors = p->monitors_stack;
	p->capbatches = PUSH_STACK_BATCHES;
	p->capsamples = PUSH_STACK_SAMPLES;
	p->caplabels = PUSH_STACK_LABELS;
	p->capmonitors = PUSH_STACK_MONITORS;
}

/* The push's batch count, before any batch. */
static int
push_batches_check(struct metrics_push *p, size_t n, struct herr *err)
{
	if (n > PUSH_MAX_BATCHES_PER_REQUEST)
		return herr_field(err, HERR_INVALID, "batches", "at most %d batches per push",
				  PUSH_MAX_BATCHES_PER_REQUEST);
	PUSH_ROOM(p, batches, n);
	return 0;
}

/* Batch i: its time (has_ts: one was given, an integer), its counts of
 * series and monitors; then begun, its samples to come, and returned.
 * NULL and *err on a mistake. */
static struct metrics_push_batch *
push_batch_begin(struct metrics_push *p, size_t i, bool has_ts, int64_t ts, size_t nseries,
		 size_t nmons, int64_t now, struct herr *err)
{
	struct metrics_push_batch *pb;
	char f[128];

	if (!has_ts || ts <= 0) {
		snprintf(f, sizeof(f), "batches[%zu].ts_ms", i);
		herr_field(err, HERR_INVALID, f, "must be a positive integer (ms since the epoch)");
		return NULL;
	}
	if (ts > now + PUSH_FUTURE_MS) {
		snprintf(f, sizeof(f), "batches[%zu].ts_ms", i);
		herr_field(err, HERR_INVALID, f, "is %lld s in the future: check the host's clock",
			   (long long)(ts - now) / 1000);
		return NULL;
	}
	if (nseries > PUSH_MAX_SERIES) {
		snprintf(f, sizeof(f), "batches[%zu].series", i);
		herr_field(err, HERR_INVALID, f, "at most %d series per batch", PUSH_MAX_SERIES);
		return NULL;
	}
	if (nmons > PUSH_MAX_MONITORS) {
		snprintf(f, sizeof(f), "batches[%zu].monitors", i);
		herr_field(err, HERR_INVALID, f, "at most %d monitors per batch", PUSH_MAX_MONITORS);
		return NULL;
	}
	pb = &p->batches[p->nbatches++];
	*pb = (struct metrics_push_batch){ .ts_ms = ts, .smp0 = p->nsamples, .mon0 = p->nmonitors };
	PUSH_ROOM(p, samples, p->nsamples + nseries + nmons + 1);
	return pb;
}

/* Batch pb's series are all in (its monitors come next). */
static void
push_batch_series_done(struct metrics_push *p, struct metrics_push_batch *pb)
{
	pb->nseries = p->nsamples - pb->smp0;
}

static void
push_batch_end(struct metrics_push *p, struct metrics_push_batch *pb)
{
	pb->nmon = p->nmonitors - pb->mon0;
	pb->nsmp = p->nsamples - pb->smp0;
}

/* The name of series j of batch i (NULL: not a string). */
static int
push_series_check(const char *name, size_t i, size_t j, struct herr *err)
{
	char f[128];

	if (name && tsdb_metric_name_ok(name))
		return 0;
	snprintf(f, sizeof(f), "batches[%zu].series[%zu].name", i, j);
	return herr_field(err, HERR_INVALID, f,
			  "must be a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*, at most %d characters",
			  TSDB_NAME_MAX);
}

static int
push_value_bad(size_t i, size_t j, struct herr *err)
{
	char f[128];

	snprintf(f, sizeof(f), "batches[%zu].series[%zu].value", i, j);
	return herr_field(err, HERR_INVALID, f, "must be a number, \"NaN\", \"+Inf\" or \"-Inf\"");
}

/* Series j of batch i, its name checked, of value v and nlabels labels to
 * come (push_label_add): added as a sample, returned; NULL and *err when
 * it has too many labels. */
static struct tsdb_sample *
push_series_add(struct metrics_push *p, const char *name, double v, size_t nlabels, size_t i,
		size_t j, struct herr *err)
{
	char f[128];

	if (nlabels > PUSH_MAX_LABELS) {
		snprintf(f, sizeof(f), "batches[%zu].series[%zu].labels", i, j);
		herr_field(err, HERR_INVALID, f, "at most %d labels", PUSH_MAX_LABELS);
		return NULL;
	}
	return push_sample(p, name, v, nlabels);
}

/* The field of label k of series j of batch i in an error: by its name in
 * the JSON body's object (k == PUSH_LABEL_BY_NAME: "...labels.NAME"), by
 * its index in the protobuf body ("...labels[k].name" or ".value"). */
#define PUSH_LABEL_BY_NAME SIZE_MAX

static void
push_label_field(char *f, size_t fsz, size_t i, size_t j, size_t k, const char *name,
		 const char *part)
{
	if (k == PUSH_LABEL_BY_NAME)
		snprintf(f, fsz, "batches[%zu].series[%zu].labels.%.64s", i, j, name);
	else
		snprintf(f, fsz, "batches[%zu].series[%zu].labels[%zu].%s", i, j, k, part);
}

/* Label name=value (value NULL: not a string) of sample smp, the k-th of
 * its series: checked, then added. */
static int
push_label_add(struct metrics_push *p, struct tsdb_sample *smp, const char *name,
	       const char *value, size_t i, size_t j, size_t k, struct herr *err)
{
	char f[160];

	if (!tsdb_label_name_ok(name)) {
		push_label_field(f, sizeof(f), i, j, k, name, "name");
		return herr_field(err, HERR_INVALID, f,
				  "label names are [a-zA-Z_][a-zA-Z0-9_]*, at most %d characters",
				  TSDB_NAME_MAX);
	}
	if (metrics_label_reserved(name)) {
		push_label_field(f, sizeof(f), i, j, k, name, "name");
		return herr_field(err, HERR_INVALID, f,
				  "is set by the server (host, group, cluster and __*)");
	}
	/* UTF-8: JSON bodies are (jansson), protobuf ones need not be, and a
	 * stored value that is not would fail every JSON answer showing it */
	if (value == NULL || strlen(value) > PUSH_LABEL_MAX ||
	    !jsonw_utf8_valid(value, strlen(value))) {
		push_label_field(f, sizeof(f), i, j, k, name, "value");
		return herr_field(err, HERR_INVALID, f, "must be UTF-8 text of at most %d bytes",
				  PUSH_LABEL_MAX);
	}
	p->labels[p->nlabels++] = (struct tsdb_label){ name, value };
	smp->nlabels++;
	return 0;
}

/* The name and state of monitor j of batch i (NULL: not a string). */
static int
push_monitor_check(const char *name, const char *st, size_t i, size_t j, struct herr *err)
{
	char f[128];

	if (name == NULL || name[0] == '\0' || strlen(name) > 63 ||
	    !jsonw_utf8_valid(name, strlen(name))) {
		snprintf(f, sizeof(f), "batches[%zu].monitors[%zu].name", i, j);
		return herr_field(err, HERR_INVALID, f,
				  "must be a monitor name (UTF-8, 1-63 bytes)");
	}
	if (st == NULL ||
	    (strcmp(st, "ok") != 0 && strcmp(st, "failed") != 0 && strcmp(st, "timeout") != 0)) {
		snprintf(f, sizeof(f), "batches[%zu].monitors[%zu].state", i, j);
		return herr_field(err, HERR_INVALID, f, "must be ok, failed or timeout");
	}
	return 0;
}

static int
push_error_bad(size_t i, size_t j, struct herr *err)
{
	char f[128];

	snprintf(f, sizeof(f), "batches[%zu].monitors[%zu].error", i, j);
	return herr_field(err, HERR_INVALID, f, "must be UTF-8 text of at most %d bytes",
			  PUSH_ERROR_MAX);
}

/* Monitor j of batch i, its name and state checked, its error (NULL:
 * none): kept, and its monitor_up added. */
static int
push_monitor_add(struct metrics_push *p, const char *name, const char *st, const char *error,
		 size_t i, size_t j, struct herr *err)
{
	struct tsdb_sample *smp;

	if (error && (strlen(error) > PUSH_ERROR_MAX || !jsonw_utf8_valid(error, strlen(error))))
		return push_error_bad(i, j, err);
	PUSH_ROOM(p, monitors, p->nmonitors + 1);
	p->monitors[p->nmonitors++] = (struct metrics_push_monitor){ name, st, error };
	smp = push_sample(p, "monitor_up", strcmp(st, "ok") == 0 ? 1 : 0, 1);
	p->labels[p->nlabels++] = (struct tsdb_label){ "monitor", name };
	smp->nlabels++;
	return 0;
}

static int
push_dropped_bad(struct herr *err)
{
	return herr_field(err, HERR_INVALID, "dropped", "must be a non-negative integer");
}

/* The end of a push: the agent's dropped count (has: given), then each
 * sample pointed at its labels. */
static void
push_finish(struct metrics_push *p, bool has_dropped, uint64_t dropped)
{
	struct tsdb_label *l;

	if (has_dropped && p->nbatches) {
		/* on the last batch; its value is the host's total, in ingest */
		p->has_dropped = true;
		p->dropped = dropped;
		push_sample(p, "agent_dropped_batches_total", 0, 0);
		p->batches[p->nbatches - 1].nsmp++;
	}
	/* the labels are in the samples' order: point each sample at its own
	 * now that the array has stopped moving */
	l = p->labels;
	for (size_t i = 0; i < p->nsamples; i++) {
		p->samples[i].labels = l;
		l += p->samples[i].nlabels;
	}
}

/* --- the JSON body --- */

/* One series of batch i, at j. */
static int
push_series(struct metrics_push *p, json_t *x, size_t i, size_t j, struct herr *err)
{
	json_t *labels = json_object_get(x, "labels"), *lv;
	const char *name = json_string_value(json_object_get(x, "name")), *lk;
	struct tsdb_sample *smp;
	char f[128];
	double v;
	int rc;

	if ((rc = push_series_check(json_is_object(x) ? name : NULL, i, j, err)) < 0)
		return rc;
	if (!metrics_value_parse(json_object_get(x, "value"), &v))
		return push_value_bad(i, j, err);
	if (labels && !json_is_object(labels)) {
		snprintf(f, sizeof(f), "batches[%zu].series[%zu].labels", i, j);
		return herr_field(err, HERR_INVALID, f, "must be an object of strings");
	}
	if ((smp = push_series_add(p, name, v, json_object_size(labels), i, j, err)) == NULL)
		return err->code;
	json_object_foreach(labels, lk, lv)
		if ((rc = push_label_add(p, smp, lk, json_string_value(lv), i, j, PUSH_LABEL_BY_NAME,
					 err)) < 0)
			return rc;
	return 0;
}

/* One monitor of batch i, at j. */
static int
push_monitor(struct metrics_push *p, json_t *x, size_t i, size_t j, struct herr *err)
{
	const char *name = json_string_value(json_object_get(x, "name"));
	const char *st = json_string_value(json_object_get(x, "state"));
	json_t *e = json_object_get(x, "error");
	int rc;

	if ((rc = push_monitor_check(name, st, i, j, err)) < 0)
		return rc;
	if (e && !json_is_null(e) && !json_is_string(e))
		return push_error_bad(i, j, err);
	return push_monitor_add(p, name, st, json_string_value(e), i, j, err);
}

/* Batch i: its time, series and monitors. */
static int
push_batch(struct metrics_push *p, json_t *b, size_t i, int64_t now, struct herr *err)
{
	json_t *ts = json_object_get(b, "ts_ms"), *series = json_object_get(b, "series");
	json_t *mons = json_object_get(b, "monitors"), *x;
	struct metrics_push_batch *pb;
	char f[128];
	size_t j;
	int rc;

	if (!json_is_object(b))
		return herr_field(err, HERR_INVALID, "batches", "batch %zu must be an object", i);
	if (series && !json_is_array(series)) {
		snprintf(f, sizeof(f), "batches[%zu].series", i);
		return herr_field(err, HERR_INVALID, f, "must be an array");
	}
	if (mons && !json_is_array(mons)) {
		snprintf(f, sizeof(f), "batches[%zu].monitors", i);
		return herr_field(err, HERR_INVALID, f, "must be an array");
	}
	if ((pb = push_batch_begin(p, i, json_is_integer(ts), json_integer_value(ts),
				   json_array_size(series), json_array_size(mons), now, err)) == NULL)
		return err->code;
	json_array_foreach(series, j, x)
		if ((rc = push_series(p, x, i, j, err)) < 0)
			return rc;
	push_batch_series_done(p, pb);
	json_array_foreach(mons, j, x)
		if ((rc = push_monitor(p, x, i, j, err)) < 0)
			return rc;
	push_batch_end(p, pb);
	return 0;
}

int
metrics_push_decode(json_t *batches, json_t *dropped, int64_t now, struct metrics_push *p,
		    struct herr *err)
{
	json_t *b;
	size_t i;
	int rc;

	push_init(p);
	if (!json_is_array(batches))
		return herr_field(err, HERR_INVALID, "batches", "must be an array");
	if ((rc = push_batches_check(p, json_array_size(batches), err)) < 0)
		return rc;
	json_array_foreach(batches, i, b)
		if ((rc = push_batch(p, b, i, now, err)) < 0)
			return rc;
	if (dropped && (!json_is_integer(dropped) || json_integer_value(dropped) < 0))
		return push_dropped_bad(err);
	push_finish(p, dropped != NULL, (uint64_t)json_integer_value(dropped));
	return 0;
}

/* --- the protobuf body --- */

int
metrics_push_decode_wire(const struct pushwire_push *w, int64_t now, struct metrics_push *p,
			 struct herr *err)
{
	int rc;

	push_init(p);
	if ((rc = push_batches_check(p, w->nbatches, err)) < 0)
		return rc;
	for (size_t i = 0; i < w->nbatches; i++) {
		const struct pushwire_batch *b = &w->batches[i];
		struct metrics_push_batch *pb;

		if ((pb = push_batch_begin(p, i, b->has_ts, b->ts_ms, b->nseries, b->nmonitors, now,
					   err)) == NULL)
			return err->code;
		for (size_t j = 0; j < b->nseries; j++) {
			const struct pushwire_series *s = &b->series[j];
			struct tsdb_sample *smp;

			if ((rc = push_series_check(s->name, i, j, err)) < 0)
				return rc;
			if ((smp = push_series_add(p, s->name, s->value, s->nlabels, i, j, err)) == NULL)
				return err->code;
			for (size_t k = 0; k < s->nlabels; k++)
				if ((rc = push_label_add(p, smp, s->labels[k].name, s->labels[k].value, i,
							 j, k, err)) < 0)
					return rc;
		}
		push_batch_series_done(p, pb);
		for (size_t j = 0; j < b->nmonitors; j++) {
			const struct pushwire_monitor *m = &b->monitors[j];

			if ((rc = push_monitor_check(m->name, m->state, i, j, err)) < 0 ||
			    (rc = push_monitor_add(p, m->name, m->state, m->error, i, j, err)) < 0)
				return rc;
		}
		push_batch_end(p, pb);
	}
	/* JSON's integers stop at 2^63 - 1: the same bound here */
	if (w->has_dropped && w->dropped > INT64_MAX)
		return push_dropped_bad(err);
	push_finish(p, w->has_dropped, w->dropped);
	return 0;
}

void
metrics_push_release(struct metrics_push *p)
{
	if (p->batches != p->batches_stack)
		free(p->batches);
	if (p->samples != p->samples_stack)
		free(p->samples);
	if (p->labels != p->labels_stack)
		free(p->labels);
	if (p->monitors != p->monitors_stack)
		free(p->monitors);
	p->batches = NULL;
	p->samples = NULL;
	p->labels = NULL;
	p->monitors = NULL;
}

/* Adds name to the metric names the autoscaler is told of. */
static void
names_add(const char ***names, size_t *n, size_t *cap, const char *name)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*names = xrealloc(*names, *cap * sizeof(**names));
	}
	(*names)[(*n)++] = name;
}

int
metrics_push_ingest(struct server *s, const struct metrics_host *h, struct metrics_push *p,
		    struct metrics_push_result *out, struct herr *err)
{
	struct tsdb *db = s->tsdb;
	const char **names = NULL;
	size_t nnames = 0, capnames = 0, i, last = 0;
	struct tsdb_label *l = p->labels;
	struct tsdb_limits lim;
	struct tsdb_append_info info;
	json_int_t version;
	bool scaled;

	memset(out, 0, sizeof(*out));
	if (db == NULL)
		return herr_set(err, HERR_UNAVAIL, "the metric store is not open");
	cfg_get(s, h->cluster, h->group, &version, &lim, &scaled, NULL);
	out->config_version = version;
	/* the server's labels, in every sample's first 3 slots */
	for (i = 0; i < p->nsamples; i++) {
		l[0] = (struct tsdb_label){ "host", h->name };
		l[1] = (struct tsdb_label){ "group", h->group };
		l[2] = (struct tsdb_label){ "cluster", h->cluster };
		l += p->samples[i].nlabels;
	}
	if (p->has_dropped)
		p->samples[p->nsamples - 1].value = (double)dropped_add(h->id, p->dropped);
	for (i = 0; i < p->nbatches; i++) {
		const struct metrics_push_batch *b = &p->batches[i];
		int rc;

		if (b->ts_ms >= p->batches[last].ts_ms)
			last = i;
		rc = tsdb_append_q(db, b->ts_ms, &p->samples[b->smp0], b->nsmp, &lim, &info, err);
		if (rc < 0) {
			free(names);
			/* batches before this one are stored: the agent may resend
			 * them, and same-timestamp samples just replace */
			return err->code ? err->code : rc;
		}
		out->accepted += (size_t)rc;
		out->rejected += b->nsmp - (size_t)rc;
		if ((size_t)rc == b->nsmp) {
			metrics_store_fn fn = __atomic_load_n(&metrics_store_hook, __ATOMIC_ACQUIRE);

			if (fn)
				fn(s, b->ts_ms, &p->samples[b->smp0], b->nsmp);
		}
		out->refused += info.refused;
		if (info.refused) {
			out->refusal.reason = info.reason;
			out->refusal.host_refused = info.host_refused;
			out->refusal.host_series = info.host_series;
			out->refusal.host_max = info.host_max;
		}
		out->refusal.note |= info.note;
		if (!scaled)
			continue;
		for (size_t k = 0; k < b->nseries; k++)
			names_add(&names, &nnames, &capnames, p->samples[b->smp0 + k].metric);
		if (b->nmon)
			names_add(&names, &nnames, &capnames, "monitor_up");
	}
	/* monitor states: the newest batch wins */
	if (p->nbatches) {
		const struct metrics_push_batch *b = &p->batches[last];

		for (i = 0; i < b->nmon; i++) {
			const struct metrics_push_monitor *m = &p->monitors[b->mon0 + i];
			monitor_set(h->id, m->name, m->state, m->error, b->ts_ms);
		}
	}
	if (out->refusal.note)
		quota_note(s, h, out->refused, &out->refusal);
	/* the autoscaler reads the store for each call: only groups that a
	 * policy scales (its own 1 s pass finds every other change) */
	if (nnames) {
		size_t k = 0;
		qsort(names, nnames, sizeof(*names), cmp_str);
		for (i = 0; i < nnames; i++)
			if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
				names[k++] = names[i];
		nnames = k;
	}
	if (scaled)
		metrics_on_push(s, h->cluster, h->group, names, nnames);
	free(names);
	return 0;
}

/* --- remote write --- */

static uint64_t rw_totals[RW_NOUTCOMES];

const char *
metrics_rw_outcome_name(enum metrics_rw_outcome o)
{
	static const char *const names[RW_NOUTCOMES] = { "stored", "unknown_host", "quota",
							 "invalid", "rejected" };

	return o < RW_NOUTCOMES ? names[o] : "";
}

void
metrics_remote_write_totals(struct metrics_rw_result *out)
{
	for (size_t i = 0; i < RW_NOUTCOMES; i++)
		out->samples[i] = __atomic_load_n(&rw_totals[i], __ATOMIC_RELAXED);
}

#define RW_HOSTS_MAX 4096   /* distinct host names one request may name */

/* A host a request names: its identity and quotas, or unknown. */
struct rw_host {
	char key[160];             /* the label's text */
	bool known;
	struct metrics_host h;
	struct tsdb_limits lim;
	bool scaled;
};

/* One sample kept for the store: its host, time and labels (3 slots first
 * for host, group, cluster; the labels are rw->labels[l0 .. l0 + nl)). */
struct rw_entry {
	size_t host;
	int64_t ts_ms;
	double value;
	const char *metric;
	size_t l0, nl;
};

struct rw {
	struct server *s;
	const char *host_label;
	int64_t now_ms;
	struct rw_host *hosts;
	size_t nhosts, caphosts;
	struct rw_entry *ent;
	size_t nent, capent;
	struct tsdb_label *labels;
	size_t nlabels, caplabels;
	char **strs;               /* copies of the body's strings (owned) */
	size_t nstrs, capstrs;
	struct metrics_rw_result *res;
};

/* Room for need elements of size in *arr (capacity *cap): doubled. */
static void
rw_room(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;

	if (need <= *cap)
		return;
	while (ncap < need)
		ncap *= 2;
	*arr = xrealloc(*arr, ncap * size);
	*cap = ncap;
}

static const char *
rw_strdup(struct rw *rw, const char *s)
{
	rw_room((void **)&rw->strs, &rw->capstrs, rw->nstrs + 1, sizeof(*rw->strs));
	return rw->strs[rw->nstrs++] = xstrdup(s);
}

/* The host a label's text names ("NAME" or "CLUSTER/NAME"), looked up once
 * per request: its index in rw->hosts, or SIZE_MAX past RW_HOSTS_MAX
 * distinct names (taken as unknown). */
static size_t
rw_host(struct rw *rw, const char *key)
{
	struct herr err = HERR_INIT;
	struct rw_host *rh;
	struct host row;
	const char *slash = strchr(key, '/');
	char cluster[64];
	json_int_t version;
	int rc;

	for (size_t i = 0; i < rw->nhosts; i++)
		if (strcmp(rw->hosts[i].key, key) == 0)
			return i;
	if (rw->nhosts == RW_HOSTS_MAX)
		return SIZE_MAX;
	rw_room((void **)&rw->hosts, &rw->caphosts, rw->nhosts + 1, sizeof(*rw->hosts));
	rh = &rw->hosts[rw->nhosts];
	memset(rh, 0, sizeof(*rh));
	snprintf(rh->key, sizeof(rh->key), "%s", key);
	if (strlen(key) >= sizeof(rh->key) || key[0] == '\0')
		rc = HERR_NOTFOUND;
	else if (slash && (size_t)(slash - key) < sizeof(cluster)) {
		snprintf(cluster, sizeof(cluster), "%.*s", (int)(slash - key), key);
		rc = host_find_live_by_name(rw->s->store, cluster, slash + 1, &row, &err);
	} else if (slash) {
		rc = HERR_NOTFOUND;
	} else {
		rc = host_find_live_by_name(rw->s->store, NULL, key, &row, &err);
	}
	if (rc == 0) {
		rh->known = true;
		snprintf(rh->h.id, sizeof(rh->h.id), "%s", row.id);
		snprintf(rh->h.name, sizeof(rh->h.name), "%s", row.name);
		snprintf(rh->h.cluster, sizeof(rh->h.cluster), "%s", row.cluster);
		snprintf(rh->h.group, sizeof(rh->h.group), "%s", row.grp);
		cfg_get(rw->s, rh->h.cluster, rh->h.group, &version, &rh->lim, &rh->scaled, NULL);
	}
	return rw->nhosts++;
}

/* The host label's text of a series: host_label, else `instance` without
 * its :port; NULL when neither. Written into buf. */
static const char *
rw_host_key(const struct rw *rw, const struct pw_series *ps, char *buf, size_t n)
{
	const char *inst = NULL, *colon;

	for (size_t i = 0; i < ps->nlabels; i++) {
		if (strcmp(ps->labels[i].name, rw->host_label) == 0)
			return ps->labels[i].value;
		if (strcmp(ps->labels[i].name, "instance") == 0)
			inst = ps->labels[i].value;
	}
	if (inst == NULL)
		return NULL;
	/* host:port, [v6]:port; a bare v6 address has more than one ':' */
	colon = strrchr(inst, ':');
	if (inst[0] == '[' && colon && colon > inst && colon[-1] == ']')
		snprintf(buf, n, "%.*s", (int)(colon - inst - 2), inst + 1);
	else if (colon && strchr(inst, ':') == colon)
		snprintf(buf, n, "%.*s", (int)(colon - inst), inst);
	else
		snprintf(buf, n, "%s", inst);
	return buf;
}

static void
rw_count(struct rw *rw, enum metrics_rw_outcome o, size_t n)
{
	rw->res->samples[o] += n;
}

/* pw_series_fn: one decoded series, kept for the store or counted. */
static int
rw_series(const struct pw_series *ps, void *arg)
{
	struct rw *rw = arg;
	const char *metric = NULL, *key;
	char kbuf[160];
	size_t hi, l0, nl = 3;

	key = rw_host_key(rw, ps, kbuf, sizeof(kbuf));
	if (key == NULL) {
		rw_count(rw, RW_UNKNOWN_HOST, ps->nsamples);
		return 0;
	}
	hi = rw_host(rw, key);
	if (hi == SIZE_MAX || !rw->hosts[hi].known) {
		rw_count(rw, RW_UNKNOWN_HOST, ps->nsamples);
		return 0;
	}
	rw_room((void **)&rw->labels, &rw->caplabels, rw->nlabels + 3 + ps->nlabels,
		sizeof(*rw->labels));
	l0 = rw->nlabels;
	for (size_t i = 0; i < ps->nlabels; i++) {
		const struct pw_label *l = &ps->labels[i];

		if (strcmp(l->name, "__name__") == 0) {
			metric = l->value;
			continue;
		}
		/* herd sets host, group and cluster: the sender's are dropped, so
		 * no label moves a series into another host or cluster */
		if (strcmp(l->name, rw->host_label) == 0 || metrics_label_reserved(l->name))
			continue;
		if (!tsdb_label_name_ok(l->name) || strlen(l->value) > TSDB_VALUE_MAX ||
		    !jsonw_utf8_valid(l->value, strlen(l->value)) || nl == TSDB_MAX_LABELS) {
			rw_count(rw, RW_INVALID, ps->nsamples);
			return 0;
		}
		rw->labels[l0 + nl++] = (struct tsdb_label){ rw_strdup(rw, l->name),
							    rw_strdup(rw, l->value) };
	}
	if (metric == NULL || !tsdb_metric_name_ok(metric)) {
		rw_count(rw, RW_INVALID, ps->nsamples);
		return 0;
	}
	metric = rw_strdup(rw, metric);
	rw->nlabels += nl;
	rw_room((void **)&rw->ent, &rw->capent, rw->nent + ps->nsamples, sizeof(*rw->ent));
	for (size_t j = 0; j < ps->nsamples; j++) {
		const struct pw_sample *smp = &ps->samples[j];

		if (smp->ts_ms <= 0 || smp->ts_ms > rw->now_ms + PUSH_FUTURE_MS) {
			rw_count(rw, RW_INVALID, 1);
			continue;
		}
		rw->ent[rw->nent++] = (struct rw_entry){ hi, smp->ts_ms, smp->value, metric, l0, nl };
	}
	return 0;
}

static int
rw_entry_cmp(const void *a, const void *b)
{
	const struct rw_entry *x = a, *y = b;

	if (x->host != y->host)
		return x->host < y->host ? -1 : 1;
	if (x->ts_ms != y->ts_ms)
		return x->ts_ms < y->ts_ms ? -1 : 1;
	return x->l0 < y->l0 ? -1 : x->l0 > y->l0;
}

/* Appends the kept samples, one batch per host and timestamp. */
static int
rw_store(struct rw *rw, struct herr *err)
{
	struct tsdb_sample *smp = NULL;
	size_t i = 0, cap = 0;
	int rc = 0;

	qsort(rw->ent, rw->nent, sizeof(*rw->ent), rw_entry_cmp);
	while (i < rw->nent) {
		struct rw_host *rh = &rw->hosts[rw->ent[i].host];
		struct tsdb_append_info info;
		size_t k = 0, quota;

		for (; i + k < rw->nent && rw->ent[i + k].host == rw->ent[i].host &&
		       rw->ent[i + k].ts_ms == rw->ent[i].ts_ms;
		     k++) {
			const struct rw_entry *e = &rw->ent[i + k];
			struct tsdb_label *l = &rw->labels[e->l0];

			if (k == cap) {
				cap = cap ? cap * 2 : 64;
				smp = xrealloc(smp, cap * sizeof(*smp));
			}
			l[0] = (struct tsdb_label){ "host", rh->h.name };
			l[1] = (struct tsdb_label){ "group", rh->h.group };
			l[2] = (struct tsdb_label){ "cluster", rh->h.cluster };
			smp[k] = (struct tsdb_sample){ .metric = e->metric, .value = e->value,
						       .labels = l, .nlabels = e->nl };
		}
		rc = tsdb_append_q(rw->s->tsdb, rw->ent[i].ts_ms, smp, k, &rh->lim, &info, err);
		if (rc < 0) {
			rc = err->code ? err->code : rc;
			break;
		}
		quota = info.refused < k - (size_t)rc ? info.refused : k - (size_t)rc;
		rw_count(rw, RW_STORED, (size_t)rc);
		rw_count(rw, RW_QUOTA, quota);
		rw_count(rw, RW_REJECTED, k - (size_t)rc - quota);
		if (info.note)
			quota_note(rw->s, &rh->h, info.refused, &info);
		i += k;
		rc = 0;
	}
	free(smp);
	return rc;
}

int
metrics_remote_write(struct server *s, const void *body, size_t len, const char *host_label,
		     int64_t now, struct metrics_rw_result *out, struct herr *err)
{
	struct rw rw = { .s = s, .host_label = host_label, .now_ms = now, .res = out };
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->tsdb == NULL)
		return herr_set(err, HERR_UNAVAIL, "the metric store is not open");
	rc = promwire_decode(body, len, NULL, rw_series, &rw, err);
	if (rc == 0)
		rc = rw_store(&rw, err);
	/* the groups a policy scales: the autoscaler looks at once */
	for (size_t i = 0; rc == 0 && i < rw.nhosts; i++)
		if (rw.hosts[i].known && rw.hosts[i].scaled)
			metrics_on_push(s, rw.hosts[i].h.cluster, rw.hosts[i].h.group, NULL, 0);
	if (rc == 0)
		for (size_t i = 0; i < RW_NOUTCOMES; i++)
			__atomic_add_fetch(&rw_totals[i], out->samples[i], __ATOMIC_RELAXED);
	for (size_t i = 0; i < rw.nstrs; i++)
		free(rw.strs[i]);
	free(rw.strs);
	free(rw.hosts);
	free(rw.ent);
	free(rw.labels);
	return rc;
}

/* --- the aggregate, in-process --- */

/* Whether some point of an aggregate has a series behind it. */
static bool
agg_has_series(const struct tsdb_agg_point *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].nseries > 0)
			return true;
	return false;
}

int
metrics_agg_scoped(struct tsdb *db, const char *metric, struct tsdb_matcher *m, size_t nm,
		   enum expr_agg agg, int64_t from, int64_t to, int64_t step_ms,
		   struct tsdb_agg_point **out, size_t *n, struct herr *err)
{
	int rc;

	/* The hosts' own figures first: a metric that has them (a local host's
	 * cpu_busy_pct, mem_*: its cgroup's) also has the machine's, and the
	 * two must not mix. A group is on one provider, so its hosts all have
	 * them or none do; with none, every series of the metric counts (one
	 * scope: a cloud VM's machine is the host). */
	m[nm] = (struct tsdb_matcher){ "scope", "host", false };
	rc = tsdb_agg(db, metric, m, nm + 1, agg, from, to, step_ms, out, n, err);
	if (rc == 0 && !agg_has_series(*out, *n)) {
		free(*out);
		*out = NULL;
		*n = 0;
		rc = tsdb_agg(db, metric, m, nm, agg, from, to, step_ms, out, n, err);
	}
	return rc;
}

int
metrics_group_latest(struct server *s, const char *cluster, const char *group,
		     const char *metric, int64_t since_ms, size_t max, double **vals, size_t *n,
		     struct herr *err)
{
	struct tsdb_matcher m[3] = { { "cluster", cluster, false }, { "group", group, false },
				     { "scope", "host", false } };
	struct tsdb_series_info *si = NULL;
	size_t ns = 0;

	*vals = NULL;
	*n = 0;
	if (s->tsdb == NULL)
		return herr_set(err, HERR_UNAVAIL, "the metric store is not open");
	if (tsdb_latest(s->tsdb, metric, m, 3, since_ms, &si, &ns, err) < 0)
		return -1;
	if (ns == 0) {
		tsdb_series_free(si, ns);
		si = NULL;
		if (tsdb_latest(s->tsdb, metric, m, 2, since_ms, &si, &ns, err) < 0)
			return -1;
	}
	*vals = xcalloc(ns + 1, sizeof(**vals));
	for (size_t i = 0; i < ns && *n < max; i++)
		(*vals)[(*n)++] = si[i].last_value;
	tsdb_series_free(si, ns);
	return 0;
}

int
metrics_group_agg(struct server *s, const char *cluster, const char *group, const char *metric,
		  enum expr_agg agg, int64_t now, int64_t window_ms, int64_t step_ms,
		  const char *const *exclude, size_t nexclude, struct tsdb_agg_point **out,
		  size_t *n, struct herr *err)
{
	struct tsdb_matcher stack[16], *m = stack;
	size_t nm = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (s->tsdb == NULL)
		return herr_set(err, HERR_UNAVAIL, "the metric store is not open");
	if (window_ms <= 0)
		return herr_field(err, HERR_INVALID, "window", "must be positive");
	if (nexclude + 3 > sizeof(stack) / sizeof(stack[0]))
		m = xcalloc(nexclude + 3, sizeof(*m));
	m[nm++] = (struct tsdb_matcher){ "cluster", cluster, false };
	m[nm++] = (struct tsdb_matcher){ "group", group, false };
	for (size_t i = 0; i < nexclude; i++)
		m[nm++] = (struct tsdb_matcher){ "host", exclude[i], true };
	rc = metrics_agg_scoped(s->tsdb, metric, m, nm, agg, now - window_ms + 1, now, step_ms, out,
				n, err);
	if (m != stack)
		free(m);
	return rc;
}
