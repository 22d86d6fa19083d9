/* lbsync.c - the act side of lb-sync (see lbsync.h): opens one driver
 * instance per LB driver (per account for cloud drivers), tells it which LBs
 * exist, reads the ready hosts of attached groups, asks lbsync_decide() what
 * to change and does it. Nothing here is the truth: the store says what
 * should be, the driver says what is, so a restarted server simply syncs
 * again and an HAProxy started empty is filled on the next pass. Hosts
 * being terminated leave their LBs one step per reconcile pass
 * (lbsync_drain_host, from the drain start stored with the host): nothing
 * here waits on the controller's thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lbsync.h"
#include "log.h"
#include "model/account.h"
#include "model/activity.h"
#include "model/group.h"
#include "model/host.h"
#include "model/kind.h"
#include "model/network.h"
#include "model/res.h"
#include "model/run.h"
#include "model/template.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define LBSYNC_MAX_DRIVERS 32
#define LBSYNC_MAX_ACTIONS 4096
#define LBSYNC_MIN_DRAIN_MS 200   /* drain: sessions being set up get counted */

struct drv {
	char key[140];            /* "<driver>" or "<driver>/<account>" */
	struct lb l;
	json_t *config;           /* the account's spec (owned), for cloud drivers */
};

/* Drivers are appended, never moved, and closed only by lbsync_stop: whoever
 * holds `use` for reading may keep a struct lb * (the sync pass, a drain, the
 * API); lbsync_stop takes it for writing. `lock` guards the table itself. */
static struct {
	pthread_rwlock_t use;
	pthread_mutex_t lock;
	struct drv d[LBSYNC_MAX_DRIVERS];
	int n;
	json_t *problems;         /* lb name -> last message logged, so it is logged once */
	bool synced;              /* a pass has opened the drivers of the store's LBs */
} g = { .use = PTHREAD_RWLOCK_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER };

/* What each LB looked like at the end of the last pass (lb name -> {"driver",
 * "engine", "items"}), for the API: a handler asks for a pass, waits a
 * bounded time for it to publish, and copies the view under views.lock; it
 * never calls a driver or takes the passes' locks. */
#define LBSYNC_VIEW_WAIT_MS 3000
static struct {
	pthread_mutex_t lock;
	pthread_cond_t published;
	json_t *lbs;
	uint64_t started;         /* passes started */
	uint64_t shown;           /* the pass (by started) whose views lbs holds */
	int64_t shown_ms;         /* wall ms it published them */
} views = { .lock = PTHREAD_MUTEX_INITIALIZER, .published = PTHREAD_COND_INITIALIZER };

/* --- decide --- */

static const struct lbs_lb *
find_lb(const struct lbs_lb *lbs, size_t nl, const char *name)
{
	for (size_t i = 0; i < nl; i++)
		if (strcmp(lbs[i].name, name) == 0)
			return &lbs[i];
	return NULL;
}

size_t
lbsync_decide(const struct lbs_lb *lbs, size_t nl, const struct lbs_want *want, size_t nw,
	      const struct lbs_have *have, size_t nh, int64_t now, struct lbs_action *out,
	      size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < nw && n < max; i++) {
		const struct lbs_want *w = &want[i];
		const struct lbs_have *h = NULL;
		if (find_lb(lbs, nl, w->lb) == NULL)
			continue;
		for (size_t k = 0; k < nh; k++)
			if (strcmp(have[k].lb, w->lb) == 0 && strcmp(have[k].member, w->member) == 0)
				h = &have[k];
		if (h && h->intent != LBI_DRAINING && strcmp(h->addr, w->addr) == 0 && h->port == w->port)
			continue;
		out[n] = (struct lbs_action){ .kind = LBS_ADD, .lb = w->lb, .member = w->member, .want = w };
		snprintf(out[n].reason, sizeof(out[n].reason), "%s",
			 h == NULL ? "ready host of an attached group"
			 : h->intent == LBI_DRAINING ? "draining host is wanted again"
			 : "address or port changed");
		n++;
	}
	for (size_t k = 0; k < nh && n < max; k++) {
		const struct lbs_have *h = &have[k];
		const struct lbs_lb *lb = find_lb(lbs, nl, h->lb);
		bool wanted = false;
		if (lb == NULL)
			continue;
		for (size_t i = 0; i < nw && !wanted; i++)
			wanted = strcmp(want[i].lb, h->lb) == 0 && strcmp(want[i].member, h->member) == 0;
		if (wanted)
			continue;
		if (h->intent != LBI_DRAINING) {
			out[n] = (struct lbs_action){ .kind = LBS_DRAIN, .lb = h->lb, .member = h->member };
			snprintf(out[n].reason, sizeof(out[n].reason), "no longer a ready host of an attached group");
			n++;
		} else if (h->scur == 0 || now - h->drain_since_ms >= lb->drain_timeout_ms) {
			out[n] = (struct lbs_action){ .kind = LBS_REMOVE, .lb = h->lb, .member = h->member };
			if (h->scur == 0)
				snprintf(out[n].reason, sizeof(out[n].reason), "drained");
			else if (h->scur < 0)
				snprintf(out[n].reason, sizeof(out[n].reason),
					 "drain timeout: sessions not known");
			else
				snprintf(out[n].reason, sizeof(out[n].reason),
					 "drain timeout: %lld sessions left", (long long)h->scur);
			n++;
		}
	}
	return n;
}

