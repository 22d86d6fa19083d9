/* ctl/notify.c - the alert delivery worker (ctl/notify.h): one thread,
 * every receiver in turn each pass (woken by any change, else every
 * second): plan (notify_plan_decide), send, then record the outcome and
 * move the cursor. It never holds a lock a controller or the API takes
 * while sending; a receiver that is down costs the others at most its
 * timeout per retry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ctl/notify.h"
#include "ctl/lease.h"
#include "log.h"
#include "model/activity.h"
#include "model/alert-delivery.h"
#include "model/alert-event.h"
#include "model/res.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

struct notify_ctl {
	struct server *s;
	pthread_t thread;
	bool started;
};

static struct notify_ctl *g_notify;

static const char *
str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool
same_alert(const json_t *a, const json_t *b)
{
	return strcmp(str_of(a, "rule"), str_of(b, "rule")) == 0 &&
	       strcmp(str_of(a, "cluster"), str_of(b, "cluster")) == 0 &&
	       strcmp(str_of(a, "group"), str_of(b, "group")) == 0;
}

void
notify_plan_decide(const struct receiver *r, const json_t *events, bool complete, int64_t now_ms,
		   struct notify_plan *p)
{
	const json_t *first = NULL, *ev;
	bool closed = false;
	size_t i;

	memset(p, 0, sizeof(*p));
	json_array_foreach(events, i, ev) {
		bool takes = !json_is_true(json_object_get(ev, "silenced")) && receiver_match(r, ev);

		if (takes && first && (!same_alert(first, ev) || p->n == NOTIFY_BATCH_MAX)) {
			closed = true;
			break;
		}
		p->cursor = json_integer_value(json_object_get(ev, "id"));
		if (!takes)
			continue;
		if (first == NULL)
			first = ev;
		p->idx[p->n++] = i;
	}
	if (p->n == 0)
		return;
	/* a full window may hold more of the batch's events: not closed */
	if (!closed && complete) {
		int64_t until = json_integer_value(json_object_get(first, "ts_ms")) + r->group_wait_ms;

		if (now_ms < until)
			p->wait_until_ms = until;
	}
}

/* The batch of plan p as an array (borrowed events). */
static json_t *
batch_of(const json_t *events, const struct notify_plan *p)
{
	json_t *b = json_array();

	for (size_t i = 0; i < p->n; i++)
		json_array_append(b, json_array_get(events, p->idx[i]));
	return b;
}

/* One receiver, one step. *wake_ms (wall) is lowered to when it next
 * needs a look. */
