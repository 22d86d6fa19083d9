/* ctl/alert.c - the act side of alerting (ctl/alert.h): a thread that,
 * every second (never less often than the agents push), evaluates each
 * group's rules: user rules on the group's aggregate of a metric (the
 * autoscaler's metrics_group_agg, with the same staleness guard: no fresh
 * step is "unknown", never "false"), and the built-ins on facts herd
 * already keeps (host states and reasons, the autoscaler's last decision
 * per policy, lb-sync's last view of each load balancer's members), and the activities since the last pass, so a host that was
 * unhealthy only between two passes (replaced at once) still counts as
 * silent for one pass. Each instance goes through the pure alert_decide(); a change
 * is written with its event in one transaction, so the history and the
 * notifiers' outbox (alert_events) never disagree with the state. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/alert.h"
#include "ctl/lbsync.h"
#include "ctl/lease.h"
#include "log.h"
#include "model/alert-event.h"
#include "model/alert-rule.h"
#include "model/activity.h"
#include "model/activity-read.h"
#include "model/alert-state.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/metrics.h"
#include "model/res.h"
#include "scale/flap.h"
#include "scale/scale.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define ALERT_MAX_RULES 256           /* per group: built-ins + 2 lists of 100 */
#define ALERT_MAX_INST 1000           /* instances of one rule in one group */
#define ALERT_HOSTS_TEXT 256          /* {{hosts}} */
#define ALERT_FLAP_WINDOW_MS (3600 * 1000LL)  /* group_flapping looks back this far */
#define ALERT_FLAP_LIMIT 3            /* ... and fires past this many changes of direction */

struct alerter {
	struct server *s;
	pthread_t thread;
	bool started;
	int64_t act_after;            /* activities read up to this id */
	bool act_known;               /* act_after was set (first pass) */
	/* launch_failing: groups whose last launch (or their network) failed
	 * since a host of theirs was last ready, with the provider's words */
	struct {
		char group[140];      /* cluster/group */
		char reason[400];
	} lf[64];
	size_t nlf;
};

static struct alerter *g_al;

/* One instance a rule's facts say is there now (condition true). */
struct inst {
	char key[96];
	char host[64], policy[64], lb[64];
	char reason[512];
	double value;
};

/* --- the rules in force for a group --- */

/* Applies one `alerts:` list (a cluster's, then a group's) onto rules[]:
 * an entry named like an existing rule replaces it. */
static void
rules_apply(const json_t *list, const char *origin, struct alert_rule *rules, size_t *n)
{
	const json_t *x;
	size_t i, k;

	json_array_foreach(list, i, x) {
		struct alert_rule r;
		struct herr err = HERR_INIT;

		if (alert_rule_parse(x, &r, &err) < 0)   /* written around the API */
			continue;
		snprintf(r.origin, sizeof(r.origin), "%s", origin);
		for (k = 0; k < *n; k++)
			if (strcmp(rules[k].name, r.name) == 0)
				break;
		if (k == *n && *n == ALERT_MAX_RULES)
			continue;
		rules[k] = r;
		if (k == *n)
			(*n)++;
	}
}

static size_t
rules_for(const json_t *cspec, const char *cluster, const json_t *gspec, const char *group,
	  struct alert_rule *rules)
{
	char origin[160];
	size_t n = 0;

	for (const struct alert_builtin *b = alert_builtins; b->name; b++)
		alert_rule_builtin(b, &rules[n++]);
	snprintf(origin, sizeof(origin), "cluster %s", cluster);
	rules_apply(json_object_get(cspec, "alerts"), origin, rules, &n);
	snprintf(origin, sizeof(origin), "group %s/%s", cluster, group);
	rules_apply(json_object_get(gspec, "alerts"), origin, rules, &n);
	return n;
}

/* --- facts --- */

static int
lf_find(const struct alerter *al, const char *key)
{
	for (size_t i = 0; i < al->nlf; i++)
		if (strcmp(al->lf[i].group, key) == 0)
			return (int)i;
	return -1;
}