enum lbs_drain_step
lbsync_drain_decide(enum lb_intent intent, int64_t scur, int64_t since_ms, int64_t now_ms,
		    int64_t timeout_ms)
{
	int64_t took_ms = now_ms > since_ms ? now_ms - since_ms : 0;

	if (took_ms >= timeout_ms)
		return LBD_REMOVE;
	if (intent != LBI_DRAINING)
		return LBD_DRAIN;
	/* a session being set up may not be counted yet; an unknown count
	 * (scur < 0: the LB's answer did not parse) waits for the timeout */
	if (scur == 0 && took_ms >= LBSYNC_MIN_DRAIN_MS)
		return LBD_REMOVE;
	return LBD_WAIT;
}

/* --- drivers --- */

/* The driver instance serving LB resource spec `lbj` (opened on first use),
 * or NULL with err set. Called with g.lock held. */
static struct lb *
drv_for(struct server *s, const json_t *lbj, bool open_it, struct herr *err)
{
	const char *net = json_string_value(json_object_get(lbj, "network"));
	const char *acct, *pdrv;
	const struct lb_ops *ops;
	struct network_spec ns;
	struct account_spec as;
	struct res ra = { 0 };
	struct lb *found = NULL;
	char key[140];

	if (network_get(s->store, net ? net : "", &ns, err) < 0)
		return NULL;
	acct = ns.account;
	if (res_get(s->store, &kind_account, "", acct, &ra, err) < 0 ||
	    account_from_spec(acct, ra.spec, &as, err) < 0)
		goto out;
	pdrv = as.driver;
	if ((ops = lb_find_for_provider(pdrv)) == NULL) {
		herr_set(err, -ENOTSUP, "no load balancer driver for networks of provider '%s'",
			 pdrv);
		goto out;
	}
	if (ops->shared)
		snprintf(key, sizeof(key), "%s", ops->name);
	else
		snprintf(key, sizeof(key), "%s/%s", ops->name, acct);
	for (int i = 0; i < g.n && !found; i++)
		if (strcmp(g.d[i].key, key) == 0)
			found = &g.d[i].l;
	if (found || !open_it)
		goto out;
	if (g.n == LBSYNC_MAX_DRIVERS) {
		herr_set(err, HERR_TOOBIG, "too many load balancer drivers");
		goto out;
	}
	{
		struct drv *d = &g.d[g.n];
		memset(d, 0, sizeof(*d));
		snprintf(d->key, sizeof(d->key), "%s", key);
		snprintf(d->l.account, sizeof(d->l.account), "%s", ops->shared ? "" : acct);
		snprintf(d->l.instance, sizeof(d->l.instance), "%s", s->instance);
		snprintf(d->l.data_dir, sizeof(d->l.data_dir), "%s", s->data_dir);
		d->config = json_incref(ra.spec);
		d->l.config = d->config;
		if (lb_open(&d->l, ops, err) < 0) {
			json_decref(d->config);
			goto out;
		}
		log_info("lb driver %s opened", key);
		found = &d->l;
		g.n++;
	}
out:
	res_release(&ra);
	return found;
}

static void
problem(const char *lb, const char *msg)
{
	const char *last;

	pthread_mutex_lock(&g.lock);
	if (g.problems == NULL)
		g.problems = json_object();
	last = json_string_value(json_object_get(g.problems, lb));
	if (msg == NULL) {
		if (last)
			log_info("lb %s: ok again", lb);
		json_object_del(g.problems, lb);
	} else if (last == NULL || strcmp(last, msg) != 0) {
		log_warn("lb %s: %s", lb, msg);
		json_object_set_new(g.problems, lb, json_string(msg));
	}
	pthread_mutex_unlock(&g.lock);
}

