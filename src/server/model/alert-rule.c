/* model/alert-rule.c - alert rules (model/alert-rule.h): the built-in
 * table, the one validator of `alerts:` entries, and the summary template. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/alert-rule.h"
#include "util.h"

/* Derived from facts herd already records (ctl/alert.c reads them). */
const struct alert_builtin alert_builtins[] = {
	{ "host_failed", "critical", "host {{host}} of {{cluster}}/{{group}} failed: {{reason}}",
	  "a host of the group is in state failed (it is replaced; resolved when it is removed)", 0 },
	{ "init_script_failed", "critical",
	  "an init script failed on {{host}} ({{cluster}}/{{group}}): {{reason}}",
	  "a host joined but reported its init scripts failed", 0 },
	{ "launch_failing", "critical", "{{cluster}}/{{group}} cannot launch hosts: {{reason}}",
	  "the group is short of hosts and its last launch failed (provider errors, quota, credentials): a host failed before it got an instance, a launch made no host, or its network could not be made", 0 },
	{ "agent_silent", "warning", "the agent of {{host}} ({{cluster}}/{{group}}) is silent: {{reason}}",
	  "a host is unhealthy: its heartbeats stopped for unhealthy_after", 0 },
	{ "group_at_max", "warning",
	  "{{cluster}}/{{group}} is at its max while policy {{policy}} wants more ({{value}})",
	  "the autoscaler's last evaluation of a policy was blocked at the group's max", 0 },
	{ "policy_blocked_missing_data", "warning",
	  "policy {{policy}} of {{cluster}}/{{group}} is not evaluated: {{reason}}",
	  "the autoscaler's last evaluation of a policy had no (fresh) data", 60 },
	{ "drain_timed_out", "warning",
	  "the drain of {{host}} ({{cluster}}/{{group}}) timed out: it was terminated anyway",
	  "a scale-in victim's before_terminate script ran past drain_timeout (fires for one pass: the host is gone)",
	  0 },
	{ "lb_member_down", "warning",
	  "{{host}} ({{cluster}}/{{group}}) is down at load balancer {{lb}}: {{reason}}",
	  "an active member of a load balancer fails the LB's health check (as the last lb-sync pass saw it)",
	  0 },
	{ "group_flapping", "warning",
	  "{{cluster}}/{{group}} is flapping: its policies changed direction {{value}} times in the last hour",
	  "the autoscaler's policies changed the group's size in opposite directions more than "
	  "ALERT_FLAP_LIMIT (3) times in ALERT_FLAP_WINDOW (1 h): flap_counter_decide over the scale "
	  "activities (`herd policy check` tells why)", 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

const struct alert_builtin *
alert_builtin_find(const char *name)
{
	for (const struct alert_builtin *b = alert_builtins; name && b->name; b++)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

void
alert_rule_builtin(const struct alert_builtin *b, struct alert_rule *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", b->name);
	out->builtin = true;
	out->enabled = true;
	out->repeat_ms = ALERT_REPEAT_DEFAULT_MS;
	out->for_ms = (int64_t)b->for_s * 1000;
	snprintf(out->severity, sizeof(out->severity), "%s", b->severity);
	snprintf(out->summary, sizeof(out->summary), "%s", b->summary);
	snprintf(out->origin, sizeof(out->origin), "builtin");
}

static const char *const placeholders[] = {
	"rule", "cluster", "group", "host", "hosts", "reason", "policy", "lb", "value", "threshold",
	NULL,
};

bool
alert_template_ok(const char *t, char *bad, size_t nbad)
{
	const char *p = t, *e;

	while ((p = strstr(p, "{{")) != NULL) {
		bool known = false;
		size_t len;

		if ((e = strstr(p + 2, "}}")) == NULL) {
			snprintf(bad, nbad, "%.40s", p);
			return false;
		}
		len = (size_t)(e - p - 2);
		for (const char *const *k = placeholders; *k; k++)
			known = known || (strlen(*k) == len && strncmp(*k, p + 2, len) == 0);
		if (!known) {
			snprintf(bad, nbad, "%.*s", (int)(len < 40 ? len : 40), p + 2);
			return false;
		}
		p = e + 2;
	}
	return true;
}

static const char *
var_text(const struct alert_vars *v, const char *k, size_t len, char *num, size_t nnum)
{
#define IS(s) (strlen(s) == len && strncmp(s, k, len) == 0)
	if (IS("rule")) return v->rule;
	if (IS("cluster")) return v->cluster;
	if (IS("group")) return v->group;
	if (IS("host")) return v->host;
	if (IS("hosts")) return v->hosts;
	if (IS("reason")) return v->reason;
	if (IS("policy")) return v->policy;
	if (IS("lb")) return v->lb;
	if (IS("value") || IS("threshold")) {
		double d = IS("value") ? v->value : v->threshold;
		if (!isfinite(d))
			return "";
		snprintf(num, nnum, "%.4g", d);
		return num;
	}
	return NULL;
#undef IS
}

void
alert_render(const char *t, const struct alert_vars *v, char *out, size_t n)
{
	size_t o = 0;
	char num[40];

	if (n == 0)
		return;
	while (*t && o + 1 < n) {
		const char *e, *x;

		if (t[0] == '{' && t[1] == '{' && (e = strstr(t + 2, "}}")) != NULL &&
		    (x = var_text(v, t + 2, (size_t)(e - t - 2), num, sizeof(num))) != NULL) {
			while (*x && o + 1 < n)
				out[o++] = *x++;
			t = e + 2;
			continue;
		}
		out[o++] = *t++;
	}
	out[o] = '\0';
}

static int
dur(const json_t *spec, const char *key, int64_t dflt, int64_t *out, struct herr *err)
{
	const json_t *v = json_object_get(spec, key);

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || parse_duration_ms(json_string_value(v), out) < 0 || *out < 0)
		return herr_field(err, HERR_INVALID, key,
				  "must be a duration like '30s', '5m' or '4h'");
	if (*out > ALERT_DURATION_MAX_S * 1000)
		return herr_field(err, HERR_INVALID, key, "must be at most 7d");
	return 0;
}

int
alert_rule_parse(const json_t *spec, struct alert_rule *out, struct herr *err)
{
	static const char *const fields[] = { "name", "when", "for", "severity", "labels", "summary",
					      "repeat", "enabled", "description", NULL };
	const char *name = json_string_value(json_object_get(spec, "name"));
	const json_t *when = json_object_get(spec, "when"), *v;
	const struct alert_builtin *b;
	const char *key;
	char bad[48];

	memset(out, 0, sizeof(*out));
	if (!json_is_object(spec))
		return herr_field(err, HERR_INVALID, "", "an alert rule must be a mapping");
	json_object_foreach((json_t *)spec, key, v) {
		bool known = false;
		for (const char *const *f = fields; *f; f++)
			known = known || strcmp(*f, key) == 0;
		if (!known)
			return herr_field(err, HERR_INVALID, key, "unknown field '%s' for an alert rule",
					  key);
	}
	if (name == NULL || !name_is_valid(name) || strlen(name) >= ALERT_NAME_MAX) {
		/* built-in names have '_': a rule name is [a-z0-9_-] */
		const char *p = name;
		bool ok = name && *name && strlen(name) < ALERT_NAME_MAX;
		for (; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
		if (!ok)
			return herr_field(err, HERR_INVALID, "name",
					  "must be a rule name of 1-63 characters [a-z0-9_-]");
	}
	if ((b = alert_builtin_find(name)) != NULL) {
		alert_rule_builtin(b, out);
		if (when)
			return herr_field(err, HERR_INVALID, "when",
					  "'%s' is a built-in rule: only severity, summary, for, repeat, labels and enabled may change",
					  name);
	} else {
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->enabled = true;
		out->repeat_ms = ALERT_REPEAT_DEFAULT_MS;
		snprintf(out->severity, sizeof(out->severity), "warning");
		snprintf(out->summary, sizeof(out->summary),
			 "{{rule}}: {{cluster}}/{{group}} value {{value}} (threshold {{threshold}})");
		if (when == NULL)
			return herr_field(err, HERR_INVALID, "when",
					  "is required (a condition like 'avg(busy) > 36'), unless the name is a built-in rule's");
		if (!json_is_string(when) || expr_parse(json_string_value(when), &out->cond, err) < 0) {
			char m[sizeof(err->msg)];
			snprintf(m, sizeof(m), "%s", json_is_string(when) ? err->msg : "must be a string");
			return herr_field(err, HERR_INVALID, "when", "%s", m);
		}
		if (out->cond.op == OP_EQ)
			return herr_field(err, HERR_INVALID, "when", "must compare with > >= < or <=");
		out->has_expr = true;
	}
	if (dur(spec, "for", out->for_ms, &out->for_ms, err) < 0 ||
	    dur(spec, "repeat", out->repeat_ms, &out->repeat_ms, err) < 0)
		return err->code;
	if (json_object_get(spec, "repeat") && out->repeat_ms < 60000)
		return herr_field(err, HERR_INVALID, "repeat", "must be at least 1m");
	if ((v = json_object_get(spec, "severity")) != NULL) {
		const char *s = json_string_value(v);
		if (s == NULL || (strcmp(s, "critical") && strcmp(s, "warning") && strcmp(s, "info")))
			return herr_field(err, HERR_INVALID, "severity",
					  "must be critical, warning or info");
		snprintf(out->severity, sizeof(out->severity), "%s", s);
	}
	if ((v = json_object_get(spec, "enabled")) != NULL) {
		if (!json_is_boolean(v))
			return herr_field(err, HERR_INVALID, "enabled", "must be true or false");
		out->enabled = json_is_true(v);
	}
	if ((v = json_object_get(spec, "summary")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) >= ALERT_SUMMARY_MAX)
			return herr_field(err, HERR_INVALID, "summary",
					  "must be a string of at most %d characters", ALERT_SUMMARY_MAX - 1);
		if (!alert_template_ok(json_string_value(v), bad, sizeof(bad)))
			return herr_field(err, HERR_INVALID, "summary",
					  "unknown placeholder '{{%s}}' (known: rule, cluster, group, host, hosts, reason, policy, lb, value, threshold)",
					  bad);
		snprintf(out->summary, sizeof(out->summary), "%s", json_string_value(v));
	}
	if ((v = json_object_get(spec, "labels")) != NULL) {
		const char *lk;
		json_t *lv;
		if (!json_is_object(v) || json_object_size(v) > 32)
			return herr_field(err, HERR_INVALID, "labels",
					  "must be a mapping of at most 32 strings");
		json_object_foreach((json_t *)v, lk, lv)
			if (!json_is_string(lv) || json_string_length(lv) > 256)
				return herr_field(err, HERR_INVALID, "labels",
						  "label '%s' must be a string of at most 256 characters", lk);
		out->labels = v;
	}
	if ((v = json_object_get(spec, "description")) != NULL && !json_is_string(v))
		return herr_field(err, HERR_INVALID, "description", "must be a string");
	return 0;
}

int
alert_rules_check(const json_t *list, const char *path, struct herr *err)
{
	struct alert_rule r;
	const json_t *x;
	size_t i, k;
	char field[sizeof(err->field)], msg[sizeof(err->msg)];

	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > 100)
		return herr_field(err, HERR_INVALID, path, "must be a list of at most 100 rules");
	json_array_foreach(list, i, x) {
		if (alert_rule_parse(x, &r, err) < 0) {
			snprintf(field, sizeof(field), "%s", err->field);
			snprintf(msg, sizeof(msg), "%s", err->msg);
			char fp[300];
			snprintf(fp, sizeof(fp), "%s[%zu]%s%s", path, i, *field ? "." : "", field);
			return herr_field(err, HERR_INVALID, fp, "%s", msg);
		}
		for (k = 0; k < i; k++)
			if (strcmp(json_string_value(json_object_get(json_array_get(list, k), "name")),
				   r.name) == 0) {
				char fp[300];
				snprintf(fp, sizeof(fp), "%s[%zu].name", path, i);
				return herr_field(err, HERR_INVALID, fp, "duplicate alert rule '%s'", r.name);
			}
	}
	herr_clear(err);
	return 0;
}
