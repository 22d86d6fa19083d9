/* ctl/rolling.h - rolling script runs: a run made with a batch size
 * (`herd script run X --group G --batch N [--drain] [--health-gate 30s]
 * [--stop-on-failure]`) goes batch by batch: each batch's hosts are taken
 * out of their load balancers (with --drain: lb-sync drains them as it
 * drains any member no longer wanted), run the script, pass a health gate
 * (ready, and up in their group's load balancer, for the gate's duration)
 * and are back in service before the next batch starts. Each host's step
 * (its phase) is stored with its run record (model/run.h) before it is
 * acted on, so a restarted server goes on where the run was. Decide is the
 * pure roll_decide(); act is ctl/rolling.c, one step per reconcile pass. */
#ifndef HERD_CTL_ROLLING_H
#define HERD_CTL_ROLLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/run.h"
#include "server.h"

/* A host that is not healthy for the whole gate within this long after the
 * gate's duration (counted from its script's end) fails the gate. */
#define ROLL_GATE_GRACE_MS (30 * 1000LL)

/* --- decide (pure: no I/O, time passed in) --- */

/* One host of a rolling run, as the store and the LB views say now. */
struct roll_host {
	int batch;                 /* 0, 1, ...: the order batches go in */
	enum run_phase phase;
	enum run_hstate state;     /* its script's record */
	int64_t phase_ms;          /* when the phase began (wall ms) */
	int64_t healthy_ms;        /* in the gate: healthy since (0 = not now) */
	bool healthy;              /* ready, and up in its group's LB if it has one */
	bool lb_free;              /* no LB holds it, by a view taken after phase_ms */
	const char *name;          /* for reasons */
};

/* The run's options. */
struct roll_run {
	bool drain, stop_on_failure, cancel_requested;
	int64_t gate_ms;
};

/* One step for host `host` (an index into the hosts given): its new phase
 * (with phase_ms and healthy_ms), its record's new state (RH__COUNT:
 * unchanged) and why; kind names the activity recorded ("" = none). */
struct roll_action {
	size_t host;
	enum run_phase to;
	int64_t phase_ms, healthy_ms;
	enum run_hstate state;
	char kind[24];
	char reason[200];
};

/* What the rolling run needs now: hosts in a phase whose step is done move
 * on (drained -> run, script succeeded -> gate, healthy for gate_ms ->
 * done, a failed script or gate -> failed, or held out of its LBs when the
 * run drains and stops on failure); with stop_on_failure a failure turns
 * the hosts still waiting into skipped; when no host is in flight, the
 * next batch starts (drain, or run). Writes at most max actions to out,
 * returns how many. */
size_t roll_decide(const struct roll_run *r, const struct roll_host *h, size_t n, int64_t now_ms,
		   struct roll_action *out, size_t max);

/* --- act --- */

/* One step of every running rolling run (called by the reconcile thread,
 * before lb-sync's pass). */
void rolling_pass(struct server *s, int64_t now_ms);

#endif