/* --- one pass --- */

struct lbrow {
	struct lb_spec spec;
	struct lb *drv;
	char err[512];            /* its driver's apply failed: why */
};

/* A res_all() row's parsed spec, a reference of the caller's. */
static json_t *
spec_of(json_t *row)
{
	json_t *j = json_incref(json_object_get(row, "spec"));
	return j ? j : json_object();
}

/* An LB of the store whose driver could not be opened or whose ensure
 * failed this pass: unknown, not absent. */
struct unsure {
	char name[64];
	struct lb *drv;           /* NULL: its driver is not known */
};

/* Whether driver l may destroy its LB `name`: only when the store has no
 * such LB, or has it on another driver that ensured it this pass. An LB
 * whose ensure failed (a cloud answering 5100, a timeout) is kept: deleting
 * it would drop its members' traffic and, on a cloud, give it a new
 * address. */
static bool
may_destroy(const struct lb *l, const char *name, const struct lbrow *lbs, size_t n,
	    const struct unsure *un, size_t nu)
{
	for (size_t j = 0; j < n; j++)
		if (lbs[j].drv == l && strcmp(lbs[j].spec.name, name) == 0)
			return false;
	for (size_t j = 0; j < nu; j++)
		if ((un[j].drv == NULL || un[j].drv == l) && strcmp(un[j].name, name) == 0)
			return false;
	return true;
}

/* Makes every open driver hold exactly the LBs of the store. */
static size_t
sync_lbs(struct server *s, struct lbrow **out)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *row;
	struct lbrow *lbs;
	struct unsure *un;
	size_t i, n = 0, nu = 0;
	int nd;

	*out = NULL;
	if (res_all(s->store, &kind_lb, NULL, &rows, &err) < 0) {
		log_warn("lb-sync: cannot read the store: %s", err.msg);
		return 0;
	}
	lbs = xcalloc(json_array_size(rows) + 1, sizeof(*lbs));
	un = xcalloc(json_array_size(rows) + 1, sizeof(*un));
	json_array_foreach(rows, i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		json_t *spec = spec_of(row);
		herr_clear(&err);
		lbs[n].drv = NULL;
		pthread_mutex_lock(&g.lock);
		if (lb_spec_from_json(name, spec, &lbs[n].spec, &err) == 0)
			lbs[n].drv = drv_for(s, spec, true, &err);
		pthread_mutex_unlock(&g.lock);
		if (lbs[n].drv == NULL || lb_ensure(lbs[n].drv, &lbs[n].spec, &err) < 0) {
			problem(name, err.msg);
			snprintf(un[nu].name, sizeof(un[nu].name), "%s", name ? name : "");
			un[nu++].drv = lbs[n].drv;
		} else {
			n++;
		}
		json_decref(spec);
	}
	pthread_mutex_lock(&g.lock);
	nd = g.n;
	if (g.problems) {   /* deleted LBs have no problems */
		const char *key;
		void *tmp;
		json_t *v;
		json_object_foreach_safe(g.problems, tmp, key, v) {
			bool found = false;
			json_array_foreach(rows, i, row)
				found |= strcmp(json_string_value(json_object_get(row, "name")), key) == 0;
			if (!found)
				json_object_del(g.problems, key);
		}
	}
	pthread_mutex_unlock(&g.lock);
	json_decref(rows);
	/* LBs a driver holds that the store no longer has */
	for (int d = 0; d < nd; d++) {
		struct lb *l = &g.d[d].l;
		char(*names)[64] = NULL;
		size_t nn = 0;
		herr_clear(&err);
		if (lb_list(l, &names, &nn, &err) == 0) {
			for (size_t k = 0; k < nn; k++)
				if (may_destroy(l, names[k], lbs, n, un, nu))
					lb_destroy(l, names[k], &err);
		}
		free(names);
		herr_clear(&err);
		if (lb_apply(l, &err) < 0)
			for (size_t j = 0; j < n; j++)
				if (lbs[j].drv == l)
					snprintf(lbs[j].err, sizeof(lbs[j].err), "%s", err.msg);
	}
	free(un);
	pthread_mutex_lock(&g.lock);
	g.synced = true;
	pthread_mutex_unlock(&g.lock);
	*out = lbs;
	return n;
}

