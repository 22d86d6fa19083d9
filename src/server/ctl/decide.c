/* decide.c - the reconcile decision: groups + hosts + now -> actions. Pure
 * (no I/O, no clock), so unit tests drive it with plain structs. Level-
 * triggered: called again after every change or tick, it converges. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static bool
is_live(enum hstate s)
{
	return s == HS_LAUNCHING || s == HS_BOOTING || s == HS_INITIALIZING || s == HS_READY ||
	       s == HS_UNHEALTHY;
}

static bool
in_group(const struct rc_host *h, const struct rc_group *g)
{
	return strcmp(h->cluster, g->cluster) == 0 && strcmp(h->group, g->name) == 0;
}

/* Every host of each `after` group is ready, and there are as many as it
 * wants. */
static bool
after_ready(const struct rc_group *g, const struct rc_group *groups, size_t ng,
	    const struct rc_host *hosts, size_t nh, char *why, size_t whyn)
{
	for (int a = 0; a < g->nafter; a++) {
		const struct rc_group *dep = NULL;
		int ready = 0, other = 0;
		for (size_t i = 0; i < ng; i++)
			if (strcmp(groups[i].cluster, g->cluster) == 0 &&
			    strcmp(groups[i].name, g->after[a]) == 0)
				dep = &groups[i];
		if (dep == NULL) {
			snprintf(why, whyn, "waiting for group '%s', which does not exist", g->after[a]);
			return false;
		}
		for (size_t i = 0; i < nh; i++) {
			if (!in_group(&hosts[i], dep) || !is_live(hosts[i].state))
				continue;
			if (hosts[i].state == HS_READY)
				ready++;
			else
				other++;
		}
		if (other > 0 || ready < dep->desired) {
			snprintf(why, whyn, "waiting for group '%s' to be ready (%d of %d ready)",
				 dep->name, ready, dep->desired);
			return false;
		}
	}
	return true;
}

static size_t
push(struct rc_action *out, size_t n, size_t max, enum rc_kind kind, const struct rc_group *g,
     const char *host_id, const char *cause, const char *reason)
{
	if (n >= max)
		return n;
	memset(&out[n], 0, sizeof(out[n]));
	out[n].kind = kind;
	out[n].cluster = g->cluster;
	out[n].group = g->name;
	out[n].host_id = host_id;
	snprintf(out[n].cause, sizeof(out[n].cause), "%s", cause);
	snprintf(out[n].reason, sizeof(out[n].reason), "%s", reason);
	return n + 1;
}

/* Scale-in order: hosts that are not ready yet go first (they serve
 * nothing), then by the group's termination policy; protected never. */
static int
victim_rank(const struct rc_host *h)
{
	switch (h->state) {
	case HS_UNHEALTHY: return 0;
	case HS_LAUNCHING:
	case HS_BOOTING:
	case HS_INITIALIZING: return 1;
	default: return 2;
	}
}

/* Hosts behind the group's template version go first (like AWS's oldest
 * launch template first: a scale-in during a refresh leaves it fewer to
 * replace), ready or not; then not ready first, then the termination
 * policy. least:<metric> picks the host with the smallest latest value; a
 * host with no value is taken last (it may be the busiest: unknown is not
 * absent), ties go to the newest. */
static bool
better_victim(const struct rc_host *a, const struct rc_host *b, bool oldest, bool least)
{
	if (a->behind != b->behind)
		return a->behind;
	if (victim_rank(a) != victim_rank(b))
		return victim_rank(a) < victim_rank(b);
	if (least && !(isnan(a->metric) && isnan(b->metric))) {
		if (isnan(a->metric) || isnan(b->metric))
			return isnan(b->metric);
		if (a->metric != b->metric)
			return a->metric < b->metric;
		return a->seq > b->seq;
	}
	return oldest ? a->seq < b->seq : a->seq > b->seq;
}

/* When the group may launch again after its recent failures (0: now). */
static int64_t
failure_backoff(const struct rc_group *g, const struct rc_host *hosts, size_t nh)
{
	int64_t last_ready = 0, last_fail = 0, delay;
	int failures = 0;

	for (size_t i = 0; i < nh; i++)
		if (in_group(&hosts[i], g) && hosts[i].ready_ms > last_ready)
			last_ready = hosts[i].ready_ms;
	for (size_t i = 0; i < nh; i++) {
		const struct rc_host *h = &hosts[i];
		if (!in_group(h, g) || h->state != HS_FAILED || h->updated_ms < last_ready)
			continue;
		failures++;
		if (h->updated_ms > last_fail)
			last_fail = h->updated_ms;
	}
	if (failures == 0)
		return 0;
	delay = g->backoff_base_ms << (failures - 1 < 20 ? failures - 1 : 20);
	if (g->backoff_max_ms > 0 && delay > g->backoff_max_ms)
		delay = g->backoff_max_ms;
	return last_fail + delay;
}

