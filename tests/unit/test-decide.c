/* test-decide.c - the reconcile decision (ctl/decide.c) driven with plain
 * structs and an injected clock: launching up to the desired size, scale-in
 * order (hosts behind the template version first, then not-ready, then
 * newest/oldest; protected never; a refresh's taken-out hosts neither
 * counted, chosen nor taken back), `after`, provision timeouts, lost
 * heartbeats and the unhealthy cap, the grace after herd could not hear
 * (start, pause), the last ready host replaced only after a new one is
 * ready, failed hosts kept then cleaned, the failure backoff, and nothing
 * to do once converged. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/ctl.h"

#define T0 1700000000000LL   /* an arbitrary "now" (ms) */
#define SEC 1000LL
#define MAXH 32
#define MAXA 64

/* One scenario: groups, hosts, and what decide said. */
struct world {
	struct rc_group g[4];
	size_t ng;
	struct rc_host h[MAXH];
	char ids[MAXH][16], names[MAXH][32];
	size_t nh;
	struct rc_action a[MAXA];
	size_t na;
	int64_t heard_since;   /* when herd started listening (0: always did) */
};

static struct rc_group *
group(struct world *w, const char *cluster, const char *name, int desired)
{
	struct rc_group *g = &w->g[w->ng++];

	memset(g, 0, sizeof(*g));
	g->cluster = cluster;
	g->name = name;
	g->desired = desired;
	g->max = 100;
	g->max_provision_ms = 300 * SEC;
	g->unhealthy_after_ms = 30 * SEC;
	g->max_unhealthy_pct = 34;
	g->keep_failed_ms = 600 * SEC;
	g->backoff_base_ms = 1 * SEC;
	g->backoff_max_ms = 300 * SEC;
	return g;
}

/* A host of group g with sequence number seq in state st, created at
 * T0 - 10 s (+ seq ms, so that newer hosts are newer); a ready one became
 * ready then and beats now, an unhealthy one has been silent for 2 min. */
static struct rc_host *
host(struct world *w, const struct rc_group *g, int seq, enum hstate st)
{
	size_t i = w->nh++;
	struct rc_host *h = &w->h[i];

	assert_true(i < MAXH);
	memset(h, 0, sizeof(*h));
	snprintf(w->ids[i], sizeof(w->ids[i]), "%08zx", i + 1);
	snprintf(w->names[i], sizeof(w->names[i]), "%s-%d", g->name, seq);
	h->id = w->ids[i];
	h->name = w->names[i];
	h->cluster = g->cluster;
	h->group = g->name;
	h->state = st;
	h->seq = seq;
	h->created_ms = T0 - 10 * SEC + seq;
	h->updated_ms = h->created_ms + 50;
	if (st == HS_READY || st == HS_UNHEALTHY)
		h->ready_ms = h->created_ms + 100;
	h->heartbeat_ms = st == HS_UNHEALTHY ? T0 - 120 * SEC : T0;
	return h;
}

static void
decide(struct world *w, int64_t now)
{
	w->na = reconcile_decide(w->g, w->ng, w->h, w->nh, now, w->heard_since, w->a, MAXA);
}

/* How many actions of kind (and cause, if not NULL) were decided. */
static int
count(const struct world *w, enum rc_kind kind, const char *cause)
{
	int n = 0;

	for (size_t i = 0; i < w->na; i++)
		if (w->a[i].kind == kind && (cause == NULL || strcmp(w->a[i].cause, cause) == 0))
			n++;
	return n;
}

/* The names of the hosts the actions of this kind name, in order, joined by
 * spaces. */
static const char *
targets(const struct world *w, enum rc_kind kind, char *buf, size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; i < w->na; i++) {
		if (w->a[i].kind != kind || w->a[i].host_id == NULL)
			continue;
		for (size_t k = 0; k < w->nh; k++)
			if (w->h[k].id == w->a[i].host_id)
				snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? " " : "",
					 w->h[k].name);
	}
	return buf;
}

static const struct rc_action *
first(const struct world *w, enum rc_kind kind)
{
	for (size_t i = 0; i < w->na; i++)
		if (w->a[i].kind == kind)
			return &w->a[i];
	return NULL;
}

