/* model/alert-state.h - the alert evaluator's memory and the operators'
 * silences. An alert instance (rule, cluster, group, key) that is pending
 * or firing has a row in alert_states; an inactive one has none. The
 * evaluator (ctl/alert.c) writes a row in the same transaction as the
 * alert_events row (model/alert-event.h) of the transition it records.
 * A silence mutes a rule (everywhere, in a cluster, or in one group) until
 * its expiry; an expired one is simply no longer read. */
#ifndef HERD_MODEL_ALERT_STATE_H
#define HERD_MODEL_ALERT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define ALERT_PENDING "pending"
#define ALERT_SILENCE_REASON_MAX 512
#define ALERT_SILENCES_MAX 1000       /* active at once */

struct alert_inst {
	const char *rule, *cluster, *group, *key;
	const char *state;          /* ALERT_PENDING or ALERT_FIRING */
	int64_t since_ms;           /* in this state since */
	int64_t started_ms;         /* began firing (0 while pending) */
	int64_t last_event_ms;      /* last firing event (or repeat) */
	const char *severity, *summary;
	double value;               /* NAN = none */
	bool silenced;
};

/* The instances (owned array of objects {rule, cluster, group, key, state,
 * since_ms, started_ms, last_event_ms, severity, summary, value (null when
 * none), silenced}), optionally of one rule and/or cluster/group (NULL or
 * "" = any), rule then cluster, group, key order. */
int alert_state_list(struct store *st, const char *rule, const char *cluster, const char *group,
		     json_t **out, struct herr *err);

/* Writes (inserts or replaces) instance a. */
int alert_state_put(struct store *st, const struct alert_inst *a, struct herr *err);

/* Removes an instance (it became inactive). */
int alert_state_del(struct store *st, const char *rule, const char *cluster, const char *group,
		    const char *key, struct herr *err);

/* Adds a silence of rule ("" cluster/group = everywhere; a cluster alone =
 * all its groups) until until_ms; *id its id. HERR_TOOBIG past
 * ALERT_SILENCES_MAX active ones. */
int alert_silence_add(struct store *st, const char *rule, const char *cluster, const char *group,
		      const char *reason, const char *by, int64_t now_ms, int64_t until_ms,
		      int64_t *id, struct herr *err);

/* The silences still in force at now_ms: owned array of {id, rule,
 * cluster, group, reason, created_by, created_ms, until_ms}, oldest first. */
int alert_silence_list(struct store *st, int64_t now_ms, json_t **out, struct herr *err);

/* Deletes silence id: 0 or HERR_NOTFOUND. */
int alert_silence_delete(struct store *st, int64_t id, struct herr *err);

#endif
