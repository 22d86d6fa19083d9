/* model/metrics.c - the metrics model (model/metrics.h): a validated push
 * stored in the metric store under the cluster's quotas, the in-memory
 * cache of pushing hosts' identities with their monitor states and dropped
 * batches, the monitor configuration agents poll (kept per cluster/group
 * with the cluster's quotas, and computed again only after a resource
 * changed: a push reads nothing from the store), a host's series summary
 * and the group aggregate the autoscaler reads. No HTTP here: the handlers
 * in api/api-metrics.c validate, call these and answer. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model/activity.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "util.h"
#include "xalloc.h"

#define HOSTS_MAX 100000          /* hosts whose identity and monitors we cache */

metrics_push_fn metrics_push_hook;

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
	snprintf(m->error, sizeof(m->error), "%s", error ? error : "");
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

/* The configuration computed from the store: two reads or more, a JSON
 * dump and a SHA-256, so it is cached (cfg_get below). */
static json_t *
config_build(struct server *s, const char *cluster, const char *group)
{
	struct herr err = HERR_INIT;
	json_t *mons = json_array(), *cfg, *names, *n;
	struct res g, m;
	char hash[65], *text;
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
	cfg = json_pack("{s:I,s:o}", "push_interval_s", (json_int_t)(s->push_interval_ms / 1000), "monitors", mons);
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

/* A batch's samples and labels: on the stack up to these (an agent's
 * batch is ~35 series of 1 label), on the heap past them. */
#define STACK_SAMPLES 64
#define STACK_LABELS (STACK_SAMPLES * 5)

int
metrics_push_ingest(struct server *s, const struct metrics_host *h, json_t *batches,
		    json_t *dropped, struct metrics_push_result *out, struct herr *err)
{
	struct tsdb_sample smp_stack[STACK_SAMPLES];
	struct tsdb_label lab_stack[STACK_LABELS];
	struct tsdb *db = s->tsdb;
	const char **names = NULL;
	size_t nnames = 0, capnames = 0, i, last = 0;
	int64_t last_ts = 0;
	struct tsdb_limits lim;
	struct tsdb_append_info info;
	json_int_t version;
	bool scaled;
	json_t *b;

	memset(out, 0, sizeof(*out));
	if (db == NULL)
		return herr_set(err, HERR_UNAVAIL, "the metric store is not open");
	cfg_get(s, h->cluster, h->group, &version, &lim, &scaled, NULL);
	out->config_version = version;
	json_array_foreach(batches, i, b) {
		json_t *series = json_object_get(b, "series"), *mons = json_object_get(b, "monitors");
		size_t ns = json_array_size(series), nm = json_array_size(mons), n = 0, nl = 0, j;
		int64_t ts = json_integer_value(json_object_get(b, "ts_ms"));
		size_t nlab = (ns + nm + 1) * 4;   /* the 3 given + monitor */
		struct tsdb_sample *smp = smp_stack;
		struct tsdb_label *lab = lab_stack;
		json_t *x;
		int rc;

		if (ts >= last_ts) {
			last_ts = ts;
			last = i;
		}
		json_array_foreach(series, j, x)
			nlab += json_object_size(json_object_get(x, "labels"));
		if (ns + nm + 1 > STACK_SAMPLES)
			smp = xcalloc(ns + nm + 1, sizeof(*smp));
		if (nlab > STACK_LABELS)
			lab = xcalloc(nlab, sizeof(*lab));
#define BASE_LABELS()                                                   \
	do {                                                            \
		lab[nl++] = (struct tsdb_label){ "host", h->name };      \
		lab[nl++] = (struct tsdb_label){ "group", h->group };    \
		lab[nl++] = (struct tsdb_label){ "cluster", h->cluster }; \
	} while (0)
		json_array_foreach(series, j, x) {
			json_t *lv;
			const char *lk;

			smp[n].metric = json_string_value(json_object_get(x, "name"));
			metrics_value_parse(json_object_get(x, "value"), &smp[n].value);
			smp[n].labels = &lab[nl];
			BASE_LABELS();
			json_object_foreach(json_object_get(x, "labels"), lk, lv)
				lab[nl++] = (struct tsdb_label){ lk, json_string_value(lv) };
			smp[n].nlabels = (size_t)(&lab[nl] - smp[n].labels);
			n++;
			if (!scaled)
				continue;
			if (nnames == capnames) {
				capnames = capnames ? capnames * 2 : 64;
				names = xrealloc(names, capnames * sizeof(*names));
			}
			names[nnames++] = smp[n - 1].metric;
		}
		json_array_foreach(mons, j, x) {
			const char *st = json_string_value(json_object_get(x, "state"));

			smp[n].metric = "monitor_up";
			smp[n].value = strcmp(st, "ok") == 0 ? 1 : 0;
			smp[n].labels = &lab[nl];
			BASE_LABELS();
			lab[nl++] = (struct tsdb_label){ "monitor",
							 json_string_value(json_object_get(x, "name")) };
			smp[n].nlabels = 4;
			n++;
		}
		if (i + 1 == json_array_size(batches) && dropped) {
			smp[n].metric = "agent_dropped_batches_total";
			smp[n].value = (double)dropped_add(h->id, (uint64_t)json_integer_value(dropped));
			smp[n].labels = &lab[nl];
			BASE_LABELS();
			smp[n].nlabels = 3;
			n++;
		}
#undef BASE_LABELS
		rc = tsdb_append_q(db, ts, smp, n, &lim, &info, err);
		if (smp != smp_stack)
			free(smp);
		if (lab != lab_stack)
			free(lab);
		if (rc < 0) {
			free(names);
			/* batches before this one are stored: the agent may resend
			 * them, and same-timestamp samples just replace */
			return err->code ? err->code : rc;
		}
		out->accepted += (size_t)rc;
		out->rejected += n - (size_t)rc;
		out->refused += info.refused;
		if (info.refused) {
			out->refusal.reason = info.reason;
			out->refusal.host_refused = info.host_refused;
			out->refusal.host_series = info.host_series;
			out->refusal.host_max = info.host_max;
		}
		out->refusal.note |= info.note;
		if (nm && scaled) {
			if (nnames == capnames) {
				capnames = capnames ? capnames * 2 : 64;
				names = xrealloc(names, capnames * sizeof(*names));
			}
			names[nnames++] = "monitor_up";
		}
	}
	/* monitor states: the newest batch wins */
	{
		json_t *mons = json_object_get(json_array_get(batches, last), "monitors"), *x;
		json_array_foreach(mons, i, x)
			monitor_set(h->id, json_string_value(json_object_get(x, "name")),
				    json_string_value(json_object_get(x, "state")),
				    json_string_value(json_object_get(x, "error")), last_ts);
	}
	if (out->refusal.note)
		quota_note(s, h, out->refused, &out->refusal);
	/* the autoscaler reads the store for each call: only groups that a
	 * policy scales (its own 1 s pass finds every other change) */
	if (nnames && scaled) {
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

/* --- the aggregate, in-process --- */

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
	if (nexclude + 2 > sizeof(stack) / sizeof(stack[0]))
		m = xcalloc(nexclude + 2, sizeof(*m));
	m[nm++] = (struct tsdb_matcher){ "cluster", cluster, false };
	m[nm++] = (struct tsdb_matcher){ "group", group, false };
	for (size_t i = 0; i < nexclude; i++)
		m[nm++] = (struct tsdb_matcher){ "host", exclude[i], true };
	rc = tsdb_agg(s->tsdb, metric, m, nm, agg, now - window_ms + 1, now, step_ms, out, n, err);
	if (m != stack)
		free(m);
	return rc;
}
