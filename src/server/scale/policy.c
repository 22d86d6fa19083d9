/* policy.c - parsing autoscaling policies and the pure decision for one
 * policy and for a group's set of policies; see scale.h. Guards, in order:
 * missing/stale data never acts toward scale-in; a manual scale pauses
 * policies for their cooldown; launching hosts count as capacity; separate
 * cooldowns for out and in (and no scale-in soon after a scale-out); a cap
 * of actions per hour; min and max always hold. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scale.h"
#include "util.h"

int
policy_parse(const char *name, const json_t *spec, struct policy *p, struct herr *err)
{
	json_t *when = json_object_get(spec, "when"), *target = json_object_get(spec, "target");
	json_t *sched = json_object_get(spec, "schedule"), *adj = json_object_get(spec, "adjust");
	json_t *set = json_object_get(spec, "set");
	const char *mode = json_string_value(json_object_get(spec, "mode"));
	const char *bt = json_string_value(json_object_get(spec, "before_terminate"));
	const char *tz = json_string_value(json_object_get(spec, "timezone"));

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->set_min = p->set_desired = p->set_max = -1;
	p->cooldown_ms = json_duration_ms(spec, "cooldown", 60000);
	p->for_ms = json_duration_ms(spec, "for", 0);
	p->drain_timeout_ms = json_duration_ms(spec, "drain_timeout", 5 * 60000);
	p->shadow = mode && strcmp(mode, "shadow") == 0;
	if (bt)
		snprintf(p->before_terminate, sizeof(p->before_terminate), "%s", bt);
	if (when) {
		p->kind = POL_STEP;
		if (expr_parse(json_string_value(when), &p->cond, err) < 0)
			return herr_field(err, HERR_INVALID, "when", "%s", err->msg);
		if (json_is_integer(adj)) {
			p->adjust.kind = ADJ_DELTA;
			p->adjust.n = json_integer_value(adj);
		} else if (adjust_parse(json_string_value(adj), &p->adjust, err) < 0) {
			return herr_field(err, HERR_INVALID, "adjust", "%s", err->msg);
		}
	} else if (target) {
		p->kind = POL_TARGET;
		if (expr_parse(json_string_value(target), &p->cond, err) < 0)
			return herr_field(err, HERR_INVALID, "target", "%s", err->msg);
		p->tolerance_pct = json_is_integer(json_object_get(spec, "tolerance"))
			? (int)json_integer_value(json_object_get(spec, "tolerance")) : 10;
		p->scale_in_cooldown_ms = json_duration_ms(spec, "scale_in_cooldown", 3 * p->cooldown_ms);
	} else if (sched) {
		p->kind = POL_SCHEDULE;
		if (cron_parse(json_string_value(sched), &p->cron, err) < 0)
			return herr_field(err, HERR_INVALID, "schedule", "%s", err->msg);
		snprintf(p->tz, sizeof(p->tz), "%s", tz ? tz : "UTC");
		if (json_is_integer(json_object_get(set, "min")))
			p->set_min = (int)json_integer_value(json_object_get(set, "min"));
		if (json_is_integer(json_object_get(set, "desired")))
			p->set_desired = (int)json_integer_value(json_object_get(set, "desired"));
		if (json_is_integer(json_object_get(set, "max")))
			p->set_max = (int)json_integer_value(json_object_get(set, "max"));
	} else {
		return herr_field(err, HERR_INVALID, "when", "a policy needs when, target or schedule");
	}
	return 0;
}

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
say(struct decision *d, enum decision_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
say(struct decision *d, enum decision_kind k, const char *fmt, ...)
{
	va_list ap;

	d->kind = k;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

static const char *
hhmmss(int64_t ms, char *out, size_t n)
{
	char t[40];

	fmt_time(ms, t, sizeof(t));
	snprintf(out, n, "%.8s", t + 11);
	return out;
}

/* Guards common to every metric policy; true if it may act. */
static bool
guards(const struct policy *p, const struct group_view *g, bool out, int64_t in_cooldown_ms,
       int64_t now, struct decision *d)
{
	char t[16];
	const char *dir = out ? "scale out" : "scale in";

	if (p->shadow) {
		say(d, DEC_BLOCKED, "shadow mode: would %s to %d", dir, d->desired);
		return false;
	}
	if (g->manual_ms && now < g->manual_ms + p->cooldown_ms) {
		say(d, DEC_BLOCKED, "paused after a manual scale until %s",
		    hhmmss(g->manual_ms + p->cooldown_ms, t, sizeof(t)));
		return false;
	}
	if (g->pending > 0) {
		say(d, DEC_BLOCKED, "%d host(s) still launching or warming up count as capacity",
		    g->pending);
		return false;
	}
	if (out && g->last_out_ms && now < g->last_out_ms + p->cooldown_ms) {
		say(d, DEC_BLOCKED, "cooldown until %s", hhmmss(g->last_out_ms + p->cooldown_ms, t, sizeof(t)));
		return false;
	}
	if (!out) {
		int64_t until = 0;
		if (g->last_in_ms && now < g->last_in_ms + in_cooldown_ms)
			until = g->last_in_ms + in_cooldown_ms;
		if (g->last_out_ms && now < g->last_out_ms + in_cooldown_ms &&
		    g->last_out_ms + in_cooldown_ms > until)
			until = g->last_out_ms + in_cooldown_ms;
		if (until) {
			say(d, DEC_BLOCKED, "cooldown until %s", hhmmss(until, t, sizeof(t)));
			return false;
		}
	}
	if (g->max_actions_per_hour > 0 && g->actions_last_hour >= g->max_actions_per_hour) {
		say(d, DEC_BLOCKED, "%d actions in the last hour (max_actions_per_hour %d)",
		    g->actions_last_hour, g->max_actions_per_hour);
		return false;
	}
	return true;
}

