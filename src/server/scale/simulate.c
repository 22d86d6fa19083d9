/* simulate.c - `herd policy simulate`: replays the stored metrics of a
 * group through the autoscaler's own path (view.c: the group view, the
 * evaluation, the clocks), one evaluation per push interval of the window,
 * with the group as it really was at each moment (its hosts' created,
 * ready, left and terminated times; its desired size and cooldown clocks as
 * the replayed policy and the recorded changes of others left them). A
 * policy can be tried on yesterday's data before it acts, or a recorded
 * run checked. This file only loads the history and shapes the answer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/metrics.h"
#include "model/activity-read.h"
#include "model/group.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/res.h"
#include "scale.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define SIM_STEP_MS (s->push_interval_ms)   /* as the autoscaler */
#define SIM_STALE_MS (3 * s->push_interval_ms)
#define SIM_LAUNCH_MS 10000   /* a simulated new host's launch, until ready */
#define SIM_MAX_SPAN_MS (7LL * 86400 * 1000)

static const char *const dec_names[] = { "none", "act", "blocked", "no_data" };

struct sim_ctx {
	struct scale_tsdb_ctx tsdb;   /* first: what scale_tsdb_agg reads */
	json_t *timeline;
};

static void
sim_emit(void *ctx, int64_t t, const struct group_view *g, const struct decision *d)
{
	struct sim_ctx *c = ctx;
	char ts[40];
	json_t *e = json_pack("{s:s,s:s,s:i,s:i,s:s,s:i}", "time", fmt_time(t, ts, sizeof(ts)),
			      "decision", dec_names[d->kind], "desired", g->desired, "proposed",
			      d->desired, "reason", d->reason, "nseries", d->nseries);

	if (isfinite(d->value))
		json_object_set_new(e, "value", json_real(d->value));
	else if (!isnan(d->value))
		json_object_set_new(e, "value", json_string(d->value > 0 ? "inf" : "-inf"));
	json_array_append_new(c->timeline, e);
}

/* An integer of an activity's inputs, -1 when absent. */
static int
input_int(const json_t *in, const char *a, const char *b)
{
	return json_object_get(in, a) ? scale_spec_int(in, a) : scale_spec_int(in, b);
}

int
policy_simulate(struct server *s, const char *cluster, const char *group, const char *name,
		const json_t *pspec, int64_t since_ms, int64_t until_ms, json_t **out,
		struct herr *err)
{
	struct policy p;
	struct group g;
	struct scale_replay r;
	struct sim_ctx c = { { s, cluster, group }, json_array() };
	struct host_query q = { .cluster = cluster, .grp = group, .state = -1 };
	json_t *acts = NULL, *actual = json_array(), *a;
	struct host *hosts = NULL;
	size_t nh = 0;
	struct scale_host *hv = NULL;
	struct scale_change *ch = NULL;
	int64_t *before = NULL;
	size_t nch = 0, nbefore = 0, i;
	bool started = false;
	char ts[40], mine[80];
	int rc;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	if (until_ms - since_ms > SIM_MAX_SPAN_MS || until_ms <= since_ms) {
		rc = herr_field(err, HERR_INVALID, "since", "the window must be between 1s and 7d");
		goto out;
	}
	if ((rc = policy_parse(name, pspec, &p, err)) < 0)
		goto out;
	if ((rc = group_get(s->store, cluster, group, &g, err)) < 0)
		goto out;
	r.warmup_ms = g.warmup_ms;
	r.view.min = g.min;           /* -1 when absent, as the autoscaler's view */
	r.view.max = g.max;
	r.view.max_actions_per_hour = g.max_actions_per_hour;   /* absent: 0, no cap */
	r.view.desired = g.desired;
	if ((rc = host_list(s->store, &q, &hosts, &nh, err)) < 0 ||
	    (rc = activity_list_scales(s->store, cluster, group, 0, &acts, err)) < 0)
		goto out;
	hv = xcalloc(nh + 1, sizeof(*hv));
	for (i = 0; i < nh; i++)
		scale_host_from_host(&hosts[i], &hv[i]);
	ch = xcalloc(json_array_size(acts) + 1, sizeof(*ch));
	before = xcalloc(json_array_size(acts) + 1, sizeof(*before));
	snprintf(mine, sizeof(mine), "policy:%s", name);
	json_array_foreach(acts, i, a) {
		json_t *in = json_loads(json_string_value(json_object_get(a, "inputs")), 0, NULL);
		const char *cause = json_string_value(json_object_get(a, "cause"));
		struct scale_change x = { 0 };

		x.ts_ms = json_integer_value(json_object_get(a, "ts_ms"));
		x.from = input_int(in, "desired", "from");
		x.to = input_int(in, "to", "proposed");
		x.manual = cause && strcmp(cause, "manual") == 0;
		x.by_policy = cause && strncmp(cause, "policy:", 7) == 0;
		x.mine = cause && strcmp(cause, mine) == 0;
		if (x.ts_ms < since_ms) {
			/* the clocks at since, as the autoscaler's group_state had them */
			if (x.manual)
				r.view.manual_ms = x.ts_ms;
			if (x.by_policy && x.from >= 0 && x.to >= 0 && x.from != x.to) {
				scale_view_acted(&r.view, x.from, x.to, x.ts_ms);
				before[nbefore++] = x.ts_ms;
			}
		} else {
			/* the desired size at since: the first change after it
			 * knows where it started from; none: the current one */
			if (!started && x.from >= 0)
				r.view.desired = x.from;
			started = true;
			if (x.mine && x.ts_ms <= until_ms)
				json_array_append_new(actual, json_pack("{s:s,s:s,s:O?,s:O?,s:s}", "time",
					fmt_time(x.ts_ms, ts, sizeof(ts)),
					"kind", json_string_value(json_object_get(a, "kind")),
					"from", json_object_get(in, "desired"), "to", json_object_get(in, "proposed"),
					"reason", json_string_value(json_object_get(a, "reason"))));
			ch[nch++] = x;
		}
		json_decref(in);
	}
	r.p = &p;
	r.hosts = hv;
	r.nhosts = nh;
	r.changes = ch;
	r.nchanges = nch;
	r.policy_acts_ms = before;
	r.npolicy_acts = nbefore;
	r.since_ms = since_ms;
	r.until_ms = until_ms;
	r.step_ms = SIM_STEP_MS;
	r.stale_ms = SIM_STALE_MS;
	r.launch_ms = SIM_LAUNCH_MS;
	r.agg = scale_tsdb_agg;
	r.agg_ctx = &c.tsdb;
	r.emit = sim_emit;
	r.emit_ctx = &c;
	if ((rc = scale_replay_run(&r, err)) < 0)
		goto out;
	*out = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "policy", name, "group", group, "since",
			 fmt_time(since_ms, ts, sizeof(ts)), "until",
			 fmt_time(until_ms, (char[40]){ 0 }, 40), "timeline", c.timeline, "actual", actual);
	rc = 0;
out:
	free(hv);
	free(ch);
	free(before);
	free(hosts);
	json_decref(acts);
	json_decref(c.timeline);
	json_decref(actual);
	return rc;
}
