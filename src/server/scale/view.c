/* view.c - the group view and the evaluation path shared by the autoscaler
 * (autoscale.c, on the live group) and `herd policy simulate` (simulate.c,
 * on recorded history): which hosts count as ready or pending, which
 * aggregate steps are complete enough to decide on, how an action moves
 * the cooldown clocks, and the replay loop itself. No I/O and no clock:
 * the store and the TSDB come in as data and a callback, time as an
 * argument, so a unit test replays a recorded day through exactly this. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/host.h"
#include "scale.h"
#include "xalloc.h"

#define HOUR_MS 3600000LL

void
scale_view_hosts(struct group_view *g, const struct scale_host *h, size_t n, int64_t warmup_ms,
		 int64_t now_ms, const char **ex, size_t *nex, size_t maxex)
{
	g->ready = g->pending = 0;
	*nex = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i].created_ms > now_ms || (h[i].gone_ms && h[i].gone_ms <= now_ms))
			continue;   /* not there: nothing of it to leave out */
		if (h[i].left_ms && h[i].left_ms <= now_ms) {
			/* failed, unhealthy, draining: neither capacity nor data */
		} else if (h[i].ready_ms && h[i].ready_ms <= now_ms &&
			   now_ms - h[i].ready_ms >= warmup_ms) {
			g->ready++;
			continue;
		} else {
			g->pending++;   /* launching, or ready and warming up */
		}
		if (*nex < maxex)
			ex[(*nex)++] = h[i].name;
	}
}

/* The one rule of scale_host_from_row() and scale_host_from_host(): name,
 * state and times in, a scale_host out. */
static void
scale_host_fill(struct scale_host *h, const char *name, const char *st, int64_t created_ms,
		int64_t ready_ms, int64_t terminated_ms, int64_t updated_ms)
{
	static const char *const alive[] = { "launching", "booting", "initializing", "ready" };
	bool live = false;

	memset(h, 0, sizeof(*h));
	h->name = name;
	h->created_ms = created_ms;
	h->ready_ms = ready_ms;
	if (st == NULL)
		st = "";
	for (size_t i = 0; i < sizeof(alive) / sizeof(alive[0]); i++)
		live = live || strcmp(st, alive[i]) == 0;
	if (live && strcmp(st, "ready") != 0)
		h->ready_ms = 0;   /* launching again: not capacity with data */
	else if (strcmp(st, "ready") == 0 && h->ready_ms <= 0)
		h->ready_ms = 1;   /* ready, since when unknown: long ago */
	if (strcmp(st, "terminated") == 0) {
		h->gone_ms = terminated_ms;
		if (h->gone_ms <= 0)
			h->gone_ms = 1;   /* gone, when unknown: long ago */
	} else if (!live) {
		h->left_ms = updated_ms;
		if (h->left_ms <= 0)
			h->left_ms = 1;
	}
}

void
scale_host_from_row(const json_t *row, struct scale_host *h)
{
	scale_host_fill(h, json_string_value(json_object_get(row, "name")),
			json_string_value(json_object_get(row, "state")),
			json_integer_value(json_object_get(row, "created_ms")),
			json_integer_value(json_object_get(row, "ready_ms")),
			json_integer_value(json_object_get(row, "terminated_ms")),
			json_integer_value(json_object_get(row, "updated_ms")));
}

void
scale_host_from_host(const struct host *hr, struct scale_host *h)
{
	scale_host_fill(h, hr->name, hstate_name(hr->state), hr->created_ms, hr->ready_ms,
			hr->terminated_ms, hr->updated_ms);
}

void
scale_view_acted(struct group_view *g, int from, int to, int64_t now_ms)
{
	if (to > from)
		g->last_out_ms = now_ms;
	else if (to < from)
		g->last_in_ms = now_ms;
}

void
scale_reason_class(const struct decision *d, char *out, size_t n)
{
	size_t k = 0;

	k += (size_t)snprintf(out, n, "%d:", d->kind);
	for (const char *c = d->reason; *c && k + 1 < n; c++)
		if (!(*c >= '0' && *c <= '9') && *c != '.')
			out[k++] = *c;
	out[k < n ? k : n - 1] = '\0';
}

