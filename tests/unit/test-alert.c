/* test-alert.c - the alert evaluator's pure half (ctl/alert-decide.c) with
 * an injected clock: pending then firing after `for`, resolved on recovery,
 * pending ended silently, unknown data neither firing nor resolving, the
 * repeat interval, silences and their expiry; and the rule validator and
 * summary template (model/alert-rule.c): the fields it refuses, by name. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/alert.h"
#include "model/alert-rule.h"

#define T0 1700000000000LL
#define SEC 1000LL

/* Steps one instance through cond at now; returns the event. */
static enum alert_ev
step(struct alert_prev *p, enum alert_cond cond, int64_t for_ms, int64_t repeat_ms, int64_t now)
{
	struct alert_next n;

	alert_decide(p, cond, for_ms, repeat_ms, now, &n);
	p->st = n.st;
	p->since_ms = n.since_ms;
	p->started_ms = n.started_ms;
	p->last_event_ms = n.last_event_ms;
	return n.ev;
}

static void
test_pending_then_firing_after_for(void **state)
{
	struct alert_prev p = { AL_INACTIVE, 0, 0, 0 };

	(void)state;
	assert_int_equal(step(&p, COND_TRUE, 10 * SEC, 0, T0), EV_NONE);
	assert_int_equal(p.st, AL_PENDING);
	assert_int_equal(step(&p, COND_TRUE, 10 * SEC, 0, T0 + 9 * SEC), EV_NONE);
	assert_int_equal(p.st, AL_PENDING);
	assert_int_equal(step(&p, COND_TRUE, 10 * SEC, 0, T0 + 10 * SEC), EV_FIRING);
	assert_int_equal(p.st, AL_FIRING);
	assert_int_equal(p.started_ms, T0 + 10 * SEC);
	/* still true: no second firing event */
	assert_int_equal(step(&p, COND_TRUE, 10 * SEC, 0, T0 + 20 * SEC), EV_NONE);
	assert_int_equal(step(&p, COND_FALSE, 10 * SEC, 0, T0 + 21 * SEC), EV_RESOLVED);
	assert_int_equal(p.st, AL_INACTIVE);
	assert_int_equal(step(&p, COND_FALSE, 10 * SEC, 0, T0 + 22 * SEC), EV_NONE);
}

static void
test_for_zero_fires_at_once(void **state)
{
	struct alert_prev p = { AL_INACTIVE, 0, 0, 0 };

	(void)state;
	assert_int_equal(step(&p, COND_TRUE, 0, 0, T0), EV_FIRING);
	assert_int_equal(p.st, AL_FIRING);
}

static void
test_pending_ends_silently(void **state)
{
	struct alert_prev p = { AL_INACTIVE, 0, 0, 0 };
	struct alert_next n;

	(void)state;
	step(&p, COND_TRUE, 10 * SEC, 0, T0);
	alert_decide(&p, COND_FALSE, 10 * SEC, 0, T0 + 5 * SEC, &n);
	assert_int_equal(n.ev, EV_NONE);
	assert_int_equal(n.st, AL_INACTIVE);
	assert_true(n.changed);
}

static void
test_unknown_keeps_state(void **state)
{
	struct alert_prev p = { AL_INACTIVE, 0, 0, 0 };
	struct alert_next n;

	(void)state;
	/* no data never fires an inactive rule */
	alert_decide(&p, COND_UNKNOWN, 0, 0, T0, &n);
	assert_int_equal(n.st, AL_INACTIVE);
	assert_false(n.changed);
	/* a pending one holds: it neither fires after `for` nor ends */
	step(&p, COND_TRUE, 10 * SEC, 0, T0);
	alert_decide(&p, COND_UNKNOWN, 10 * SEC, 0, T0 + 60 * SEC, &n);
	assert_int_equal(n.st, AL_PENDING);
	assert_int_equal(n.ev, EV_NONE);
	/* a firing one is never resolved by missing data */
	step(&p, COND_TRUE, 10 * SEC, 0, T0 + 61 * SEC);
	assert_int_equal(p.st, AL_FIRING);
	alert_decide(&p, COND_UNKNOWN, 10 * SEC, 0, T0 + 3600 * SEC, &n);
	assert_int_equal(n.st, AL_FIRING);
	assert_int_equal(n.ev, EV_NONE);
}

static void
test_repeat_interval(void **state)
{
	struct alert_prev p = { AL_INACTIVE, 0, 0, 0 };
	int64_t rep = 4 * 3600 * SEC;

	(void)state;
	assert_int_equal(step(&p, COND_TRUE, 0, rep, T0), EV_FIRING);
	assert_int_equal(step(&p, COND_TRUE, 0, rep, T0 + rep - 1), EV_NONE);
	assert_int_equal(step(&p, COND_TRUE, 0, rep, T0 + rep), EV_REPEAT);
	assert_int_equal(p.started_ms, T0);   /* a reminder, not a new start */
	assert_int_equal(step(&p, COND_TRUE, 0, rep, T0 + rep + 1), EV_NONE);
	/* a firing alert with unknown data is still reminded of */
	assert_int_equal(step(&p, COND_UNKNOWN, 0, rep, T0 + 2 * rep), EV_REPEAT);
	/* repeat 0: never */
	assert_int_equal(step(&p, COND_TRUE, 0, 0, T0 + 10 * rep), EV_NONE);
}

