/* refresh-decide.c - the instance refresh decision (ctl/refresh.h): a
 * refresh + its group's hosts + desired + now -> the next action. Pure (no
 * I/O, no clock): unit tests drive it with plain structs. Level-triggered:
 * called on every reconcile pass, it converges. */
#include <stdio.h>
#include <string.h>

#include "refresh.h"

static bool
counted(enum hstate s)
{
	return s == HS_LAUNCHING || s == HS_BOOTING || s == HS_INITIALIZING || s == HS_READY ||
	       s == HS_UNHEALTHY;
}

static bool
is_new(const struct refresh *r, const struct rf_host *h)
{
	return h->version && strcmp(h->version, r->target) == 0;
}

static bool
in_batch(const struct refresh *r, const struct rf_host *h)
{
	size_t i;
	json_t *v;

	json_array_foreach(r->batch, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), h->id) == 0)
			return true;
	return false;
}

/* A new host ready for warmup_ms at now and UP at its load balancer. */
static bool
warm(const struct refresh *r, const struct rf_host *h, int64_t now_ms)
{
	return h->state == HS_READY && h->lb_up && now_ms - h->ready_ms >= r->p.warmup_ms;
}

/* Whether a should be chosen before b: not ready first, then the oldest. */
static bool
before(const struct rf_host *a, const struct rf_host *b)
{
	if ((a->state == HS_READY) != (b->state == HS_READY))
		return a->state != HS_READY;
	return a->seq < b->seq;
}

void
refresh_decide(const struct refresh *r, const struct rf_host *hosts, size_t nh, int desired,
	       int64_t now_ms, struct rf_action *out)
{
	int live = 0, pending = 0, ready = 0, old = 0, batch_ready = 0, min, k;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (strcmp(r->state, "running") != 0) {
		out->kind = RF_NONE;
		return;
	}
	for (i = 0; i < nh && out->nhosts < REFRESH_BATCH_MAX; i++)
		if (hosts[i].out && counted(hosts[i].state))
			out->hosts[out->nhosts++] = i;
	if (out->nhosts > 0) {
		out->kind = RF_REDRAIN;
		snprintf(out->reason, sizeof(out->reason),
			 "%zu host(s) taken out but still in service: draining them again",
			 out->nhosts);
		return;
	}
	for (i = 0; i < nh; i++) {
		const struct rf_host *h = &hosts[i];

		if (is_new(r, h) && h->state == HS_FAILED && h->created_ms >= r->started_ms) {
			out->kind = RF_FAIL;
			snprintf(out->reason, sizeof(out->reason),
				 "new host %s (version %s) failed: the old hosts stay", h->name,
				 r->target);
			return;
		}
	}
	for (i = 0; i < nh; i++) {
		const struct rf_host *h = &hosts[i];

		if (h->out || !counted(h->state))
			continue;
		live++;
		if (is_new(r, h) && !warm(r, h, now_ms))
			pending++;
		else if (h->state == HS_READY)
			ready++;
		if (!is_new(r, h))
			old++;
		if (h->state == HS_READY && !is_new(r, h) && in_batch(r, h))
			batch_ready++;
	}
	min = refresh_min_healthy(&r->p, desired);
	out->kind = RF_WAIT;
	if (json_array_size(r->batch) > 0) {
		if (live < desired + r->extra) {
			snprintf(out->reason, sizeof(out->reason),
				 "waiting for %d surge host(s) to be launched",
				 desired + r->extra - live);
			return;
		}
		if (pending > 0) {
			snprintf(out->reason, sizeof(out->reason),
				 "waiting for %d new host(s) to be ready, in service%s", pending,
				 r->p.warmup_ms > 0 ? " and warm" : "");
			return;
		}
		if (ready - batch_ready < min) {
			snprintf(out->reason, sizeof(out->reason),
				 "min_healthy: taking out %d ready host(s) would leave %d, fewer than %d",
				 batch_ready, ready - batch_ready, min);
			return;
		}
		for (i = 0; i < nh && out->nhosts < REFRESH_BATCH_MAX; i++)
			if (!hosts[i].out && counted(hosts[i].state) && !is_new(r, &hosts[i]) &&
			    in_batch(r, &hosts[i]))
				out->hosts[out->nhosts++] = i;
		out->kind = RF_TAKE_OUT;
		snprintf(out->reason, sizeof(out->reason),
			 "%zu old host(s) out; %d ready stay (min_healthy %d)", out->nhosts,
			 ready - batch_ready, min);
		return;
	}
	if (old == 0) {
		if (pending > 0) {
			snprintf(out->reason, sizeof(out->reason),
				 "waiting for the last %d new host(s) to be ready", pending);
			return;
		}
		out->kind = RF_DONE;
		snprintf(out->reason, sizeof(out->reason), "all %d host(s) on version %s", live,
			 r->target);
		return;
	}
	if (pending > 0) {
		snprintf(out->reason, sizeof(out->reason),
			 "waiting for %d new host(s) to be ready, in service%s", pending,
			 r->p.warmup_ms > 0 ? " and warm" : "");
		return;
	}
	if (r->p.pause_after > 0 && r->batches >= r->p.pause_after) {
		out->kind = RF_PAUSE;
		snprintf(out->reason, sizeof(out->reason), "paused after %d batch(es) (pause_after)",
			 r->batches);
		return;
	}
	k = refresh_batch_size(&r->p, desired);
	if (k > old)
		k = old;
	if (r->p.surge == 0) {
		if (ready - min <= 0) {
			snprintf(out->reason, sizeof(out->reason),
				 "min_healthy: %d ready, at least %d must stay", ready, min);
			return;
		}
		if (k > ready - min)
			k = ready - min;
	}
	if (k > REFRESH_BATCH_MAX)
		k = REFRESH_BATCH_MAX;
	/* the k first old hosts by before() (selection: k is small) */
	while ((int)out->nhosts < k) {
		size_t best = nh;

		for (i = 0; i < nh; i++) {
			bool taken = false;

			if (hosts[i].out || !counted(hosts[i].state) || is_new(r, &hosts[i]))
				continue;
			for (size_t j = 0; j < out->nhosts; j++)
				taken = taken || out->hosts[j] == i;
			if (!taken && (best == nh || before(&hosts[i], &hosts[best])))
				best = i;
		}
		if (best == nh)
			break;
		out->hosts[out->nhosts++] = best;
	}
	out->kind = RF_CHOOSE;
	out->extra = r->p.surge < k ? r->p.surge : k;
	snprintf(out->reason, sizeof(out->reason),
		 "batch %d: %d old host(s) of %d to replace, %d surge host(s) first", r->batches + 1,
		 k, old, out->extra);
}