/* Ready hosts of groups whose template names one of lbs. */
static json_t *
ready_members(struct server *s, const struct lbrow *lbs, size_t nl)
{
	struct herr err = HERR_INIT;
	struct host_query ready = { .state = HS_READY };
	json_t *groups = NULL, *tmpls = NULL, *row;
	json_t *t2lb = json_object(), *g2lb = json_object(), *out = json_array();
	struct template_spec *t = xcalloc(1, sizeof(*t));   /* large: not on the stack */
	struct group *gr = xcalloc(1, sizeof(*gr));
	struct host *hosts = NULL;
	size_t i, nh = 0;

	if (res_all(s->store, &kind_template, NULL, &tmpls, &err) < 0 ||
	    res_all(s->store, &kind_group, NULL, &groups, &err) < 0 ||
	    host_list(s->store, &ready, &hosts, &nh, &err) < 0) {
		log_warn("lb-sync: cannot read the store: %s", err.msg);
		goto out;
	}
	/* a spec that does not load (written around the API) balances nothing */
	json_array_foreach(tmpls, i, row) {
		json_t *spec = spec_of(row);
		herr_clear(&err);
		if (template_from_spec(json_string_value(json_object_get(row, "name")), spec, t,
				       &err) == 0 && t->load_balancer[0])
			json_object_set_new(t2lb, t->name, json_string(t->load_balancer));
		json_decref(spec);
	}
	json_array_foreach(groups, i, row) {
		json_t *spec = spec_of(row), *lb = NULL;
		char key[300];
		herr_clear(&err);
		if (group_from_spec(json_string_value(json_object_get(row, "scope")),
				    json_string_value(json_object_get(row, "name")), spec, gr, &err) == 0 &&
		    gr->template_[0])
			lb = json_object_get(t2lb, gr->template_);
		if (lb) {
			snprintf(key, sizeof(key), "%s/%s", gr->cluster, gr->name);
			json_object_set(g2lb, key, lb);
		}
		json_decref(spec);
	}
	for (i = 0; i < nh; i++) {
		const struct host *h = &hosts[i];
		char key[200];
		const char *lb;
		if (h->private_ip[0] == '\0')
			continue;   /* no address: nothing to balance to */
		snprintf(key, sizeof(key), "%s/%s", h->cluster, h->grp);
		lb = json_string_value(json_object_get(g2lb, key));
		for (size_t k = 0; lb && k < nl; k++) {
			if (strcmp(lbs[k].spec.name, lb) == 0)
				json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}",
					"id", h->id, "name", h->name, "cluster", h->cluster, "grp", h->grp,
					"private_ip", h->private_ip, "lb", lb, "lbi", (json_int_t)k));
		}
	}
out:
	json_decref(groups);
	json_decref(tmpls);
	free(t);
	free(gr);
	free(hosts);
	json_decref(t2lb);
	json_decref(g2lb);
	return out;
}

static void
record(struct server *s, const char *host_id, const char *kind, const char *what, const char *lb,
       const char *why)
{
	struct herr err = HERR_INIT;
	struct host h;
	bool known = host_get(s->store, host_id, &h, &err) == 0;
	const char *name = known ? h.name : host_id;

	herr_clear(&err);
	activity_add(s->store, known ? h.cluster : NULL, known ? h.grp : NULL, name, kind, "lb",
		     NULL, &err, "%s %s load balancer '%s': %s", name, what, lb, why);
}

/* One LB's view as its driver reports it now: the engine's health and the
 * backends (b[0..n), or, ok false, why they could not be read). Owned. */
static json_t *
view_of(struct lb *l, const char *lb, const struct lb_backend *b, size_t n, bool read_ok,
	const char *problem_msg)
{
	struct herr err = HERR_INIT;
	struct lb_health hl;
	json_t *engine = json_object(), *items = json_array();
	char ts[40], address[64] = "";

	json_object_set_new(engine, "problem", problem_msg && *problem_msg
			    ? json_string(problem_msg) : json_null());
	json_object_set_new(engine, "driver", json_string(l->ops->name));
	if (lb_health(l, &hl, &err) == 0) {
		json_object_set_new(engine, "ok", json_boolean(hl.ok));
		json_object_set_new(engine, "pid", hl.pid ? json_integer(hl.pid) : json_null());
		json_object_set_new(engine, "restarts", json_integer(hl.restarts));
		json_object_set_new(engine, "up_since", hl.up_since_ms
				    ? json_string(fmt_time(hl.up_since_ms, ts, sizeof(ts))) : json_null());
		json_object_set_new(engine, "message", json_string(hl.msg));
	}
	/* the address clients use (cloud LBs: the EIP or the private one) */
	herr_clear(&err);
	if (lb_address(l, lb, address, sizeof(address), &err) == 0 && address[0])
		json_object_set_new(engine, "address", json_string(address));
	for (size_t i = 0; read_ok && i < n; i++) {
		char addr[96];
		snprintf(addr, sizeof(addr), "%s:%d", b[i].m.addr, b[i].m.port);
		json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s}",
						       "host_id", b[i].m.name, "address", addr,
						       "status", b[i].status,
						       "state", lb_bstate_name(b[i].state),
						       "check_status", b[i].check_status,
						       "scur", (json_int_t)b[i].scur,
						       "intent", lb_intent_name(b[i].intent)));
	}
	return json_pack("{s:s,s:o,s:o}", "driver", l->ops->name, "engine", engine, "items", items);
}

