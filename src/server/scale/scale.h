/* scale.h - autoscaling: policies parsed from their stored specs, and the
 * decision, a pure function (policy, the group's state, the aggregate
 * history of its metric, now) -> (new desired, reason). No I/O and no clock
 * inside, so unit tests and `herd policy simulate` replay history through
 * exactly the code that acts. */
#ifndef HERD_SCALE_H
#define HERD_SCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cron.h"
#include "expr.h"
#include "herr.h"

/* struct policy and policy_parse, the one validator of policy rules, are
 * the model's (model/policy.h): the policy kind checks with it too. */
#include "model/policy.h"

/* A metric value beyond ±this (or NaN, ±Inf) is absurd: never a reason to
 * scale in; above it, target tracking saturates at the group's max. */
#define SCALE_VALUE_MAX 1e15

/* One aligned step of a group aggregate: the value across the series that
 * had a sample in the step, and how many did. */
struct agg_point {
	int64_t ts_ms;
	double value;
	int nseries;
};

struct group_view {
	int desired, min, max;
	int ready;                 /* ready and warmed-up hosts */
	int pending;               /* launching/booting/initializing or warming up */
	int64_t last_out_ms;       /* last scale-out of the group (any cause) */
	int64_t last_in_ms;        /* last scale-in */
	int64_t manual_ms;         /* last manual scale: policies pause a cooldown */
	int actions_last_hour;
	int max_actions_per_hour;
};

enum decision_kind {
	DEC_NONE,      /* condition does not hold: nothing to do */
	DEC_ACT,       /* change desired to `desired` */
	DEC_BLOCKED,   /* would act, but a guard says no (reason says which) */
	DEC_NODATA,    /* missing or stale data: never acts on it */
};

struct decision {
	enum decision_kind kind;
	int desired;               /* proposed (ACT/BLOCKED) */
	double value;              /* the aggregate the decision used (NaN if none) */
	int nseries;               /* series in the latest step */
	int64_t holding_since_ms;  /* STEP: condition true since (0 = not true) */
	int set_min, set_max;      /* SCHEDULE: new bounds (-1 = unchanged) */
	char reason[320];
};

/* Decides one policy. `pts` are the aggregate steps of the policy's metric
 * over at least its `for` window, oldest first; `step_ms` their spacing;
 * `stale_ms` how old the newest step may be. For SCHEDULE, `prev_eval_ms`
 * is when the policy was last evaluated (a schedule fires when a cron time
 * falls in (prev_eval_ms, now]). */
void policy_decide(const struct policy *p, const struct group_view *g, const struct agg_point *pts,
		   size_t npts, int64_t step_ms, int64_t stale_ms, int64_t prev_eval_ms,
		   int64_t now_ms, struct decision *out);

/* An integer of a stored spec (a group's sizes) as an int: -1 when absent
 * or not an integer (unknown, never 0), clamped to [0, INT_MAX] otherwise,
 * so a value written around the API cannot wrap through (int). */
int scale_spec_int(const json_t *spec, const char *key);

/* Combines the decisions of a group's policies: scale-out wins (the
 * largest desired among acting policies); returns the index of the winner
 * or -1 when none acts. */
int policy_resolve(const struct decision *d, size_t n, int current);

/* One host of a group as the group view needs it: when it was created,
 * became ready (0 = never), left launching/ready for another state (failed,
 * unhealthy, draining, terminating; 0 = not) and was terminated (0 = not). */
struct scale_host {
	const char *name;
	int64_t created_ms;
	int64_t ready_ms;
	int64_t left_ms;
	int64_t gone_ms;
};

/* The group view at now_ms: the one rule of the autoscaler and simulate.
 * `g` comes in with sizes, clocks and the action count set; this counts
 * its hosts: ready and warmed up (warmup_ms) are capacity with data;
 * launching, or ready and warming up, are pending (capacity without data);
 * a host that left for another state is neither. Every existing host that
 * is not ready is put in ex (up to maxex): its samples do not count. */
void scale_view_hosts(struct group_view *g, const struct scale_host *h, size_t n,
		      int64_t warmup_ms, int64_t now_ms, const char **ex, size_t *nex, size_t maxex);

/* A hosts row (name, state, created_ms, ready_ms, terminated_ms,
 * updated_ms) as a scale_host; the name points into the row. A host in a
 * state other than launching/booting/initializing/ready left at its
 * updated_ms; a terminated one was gone at terminated_ms. */
void scale_host_from_row(const json_t *row, struct scale_host *h);
/* The same from a typed hosts row (model/host.h); the name points into hr. */
struct host;
void scale_host_from_host(const struct host *hr, struct scale_host *h);

/* The group aggregate of p's metric over [now - span, now] in steps, the
 * hosts in ex left out; *out owned (n + 1 entries at least). The autoscaler
 * reads the TSDB, a test a recorded day. */
typedef int (*scale_agg_fn)(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms,
			    int64_t step_ms, const char *const *ex, size_t nex,
			    struct agg_point **out, size_t *n, struct herr *err);

/* The TSDB as the autoscaler reads it: scale_tsdb_agg is the scale_agg_fn
 * of the autoscaler and of simulate, over the group named in its context. */
struct server;
struct scale_tsdb_ctx {
	struct server *s;
	const char *cluster, *group;
};
int scale_tsdb_agg(void *ctx, const struct policy *p, int64_t now_ms, int64_t span_ms,
		   int64_t step_ms, const char *const *ex, size_t nex, struct agg_point **out,
		   size_t *n, struct herr *err);