static void
test_launch_up_to_desired(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);

	(void)state;
	host(&w, g, 1, HS_READY);
	decide(&w, T0);
	assert_int_equal(w.na, 2);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 2);
	assert_string_equal(w.a[0].cluster, "demo");
	assert_string_equal(w.a[0].group, "node");
	assert_null(w.a[0].host_id);
	assert_string_equal(w.a[0].reason, "group has 1 host(s), desired 3");

	/* hosts on their way count: nothing more to launch */
	host(&w, g, 2, HS_LAUNCHING);
	host(&w, g, 3, HS_INITIALIZING);
	decide(&w, T0);
	assert_int_equal(w.na, 0);
}

static void
test_converged_does_nothing(void **state)
{
	struct world w = { 0 };
	struct rc_group *m = group(&w, "demo", "master", 1);
	struct rc_group *n = group(&w, "demo", "node", 3);
	struct rc_group *z = group(&w, "demo", "empty", 0);

	(void)state;
	(void)z;
	n->nafter = 1;
	n->after = (const char *const[]){ "master" };
	host(&w, m, 1, HS_READY);
	for (int i = 1; i <= 3; i++)
		host(&w, n, i, HS_READY);
	/* terminated hosts are history */
	host(&w, n, 4, HS_TERMINATED);
	decide(&w, T0);
	assert_int_equal(w.na, 0);
	/* a minute later, still nothing (heartbeats are fresh at that time) */
	for (size_t i = 0; i < w.nh; i++)
		w.h[i].heartbeat_ms = T0 + 55 * SEC;
	decide(&w, T0 + 60 * SEC);
	assert_int_equal(w.na, 0);
}

static void
test_groups_are_per_cluster(void **state)
{
	struct world w = { 0 };
	struct rc_group *a = group(&w, "a", "node", 2);
	struct rc_group *b = group(&w, "b", "node", 1);

	(void)state;
	host(&w, a, 1, HS_READY);
	host(&w, a, 2, HS_READY);
	host(&w, b, 1, HS_READY);
	host(&w, b, 2, HS_READY);
	decide(&w, T0);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_TERMINATE);
	assert_string_equal(w.a[0].cluster, "b");
	assert_string_equal(w.a[0].host_id, w.h[3].id);
}

static void
test_scale_in_newest_first(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	for (int i = 1; i <= 5; i++)
		host(&w, g, i, HS_READY);
	decide(&w, T0);
	assert_int_equal(w.na, 3);
	assert_int_equal(count(&w, RC_TERMINATE, "scale_in"), 3);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-5 node-4 node-3");
	assert_string_equal(w.a[0].reason, "group has 5 host(s), desired 2; newest first");
}

static void
test_scale_in_oldest(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	g->termination = "oldest";
	for (int i = 1; i <= 5; i++)
		host(&w, g, i, HS_READY);
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-1 node-2 node-3");
	assert_non_null(strstr(w.a[0].reason, "oldest first"));
}

static void
test_scale_in_least_metric(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	g->termination = "least:busy";
	host(&w, g, 1, HS_READY)->metric = 5;
	host(&w, g, 2, HS_READY)->metric = NAN;   /* no data: may be the busiest */
	host(&w, g, 3, HS_READY)->metric = 30;
	host(&w, g, 4, HS_READY)->metric = 1;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-4 node-1");
	assert_non_null(strstr(w.a[0].reason, "least busy first"));
}

static void
test_drain_then_reclaim(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	g->drain = true;
	for (int i = 1; i <= 3; i++)
		host(&w, g, i, HS_READY);
	decide(&w, T0);
	/* a victim with a before_terminate is drained, not terminated */
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_string_equal(targets(&w, RC_DRAIN, buf, sizeof(buf)), "node-3");
	/* while it drains, it does not count: 2 = desired, nothing to do */
	w.h[2].state = HS_DRAINING;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	assert_int_equal(count(&w, RC_DRAIN, NULL), 0);
	/* a scale-out takes it back instead of launching */
	g->desired = 3;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_RECLAIM, buf, sizeof(buf)), "node-3");
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	g->desired = 4;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_RECLAIM, NULL), 1);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);
}

static void
test_scale_in_skips_protected(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	for (int i = 1; i <= 4; i++)
		host(&w, g, i, HS_READY);
	w.h[3].protected_ = true;   /* node-4, the newest */
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-3 node-2");

	/* everything protected: wait, say why, terminate nothing */
	for (size_t i = 0; i < w.nh; i++)
		w.h[i].protected_ = true;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "protected"), 1);
}

