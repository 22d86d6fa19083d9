/* autoscale.c - the act side of autoscaling: evaluates a group's policies
 * when a push brings new samples of its metrics (event-driven, so the
 * decision follows the crossing sample) and on a 1 s tick (for schedules
 * and `for` windows), through the pure policy_decide(), and changes the
 * group's desired size (its cooldown clocks are bookkeeping, kept in
 * group_state by model/group-state.c, not in the spec). Every change, and every evaluation blocked by a
 * guard or missing data, is an activity with its inputs and reason (a
 * blocked one again only when its reason changes, not every second). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/metrics.h"
#include "ctl/ctl.h"
#include "ctl/promsrc.h"
#include "ctl/lease.h"
#include "log.h"
#include "model/activity.h"
#include "model/activity-read.h"
#include "model/group.h"
#include "model/group-state.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/res.h"
#include "scale.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

/* Aggregate steps are the agents' push interval (--push-interval). */
#define SCALE_STEP_MS (s->push_interval_ms)
#define SCALE_STALE_MS (3 * s->push_interval_ms)  /* newest step older: no data */
#define SCALE_MAX_POLICIES 64
#define SCALE_MAX_MEMO 1024

/* What the last evaluation of a policy said, for `herd policy explain` and
 * to record a blocked decision only when it changes. */
struct memo {
	char key[200];                /* cluster/group/policy */
	struct decision d;
	int64_t at_ms;
	int64_t prev_eval_ms;         /* schedules: last evaluation */
	char window[64];
	char recorded[160];           /* reason class last recorded as activity */
};

struct autoscale {
	struct server *s;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;         /* guards memo and dirty */
	struct memo memo[SCALE_MAX_MEMO];
	size_t nmemo;
	char dirty[64][140];          /* groups with new samples: cluster/group */
	size_t ndirty;
	pthread_cond_t wake;
};

static struct autoscale *g_as;

static struct memo *
memo_get(struct autoscale *as, const char *key)
{
	for (size_t i = 0; i < as->nmemo; i++)
		if (strcmp(as->memo[i].key, key) == 0)
			return &as->memo[i];
	if (as->nmemo == SCALE_MAX_MEMO)
		return NULL;
	memset(&as->memo[as->nmemo], 0, sizeof(as->memo[0]));
	snprintf(as->memo[as->nmemo].key, sizeof(as->memo[0].key), "%s", key);
	return &as->memo[as->nmemo++];
}

void
autoscale_on_push(struct server *s, const char *cluster, const char *group)
{
	struct autoscale *as = g_as;
	char key[140];

	if (as == NULL)
		return;
	snprintf(key, sizeof(key), "%s/%s", cluster, group);
	pthread_mutex_lock(&as->lock);
	for (size_t i = 0; i < as->ndirty; i++)
		if (strcmp(as->dirty[i], key) == 0)
			goto out;
	if (as->ndirty < sizeof(as->dirty) / sizeof(as->dirty[0]))
		memcpy(as->dirty[as->ndirty++], key, sizeof(key));
out:
	pthread_cond_signal(&as->wake);
	pthread_mutex_unlock(&as->lock);
}

/* The group as the policies see it (scale_view_hosts: the one rule simulate
 * uses too): sizes, ready and warmed-up hosts (the others count as capacity),
 * the cooldown clocks from group_state, recent actions. Fills `exclude`
 * with hosts whose samples must not count (not ready, or warming up). */
