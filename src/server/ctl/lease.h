/* ctl/lease.h - one active controller among the servers of a store: the
 * pure lease_decide() (what the lease thread does next) and the leader
 * (ctl/leader.c): the thread that takes and renews the controller lease
 * (model/lease.h), and what every controller pass asks before it acts.
 * See docs/ha.md, "Leader and fencing". */
#ifndef HERD_CTL_LEASE_H
#define HERD_CTL_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"
#include "model/lease.h"

struct server;

#define LEASE_TTL_DEFAULT_MS 6000LL   /* --lease-ttl */
#define LEASE_TTL_MIN_MS 1000LL
#define LEASE_TTL_MAX_MS 300000LL

/* --- decide (pure) --- */

enum lease_act {
	LEASE_WAIT,      /* another server holds a live lease: act on nothing */
	LEASE_ACQUIRE,   /* free, lapsed (or ours, or force): take it, epoch + 1 */
	LEASE_RENEW,     /* ours, due: extend it (compare-and-set on holder and epoch) */
	LEASE_KEEP,      /* ours, renewed less than ttl/3 ago */
	LEASE_LOST,      /* we led, the row says another holder or epoch: step down */
};

/* What this server believes of itself. */
struct lease_self {
	const char *id;            /* this process's server id */
	int64_t epoch;             /* the epoch it leads at; 0 = not leading */
	int64_t renewed_mono_ms;   /* monotonic time taken just before the last
				    * successful take or renew was sent */
};

/* The next step of the lease thread: row is the stored lease (row->exists
 * false: none), db_now_ms the store's clock, mono_now_ms the local
 * monotonic clock; force: the store has one process only and this is the
 * first look (an earlier holder is dead: take it at once). */
enum lease_act lease_decide(const struct lease_row *row, const struct lease_self *me,
			    int64_t db_now_ms, int64_t mono_now_ms, int64_t ttl_ms, bool force);

/* How long before its lease can lapse by the store's clock a leader stops
 * acting (ttl/6, at least 1 ms): the room for clock-rate differences and
 * for the time a renew took to reach the store. */
int64_t lease_margin_ms(int64_t ttl_ms);

/* Whether me may act at mono_now_ms: it leads, and its local deadline (the
 * last successful renew's send time + ttl - margin) has not passed. A
 * leader that cannot renew (the store unreachable, the process paused)
 * stops acting at that deadline, before any other server can take over. */
bool lease_live(const struct lease_self *me, int64_t mono_now_ms, int64_t ttl_ms);

/* --- the leader (leader.c) --- */

/* Makes this process's server id, records the server, takes the lease when
 * it can (at once on a single-process store) and starts the lease thread
 * (renews every ttl/3; takes a lapsed lease). Sets the provider and LB
 * gates (prov_gate_set, lb_gate_set) to leader_may_call. */
int leader_start(struct server *s, struct herr *err);
/* Stops the thread and lets the lease lapse now (a clean stop: another
 * server takes over at once); from then on the gates refuse every call. */
void leader_stop(struct server *s);

/* A controller pass begins on the calling thread: true when this server
 * holds a live lease, with the thread's store fence set to it (every
 * transaction the pass writes checks the epoch); false (act on nothing)
 * otherwise. A fenced failure since the last pass steps down (logged
 * once). *epoch (optional): the epoch it acts under, to see a new term.
 * Without leader_start (teardown, unit tests) every pass may act, unfenced. */
bool leader_pass(struct server *s, int64_t *epoch);
/* The provider and LB gate: the calling thread may make an external call
 * now (a live lease by the local deadline, and its fence not tripped). */
bool leader_may_call(void);
/* The server's id (for the API); "" before leader_start. */
const char *leader_server_id(struct server *s);
/* The address (as recorded in servers, "IP:PORT") of the server holding
 * a live controller lease, by the store's clock, into addr; *self whether
 * that is this process. 0, HERR_NOTFOUND (no live lease, or its holder's
 * address unknown) or the store's error. For a follower's forwarding of
 * metrics (api/forward.c). */
int leader_address(struct server *s, char *addr, size_t n, bool *self, struct herr *err);
/* Fills the leader's view for GET /v1/servers: this server's id and
 * whether it is leading, live, at which epoch. */
void leader_self(struct server *s, char *id, size_t n, int64_t *epoch, bool *live);

#endif
