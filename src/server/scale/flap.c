/* flap.c - the pure flapping predictor and direction counter (flap.h). A
 * prediction is a small replay of per-host values: the scale-out rule's
 * step, the load kept (additive: where it runs, the waiting part to the new
 * hosts; intensive: spread evenly), the rules' aggregates taken again. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flap.h"
#include "xalloc.h"

enum flap_metric_kind
flap_metric_kind(const char *metric)
{
	size_t n = strlen(metric);

	return n >= 4 && strcmp(metric + n - 4, "_pct") == 0 ? FLAP_INTENSIVE : FLAP_ADDITIVE;
}

const char *
flap_verdict_name(enum flap_verdict v)
{
	static const char *const names[] = { "ok", "runaway", "oscillates", "cannot_tell" };

	return names[v];
}

void
flap_load_whatif(enum flap_metric_kind k, double load, int hosts, double slots, double *v,
		 struct flap_load *out)
{
	double each = k == FLAP_INTENSIVE ? load : hosts > 0 ? load / hosts : 0;

	memset(out, 0, sizeof(*out));
	if (k == FLAP_ADDITIVE && slots > 0 && each > slots)
		each = slots;
	for (int i = 0; i < hosts; i++)
		v[i] = each;
	out->v = v;
	out->n = hosts > 0 ? (size_t)hosts : 0;
	out->slots = slots;
	if (k == FLAP_ADDITIVE && hosts > 0 && load > each * hosts)
		out->waiting = load - each * hosts;
}

static double
agg_of(enum expr_agg a, const double *v, size_t n)
{
	double r = a == AGG_MIN ? INFINITY : a == AGG_MAX ? -INFINITY : 0;

	if (a == AGG_COUNT)
		return (double)n;
	for (size_t i = 0; i < n; i++) {
		if (a == AGG_MIN)
			r = v[i] < r ? v[i] : r;
		else if (a == AGG_MAX)
			r = v[i] > r ? v[i] : r;
		else
			r += v[i];
	}
	return a == AGG_AVG ? (n ? r / n : NAN) : n ? r : NAN;
}

bool
flap_is_scale_out(const struct policy *p, int current)
{
	if (p->kind != POL_STEP)
		return false;
	return p->adjust.kind == ADJ_EXACT ? p->adjust.n > current : p->adjust.n > 0;
}

bool
flap_is_scale_in(const struct policy *p, int current)
{
	if (p->kind != POL_STEP)
		return false;
	return p->adjust.kind == ADJ_EXACT ? p->adjust.n < current : p->adjust.n < 0;
}

/* The load after the group went from n to n2 hosts (n2 > n); w the waiting
 * load, taken by new hosts up to slots each. */
