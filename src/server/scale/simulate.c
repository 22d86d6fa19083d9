/* simulate.c - `herd policy simulate` and `herd policy explain`: replays the
 * stored metrics of a group through the same policy_decide() that acts, one
 * evaluation per second of the window, with the group as it really was at
 * each moment (its hosts' ready/terminated times, its desired size as the
 * simulated policy and the recorded manual changes left it). A policy can
 * be tried on yesterday's data before it acts, or a recorded run checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/metrics.h"
#include "scale.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define SIM_STEP_MS (s->push_interval_ms)   /* as the autoscaler */
#define SIM_STALE_MS (3 * s->push_interval_ms)
#define SIM_LAUNCH_MS 10000   /* a simulated new host's launch, until ready */
#define SIM_MAX_SPAN_MS (7LL * 86400 * 1000)

static const char *const dec_names[] = { "none", "act", "blocked", "no_data" };

/* The group's hosts at time t: ready (and warmed up) or pending; the others
 * are excluded from the aggregate. */
static void
hosts_at(json_t *hosts, int64_t t, int64_t warmup, struct group_view *g, const char **ex,
	 size_t *nex, size_t maxex)
{
	json_t *h;
	size_t i;

	g->ready = g->pending = 0;
	*nex = 0;
	json_array_foreach(hosts, i, h) {
		int64_t created = json_integer_value(json_object_get(h, "created_ms"));
		int64_t ready = json_integer_value(json_object_get(h, "ready_ms"));
		int64_t gone = json_integer_value(json_object_get(h, "terminated_ms"));
		const char *name = json_string_value(json_object_get(h, "name"));

		if (created > t || (gone && gone <= t))
			continue;
		if (ready && ready + warmup <= t) {
			g->ready++;
			continue;
		}
		if (!ready && strcmp(json_string_value(json_object_get(h, "state")), "failed") != 0)
			g->pending++;
		else if (ready)
			g->pending++;
		if (*nex < maxex)
			ex[(*nex)++] = name;
	}
}

int
policy_simulate(struct server *s, const char *cluster, const char *group, const char *name,
		const json_t *pspec, int64_t since_ms, int64_t until_ms, json_t **out,
		struct herr *err)
{
	struct policy p;
	struct res g;
	json_t *hosts = NULL, *acts = NULL, *timeline = json_array(), *actual = json_array(), *a;
	struct group_view v;
	const char *ex[512];
	size_t nex, ai = 0, i;
	int64_t warmup, t, prev_eval = 0;
	int desired;
	char last_cls[400] = "";
	char ts[40];
	int rc;

