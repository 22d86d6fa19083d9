/* model/policy.c - policy_parse, the one validator of autoscaling policy
 * rules (model/policy.h): durations, the condition or target, adjust,
 * schedule and its set, tolerance, time zone, mode. The policy kind's check
 * and the autoscaler both call it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/policy.h"
#include "util.h"

/* A duration field of a policy: absent = dflt; anything else must parse
 * and be at most POLICY_DURATION_MAX_S. */
static int
duration_field(const json_t *spec, const char *key, int64_t dflt, int64_t *out, struct herr *err)
{
	json_t *v = json_object_get(spec, key);

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || parse_duration_ms(json_string_value(v), out) < 0)
		return herr_field(err, HERR_INVALID, key,
				  "must be a duration like '500ms', '10s', '5m' or '1h'");
	if (*out > (int64_t)POLICY_DURATION_MAX_S * 1000)
		return herr_field(err, HERR_INVALID, key, "must be at most %ds", POLICY_DURATION_MAX_S);
	return 0;
}

/* An expression field: the parser's message, under the field's name. A
 * PromQL policy's reads `query OP N`: parsed as avg(query) OP N (target
 * tracking takes the value as the group's average, as for herd's metrics). */
static int
expr_field(const json_t *spec, const char *key, bool prom, struct expr *e, struct herr *err)
{
	const char *t = json_string_value(json_object_get(spec, key));
	char m[sizeof(err->msg)], buf[EXPR_TEXT_MAX + 16];
	size_t w = strlen(POLICY_PROM_METRIC);

	if (t == NULL)
		return herr_field(err, HERR_INVALID, key, "must be a string like '%s'",
				  prom ? "query > 100" : "avg(busy) > 32");
	if (prom) {
		while (*t == ' ' || *t == '\t')
			t++;
		if (strncmp(t, POLICY_PROM_METRIC, w) != 0 || strlen(t) > EXPR_TEXT_MAX)
			return herr_field(err, HERR_INVALID, key,
					  "with source: prometheus, must be like '%s' (the query's value)",
					  strcmp(key, "target") == 0 ? "query = 50" : "query > 100");
		snprintf(buf, sizeof(buf), "avg(%s)%s", POLICY_PROM_METRIC, t + w);
		t = buf;
	}
	if (expr_parse(t, e, err) < 0) {
		snprintf(m, sizeof(m), "%s", err->msg);
		return herr_field(err, HERR_INVALID, key, "%s", m);
	}
	return 0;
}

/* `set` of a schedule: min, desired, max in [0, POLICY_SET_MAX], min <= max
 * and desired between them when given together. */
static int
set_field(const json_t *set, struct policy *p, struct herr *err)
{
	static const char *const keys[] = { "min", "desired", "max" };
	int *dst[] = { &p->set_min, &p->set_desired, &p->set_max };
	const char *key;
	json_t *v;

	if (!json_is_object(set))
		return herr_field(err, HERR_INVALID, "set",
				  "is required with schedule (e.g. {min: 4, desired: 4})");
	json_object_foreach((json_t *)set, key, v) {
		size_t k;
		char f[64];

		for (k = 0; k < 3 && strcmp(key, keys[k]) != 0; k++)
			;
		snprintf(f, sizeof(f), "set.%.50s", key);
		if (k == 3 || !json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > POLICY_SET_MAX)
			return herr_field(err, HERR_INVALID, f,
					  "set takes min, desired and max, integers 0-%d", POLICY_SET_MAX);
		*dst[k] = (int)json_integer_value(v);
	}
	if (p->set_min >= 0 && p->set_max >= 0 && p->set_min > p->set_max)
		return herr_field(err, HERR_INVALID, "set.min", "min %d is above max %d", p->set_min,
				  p->set_max);
	if (p->set_desired >= 0 && ((p->set_min >= 0 && p->set_desired < p->set_min) ||
				    (p->set_max >= 0 && p->set_desired > p->set_max)))
		return herr_field(err, HERR_INVALID, "set.desired", "desired %d is outside min-max",
				  p->set_desired);
	return 0;
}

/* Whether u is an http(s) URL herd can put /api/v1/query after: a scheme,
 * a host, then an optional path; no blanks, controls, '?' or '#'. */