static void
step_load(enum flap_metric_kind k, double *v, size_t n, size_t n2, double slots, double *w)
{
	double total = 0;

	if (k == FLAP_INTENSIVE) {
		for (size_t i = 0; i < n; i++)
			total += v[i];
		for (size_t i = 0; i < n2; i++)
			v[i] = total / (double)n2;
		return;
	}
	for (size_t i = n; i < n2; i++) {
		double take = slots > 0 && *w > slots ? slots : *w;
		v[i] = take;
		*w -= take;
	}
}

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static void
say(struct flap_finding *f, enum flap_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
say(struct flap_finding *f, enum flap_verdict v, const char *fmt, ...)
{
	va_list ap;

	f->verdict = v;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

void
flap_decide(const struct policy *pol, size_t npol, size_t i, enum flap_metric_kind k,
	    const struct flap_load *l, struct flap_finding *out)
{
	const struct policy *o = &pol[i];
	char cond[EXPR_TEXT_MAX], icond[EXPR_TEXT_MAX];
	double *v, w = l->waiting, x;
	size_t n = l->n, n2;
	int64_t t = o->for_ms;
	int steps = 0;
	long long want;

	memset(out, 0, sizeof(*out));
	snprintf(out->policy, sizeof(out->policy), "%s", o->name);
	out->from = out->to = (int)n;
	expr_format(&o->cond, cond, sizeof(cond));
	if (n == 0) {
		say(out, FLAP_UNKNOWN, "%s: no host values of %s: cannot tell", o->name, o->cond.metric);
		return;
	}
	for (size_t j = 0; j < n; j++)
		if (!isfinite(l->v[j])) {
			say(out, FLAP_UNKNOWN, "%s: a host's %s is not a number: cannot tell", o->name,
			    o->cond.metric);
			return;
		}
	for (size_t j = 0; j < npol; j++)
		if ((flap_is_scale_in(&pol[j], (int)n) || j == i) &&
		    strcmp(pol[j].cond.metric, o->cond.metric) != 0) {
			say(out, FLAP_UNKNOWN, "%s: %s reads %s, not %s: cannot tell how they move together",
			    o->name, pol[j].name, pol[j].cond.metric, o->cond.metric);
			return;
		}
	x = agg_of(o->cond.agg, l->v, n);
	if (!expr_holds(&o->cond, x)) {
		say(out, FLAP_OK, "%s: %s(%s) = %.4g on %zu hosts does not meet %s: no step at this load",
		    o->name, expr_agg_name(o->cond.agg), o->cond.metric, x, n, cond);
		return;
	}
	v = xcalloc(FLAP_MAX_HOSTS + 1, sizeof(*v));
	memcpy(v, l->v, (n < FLAP_MAX_HOSTS ? n : FLAP_MAX_HOSTS) * sizeof(*v));
	for (;;) {
		want = adjust_apply(&o->adjust, (long long)n);
		if (want > l->max)
			want = l->max;
		if (want > FLAP_MAX_HOSTS)
			want = FLAP_MAX_HOSTS;
		if (want <= (long long)n) {
			if (steps >= 2)
				say(out, FLAP_RUNAWAY, "%s: runs away %d -> %zu hosts (max %d): %s(%s) = %.4g"
				    " still meets %s after each step at the same load", o->name, out->from,
				    n, l->max, expr_agg_name(o->cond.agg), o->cond.metric, x, cond);
			else
				say(out, FLAP_OK, "%s: %s(%s) = %.4g meets %s on %zu hosts, but the group is at"
				    " its max %d", o->name, expr_agg_name(o->cond.agg), o->cond.metric, x,
				    cond, n, l->max);
			break;
		}
		if (l->lasts_ms > 0 && t >= l->lasts_ms) {
			say(out, FLAP_OK, "%s: %s(%s) = %.4g still meets %s on %zu hosts, but the load"
			    " (%llds) ends before %s can act again (%llds): no step predicted", o->name,
			    expr_agg_name(o->cond.agg), o->cond.metric, x, cond, n,
			    (long long)(l->lasts_ms / 1000), o->name, (long long)(t / 1000));
			break;
		}
		n2 = (size_t)want;
		step_load(k, v, n, n2, l->slots, &w);
		steps++;
		out->to = (int)n2;
		/* a scale-in rule at the same load, after its cooldown and for */
		for (size_t j = 0; j < npol; j++) {
			const struct policy *in = &pol[j];
			double y;

			if (!flap_is_scale_in(in, (int)n2))
				continue;
			y = agg_of(in->cond.agg, v, n2);
			if (!expr_holds(&in->cond, y))
				continue;
			if (l->lasts_ms > 0 && t + max64(in->cooldown_ms, in->for_ms) >= l->lasts_ms)
				continue;
			expr_format(&in->cond, icond, sizeof(icond));
			snprintf(out->other, sizeof(out->other), "%s", in->name);
			out->from = (int)n;
			say(out, FLAP_OSCILLATES, "%s: oscillates %zu <-> %zu hosts: %s(%s) = %.4g meets %s"
			    " on %zu, %s adds host %zu, then %s(%s) = %.4g meets %s of %s at the same load"
			    "%s", o->name, n, n2, expr_agg_name(o->cond.agg), o->cond.metric, x, cond, n,
			    o->name, n2, expr_agg_name(in->cond.agg), in->cond.metric, y, icond, in->name,
			    k == FLAP_ADDITIVE && y < x ? " (the new host gets only the waiting load)" : "");
			free(v);
			return;
		}
		x = agg_of(o->cond.agg, v, n2);
		if (!expr_holds(&o->cond, x)) {
			if (steps >= 2)
				say(out, FLAP_RUNAWAY, "%s: runs away %d -> %zu hosts: %s(%s) still met %s after"
				    " each step; %.4g on %zu", o->name, out->from, n2,
				    expr_agg_name(o->cond.agg), o->cond.metric, cond, x, n2);
			else
				say(out, FLAP_OK, "%s: one step (%zu -> %zu hosts) brings %s(%s) to %.4g, under"
				    " %s; no scale-in rule holds there", o->name, n, n2,
				    expr_agg_name(o->cond.agg), o->cond.metric, x, cond);
			break;
		}
		n = n2;
		t += max64(o->cooldown_ms, o->for_ms);
	}
	free(v);
}

bool
flap_counter_decide(const struct flap_change *c, size_t n, int64_t now_ms, int64_t window_ms,
		    int limit, int *count)
{
	int k = 0, prev = 0;

	for (size_t i = 0; i < n; i++) {
		if (c[i].dir == 0)
			continue;
		if (prev != 0 && c[i].dir != prev && c[i].ts_ms > now_ms - window_ms &&
		    c[i].ts_ms <= now_ms)
			k++;
		prev = c[i].dir;
	}
	if (count)
		*count = k;
	return k > limit;
}