static int
group_view_load(struct server *s, const char *cluster, const char *group, const json_t *spec,
		int64_t now, struct group_view *g, json_t **exclude, struct herr *err)
{
	struct host_query q = { .cluster = cluster, .grp = group, .state = -1, .live = true };
	struct group gr;
	struct group_state gs;
	struct scale_host *hv;
	struct host *hosts;
	const char **ex;
	size_t i, nh, nex = 0;

	memset(g, 0, sizeof(*g));
	*exclude = NULL;
	if (group_from_spec(cluster, group, spec, &gr, err) < 0)
		return err->code;
	g->desired = gr.desired;   /* -1 when absent: unknown, never 0 */
	g->min = gr.min;
	g->max = gr.max;
	/* Unknown is not absent: without its cooldown clocks a group is not
	 * evaluated (a failed read must not look like "never scaled"). */
	if (group_state_get(s->store, cluster, group, &gs, err) < 0)
		return err->code;
	g->last_out_ms = gs.last_scale_out_ms;
	g->last_in_ms = gs.last_scale_in_ms;
	g->manual_ms = gs.manual_scale_ms;
	g->max_actions_per_hour = gr.max_actions_per_hour;   /* absent: 0, no cap */
	*exclude = json_array();
	if (host_list(s->store, &q, &hosts, &nh, err) < 0)
		return err->code;
	hv = xcalloc(nh + 1, sizeof(*hv));
	ex = xcalloc(nh + 1, sizeof(*ex));
	for (i = 0; i < nh; i++)
		scale_host_from_host(&hosts[i], &hv[i]);
	scale_view_hosts(g, hv, nh, gr.warmup_ms, now, ex, &nex, nh);
	for (i = 0; i < nex; i++)
		json_array_append_new(*exclude, json_string(ex[i]));
	free(hv);
	free(ex);
	free(hosts);
	/* a failed count is taken as none, as before */
	activity_count_policy_scales(s->store, cluster, group, now - 3600000,
				     &g->actions_last_hour, err);
	herr_clear(err);
	return 0;
}

/* The aggregate of the policy's metric over the group from the TSDB,
 * oldest step first (scale.h). */
int
scale_tsdb_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms, int64_t step_ms,
	       const char *const *ex, size_t nex, struct agg_point **out, size_t *n, struct herr *err)
{
	struct scale_tsdb_ctx *c = ctx;
	struct tsdb_agg_point *tp = NULL;
	size_t i;

	*out = NULL;
	*n = 0;
	if (metrics_group_agg(c->s, c->cluster, c->group, p->cond.metric, p->cond.agg, now_ms,
			      span_ms, step_ms, ex, nex, &tp, n, err) < 0)
		return err->code;
	*out = xcalloc(*n + 1, sizeof(**out));
	for (i = 0; i < *n; i++) {
		(*out)[i].ts_ms = tp[i].ts_ms;
		(*out)[i].value = tp[i].value;
		(*out)[i].nseries = tp[i].nseries;
	}
	free(tp);
	return 0;
}

static json_t *
inputs_of(const struct policy *p, const struct decision *d, const struct group_view *g,
	  const char *window)
{
	json_t *in = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:s}", "policy", p->name, "desired", g->desired,
			       "proposed", d->desired, "ready", g->ready, "pending", g->pending,
			       "nseries", d->nseries, "window", window);

	/* JSON has no NaN or Inf: a non-finite value is kept as text */
	if (isfinite(d->value))
		json_object_set_new(in, "value", json_real(d->value));
	else if (!isnan(d->value))
		json_object_set_new(in, "value", json_string(d->value > 0 ? "inf" : "-inf"));
	if (p->kind != POL_SCHEDULE) {
		char e[EXPR_TEXT_MAX + 16];
		policy_cond_format(p, e, sizeof(e));
		json_object_set_new(in, "condition", json_string(e));
	}
	if (p->prom_url[0]) {
		json_object_set_new(in, "source", json_string("prometheus"));
		json_object_set_new(in, "query", json_string(p->prom_query));
	}
	return in;
}

/* Changes the group in one transaction, unless it changed meanwhile. */
static int
apply_decision(struct server *s, const char *cluster, const char *group, const struct policy *p,
	       const struct decision *d, const struct group_view *g, const char *window,
	       struct herr *err)
{
	struct res r;
	struct group gr;
	bool created;
	int64_t now = now_ms();
	int rc;