static void
test_scale_in_prefers_not_ready(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	char buf[256];

	(void)state;
	host(&w, g, 1, HS_READY);
	host(&w, g, 2, HS_BOOTING);      /* older than node-3, but serves nothing */
	host(&w, g, 3, HS_READY);
	host(&w, g, 4, HS_READY);
	g->desired = 2;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-2 node-4");

	/* unhealthy goes before anything else (under the cap: replaced too) */
	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "node", 3);
	host(&w, g, 1, HS_UNHEALTHY);
	host(&w, g, 2, HS_INITIALIZING);
	host(&w, g, 3, HS_READY);
	host(&w, g, 4, HS_READY);
	g->desired = 2;
	g->max_unhealthy_pct = 100;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-1 node-2");
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
}

/* Hosts behind the group's current template version go first, before the
 * termination policy and before hosts not ready yet (a scale-in during a
 * refresh leaves it less to replace), then the policy among them. */
static void
test_scale_in_behind_first(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);
	char buf[256];

	(void)state;
	for (int i = 1; i <= 3; i++)
		host(&w, g, i, HS_READY)->behind = true;
	host(&w, g, 4, HS_READY);
	host(&w, g, 5, HS_READY);
	decide(&w, T0);
	/* newest first among the behind ones, not node-5 and node-4 */
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-3 node-2");
	assert_string_equal(w.a[0].reason,
			    "group has 5 host(s), desired 3; behind the template version first,"
			    " then newest first");
	/* more than the behind ones: then the policy among the current */
	g->desired = 1;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)),
			    "node-3 node-2 node-1 node-5");
	assert_string_equal(w.a[3].reason, "group has 5 host(s), desired 1; newest first");
	/* oldest: the oldest behind first */
	g->desired = 3;
	g->termination = "oldest";
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-1 node-2");

	/* a new host still booting (a refresh's surge host) stays; an old
	 * ready one goes */
	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "node", 2);
	host(&w, g, 1, HS_READY)->behind = true;
	host(&w, g, 2, HS_READY)->behind = true;
	host(&w, g, 3, HS_BOOTING);
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-2");
	/* with a before_terminate, a ready behind host is drained */
	g->drain = true;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_DRAIN, buf, sizeof(buf)), "node-2");
}

/* A host a refresh took out is on its way out: not counted, not chosen as
 * a victim again, not taken back by a scale-out (the refresh would take it
 * out again); its replacement is launched from the current version. */
static void
test_refresh_taken_out_leaves(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);
	char buf[256];

	(void)state;
	g->drain = true;
	host(&w, g, 1, HS_DRAINING)->leaving = true;   /* surge 0: out first */
	host(&w, g, 2, HS_READY)->behind = true;
	host(&w, g, 3, HS_READY)->behind = true;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_RECLAIM, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 1);
	/* an ordinary draining host is still taken back */
	w.h[0].leaving = false;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_RECLAIM, buf, sizeof(buf)), "node-1");
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);

	/* taken out, its drain not begun yet (a crash in between): still
	 * ready, yet neither counted nor a scale-in victim */
	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "node", 2);
	host(&w, g, 1, HS_READY)->leaving = true;
	host(&w, g, 2, HS_READY)->behind = true;
	host(&w, g, 3, HS_READY);
	host(&w, g, 4, HS_READY);
	g->desired = 2;
	decide(&w, T0);
	assert_string_equal(targets(&w, RC_TERMINATE, buf, sizeof(buf)), "node-2");
	g->desired = 3;
	decide(&w, T0);
	assert_int_equal(w.na, 0);
}

