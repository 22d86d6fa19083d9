/* ctl/rwout.h - remote_write out: herd sends every sample it stores from
 * agents' pushes to each `remote_writes:` resource (rwout/rwout.h parses
 * one). The push path only copies samples into a bounded in-memory buffer
 * per remote (model/metrics.h's metrics_store_hook: no I/O, no lock a
 * sender holds while sending; full = dropped and counted). One thread per
 * remote relabels what the buffer holds into on-disk segments under
 * <data>/remote-write/<name>/ (bounded by queue.max_bytes: past it the
 * oldest segment is dropped and counted) and sends from disk in rounds:
 * up to shards x max_samples_per_send samples, split by series hash over
 * the shards (so one series stays in order), POSTed at once; a round is
 * done when every shard's batch is acknowledged or refused for good, and
 * its end is recorded (the "ack" file) so that a restart resends only what
 * was not acknowledged. A manager thread starts, restarts (on a change)
 * and stops the remotes as the resources change. */
#ifndef HERD_CTL_RWOUT_H
#define HERD_CTL_RWOUT_H

#include <jansson.h>

#include "herr.h"
#include "server.h"

#define RWOUT_MEM_MAX (8u << 20)   /* bytes of a remote's in-memory buffer */

/* Starts the manager thread and sets the store hook. */
int rwout_start(struct server *s, struct herr *err);
/* Stops every remote (after ctl_stop set s->stopping): what the buffers
 * hold is written to disk first, a send under way is cut (sent again at
 * the next start). */
void rwout_stop(struct server *s);

/* Each remote's figures, by name: url, sent, dropped_queue, dropped_4xx,
 * retried, pending_bytes, pending_samples, shards, last_error,
 * last_error_at (ms, 0 = none). */
json_t *rwout_status(void);

#endif
