/* writer.h - the one thread that runs the API's mutations, in batches that
 * commit once (group commit), so an HTTP thread never waits on a write. */
#ifndef HERD_WRITER_H
#define HERD_WRITER_H

#include <stdbool.h>

#include "herr.h"
#include "server.h"

#define WRITER_QUEUE_DEFAULT 1024u  /* mutations waiting, in all (--write-queue) */
#define WRITER_QUEUE_MAX 65536u
#define WRITER_BATCH_MAX 64u        /* mutations per commit */

/* Starts the writer with room for s->write_queue_max waiting mutations. */
int writer_start(struct server *s, struct herr *err);
/* Called on an HTTP thread from the access handler, for a request whose
 * body is read and for which api_runs_in_tx() holds: suspends its
 * connection and queues it. The writer runs it (api_handle) in its next
 * batch and resumes the connection once the batch is durable; the handler
 * is then called again and sends rq's answer. Returns false, rq holding
 * a 503 with Retry-After, when the queue is full or the server stopping. */
bool writer_submit(struct server *s, struct req *rq);
/* Runs what is queued, refuses more, and ends the thread. Before the
 * HTTP daemons stop: none of their connections stays suspended. */
void writer_stop(struct server *s);
/* Frees it, once no HTTP thread can call writer_submit (daemons stopped). */
void writer_free(struct server *s);

#endif