static void
lf_set(struct alerter *al, const char *cluster, const char *group, const char *reason)
{
	char key[140];
	int i;

	snprintf(key, sizeof(key), "%s/%s", cluster, group);
	if ((i = lf_find(al, key)) < 0) {
		if (al->nlf == sizeof(al->lf) / sizeof(al->lf[0]))
			return;
		i = (int)al->nlf++;
		snprintf(al->lf[i].group, sizeof(al->lf[i].group), "%s", key);
	}
	snprintf(al->lf[i].reason, sizeof(al->lf[i].reason), "%s", reason ? reason : "");
}

static void
lf_clear(struct alerter *al, const char *cluster, const char *group)
{
	char key[140];
	int i;

	snprintf(key, sizeof(key), "%s/%s", cluster, group);
	if ((i = lf_find(al, key)) >= 0)
		al->lf[i] = al->lf[--al->nlf];
}

/* Notes the launch failures the activities since the last pass tell of: a
 * launch that made no host (launch_failed), a network the provider would
 * not create for the groups whose template is on it (network_failed); a
 * host of the group ready ends it. */
static void
lf_note(struct alerter *al, const json_t *acts, const json_t *groups, const json_t *templates)
{
	const json_t *a, *g, *t;
	size_t i, k, j;

	json_array_foreach(acts, i, a) {
		const char *kind = json_string_value(json_object_get(a, "kind"));
		const char *cl = json_string_value(json_object_get(a, "cluster"));
		const char *gr = json_string_value(json_object_get(a, "group"));
		const char *why = json_string_value(json_object_get(a, "reason"));
		const char *net;

		if (strcmp(kind, "launch_failed") == 0 && cl && gr && *gr) {
			lf_set(al, cl, gr, why);
		} else if (strcmp(kind, "host_ready") == 0 && cl && gr) {
			lf_clear(al, cl, gr);
		} else if (strcmp(kind, "network_failed") == 0 &&
			   (net = json_string_value(json_object_get(json_object_get(a, "inputs"),
								    "network"))) != NULL) {
			json_array_foreach(groups, k, g) {
				const char *tpl = json_string_value(
					json_object_get(json_object_get(g, "spec"), "template"));
				json_array_foreach(templates, j, t) {
					const char *tn = json_string_value(
						json_object_get(json_object_get(t, "spec"), "network"));
					if (tpl && tn && strcmp(tn, net) == 0 &&
					    strcmp(json_string_value(json_object_get(t, "name")), tpl) == 0)
						lf_set(al, json_string_value(json_object_get(g, "scope")),
						       json_string_value(json_object_get(g, "name")), why);
				}
			}
		}
	}
}

/* Whether the group has fewer hosts on their way to ready (or ready) than
 * it wants. */
static bool
group_short(const json_t *gspec, const char *cluster, const char *group, const struct host *h,
	    size_t nh)
{
	json_int_t want = json_integer_value(json_object_get(gspec, "desired"));
	json_int_t have = 0;

	for (size_t i = 0; i < nh; i++)
		if (strcmp(h[i].cluster, cluster) == 0 && strcmp(h[i].grp, group) == 0 &&
		    h[i].state != HS_FAILED && h[i].state != HS_TERMINATING &&
		    h[i].state != HS_TERMINATED && h[i].state != HS_DRAINING)
			have++;
	return have < want;
}

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static size_t
inst_add(struct inst *v, size_t n, const char *key, const char *host, const char *reason,
	 double value)
{
	if (n == ALERT_MAX_INST)
		return n;
	memset(&v[n], 0, sizeof(v[n]));
	snprintf(v[n].key, sizeof(v[n].key), "%s", key);
	snprintf(v[n].host, sizeof(v[n].host), "%s", host ? host : "");
	snprintf(v[n].reason, sizeof(v[n].reason), "%s", reason ? reason : "");
	v[n].value = value;
	return n + 1;
}

/* The built-in rule's instances in the group, from its hosts and the
 * autoscaler's last evaluations. */