	if ((rc = store_begin(s->store, err)) < 0)
		return rc;
	if ((rc = res_get(s->store, &kind_group, cluster, group, &r, err)) < 0)
		goto fail;
	if ((rc = group_from_spec(cluster, group, r.spec, &gr, err)) < 0) {
		res_release(&r);
		goto fail;
	}
	/* an absent desired (-1) is never acted on */
	if (gr.desired < 0 || gr.desired != g->desired) {
		res_release(&r);
		store_rollback(s->store);
		return 0;   /* someone else acted first: evaluate again */
	}
	if (d->set_min >= 0)
		json_object_set_new(r.spec, "min", json_integer(d->set_min));
	if (d->set_max >= 0)
		json_object_set_new(r.spec, "max", json_integer(d->set_max));
	json_object_set_new(r.spec, "desired", json_integer(d->desired));
	/* The cooldown clocks are bookkeeping, not spec: group_state. */
	if (d->desired != g->desired &&
	    (rc = group_state_note(s->store, cluster, group,
				   d->desired > g->desired ? GROUP_SCALED_OUT : GROUP_SCALED_IN, now,
				   err)) < 0) {
		res_release(&r);
		goto fail;
	}
	if ((rc = res_put(s->store, &kind_group, cluster, group, r.spec, "", &created, err)) == 0) {
		char cause[80];
		snprintf(cause, sizeof(cause), "policy:%s", p->name);
		rc = activity_add(s->store, cluster, group, NULL,
				  d->desired > g->desired ? "scale_out"
				  : d->desired < g->desired ? "scale_in" : "schedule",
				  cause, inputs_of(p, d, g, window), err, "%s", d->reason);
	}
	res_release(&r);
	if (rc < 0)
		goto fail;
	rc = store_commit(s->store, err);
	if (rc == 0)
		server_kick(s);
	return rc;
fail:
	store_rollback(s->store);
	return rc;
}

/* A PromQL policy without data: its reason says why the value is unknown
 * (the query's error, an empty vector, NaN...), not only that it is. */
static void
prom_unknown_say(const char *cluster, const char *group, const struct policy *p,
		 struct decision *d)
{
	char why[PROMSRC_WHY_MAX], r[sizeof(d->reason)];
	int64_t ts = 0;
	double v;

	if (promsrc_latest(cluster, group, p, &v, &ts, why, sizeof(why)))
		return;
	snprintf(r, sizeof(r), "%s", d->reason);
	snprintf(d->reason, sizeof(d->reason), "the PromQL value is unknown (%s): %s", why, r);
}

