/* ctl/alert.h - the alert evaluator: each second (and so at least once per
 * push interval) it evaluates every group's alert rules (user rules on the
 * group's metric aggregates, and the built-ins on facts herd records) and
 * writes each instance's transition with its event (model/alert-state.h,
 * model/alert-event.h). Decide is the pure alert_decide(); act is
 * ctl/alert.c. */
#ifndef HERD_CTL_ALERT_H
#define HERD_CTL_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "server.h"

/* --- decide (pure: no I/O, time passed in) --- */
enum alert_st { AL_INACTIVE, AL_PENDING, AL_FIRING };
enum alert_cond { COND_FALSE, COND_TRUE, COND_UNKNOWN };
enum alert_ev { EV_NONE, EV_FIRING, EV_RESOLVED, EV_REPEAT };

struct alert_prev {
	enum alert_st st;
	int64_t since_ms;       /* in st since */
	int64_t started_ms;     /* began firing */
	int64_t last_event_ms;  /* last firing or repeat event */
};

struct alert_next {
	enum alert_st st;
	int64_t since_ms, started_ms, last_event_ms;
	enum alert_ev ev;       /* the event to record with the change */
	bool changed;           /* st or a clock changed: write the instance */
};

/* The next state of one alert instance. cond is the rule's condition now:
 * true moves inactive -> pending (-> firing at once when for_ms is 0),
 * pending -> firing once it has held for_ms, and a firing one repeats
 * every repeat_ms (0 = never); false ends a pending one silently and
 * resolves a firing one; unknown (no fresh data) changes nothing: a pending
 * alert neither fires nor ends, a firing one stays firing (and repeats),
 * an inactive one stays inactive. */
void alert_decide(const struct alert_prev *prev, enum alert_cond cond, int64_t for_ms,
		  int64_t repeat_ms, int64_t now_ms, struct alert_next *out);

/* Whether a silence of the list (alert_silence_list rows) still in force
 * at now_ms covers rule in cluster/group. */
bool alert_is_silenced(const json_t *silences, const char *rule, const char *cluster,
		       const char *group, int64_t now_ms);

/* --- act --- */
int alert_start(struct server *s, struct herr *err);
void alert_stop(struct server *s);

/* The rules in force for every group (built-ins as overridden, then user
 * rules), each {name, cluster, group, builtin, enabled, severity, when,
 * for, repeat, summary, origin}: owned, or NULL with err set. */
json_t *alert_rules_effective(struct server *s, struct herr *err);

#endif
