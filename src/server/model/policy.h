/* model/policy.h - an autoscaling policy as the autoscaler reads it, and
 * policy_parse, the one validator of policy rules: the policy kind's check
 * (model/kind-policy.c) refuses at the door exactly what the autoscaler
 * and simulate (scale/) would not act on. Pure: no I/O. */
#ifndef HERD_MODEL_POLICY_H
#define HERD_MODEL_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cron.h"
#include "expr.h"
#include "herr.h"

enum policy_kind { POL_STEP, POL_TARGET, POL_SCHEDULE };

#define POLICY_PROM_URL_MAX 256     /* source: prometheus: url, bytes */
#define POLICY_PROM_QUERY_MAX 1024  /* ... query, bytes */
#define POLICY_PROM_METRIC "query"  /* the name `when`/`target` give its value */

struct policy {
	char name[64];
	enum policy_kind kind;
	struct expr cond;          /* STEP: when; TARGET: target (op '=') */
	int64_t for_ms;            /* STEP: how long the condition must hold */
	struct adjust adjust;      /* STEP */
	int64_t cooldown_ms;       /* after an action of this policy's direction */
	int64_t scale_in_cooldown_ms;  /* TARGET: slower scale-in (default 3x) */
	int tolerance_pct;         /* TARGET: no action within ±tolerance */
	struct cron cron;          /* SCHEDULE */
	char tz[64];
	int set_min, set_desired, set_max;   /* SCHEDULE; -1 = unchanged */
	bool shadow;               /* evaluate and record, never act */
	/* source: prometheus: the value is an instant PromQL query's, not an
	 * aggregate of herd's metrics ("" = herd's own); cond reads `query OP N` */
	char prom_url[POLICY_PROM_URL_MAX + 1];
	char prom_query[POLICY_PROM_QUERY_MAX + 1];
	char before_terminate[101];/* script run on scale-in victims */
	int64_t drain_timeout_ms;
};

#define POLICY_DURATION_MAX_S 86400   /* for, cooldown, scale_in_cooldown, drain_timeout */
#define POLICY_SET_MAX 1000           /* a schedule's set values: 0..this */

/* Parses and validates a policy spec: the one validator of policy rules,
 * used by the API (refused at the door, 400) and by the autoscaler and
 * simulate (a stored policy that no longer passes does not act). Checks
 * exactly one of when/target/schedule, durations (parse, at most
 * POLICY_DURATION_MAX_S), adjust, target > 0 and finite, tolerance 0-100,
 * schedule set values and min <= desired <= max, the time zone (an IANA
 * name whose zone file exists), mode, and with `source: prometheus` the url
 * (http:// or https://, at most POLICY_PROM_URL_MAX bytes), the query
 * (1 to POLICY_PROM_QUERY_MAX bytes) and a condition on `query` (`when:
 * query > 100`, `target: query = 50`). Returns 0 or HERR_INVALID with
 * err->field the offending key (relative to the policy, e.g. "set.min"). */
int policy_parse(const char *name, const json_t *spec, struct policy *out, struct herr *err);

/* A value of a host's series that, when one of them crosses it, may change
 * what a policy decides: the agent pushes at once on a crossing. */
struct policy_threshold {
	char metric[EXPR_METRIC_MAX + 1];
	enum expr_op op;           /* >, >=, < or <= : the side where it holds */
	double value;
};

#define POLICY_THRESHOLDS_MAX 2   /* per policy */

/* The thresholds of p (pure): a `when` gives its own comparison; a
 * `target` its tolerance band's two edges, value > target * (1 + tol) and
 * value < target * (1 - tol), where target tracking acts; a schedule none.
 * The thresholds are the literal comparisons on one host's value: a host
 * crossing `avg(x) > 32` does not mean the group's average did (the
 * autoscaler decides on the aggregate). Returns how many (0-2). */
size_t policy_thresholds(const struct policy *p, struct policy_threshold *out);

/* The condition's text as the policy gives it: expr_format's, or `query >
 * 100` for a PromQL policy. Like snprintf. */
int policy_cond_format(const struct policy *p, char *out, size_t n);

#endif
