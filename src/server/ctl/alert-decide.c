/* ctl/alert-decide.c - the pure half of the alert evaluator (ctl/alert.h):
 * an instance's next state from its condition and clocks, and whether a
 * silence covers it. No I/O; time is passed in. */
#include <string.h>

#include "ctl/alert.h"

void
alert_decide(const struct alert_prev *prev, enum alert_cond cond, int64_t for_ms,
	     int64_t repeat_ms, int64_t now_ms, struct alert_next *out)
{
	out->st = prev->st;
	out->since_ms = prev->since_ms;
	out->started_ms = prev->started_ms;
	out->last_event_ms = prev->last_event_ms;
	out->ev = EV_NONE;
	out->changed = false;
	if (cond == COND_UNKNOWN && prev->st != AL_FIRING)
		return;
	if (cond == COND_FALSE) {
		if (prev->st == AL_FIRING)
			out->ev = EV_RESOLVED;
		if (prev->st != AL_INACTIVE) {
			out->st = AL_INACTIVE;
			out->changed = true;
		}
		return;
	}
	if (prev->st == AL_INACTIVE) {
		out->st = AL_PENDING;
		out->since_ms = now_ms;
		out->started_ms = out->last_event_ms = 0;
		out->changed = true;
	}
	if (out->st == AL_PENDING && now_ms - out->since_ms >= for_ms) {
		out->st = AL_FIRING;
		out->since_ms = out->started_ms = out->last_event_ms = now_ms;
		out->ev = EV_FIRING;
		out->changed = true;
		return;
	}
	if (out->st == AL_FIRING && repeat_ms > 0 && now_ms - out->last_event_ms >= repeat_ms) {
		out->last_event_ms = now_ms;
		out->ev = EV_REPEAT;
		out->changed = true;
	}
}

bool
alert_is_silenced(const json_t *silences, const char *rule, const char *cluster,
		  const char *group, int64_t now_ms)
{
	const json_t *x;
	size_t i;

	json_array_foreach(silences, i, x) {
		const char *r = json_string_value(json_object_get(x, "rule"));
		const char *c = json_string_value(json_object_get(x, "cluster"));
		const char *g = json_string_value(json_object_get(x, "group"));

		if (json_integer_value(json_object_get(x, "until_ms")) <= now_ms)
			continue;
		if (r == NULL || strcmp(r, rule) != 0)
			continue;
		if (c && *c && strcmp(c, cluster) != 0)
			continue;
		if (g && *g && strcmp(g, group) != 0)
			continue;
		return true;
	}
	return false;
}