	*out = NULL;
	if (until_ms - since_ms > SIM_MAX_SPAN_MS || until_ms <= since_ms) {
		json_decref(timeline);
		json_decref(actual);
		return herr_field(err, HERR_INVALID, "since", "the window must be between 1s and 7d");
	}
	if ((rc = policy_parse(name, pspec, &p, err)) < 0)
		goto out;
	if ((rc = res_get(s->store, &kind_group, cluster, group, &g, err)) < 0)
		goto out;
	warmup = json_duration_ms(g.spec, "warmup", 0);
	memset(&v, 0, sizeof(v));
	v.min = scale_spec_int(g.spec, "min");
	v.max = scale_spec_int(g.spec, "max");
	v.max_actions_per_hour = scale_spec_int(g.spec, "max_actions_per_hour");
	if (v.max_actions_per_hour < 0)
		v.max_actions_per_hour = 0;
	desired = scale_spec_int(g.spec, "desired");
	res_release(&g);
	if ((rc = store_q(s->store, &hosts, NULL, err,
			  "SELECT name, state, created_ms, ready_ms, terminated_ms FROM hosts"
			  " WHERE cluster = ? AND grp = ?", "[ss]", cluster, group)) < 0 ||
	    (rc = store_q(s->store, &acts, NULL, err,
			  "SELECT ts_ms, kind, cause, reason, inputs FROM activities WHERE cluster = ?"
			  " AND grp = ? AND kind IN ('scale_out', 'scale_in', 'schedule') ORDER BY id",
			  "[ss]", cluster, group)) < 0)
		goto out;
	/* The desired size at `since`: the first recorded change after it
	 * knows where it started from; none means it is the current one. */
	json_array_foreach(acts, i, a) {
		json_t *in = json_loads(json_string_value(json_object_get(a, "inputs")), 0, NULL);
		int64_t at = json_integer_value(json_object_get(a, "ts_ms"));
		if (at >= since_ms) {
			json_t *from = json_object_get(in, "desired") ? json_object_get(in, "desired")
								    : json_object_get(in, "from");
			if (json_is_integer(from))
				desired = scale_spec_int(in, json_object_get(in, "desired") ? "desired" : "from");
			json_decref(in);
			break;
		}
		json_decref(in);
	}
	for (t = since_ms - since_ms % SIM_STEP_MS + SIM_STEP_MS; t <= until_ms; t += SIM_STEP_MS) {
		struct tsdb_agg_point *tp = NULL;
		struct agg_point *pts = NULL;
		struct decision d;
		size_t n = 0;
		int64_t span = p.for_ms + 2 * SIM_STEP_MS;
		char cls[400];

		/* recorded changes not made by this policy happen in the replay too */
		for (; ai < json_array_size(acts); ai++) {
			json_t *x = json_array_get(acts, ai), *in;
			const char *cause = json_string_value(json_object_get(x, "cause"));
			int64_t at = json_integer_value(json_object_get(x, "ts_ms"));
			char mine[80];
			if (at > t)
				break;
			snprintf(mine, sizeof(mine), "policy:%s", name);
			in = json_loads(json_string_value(json_object_get(x, "inputs")), 0, NULL);
			if (at >= since_ms && strcmp(cause, mine) == 0) {
				json_array_append_new(actual, json_pack("{s:s,s:s,s:O?,s:O?,s:s}", "time",
					fmt_time(at, ts, sizeof(ts)), "kind", json_string_value(json_object_get(x, "kind")),
					"from", json_object_get(in, "desired"), "to", json_object_get(in, "proposed"),
					"reason", json_string_value(json_object_get(x, "reason"))));
			} else if (at >= since_ms) {
				json_t *to = json_object_get(in, "to") ? json_object_get(in, "to")
								      : json_object_get(in, "proposed");
				if (json_is_integer(to))
					desired = scale_spec_int(in, json_object_get(in, "to") ? "to" : "proposed");
				if (strcmp(cause, "manual") == 0)
					v.manual_ms = at;
				if (strcmp(json_string_value(json_object_get(x, "kind")), "scale_out") == 0)
					v.last_out_ms = at;
				else if (strcmp(json_string_value(json_object_get(x, "kind")), "scale_in") == 0)
					v.last_in_ms = at;
			}
			json_decref(in);
		}
		v.desired = desired;
		hosts_at(hosts, t, warmup, &v, ex, &nex, sizeof(ex) / sizeof(ex[0]));
		/* Hosts the simulated policy added that did not really exist: they
		 * launch for SIM_LAUNCH_MS (counting as capacity), then count as
		 * ready hosts without data. */
		if (desired > v.ready + v.pending && v.last_out_ms) {
			if (t - v.last_out_ms < SIM_LAUNCH_MS)
				v.pending += desired - v.ready - v.pending;
			else
				v.ready += desired - v.ready - v.pending;
		}
		if (p.kind != POL_SCHEDULE) {
			if (span < SIM_STALE_MS)
				span = SIM_STALE_MS;
			herr_clear(err);
			if (metrics_group_agg(s, cluster, group, p.cond.metric, p.cond.agg, t, span,
					      SIM_STEP_MS, ex, nex, &tp, &n, err) < 0) {
				rc = err->code;
				goto out;
			}
			if (n > 0 && tp[n - 1].nseries == 0)
				n--;
			pts = xcalloc(n + 1, sizeof(*pts));
			for (i = 0; i < n; i++) {
				pts[i].ts_ms = tp[i].ts_ms;
				pts[i].value = tp[i].value;
				pts[i].nseries = tp[i].nseries;
			}
			free(tp);
		}
		policy_decide(&p, &v, pts, n, SIM_STEP_MS, SIM_STALE_MS, prev_eval ? prev_eval : t, t, &d);
		free(pts);
		prev_eval = t;
		snprintf(cls, sizeof(cls), "%d:%s", d.kind, d.kind == DEC_ACT ? "" : d.reason);
		for (char *c = cls; *c; c++)
			if ((*c >= '0' && *c <= '9') || *c == '.')
				*c = '#';
		if (d.kind == DEC_ACT || strcmp(cls, last_cls) != 0) {
			json_t *e = json_pack("{s:s,s:s,s:i,s:i,s:s,s:i}", "time", fmt_time(t, ts, sizeof(ts)),
					      "decision", dec_names[d.kind], "desired", v.desired,
					      "proposed", d.desired, "reason", d.reason, "nseries", d.nseries);
			if (isfinite(d.value))
				json_object_set_new(e, "value", json_real(d.value));
			else if (!isnan(d.value))
				json_object_set_new(e, "value", json_string(d.value > 0 ? "inf" : "-inf"));
			json_array_append_new(timeline, e);
			snprintf(last_cls, sizeof(last_cls), "%s", cls);
		}
		if (d.kind == DEC_ACT) {
			if (d.desired > desired)
				v.last_out_ms = t;
			else if (d.desired < desired)
				v.last_in_ms = t;
			if (d.set_min >= 0)
				v.min = d.set_min;
			if (d.set_max >= 0)
				v.max = d.set_max;
			desired = d.desired;
		}
	}
	*out = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "policy", name, "group", group, "since",
			 fmt_time(since_ms, ts, sizeof(ts)), "until",
			 fmt_time(until_ms, (char[40]){ 0 }, 40), "timeline", timeline, "actual", actual);
	rc = 0;
out:
	json_decref(hosts);
	json_decref(acts);
	json_decref(timeline);
	json_decref(actual);
	return rc;
}
