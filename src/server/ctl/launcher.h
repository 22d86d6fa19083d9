/* launcher.h - a small bounded pool of threads that run the provider half of
 * launches (prov_launch and recording its answer), so that many hosts are
 * made at once while the controller thread keeps deciding and writing
 * intents. The pool knows nothing of hosts beyond a key (the host id) per
 * job: it keeps the set of keys in flight (queued or running), which the
 * controller consults so that it never touches a host a worker is making. */
#ifndef HERD_LAUNCHER_H
#define HERD_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"

#define LAUNCH_WORKERS_DEFAULT 8
#define LAUNCH_WORKERS_MAX 64
#define LAUNCH_QUEUED_MAX 128      /* jobs queued beyond one per worker: a pass
				      reads every host, so it hands out up to
				      this many launches at once (issue 15:
				      at 2 x workers, 10,000 hosts were one
				      O(N) pass per few launches) */
#define LAUNCH_KEY_MAX 16          /* a host id (8 hex digits) and its NUL fit */
#define LAUNCH_STOP_WAIT_MS 10000  /* ctl_stop waits this long for running launches */

struct launcher;

/* A job is two calls on a worker thread: work(job) (the provider call: it
 * may take long and must not touch the store) and then finish(job) (records
 * the outcome, frees job). finish is skipped when launcher_stop gave up on
 * the job: the process is ending, the job is left as it is. */
typedef void (*launcher_fn)(void *job);

/* Pure. "--launch-workers N": a whole number 1..LAUNCH_WORKERS_MAX into
 * *out; otherwise HERR_INVALID with err naming the option and the range. */
int launcher_workers_parse(const char *text, int *out, struct herr *err);

/* Starts `workers` threads (1..LAUNCH_WORKERS_MAX); at most workers +
 * LAUNCH_QUEUED_MAX jobs are in flight (running or queued). NULL and err
 * on failure. */
struct launcher *launcher_new(int workers, struct herr *err);

/* Whether another job may be submitted now (in flight < workers +
 * LAUNCH_QUEUED_MAX). */
bool launcher_has_room(struct launcher *l);

/* How many more jobs may be submitted now (0 when stopping). Only the
 * controller submits, so until it does the room can only grow: a pass
 * writes at most this many launch intents, in one commit, then submits. */
size_t launcher_room(struct launcher *l);

/* Whether the pool runs short of work: fewer jobs queued (not yet running)
 * than half of LAUNCH_QUEUED_MAX, so a pass started now ends while the
 * workers still have the other half to do (a pass at 10,000 hosts took
 * 70-240 ms; kicked only below `workers` queued, the workers sat idle
 * through it). Small launches always run low. A launch's end
 * kicks a controller pass only then (reconcile.c): a pass reads every live
 * host, and one after each of N launches made a launch of N hosts O(N^2). */
bool launcher_running_low(struct launcher *l);

/* Queues work(job) then finish(job) under key. 0, or HERR_UNAVAIL when
 * full or stopping (then job is not taken: the caller still owns it). */
int launcher_submit(struct launcher *l, const char *key, launcher_fn work, launcher_fn finish,
		    void *job, struct herr *err);

/* Whether key is in flight (queued or running). */
bool launcher_busy(struct launcher *l, const char *key);

/* Jobs in flight, and the most ever running at once (for logs and tests). */
size_t launcher_inflight(struct launcher *l);
size_t launcher_peak_running(struct launcher *l);

/* Stops the pool: queued jobs are dropped (never run: drop(job) frees
 * each), running ones are waited for up to wait_ms. Returns how many were
 * still in work() then: their threads are left to end with the process,
 * their finish() is never called (their hosts stay `launching` in the store
 * for the next start to resolve), and l is not freed; the caller must then
 * keep alive what work() uses (the providers). 0: l is freed. */
size_t launcher_stop(struct launcher *l, int64_t wait_ms, void (*drop)(void *job));

#endif