static void
decide_step(const struct policy *p, const struct group_view *g, const struct agg_point *pts,
	    size_t n, int64_t step_ms, int64_t stale_ms, int64_t now, struct decision *d)
{
	const struct agg_point *last = n ? &pts[n - 1] : NULL;
	char cond[EXPR_TEXT_MAX], t[16];
	bool in = p->adjust.kind == ADJ_DELTA ? p->adjust.n < 0
		: p->adjust.kind == ADJ_PERCENT ? p->adjust.n < 0 : p->adjust.n < g->desired;
	int64_t since = 0;
	size_t i;

	expr_format(&p->cond, cond, sizeof(cond));
	if (last == NULL || last->nseries == 0 || now - last->ts_ms > stale_ms) {
		say(d, DEC_NODATA, "no recent data for %s (newest %s): not acting", p->cond.metric,
		    last && last->nseries ? hhmmss(last->ts_ms, t, sizeof(t)) : "none");
		return;
	}
	d->value = last->value;
	d->nseries = last->nseries;
	/* The condition must hold at every step of the last `for`, with data. */
	for (i = n; i-- > 0;) {
		if (pts[i].nseries == 0 || !expr_holds(&p->cond, pts[i].value))
			break;
		since = pts[i].ts_ms;
	}
	d->holding_since_ms = since;
	if (since == 0) {
		say(d, DEC_NONE, "%s is %.4g: condition %s does not hold", p->cond.metric, last->value,
		    cond);
		return;
	}
	if (last->ts_ms - since + step_ms < p->for_ms && p->for_ms > 0) {
		say(d, DEC_NONE, "%s holds for %llds of %llds", cond,
		    (long long)((last->ts_ms - since + step_ms) / 1000), (long long)(p->for_ms / 1000));
		return;
	}
	/* Scale-in only on complete data: a host that stopped reporting may be
	 * the busy one (unknown is not absent). */
	if (in) {
		for (i = n; i-- > 0 && pts[i].ts_ms >= since;) {
			if (pts[i].nseries < g->ready) {
				say(d, DEC_NODATA,
				    "only %d of %d hosts reported %s at %s: not scaling in on missing data",
				    pts[i].nseries, g->ready, p->cond.metric, hhmmss(pts[i].ts_ms, t, sizeof(t)));
				return;
			}
		}
	}
	d->desired = clamp((int)adjust_apply(&p->adjust, g->desired), g->min, g->max);
	if (d->desired == g->desired) {
		say(d, DEC_BLOCKED, "%s (%s = %.4g) but the group is at its %s (%d)", cond,
		    p->cond.metric, last->value, in ? "min" : "max", g->desired);
		return;
	}
	in = d->desired < g->desired;
	if (!guards(p, g, !in, p->cooldown_ms, now, d))
		return;
	say(d, DEC_ACT, "%s: %s(%s) = %.4g over %d host(s) for %llds: desired %d -> %d", cond,
	    expr_agg_name(p->cond.agg), p->cond.metric, last->value, last->nseries,
	    (long long)((last->ts_ms - since + step_ms) / 1000), g->desired, d->desired);
}

