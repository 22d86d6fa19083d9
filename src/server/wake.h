/* wake.h - wake-ups across the servers sharing a store (issue 19, docs/ha.md
 * "Long polls on any server"): server_kick and server_kick_commands also
 * announce the kick on the store (PostgreSQL NOTIFY), coalesced to one
 * announcement per WAKE_COALESCE_MS; every other server's listener wakes
 * its own controllers and parked long polls on it, without announcing
 * again. A store without announcements (SQLite: one process) has nothing
 * to do. The payload is built and read by the pure functions below. */
#ifndef HERD_WAKE_H
#define HERD_WAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "herr.h"
#include "store/store.h"

struct server;

#define WAKE_CHANNEL "herd_wake"
#define WAKE_COALESCE_MS 10       /* at most one announcement per this, per server */
#define WAKE_ORIGIN_MAX 24        /* a server's origin id and its NUL */
/* the host ids an announcement names at most, in bytes: past it, "every host" */
#define WAKE_IDS_MAX (STORE_NOTIFY_MAX - 2 * WAKE_ORIGIN_MAX)

/* The kicks gathered between two announcements. */
struct wake_batch {
	bool any;                   /* something to announce */
	bool cmds;                  /* a command kick (server_kick_commands) */
	bool cmds_all;              /* ... for every host */
	size_t len;                 /* bytes of ids */
	char ids[WAKE_IDS_MAX + 1]; /* host ids, each followed by a space */
};

/* --- pure --- */

/* Adds a kick to b: cmds false for server_kick, true for
 * server_kick_commands(host_ids[0..n)) (n == 0 or host_ids NULL: every
 * host). An id that is empty, has a space or does not fit makes it every
 * host. */
void wake_batch_add(struct wake_batch *b, const char *const *host_ids, size_t n, bool cmds);

/* b's announcement from origin into out (n bytes, at least
 * STORE_NOTIFY_MAX + 1): "ORIGIN k" (a kick), "ORIGIN c *" (commands for
 * every host) or "ORIGIN c ID ID..." (commands for those hosts). */
void wake_payload(const struct wake_batch *b, const char *origin, char *out, size_t n);

/* Reads an announcement in place (payload is cut into the ids): false when
 * it is self's own or malformed (then nothing to do). *cmds: a command
 * kick; its host ids in ids[0..*n) (at most max; *n 0 = every host, also
 * when more than max). */
bool wake_parse(char *payload, const char *self, bool *cmds, const char **ids, size_t max,
		size_t *n);

/* --- the announcer and the listener (a server with s->store) --- */

/* Starts both when the store has announcements; else does nothing. */
int wake_start(struct server *s, struct herr *err);
/* Stops the announcer (what is gathered is sent first); the listener ends
 * with the store (store_close). */
void wake_stop(struct server *s);
/* server.c's kicks: gathers one for the announcer. */
void wake_announce(struct server *s, const char *const *host_ids, size_t n, bool cmds);

#endif
