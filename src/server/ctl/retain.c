/* retain.c - retention of the store's tables that grow with use: activities,
 * audit, ended runs (with their hosts' rows and output) and terminated
 * hosts. The reconcile loop calls retain_pass(); the cut-offs are decided
 * by a pure function of the options and the time passed in, the deleting is
 * the model's, in bounded batches so no DELETE holds the write lock long.
 * Freed pages are reused by SQLite for new rows (auto_vacuum stays off):
 * tests/unit/test-retain.c measures the file flat over fill+prune cycles. */
#include <stdint.h>

#include "ctl.h"
#include "log.h"
#include "model/activity.h"
#include "model/audit.h"
#include "model/host.h"
#include "model/run.h"
#include "util.h"

static int64_t
min_pos(int64_t a, int64_t b)
{
	return a > 0 && a < b ? a : b;
}

bool
retain_due(const struct retain_opts *o, int64_t last_ms, int64_t now_ms)
{
	int64_t every = RETAIN_PASS_MAX_MS;

	every = min_pos(o->activities_ms, every);
	every = min_pos(o->audit_ms, every);
	every = min_pos(o->runs_ms, every);
	every = min_pos(o->hosts_ms, every);
	if (every < 1000)
		every = 1000;
	/* a clock stepped back also makes one due, rather than none for long */
	return last_ms == 0 || now_ms < last_ms || now_ms - last_ms >= every;
}

/* now - keep, never below 0 (keep may be as long as DURATION_MAX_MS) */
static int64_t
cut(int64_t now_ms, int64_t keep_ms)
{
	return keep_ms <= 0 || keep_ms >= now_ms ? 0 : now_ms - keep_ms;
}

void
retain_cutoffs(const struct retain_opts *o, int64_t now_ms, struct retain_cut *out)
{
	out->activities_ms = cut(now_ms, o->activities_ms);
	out->policy_keep_ms = cut(now_ms, RETAIN_POLICY_KEEP_MS);
	out->audit_ms = cut(now_ms, o->audit_ms);
	out->runs_ms = cut(now_ms, o->runs_ms);
	out->hosts_ms = cut(now_ms, o->hosts_ms);
}

enum retain_table { RT_ACTIVITIES, RT_AUDIT, RT_RUNS, RT_HOSTS };

static const char *const retain_names[] = { "activities", "audit entries",
					    "run rows (runs, run hosts, output)",
					    "terminated hosts" };

static int
prune_once(struct server *s, enum retain_table t, const struct retain_cut *c,
	   int64_t *deleted, struct herr *err)
{
	switch (t) {
	case RT_ACTIVITIES:
		return activity_prune(s->store, c->activities_ms, c->policy_keep_ms,
				      RETAIN_BATCH_ROWS, deleted, err);
	case RT_AUDIT:
		return audit_prune(s->store, c->audit_ms, RETAIN_BATCH_ROWS, deleted, err);
	case RT_RUNS:
		return run_prune(s->store, c->runs_ms, RETAIN_BATCH_ROWS, deleted, err);
	case RT_HOSTS:
		return host_prune_terminated(s->store, c->hosts_ms, RETAIN_BATCH_ROWS, deleted,
					     err);
	}
	return 0;
}

static int64_t
cut_of(enum retain_table t, const struct retain_cut *c)
{
	switch (t) {
	case RT_ACTIVITIES: return c->activities_ms;
	case RT_AUDIT: return c->audit_ms;
	case RT_RUNS: return c->runs_ms;
	case RT_HOSTS: return c->hosts_ms;
	}
	return 0;
}

/* Batches until one comes back short (all gone) or RETAIN_BATCHES_MAX. */
static void
prune_table(struct server *s, enum retain_table t, const struct retain_cut *c)
{
	struct herr err = HERR_INIT;
	int64_t total = 0, n;

	if (cut_of(t, c) == 0)      /* nothing is that old */
		return;
	for (int b = 0; b < RETAIN_BATCHES_MAX; b++) {
		n = 0;
		if (prune_once(s, t, c, &n, &err) < 0) {
			log_warn("retention: cannot prune %s: %s", retain_names[t], err.msg);
			break;
		}
		total += n;
		if (n < RETAIN_BATCH_ROWS)
			break;
	}
	if (total > 0)
		log_info("retention: pruned %lld %s", (long long)total, retain_names[t]);
}

void
retain_pass(struct server *s, int64_t now_ms)
{
	struct retain_opts o = { s->retain_activities_ms, s->retain_audit_ms, s->retain_runs_ms,
				 s->retain_hosts_ms };
	struct retain_cut c;

	if (!retain_due(&o, s->retain_pass_ms, now_ms))
		return;
	s->retain_pass_ms = now_ms;
	retain_cutoffs(&o, now_ms, &c);
	prune_table(s, RT_ACTIVITIES, &c);
	prune_table(s, RT_AUDIT, &c);
	prune_table(s, RT_RUNS, &c);
	prune_table(s, RT_HOSTS, &c);
}
