/* model/alert-event.h - alerting's transitions, one row each: an alert
 * instance (a rule, the cluster/group it watches and a key within it, such
 * as a host) going firing or resolved, or firing again after the rule's
 * repeat interval. Pending is a state of the evaluator, never an event: only
 * what people are told is recorded. The table is both the history (`herd
 * alert history`) and the outbox: the evaluator adds a row in the same
 * transaction as the state change it records, and each notifier tails the
 * rows after the last id it delivered, so a crash between the two loses
 * nothing and acts on nothing twice that was acknowledged. */
#ifndef HERD_MODEL_ALERT_EVENT_H
#define HERD_MODEL_ALERT_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define ALERT_FIRING "firing"
#define ALERT_RESOLVED "resolved"

struct alert_event {
	int64_t id;             /* set by alert_event_add */
	int64_t ts_ms;          /* when the transition was decided (wall) */
	const char *rule;       /* "host_failed", or a user rule's name */
	const char *cluster;    /* "" = none */
	const char *group;      /* "" = the whole cluster (or none) */
	const char *key;        /* the instance within rule + group: a host name, or "" */
	const char *state;      /* ALERT_FIRING or ALERT_RESOLVED */
	const char *severity;   /* "critical", "warning" or "info" */
	const char *summary;    /* for people, hosts and values filled in */
	json_t *labels;         /* borrowed object of string values, or NULL = {} */
	double value;           /* the value that decided it; NAN = none */
	int64_t started_ms;     /* when this instance began firing */
	bool repeat;            /* a reminder of a firing alert, not a transition */
	bool silenced;          /* recorded, but notifiers send nothing for it */
};

/* Records ev (in the caller's transaction if one is open); sets ev->id.
 * Refuses an unknown state or severity (HERR_INVALID). */
int alert_event_add(struct store *st, struct alert_event *ev, struct herr *err);

/* The events with id > after_id, oldest first, at most limit (1..10000),
 * optionally of one rule and/or cluster/group (NULL or "" = any): an owned
 * array of objects {id, ts_ms, rule, cluster, group, key, state, severity,
 * summary, labels (object), value (null when none), started_ms, repeat,
 * silenced}. 0 or a store error. */
int alert_event_list(struct store *st, int64_t after_id, int limit, const char *rule,
		     const char *cluster, const char *group, json_t **out, struct herr *err);

/* The same, newest first: the events with id < before_id (0 = from the
 * newest), at most limit (1..10000). What the console pages back with. */
int alert_event_list_before(struct store *st, int64_t before_id, int limit, const char *rule,
			    const char *cluster, const char *group, json_t **out, struct herr *err);

#endif
