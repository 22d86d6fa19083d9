/* test-simulate.c - "simulate = what the autoscaler did": a recorded day of
 * one group (a load curve, hosts launching, warming up, failing, going
 * unhealthy, one host missing pushes, an operator's manual scale) is
 * played live, step by step, the way autoscale.c evaluates (hosts rows as
 * the store has them at that moment -> scale_host_from_row ->
 * scale_view_hosts -> scale_eval, clocks moved as group_state records
 * them); then the same recorded day is replayed through scale_replay_run
 * as `herd policy simulate` does. The two decision lists must be identical,
 * decision by decision. Time is injected: a day runs in well under a
 * second, nothing sleeps. Live evaluations here are the push rounds (the
 * autoscaler's on-push path); its 1 s tick can also act between rounds
 * when a cooldown or pause runs out, which a replay at push-round
 * granularity sees up to one push interval later (docs/autoscaling.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/scale/scale.h"

#define T0 (1800000000000LL - 1800000000000LL % 86400000LL)   /* a UTC midnight */
#define DAY_MS 86400000LL
#define STEP 5000
#define STALE (3 * STEP)
#define LAUNCH_MS 20000     /* created -> ready */
#define FAIL_MS 8000        /* a failing launch fails this long after creation */
#define WARMUP_MS 10000
#define MAXH 128
#define MAXREC 4096
#define H(x) ((int64_t)(x) * 3600000LL)
#define M(x) ((int64_t)(x) * 60000LL)

/* The recorded world: hosts rows over time and the desired changes. */
struct world {
	struct scale_host h[MAXH];
	char names[MAXH][16];
	size_t nh;
	int desired;
	struct scale_change ch[MAXREC];
	size_t nch;
	bool fail_next;             /* the next launch fails */
};

struct rec {
	int64_t t;
	enum decision_kind kind;
	int desired, proposed;
	char reason[320];
};

struct recs {
	struct rec r[MAXREC];
	size_t n;
	char last_cls[400];
};

/* The group's total load at t: the day's curve. */
static double
load_at(int64_t t)
{
	int64_t d = t - (T0);

	if (d < H(6))
		return 80;             /* 2 hosts' worth */
	if (d < H(6) + M(1))
		return 200;            /* want 4: scale out */
	if (d < H(12))
		return 400;            /* want 8: blocked while launching, then cooldown */
	if (d < H(13))
		return 100;            /* want 2: scale in */
	if (d < H(13) + M(2))
		return 300;            /* want 6: scale out */
	if (d < H(14))
		return 60;             /* want 2: scale-in cooldown, then scale in */
	if (d < H(15))
		return 160;            /* want 4 */
	if (d < H(16))
		return 90;             /* want 2, while h1 misses pushes: no data */
	if (d < H(17))
		return 140;            /* want 3 */
	if (d < H(20))
		return 190;            /* want 4: a launch fails on the way */
	return 120;                    /* want 3, after a host went unhealthy at 20:00 */
}

/* A host that does not push for a while: 15:00-15:30, the second host. */
static bool
outage(const struct scale_host *h, int64_t ts)
{
	return strcmp(h->name, "h1") == 0 && ts >= (T0) + H(15) && ts < (T0) + H(15) + M(30);
}

static bool
reports(const struct scale_host *h, int64_t ts)
{
	return h->created_ms <= ts && h->ready_ms && h->ready_ms <= ts &&
	       !(h->left_ms && h->left_ms <= ts) && !(h->gone_ms && h->gone_ms <= ts) &&
	       !outage(h, ts);
}

/* The TSDB over the recorded world: avg of every reporting host not left out. */
static int
day_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms, int64_t step_ms,
	const char *const *ex, size_t nex, struct agg_point **out, size_t *n, struct herr *err)
{
	struct world *w = ctx;
	int64_t end = now_ms - now_ms % step_ms;
	size_t k = (size_t)(span_ms / step_ms);

	*out = calloc(k + 1, sizeof(**out));
	*n = k;
	for (size_t i = 0; i < k; i++) {
		int64_t ts = end - (int64_t)(k - 1 - i) * step_ms;
		int rep = 0, cnt = 0;
		double sum = 0;

		for (size_t j = 0; j < w->nh; j++)
			rep += reports(&w->h[j], ts);
		for (size_t j = 0; j < w->nh; j++) {
			bool left_out = false;
			if (!reports(&w->h[j], ts))
				continue;
			for (size_t x = 0; x < nex; x++)
				left_out = left_out || strcmp(ex[x], w->h[j].name) == 0;
			if (left_out)
				continue;
			sum += load_at(ts) / rep;
			cnt++;
		}
		(*out)[i].ts_ms = ts;
		(*out)[i].nseries = cnt;
		(*out)[i].value = cnt ? sum / cnt : 0;
	}
	return 0;
}