static size_t
builtin_facts(const char *rule, const char *cluster, const char *group, const struct host *h,
	      size_t nh, const json_t *policies, const json_t *acts, const json_t *lbviews,
	      const char *launch_fail, struct inst *v)
{
	size_t n = 0, i, failed = 0;
	const char *last_reason = "";

	for (i = 0; i < nh; i++) {
		if (strcmp(h[i].cluster, cluster) || strcmp(h[i].grp, group))
			continue;
		if (strcmp(rule, "host_failed") == 0 && h[i].state == HS_FAILED)
			n = inst_add(v, n, h[i].name, h[i].name, h[i].reason, NAN);
		else if (strcmp(rule, "init_script_failed") == 0 && h[i].state == HS_FAILED &&
			 h[i].joined_ms > 0 && !starts(h[i].reason, "not ready within") &&
			 !starts(h[i].reason, "launch failed"))
			n = inst_add(v, n, h[i].name, h[i].name, h[i].reason, NAN);
		else if (strcmp(rule, "agent_silent") == 0 && h[i].state == HS_UNHEALTHY)
			n = inst_add(v, n, h[i].name, h[i].name, h[i].reason, NAN);
		else if (strcmp(rule, "launch_failing") == 0 && h[i].state == HS_FAILED &&
			 h[i].instance_id[0] == '\0' && starts(h[i].reason, "launch failed")) {
			failed++;
			last_reason = h[i].reason;
		}
	}
	if (strcmp(rule, "launch_failing") == 0 && !failed && launch_fail)
		n = inst_add(v, n, "", NULL, launch_fail, NAN);
	if (failed)
		n = inst_add(v, n, "", NULL, last_reason, (double)failed);
	/* a host unhealthy since the last pass that is no longer (replaced
	 * at once): silent all the same, for this pass */
	if (strcmp(rule, "agent_silent") == 0) {
		const json_t *a;

		json_array_foreach(acts, i, a) {
			const char *host = json_string_value(json_object_get(a, "host"));
			bool have = false;

			if (strcmp(json_string_value(json_object_get(a, "kind")), "host_unhealthy") ||
			    host == NULL ||
			    strcmp(json_string_value(json_object_get(a, "cluster")), cluster) ||
			    strcmp(json_string_value(json_object_get(a, "group")), group))
				continue;
			for (size_t k = 0; k < n && !have; k++)
				have = strcmp(v[k].key, host) == 0;
			if (!have)
				n = inst_add(v, n, host, host,
					     json_string_value(json_object_get(a, "reason")), NAN);
		}
	}
	if (strcmp(rule, "group_at_max") == 0 || strcmp(rule, "policy_blocked_missing_data") == 0) {
		const json_t *p;

		json_array_foreach(policies, i, p) {
			const char *pname = json_string_value(json_object_get(p, "name"));
			json_t *e = autoscale_explain(cluster, group, pname);
			const char *d = json_string_value(json_object_get(e, "decision"));
			const char *why = json_string_value(json_object_get(e, "reason"));
			const json_t *val = json_object_get(e, "value");
			bool hit;

			if (strcmp(rule, "group_at_max") == 0)
				hit = d && strcmp(d, "blocked") == 0 && why &&
				      strstr(why, "the group is at its max") != NULL;
			else
				hit = d && strcmp(d, "no_data") == 0;
			if (hit) {
				n = inst_add(v, n, pname, NULL, why, json_is_number(val) ? json_number_value(val) : NAN);
				snprintf(v[n - 1].policy, sizeof(v[n - 1].policy), "%s", pname);
			}
			json_decref(e);
		}
	}
	/* a drain that timed out (its host is then terminated): this pass */
	if (strcmp(rule, "drain_timed_out") == 0) {
		const json_t *a;

		json_array_foreach(acts, i, a) {
			const char *host = json_string_value(json_object_get(a, "host"));
			const char *st = json_string_value(
				json_object_get(json_object_get(a, "inputs"), "state"));

			if (strcmp(json_string_value(json_object_get(a, "kind")), "drained") == 0 && host &&
			    st && strcmp(st, "running") == 0 &&
			    strcmp(json_string_value(json_object_get(a, "cluster")), cluster) == 0 &&
			    strcmp(json_string_value(json_object_get(a, "group")), group) == 0)
				n = inst_add(v, n, host, host,
					     json_string_value(json_object_get(a, "reason")), NAN);
		}
	}
	/* an active LB member the LB's health check says is down */
	if (strcmp(rule, "lb_member_down") == 0) {
		const char *lb;
		const json_t *view, *it;

		json_object_foreach((json_t *)lbviews, lb, view) {
			json_array_foreach(json_object_get(view, "items"), i, it) {
				const char *id = json_string_value(json_object_get(it, "host_id"));
				const char *st = json_string_value(json_object_get(it, "state"));
				const char *intent = json_string_value(json_object_get(it, "intent"));
				const char *status = json_string_value(json_object_get(it, "status"));
				const char *check = json_string_value(json_object_get(it, "check_status"));
				char why[200];

				if (!id || !st || !intent || strcmp(st, "down") || strcmp(intent, "active"))
					continue;
				for (size_t k = 0; k < nh; k++) {
					if (strcmp(h[k].id, id) || strcmp(h[k].cluster, cluster) ||
					    strcmp(h[k].grp, group))
						continue;
					snprintf(why, sizeof(why), "%s %s", status ? status : "",
						 check ? check : "");
					n = inst_add(v, n, h[k].name, h[k].name, why, NAN);
					snprintf(v[n - 1].lb, sizeof(v[n - 1].lb), "%s", lb);
				}
			}
		}
	}
	return n;
}