static void
receiver_pass(struct server *s, const char *name, const json_t *spec, int64_t *wake_ms)
{
	struct herr err = HERR_INIT, e2 = HERR_INIT;
	struct alert_delivery d;
	struct notify_plan plan;
	struct receiver r;
	json_t *events = NULL, *batch;
	int64_t now = now_ms();
	long status = 0;
	int rc;

	if (receiver_parse(name, spec, &r, &err) < 0)
		return;   /* refused at apply: only a spec from an older herd gets here */
	if (alert_delivery_load(s->store, name, &d, &err) < 0) {
		log_warn("notify: receiver '%s': %s", name, err.msg);
		return;
	}
	if (d.next_retry_ms > now) {
		*wake_ms = d.next_retry_ms < *wake_ms ? d.next_retry_ms : *wake_ms;
		return;
	}
	if (alert_event_list(s->store, d.cursor, NOTIFY_WINDOW, NULL, NULL, NULL, &events, &err) < 0) {
		log_warn("notify: receiver '%s': %s", name, err.msg);
		return;
	}
	notify_plan_decide(&r, events, json_array_size(events) < NOTIFY_WINDOW, now, &plan);
	if (plan.n == 0) {
		if (plan.cursor > d.cursor &&
		    alert_delivery_skip(s->store, name, plan.cursor, &err) < 0)
			log_warn("notify: receiver '%s': %s", name, err.msg);
		goto out;
	}
	if (plan.wait_until_ms > 0) {
		*wake_ms = plan.wait_until_ms < *wake_ms ? plan.wait_until_ms : *wake_ms;
		goto out;
	}
	batch = batch_of(events, &plan);
	rc = notify_send(&r, batch, &status, &err);
	json_decref(batch);
	now = now_ms();
	switch (notify_classify(rc, status, r.type == NOTIFY_EMAIL)) {
	case NOTIFY_OK:
		if (alert_delivery_ack(s->store, name, plan.cursor, false, NULL, now, &e2) < 0)
			log_warn("notify: receiver '%s': %s", name, e2.msg);
		*wake_ms = now;    /* more may be waiting */
		break;
	case NOTIFY_DROP: {
		char why[300];

		if (rc < 0)
			snprintf(why, sizeof(why), "%s", err.msg);
		else
			snprintf(why, sizeof(why), "refused with %ld: dropped", status);
		log_warn("notify: receiver '%s': events up to %lld %s", name, (long long)plan.cursor, why);
		if (alert_delivery_ack(s->store, name, plan.cursor, true, why, now, &e2) < 0)
			log_warn("notify: receiver '%s': %s", name, e2.msg);
		activity_add(s->store, str_of(json_array_get(events, plan.idx[0]), "cluster"),
			     str_of(json_array_get(events, plan.idx[0]), "group"), NULL,
			     "alert_dropped", "notify", NULL, &e2,
			     "receiver '%s' refused a notification of %zu event(s) of '%s' for good: %s",
			     name, plan.n, str_of(json_array_get(events, plan.idx[0]), "rule"), why);
		*wake_ms = now;
		break;
	}
	case NOTIFY_RETRY: {
		int64_t wait = notify_backoff_ms(d.failures + 1, randombytes_uniform(1000000) / 1e6);
		char why[300];

		if (rc < 0)
			snprintf(why, sizeof(why), "%s", err.msg);
		else
			snprintf(why, sizeof(why), "answered %ld", status);
		if (d.failures == 0)
			log_warn("notify: receiver '%s': %s; retrying", name, why);
		if (alert_delivery_fail(s->store, name, d.failures + 1, now + wait, why, now, &e2) < 0)
			log_warn("notify: receiver '%s': %s", name, e2.msg);
		*wake_ms = now + wait < *wake_ms ? now + wait : *wake_ms;
		break;
	}
	}
out:
	json_decref(events);
}

static void
notify_once(struct server *s, int64_t *wake_ms)
{
	struct herr err = HERR_INIT;
	json_t *recs = NULL, *x;
	size_t i;

	if (res_all(s->store, &kind_receiver, NULL, &recs, &err) < 0) {
		log_warn("notify: %s", err.msg);
		return;
	}
	json_array_foreach(recs, i, x) {
		if (s->stopping)
			break;
		receiver_pass(s, str_of(x, "name"), json_object_get(x, "spec"), wake_ms);
	}
	json_decref(recs);
	if (alert_delivery_prune(s->store, &err) < 0)
		log_warn("notify: %s", err.msg);
}

static void *
notify_main(void *arg)
{
	struct notify_ctl *n = arg;
	struct server *s = n->s;

	while (!s->stopping) {
		int64_t wake = now_ms() + 1000, now;
		uint64_t seen;
		struct timespec ts;

		pthread_mutex_lock(&s->lock);
		seen = s->generation;
		pthread_mutex_unlock(&s->lock);
		if (leader_pass(s, NULL))   /* only the leader delivers */
			notify_once(s, &wake);
		now = now_ms();
		if (wake <= now)
			continue;
		if (wake > now + 1000)
			wake = now + 1000;   /* new events come without a kick too */
		pthread_mutex_lock(&s->lock);
		if (s->generation == seen && !s->stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (wake - now) / 1000;
			ts.tv_nsec += ((wake - now) % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->kick, &s->lock, &ts);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

int
notify_start(struct server *s, struct herr *err)
{
	struct notify_ctl *n = xcalloc(1, sizeof(*n));

	n->s = s;
	g_notify = n;
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0)
		return herr_set(err, -errno, "cannot start the alert delivery thread");
	n->started = true;
	return 0;
}

void
notify_stop(struct server *s)
{
	struct notify_ctl *n = g_notify;

	if (n == NULL)
		return;
	notify_abort_sends();
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->kick);
	pthread_mutex_unlock(&s->lock);
	if (n->started)
		pthread_join(n->thread, NULL);
	g_notify = NULL;
	free(n);
}