/* How long the autoscaler waits for a push round to complete before it
 * evaluates a step that not every ready host has reported. */
#define SCALE_ROUND_GRACE_MS 2000

/* Whether a newest step that not every ready host has reported yet (an
 * immediate push arriving ahead of the round) may be decided on now,
 * rather than after the round or SCALE_ROUND_GRACE_MS (pure): only for a
 * `when` policy that scales out, whose condition holds on the partial
 * value and can only stay true as the missing hosts' samples come in:
 * max() with > or >=, count() with > or >=, min() with < or <=. Never
 * for avg() (another host can pull the average back), sum() (a series
 * may be negative), target tracking (its size comes from the value) or a
 * scale-in (unknown is not absent). */
bool scale_partial_ok(const struct policy *p, const struct group_view *g, double partial);
/* The policy half of scale_partial_ok (the value aside): whether p could
 * decide on a partial step at all. scale_eval reads the step now falls in
 * (still open) only for such a policy. */
bool scale_partial_policy(const struct policy *p, const struct group_view *g);

/* One evaluation of one policy at now_ms: loads the points through agg,
 * drops an incomplete newest step (round grace) and decides. For a policy
 * of scale_partial_policy() and now_ms between two steps' ends, agg is
 * asked for the steps up to the end of the one now falls in; that open
 * step counts, as of now_ms, only when its value passes scale_partial_ok. The path of
 * both the autoscaler and simulate. window (may be NULL) says what was
 * read. Returns 0, or agg's error with *d the decision on no data. */
int scale_eval(const struct policy *p, const struct group_view *g, const char *const *ex,
	       size_t nex, scale_agg_fn agg, void *ctx, int64_t step_ms, int64_t stale_ms,
	       int64_t prev_eval_ms, int64_t now_ms, struct decision *d, char *window, size_t wn,
	       struct herr *err);

/* A decision's reason without its numbers: the autoscaler records a blocked
 * decision again, and simulate shows one, only when this changes. */
void scale_reason_class(const struct decision *d, char *out, size_t n);

/* What an action does to the group's clocks (as group_state_note): a policy
 * or schedule that changes desired moves the scale-out or scale-in clock. */
void scale_view_acted(struct group_view *g, int from, int to, int64_t now_ms);

/* A recorded change of a group's desired size (activities), for a replay. */
struct scale_change {
	int64_t ts_ms;
	int from, to;          /* -1 unknown */
	bool manual;           /* by an operator: pauses policies */
	bool by_policy;        /* by a policy or schedule: moves the clocks */
	bool mine;             /* by the policy replayed: it decides again */
};

/* A replay of one policy over [since, until]: the group as it was at since
 * (view: sizes, clocks, desired), its hosts over time, the changes others
 * made, and the metric through agg. emit is called for each action and for
 * each decision whose reason class changed. */
struct scale_replay {
	const struct policy *p;
	struct group_view view;
	const struct scale_host *hosts;
	size_t nhosts;
	int64_t warmup_ms;
	const struct scale_change *changes;   /* oldest first */
	size_t nchanges;
	const int64_t *policy_acts_ms;        /* policy actions before since, oldest first */
	size_t npolicy_acts;
	int64_t since_ms, until_ms, step_ms, stale_ms;
	int64_t launch_ms;     /* a host the replay adds but that never existed: launching this long */
	scale_agg_fn agg;
	void *agg_ctx;
	void (*emit)(void *ctx, int64_t t, const struct group_view *g, const struct decision *d);
	void *emit_ctx;
};

/* Runs the replay: at each step of the window, the group view by
 * scale_view_hosts and one scale_eval, the clocks moved by
 * scale_view_acted. Returns 0 or agg's error. view.c. */
int scale_replay_run(const struct scale_replay *r, struct herr *err);

struct server;

/* The autoscaler thread (autoscale.c): evaluates groups with policies when
 * a push brings samples (autoscale_on_push) and every second. */
int autoscale_start(struct server *s, struct herr *err);
void autoscale_stop(struct server *s);
void autoscale_on_push(struct server *s, const char *cluster, const char *group);
/* Replays [since, until] of the group's stored metrics through the policy
 * (spec: stored or given) and answers {timeline: [decisions], actual:
 * [what this policy really did]} (owned). simulate.c. */
int policy_simulate(struct server *s, const char *cluster, const char *group, const char *name,
		    const json_t *pspec, int64_t since_ms, int64_t until_ms, json_t **out,
		    struct herr *err);
/* `herd policy check`: predicts, for each scale-out step policy of the
 * group, whether one step later at the same load it would act again or a
 * scale-in rule would (flap.h). The load: the what-if when wi->set, else
 * the hosts' latest values of the rules' metric (the last 3 push
 * intervals), else the group's `expect`; none: every finding cannot tell.
 * *out (owned): {cluster, group, metric, metric_kind, source, hosts,
 * verdict, findings: [{policy, verdict, scale_in, from, to, text}]}. */
struct flap_whatif {
	bool set;
	double load;           /* additive: the total; intensive: each host's value */
	int hosts;             /* 0: the group's desired size */
	double slots;          /* a host's capacity; 0: none */
	int64_t lasts_ms;      /* how long the load lasts; 0: it stays */
};
int policy_check(struct server *s, const char *cluster, const char *group,
		 const struct flap_whatif *wi, json_t **out, struct herr *err);
/* The latest evaluation of a policy (owned), or NULL if none yet. */
json_t *autoscale_explain(const char *cluster, const char *group, const char *policy);

#endif