/* Evaluates every policy of one group and acts on the winner. */
static void
eval_group(struct autoscale *as, const char *cluster, const char *group, const json_t *gspec,
	   int64_t now)
{
	struct server *s = as->s;
	struct herr err = HERR_INIT;
	struct policy pol[SCALE_MAX_POLICIES];
	struct decision dec[SCALE_MAX_POLICIES];
	char windows[SCALE_MAX_POLICIES][64], scope[140], key[220];
	json_t *rows = NULL, *row, *exclude = NULL, *x;
	struct scale_tsdb_ctx ac = { s, cluster, group };
	struct promsrc_ctx pc = { cluster, group, 0 };
	const char **ex = NULL;
	size_t nex = 0;
	struct group_view g;
	size_t n = 0, i;
	int win;

	snprintf(scope, sizeof(scope), "%s/%s", cluster, group);
	if (res_all(s->store, &kind_policy, scope, &rows, &err) < 0 || json_array_size(rows) == 0)
		goto out;
	if (group_view_load(s, cluster, group, gspec, now, &g, &exclude, &err) < 0) {
		log_warn("autoscale: %s: not evaluated: %s", scope, err.msg);
		goto out;
	}
	pc.ready = g.ready;
	ex = xcalloc(json_array_size(exclude) + 1, sizeof(*ex));
	json_array_foreach(exclude, i, x)
		ex[nex++] = json_string_value(x);
	json_array_foreach(rows, i, row) {
		json_t *spec = json_incref(json_object_get(row, "spec"));   /* released below */
		struct memo *m;
		int64_t prev;

		if (n == SCALE_MAX_POLICIES || spec == NULL) {
			json_decref(spec);
			continue;
		}
		/* Stored before a rule existed, or written around the API: it
		 * does not act, and an activity says why (once). */
		if (policy_parse(json_string_value(json_object_get(row, "name")), spec, &pol[n], &err) < 0) {
			memset(&dec[n], 0, sizeof(dec[n]));
			dec[n].kind = DEC_BLOCKED;
			dec[n].value = NAN;
			dec[n].desired = g.desired;
			dec[n].set_min = dec[n].set_max = -1;
			snprintf(dec[n].reason, sizeof(dec[n].reason), "invalid policy (%s: %s): not acting",
				 err.field, err.msg);
			pol[n].kind = POL_SCHEDULE;   /* no condition to show */
			windows[n][0] = '\0';
			herr_clear(&err);
			json_decref(spec);
			n++;
			continue;
		}
		json_decref(spec);
		snprintf(key, sizeof(key), "%s/%s", scope, pol[n].name);
		pthread_mutex_lock(&as->lock);
		m = memo_get(as, key);
		prev = m && m->prev_eval_ms ? m->prev_eval_ms : now;
		pthread_mutex_unlock(&as->lock);
		if (scale_eval(&pol[n], &g, ex, nex, pol[n].prom_url[0] ? promsrc_agg : scale_tsdb_agg,
			       pol[n].prom_url[0] ? (void *)&pc : (void *)&ac, SCALE_STEP_MS,
			       SCALE_STALE_MS, prev, now, &dec[n], windows[n], sizeof(windows[n]),
			       &err) < 0) {
			log_warn("autoscale: %s policy %s: %s", scope, pol[n].name, err.msg);
			herr_clear(&err);
		}
		if (pol[n].prom_url[0] && dec[n].kind == DEC_NODATA)
			prom_unknown_say(cluster, group, &pol[n], &dec[n]);
		n++;
	}
	win = policy_resolve(dec, n, g.desired);
	/* Record: the action, and blocked/no-data evaluations when they change. */
	for (i = 0; i < n; i++) {
		struct memo *m;
		char cls[160];
		bool record = false;

		snprintf(key, sizeof(key), "%s/%s", scope, pol[i].name);
		scale_reason_class(&dec[i], cls, sizeof(cls));
		pthread_mutex_lock(&as->lock);
		if ((m = memo_get(as, key)) != NULL) {
			m->d = dec[i];
			m->at_ms = now;
			m->prev_eval_ms = now;
			snprintf(m->window, sizeof(m->window), "%s", windows[i]);
			if ((dec[i].kind == DEC_BLOCKED || dec[i].kind == DEC_NODATA) &&
			    strcmp(m->recorded, cls) != 0) {
				record = true;
				snprintf(m->recorded, sizeof(m->recorded), "%s", cls);
			} else if (dec[i].kind == DEC_NONE || dec[i].kind == DEC_ACT) {
				m->recorded[0] = '\0';
			}
		}
		pthread_mutex_unlock(&as->lock);
		if (record && (int)i != win)
			activity_add(s->store, cluster, group, NULL,
				     dec[i].kind == DEC_NODATA ? "scale_nodata" : "scale_blocked",
				     pol[i].name, inputs_of(&pol[i], &dec[i], &g, windows[i]), &err, "%s",
				     dec[i].reason);
	}
	if (win >= 0 && apply_decision(s, cluster, group, &pol[win], &dec[win], &g, windows[win], &err) < 0)
		log_warn("autoscale: cannot change %s: %s", scope, err.msg);
out:
	json_decref(rows);
	free(ex);
	json_decref(exclude);
}

static void
eval_all(struct autoscale *as, const char *only)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *pols = NULL, *row, *pol;
	int64_t now = now_ms();
	size_t i, k;

	/* the groups that have a policy (a policy's scope is cluster/group) */
	if (res_all(as->s->store, &kind_group, NULL, &rows, &err) < 0 ||
	    res_all(as->s->store, &kind_policy, NULL, &pols, &err) < 0) {
		json_decref(rows);
		return;
	}
	json_array_foreach(rows, i, row) {
		const char *cl = json_string_value(json_object_get(row, "scope"));
		const char *gr = json_string_value(json_object_get(row, "name"));
		bool has = false;
		char key[140];

		snprintf(key, sizeof(key), "%s/%s", cl, gr);
		if (only && strcmp(only, key) != 0)
			continue;
		json_array_foreach(pols, k, pol)
			has = has || strcmp(json_string_value(json_object_get(pol, "scope")), key) == 0;
		if (has)
			eval_group(as, cl, gr, json_object_get(row, "spec"), now);
	}
	json_decref(rows);
	json_decref(pols);
}