/* Publishes the views of this pass: the synced LBs (their backends re-read
 * when the pass changed them), and for the LBs left out, their problem. */
static void
views_publish(uint64_t pass, const struct lbrow *lbs, size_t nl, struct lb_backend **bk,
	      const size_t *nbk, bool changed)
{
	json_t *next = json_object(), *v;
	const char *key;

	for (size_t i = 0; i < nl; i++) {
		struct herr err = HERR_INIT;
		struct lb_backend *b = bk ? bk[i] : NULL, *fresh = NULL;
		size_t n = nbk ? nbk[i] : 0;
		bool ok = true;
		if (changed || b == NULL) {   /* changed, never read, or empty: read now */
			ok = lb_list_backends(lbs[i].drv, lbs[i].spec.name, &fresh, &n, &err) == 0;
			b = fresh;
		}
		json_object_set_new(next, lbs[i].spec.name,
				    view_of(lbs[i].drv, lbs[i].spec.name, b, n, ok,
					    ok ? lbs[i].err : err.msg));
		free(fresh);
	}
	pthread_mutex_lock(&g.lock);
	json_object_foreach(g.problems, key, v) {
		if (json_object_get(next, key) == NULL)
			json_object_set_new(next, key,
					    json_pack("{s:n,s:{s:b,s:O,s:O},s:[]}", "driver", "engine",
						      "ok", 0, "problem", v, "message", v, "items"));
	}
	pthread_mutex_unlock(&g.lock);
	pthread_mutex_lock(&views.lock);
	json_decref(views.lbs);
	views.lbs = next;
	views.shown = pass;
	views.shown_ms = now_ms();
	pthread_cond_broadcast(&views.published);
	pthread_mutex_unlock(&views.lock);
}

