/* wake.c - wake-ups across the servers sharing a store: the pure payload
 * functions, the announcer thread (one NOTIFY per WAKE_COALESCE_MS at most,
 * gathering the kicks between) and the listener's callback, which wakes this
 * server without announcing again. See wake.h and docs/ha.md. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"
#include "store/store.h"
#include "util.h"
#include "wake.h"
#include "xalloc.h"

struct wake {
	struct server *s;
	pthread_t thread;
	pthread_mutex_t lock;            /* guards batch and stop */
	pthread_cond_t cond;
	struct wake_batch batch;         /* gathered since the last announcement */
	bool stop;
	bool warned;                     /* a failed announcement said once */
	char origin[WAKE_ORIGIN_MAX];    /* this process's id in announcements */
	char payload[STORE_NOTIFY_MAX + 1];
};

/* Kept after wake_stop: the store's listener may call wake_heard until
 * store_close stops it (it then sees stop and does nothing). */
static struct wake *the_wake;

/* --- pure --- */

void
wake_batch_add(struct wake_batch *b, const char *const *host_ids, size_t n, bool cmds)
{
	b->any = true;
	if (!cmds)
		return;
	b->cmds = true;
	if (n == 0 || host_ids == NULL)
		b->cmds_all = true;
	for (size_t i = 0; !b->cmds_all && i < n; i++) {
		const char *id = host_ids[i];
		size_t l = id ? strlen(id) : 0;

		if (l == 0 || strchr(id, ' ') || b->len + l + 1 > WAKE_IDS_MAX) {
			b->cmds_all = true;
			break;
		}
		memcpy(b->ids + b->len, id, l);
		b->ids[b->len + l] = ' ';
		b->len += l + 1;
		b->ids[b->len] = '\0';
	}
	if (b->cmds_all)
		b->len = 0;
}

void
wake_payload(const struct wake_batch *b, const char *origin, char *out, size_t n)
{
	if (!b->cmds)
		snprintf(out, n, "%s k", origin);
	else if (b->cmds_all || b->len == 0)
		snprintf(out, n, "%s c *", origin);
	else   /* the ids without their last space */
		snprintf(out, n, "%s c %.*s", origin, (int)b->len - 1, b->ids);
}

bool
wake_parse(char *payload, const char *self, bool *cmds, const char **ids, size_t max,
	   size_t *n)
{
	char *save = NULL, *origin = strtok_r(payload, " ", &save);
	char *kind = strtok_r(NULL, " ", &save), *id;

	*cmds = false;
	*n = 0;
	if (origin == NULL || kind == NULL || strcmp(origin, self) == 0)
		return false;
	if (strcmp(kind, "k") == 0)
		return true;
	if (strcmp(kind, "c") != 0)
		return false;
	*cmds = true;
	while ((id = strtok_r(NULL, " ", &save)) != NULL) {
		if (strcmp(id, "*") == 0 || *n == max) {
			*n = 0;   /* every host */
			break;
		}
		ids[(*n)++] = id;
	}
	return true;
}

/* --- the listener's callback --- */

#define WAKE_PARSE_IDS (STORE_NOTIFY_MAX / 2)

/* An announcement from another server (or NULL: the listener reconnected
 * and may have missed some): wakes this one, announcing nothing. */
static void
wake_heard(const char *payload, void *arg)
{
	struct wake *w = arg;
	const char **ids;
	char *copy;
	size_t n;
	bool cmds;

	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	pthread_mutex_unlock(&w->lock);
	if (payload == NULL) {
		server_wake_local(w->s, NULL, 0, true);
		return;
	}
	copy = xstrdup(payload);
	ids = xcalloc(WAKE_PARSE_IDS, sizeof(*ids));
	if (wake_parse(copy, w->origin, &cmds, ids, WAKE_PARSE_IDS, &n))
		server_wake_local(w->s, ids, n, cmds);
	free(ids);
	free(copy);
}

/* --- the announcer --- */

static void
wake_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Sends what is gathered at once, then waits WAKE_COALESCE_MS before the
 * next announcement: a burst of kicks costs one NOTIFY now and one at the
 * end of the window. A kick always has an announcement sent after it, so
 * the one after a commit shows the committed change. */
static void *
wake_main(void *arg)
{
	struct wake *w = arg;
	struct timespec ts;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct herr err = HERR_INIT;

		while (!w->batch.any && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->batch.any)
			break;
		wake_payload(&w->batch, w->origin, w->payload, sizeof(w->payload));
		memset(&w->batch, 0, offsetof(struct wake_batch, ids) + 1);
		pthread_mutex_unlock(&w->lock);
		if (store_notify(w->s->store, WAKE_CHANNEL, w->payload, &err) < 0) {
			if (!w->warned)
				log_warn("cannot announce a change to the other servers: %s", err.msg);
			w->warned = true;
		} else if (w->warned) {
			log_info("announcing changes to the other servers again");
			w->warned = false;
		}
		pthread_mutex_lock(&w->lock);
		wake_deadline(&ts, WAKE_COALESCE_MS);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

void
wake_announce(struct server *s, const char *const *host_ids, size_t n, bool cmds)
{
	struct wake *w = s->wake;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	wake_batch_add(&w->batch, host_ids, n, cmds);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
wake_start(struct server *s, struct herr *err)
{
	struct wake *w;
	pthread_condattr_t ca;

	if (!store_can_notify(s->store))
		return 0;
	w = xcalloc(1, sizeof(*w));
	w->s = s;
	token_random(w->origin, sizeof(w->origin), NULL, 8);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, wake_main, w) != 0) {
		free(w);
		return herr_set(err, HERR_STORE, "cannot start the announcer thread");
	}
	s->wake = w;
	the_wake = w;
	if (store_listen(s->store, WAKE_CHANNEL, wake_heard, w, err) < 0) {
		wake_stop(s);
		return err->code;
	}
	return 0;
}

void
wake_stop(struct server *s)
{
	struct wake *w = s->wake;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	s->wake = NULL;   /* w stays (the_wake): see there */
}