/* group_flapping: the group's policy-made size changes of the last
 * ALERT_FLAP_WINDOW_MS (activities with cause "policy:..."), counted by
 * flap_counter_decide; one instance for the group, its value the count.
 * Only groups with policies are asked (nothing else can flap). */
static size_t
flap_facts(struct server *s, const char *cluster, const char *group, const json_t *policies,
	   int64_t now, struct inst *v)
{
	struct herr err = HERR_INIT;
	struct flap_change *c;
	json_t *acts = NULL, *a;
	size_t n = 0, i;
	int count = 0;
	char why[160];

	if (json_array_size(policies) == 0 ||
	    activity_list_scales(s->store, cluster, group, now - ALERT_FLAP_WINDOW_MS, &acts,
				 &err) < 0) {
		if (err.code)
			log_warn("alert: group_flapping of %s/%s: %s", cluster, group, err.msg);
		return 0;
	}
	c = xcalloc(json_array_size(acts) + 1, sizeof(*c));
	json_array_foreach(acts, i, a) {
		const char *kind = json_string_value(json_object_get(a, "kind"));
		const char *cause = json_string_value(json_object_get(a, "cause"));

		if (cause == NULL || strncmp(cause, "policy:", 7) != 0)
			continue;
		c[n].ts_ms = json_integer_value(json_object_get(a, "ts_ms"));
		c[n].dir = strcmp(kind, "scale_out") == 0 ? 1 : strcmp(kind, "scale_in") == 0 ? -1 : 0;
		n++;
	}
	n = flap_counter_decide(c, n, now, ALERT_FLAP_WINDOW_MS, ALERT_FLAP_LIMIT, &count) ? 1 : 0;
	free(c);
	json_decref(acts);
	if (n == 0)
		return 0;
	snprintf(why, sizeof(why), "%d changes of direction in %d min", count,
		 (int)(ALERT_FLAP_WINDOW_MS / 60000));
	return inst_add(v, 0, "", NULL, why, (double)count);
}

/* A user rule's condition now: the newest fresh step of agg(metric) over
 * the group, or unknown when there is none (no hosts, no samples, stale). */
