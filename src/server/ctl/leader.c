/* ctl/leader.c - the leader: a thread that takes and renews the controller
 * lease (model/lease.h) as lease_decide() says, records this server in the
 * servers table, and answers every controller pass whether it may act
 * (leader_pass: a live lease by the local monotonic deadline, and the
 * pass's store fence set to its epoch). See docs/ha.md. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl/lease.h"
#include "lb/lb.h"
#include "log.h"
#include "main.h"
#include "model/lease.h"
#include "prov/prov.h"
#include "server.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define SERVERS_KEEP_MS (3600LL * 1000)   /* a server not seen for an hour is forgotten */
/* On a single-process store nobody else can take the lease: it is taken
 * once, until this far ahead, and kept in memory, so a lone server writes
 * (and fdatasyncs) nothing in steady state, as before the lease existed. */
#define LEASE_SOLE_MS (100LL * 365 * 86400 * 1000)

struct leader {
	struct server *s;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;      /* guards me, id and logged_* */
	pthread_cond_t wake;       /* leader_stop */
	char id[LEASE_HOLDER_MAX];
	struct lease_self me;
	int64_t started_ms;        /* wall ms of this process's start */
	int64_t pruned_ms;         /* last servers_prune (store clock) */
	bool warned;               /* a store error said once */
};

/* The process's leader, for the gates (one server per process). */
static struct leader *the_leader;
static int64_t the_ttl_ms;

static void
step_down(struct leader *l, const char *why)
{
	if (l->me.epoch > 0)
		log_warn("controller lease: stepping down at epoch %lld: %s",
			 (long long)l->me.epoch, why);
	l->me.epoch = 0;
}

/* One look at the lease: take, renew or wait, as lease_decide says. */
static void
leader_tick(struct leader *l, bool first)
{
	struct server *s = l->s;
	struct herr err = HERR_INIT;
	struct lease_row row;
	struct lease_self me;
	int64_t mono = mono_ms(), db_now, epoch = 0;
	enum lease_act act;
	bool force, sole;

	db_now = store_now_ms(s->store, &err);
	if (err.code == 0)
		lease_read(s->store, LEASE_CONTROLLER, &row, &err);
	if (err.code < 0) {
		if (!l->warned)
			log_warn("controller lease: cannot read it: %s", err.msg);
		l->warned = true;
		return;   /* a leader stops acting at its local deadline */
	}
	pthread_mutex_lock(&l->lock);
	me = l->me;
	pthread_mutex_unlock(&l->lock);
	sole = s->store->ops->single_process;
	force = first && sole;
	act = lease_decide(&row, &me, db_now, mono, s->lease_ttl_ms, force);
	herr_clear(&err);
	if (act == LEASE_RENEW && sole) {
		/* nobody else can have it: renewed in memory only */
		pthread_mutex_lock(&l->lock);
		if (l->me.epoch == me.epoch)
			l->me.renewed_mono_ms = mono;
		pthread_mutex_unlock(&l->lock);
		return;
	}
	switch (act) {
	case LEASE_ACQUIRE:
		force = force || (row.exists && strcmp(row.holder, l->id) == 0);
		if (lease_acquire(s->store, LEASE_CONTROLLER, l->id, db_now,
				  sole ? LEASE_SOLE_MS : s->lease_ttl_ms, force, &epoch, &err) < 0) {
			if (err.code != HERR_CONFLICT && !l->warned)
				log_warn("controller lease: cannot take it: %s", err.msg);
			l->warned = err.code != HERR_CONFLICT;
			break;
		}
		pthread_mutex_lock(&l->lock);
		l->me.epoch = epoch;
		l->me.renewed_mono_ms = mono;
		pthread_mutex_unlock(&l->lock);
		l->warned = false;
		log_info("controller lease: leading at epoch %lld (server %s)", (long long)epoch,
			 l->id);
		server_kick(s);   /* the controllers act from the stored state */
		break;
	case LEASE_RENEW:
		if (lease_renew(s->store, LEASE_CONTROLLER, l->id, me.epoch, db_now,
				s->lease_ttl_ms, &err) < 0) {
			pthread_mutex_lock(&l->lock);
			if (err.code == HERR_FENCED)
				step_down(l, err.msg);
			pthread_mutex_unlock(&l->lock);
			if (err.code != HERR_FENCED && !l->warned)
				log_warn("controller lease: cannot renew it: %s", err.msg);
			l->warned = err.code != HERR_FENCED;
			break;
		}
		pthread_mutex_lock(&l->lock);
		if (l->me.epoch == me.epoch)
			l->me.renewed_mono_ms = mono;
		pthread_mutex_unlock(&l->lock);
		l->warned = false;
		break;
	case LEASE_LOST:
		pthread_mutex_lock(&l->lock);
		step_down(l, "another server holds the lease");
		pthread_mutex_unlock(&l->lock);
		break;
	case LEASE_KEEP:
	case LEASE_WAIT:
		break;
	}
	herr_clear(&err);
	if (sole && !first)
		return;   /* recorded at start; the API says a lone server is alive */
	if (server_seen(s->store, l->id, s->listen, HERD_VERSION, l->started_ms, db_now, &err) < 0)
		log_debug("servers: cannot record this server: %s", err.msg);
	if (db_now - l->pruned_ms >= 60 * 1000) {
		herr_clear(&err);
		servers_prune(s->store, db_now - SERVERS_KEEP_MS, &err);
		l->pruned_ms = db_now;
	}
}

