/* model/lease.h - the controller lease and the servers seen on a store
 * (issue 19): one row per lease (its holder, a server id; its epoch, the
 * fencing token; when it lapses, by the store's clock) and one per server
 * process. Every change is a compare-and-set in one transaction, written
 * in portable SQL. Who acts on the lease is ctl/leader.c; what it decides
 * is the pure lease_decide() (ctl/lease.h). See docs/ha.md. */
#ifndef HERD_MODEL_LEASE_H
#define HERD_MODEL_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define LEASE_CONTROLLER "controller"   /* the one lease today: who runs the controllers */
#define LEASE_HOLDER_MAX 40             /* a server id and its NUL */

struct lease_row {
	bool exists;                     /* false: nobody ever held it */
	char holder[LEASE_HOLDER_MAX];   /* server id */
	int64_t epoch;                   /* +1 at each takeover; 0 = none yet */
	int64_t expires_ms;              /* store clock, wall ms */
	int64_t renewed_ms;              /* store clock, wall ms: the holder's last renew */
};

/* Reads lease name into *out (out->exists false when there is no row).
 * 0 or the store's error. */
int lease_read(struct store *st, const char *name, struct lease_row *out, struct herr *err);

/* Takes lease name for me in one transaction: when it has no row, when it
 * lapsed at now_ms (store clock), or when force (the store has one process
 * only: an earlier holder is dead). Sets holder = me, epoch + 1 and
 * expires_ms = now_ms + ttl_ms; the UPDATE compares the epoch it read, so
 * of two servers racing one wins. 0 and *epoch (the new epoch), or
 * HERR_CONFLICT (someone else holds it, live, or won the race), or the
 * store's error. */
int lease_acquire(struct store *st, const char *name, const char *me, int64_t now_ms,
		  int64_t ttl_ms, bool force, int64_t *epoch, struct herr *err);

/* Extends lease name to now_ms + ttl_ms if me still holds it at epoch
 * (compare-and-set on holder and epoch). 0, HERR_FENCED (lost: another
 * server took it) or the store's error. */
int lease_renew(struct store *st, const char *name, const char *me, int64_t epoch,
		int64_t now_ms, int64_t ttl_ms, struct herr *err);

/* Lets lease name lapse now if me holds it at epoch (a clean stop: another
 * server takes over without waiting for the TTL). 0 or the store's error;
 * nothing when it is not ours any more. */
int lease_release(struct store *st, const char *name, const char *me, int64_t epoch,
		  struct herr *err);

/* Sets the calling thread's store fence (store_fence_set) to lease name
 * held by me at epoch: each of the thread's transactions on st then first
 * touches the lease row on that condition, so a write by a server that lost
 * the lease fails with HERR_FENCED and writes nothing. epoch 0 clears it. */
void lease_fence(struct store *st, const char *name, const char *me, int64_t epoch);
/* The server and epoch the calling thread acts under on st (its last
 * lease_fence there): true and id (NUL-terminated, truncated to n) and
 * *epoch, or false (none: an API thread, or the fence cleared). What each
 * activity records as who made it (model/activity.c). */
bool lease_acting(const struct store *st, char *id, size_t n, int64_t *epoch);

/* Records that server id (at address, running version, started at
 * started_ms) was alive at now_ms (store clock): an upsert. */
int server_seen(struct store *st, const char *id, const char *address, const char *version,
		int64_t started_ms, int64_t now_ms, struct herr *err);

/* Forgets servers not seen since before_ms. */
int servers_prune(struct store *st, int64_t before_ms, struct herr *err);

/* The servers seen, newest start first: *out (owned) an array of
 * {"id","address","version","started_ms","seen_ms"}. */
int servers_list(struct store *st, json_t **out, struct herr *err);

#endif