static enum alert_cond
user_cond(struct server *s, const struct alert_rule *r, const char *cluster, const char *group,
	  int64_t now, double *value)
{
	struct tsdb_agg_point *pts = NULL;
	struct herr err = HERR_INIT;
	int64_t step = s->push_interval_ms;
	enum alert_cond c = COND_UNKNOWN;
	size_t n = 0;

	*value = NAN;
	if (metrics_group_agg(s, cluster, group, r->cond.metric, r->cond.agg, now, 3 * step, step, NULL,
			      0, &pts, &n, &err) < 0) {
		free(pts);
		return COND_UNKNOWN;
	}
	for (size_t i = n; i-- > 0;)
		if (pts[i].nseries > 0 && pts[i].ts_ms > now - 3 * step && !isnan(pts[i].value)) {
			*value = pts[i].value;
			c = expr_holds(&r->cond, pts[i].value) ? COND_TRUE : COND_FALSE;
			break;
		}
	free(pts);
	return c;
}

/* --- act --- */

static enum alert_st
st_of(const json_t *row)
{
	const char *st = json_string_value(json_object_get(row, "state"));

	if (row == NULL || st == NULL)
		return AL_INACTIVE;
	return strcmp(st, ALERT_FIRING) == 0 ? AL_FIRING : AL_PENDING;
}

static const json_t *
state_find(const json_t *states, const char *rule, const char *cluster, const char *group,
	   const char *key)
{
	const json_t *x;
	size_t i;

	json_array_foreach(states, i, x)
		if (strcmp(json_string_value(json_object_get(x, "rule")), rule) == 0 &&
		    strcmp(json_string_value(json_object_get(x, "cluster")), cluster) == 0 &&
		    strcmp(json_string_value(json_object_get(x, "group")), group) == 0 &&
		    strcmp(json_string_value(json_object_get(x, "key")), key) == 0)
			return x;
	return NULL;
}

/* Decides one instance and writes its change (state and event together). */
static void
step_inst(struct server *s, const struct alert_rule *r, const char *cluster, const char *group,
	  const char *key, const json_t *prev_row, enum alert_cond cond, const struct inst *in,
	  const char *hosts, bool silenced, int64_t now)
{
	struct alert_prev prev = { st_of(prev_row), 0, 0, 0 };
	struct alert_next nx;
	struct herr err = HERR_INIT;
	char summary[ALERT_SUMMARY_MAX];
	struct alert_vars vars = { r->name, cluster, group, in ? in->host : "", hosts,
				   in ? in->reason : "", in ? in->policy : "", in ? in->lb : "",
				   in ? in->value : NAN, r->has_expr ? r->cond.value : NAN };
	json_t *labels;

	if (prev_row) {
		prev.since_ms = json_integer_value(json_object_get(prev_row, "since_ms"));
		prev.started_ms = json_integer_value(json_object_get(prev_row, "started_ms"));
		prev.last_event_ms = json_integer_value(json_object_get(prev_row, "last_event_ms"));
	}
	alert_decide(&prev, cond, r->for_ms, r->repeat_ms, now, &nx);
	if (!nx.changed && !(prev_row && json_is_true(json_object_get(prev_row, "silenced")) != silenced))
		return;
	if (in)
		alert_render(r->summary, &vars, summary, sizeof(summary));
	else
		snprintf(summary, sizeof(summary), "%s",
			 prev_row ? json_string_value(json_object_get(prev_row, "summary")) : "");
	labels = r->labels ? json_deep_copy(r->labels) : json_object();
	json_object_set_new(labels, "cluster", json_string(cluster));
	json_object_set_new(labels, "group", json_string(group));
	if (*key)
		json_object_set_new(labels, "key", json_string(key));
	if (store_begin(s->store, &err) < 0)
		goto out;
	if (nx.st == AL_INACTIVE) {
		if (alert_state_del(s->store, r->name, cluster, group, key, &err) < 0)
			goto fail;
	} else {
		struct alert_inst a = { r->name, cluster, group, key,
					nx.st == AL_FIRING ? ALERT_FIRING : ALERT_PENDING, nx.since_ms,
					nx.started_ms, nx.last_event_ms, r->severity, summary,
					in ? in->value : NAN, silenced };
		if (alert_state_put(s->store, &a, &err) < 0)
			goto fail;
	}
	if (nx.ev != EV_NONE) {
		struct alert_event ev = { 0, now, r->name, cluster, group, key,
					  nx.ev == EV_RESOLVED ? ALERT_RESOLVED : ALERT_FIRING,
					  r->severity, summary, labels,
					  in ? in->value : NAN,
					  nx.ev == EV_RESOLVED ? prev.started_ms : nx.started_ms,
					  nx.ev == EV_REPEAT, silenced };
		if (alert_event_add(s->store, &ev, &err) < 0)
			goto fail;
	}
	if (store_commit(s->store, &err) < 0)
		goto out;
	if (nx.ev == EV_FIRING || nx.ev == EV_RESOLVED)
		log_info("alert %s %s/%s%s%s %s%s: %s", r->name, cluster, group, *key ? " " : "", key,
			 nx.ev == EV_FIRING ? "firing" : "resolved", silenced ? " (silenced)" : "",
			 summary);
	json_decref(labels);
	return;
fail:
	store_rollback(s->store);
out:
	log_warn("alert %s %s/%s: cannot record: %s", r->name, cluster, group, err.msg);
	json_decref(labels);
}

