/* ctl/refresh.h - the instance refresh controller step (`herd group
 * refresh`): refresh_decide() (pure, refresh-decide.c) says what a running
 * refresh does next; refresh_pass() (refresh.c) acts on it inside the
 * reconcile pass, before the reconcile decision, so the hosts it takes out
 * no longer count and the surge hosts it wants are launched by the
 * reconciler, from the template's current version. */
#ifndef HERD_CTL_REFRESH_H
#define HERD_CTL_REFRESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/host.h"
#include "model/refresh.h"

/* --- decide (pure: no I/O, time passed in) --- */

/* A host of the refreshed group, as the decider sees it. */
struct rf_host {
	const char *id, *name;
	enum hstate state;
	const char *version;         /* the template version it was launched from */
	int seq;
	int64_t created_ms, ready_ms;
	bool out;                    /* this refresh took it out already */
	bool lb_up;                  /* UP at its template's LB (true: no LB) */
};

enum rf_kind {
	RF_NONE,      /* not running: nothing to do */
	RF_WAIT,      /* reason says for what */
	RF_CHOOSE,    /* hosts[] are the next batch; extra surge hosts wanted */
	RF_TAKE_OUT,  /* drain hosts[] (the batch) out; extra back to 0 */
	RF_REDRAIN,   /* hosts[] were taken out (stored) but are still live: again */
	RF_DONE,
	RF_FAIL,      /* a host of the new version failed */
	RF_PAUSE,     /* pause_after batches reached */
};

struct rf_action {
	enum rf_kind kind;
	int extra;                          /* CHOOSE: surge hosts wanted */
	size_t hosts[REFRESH_BATCH_MAX];    /* indices into the hosts given */
	size_t nhosts;
	char reason[256];
};

/* What refresh r (its state, target, params, extra, batch, batches,
 * started_ms) does next, given the group's hosts (any state but
 * terminated), its desired size and now. In order: hosts taken out but
 * still live are drained again (after a crash); a host of the target
 * version launched since the refresh began that failed stops it; a batch
 * in hand is taken out once the group has its surge hosts, every new host
 * is ready, UP at its load balancer and warm, and what stays ready is at least min_healthy of
 * desired; with no batch in hand, when no old host is left it is done,
 * else it waits for new hosts still coming, pauses after pause_after
 * batches, or chooses the next batch (not ready hosts first, then the
 * oldest; with surge 0, no more than min_healthy lets go). Writes *out. */
void refresh_decide(const struct refresh *r, const struct rf_host *hosts, size_t nh, int desired,
		    int64_t now_ms, struct rf_action *out);

/* --- act (refresh.c) --- */
struct ctl;

#endif
