/* model/alert-delivery.h - alert delivery's own state, one row per
 * receiver (table alert_deliveries): the cursor (the last alert_events id
 * delivered or dropped: everything after it is still owed), counters, and
 * the retry state people see on GET /v1/alerts/receivers. The delivery
 * worker (ctl/notify.c) sends, then moves the cursor: a crash in between
 * sends that notification again (at-least-once), never skips one. */
#ifndef HERD_MODEL_ALERT_DELIVERY_H
#define HERD_MODEL_ALERT_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

struct alert_delivery {
	int64_t cursor;          /* last alert_events id done with */
	int64_t sent, failed, dropped;   /* notifications delivered; attempts failed; refused for good */
	int failures;            /* failed attempts in a row (0 after a success) */
	int64_t next_retry_ms;   /* wall ms; 0 = none pending */
};

/* Loads receiver's row into d, creating it when there is none: a new
 * receiver starts after the newest event (it is owed what happens from
 * now on, not the history). 0 or the store's error. */
int alert_delivery_load(struct store *st, const char *receiver, struct alert_delivery *d,
			struct herr *err);
/* Done with the events up to cursor: delivered (dropped false) or refused
 * for good (dropped true, why says so). Resets the failures in a row. */
int alert_delivery_ack(struct store *st, const char *receiver, int64_t cursor, bool dropped,
		       const char *why, int64_t now_ms, struct herr *err);
/* Passes over the events up to cursor: none of them is for this receiver
 * (silenced, or not matched). */
int alert_delivery_skip(struct store *st, const char *receiver, int64_t cursor, struct herr *err);
/* An attempt failed and will be retried at next_retry_ms (wall). */
int alert_delivery_fail(struct store *st, const char *receiver, int failures,
			int64_t next_retry_ms, const char *why, int64_t now_ms, struct herr *err);
/* Forgets the rows of receivers that no longer exist: one made again
 * under the same name starts afresh (after the newest event), not with
 * the backlog since the old one went. */
int alert_delivery_prune(struct store *st, struct herr *err);
/* Every receiver resource with its delivery state (an owned array of
 * {name, type, url, cursor, pending, sent, failed, dropped, failures,
 * last_error, last_error_at, next_retry_at, last_sent_at}; never a
 * secret), ordered by name. 0 or the store's error. */
int alert_delivery_list(struct store *st, json_t **out, struct herr *err);

#endif
