/* flap.h - flapping seen before it costs: a pure predictor of what a
 * group's scale-out rules do one step later at the same load (runaway: the
 * rule holds again; oscillation: a scale-in rule holds), behind `herd
 * policy check` and the warning on apply, and a pure counter of a group's
 * changes of direction for the `group_flapping` alert. No I/O, no clock:
 * the caller gives the per-host values and the times. docs/autoscaling.md,
 * "Flapping", says what is assumed. */
#ifndef HERD_SCALE_FLAP_H
#define HERD_SCALE_FLAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/policy.h"

/* How a metric moves when the group grows. ADDITIVE (busy slots, queue
 * items, pods): the total is conserved; a new host gets only the load that
 * waits for a slot, the rest stays where it runs (0 when none waits).
 * INTENSIVE (a %): the same work spread over more hosts, every host at
 * total / n' after the step. */
enum flap_metric_kind { FLAP_ADDITIVE, FLAP_INTENSIVE };

/* The documented default: a metric whose name ends in `_pct` is intensive,
 * every other (custom monitors count things: busy, pods) additive. */
enum flap_metric_kind flap_metric_kind(const char *metric);

#define FLAP_MAX_HOSTS 1000   /* hosts a prediction follows (POLICY_SET_MAX) */

/* The group's load now: per-host values of the metric (n hosts), the load
 * waiting for a slot (additive; 0 = none or unknown), a host's capacity
 * (additive; 0 = unknown: no cap) and how long the load lasts (0 = it stays,
 * as long-running pods do). */
struct flap_load {
	const double *v;
	size_t n;
	double waiting;
	double slots;
	int64_t lasts_ms;
	int min, max;          /* the group's bounds */
};

/* A what-if: `load` spread over `hosts` hosts, at most `slots` each (0 = no
 * cap), the rest waiting. Additive: load is the total; intensive: the value
 * of each host. v must hold hosts values. */
void flap_load_whatif(enum flap_metric_kind k, double load, int hosts, double slots, double *v,
		      struct flap_load *out);

enum flap_verdict {
	FLAP_OK,           /* one step brings the rule back under its threshold */
	FLAP_RUNAWAY,      /* the rule holds again after its own step: it adds again */
	FLAP_OSCILLATES,   /* a scale-in rule holds after a step at the same load */
	FLAP_UNKNOWN,      /* cannot tell (reason says why): never a pass */
};

const char *flap_verdict_name(enum flap_verdict v);

struct flap_finding {
	enum flap_verdict verdict;
	char policy[64];       /* the scale-out rule */
	char other[64];        /* OSCILLATES: the scale-in rule */
	int from, to;          /* sizes the group moves between (to: the last reached) */
	char text[480];
};

/* True for a step policy that adds hosts (adjust > 0, or =N above
 * current); target tracking and schedules are not checked. */
bool flap_is_scale_out(const struct policy *p, int current);
bool flap_is_scale_in(const struct policy *p, int current);

/* For scale-out rule pol[i] (metric kind k, all rules read the same
 * metric or the finding is UNKNOWN), follows its steps from the load l
 * while it holds, at most to l->max: each step at the load kept, the
 * scale-in rules of pol checked after it. Timing: the rule first acts
 * after its `for`, then every max(cooldown, for); a scale-in rule after
 * max(its cooldown, its for); with l->lasts_ms set, a step the load does not
 * last until is not taken (the load ending is not flapping). */
void flap_decide(const struct policy *pol, size_t npol, size_t i, enum flap_metric_kind k,
		 const struct flap_load *l, struct flap_finding *out);

/* One change of a group's size by the autoscaler, from the activity log. */
struct flap_change {
	int64_t ts_ms;
	int dir;               /* +1 scale out, -1 scale in */
};

/* The counter of the `group_flapping` alert: how many changes of direction
 * (an out after an in or an in after an out) the changes c (oldest first)
 * made in (now - window, now]; *count gets it (if not NULL). True when it
 * is more than limit. */
bool flap_counter_decide(const struct flap_change *c, size_t n, int64_t now_ms,
			 int64_t window_ms, int limit, int *count);

#endif