void
lbsync_once(struct server *s)
{
	struct lbrow *lbs = NULL;
	struct lbs_lb *dl = NULL;
	struct lbs_want *want = NULL;
	struct lbs_have *have = NULL;
	struct lb_backend **bk = NULL;
	struct lbs_action *acts = NULL;
	struct host_query terminating = { .state = HS_TERMINATING };
	struct host *leaving = NULL;
	json_t *mem = NULL, *row, *rolling = NULL;
	size_t nl, nw, nh = 0, nleaving = 0, na = 0, i, *nbk = NULL;
	struct herr err = HERR_INIT;
	uint64_t pass;

	pthread_mutex_lock(&views.lock);
	pass = ++views.started;
	pthread_mutex_unlock(&views.lock);
	pthread_rwlock_rdlock(&g.use);
	nl = sync_lbs(s, &lbs);
	if (nl == 0)
		goto publish;
	/* hosts being terminated leave their LBs through lbsync_drain_host,
	 * which records the drain with the host: not touched here */
	if (host_list(s->store, &terminating, &leaving, &nleaving, &err) < 0) {
		log_warn("lb-sync: cannot read the store: %s", err.msg);
		goto out;
	}
	/* hosts a rolling script run keeps out (ctl/rolling.c) are not
	 * wanted: they drain and leave like any member no longer wanted */
	if (run_rolling_out(s->store, &rolling, &err) < 0) {
		log_warn("lb-sync: cannot read the store: %s", err.msg);
		goto out;
	}
	mem = ready_members(s, lbs, nl);
	want = xcalloc(json_array_size(mem) + 1, sizeof(*want));
	nw = 0;
	json_array_foreach(mem, i, row) {
		size_t k = (size_t)json_integer_value(json_object_get(row, "lbi"));
		const char *id = json_string_value(json_object_get(row, "id"));
		if (json_object_get(rolling, id))
			continue;
		want[nw].lb = lbs[k].spec.name;
		want[nw].member = id;
		want[nw].addr = json_string_value(json_object_get(row, "private_ip"));
		want[nw].port = lbs[k].spec.backend_port;
		nw++;
	}
	dl = xcalloc(nl, sizeof(*dl));
	bk = xcalloc(nl, sizeof(*bk));
	nbk = xcalloc(nl, sizeof(*nbk));
	for (i = 0; i < nl; i++) {
		herr_clear(&err);
		if (lb_list_backends(lbs[i].drv, lbs[i].spec.name, &bk[i], &nbk[i], &err) < 0) {
			problem(lbs[i].spec.name, err.msg);
			continue;
		}
		problem(lbs[i].spec.name, lbs[i].err[0] ? lbs[i].err : NULL);
		dl[i].name = lbs[i].spec.name;
		dl[i].drain_timeout_ms = lbs[i].spec.drain_timeout_ms;
		nh += nbk[i];
	}
	have = xcalloc(nh + 1, sizeof(*have));
	nh = 0;
	for (i = 0; i < nl; i++) {
		for (size_t k = 0; k < nbk[i]; k++) {
			bool owned = false;
			for (size_t j = 0; j < nleaving; j++)
				owned |= strcmp(leaving[j].id, bk[i][k].m.name) == 0;
			if (owned)
				continue;
			have[nh].lb = lbs[i].spec.name;
			have[nh].member = bk[i][k].m.name;
			have[nh].addr = bk[i][k].m.addr;
			have[nh].port = bk[i][k].m.port;
			have[nh].intent = bk[i][k].intent;
			have[nh].scur = bk[i][k].scur;
			have[nh].drain_since_ms = bk[i][k].drain_since_ms;
			nh++;
		}
	}
	/* LBs whose members could not be read have no name: decide skips them */
	for (i = 0; i < nl; i++)
		if (dl[i].name == NULL)
			dl[i].name = "";
	acts = xcalloc(LBSYNC_MAX_ACTIONS, sizeof(*acts));
	na = lbsync_decide(dl, nl, want, nw, have, nh, mono_ms(), acts, LBSYNC_MAX_ACTIONS);
	for (i = 0; i < na && !s->stopping; i++) {
		struct lbs_action *a = &acts[i];
		struct lb *l = NULL;
		for (size_t k = 0; k < nl; k++)
			if (strcmp(lbs[k].spec.name, a->lb) == 0)
				l = lbs[k].drv;
		herr_clear(&err);
		switch (a->kind) {
		case LBS_ADD: {
			struct lb_member m = { 0 };
			snprintf(m.name, sizeof(m.name), "%s", a->member);
			snprintf(m.addr, sizeof(m.addr), "%s", a->want->addr);
			m.port = a->want->port;
			if (lb_add_backend(l, a->lb, &m, &err) == 0)
				record(s, a->member, "lb_attach", "added to",
				       a->lb, a->reason);
			break;
		}
		case LBS_DRAIN:
			if (json_object_get(rolling, a->member))
				snprintf(a->reason, sizeof(a->reason), "taken out by rolling run %lld",
					 (long long)json_integer_value(json_object_get(rolling, a->member)));
			if (lb_drain_backend(l, a->lb, a->member, &err) == 0)
				record(s, a->member, "lb_drain", "draining from",
				       a->lb, a->reason);
			break;
		case LBS_REMOVE:
			if (lb_remove_backend(l, a->lb, a->member, &err) == 0)
				record(s, a->member, "lb_detach", "removed from",
				       a->lb, a->reason);
			break;
		}
	}
	if (na > 0) {
		int nd;
		pthread_mutex_lock(&g.lock);
		nd = g.n;
		pthread_mutex_unlock(&g.lock);
		for (int d = 0; d < nd; d++) {
			herr_clear(&err);
			lb_apply(&g.d[d].l, &err);
		}
	}
publish:
	views_publish(pass, lbs, nl, bk, nbk, na > 0);
out:
	for (i = 0; bk && i < nl; i++)
		free(bk[i]);
	free(bk);
	free(nbk);
	free(dl);
	free(want);
	free(have);
	free(acts);
	free(lbs);
	json_decref(mem);
	json_decref(rolling);
	free(leaving);
	pthread_rwlock_unlock(&g.use);
}

/* --- drain before terminate --- */

static const struct lb_backend *
find_member(const struct lb_backend *b, size_t n, const char *member)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(b[i].m.name, member) == 0)
			return &b[i];
	return NULL;
}

