/* launcher.c - the launch pool (see launcher.h): a fixed set of worker
 * threads taking jobs from one FIFO queue, with the set of keys in flight.
 * Everything is under one mutex; a job's own calls run without it. A
 * worker's store connection is its own (store.h: one per thread). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

struct job {
	char key[LAUNCH_KEY_MAX];
	launcher_fn work, finish;
	void *arg;
	bool running;
	struct job *next;            /* queue order; running jobs are off the queue */
};

struct launcher {
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* a job queued, or stopping */
	pthread_cond_t idle;         /* a job ended */
	int workers;
	pthread_t threads[LAUNCH_WORKERS_MAX];
	struct job *head, *tail;     /* queued, not yet running */
	struct job *flight[LAUNCH_WORKERS_MAX + LAUNCH_QUEUED_MAX]; /* queued and running */
	size_t nflight, running, peak, finishing;
	size_t nqueued;              /* on the queue (head..tail) */
	bool stopping, abandoned;
};

int
launcher_workers_parse(const char *text, int *out, struct herr *err)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = text ? strtol(text, &end, 10) : 0;
	if (text == NULL || *text < '0' || *text > '9' || end == text || *end != '\0' || errno != 0 || v < 1 ||
	    v > LAUNCH_WORKERS_MAX)
		return herr_field(err, HERR_INVALID, "--launch-workers",
				  "want a whole number from 1 to %d (got '%s')", LAUNCH_WORKERS_MAX,
				  text ? text : "");
	*out = (int)v;
	return 0;
}

static void
flight_remove(struct launcher *l, const struct job *j)
{
	for (size_t i = 0; i < l->nflight; i++)
		if (l->flight[i] == j) {
			l->flight[i] = l->flight[--l->nflight];
			return;
		}
}

static void *
worker_main(void *arg)
{
	struct launcher *l = arg;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct job *j;

		while (l->head == NULL && !l->stopping)
			pthread_cond_wait(&l->wake, &l->lock);
		if (l->stopping)
			break;
		j = l->head;
		l->head = j->next;
		l->nqueued--;
		if (l->head == NULL)
			l->tail = NULL;
		j->running = true;
		l->running++;
		if (l->running > l->peak)
			l->peak = l->running;
		log_debug("launch %s started: %zu of %d workers busy, %zu in flight", j->key,
			  l->running, l->workers, l->nflight);
		pthread_mutex_unlock(&l->lock);

		j->work(j->arg);

		pthread_mutex_lock(&l->lock);
		if (l->abandoned)
			break;           /* the process is ending: finish nothing */
		l->finishing++;
		pthread_mutex_unlock(&l->lock);
		j->finish(j->arg);
		pthread_mutex_lock(&l->lock);
		l->finishing--;
		l->running--;
		log_debug("launch %s ended: %zu of %d workers busy", j->key, l->running, l->workers);
		flight_remove(l, j);
		free(j);
		pthread_cond_broadcast(&l->idle);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

struct launcher *
launcher_new(int workers, struct herr *err)
{
	struct launcher *l;

	if (workers < 1 || workers > LAUNCH_WORKERS_MAX) {
		herr_set(err, HERR_INVALID, "launch workers must be 1-%d, not %d",
			 LAUNCH_WORKERS_MAX, workers);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	pthread_cond_init(&l->idle, NULL);
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
			herr_set(err, -errno, "cannot start launch worker %d", i + 1);
			l->workers = i;
			launcher_stop(l, 0, NULL);
			return NULL;
		}
		l->workers = i + 1;
	}
	return l;
}

static bool
has_room(const struct launcher *l)
{
	return !l->stopping && l->nflight < (size_t)l->workers + LAUNCH_QUEUED_MAX;
}

bool
launcher_has_room(struct launcher *l)
{
	bool room;

	pthread_mutex_lock(&l->lock);
	room = has_room(l);
	pthread_mutex_unlock(&l->lock);
	return room;
}

size_t
launcher_room(struct launcher *l)
{
	size_t cap, room;

	pthread_mutex_lock(&l->lock);
	cap = (size_t)l->workers + LAUNCH_QUEUED_MAX;
	room = l->stopping || l->nflight >= cap ? 0 : cap - l->nflight;
	pthread_mutex_unlock(&l->lock);
	return room;
}

bool
launcher_running_low(struct launcher *l)
{
	bool low;

	pthread_mutex_lock(&l->lock);
	low = l->nqueued < LAUNCH_QUEUED_MAX / 2;
	pthread_mutex_unlock(&l->lock);
	return low;
}

int
launcher_submit(struct launcher *l, const char *key, launcher_fn work, launcher_fn finish,
		void *arg, struct herr *err)
{
	struct job *j;

	if (strlen(key) >= LAUNCH_KEY_MAX)
		return herr_set(err, HERR_INVALID, "launch key '%s' is too long", key);
	pthread_mutex_lock(&l->lock);
	if (!has_room(l)) {
		pthread_mutex_unlock(&l->lock);
		return herr_set(err, HERR_UNAVAIL, "%zu launches in flight already", l->nflight);
	}
	j = xcalloc(1, sizeof(*j));
	snprintf(j->key, sizeof(j->key), "%s", key);
	j->work = work;
	j->finish = finish;
	j->arg = arg;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->nqueued++;
	l->flight[l->nflight++] = j;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

bool
launcher_busy(struct launcher *l, const char *key)
{
	bool busy = false;

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->nflight && !busy; i++)
		busy = strcmp(l->flight[i]->key, key) == 0;
	pthread_mutex_unlock(&l->lock);
	return busy;
}

size_t
launcher_inflight(struct launcher *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->nflight;
	pthread_mutex_unlock(&l->lock);
	return n;
}

size_t
launcher_peak_running(struct launcher *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->peak;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* Waits on l->idle until nothing runs or deadline (mono ms) passes. */
static void
wait_idle(struct launcher *l, int64_t deadline)
{
	while (l->running > 0 && mono_ms() < deadline) {
		struct timespec ts;
		int64_t left = deadline - mono_ms();

		clock_gettime(CLOCK_REALTIME, &ts);
		left = left > 100 ? 100 : left;   /* re-checks the clock at least every 100 ms */
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&l->idle, &l->lock, &ts);
	}
}

size_t
launcher_stop(struct launcher *l, int64_t wait_ms, void (*drop)(void *job))
{
	size_t left;

	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	while (l->head) {                    /* queued: never started */
		struct job *j = l->head;

		l->head = j->next;
		l->nqueued--;
		flight_remove(l, j);
		if (drop)
			drop(j->arg);
		free(j);
	}
	l->tail = NULL;
	pthread_cond_broadcast(&l->wake);
	wait_idle(l, mono_ms() + (wait_ms > 0 ? wait_ms : 0));
	left = l->running;
	if (left > 0) {
		/* still in work(): they will finish nothing; a finish() under
		 * way is short (store writes) and is waited for */
		l->abandoned = true;
		while (l->finishing > 0)
			wait_idle(l, mono_ms() + 100);
	}
	pthread_mutex_unlock(&l->lock);
	if (left > 0) {
		log_warn("stopping with %zu launch(es) under way: their hosts stay 'launching' and"
			 " are resolved at the next start", left);
		for (int i = 0; i < l->workers; i++)
			pthread_detach(l->threads[i]);
		return left;
	}
	for (int i = 0; i < l->workers; i++)
		pthread_join(l->threads[i], NULL);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->wake);
	pthread_cond_destroy(&l->idle);
	free(l);
	return 0;
}