int64_t
reconcile_heard_since(int64_t heard_since_ms, int64_t last_pass_ms, int64_t last_act_ms,
		      int64_t now_ms, int64_t pause_ms)
{
	if (last_pass_ms == 0 || now_ms - last_pass_ms - last_act_ms > pause_ms)
		return now_ms;
	return heard_since_ms;
}

/* How long herd has not heard from h, counted from when it could hear: a
 * heartbeat the server was not listening for (stopped, paused, store stalled)
 * is not the host's silence. */
static int64_t
silence_ms(const struct rc_host *h, int64_t now_ms, int64_t heard_since_ms)
{
	int64_t from = h->heartbeat_ms > heard_since_ms ? h->heartbeat_ms : heard_since_ms;

	return now_ms - from;
}

size_t
reconcile_decide(const struct rc_group *groups, size_t ng, const struct rc_host *hosts, size_t nh,
		 int64_t now_ms, int64_t heard_since_ms, struct rc_action *out, size_t max)
{
	size_t n = 0;
	char why[256];

	for (size_t gi = 0; gi < ng; gi++) {
		const struct rc_group *g = &groups[gi];
		int count = 0, unhealthy = 0, draining = 0, ready = 0;
		int64_t backoff_until = 0, ua = g->unhealthy_after_ms;
		bool oldest = g->termination && strcmp(g->termination, "oldest") == 0;
		bool least = g->termination && strncmp(g->termination, "least:", 6) == 0;

		for (size_t i = 0; i < nh; i++) {
			const struct rc_host *h = &hosts[i];
			if (!in_group(h, g) || (h->leaving && h->state != HS_FAILED))
				continue;   /* a refresh's: its replacement is launched */
			if (h->state == HS_DRAINING) {
				/* on its way out: not capacity, but can be reclaimed */
				draining++;
				continue;
			}
			if (h->state == HS_FAILED) {
				/* kept a while for inspection; it no longer counts */
				if (now_ms - h->updated_ms >= g->keep_failed_ms)
					n = push(out, n, max, RC_TERMINATE, g, h->id, "cleanup",
						 "failed host kept for inspection: removing it");
				continue;
			}
			if (!is_live(h->state))
				continue;
			if (h->state != HS_READY && h->state != HS_UNHEALTHY && g->max_provision_ms > 0 &&
			    now_ms - h->created_ms > g->max_provision_ms &&
			    (ua == 0 || now_ms - heard_since_ms > ua)) {
				snprintf(why, sizeof(why), "not ready within %llds (max_provision_time)",
					 (long long)(g->max_provision_ms / 1000));
				n = push(out, n, max, RC_FAIL, g, h->id, "provision_timeout", why);
				continue;
			}
			if (h->state != HS_READY && h->state != HS_UNHEALTHY && g->max_provision_ms > 0 &&
			    now_ms - h->created_ms > g->max_provision_ms) {
				/* its "ready" may have been sent while herd was deaf:
				 * it gets unhealthy_after to say it again */
				snprintf(why, sizeof(why),
					 "not ready within %llds, but herd has listened only %llds:"
					 " waiting %llds more for it to report",
					 (long long)(g->max_provision_ms / 1000),
					 (long long)((now_ms - heard_since_ms) / 1000),
					 (long long)((heard_since_ms + ua - now_ms + 999) / 1000));
				n = push(out, n, max, RC_WAIT, g, h->id, "grace", why);
			} else if ((h->state == HS_READY || h->state == HS_UNHEALTHY) && ua > 0 &&
			    now_ms - h->heartbeat_ms > ua && silence_ms(h, now_ms, heard_since_ms) <= ua) {
				/* silent, but mostly while herd could not hear it: it
				 * gets a full unhealthy_after from when herd could */
				snprintf(why, sizeof(why),
					 "no heartbeat for %llds, but herd has listened only %llds:"
					 " waiting %llds more before it counts as silent",
					 (long long)((now_ms - h->heartbeat_ms) / 1000),
					 (long long)((now_ms - heard_since_ms) / 1000),
					 (long long)((heard_since_ms + ua - now_ms + 999) / 1000));
				n = push(out, n, max, RC_WAIT, g, h->id, "grace", why);
			} else if (h->state == HS_READY && ua > 0 &&
				   silence_ms(h, now_ms, heard_since_ms) > ua) {
				if (h->heartbeat_ms >= heard_since_ms)
					snprintf(why, sizeof(why), "no heartbeat for %llds",
						 (long long)((now_ms - h->heartbeat_ms) / 1000));
				else
					snprintf(why, sizeof(why),
						 "no heartbeat in the %llds herd has been listening",
						 (long long)((now_ms - heard_since_ms) / 1000));
				n = push(out, n, max, RC_UNHEALTHY, g, h->id, "heartbeat_lost", why);
			} else if (h->state == HS_READY) {
				ready++;
			}
			if (h->state == HS_UNHEALTHY)
				unhealthy++;
			count++;
		}
		if (g->backoff_base_ms > 0)
			backoff_until = failure_backoff(g, hosts, nh);
		/* Replace unhealthy hosts, unless so many are unhealthy that the
		 * cause is likely not the hosts (then replacing would make it worse).
		 * unhealthy_after 0 turns replacement off. A silent host is not taken
		 * while it is the group's last ready one: its replacement is launched
		 * first (it no longer counts) and it goes once a new host is ready,
		 * like a Nomad allocation on a lost node. */
		if (unhealthy > 0 && ua > 0) {
			int cap = g->desired * g->max_unhealthy_pct / 100;
			bool surge = ready == 0 && g->desired > 0;
			if (cap < 1)
				cap = 1;
			if (unhealthy > cap) {
				snprintf(why, sizeof(why),
					 "%d of %d hosts unhealthy, more than max_unhealthy %d%%: not replacing",
					 unhealthy, count, g->max_unhealthy_pct);
				n = push(out, n, max, RC_WAIT, g, NULL, "unhealthy_cap", why);
			} else {
				for (size_t i = 0; i < nh; i++) {
					const struct rc_host *h = &hosts[i];
					if (!in_group(h, g) || h->state != HS_UNHEALTHY ||
					    silence_ms(h, now_ms, heard_since_ms) <= ua)
						continue;
					if (surge)
						n = push(out, n, max, RC_WAIT, g, h->id, "last_ready",
							 "unhealthy, but the group has no ready host:"
							 " kept until its replacement is ready");
					else
						n = push(out, n, max, RC_TERMINATE, g, h->id, "replace",
							 "unhealthy: replacing");
					count--;
				}
			}
		}
		/* A host being drained is taken back before a new one is launched. */
		for (size_t i = 0; i < nh && count < g->desired && draining > 0; i++) {
			if (!in_group(&hosts[i], g) || hosts[i].state != HS_DRAINING ||
			    hosts[i].leaving)
				continue;
			snprintf(why, sizeof(why), "group has %d host(s), desired %d: taking back %s",
				 count, g->desired, hosts[i].name);
			n = push(out, n, max, RC_RECLAIM, g, hosts[i].id, "scale_out", why);
			count++;
			draining--;
		}
		if (count < g->desired) {
			if (!after_ready(g, groups, ng, hosts, nh, why, sizeof(why))) {
				n = push(out, n, max, RC_WAIT, g, NULL, "after", why);
			} else if (now_ms < backoff_until) {
				snprintf(why, sizeof(why), "backing off after failures for %llds",
					 (long long)((backoff_until - now_ms + 999) / 1000));
				n = push(out, n, max, RC_WAIT, g, NULL, "backoff", why);
			} else {
				for (int k = count; k < g->desired; k++) {
					snprintf(why, sizeof(why), "group has %d host(s), desired %d", count,
						 g->desired);
					n = push(out, n, max, RC_LAUNCH, g, NULL, "scale_out", why);
				}
			}
		} else if (count > g->desired) {
			for (int k = g->desired; k < count; k++) {
				const struct rc_host *best = NULL;
				for (size_t i = 0; i < nh; i++) {
					const struct rc_host *h = &hosts[i];
					bool already = false;
					if (!in_group(h, g) || !is_live(h->state) || h->protected_ ||
					    h->leaving)
						continue;
					for (size_t j = 0; j < n; j++)
						if (out[j].host_id == h->id &&
						    (out[j].kind == RC_TERMINATE || out[j].kind == RC_DRAIN))
							already = true;
					if (already)
						continue;
					if (best == NULL || better_victim(h, best, oldest, least))
						best = h;
				}
				if (best == NULL) {
					n = push(out, n, max, RC_WAIT, g, NULL, "protected",
						 "cannot scale in: remaining hosts are protected");
					break;
				}
				if (least)
					snprintf(why, sizeof(why),
						 "group has %d host(s), desired %d; %sleast %s first (%g)",
						 count, g->desired,
						 best->behind ? "behind the template version first, then " : "",
						 g->termination + 6, best->metric);
				else
					snprintf(why, sizeof(why), "group has %d host(s), desired %d; %s%s first",
						 count, g->desired,
						 best->behind ? "behind the template version first, then " : "",
						 oldest ? "oldest" : "newest");
				/* ready hosts with a before_terminate are drained first */
				n = push(out, n, max, g->drain && best->state == HS_READY ? RC_DRAIN : RC_TERMINATE,
					 g, best->id, "scale_in", why);
			}
		}
	}
	return n;
}