static int64_t
drain_timeout_of(struct server *s, const char *lb)
{
	struct herr err = HERR_INIT;
	struct lb_spec spec;
	struct res r;
	int64_t ms = LB_DEFAULT_DRAIN_MS;

	if (res_get(s->store, &kind_lb, "", lb, &r, &err) == 0) {
		if (lb_spec_from_json(lb, r.spec, &spec, &err) == 0)
			ms = spec.drain_timeout_ms;
		res_release(&r);
	}
	return ms;
}

int
lbsync_drain_host(struct server *s, const char *host_id, int64_t since_ms, int64_t now_ms)
{
	struct lb *ls[LBSYNC_MAX_DRIVERS];
	int64_t took_ms = now_ms > since_ms ? now_ms - since_ms : 0;
	int nd, left = 0;
	bool synced;

	if (host_id == NULL)
		return 0;
	pthread_rwlock_rdlock(&g.use);
	pthread_mutex_lock(&g.lock);
	synced = g.synced;
	for (nd = 0; nd < g.n; nd++)
		ls[nd] = &g.d[nd].l;
	pthread_mutex_unlock(&g.lock);
	if (!synced) {
		/* right after a start no driver is open: the LBs holding the
		 * host are unknown, not absent */
		pthread_rwlock_unlock(&g.use);
		return 1;
	}
	for (int d = 0; d < nd; d++) {
		struct herr err = HERR_INIT;
		char(*names)[64] = NULL;
		size_t nn = 0;

		if (lb_list(ls[d], &names, &nn, &err) < 0) {
			log_warn("lb driver %s: cannot list load balancers: %s", ls[d]->ops->name, err.msg);
			left += took_ms < LB_MAX_DRAIN_MS;
			continue;
		}
		for (size_t k = 0; k < nn; k++) {
			const char *lb = names[k];
			int64_t limit_ms;
			struct lb_backend *b = NULL;
			const struct lb_backend *x;
			size_t n = 0;
			char why[200];

			herr_clear(&err);
			if (lb_list_backends(ls[d], lb, &b, &n, &err) < 0) {
				/* members unknown: the host may still be one */
				left += took_ms < drain_timeout_of(s, lb);
				free(b);
				continue;
			}
			if ((x = find_member(b, n, host_id)) == NULL) {
				free(b);
				continue;
			}
			herr_clear(&err);
			limit_ms = drain_timeout_of(s, lb);
			switch (lbsync_drain_decide(x->intent, x->scur, since_ms, now_ms, limit_ms)) {
			case LBD_DRAIN:
				left++;
				if (lb_drain_backend(ls[d], lb, host_id, &err) < 0 || lb_apply(ls[d], &err) < 0) {
					log_warn("lb %s: cannot drain %s: %s (will retry)", lb, host_id, err.msg);
					break;
				}
				log_info("lb %s: draining %s before termination", lb, host_id);
				record(s, host_id, "lb_drain", "draining from", lb, "to be terminated");
				break;
			case LBD_WAIT:
				left++;
				break;
			case LBD_REMOVE:
				if (x->scur > 0)
					snprintf(why, sizeof(why), "drain timeout after %lld ms, %lld sessions closed",
						 (long long)took_ms, (long long)x->scur);
				else
					snprintf(why, sizeof(why), "drained in %lld ms", (long long)took_ms);
				if (lb_remove_backend(ls[d], lb, host_id, &err) < 0 || lb_apply(ls[d], &err) < 0) {
					log_warn("lb %s: cannot remove %s: %s (will retry)", lb, host_id, err.msg);
					left++;
					break;
				}
				log_info("lb %s: %s %s before termination", lb, host_id, why);
				record(s, host_id, "lb_detach", "drained before termination, removed from", lb, why);
				break;
			}
			free(b);
		}
		free(names);
	}
	pthread_rwlock_unlock(&g.use);
	return left;
}

/* --- API --- */