static void
test_silences(void **state)
{
	json_t *s = json_pack("[{s:s,s:s,s:s,s:I},{s:s,s:s,s:s,s:I}]", "rule", "busy", "cluster",
			      "c1", "group", "web", "until_ms", (json_int_t)(T0 + 7200 * SEC), "rule",
			      "host_failed", "cluster", "", "group", "", "until_ms",
			      (json_int_t)(T0 + 60 * SEC));

	(void)state;
	assert_true(alert_is_silenced(s, "busy", "c1", "web", T0));
	assert_false(alert_is_silenced(s, "busy", "c1", "db", T0));
	assert_false(alert_is_silenced(s, "other", "c1", "web", T0));
	assert_true(alert_is_silenced(s, "host_failed", "c2", "x", T0));
	/* expired: stops applying by itself */
	assert_false(alert_is_silenced(s, "host_failed", "c2", "x", T0 + 60 * SEC));
	assert_false(alert_is_silenced(s, "busy", "c1", "web", T0 + 7200 * SEC));
	json_decref(s);
}

static void
refused(const char *json, const char *field)
{
	struct alert_rule r;
	struct herr err = HERR_INIT;
	json_t *spec = json_loads(json, 0, NULL);

	assert_non_null(spec);
	assert_int_equal(alert_rule_parse(spec, &r, &err), HERR_INVALID);
	assert_string_equal(err.field, field);
	json_decref(spec);
}

static void
test_rule_parse(void **state)
{
	struct alert_rule r;
	struct herr err = HERR_INIT;
	json_t *spec = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", "hot", "when", "avg(busy) > 36",
				 "for", "30s", "severity", "critical", "summary",
				 "{{group}} busy {{value}} on {{hosts}}");

	(void)state;
	assert_int_equal(alert_rule_parse(spec, &r, &err), 0);
	assert_true(r.has_expr);
	assert_int_equal(r.for_ms, 30 * SEC);
	assert_int_equal(r.repeat_ms, ALERT_REPEAT_DEFAULT_MS);
	assert_string_equal(r.severity, "critical");
	json_decref(spec);
	refused("{\"name\":\"hot\",\"when\":\"avg(busy >\"}", "when");
	refused("{\"name\":\"hot\",\"when\":\"avg(busy) = 3\"}", "when");
	refused("{\"name\":\"hot\"}", "when");
	refused("{\"name\":\"hot\",\"when\":\"avg(busy) > 3\",\"severity\":\"page\"}", "severity");
	refused("{\"name\":\"hot\",\"when\":\"avg(busy) > 3\",\"for\":\"soon\"}", "for");
	refused("{\"name\":\"hot\",\"when\":\"avg(busy) > 3\",\"summary\":\"{{nope}}\"}", "summary");
	refused("{\"name\":\"hot\",\"when\":\"avg(busy) > 3\",\"colour\":\"red\"}", "colour");
	refused("{\"name\":\"Hot!\",\"when\":\"avg(busy) > 3\"}", "name");
	/* a built-in's name: severity and enabled change, `when` does not */
	refused("{\"name\":\"host_failed\",\"when\":\"avg(busy) > 3\"}", "when");
	spec = json_pack("{s:s,s:s,s:b}", "name", "agent_silent", "severity", "info", "enabled", 0);
	assert_int_equal(alert_rule_parse(spec, &r, &err), 0);
	assert_true(r.builtin);
	assert_false(r.enabled);
	assert_string_equal(r.severity, "info");
	json_decref(spec);
	/* missing data is common while hosts launch: that built-in waits 1m */
	spec = json_pack("{s:s}", "name", "policy_blocked_missing_data");
	assert_int_equal(alert_rule_parse(spec, &r, &err), 0);
	assert_int_equal(r.for_ms, 60 * SEC);
	json_decref(spec);
}

static void
test_rules_check_names_path(void **state)
{
	struct herr err = HERR_INIT;
	json_t *l = json_loads("[{\"name\":\"a\",\"when\":\"max(x) > 1\"},"
			       "{\"name\":\"a\",\"when\":\"max(x) > 2\"}]", 0, NULL);

	(void)state;
	assert_int_equal(alert_rules_check(l, "clusters[0].groups[1].alerts", &err), HERR_INVALID);
	assert_string_equal(err.field, "clusters[0].groups[1].alerts[1].name");
	json_decref(l);
}

static void
test_render(void **state)
{
	struct alert_vars v = { .rule = "hot", .cluster = "c", .group = "web", .hosts = "w1, w2",
				.value = 37.5, .threshold = 36 };
	char out[128];

	(void)state;
	alert_render("{{cluster}}/{{group}} {{value}} > {{threshold}} on {{hosts}}{{x", &v, out,
		     sizeof(out));
	assert_string_equal(out, "c/web 37.5 > 36 on w1, w2{{x");
	alert_render("{{hosts}}", &v, out, 4);
	assert_string_equal(out, "w1,");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_then_firing_after_for),
		cmocka_unit_test(test_for_zero_fires_at_once),
		cmocka_unit_test(test_pending_ends_silently),
		cmocka_unit_test(test_unknown_keeps_state),
		cmocka_unit_test(test_repeat_interval),
		cmocka_unit_test(test_silences),
		cmocka_unit_test(test_rule_parse),
		cmocka_unit_test(test_rules_check_names_path),
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