static void
hosts_text(const struct host *h, size_t nh, const char *cluster, const char *group, char *out,
	   size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < nh && o + 1 < n; i++) {
		if (strcmp(h[i].cluster, cluster) || strcmp(h[i].grp, group) || h[i].state != HS_READY)
			continue;
		o += (size_t)snprintf(out + o, n - o, "%s%s", o ? ", " : "", h[i].name);
	}
}

static void
eval_group(struct alerter *al, const json_t *cspec, const char *cluster, const json_t *gspec,
	   const char *group, const struct host *h, size_t nh, const json_t *states,
	   const json_t *silences, const json_t *acts, const json_t *lbviews, int64_t now)
{
	struct server *s = al->s;
	struct alert_rule *rules = xcalloc(ALERT_MAX_RULES, sizeof(*rules));
	struct inst *v = xcalloc(ALERT_MAX_INST, sizeof(*v));
	struct herr err = HERR_INIT;
	json_t *pols = NULL;
	char scope[140], hosts[ALERT_HOSTS_TEXT];
	const char *launch_fail = NULL;
	size_t nr, ri, i;
	int lf;

	snprintf(scope, sizeof(scope), "%s/%s", cluster, group);
	if ((lf = lf_find(al, scope)) >= 0) {
		if (group_short(gspec, cluster, group, h, nh))
			launch_fail = al->lf[lf].reason;
		else
			lf_clear(al, cluster, group);
	}
	if (res_all(s->store, &kind_policy, scope, &pols, &err) < 0)
		pols = json_array();
	hosts_text(h, nh, cluster, group, hosts, sizeof(hosts));
	nr = rules_for(cspec, cluster, gspec, group, rules);
	for (ri = 0; ri < nr; ri++) {
		const struct alert_rule *r = &rules[ri];
		bool sil = alert_is_silenced(silences, r->name, cluster, group, now);
		const json_t *x;
		size_t nv = 0;

		if (r->has_expr) {
			struct inst one;
			enum alert_cond c = COND_FALSE;

			memset(&one, 0, sizeof(one));
			if (r->enabled)
				c = user_cond(s, r, cluster, group, now, &one.value);
			step_inst(s, r, cluster, group, "", state_find(states, r->name, cluster, group, ""),
				  c, &one, hosts, sil, now);
			continue;
		}
		if (r->enabled && strcmp(r->name, "group_flapping") == 0)
			nv = flap_facts(s, cluster, group, pols, now, v);
		else if (r->enabled)
			nv = builtin_facts(r->name, cluster, group, h, nh, pols, acts, lbviews, launch_fail, v);
		for (i = 0; i < nv; i++)
			step_inst(s, r, cluster, group, v[i].key,
				  state_find(states, r->name, cluster, group, v[i].key), COND_TRUE, &v[i],
				  hosts, sil, now);
		/* instances no longer there: their condition is false */
		json_array_foreach(states, i, x) {
			const char *key = json_string_value(json_object_get(x, "key"));
			bool present = false;

			if (strcmp(json_string_value(json_object_get(x, "rule")), r->name) ||
			    strcmp(json_string_value(json_object_get(x, "cluster")), cluster) ||
			    strcmp(json_string_value(json_object_get(x, "group")), group))
				continue;
			for (size_t k = 0; k < nv && !present; k++)
				present = strcmp(v[k].key, key) == 0;
			if (!present)
				step_inst(s, r, cluster, group, key, x, COND_FALSE, NULL, hosts, sil, now);
		}
	}
	json_decref(pols);
	free(v);
	free(rules);
}