static bool
prom_url_ok(const char *u)
{
	const char *h = strncmp(u, "http://", 7) == 0 ? u + 7
		      : strncmp(u, "https://", 8) == 0 ? u + 8 : NULL;

	if (h == NULL || *h == '\0' || *h == '/' || *h == ':')
		return false;
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#' ||
		    *c == '"' || *c == '\\')
			return false;
	return true;
}

/* source, url, query: a PromQL policy, or none of them (herd's metrics). */
static int
prom_fields(const json_t *spec, struct policy *p, struct herr *err)
{
	json_t *src = json_object_get(spec, "source"), *url = json_object_get(spec, "url");
	json_t *q = json_object_get(spec, "query");

	if (src == NULL && url == NULL && q == NULL)
		return 0;
	if (!json_is_string(src) || strcmp(json_string_value(src), "prometheus") != 0)
		return herr_field(err, HERR_INVALID, "source",
				  "must be prometheus (with url and query), or absent for herd's"
				  " own metrics");
	if (json_object_get(spec, "schedule"))
		return herr_field(err, HERR_INVALID, "source",
				  "a schedule reads no metric: source is for when and target");
	if (!json_is_string(url) || json_string_length(url) > POLICY_PROM_URL_MAX ||
	    json_string_length(url) != strlen(json_string_value(url)) ||
	    !prom_url_ok(json_string_value(url)))
		return herr_field(err, HERR_INVALID, "url",
				  "must be the Prometheus server's http:// or https:// URL (at most"
				  " %d bytes, no query string), e.g. http://prometheus:9090",
				  POLICY_PROM_URL_MAX);
	if (!json_is_string(q) || json_string_length(q) == 0 ||
	    json_string_length(q) > POLICY_PROM_QUERY_MAX ||
	    json_string_length(q) != strlen(json_string_value(q)))
		return herr_field(err, HERR_INVALID, "query",
				  "must be a PromQL expression of 1 to %d bytes giving one value",
				  POLICY_PROM_QUERY_MAX);
	snprintf(p->prom_url, sizeof(p->prom_url), "%s", json_string_value(url));
	/* without a trailing '/': herd appends /api/v1/query */
	for (size_t n = strlen(p->prom_url); n > 0 && p->prom_url[n - 1] == '/'; n--)
		p->prom_url[n - 1] = '\0';
	snprintf(p->prom_query, sizeof(p->prom_query), "%s", json_string_value(q));
	return 0;
}

/* See model/policy.h: 0, or HERR_INVALID with err->field the offending key
 * relative to the policy. */
