/* writer.c - the API's single writer. HTTP threads hand over every mutation
 * that api_handle runs in a transaction (api_runs_in_tx): the connection is
 * suspended and the request queued (a bounded ring: full = 503 at once).
 * This thread takes up to WRITER_BATCH_MAX of them, opens ONE transaction,
 * runs each request's api_handle inside it (its own transaction becomes a
 * savepoint: a refused or failed request undoes only its own part), commits
 * once (one fdatasync for the batch) and only then resumes the connections,
 * so no answer goes out before its change is durable, and a batch whose
 * commit failed answers 503 for each of its requests. Reads never come here:
 * they run on their HTTP thread on its own connection (WAL: not blocked by
 * this one). The controller writes on its own connection too: it and this
 * thread take turns at SQLite's write lock (busy timeout), off the HTTP
 * threads. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "model/token.h"
#include "store/store.h"
#include "util.h"
#include "writer.h"
#include "xalloc.h"

struct writer {
	pthread_mutex_t lock;          /* guards the ring and stopping */
	pthread_cond_t more;           /* something was queued, or stop */
	struct req **ring;
	unsigned cap, head, n;
	bool stopping;
	pthread_t thread;
	bool started;
};

/* A request that cannot wait here: answered at once, the client retries. */
static void
refuse(struct req *rq, const char *why)
{
	reply_errf(rq, HERR_UNAVAIL, "", "%s", why);
	rq->retry_after_s = 1;
}

bool
writer_submit(struct server *s, struct req *rq)
{
	struct writer *w = s->writer;

	if (w == NULL) {
		refuse(rq, "the server is stopping");
		return false;
	}
	pthread_mutex_lock(&w->lock);
	if (w->stopping || w->n == w->cap) {
		bool stopping = w->stopping;

		pthread_mutex_unlock(&w->lock);
		refuse(rq, stopping ? "the server is stopping" : "too many changes waiting to be written");
		return false;
	}
	/* suspended before the writer can see it, so its resume comes after */
	MHD_suspend_connection(rq->conn);
	w->ring[(w->head + w->n) % w->cap] = rq;
	w->n++;
	log_debug("writer: %s %s queued (%u waiting)", rq->method, rq->path, w->n);
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
	return true;
}

/* Takes up to max queued requests into out; 0 once stopping and empty. */
static unsigned
take(struct writer *w, struct req **out, unsigned max)
{
	unsigned k = 0;

	pthread_mutex_lock(&w->lock);
	while (w->n == 0 && !w->stopping)
		pthread_cond_wait(&w->more, &w->lock);
	while (k < max && w->n > 0) {
		out[k++] = w->ring[w->head];
		w->head = (w->head + 1) % w->cap;
		w->n--;
	}
	pthread_mutex_unlock(&w->lock);
	return k;
}

/* The change of rq was in a batch whose commit failed: nothing of it is
 * stored, the answer says so and its audit row is written on its own. */
static void
lost(struct req *rq, const char *why)
{
	reply_errf(rq, HERR_UNAVAIL, "", "the change was not stored: %s", why);
	rq->retry_after_s = 1;
	api_audit(rq, rq->audit_detail[0] ? rq->audit_detail : NULL);
}

/* A mutation never parks (no mutation route calls req_wait): one that did
 * would hold its savepoint across batches. Answered as a server fault. */
static void
check_not_parked(struct req *rq)
{
	if (!rq->suspended)
		return;
	log_err("writer: %s %s asked to wait; mutations may not", rq->method, rq->path);
	rq->suspended = false;
	reply_errf(rq, HERR_STORE, "", "internal error: a change may not wait");
}

/* Runs batch[0..k) in one transaction, commits, then resumes them all. */
static void
run_batch(struct server *s, struct req **batch, unsigned k)
{
	struct store *st = s->store;
	struct herr err = HERR_INIT;
	uint64_t gen = __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
	uint64_t creds = token_generation();
	unsigned ran = 0, failed = 0;
	bool ok;

	ok = store_begin(st, &err) == 0;
	if (!ok)
		log_warn("writer: no transaction for a batch of %u (%s): each commits alone", k,
			 err.msg);
	for (; ok && ran < k; ran++) {
		if (store_tx_depth(st) != 1) {
			ok = false;   /* the database rolled the batch back */
			break;
		}
		api_handle(batch[ran]);
		check_not_parked(batch[ran]);
		if (batch[ran]->status >= 400)
			failed++;
	}
	if (ok && store_tx_depth(st) != 1) {
		ok = false;
		herr_set(&err, HERR_STORE, "the transaction was rolled back by the database");
	}
	if (ok && store_commit(st, &err) < 0)
		ok = false;
	if (!ok && ran > 0) {
		if (store_in_tx(st))
			store_rollback(st);
		log_err("writer: a batch of %u changes was not stored: %s", ran, err.msg);
		for (unsigned i = 0; i < ran; i++)
			lost(batch[i], err.msg[0] ? err.msg : "the commit failed");
	} else if (!ok && store_in_tx(st)) {
		store_rollback(st);
	}
	/* the rest of a lost batch (or all, without a transaction): alone */
	for (unsigned i = ran; i < k; i++) {
		api_handle(batch[i]);
		check_not_parked(batch[i]);
	}
	if (ok)
		log_debug("writer: committed a batch of %u (%u refused or failed)", ran, failed);
	if (__atomic_load_n(&s->generation, __ATOMIC_ACQUIRE) != gen)
		server_kick(s);   /* handlers' kicks came before the commit */
	if (token_generation() != creds)
		/* a token deleted (or a host terminated) in the batch emptied
		 * the credentials cache before the commit: a read since may
		 * have cached the old row again */
		token_invalidate();
	for (unsigned i = 0; i < k; i++)
		MHD_resume_connection(batch[i]->conn);
}

static void *
writer_main(void *arg)
{
	struct server *s = arg;
	struct writer *w = s->writer;
	struct req *batch[WRITER_BATCH_MAX];
	unsigned k;

	while ((k = take(w, batch, WRITER_BATCH_MAX)) > 0)
		run_batch(s, batch, k);
	return NULL;
}

int
writer_start(struct server *s, struct herr *err)
{
	struct writer *w = xcalloc(1, sizeof(*w));

	w->cap = s->write_queue_max ? s->write_queue_max : WRITER_QUEUE_DEFAULT;
	w->ring = xcalloc(w->cap, sizeof(*w->ring));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	s->writer = w;
	if (pthread_create(&w->thread, NULL, writer_main, s) != 0) {
		s->writer = NULL;
		free(w->ring);
		free(w);
		return herr_set(err, -EAGAIN, "cannot start the writer thread");
	}
	w->started = true;
	return 0;
}

void
writer_stop(struct server *s)
{
	struct writer *w = s->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->more);
	pthread_mutex_unlock(&w->lock);
	if (w->started)
		pthread_join(w->thread, NULL);   /* runs what was queued first */
	w->started = false;
}

void
writer_free(struct server *s)
{
	struct writer *w = s->writer;

	if (w == NULL)
		return;
	writer_stop(s);
	s->writer = NULL;
	free(w->ring);
	free(w);
}