/* Instances of rules or groups that are gone resolve (a removed rule's
 * firing alert is not left firing forever). */
static void
eval_orphans(struct server *s, const json_t *states, const json_t *groups, const json_t *clusters,
	     int64_t now)
{
	struct alert_rule *rules = xcalloc(ALERT_MAX_RULES, sizeof(*rules));
	const json_t *x;
	size_t i;

	json_array_foreach(states, i, x) {
		const char *rule = json_string_value(json_object_get(x, "rule"));
		const char *cl = json_string_value(json_object_get(x, "cluster"));
		const char *gr = json_string_value(json_object_get(x, "group"));
		const json_t *gspec = NULL, *cspec = NULL, *g;
		size_t k, nr;
		bool known = false;

		json_array_foreach(groups, k, g)
			if (strcmp(json_string_value(json_object_get(g, "scope")), cl) == 0 &&
			    strcmp(json_string_value(json_object_get(g, "name")), gr) == 0)
				gspec = json_object_get(g, "spec");
		json_array_foreach(clusters, k, g)
			if (strcmp(json_string_value(json_object_get(g, "name")), cl) == 0)
				cspec = json_object_get(g, "spec");
		if (gspec) {
			nr = rules_for(cspec, cl, gspec, gr, rules);
			for (k = 0; k < nr; k++)
				known = known || strcmp(rules[k].name, rule) == 0;
		}
		if (!known) {
			struct alert_rule r;
			memset(&r, 0, sizeof(r));
			snprintf(r.name, sizeof(r.name), "%s", rule);
			snprintf(r.severity, sizeof(r.severity), "%s",
				 json_string_value(json_object_get(x, "severity")));
			step_inst(s, &r, cl, gr, json_string_value(json_object_get(x, "key")), x, COND_FALSE,
				  NULL, "", json_is_true(json_object_get(x, "silenced")), now);
		}
	}
	free(rules);
}

/* The activities since the last pass (on the first, none: only the
 * newest id is noted). */
static json_t *
activities_since(struct alerter *al, struct herr *err)
{
	json_t *rows = NULL, *last;

	if (activity_list(al->s->store, NULL, NULL, al->act_after, al->act_known ? 5000 : 1, &rows,
			  err) < 0)
		return NULL;
	last = json_array_get(rows, json_array_size(rows) - 1);
	if (last)
		al->act_after = json_integer_value(json_object_get(last, "id"));
	if (!al->act_known) {
		al->act_known = true;
		json_array_clear(rows);
	}
	return rows;
}