int
policy_parse(const char *name, const json_t *spec, struct policy *p, struct herr *err)
{
	json_t *when = json_object_get(spec, "when"), *target = json_object_get(spec, "target");
	json_t *sched = json_object_get(spec, "schedule"), *adj = json_object_get(spec, "adjust");
	json_t *tol = json_object_get(spec, "tolerance"), *tzv = json_object_get(spec, "timezone");
	json_t *modev = json_object_get(spec, "mode");
	const char *bt = json_string_value(json_object_get(spec, "before_terminate"));
	char m[sizeof(err->msg)];

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	p->set_min = p->set_desired = p->set_max = -1;
	if (!json_is_object(spec))
		return herr_field(err, HERR_INVALID, "", "a policy is a mapping");
	if ((when != NULL) + (target != NULL) + (sched != NULL) != 1)
		return herr_field(err, HERR_INVALID, "when",
				  "a policy needs exactly one of when (threshold), target (tracking) or schedule");
	if (duration_field(spec, "cooldown", 60000, &p->cooldown_ms, err) < 0 ||
	    duration_field(spec, "for", 0, &p->for_ms, err) < 0 ||
	    duration_field(spec, "drain_timeout", 5 * 60000, &p->drain_timeout_ms, err) < 0)
		return err->code;
	if (modev && (!json_is_string(modev) || (strcmp(json_string_value(modev), "active") != 0 &&
						 strcmp(json_string_value(modev), "shadow") != 0)))
		return herr_field(err, HERR_INVALID, "mode", "must be active or shadow");
	p->shadow = modev && strcmp(json_string_value(modev), "shadow") == 0;
	if (bt)
		snprintf(p->before_terminate, sizeof(p->before_terminate), "%s", bt);
	if (prom_fields(spec, p, err) < 0)
		return err->code;
	if (when) {
		p->kind = POL_STEP;
		if (expr_field(spec, "when", p->prom_url[0] != '\0', &p->cond, err) < 0)
			return err->code;
		if (p->cond.op == OP_EQ)
			return herr_field(err, HERR_INVALID, "when",
					  "use >, >=, < or <= in when ('=' is for target)");
		if (adj == NULL)
			return herr_field(err, HERR_INVALID, "adjust",
					  "is required with when (e.g. +1, -1, +20%%, =5)");
		/* YAML reads "+1" as the integer 1: check it as the text "+1" */
		if (json_is_integer(adj))
			snprintf(m, sizeof(m), "%+lld", (long long)json_integer_value(adj));
		else
			snprintf(m, sizeof(m), "%s", json_is_string(adj) ? json_string_value(adj) : "");
		if (adjust_parse(m, &p->adjust, err) < 0)
			return herr_field(err, HERR_INVALID, "adjust",
					  "must be an adjustment like +1, -2, +20%% or =5");
	} else if (target) {
		p->kind = POL_TARGET;
		if (expr_field(spec, "target", p->prom_url[0] != '\0', &p->cond, err) < 0)
			return err->code;
		if (p->cond.op != OP_EQ)
			return herr_field(err, HERR_INVALID, "target", "must be like '%s'",
					  p->prom_url[0] ? "query = 50" : "avg(cpu) = 60");
		if (!(p->cond.value > 0) || !isfinite(p->cond.value))
			return herr_field(err, HERR_INVALID, "target", "the target must be above 0");
		p->tolerance_pct = 10;
		if (tol && (!json_is_integer(tol) || json_integer_value(tol) < 0 ||
			    json_integer_value(tol) > 100))
			return herr_field(err, HERR_INVALID, "tolerance", "must be an integer 0-100");
		if (tol)
			p->tolerance_pct = (int)json_integer_value(tol);
		if (duration_field(spec, "scale_in_cooldown", 3 * p->cooldown_ms,
				   &p->scale_in_cooldown_ms, err) < 0)
			return err->code;
	} else {
		p->kind = POL_SCHEDULE;
		if (!json_is_string(sched) || cron_parse(json_string_value(sched), &p->cron, err) < 0) {
			snprintf(m, sizeof(m), "%s", json_is_string(sched) ? err->msg : "must be a string");
			return herr_field(err, HERR_INVALID, "schedule", "%s", m);
		}
		if (set_field(json_object_get(spec, "set"), p, err) < 0)
			return err->code;
	}
	/* A zone name that does not fit would silently become another zone;
	 * cron_tz_check allows only an IANA name of an existing zone file. */
	if (tzv && (!json_is_string(tzv) || json_string_length(tzv) >= sizeof(p->tz)))
		return herr_field(err, HERR_INVALID, "timezone",
				  "must be an IANA time zone name such as Asia/Shanghai");
	snprintf(p->tz, sizeof(p->tz), "%s", tzv ? json_string_value(tzv) : "UTC");
	if (cron_tz_check(p->tz, err) < 0) {
		snprintf(m, sizeof(m), "%s", err->msg);
		return herr_field(err, HERR_INVALID, "timezone", "%s", m);
	}
	return 0;
}

size_t
policy_thresholds(const struct policy *p, struct policy_threshold *out)
{
	double tol;

	if (p->prom_url[0])
		return 0;   /* a PromQL value: no agent pushes on it */
	switch (p->kind) {
	case POL_STEP:
		snprintf(out[0].metric, sizeof(out[0].metric), "%s", p->cond.metric);
		out[0].op = p->cond.op;
		out[0].value = p->cond.value;
		return 1;
	case POL_TARGET:
		/* policy_decide acts when |value / target - 1| * 100 > tolerance */
		tol = p->tolerance_pct / 100.0;
		snprintf(out[0].metric, sizeof(out[0].metric), "%s", p->cond.metric);
		out[0].op = OP_GT;
		out[0].value = p->cond.value * (1.0 + tol);
		out[1] = out[0];
		out[1].op = OP_LT;
		out[1].value = p->cond.value * (1.0 - tol);
		return 2;
	default:
		return 0;
	}
}

int
policy_cond_format(const struct policy *p, char *out, size_t n)
{
	char e[EXPR_TEXT_MAX];
	const char *paren;

	expr_format(&p->cond, e, sizeof(e));
	if (p->prom_url[0] == '\0' || (paren = strchr(e, ')')) == NULL)
		return snprintf(out, n, "%s", e);
	return snprintf(out, n, "%s%s", POLICY_PROM_METRIC, paren + 1);
}