static void *
autoscale_main(void *arg)
{
	struct autoscale *as = arg;
	struct server *s = as->s;
	int64_t next_tick = mono_ms();

	while (!s->stopping) {
		char dirty[64][140];
		size_t nd;
		struct timespec ts;

		pthread_mutex_lock(&as->lock);
		if (as->ndirty == 0 && mono_ms() < next_tick) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&as->wake, &as->lock, &ts);
		}
		nd = as->ndirty;
		memcpy(dirty, as->dirty, nd * sizeof(dirty[0]));
		as->ndirty = 0;
		pthread_mutex_unlock(&as->lock);
		if (s->stopping)
			break;
		if (!leader_pass(s, NULL)) {
			/* another server leads: its autoscaler decides */
			next_tick = mono_ms() + 1000;
			continue;
		}
		if (mono_ms() >= next_tick) {
			eval_all(as, NULL);
			next_tick = mono_ms() + 1000;
		} else {
			for (size_t i = 0; i < nd; i++)
				eval_all(as, dirty[i]);
		}
	}
	return NULL;
}

static void
on_push(struct server *s, const char *cluster, const char *group, const char **metrics, size_t n)
{
	(void)metrics;
	(void)n;
	autoscale_on_push(s, cluster, group);
}

int
autoscale_start(struct server *s, struct herr *err)
{
	struct autoscale *as = xcalloc(1, sizeof(*as));

	as->s = s;
	pthread_mutex_init(&as->lock, NULL);
	pthread_cond_init(&as->wake, NULL);
	g_as = as;
	__atomic_store_n(&metrics_push_hook, on_push, __ATOMIC_RELEASE);
	if (pthread_create(&as->thread, NULL, autoscale_main, as) != 0)
		return herr_set(err, -errno, "cannot start the autoscaler thread");
	as->started = true;
	return 0;
}

void
autoscale_stop(struct server *s)
{
	struct autoscale *as = g_as;

	if (as == NULL)
		return;
	__atomic_store_n(&metrics_push_hook, NULL, __ATOMIC_RELEASE);
	pthread_mutex_lock(&as->lock);
	pthread_cond_broadcast(&as->wake);
	pthread_mutex_unlock(&as->lock);
	if (as->started)
		pthread_join(as->thread, NULL);
	g_as = NULL;
	free(as);
}

json_t *
autoscale_explain(const char *cluster, const char *group, const char *policy)
{
	struct autoscale *as = g_as;
	char key[220], ts[40];
	json_t *o = NULL;
	static const char *const kinds_txt[] = { "none", "act", "blocked", "no_data" };

	if (as == NULL)
		return NULL;
	snprintf(key, sizeof(key), "%s/%s/%s", cluster, group, policy);
	pthread_mutex_lock(&as->lock);
	for (size_t i = 0; i < as->nmemo; i++) {
		struct memo *m = &as->memo[i];
		if (strcmp(m->key, key) != 0)
			continue;
		o = json_pack("{s:s,s:s,s:i,s:s,s:i,s:s}", "evaluated", fmt_time(m->at_ms, ts, sizeof(ts)),
			      "decision", kinds_txt[m->d.kind], "desired", m->d.desired, "reason",
			      m->d.reason, "nseries", m->d.nseries, "window", m->window);
		if (isfinite(m->d.value))
			json_object_set_new(o, "value", json_real(m->d.value));
		else if (!isnan(m->d.value))
			json_object_set_new(o, "value", json_string(m->d.value > 0 ? "inf" : "-inf"));
		if (m->d.holding_since_ms)
			json_object_set_new(o, "holding_since",
					    json_string(fmt_time(m->d.holding_since_ms, ts, sizeof(ts))));
	}
	pthread_mutex_unlock(&as->lock);
	return o;
}
