/* ctl/rolling.c - the act side of rolling script runs (ctl/rolling.h): for
 * each running rolling run, reads its hosts' records, their health (the
 * host's state, and its member in its group's LB by lb-sync's last view)
 * and whether an LB still holds them, asks roll_decide() what to do,
 * stores the steps (model/run.c) and records each as an activity. Taking
 * a host out of its LBs is lb-sync's drain: a host in a draining run's
 * drain, run or held phase is not a wanted member (run_rolling_out), so
 * the next lb-sync pass drains it and removes it once it has no session
 * left or its LB's drain_timeout has passed; out of that phase it is
 * wanted again and added back, taking traffic once its health check
 * passes. Nothing here waits: one step per reconcile pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/lbsync.h"
#include "ctl/rolling.h"
#include "log.h"
#include "model/activity.h"
#include "model/group.h"
#include "model/host.h"
#include "model/template.h"
#include "util.h"
#include "xalloc.h"

/* The LB the group cluster/grp's template names into lb ("" = none). */
static void
group_lb(struct server *s, const char *cluster, const char *grp, char *lb, size_t n)
{
	struct herr err = HERR_INIT;
	struct group *gr = xcalloc(1, sizeof(*gr));
	struct template_spec *t = xcalloc(1, sizeof(*t));   /* large: not on the stack */

	lb[0] = '\0';
	if (group_get(s->store, cluster, grp, gr, &err) == 0 && gr->template_[0] &&
	    template_get(s->store, gr->template_, t, &err) == 0)
		snprintf(lb, n, "%s", t->load_balancer);
	free(t);
	free(gr);
}

/* Whether host_id is healthy now: ready (so heartbeating), and up and
 * taking traffic in lb when it has one. */
static bool
healthy(struct server *s, const char *host_id, const char *lb)
{
	struct herr err = HERR_INIT;
	struct host h;

	if (host_get(s->store, host_id, &h, &err) < 0 || h.state != HS_READY)
		return false;
	return lb[0] == '\0' || lbsync_host_up(lb, host_id);
}

/* One step of rolling run id. */
static void
roll_one(struct server *s, int64_t id, int64_t now)
{
	struct herr err = HERR_INIT;
	struct run r;
	struct run_host *rh = NULL;
	struct roll_host *h = NULL;
	struct roll_action *acts = NULL;
	struct run_roll_step *steps = NULL;
	const char **kick = NULL;
	size_t n = 0, na, nk = 0;
	char lb[128] = "", lb_of[128] = "";

	if (run_get(s->store, id, &r, &err) < 0)
		return;
	if (run_hosts_get(s->store, id, NULL, -1, 0, false, &rh, &n, &err) < 0) {
		log_warn("rolling run %lld: cannot read its hosts: %s", (long long)id, err.msg);
		goto out;
	}
	h = xcalloc(n + 1, sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		int64_t as_of = 0;
		int members;

		h[i].batch = rh[i].batch;
		h[i].phase = rh[i].phase;
		h[i].state = rh[i].state;
		h[i].phase_ms = rh[i].phase_ms;
		h[i].healthy_ms = rh[i].healthy_ms;
		h[i].name = rh[i].host;
		if (rh[i].phase == RP_GATE) {
			/* hosts of one run are mostly of one group: look its LB up once */
			if (strcmp(lb_of, rh[i].grp) != 0) {
				group_lb(s, rh[i].cluster, rh[i].grp, lb, sizeof(lb));
				snprintf(lb_of, sizeof(lb_of), "%s", rh[i].grp);
			}
			h[i].healthy = healthy(s, rh[i].host_id, lb);
		}
		if (rh[i].phase == RP_DRAIN) {
			/* a view published after the drain began, listing it nowhere */
			members = lbsync_host_members(rh[i].host_id, &as_of);
			h[i].lb_free = members == 0 && as_of > rh[i].phase_ms;
		}
	}
	acts = xcalloc(2 * n + 1, sizeof(*acts));
	na = roll_decide(&(struct roll_run){ .drain = r.drain, .stop_on_failure = r.stop_on_failure,
					     .cancel_requested = r.cancel_requested,
					     .gate_ms = r.gate_ms },
			 h, n, now, acts, 2 * n + 1);
	if (na == 0)
		goto out;
	steps = xcalloc(na, sizeof(*steps));
	kick = xcalloc(na + 1, sizeof(*kick));
	for (size_t i = 0; i < na; i++) {
		const struct roll_action *a = &acts[i];
		steps[i] = (struct run_roll_step){ .host_id = rh[a->host].host_id, .phase = a->to,
						   .phase_ms = a->phase_ms, .healthy_ms = a->healthy_ms,
						   .state = a->state, .reason = a->reason };
		if (a->to == RP_RUN)
			kick[nk++] = rh[a->host].host_id;
	}
	/* stored before it is acted on: lb-sync and the agents read the store */
	if (run_roll_apply(s->store, id, steps, na, now, &err) < 0) {
		log_warn("rolling run %lld: cannot store its next step: %s", (long long)id, err.msg);
		goto out;
	}
	for (size_t i = 0; i < na; i++) {
		const struct roll_action *a = &acts[i];
		const struct run_host *x = &rh[a->host];
		if (a->kind[0] == '\0')
			continue;
		herr_clear(&err);
		activity_add(s->store, x->cluster, x->grp, x->host, a->kind, "run", NULL, &err,
			     "run %lld (%s): %s %s", (long long)id, r.script, x->host, a->reason);
		log_info("rolling run %lld: %s %s", (long long)id, x->host, a->reason);
	}
	if (nk > 0)
		server_kick_commands(s, kick, nk);
out:
	free(kick);
	free(steps);
	free(acts);
	free(h);
	run_hosts_free(rh, n);
	run_release(&r);
}

void
rolling_pass(struct server *s, int64_t now)
{
	struct herr err = HERR_INIT;
	int64_t *ids = NULL;
	size_t n = 0;

	if (run_rolling_ids(s->store, &ids, &n, &err) < 0) {
		log_warn("rolling runs: cannot read the store: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n && !s->stopping; i++)
		roll_one(s, ids[i], now);
	free(ids);
}