static void
eval_all(struct alerter *al)
{
	struct server *s = al->s;
	struct herr err = HERR_INIT;
	struct host_query q = { .state = -1, .live = true };
	json_t *groups = NULL, *clusters = NULL, *states = NULL, *silences = NULL, *acts = NULL, *g, *c;
	json_t *templates = NULL, *lbviews = lbsync_views();
	struct host *hosts = NULL;
	size_t nh = 0, i, k;
	int64_t now = now_ms();

	if (res_all(s->store, &kind_group, NULL, &groups, &err) < 0 ||
	    res_all(s->store, &kind_cluster, NULL, &clusters, &err) < 0 ||
	    alert_state_list(s->store, NULL, NULL, NULL, &states, &err) < 0 ||
	    alert_silence_list(s->store, now, &silences, &err) < 0 ||
	    host_list(s->store, &q, &hosts, &nh, &err) < 0 ||
	    (acts = activities_since(al, &err)) == NULL ||
	    res_all(s->store, &kind_template, NULL, &templates, &err) < 0) {
		log_warn("alert: not evaluated: %s", err.msg);
		goto out;
	}
	lf_note(al, acts, groups, templates);
	json_array_foreach(groups, i, g) {
		const char *cl = json_string_value(json_object_get(g, "scope"));
		const json_t *cspec = NULL;

		json_array_foreach(clusters, k, c)
			if (strcmp(json_string_value(json_object_get(c, "name")), cl) == 0)
				cspec = json_object_get(c, "spec");
		eval_group(al, cspec, cl, json_object_get(g, "spec"),
			   json_string_value(json_object_get(g, "name")), hosts, nh, states, silences,
			   acts, lbviews, now);
	}
	eval_orphans(s, states, groups, clusters, now);
out:
	free(hosts);
	json_decref(groups);
	json_decref(clusters);
	json_decref(states);
	json_decref(silences);
	json_decref(acts);
	json_decref(templates);
	json_decref(lbviews);
}

json_t *
alert_rules_effective(struct server *s, struct herr *err)
{
	struct alert_rule *rules;
	json_t *groups = NULL, *clusters = NULL, *out, *g, *c;
	size_t i, k;

	if (res_all(s->store, &kind_group, NULL, &groups, err) < 0 ||
	    res_all(s->store, &kind_cluster, NULL, &clusters, err) < 0) {
		json_decref(groups);
		return NULL;
	}
	rules = xcalloc(ALERT_MAX_RULES, sizeof(*rules));
	out = json_array();
	json_array_foreach(groups, i, g) {
		const char *cl = json_string_value(json_object_get(g, "scope"));
		const char *gr = json_string_value(json_object_get(g, "name"));
		const json_t *cspec = NULL;
		size_t nr;

		json_array_foreach(clusters, k, c)
			if (strcmp(json_string_value(json_object_get(c, "name")), cl) == 0)
				cspec = json_object_get(c, "spec");
		nr = rules_for(cspec, cl, json_object_get(g, "spec"), gr, rules);
		for (k = 0; k < nr; k++) {
			const struct alert_rule *r = &rules[k];
			char w[EXPR_TEXT_MAX] = "";
			json_t *o;

			if (r->has_expr)
				expr_format(&r->cond, w, sizeof(w));
			o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:s,s:I,s:I,s:s,s:s,s:o}", "name", r->name,
				      "cluster", cl, "group", gr, "builtin", r->builtin, "enabled",
				      r->enabled, "severity", r->severity, "for_ms", (json_int_t)r->for_ms,
				      "repeat_ms", (json_int_t)r->repeat_ms, "summary", r->summary,
				      "origin", r->origin, "labels",
				      r->labels ? json_deep_copy(r->labels) : json_object());
			if (*w)
				json_object_set_new(o, "when", json_string(w));
			json_array_append_new(out, o);
		}
	}
	free(rules);
	json_decref(groups);
	json_decref(clusters);
	return out;
}

static void *
alert_main(void *arg)
{
	struct alerter *al = arg;
	struct server *s = al->s;
	int64_t tick = s->push_interval_ms < 1000 ? s->push_interval_ms : 1000;

	while (!s->stopping) {
		int64_t next = mono_ms() + tick;

		if (leader_pass(s, NULL))   /* only the leader evaluates */
			eval_all(al);
		while (!s->stopping && mono_ms() < next)
			sleep_ms(100);
	}
	return NULL;
}

int
alert_start(struct server *s, struct herr *err)
{
	struct alerter *al = xcalloc(1, sizeof(*al));

	al->s = s;
	g_al = al;
	if (pthread_create(&al->thread, NULL, alert_main, al) != 0)
		return herr_set(err, -errno, "cannot start the alert evaluator thread");
	al->started = true;
	return 0;
}

void
alert_stop(struct server *s)
{
	struct alerter *al = g_al;

	if (al == NULL)
		return;
	if (al->started)
		pthread_join(al->thread, NULL);
	g_al = NULL;
	free(al);
}