static void
test_after_waits_for_ready_group(void **state)
{
	struct world w = { 0 };
	struct rc_group *m = group(&w, "demo", "master", 1);
	struct rc_group *n = group(&w, "demo", "node", 3);
	struct rc_host *mh;
	const struct rc_action *wait;

	(void)state;
	n->after = (const char *const[]){ "master" };
	n->nafter = 1;

	/* nothing yet: the master is launched, the nodes wait */
	decide(&w, T0);
	assert_int_equal(w.na, 2);
	assert_int_equal(w.a[0].kind, RC_LAUNCH);
	assert_string_equal(w.a[0].group, "master");
	wait = first(&w, RC_WAIT);
	assert_non_null(wait);
	assert_string_equal(wait->group, "node");
	assert_string_equal(wait->cause, "after");
	assert_string_equal(wait->reason, "waiting for group 'master' to be ready (0 of 1 ready)");

	/* the master on its way, through every state before ready: still wait */
	mh = host(&w, m, 1, HS_LAUNCHING);
	for (enum hstate s = HS_LAUNCHING; s < HS_READY; s++) {
		mh->state = s;
		decide(&w, T0);
		assert_int_equal(w.na, 1);
		assert_int_equal(count(&w, RC_WAIT, "after"), 1);
	}
	/* ready: the three nodes go */
	mh->state = HS_READY;
	mh->ready_ms = T0 - SEC;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 3);
	for (size_t i = 0; i < w.na; i++)
		assert_string_equal(w.a[i].group, "node");

	/* "fully ready": a master group of 2 with one ready host still holds them */
	m->desired = 2;
	host(&w, m, 2, HS_READY);
	w.h[1].state = HS_BOOTING;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "after"), 1);
	w.h[1].state = HS_READY;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 3);
	/* "every host": one ready is enough for desired 1, but not while
	 * another one of the group is still on its way */
	m->desired = 1;
	w.h[1].state = HS_INITIALIZING;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_WAIT, "after"), 1);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	w.h[1].state = HS_READY;
	m->desired = 2;

	/* a failed master does not count as one */
	memset(&w, 0, sizeof(w));
	m = group(&w, "demo", "master", 1);
	n = group(&w, "demo", "node", 1);
	n->after = (const char *const[]){ "master" };
	n->nafter = 1;
	host(&w, m, 1, HS_FAILED);
	decide(&w, T0);
	assert_int_equal(count(&w, RC_WAIT, "after"), 1);

	/* a dependency that does not exist: wait, and say so */
	memset(&w, 0, sizeof(w));
	n = group(&w, "demo", "node", 1);
	n->after = (const char *const[]){ "nope" };
	n->nafter = 1;
	decide(&w, T0);
	assert_int_equal(w.na, 1);
	assert_string_equal(w.a[0].reason, "waiting for group 'nope', which does not exist");
}

static void
test_provision_timeout_fails(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);
	struct rc_host *slow, *ok;

	(void)state;
	g->max_provision_ms = 60 * SEC;
	slow = host(&w, g, 1, HS_BOOTING);
	ok = host(&w, g, 2, HS_READY);
	slow->created_ms = ok->created_ms = T0;
	ok->ready_ms = T0 + 5 * SEC;
	ok->heartbeat_ms = T0 + 60 * SEC;

	decide(&w, T0 + 60 * SEC);
	assert_int_equal(w.na, 0);
	decide(&w, T0 + 60 * SEC + 1);
	assert_int_equal(count(&w, RC_FAIL, "provision_timeout"), 1);
	assert_string_equal(first(&w, RC_FAIL)->host_id, slow->id);
	assert_string_equal(first(&w, RC_FAIL)->reason, "not ready within 60s (max_provision_time)");
	/* it no longer counts, so a replacement goes at once (no failure yet) */
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);

	/* every state before ready times out; ready and unhealthy do not */
	for (enum hstate s = HS_LAUNCHING; s <= HS_UNHEALTHY; s++) {
		slow->state = s;
		decide(&w, T0 + 61 * SEC);
		assert_int_equal(count(&w, RC_FAIL, NULL), s < HS_READY ? 1 : 0);
	}
}

static void
test_heartbeat_lost_unhealthy(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);
	struct rc_host *h;

	(void)state;
	h = host(&w, g, 1, HS_READY);
	host(&w, g, 2, HS_READY);
	host(&w, g, 3, HS_READY);
	h->heartbeat_ms = T0 - 30 * SEC;
	decide(&w, T0);
	assert_int_equal(w.na, 0);
	h->heartbeat_ms = T0 - 30 * SEC - 1;
	decide(&w, T0);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_UNHEALTHY);
	assert_string_equal(w.a[0].cause, "heartbeat_lost");
	assert_string_equal(w.a[0].host_id, h->id);
	assert_string_equal(w.a[0].reason, "no heartbeat for 30s");
	/* not-ready hosts have not started beating: the provision timeout is theirs */
	h->state = HS_INITIALIZING;
	decide(&w, T0);
	assert_int_equal(w.na, 0);
}