static struct scale_host *
launch(struct world *w, int64_t t)
{
	struct scale_host *h = &w->h[w->nh];

	assert_true(w->nh < MAXH);
	snprintf(w->names[w->nh], sizeof(w->names[0]), "h%zu", w->nh);
	memset(h, 0, sizeof(*h));
	h->name = w->names[w->nh++];
	h->created_ms = t;
	if (w->fail_next) {
		h->left_ms = t + FAIL_MS;  /* failed: stays in the table, never ready */
		w->fail_next = false;
	} else {
		h->ready_ms = t + LAUNCH_MS;
	}
	return h;
}

static bool
alive(const struct scale_host *h, int64_t t)
{
	return h->created_ms <= t && !(h->left_ms && h->left_ms <= t) &&
	       !(h->gone_ms && h->gone_ms <= t);
}

/* The reconciler: as many live hosts as desired (newest terminated first). */
static void
reconcile(struct world *w, int64_t t)
{
	int n = 0;

	for (size_t i = 0; i < w->nh; i++)
		n += alive(&w->h[i], t);
	for (; n < w->desired; n++)
		launch(w, t);
	for (size_t i = w->nh; i-- > 0 && n > w->desired;)
		if (alive(&w->h[i], t)) {
			w->h[i].gone_ms = t;
			n--;
		}
}

static void
record(struct recs *rs, int64_t t, const struct group_view *g, const struct decision *d)
{
	struct rec *r = &rs->r[rs->n];

	assert_true(rs->n < MAXREC);
	r->t = t;
	r->kind = d->kind;
	r->desired = g->desired;
	r->proposed = d->desired;
	snprintf(r->reason, sizeof(r->reason), "%s", d->reason);
	rs->n++;
}

static void
emit(void *ctx, int64_t t, const struct group_view *g, const struct decision *d)
{
	record(ctx, t, g, d);
}

/* The hosts table as the autoscaler's query sees it at t (terminated rows
 * are not read), each row turned into a scale_host by the autoscaler's
 * own conversion. */
static size_t
rows_at(const struct world *w, int64_t t, json_t *keep, struct scale_host *out)
{
	size_t n = 0;

	for (size_t i = 0; i < w->nh; i++) {
		const struct scale_host *h = &w->h[i];
		const char *st;
		json_t *row;

		if (h->created_ms > t || (h->gone_ms && h->gone_ms <= t))
			continue;
		st = h->left_ms && h->left_ms <= t ? (h->ready_ms ? "unhealthy" : "failed")
		   : h->ready_ms && h->ready_ms <= t ? "ready" : "launching";
		row = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "name", h->name, "state", st,
				"created_ms", (json_int_t)h->created_ms, "ready_ms",
				(json_int_t)(h->ready_ms <= t ? h->ready_ms : 0), "terminated_ms",
				(json_int_t)0, "updated_ms",
				(json_int_t)(strcmp(st, "ready") == 0 ? h->ready_ms
					     : strcmp(st, "launching") == 0 ? h->created_ms : h->left_ms));
		json_array_append_new(keep, row);
		scale_host_from_row(row, &out[n++]);
	}
	return n;
}