int
lbsync_members(struct server *s, const char *name, json_t **out, struct herr *err)
{
	struct res r;
	json_t *v, *items, *it;
	struct timespec until;
	uint64_t want;
	int64_t shown_ms;
	char ts[40];
	size_t i;

	*out = NULL;
	if (res_get(s->store, &kind_lb, "", name, &r, err) < 0)
		return err->code;
	res_release(&r);
	/* a view from a pass that starts after this request, or the last one
	 * if no pass publishes within LBSYNC_VIEW_WAIT_MS (a slow pass) */
	pthread_mutex_lock(&views.lock);
	want = views.started + 1;
	pthread_mutex_unlock(&views.lock);
	server_kick(s);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LBSYNC_VIEW_WAIT_MS / 1000;
	pthread_mutex_lock(&views.lock);
	while (views.shown < want &&
	       pthread_cond_timedwait(&views.published, &views.lock, &until) == 0)
		;
	v = json_deep_copy(json_object_get(views.lbs, name));
	shown_ms = views.shown_ms;
	pthread_mutex_unlock(&views.lock);
	if (v == NULL)
		v = json_pack("{s:n,s:{s:b,s:n,s:s},s:[]}", "driver", "engine", "ok", 0, "problem",
			      "message", "load balancer driver not started yet", "items");
	items = json_object_get(v, "items");
	json_array_foreach(items, i, it) {
		struct herr e2 = HERR_INIT;
		struct host h;
		bool known = host_get(s->store, json_string_value(json_object_get(it, "host_id")),
				      &h, &e2) == 0;
		json_object_set_new(it, "host", known ? json_string(h.name) : json_null());
		json_object_set_new(it, "cluster", known ? json_string(h.cluster) : json_null());
		json_object_set_new(it, "group", known ? json_string(h.grp) : json_null());
		json_object_set_new(it, "host_state",
				    known ? json_string(hstate_name(h.state)) : json_null());
	}
	json_object_set_new(v, "lb", json_string(name));
	json_object_set_new(v, "as_of", shown_ms ? json_string(fmt_time(shown_ms, ts, sizeof(ts)))
						 : json_null());
	*out = v;
	return 0;
}

/* item's string field key, "" when absent */
static const char *
item_str(const json_t *item, const char *key)
{
	const char *v = json_string_value(json_object_get(item, key));
	return v ? v : "";
}

int
lbsync_host_members(const char *host_id, int64_t *as_of_ms)
{
	const char *name;
	json_t *v, *it;
	size_t i;
	int n = -1;

	pthread_mutex_lock(&views.lock);
	*as_of_ms = views.shown_ms;
	if (views.lbs && views.shown_ms > 0) {
		n = 0;
		json_object_foreach(views.lbs, name, v) {
			json_array_foreach(json_object_get(v, "items"), i, it)
				n += strcmp(item_str(it, "host_id"), host_id) == 0;
		}
	}
	pthread_mutex_unlock(&views.lock);
	return n;
}

bool
lbsync_host_up(const char *lb, const char *host_id)
{
	json_t *it;
	size_t i;
	bool up = false;

	pthread_mutex_lock(&views.lock);
	json_array_foreach(json_object_get(json_object_get(views.lbs, lb), "items"), i, it) {
		if (strcmp(item_str(it, "host_id"), host_id) == 0)
			up = strcmp(item_str(it, "state"), "up") == 0 &&
			     strcmp(item_str(it, "intent"), "active") == 0;
	}
	pthread_mutex_unlock(&views.lock);
	return up;
}

json_t *
lbsync_views(void)
{
	json_t *v;

	pthread_mutex_lock(&views.lock);
	v = views.lbs ? json_deep_copy(views.lbs) : json_object();
	pthread_mutex_unlock(&views.lock);
	return v;
}

void
lbsync_stop(struct server *s)
{
	pthread_mutex_lock(&views.lock);
	json_decref(views.lbs);
	views.lbs = NULL;
	pthread_mutex_unlock(&views.lock);
	pthread_rwlock_wrlock(&g.use);
	pthread_mutex_lock(&g.lock);
	for (int i = 0; i < g.n; i++) {
		lb_close(&g.d[i].l);
		json_decref(g.d[i].config);
	}
	g.n = 0;
	g.synced = false;
	json_decref(g.problems);
	g.problems = NULL;
	pthread_mutex_unlock(&g.lock);
	pthread_rwlock_unlock(&g.use);
}

int
lbsync_teardown(struct server *s, struct herr *err)
{
	const struct lb_ops *ops;

	for (size_t i = 0; (ops = lb_driver_at(i)) != NULL; i++) {
		struct lb l;
		if (!ops->shared)
			continue;
		memset(&l, 0, sizeof(l));
		l.ops = ops;
		snprintf(l.instance, sizeof(l.instance), "%s", s->instance);
		snprintf(l.data_dir, sizeof(l.data_dir), "%s", s->data_dir);
		lb_teardown(&l, err);
	}
	return 0;
}