static void
test_unhealthy_cap(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);
	struct rc_host *a, *b;

	(void)state;
	a = host(&w, g, 1, HS_UNHEALTHY);
	b = host(&w, g, 2, HS_UNHEALTHY);
	host(&w, g, 3, HS_READY);
	/* 2 of 3 unhealthy, cap 34% of 3 = 1: likely not the hosts' fault */
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "unhealthy_cap"), 1);
	assert_non_null(strstr(first(&w, RC_WAIT)->reason, "2 of 3 hosts unhealthy"));

	/* one unhealthy, within the cap: replaced (terminated, and a new one) */
	b->state = HS_READY;
	b->heartbeat_ms = T0;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, "replace"), 1);
	assert_string_equal(first(&w, RC_TERMINATE)->host_id, a->id);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 1);

	/* the cap is at least one host, even in a small group: replaced, but
	 * the only host goes only once its replacement is ready */
	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "solo", 1);
	g->max_unhealthy_pct = 0;
	host(&w, g, 1, HS_UNHEALTHY);
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "last_ready"), 1);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);
}

/* After a start, hosts silent since before it get a full unhealthy_after:
 * those that report are healthy, the one that stays silent is replaced. */
static void
test_grace_after_start(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);
	struct rc_host *a, *b, *c;
	char buf[64];

	(void)state;
	a = host(&w, g, 1, HS_READY);
	b = host(&w, g, 2, HS_READY);
	c = host(&w, g, 3, HS_READY);
	/* the server was down 40 s, longer than unhealthy_after (30 s) */
	a->heartbeat_ms = b->heartbeat_ms = c->heartbeat_ms = T0 - 40 * SEC;
	w.heard_since = T0;
	decide(&w, T0 + 300);
	assert_int_equal(count(&w, RC_UNHEALTHY, NULL), 0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	/* each kept host says why */
	assert_int_equal(count(&w, RC_WAIT, "grace"), 3);
	assert_string_equal(targets(&w, RC_WAIT, buf, sizeof(buf)), "node-1 node-2 node-3");
	assert_non_null(strstr(first(&w, RC_WAIT)->reason, "no heartbeat for 40s"));
	assert_non_null(strstr(first(&w, RC_WAIT)->reason, "waiting 30s more"));

	/* two report during the grace; the whole grace passes */
	a->heartbeat_ms = T0 + 5 * SEC;
	b->heartbeat_ms = T0 + 6 * SEC;
	decide(&w, T0 + 30 * SEC);
	assert_int_equal(count(&w, RC_UNHEALTHY, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "grace"), 1);
	assert_string_equal(first(&w, RC_WAIT)->host_id, c->id);

	/* silence after the grace still counts: only the silent one */
	decide(&w, T0 + 30 * SEC + 1);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_UNHEALTHY);
	assert_string_equal(w.a[0].host_id, c->id);
	assert_string_equal(w.a[0].reason, "no heartbeat in the 30s herd has been listening");
	/* ... and then replaced (two others are ready) */
	c->state = HS_UNHEALTHY;
	decide(&w, T0 + 31 * SEC);
	assert_int_equal(count(&w, RC_TERMINATE, "replace"), 1);
	assert_string_equal(first(&w, RC_TERMINATE)->host_id, c->id);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 1);
}

/* A pause of the controller (stopped, suspended, stalled store) is the
 * same: hosts marked unhealthy before it are not replaced during it either. */
static void
test_grace_after_pause(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 4);
	struct rc_host *h[4];

	(void)state;
	g->max_unhealthy_pct = 100;
	for (int i = 0; i < 4; i++)
		h[i] = host(&w, g, i + 1, HS_READY);
	/* beats until T0, then herd hangs 60 s and resumes at T0 + 60 s */
	h[3]->state = HS_UNHEALTHY;
	h[3]->heartbeat_ms = T0 - 35 * SEC;
	w.heard_since = T0 + 60 * SEC;
	decide(&w, T0 + 61 * SEC);
	assert_int_equal(count(&w, RC_UNHEALTHY, NULL), 0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "grace"), 4);
	/* the unhealthy one reports: it is healthy (the heartbeat call makes
	 * it ready); the others stay silent through the grace */
	h[3]->state = HS_READY;
	h[3]->heartbeat_ms = T0 + 62 * SEC;
	decide(&w, T0 + 90 * SEC);
	assert_int_equal(w.na, 3);
	assert_int_equal(count(&w, RC_WAIT, "grace"), 3);
	decide(&w, T0 + 90 * SEC + 1);
	assert_int_equal(count(&w, RC_UNHEALTHY, "heartbeat_lost"), 3);
	assert_int_equal(count(&w, RC_WAIT, NULL), 0);

	/* without a pause the same silence is lost heartbeats at once */
	w.heard_since = 0;
	h[3]->heartbeat_ms = T0 + 89 * SEC;
	decide(&w, T0 + 61 * SEC);
	assert_int_equal(count(&w, RC_UNHEALTHY, "heartbeat_lost"), 3);
}