int
scale_eval(const struct policy *p, const struct group_view *g, const char *const *ex, size_t nex,
	   scale_agg_fn agg, void *ctx, int64_t step_ms, int64_t stale_ms, int64_t prev_eval_ms,
	   int64_t now_ms, struct decision *d, char *window, size_t wn, struct herr *err)
{
	struct agg_point *pts = NULL;
	int64_t span = p->for_ms + 2 * step_ms, upto = now_ms;
	size_t n = 0;
	int rc = 0;

	if (window)
		window[0] = '\0';
	if (p->kind != POL_SCHEDULE) {
		if (span < stale_ms)
			span = stale_ms;
		if (window)
			snprintf(window, wn, "%llds, step %llds", (long long)(span / 1000),
				 (long long)(step_ms / 1000));
		/* The step now falls in (open until its end), for a scale-out
		 * that more samples cannot make false: a crossing sample in it
		 * (a host pushing between the interval's multiples, a late
		 * retry) is decided on at once, not at the step's end. Its
		 * point counts up to now, not to its end (`for` windows).
		 * Never at a step's end (no reading past now: simulate). */
		if (scale_partial_policy(p, g) && now_ms % step_ms != 0)
			upto = now_ms - now_ms % step_ms + step_ms;
		if ((rc = agg(ctx, p, upto, span, step_ms, ex, nex, &pts, &n, err)) < 0) {
			free(pts);
			pts = NULL;
			n = 0;
		}
		if (upto != now_ms && n > 0 && pts[n - 1].ts_ms == upto) {
			if (pts[n - 1].nseries > 0 && scale_partial_ok(p, g, pts[n - 1].value))
				pts[n - 1].ts_ms = now_ms;
			else
				n--;
		}
		/* The newest step fills as the hosts' pushes of that round arrive
		 * (they push at the same wall-clock instants): until every ready
		 * host has reported or SCALE_ROUND_GRACE_MS has passed, it is not
		 * evaluated, so one host's sample is never taken for the group's,
		 * unless the partial step can only make a scale-out truer. */
		if (n > 0 && pts[n - 1].nseries < g->ready &&
		    now_ms < pts[n - 1].ts_ms + SCALE_ROUND_GRACE_MS &&
		    !scale_partial_ok(p, g, pts[n - 1].value))
			n--;
		if (n > 0 && pts[n - 1].nseries == 0 && pts[n - 1].ts_ms > now_ms - step_ms)
			n--;
	}
	policy_decide(p, g, pts, n, step_ms, stale_ms, prev_eval_ms, now_ms, d);
	free(pts);
	return rc;
}

/* Policy actions in (now - 1 h, now]: the max_actions_per_hour count. */
static int
actions_since(const int64_t *at, size_t n, int64_t now_ms)
{
	int k = 0;

	for (size_t i = 0; i < n; i++)
		if (at[i] > now_ms - HOUR_MS && at[i] <= now_ms)
			k++;
	return k;
}

int
scale_replay_run(const struct scale_replay *r, struct herr *err)
{
	struct group_view v = r->view;
	const char **ex = xcalloc(r->nhosts + 1, sizeof(*ex));
	size_t nacts = 0, cap = r->npolicy_acts + 16, ci = 0, nex;
	int64_t *acts = xcalloc(cap, sizeof(*acts));
	int64_t t, prev_eval = 0;
	int desired = v.desired, rc = 0;
	char last_cls[400] = "";

	/* only the last hour before since can still count */
	for (size_t i = 0; i < r->npolicy_acts; i++)
		if (r->policy_acts_ms[i] > r->since_ms - HOUR_MS)
			acts[nacts++] = r->policy_acts_ms[i];
	for (t = r->since_ms - r->since_ms % r->step_ms + r->step_ms; t <= r->until_ms;
	     t += r->step_ms) {
		struct decision d;
		char cls[400];

		/* recorded changes not made by this policy happen in the replay too */
		for (; ci < r->nchanges && r->changes[ci].ts_ms <= t; ci++) {
			const struct scale_change *c = &r->changes[ci];
			if (c->mine)
				continue;
			if (c->manual)
				v.manual_ms = c->ts_ms;
			if (c->by_policy && c->from >= 0 && c->to >= 0 && c->from != c->to) {
				scale_view_acted(&v, c->from, c->to, c->ts_ms);
				if (nacts == cap)
					acts = xrealloc(acts, (cap *= 2) * sizeof(*acts));
				acts[nacts++] = c->ts_ms;
			}
			if (c->to >= 0)
				desired = c->to;
		}
		v.desired = desired;
		scale_view_hosts(&v, r->hosts, r->nhosts, r->warmup_ms, t, ex, &nex, r->nhosts);
		/* Hosts the replayed policy added that did not really exist: they
		 * launch for launch_ms (counting as capacity), then count as
		 * ready hosts without data. */
		if (desired > v.ready + v.pending && v.last_out_ms) {
			if (t - v.last_out_ms < r->launch_ms)
				v.pending += desired - v.ready - v.pending;
			else
				v.ready += desired - v.ready - v.pending;
		}
		v.actions_last_hour = actions_since(acts, nacts, t);
		if ((rc = scale_eval(r->p, &v, ex, nex, r->agg, r->agg_ctx, r->step_ms, r->stale_ms,
				     prev_eval ? prev_eval : t, t, &d, NULL, 0, err)) < 0)
			break;
		prev_eval = t;
		scale_reason_class(&d, cls, sizeof(cls));
		if (d.kind == DEC_ACT || strcmp(cls, last_cls) != 0) {
			r->emit(r->emit_ctx, t, &v, &d);
			snprintf(last_cls, sizeof(last_cls), "%s", cls);
		}
		if (d.kind == DEC_ACT) {
			if (d.desired != desired) {
				if (nacts == cap)
					acts = xrealloc(acts, (cap *= 2) * sizeof(*acts));
				acts[nacts++] = t;
			}
			scale_view_acted(&v, desired, d.desired, t);
			if (d.set_min >= 0)
				v.min = d.set_min;
			if (d.set_max >= 0)
				v.max = d.set_max;
			desired = d.desired;
		}
	}
	free(ex);
	free(acts);
	return rc;
}
