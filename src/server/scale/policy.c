/* policy.c - the pure decision for one autoscaling policy and for a group's
 * set of policies (parsing is model/policy.c); see scale.h. Guards, in order:
 * missing/stale data never acts toward scale-in; a manual scale pauses
 * policies for their cooldown; launching hosts count as capacity; separate
 * cooldowns for out and in (and no scale-in soon after a scale-out); a cap
 * of actions per hour; min and max always hold. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "scale.h"
#include "util.h"

static int
clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* A size computed in 64 bits (adjust_apply saturates there), clamped
 * before it becomes an int: (int) of 3e9 would be negative. */
static int
clamp_ll(long long v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : (int)v;
}

/* A size computed in double: +Inf and anything above hi saturate at hi.
 * NaN must be ruled out by the caller; here it would give lo. */
static int
clamp_d(double v, int lo, int hi)
{
	return v >= hi ? hi : v > lo ? (int)v : lo;
}

/* Time + duration, saturating: a cooldown never wraps into the past. */
static int64_t
add_ms(int64_t t, int64_t d)
{
	int64_t r;

	if (__builtin_add_overflow(t, d, &r))
		return d > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static bool
value_is_sane(double v)
{
	return isfinite(v) && fabs(v) <= SCALE_VALUE_MAX;
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
	if (g->manual_ms && now < add_ms(g->manual_ms, p->cooldown_ms)) {
		say(d, DEC_BLOCKED, "paused after a manual scale until %s",
		    hhmmss(add_ms(g->manual_ms, p->cooldown_ms), t, sizeof(t)));
		return false;
	}
	if (g->pending > 0) {
		say(d, DEC_BLOCKED, "%d host(s) still launching or warming up count as capacity",
		    g->pending);
		return false;
	}
	if (out && g->last_out_ms && now < add_ms(g->last_out_ms, p->cooldown_ms)) {
		say(d, DEC_BLOCKED, "cooldown until %s",
		    hhmmss(add_ms(g->last_out_ms, p->cooldown_ms), t, sizeof(t)));
		return false;
	}
	if (!out) {
		int64_t until = 0;
		if (g->last_in_ms && now < add_ms(g->last_in_ms, in_cooldown_ms))
			until = add_ms(g->last_in_ms, in_cooldown_ms);
		if (g->last_out_ms && now < add_ms(g->last_out_ms, in_cooldown_ms) &&
		    add_ms(g->last_out_ms, in_cooldown_ms) > until)
			until = add_ms(g->last_out_ms, in_cooldown_ms);
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
			if (!value_is_sane(pts[i].value)) {
				say(d, DEC_NODATA,
				    "%s(%s) = %.4g at %s is not a number or beyond ±%g: not scaling in on it",
				    expr_agg_name(p->cond.agg), p->cond.metric, pts[i].value,
				    hhmmss(pts[i].ts_ms, t, sizeof(t)), SCALE_VALUE_MAX);
				return;
			}
			if (pts[i].nseries < g->ready) {
				say(d, DEC_NODATA,
				    "only %d of %d hosts reported %s at %s: not scaling in on missing data",
				    pts[i].nseries, g->ready, p->cond.metric, hhmmss(pts[i].ts_ms, t, sizeof(t)));
				return;
			}
		}
	}
	d->desired = clamp_ll(adjust_apply(&p->adjust, g->desired), g->min, g->max);
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
	const char *agg = expr_agg_name(p->cond.agg);
	double ratio, total, want;
	char t[16];

	if (last == NULL || last->nseries == 0 || now - last->ts_ms > stale_ms) {
		say(d, DEC_NODATA, "no recent data for %s (newest %s): not acting", p->cond.metric,
		    last && last->nseries ? hhmmss(last->ts_ms, t, sizeof(t)) : "none");
		return;
	}
	d->value = last->value;
	d->nseries = last->nseries;
	/* policy_parse refuses these; a struct from elsewhere must not divide */
	if (!(p->cond.value > 0) || !isfinite(p->cond.value)) {
		say(d, DEC_NODATA, "target %.4g is not a positive number: not acting", p->cond.value);
		return;
	}
	/* Target tracking reads the value as a load: NaN or below 0 is no
	 * load at all, so it is no data (never a scale-in). */
	if (!(last->value >= 0)) {
		say(d, DEC_NODATA, "%s(%s) = %.4g is not a load (NaN or negative): not acting", agg,
		    p->cond.metric, last->value);
		return;
	}
	/* Everything in double: +Inf or 1e300 is a huge load and saturates at
	 * max below, it never wraps through an int into a scale-in. */
	total = p->cond.agg == AGG_AVG ? last->value * last->nseries : last->value;
	if (last->value > SCALE_VALUE_MAX)
		want = INFINITY;
	else
		want = ceil(total / p->cond.value - 1e-9);
	ratio = last->value / p->cond.value;
	if (isfinite(want) && fabs(ratio - 1.0) * 100.0 <= p->tolerance_pct) {
		say(d, DEC_NONE, "%s(%s) = %.4g is within %d%% of the target %.4g", agg, p->cond.metric,
		    last->value, p->tolerance_pct, p->cond.value);
		return;
	}
	if (isnan(want)) {
		say(d, DEC_NODATA, "%s(%s) = %.4g gives no host count: not acting", agg, p->cond.metric,
		    last->value);
		return;
	}
	d->desired = clamp_d(want, g->min, g->max);
	if (d->desired < g->desired && last->nseries < g->ready) {
		say(d, DEC_NODATA, "only %d of %d hosts reported %s: not scaling in on missing data",
		    last->nseries, g->ready, p->cond.metric);
		return;
	}
	if (d->desired == g->desired) {
		if (isinf(want))
			say(d, DEC_NONE, "%s(%s) = %.4g is beyond %g, taken as saturating load; the group"
			    " has %d (max %d)", agg, p->cond.metric, last->value, SCALE_VALUE_MAX,
			    g->desired, g->max);
		else
			say(d, DEC_NONE, "%s(%s) = %.4g wants %.4g host(s); the group has %d (min %d, max %d)",
			    agg, p->cond.metric, last->value, want, g->desired, g->min, g->max);
		return;
	}
	if (!guards(p, g, d->desired > g->desired, p->scale_in_cooldown_ms, now, d))
		return;
	if (last->value > SCALE_VALUE_MAX)
		say(d, DEC_ACT, "target %s(%s) = %.4g: %.4g now is beyond %g, taken as saturating"
		    " load: desired %d -> %d (max)", agg, p->cond.metric, p->cond.value, last->value,
		    SCALE_VALUE_MAX, g->desired, d->desired);
	else
		say(d, DEC_ACT, "target %s(%s) = %.4g: %.4g now, total %.4g needs %.4g host(s): desired %d -> %d",
		    agg, p->cond.metric, p->cond.value, last->value, total, want, g->desired, d->desired);
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

int
scale_spec_int(const json_t *spec, const char *key)
{
	json_t *v = json_object_get(spec, key);

	if (!json_is_integer(v))
		return -1;
	return json_integer_value(v) < 0 ? 0 : json_integer_value(v) > INT_MAX
		? INT_MAX : (int)json_integer_value(v);
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
	/* unknown sizes (-1 from scale_spec_int) or min > max: nothing to clamp to */
	if (g->min < 0 || g->max < g->min || g->desired < 0) {
		say(out, DEC_NODATA, "group sizes unknown or inconsistent (min %d, desired %d, max %d):"
		    " not acting", g->min, g->desired, g->max);
		return;
	}
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

bool
scale_partial_policy(const struct policy *p, const struct group_view *g)
{
	bool up = p->cond.op == OP_GT || p->cond.op == OP_GE;
	bool out = p->adjust.kind == ADJ_EXACT ? p->adjust.n > g->desired : p->adjust.n > 0;

	if (p->kind != POL_STEP || !out || g->desired < 0)
		return false;
	switch (p->cond.agg) {
	case AGG_MAX:
	case AGG_COUNT:
		return up;
	case AGG_MIN:
		return !up;
	default:
		return false;
	}
}

bool
scale_partial_ok(const struct policy *p, const struct group_view *g, double partial)
{
	return scale_partial_policy(p, g) && isfinite(partial) && expr_holds(&p->cond, partial);
}
