/* ctl/rolling-decide.c - the pure half of rolling script runs
 * (ctl/rolling.h): from a run's options, its hosts' phases, records and
 * health, and the time, the steps to take now. No I/O; time is passed in. */
#include <stdio.h>
#include <string.h>

#include "ctl/rolling.h"

/* Appends a step for host i (if there is room); returns it or NULL. */
static struct roll_action *
step(struct roll_action *out, size_t *k, size_t max, size_t i, enum run_phase to,
     int64_t phase_ms, int64_t healthy_ms, enum run_hstate state, const char *kind)
{
	struct roll_action *a;

	if (*k >= max)
		return NULL;
	a = &out[(*k)++];
	memset(a, 0, sizeof(*a));
	a->host = i;
	a->to = to;
	a->phase_ms = phase_ms;
	a->healthy_ms = healthy_ms;
	a->state = state;
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	return a;
}

/* A failed host's phase: kept out of its LBs when the run drains and
 * stops on failure, else back in them (their health check decides). */
static enum run_phase
failed_phase(const struct roll_run *r)
{
	return r->drain && r->stop_on_failure ? RP_HELD : RP_FAILED;
}

size_t
roll_decide(const struct roll_run *r, const struct roll_host *h, size_t n, int64_t now,
	    struct roll_action *out, size_t max)
{
	const char *failed = NULL;
	struct roll_action *a;
	size_t k = 0, inflight = 0;
	int next = -1;

	for (size_t i = 0; i < n; i++) {
		const struct roll_host *x = &h[i];
		bool final = run_hstate_is_final(x->state);
		bool bad = x->state == RH_FAILED || x->state == RH_TIMED_OUT;

		switch (x->phase) {
		case RP_WAIT:
			if (final)   /* cancelled, or its host went away */
				step(out, &k, max, i, RP_NONE, now, 0, RH__COUNT, "");
			else if (next < 0 || x->batch < next)
				next = x->batch;
			break;
		case RP_DRAIN:
			if (final) {
				if ((a = step(out, &k, max, i, RP_DONE, now, 0, RH__COUNT, "roll_in")))
					snprintf(a->reason, sizeof(a->reason), "%s",
						 "not run (its record ended): back into its load balancers");
			} else if (x->lb_free) {
				if ((a = step(out, &k, max, i, RP_RUN, now, 0, RH__COUNT, "roll_run")))
					snprintf(a->reason, sizeof(a->reason), "%s",
						 "out of its load balancers: running the script");
				inflight++;
			} else {
				inflight++;
			}
			break;
		case RP_RUN:
			if (!final) {
				inflight++;
			} else if (x->state == RH_SUCCEEDED) {
				if ((a = step(out, &k, max, i, RP_GATE, now, 0, RH__COUNT, "roll_gate")))
					snprintf(a->reason, sizeof(a->reason),
						 "script succeeded: health gate of %lld s%s",
						 (long long)(r->gate_ms / 1000),
						 r->drain ? ", back into its load balancers" : "");
				inflight++;
			} else if (bad) {
				if ((a = step(out, &k, max, i, failed_phase(r), now, 0, RH__COUNT,
					      "roll_fail")))
					snprintf(a->reason, sizeof(a->reason), "the script %s%s",
						 run_hstate_name(x->state),
						 failed_phase(r) == RP_HELD
							 ? ": kept out of its load balancers" : "");
				failed = failed ? failed : x->name;
			} else {   /* cancelled or skipped: nothing ran to check */
				if ((a = step(out, &k, max, i, RP_DONE, now, 0, RH__COUNT,
					      r->drain ? "roll_in" : "")))
					snprintf(a->reason, sizeof(a->reason), "the script was %s%s",
						 run_hstate_name(x->state),
						 r->drain ? ": back into its load balancers" : "");
			}
			break;
		case RP_GATE: {
			int64_t limit = r->gate_ms + ROLL_GATE_GRACE_MS;

			if (r->cancel_requested) {
				if ((a = step(out, &k, max, i, RP_DONE, now, 0, RH__COUNT, "")))
					snprintf(a->reason, sizeof(a->reason), "%s", "run cancelled");
			} else if (x->healthy && x->healthy_ms > 0 && now - x->healthy_ms >= r->gate_ms) {
				if ((a = step(out, &k, max, i, RP_DONE, now, x->healthy_ms, RH__COUNT,
					      "roll_in")))
					snprintf(a->reason, sizeof(a->reason),
						 "health gate passed: healthy for %lld ms",
						 (long long)(now - x->healthy_ms));
			} else if (x->healthy && x->healthy_ms == 0) {
				if (r->gate_ms == 0) {
					if ((a = step(out, &k, max, i, RP_DONE, now, now, RH__COUNT,
						      "roll_in")))
						snprintf(a->reason, sizeof(a->reason), "%s",
							 "health gate passed: healthy");
				} else {
					step(out, &k, max, i, RP_GATE, x->phase_ms, now, RH__COUNT, "");
					inflight++;
				}
			} else if (!x->healthy && now - x->phase_ms >= limit) {
				if ((a = step(out, &k, max, i, failed_phase(r), now, 0, RH_FAILED,
					      "roll_fail")))
					snprintf(a->reason, sizeof(a->reason),
						 "health gate failed: not healthy for %lld s within %lld s"
						 " of the script's end%s",
						 (long long)(r->gate_ms / 1000), (long long)(limit / 1000),
						 failed_phase(r) == RP_HELD
							 ? ": kept out of its load balancers" : "");
				failed = failed ? failed : x->name;
			} else {
				if (!x->healthy && x->healthy_ms > 0)   /* not healthy any more */
					step(out, &k, max, i, RP_GATE, x->phase_ms, 0, RH__COUNT, "");
				inflight++;
			}
			break;
		}
		case RP_FAILED:
		case RP_HELD:
			failed = failed ? failed : x->name;
			break;
		default:
			break;
		}
	}
	if (failed && r->stop_on_failure) {
		for (size_t i = 0; i < n; i++) {
			if (h[i].phase != RP_WAIT || run_hstate_is_final(h[i].state))
				continue;
			if ((a = step(out, &k, max, i, RP_NONE, now, 0, RH_SKIPPED, "")))
				snprintf(a->reason, sizeof(a->reason),
					 "not run: the rolling run stopped after %s failed",
					 failed ? failed : "a host");
		}
		return k;
	}
	if (inflight > 0 || next < 0 || r->cancel_requested)
		return k;
	for (size_t i = 0; i < n; i++) {
		if (h[i].phase != RP_WAIT || h[i].batch != next || run_hstate_is_final(h[i].state))
			continue;
		if (r->drain) {
			if ((a = step(out, &k, max, i, RP_DRAIN, now, 0, RH__COUNT, "roll_out")))
				snprintf(a->reason, sizeof(a->reason),
					 "batch %d: out of its load balancers for the script", next + 1);
		} else if ((a = step(out, &k, max, i, RP_RUN, now, 0, RH__COUNT, "roll_run"))) {
			snprintf(a->reason, sizeof(a->reason), "batch %d: running the script", next + 1);
		}
	}
	return k;
}