static void *
leader_main(void *arg)
{
	struct leader *l = arg;
	struct server *s = l->s;

	pthread_mutex_lock(&l->lock);
	while (!s->stopping) {
		struct timespec ts;
		int64_t ns;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ns = (int64_t)ts.tv_nsec + s->lease_ttl_ms / 3 * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&l->wake, &l->lock, &ts);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&l->lock);
		leader_tick(l, false);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

bool
leader_may_call(void)
{
	struct leader *l = __atomic_load_n(&the_leader, __ATOMIC_ACQUIRE);
	bool live;

	if (l == NULL)
		return false;
	if (store_fence_tripped(l->s->store))
		return false;
	pthread_mutex_lock(&l->lock);
	live = lease_live(&l->me, mono_ms(), the_ttl_ms);
	pthread_mutex_unlock(&l->lock);
	return live;
}

bool
leader_pass(struct server *s, int64_t *epoch)
{
	struct leader *l = s->leader;
	int64_t e = 0;

	if (l == NULL) {
		/* no lease in use (teardown, a test driving a controller) */
		if (epoch)
			*epoch = 1;
		return true;
	}
	pthread_mutex_lock(&l->lock);
	if (store_fence_tripped(s->store))
		/* a write of this thread was fenced: another server leads */
		step_down(l, "a controller write was fenced: another server took the lease");
	if (lease_live(&l->me, mono_ms(), s->lease_ttl_ms))
		e = l->me.epoch;
	pthread_mutex_unlock(&l->lock);
	lease_fence(s->store, LEASE_CONTROLLER, l->id, e);   /* e 0: cleared */
	if (epoch)
		*epoch = e;
	return e > 0;
}

const char *
leader_server_id(struct server *s)
{
	struct leader *l = s->leader;

	return l ? l->id : "";
}

int
leader_address(struct server *s, char *addr, size_t n, bool *self, struct herr *err)
{
	struct lease_row row;
	json_t *servers = NULL, *sv;
	int64_t db_now = store_now_ms(s->store, err);
	size_t i;
	int rc = HERR_NOTFOUND;

	*self = false;
	if (err->code < 0 || lease_read(s->store, LEASE_CONTROLLER, &row, err) < 0)
		return err->code;
	if (!row.exists || row.expires_ms <= db_now)
		return herr_set(err, HERR_NOTFOUND, "no server holds the controller lease now");
	if (servers_list(s->store, &servers, err) < 0)
		return err->code;
	json_array_foreach(servers, i, sv) {
		const char *id = json_string_value(json_object_get(sv, "id"));
		const char *a = json_string_value(json_object_get(sv, "address"));

		if (id && a && strcmp(id, row.holder) == 0) {
			snprintf(addr, n, "%s", a);
			*self = strcmp(id, leader_server_id(s)) == 0;
			rc = 0;
			break;
		}
	}
	json_decref(servers);
	if (rc < 0)
		return herr_set(err, HERR_NOTFOUND, "the address of the leader '%s' is not known",
				row.holder);
	return 0;
}

void
leader_self(struct server *s, char *id, size_t n, int64_t *epoch, bool *live)
{
	struct leader *l = s->leader;

	*epoch = 0;
	*live = false;
	snprintf(id, n, "%s", l ? l->id : "");
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	*epoch = l->me.epoch;
	*live = lease_live(&l->me, mono_ms(), s->lease_ttl_ms);
	pthread_mutex_unlock(&l->lock);
}

int
leader_start(struct server *s, struct herr *err)
{
	struct leader *l = xcalloc(1, sizeof(*l));

	l->s = s;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &ca);
	pthread_condattr_destroy(&ca);
	token_random(l->id, sizeof(l->id), NULL, 8);   /* a new id per process start */
	l->me.id = l->id;
	l->started_ms = now_ms();
	if (s->lease_ttl_ms <= 0)
		s->lease_ttl_ms = LEASE_TTL_DEFAULT_MS;
	the_ttl_ms = s->lease_ttl_ms;
	s->leader = l;
	__atomic_store_n(&the_leader, l, __ATOMIC_RELEASE);
	prov_gate_set(leader_may_call);
	lb_gate_set(leader_may_call);
	leader_tick(l, true);   /* a single server leads from its first pass */
	if (pthread_create(&l->thread, NULL, leader_main, l) != 0)
		return herr_set(err, -errno, "cannot start the lease thread");
	l->started = true;
	return 0;
}

void
leader_stop(struct server *s)
{
	struct leader *l = s->leader;
	struct herr err = HERR_INIT;
	int64_t epoch;

	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->wake);
	pthread_mutex_unlock(&l->lock);
	if (l->started)
		pthread_join(l->thread, NULL);
	pthread_mutex_lock(&l->lock);
	epoch = l->me.epoch;
	l->me.epoch = 0;   /* the gates stay: a launch worker left running acts no more */
	pthread_mutex_unlock(&l->lock);
	if (epoch > 0 && lease_release(s->store, LEASE_CONTROLLER, l->id, epoch, &err) < 0)
		log_warn("controller lease: cannot let it go: %s", err.msg);
	/* such a worker may still read the leader: it stays allocated until exit */
}