static void
decide_target(const struct policy *p, const struct group_view *g, const struct agg_point *pts,
	      size_t n, int64_t stale_ms, int64_t now, struct decision *d)
{
	const struct agg_point *last = n ? &pts[n - 1] : NULL;
	double ratio, total;
	char t[16];
	int want;

	if (last == NULL || last->nseries == 0 || now - last->ts_ms > stale_ms) {
		say(d, DEC_NODATA, "no recent data for %s (newest %s): not acting", p->cond.metric,
		    last && last->nseries ? hhmmss(last->ts_ms, t, sizeof(t)) : "none");
		return;
	}
	d->value = last->value;
	d->nseries = last->nseries;
	ratio = last->value / p->cond.value;
	if (fabs(ratio - 1.0) * 100.0 <= p->tolerance_pct) {
		say(d, DEC_NONE, "%s(%s) = %.4g is within %d%% of the target %.4g",
		    expr_agg_name(p->cond.agg), p->cond.metric, last->value, p->tolerance_pct,
		    p->cond.value);
		return;
	}
	/* The load the group carries, spread so each host is at the target. */
	total = p->cond.agg == AGG_AVG ? last->value * last->nseries : last->value;
	want = (int)ceil(total / p->cond.value - 1e-9);
	d->desired = clamp(want, g->min, g->max);
	if (d->desired < g->desired && last->nseries < g->ready) {
		say(d, DEC_NODATA, "only %d of %d hosts reported %s: not scaling in on missing data",
		    last->nseries, g->ready, p->cond.metric);
		return;
	}
	if (d->desired == g->desired) {
		say(d, DEC_NONE, "%s(%s) = %.4g wants %d host(s); the group has %d (min %d, max %d)",
		    expr_agg_name(p->cond.agg), p->cond.metric, last->value, want, g->desired, g->min,
		    g->max);
		return;
	}
	if (!guards(p, g, d->desired > g->desired, p->scale_in_cooldown_ms, now, d))
		return;
	say(d, DEC_ACT, "target %s(%s) = %.4g: %.4g now, total %.4g needs %d host(s): desired %d -> %d",
	    expr_agg_name(p->cond.agg), p->cond.metric, p->cond.value, last->value, total, want,
	    g->desired, d->desired);
}

static void
decide_schedule(const struct policy *p, const struct group_view *g, int64_t prev_eval_ms,
		int64_t now, struct decision *d)
{
	int64_t next = 0;
	struct herr err = HERR_INIT;
	int lo, hi;
	char t[40];

	if (prev_eval_ms <= 0 || cron_next(&p->cron, prev_eval_ms, p->tz, &next, &err) < 0 ||
	    next > now) {
		if (next > 0)
			say(d, DEC_NONE, "next at %s (%s)", fmt_time(next, t, sizeof(t)), p->tz);
		else
			say(d, DEC_NONE, "%s", err.code ? err.msg : "not due");
		return;
	}
	lo = p->set_min >= 0 ? p->set_min : g->min;
	hi = p->set_max >= 0 ? p->set_max : g->max;
	if (lo > hi)
		hi = lo;
	d->set_min = p->set_min;
	d->set_max = p->set_max;
	d->desired = clamp(p->set_desired >= 0 ? p->set_desired : g->desired, lo, hi);
	if (p->shadow) {
		say(d, DEC_BLOCKED, "shadow mode: schedule due at %s would set min %d desired %d max %d",
		    fmt_time(next, t, sizeof(t)), lo, d->desired, hi);
		return;
	}
	say(d, DEC_ACT, "schedule due at %s (%s): min %d, desired %d, max %d",
	    fmt_time(next, t, sizeof(t)), p->tz, lo, d->desired, hi);
}

void
policy_decide(const struct policy *p, const struct group_view *g, const struct agg_point *pts,
	      size_t npts, int64_t step_ms, int64_t stale_ms, int64_t prev_eval_ms, int64_t now_ms,
	      struct decision *out)
{
	memset(out, 0, sizeof(*out));
	out->value = NAN;
	out->desired = g->desired;
	out->set_min = out->set_max = -1;
	switch (p->kind) {
	case POL_STEP:
		decide_step(p, g, pts, npts, step_ms, stale_ms, now_ms, out);
		break;
	case POL_TARGET:
		decide_target(p, g, pts, npts, stale_ms, now_ms, out);
		break;
	case POL_SCHEDULE:
		decide_schedule(p, g, prev_eval_ms, now_ms, out);
		break;
	}
}

int
policy_resolve(const struct decision *d, size_t n, int current)
{
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		if (d[i].kind != DEC_ACT)
			continue;
		if (best < 0 || d[i].desired > d[best].desired)
			best = (int)i;
	}
	(void)current;
	return best;
}
