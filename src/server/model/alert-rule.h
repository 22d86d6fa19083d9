/* model/alert-rule.h - an alert rule as the evaluator reads it, the table
 * of built-in rules, and alert_rule_parse, the one validator of the
 * `alerts:` entries of a cluster or group: the kinds' checks refuse at the
 * door exactly what the evaluator (ctl/alert.c) would not evaluate. Also
 * the summary template ({{group}}, {{value}}, {{hosts}}, ...). Pure. */
#ifndef HERD_MODEL_ALERT_RULE_H
#define HERD_MODEL_ALERT_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "expr.h"
#include "herr.h"

#define ALERT_NAME_MAX 64
#define ALERT_SUMMARY_MAX 512         /* a template, and a rendered summary */
#define ALERT_REPEAT_DEFAULT_MS (4 * 3600 * 1000LL)
#define ALERT_DURATION_MAX_S (7 * 86400)

struct alert_rule {
	char name[ALERT_NAME_MAX];
	bool builtin;                 /* one of alert_builtins[] (maybe overridden) */
	bool enabled;                 /* `enabled: false` turns a built-in off */
	bool has_expr;                /* a user rule: `when` */
	struct expr cond;
	int64_t for_ms;               /* the condition must hold this long */
	int64_t repeat_ms;            /* a firing alert is sent again after this */
	char severity[16];            /* critical, warning, info */
	char summary[ALERT_SUMMARY_MAX];   /* template */
	const json_t *labels;         /* borrowed from the spec, or NULL */
	char origin[160];             /* "builtin", "cluster c", "group c/g" */
};

/* A built-in rule: its name, default severity and summary, and what it
 * watches (docs/alerting.md lists them all). */
struct alert_builtin {
	const char *name;
	const char *severity;
	const char *summary;
	const char *what;
	int for_s;                    /* default `for` */
};

extern const struct alert_builtin alert_builtins[];   /* NULL-name terminated */
const struct alert_builtin *alert_builtin_find(const char *name);

/* Fills *out with the built-in b's defaults. */
void alert_rule_builtin(const struct alert_builtin *b, struct alert_rule *out);

/* Parses one `alerts:` entry. A user rule needs name, when (a trigger, not
 * '='), and may have for, severity, labels (string values), summary,
 * repeat, enabled. An entry named after a built-in may only change its
 * severity, summary, for, repeat, labels or enabled (no `when`). Returns 0
 * or HERR_INVALID with err->field the offending key ("when", "severity"). */
int alert_rule_parse(const json_t *spec, struct alert_rule *out, struct herr *err);

/* Validates an `alerts:` list (a cluster's or a group's) at path: each
 * entry parses and names are unique. err->field is "PATH[i].FIELD". */
int alert_rules_check(const json_t *list, const char *path, struct herr *err);

/* What a summary's placeholders are filled with ("" or NAN = empty). */
struct alert_vars {
	const char *rule, *cluster, *group, *host, *hosts, *reason, *policy, *lb;
	double value, threshold;
};

/* Whether every {{placeholder}} of template t is known; *bad gets the first
 * unknown one. */
bool alert_template_ok(const char *t, char *bad, size_t nbad);

/* Renders template t with v into out (truncated to n). */
void alert_render(const char *t, const struct alert_vars *v, char *out, size_t n);

#endif