/* A host still provisioning when herd stopped is not failed for its
 * provision time before it had unhealthy_after to report to a listening herd. */
static void
test_grace_provision_timeout(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 1);
	struct rc_host *h;

	(void)state;
	h = host(&w, g, 1, HS_INITIALIZING);
	h->created_ms = T0 - 400 * SEC;   /* max_provision_time 300 s */
	w.heard_since = T0;
	decide(&w, T0 + 1 * SEC);
	assert_int_equal(count(&w, RC_FAIL, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	assert_int_equal(count(&w, RC_WAIT, "grace"), 1);
	assert_string_equal(first(&w, RC_WAIT)->host_id, h->id);
	assert_non_null(strstr(first(&w, RC_WAIT)->reason, "not ready within 300s"));
	decide(&w, T0 + 30 * SEC);
	assert_int_equal(count(&w, RC_FAIL, NULL), 0);
	/* still not ready after the grace: failed as before */
	decide(&w, T0 + 30 * SEC + 1);
	assert_int_equal(count(&w, RC_FAIL, "provision_timeout"), 1);
	assert_int_equal(count(&w, RC_WAIT, NULL), 0);
}

/* The loop's side of it: the first pass, and a gap between passes longer
 * than the heartbeat interval, start a new grace; regular passes do not. */
static void
test_heard_since_gap(void **state)
{
	int64_t since = 0, last = 0, t;

	(void)state;
	since = reconcile_heard_since(since, last, 0, T0, 5 * SEC);
	assert_int_equal(since, T0);
	/* passes each second (and a slow one of 5 s): nothing changes */
	for (t = T0 + SEC, last = T0; t <= T0 + 60 * SEC; last = t, t += SEC)
		assert_int_equal(since = reconcile_heard_since(since, last, 0, t, 5 * SEC), T0);
	last = t - SEC;
	t = last + 5 * SEC;
	assert_int_equal(since = reconcile_heard_since(since, last, 0, t, 5 * SEC), T0);
	/* stopped 40 s: listening since the pass after it */
	last = t;
	t += 40 * SEC;
	assert_int_equal(since = reconcile_heard_since(since, last, 0, t, 5 * SEC), t);
	assert_int_equal(reconcile_heard_since(since, t, 0, t + SEC, 5 * SEC), t);
	/* a clock stepped back is no pause */
	assert_int_equal(reconcile_heard_since(since, t, 0, t - 3600 * SEC, 5 * SEC), t);
	/* a pass that spent 30 s acting (a slow cloud, a long LB drain) is no
	 * pause: the API took heartbeats meanwhile ... */
	last = t + SEC;
	assert_int_equal(reconcile_heard_since(since, last, 30 * SEC, last + 31 * SEC, 5 * SEC), t);
	/* ... but a stop after its acting is */
	assert_int_equal(reconcile_heard_since(since, last, 30 * SEC, last + 40 * SEC, 5 * SEC),
			 last + 40 * SEC);
}

/* The last ready host of a group is not taken on silence: its replacement
 * is launched first, and it goes once that one is ready. */
static void
test_last_ready_replaced_after_new_ready(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "db", 1);
	struct rc_host *old, *new;

	(void)state;
	old = host(&w, g, 1, HS_UNHEALTHY);
	/* pass 1: launch, keep the old one, say why */
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
	assert_int_equal(count(&w, RC_DRAIN, NULL), 0);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 1);
	assert_int_equal(count(&w, RC_WAIT, "last_ready"), 1);
	assert_string_equal(first(&w, RC_WAIT)->host_id, old->id);
	/* passes 2..: the replacement on its way: nothing more launched, no
	 * scale-in of either */
	new = host(&w, g, 2, HS_LAUNCHING);
	for (enum hstate s = HS_LAUNCHING; s <= HS_INITIALIZING; s++) {
		new->state = s;
		decide(&w, T0 + 10 * SEC);
		assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
		assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
		assert_int_equal(count(&w, RC_DRAIN, NULL), 0);
		assert_int_equal(count(&w, RC_WAIT, "last_ready"), 1);
	}
	/* the replacement is ready: now the silent host goes, nothing else */
	new->state = HS_READY;
	new->ready_ms = new->heartbeat_ms = T0 + 20 * SEC;
	decide(&w, T0 + 21 * SEC);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_TERMINATE);
	assert_string_equal(w.a[0].cause, "replace");
	assert_string_equal(w.a[0].host_id, old->id);
	/* converged */
	old->state = HS_TERMINATED;
	decide(&w, T0 + 22 * SEC);
	assert_int_equal(w.na, 0);
}