static void
test_replay_equals_live_day(void **state)
{
	static struct world w;
	static struct recs live, sim;
	struct policy p;
	struct herr err = HERR_INIT;
	json_t *spec = json_loads("{\"target\":\"avg(busy) = 50\",\"tolerance\":10,"
				  "\"cooldown\":\"2m\",\"scale_in_cooldown\":\"6m\"}", 0, NULL);
	struct group_view g = { 0 }, base = { 0 };
	struct scale_replay r;
	int64_t acts[MAXREC], prev = 0;
	size_t nacts = 0;
	bool out = false, in = false, cool = false, nodata = false, manual_done = false;
	bool unhealthy_done = false;

	assert_int_equal(policy_parse("p", spec, &p, &err), 0);
	json_decref(spec);
	memset(&w, 0, sizeof(w));
	memset(&live, 0, sizeof(live));
	memset(&sim, 0, sizeof(sim));
	w.desired = 2;
	for (int i = 0; i < 2; i++)
		launch(&w, (T0) - H(1));
	base.desired = 2;
	base.min = 1;
	base.max = 10;
	g = base;

	/* live: one evaluation per push round, as autoscale.c on push */
	for (int64_t t = (T0) + STEP; t <= (T0) + DAY_MS; t += STEP) {
		struct scale_host hv[MAXH];
		const char *ex[MAXH];
		json_t *keep = json_array();
		struct decision d;
		size_t nh, nex, k = 0;
		char cls[400];

		/* 09:30:02.5 an operator scales to 5 by hand (a manual change) */
		if (!manual_done && t >= (T0) + H(9) + M(30) + STEP) {
			int64_t at = (T0) + H(9) + M(30) + 2500;
			w.ch[w.nch++] = (struct scale_change){ at, w.desired, 5, true, false, false };
			w.desired = 5;
			g.manual_ms = at;
			manual_done = true;
		}
		/* 20:00 a ready host goes unhealthy; the reconciler replaces it */
		if (!unhealthy_done && t >= (T0) + H(20)) {
			for (size_t i = w.nh; i-- > 0;)
				if (alive(&w.h[i], t) && w.h[i].ready_ms && w.h[i].ready_ms <= t) {
					w.h[i].left_ms = t;
					break;
				}
			unhealthy_done = true;
		}
		/* 17:00: the next launch fails (it stays in the table as failed) */
		if (t == (T0) + H(17))
			w.fail_next = true;
		reconcile(&w, t);
		nh = rows_at(&w, t, keep, hv);
		g.desired = w.desired;
		scale_view_hosts(&g, hv, nh, WARMUP_MS, t, ex, &nex, MAXH);
		for (size_t i = 0; i < nacts; i++)
			k += acts[i] > t - 3600000 && acts[i] <= t;
		g.actions_last_hour = (int)k;
		assert_int_equal(scale_eval(&p, &g, ex, nex, day_agg, &w, STEP, STALE, prev ? prev : t,
					    t, &d, NULL, 0, &err), 0);
		json_decref(keep);
		prev = t;
		scale_reason_class(&d, cls, sizeof(cls));
		if (d.kind == DEC_ACT || strcmp(cls, live.last_cls) != 0) {
			record(&live, t, &g, &d);
			snprintf(live.last_cls, sizeof(live.last_cls), "%s", cls);
		}
		out = out || (d.kind == DEC_ACT && d.desired > g.desired);
		in = in || (d.kind == DEC_ACT && d.desired < g.desired);
		cool = cool || (d.kind == DEC_BLOCKED && strstr(d.reason, "cooldown until"));
		nodata = nodata || (d.kind == DEC_NODATA && strstr(d.reason, "missing data"));
		if (d.kind == DEC_ACT) {
			/* apply_decision: the activity, group_state's clock */
			w.ch[w.nch++] = (struct scale_change){ t, g.desired, d.desired, false, true, true };
			if (d.desired != g.desired)
				acts[nacts++] = t;
			scale_view_acted(&g, g.desired, d.desired, t);
			w.desired = d.desired;
		}
	}
	/* the day had every kind of decision the comparison must cover */
	assert_true(out);
	assert_true(in);
	assert_true(cool);
	assert_true(nodata);

	/* simulate: the same recorded day, replayed */
	memset(&r, 0, sizeof(r));
	r.p = &p;
	r.view = base;
	r.hosts = w.h;
	r.nhosts = w.nh;
	r.warmup_ms = WARMUP_MS;
	r.changes = w.ch;
	r.nchanges = w.nch;
	r.since_ms = T0;
	r.until_ms = (T0) + DAY_MS;
	r.step_ms = STEP;
	r.stale_ms = STALE;
	r.launch_ms = LAUNCH_MS;
	r.agg = day_agg;
	r.agg_ctx = &w;
	r.emit = emit;
	r.emit_ctx = &sim;
	assert_int_equal(scale_replay_run(&r, &err), 0);

	for (size_t i = 0; i < live.n && i < sim.n; i++) {
		const struct rec *a = &live.r[i], *b = &sim.r[i];
		if (a->t != b->t || a->kind != b->kind || a->desired != b->desired ||
		    a->proposed != b->proposed || strcmp(a->reason, b->reason) != 0) {
			print_message("decision %zu differs:\n  live +%llds %d %d->%d %s\n"
				      "  sim  +%llds %d %d->%d %s\n", i,
				      (long long)((a->t - (T0)) / 1000), a->kind, a->desired, a->proposed,
				      a->reason, (long long)((b->t - (T0)) / 1000), b->kind, b->desired,
				      b->proposed, b->reason);
			fail();
		}
	}
	assert_int_equal(live.n, sim.n);
	print_message("%zu decisions recorded over the day, identical\n", live.n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_equals_live_day),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
