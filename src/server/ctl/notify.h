/* ctl/notify.h - the alert delivery worker: its own thread tails the
 * alert_events outbox for each receiver, in order, from the receiver's
 * cursor (model/alert-delivery.h), groups consecutive events of one rule
 * and cluster/group for group_wait, sends through the receiver's channel
 * (notify/), retries with jittered exponential backoff while the receiver
 * is down, and moves the cursor only after success (at-least-once).
 * Decide = notify_plan_decide (pure, here); act = ctl/notify.c. */
#ifndef HERD_CTL_NOTIFY_H
#define HERD_CTL_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "notify/notify.h"
#include "server.h"

#define NOTIFY_WINDOW 500    /* events read after the cursor per pass */

/* What to do next for one receiver. */
struct notify_plan {
	size_t idx[NOTIFY_BATCH_MAX]; /* the batch: indices into events, in order */
	size_t n;                     /* 0 = nothing to send */
	int64_t cursor;               /* the cursor once the batch is done (or now, when
				       * n == 0: past events not for this receiver); 0 = stay */
	int64_t wait_until_ms;        /* > 0: the batch is waiting for group_wait until then */
};

/* Plans from events (alert_event_list objects after the cursor, oldest
 * first; `complete` true when they are all there are, i.e. fewer than the
 * window) for r at now_ms (wall). A batch is the first event r takes
 * (not silenced, matched) and the events after it of the same rule,
 * cluster and group, up to NOTIFY_BATCH_MAX, until one r takes of another
 * rule or place; events r does not take inside or before it are passed
 * over by the same cursor move. It waits until its first event's time +
 * group_wait unless it cannot grow any more (full, or closed by another
 * alert's event). */
void notify_plan_decide(const struct receiver *r, const json_t *events, bool complete,
			int64_t now_ms, struct notify_plan *p);

/* Starts the worker thread. */
int notify_start(struct server *s, struct herr *err);
/* Stops it (after ctl_stop set s->stopping): a send under way is cut. */
void notify_stop(struct server *s);

#endif