/* If the silent host comes back while its replacement boots, the healthy
 * old one stays and the not-ready new one is the scale-in victim. */
static void
test_last_ready_comes_back(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "db", 1);
	struct rc_host *old, *new;

	(void)state;
	old = host(&w, g, 1, HS_UNHEALTHY);
	new = host(&w, g, 2, HS_BOOTING);
	new->created_ms = T0;
	old->state = HS_READY;
	old->heartbeat_ms = T0 + 5 * SEC;
	decide(&w, T0 + 6 * SEC);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_TERMINATE);
	assert_string_equal(w.a[0].cause, "scale_in");
	assert_string_equal(w.a[0].host_id, new->id);
}

/* A host that reported failure itself is replaced even if it was the only
 * one: failed is not silence. Scaling to 0 takes a silent host. */
static void
test_failed_by_report_replaced(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "db", 1);
	struct rc_host *f;

	(void)state;
	f = host(&w, g, 1, HS_FAILED);
	f->ready_ms = T0 - 5 * SEC;
	f->updated_ms = T0;
	decide(&w, T0 + 1 * SEC);
	assert_int_equal(count(&w, RC_LAUNCH, "scale_out"), 1);
	assert_int_equal(count(&w, RC_WAIT, NULL), 0);

	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "db", 0);
	f = host(&w, g, 1, HS_UNHEALTHY);
	decide(&w, T0);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 1);
	assert_string_equal(first(&w, RC_TERMINATE)->host_id, f->id);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
}

/* unhealthy_after 0: silence is never acted on. */
static void
test_unhealthy_after_zero_disables(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 3);

	(void)state;
	g->unhealthy_after_ms = 0;
	host(&w, g, 1, HS_READY)->heartbeat_ms = T0 - 3600 * SEC;
	host(&w, g, 2, HS_UNHEALTHY);
	host(&w, g, 3, HS_READY);
	decide(&w, T0);
	assert_int_equal(w.na, 0);
}

static void
test_failed_kept_then_cleaned(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 1);
	struct rc_host *f, *r;

	(void)state;
	f = host(&w, g, 1, HS_FAILED);
	r = host(&w, g, 2, HS_READY);
	f->updated_ms = T0;
	r->created_ms = T0 + 2 * SEC;
	r->ready_ms = T0 + 3 * SEC;
	r->heartbeat_ms = T0 + 600 * SEC;
	/* kept for inspection: not counted, not touched */
	decide(&w, T0 + 600 * SEC - 1);
	assert_int_equal(w.na, 0);
	decide(&w, T0 + 600 * SEC);
	assert_int_equal(w.na, 1);
	assert_int_equal(w.a[0].kind, RC_TERMINATE);
	assert_string_equal(w.a[0].cause, "cleanup");
	assert_string_equal(w.a[0].host_id, f->id);
}

static void
test_backoff_delays_launch(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 1);
	struct rc_host *f1, *f2, *r;
	const struct rc_action *wait;

	(void)state;
	f1 = host(&w, g, 1, HS_FAILED);
	f1->updated_ms = T0;
	/* one failure: 1 s */
	decide(&w, T0 + 999);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	wait = first(&w, RC_WAIT);
	assert_non_null(wait);
	assert_string_equal(wait->cause, "backoff");
	assert_string_equal(wait->reason, "backing off after failures for 1s");
	decide(&w, T0 + 1000);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);

	/* two: 2 s after the last */
	f2 = host(&w, g, 2, HS_FAILED);
	f2->updated_ms = T0 + 1500;
	decide(&w, T0 + 3499);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	decide(&w, T0 + 3500);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);

	/* many: capped */
	for (int i = 3; i <= 20; i++)
		host(&w, g, i, HS_FAILED)->updated_ms = T0 + 2000;
	decide(&w, T0 + 2000 + 300 * SEC - 1);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	decide(&w, T0 + 2000 + 300 * SEC);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);

	/* a host that became ready since ends the backoff: older failures
	 * no longer count (the group is desired 2 now, with one ready) */
	g->desired = 2;
	r = host(&w, g, 21, HS_READY);
	r->ready_ms = T0 + 3000;
	decide(&w, T0 + 3001);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);
	/* ... and a failure after it starts again at 1 s */
	f1->updated_ms = T0 + 4000;
	decide(&w, T0 + 4999);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 0);
	decide(&w, T0 + 5000);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);

	/* no base: no backoff */
	memset(&w, 0, sizeof(w));
	g = group(&w, "demo", "node", 1);
	g->backoff_base_ms = 0;
	host(&w, g, 1, HS_FAILED)->updated_ms = T0;
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);
}

static void
test_terminating_not_counted(void **state)
{
	struct world w = { 0 };
	struct rc_group *g = group(&w, "demo", "node", 2);

	(void)state;
	host(&w, g, 1, HS_READY);
	host(&w, g, 2, HS_TERMINATING);
	decide(&w, T0);
	assert_int_equal(count(&w, RC_LAUNCH, NULL), 1);
	assert_int_equal(count(&w, RC_TERMINATE, NULL), 0);
}

static void
test_max_actions(void **state)
{
	struct world w = { 0 };
	struct rc_action few[3];

	(void)state;
	group(&w, "demo", "node", 50);
	assert_int_equal(reconcile_decide(w.g, w.ng, w.h, w.nh, T0, 0, few, 3), 3);
	assert_int_equal(reconcile_decide(w.g, w.ng, w.h, w.nh, T0, 0, few, 0), 0);
}

static void
test_state_names(void **state)
{
	(void)state;
	for (int s = 0; s < HS__COUNT; s++)
		assert_int_equal(hstate_parse(hstate_name((enum hstate)s)), s);
	assert_string_equal(hstate_name(HS_READY), "ready");
	assert_int_equal(hstate_parse("nope"), HS__COUNT);
	assert_int_equal(hstate_parse(NULL), HS__COUNT);
	assert_string_equal(hstate_name(HS__COUNT), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_launch_up_to_desired),
		cmocka_unit_test(test_converged_does_nothing),
		cmocka_unit_test(test_groups_are_per_cluster),
		cmocka_unit_test(test_scale_in_newest_first),
		cmocka_unit_test(test_scale_in_oldest),
		cmocka_unit_test(test_scale_in_least_metric),
		cmocka_unit_test(test_drain_then_reclaim),
		cmocka_unit_test(test_scale_in_skips_protected),
		cmocka_unit_test(test_scale_in_prefers_not_ready),
		cmocka_unit_test(test_scale_in_behind_first),
		cmocka_unit_test(test_refresh_taken_out_leaves),
		cmocka_unit_test(test_after_waits_for_ready_group),
		cmocka_unit_test(test_provision_timeout_fails),
		cmocka_unit_test(test_heartbeat_lost_unhealthy),
		cmocka_unit_test(test_unhealthy_cap),
		cmocka_unit_test(test_grace_after_start),
		cmocka_unit_test(test_grace_after_pause),
		cmocka_unit_test(test_heard_since_gap),
		cmocka_unit_test(test_grace_provision_timeout),
		cmocka_unit_test(test_last_ready_replaced_after_new_ready),
		cmocka_unit_test(test_last_ready_comes_back),
		cmocka_unit_test(test_failed_by_report_replaced),
		cmocka_unit_test(test_unhealthy_after_zero_disables),
		cmocka_unit_test(test_failed_kept_then_cleaned),
		cmocka_unit_test(test_backoff_delays_launch),
		cmocka_unit_test(test_terminating_not_counted),
		cmocka_unit_test(test_max_actions),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests_name("decide", tests, NULL, NULL);
}
