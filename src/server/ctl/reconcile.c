/* reconcile.c - the act side of the reconcile controller: one thread that
 * wakes on every change (or each second), reads groups and hosts from the
 * store, asks decide.c what to do and does it. A host row is written (state
 * `launching`, with a client token) before the provider is called; after a
 * crash such rows are resolved by listing the provider, never by launching
 * again. Provider resources carry the host id, so orphans are found. A
 * host's silence counts only from when herd could hear (its start, or the
 * end of a pause between passes): see reconcile_heard_since().
 *
 * Launches: the intent (host row `launching`, its activity, its address) is
 * written here, on the controller thread, as before; the provider call and
 * recording its answer run on the launch pool (launcher.c, --launch-workers),
 * at most workers + LAUNCH_QUEUED_MAX in flight. A host in flight is
 * `launching` in the store, so decide() counts it and no second one is
 * launched for it; the controller leaves it alone (no terminate, drain,
 * fail or crash recovery) until its worker is done, so no two provider
 * calls for one host overlap.
 * Terminations stay serial on the controller thread. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "lease.h"
#include "ipmap.h"
#include "launcher.h"
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
#include "model/template-version.h"
#include "model/refresh.h"
#include "refresh.h"
#include "model/token.h"
#include "rolling.h"
#include "prov/bootstrap.h"
#include "prov/prov.h"
#include "store/store.h"
#include "tsdb/tsdb.h"
#include "tls.h"
#include "util.h"
#include "xalloc.h"

#define CTL_MAX_ACTIONS 512
#define CTL_MAX_ACCOUNTS 32
#define JOIN_TOKEN_TTL_MS (30LL * 60 * 1000)
#define DEFAULT_DRAIN_MS (5LL * 60 * 1000)
#define ORPHAN_GRACE_MS (60LL * 1000)
#define ORPHAN_SWEEP_MS (5LL * 1000)    /* listing every provider on every pass
					   (each agent report kicks one) is waste */
#define ORPHAN_SWEEP_SHARE 10          /* and at least this many times the last
					   sweep's time: a sweep lists every instance
					   (100 a call on QingCloud) on the controller
					   thread, so at 10,000 hosts it would take
					   the thread over and spend API calls */
#define DEFAULT_KEEP_FAILED_MS (10LL * 60 * 1000)
#define BACKOFF_BASE_MS 1000LL            /* after the first failure; doubles */
#define BACKOFF_MAX_MS (5LL * 60 * 1000)
#define CTL_PAUSE_MS (HERD_HEARTBEAT_S * 1000LL) /* a longer gap between passes: herd was deaf */
#define CTL_MAX_WAITS 64                  /* waits remembered to report each once */
#define CTL_MAX_NETS 128                  /* networks whose applied spec is remembered */
#define CTL_PASS_IPMAPS 8                 /* networks a pass keeps address maps for */

struct acct {
	char name[64];
	struct prov p;
	json_t *config;
	bool open;
};

struct ctl {
	struct server *s;
	pthread_t thread;
	bool started;
	struct acct accts[CTL_MAX_ACCOUNTS];
	int naccts;
	int64_t orphan_seen_ms;      /* when orphans were first seen */
	int64_t swept_ms;            /* last orphan sweep */
	int64_t sweep_cost_ms;       /* how long it took */
	pthread_mutex_t lock;        /* held by the controller thread during a pass */
	struct launcher *launcher;   /* provider half of launches; NULL: inline (teardown) */
	bool resolved_launching;
	int64_t term;                /* the lease epoch of the last pass (0: not leading) */
	int64_t heard_since_ms;      /* herd listens since (start, or end of a pause) */
	int64_t pass_ms;             /* when the last pass started */
	int64_t act_ms;              /* how long it spent acting (provider calls, LB drains) */
	struct ctl_wait {            /* waits of the last pass (reported when new) */
		char cause[32];
		char key[180];       /* cluster/group/host id */
	} waits[CTL_MAX_WAITS];
	int nwaits;
	struct {                     /* launches that failed before a host row */
		char key[140];       /* cluster/group */
		char msg[256];
		int64_t at_ms;
	} fail[32];
	struct {                     /* networks as last applied (net_sync_pass) */
		char name[64];
		uint64_t sig;
	} nets[CTL_MAX_NETS];
	/* during a pass's actions: its live hosts, and the address maps of the
	 * networks it launches in (ip_map) */
	const struct host *pass_hosts;
	size_t pass_nh;
	struct ipmap ipmaps[CTL_PASS_IPMAPS];
	size_t nipmaps;
};

/* A launch that cannot even start (no such driver, network problem) makes
 * no host row: it is reported as an activity and logged once per message
 * and minute per group, not every pass. Returns true if it may be said now. */
static bool
fail_once(struct ctl *c, const char *cluster, const char *group, const char *msg)
{
	char key[140];
	int slot = 0;

	snprintf(key, sizeof(key), "%s/%s", cluster, group);
	for (int i = 0; i < 32; i++) {
		if (strcmp(c->fail[i].key, key) == 0) {
			slot = i;
			break;
		}
		if (c->fail[i].at_ms < c->fail[slot].at_ms)
			slot = i;
	}
	if (strcmp(c->fail[slot].key, key) == 0 && strcmp(c->fail[slot].msg, msg) == 0 &&
	    now_ms() - c->fail[slot].at_ms < 60000)
		return false;
	snprintf(c->fail[slot].key, sizeof(c->fail[slot].key), "%s", key);
	snprintf(c->fail[slot].msg, sizeof(c->fail[slot].msg), "%s", msg);
	c->fail[slot].at_ms = now_ms();
	return true;
}

static struct ctl teardown_ctl;   /* used by ctl_teardown (no thread) */
static void net_gone_pass(struct ctl *c);   /* deleted networks: see below */
static void net_sync_pass(struct ctl *c);   /* changed networks: see below */

/* The provider of an account, opened on first use; an account no longer
 * stored is opened from was_spec when given (a deleted network's account,
 * as it was when the network went). */
static struct prov *
acct_prov_was(struct ctl *c, const char *account, const json_t *was_spec, struct herr *err)
{
	struct res r;
	struct account_spec as;
	const struct prov_ops *ops;
	struct acct *a;

	for (int i = 0; i < c->naccts; i++)
		if (strcmp(c->accts[i].name, account) == 0)
			return &c->accts[i].p;
	if (c->naccts == CTL_MAX_ACCOUNTS) {
		herr_set(err, HERR_TOOBIG, "too many accounts");
		return NULL;
	}
	if (res_get(c->s->store, &kind_account, "", account, &r, err) < 0) {
		if (err->code != HERR_NOTFOUND || !json_is_object(was_spec))
			return NULL;
		herr_clear(err);
		r.spec = json_deep_copy(was_spec);
	}
	if (account_from_spec(account, r.spec, &as, err) < 0) {
		res_release(&r);
		return NULL;
	}
	ops = prov_find(as.driver);
	if (ops == NULL) {
		herr_set(err, -ENOTSUP, "driver '%s' of account '%s' is not built into this herd",
			 as.driver, account);
		res_release(&r);
		return NULL;
	}
	a = &c->accts[c->naccts];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", account);
	a->config = r.spec;    /* keeps the reference */
	snprintf(a->p.account, sizeof(a->p.account), "%s", account);
	snprintf(a->p.instance, sizeof(a->p.instance), "%s", c->s->instance);
	snprintf(a->p.server_id, sizeof(a->p.server_id), "%s", leader_server_id(c->s));
	snprintf(a->p.data_dir, sizeof(a->p.data_dir), "%s", c->s->data_dir);
	a->p.config = a->config;
	if (prov_open(&a->p, ops, err) < 0) {
		json_decref(a->config);
		return NULL;
	}
	c->naccts++;
	return &a->p;
}

static struct prov *
acct_prov(struct ctl *c, const char *account, struct herr *err)
{
	return acct_prov_was(c, account, NULL, err);
}

/* --- networks --- */

struct netinfo {
	char id[9];
	char name[64];
	char cidr[64];
	char gateway[32];
	int prefix;
	uint32_t base, mask;  /* host order */
	char account[64];
	/* a cloud network's existing parts and public endpoint ("" = none) */
	char vxnet[64], router[64], eip[64];
	struct prov_forward fwd[PROV_FORWARDS_MAX];
	size_t n_fwd;
	uint64_t sig;    /* of the stored spec: see net_sync_pass */
};

static void net_applied(struct ctl *c, const struct netinfo *ni);

/* dst: the spec's string field key, "" when absent or not fitting (the
 * kind's check keeps ids far shorter). */
static void
net_str(const json_t *spec, const char *key, char *dst, size_t n)
{
	const char *v = json_string_value(json_object_get(spec, key));

	snprintf(dst, n, "%s", v && strlen(v) < n ? v : "");
}

/* A hash of a network's stored spec: net_sync_pass applies it again when it
 * differs from the one last applied. */
static uint64_t
net_spec_sig(const json_t *spec)
{
	char *txt = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t h = fnv1a_str(FNV1A_INIT, txt ? txt : "");

	free(txt);
	return h | 1; /* 0 = never applied */
}

/* A network's addresses and provider id from its spec (the id is derived
 * from this server's instance and the name, so it needs no storage). */
static int
net_from_spec(struct server *s, const char *name, const json_t *spec, struct netinfo *ni)
{
	struct network_spec n;
	struct herr err = HERR_INIT;
	struct in_addr a;
	uint32_t base;
	int prefix;

	/* the API's own check: a network stored before it (loopback, multicast)
	 * is never made */
	if (network_from_spec(name, spec, &n, &err) < 0 ||
	    net_cidr_parse(n.cidr, &base, &prefix, &err) < 0) {
		log_warn("network '%s': %s", name, err.msg);
		return -1;
	}
	memset(ni, 0, sizeof(*ni));
	snprintf(ni->name, sizeof(ni->name), "%s", name);
	snprintf(ni->account, sizeof(ni->account), "%s", n.account);
	snprintf(ni->cidr, sizeof(ni->cidr), "%s", n.cidr);
	ni->prefix = prefix;
	ni->mask = 0xffffffffu << (32 - ni->prefix);
	ni->base = base;
	a.s_addr = htonl(ni->base + 1);
	inet_ntop(AF_INET, &a, ni->gateway, sizeof(ni->gateway));
	prov_net_id(s->instance, name, ni->id, sizeof(ni->id));
	ni->sig = net_spec_sig(spec);
	net_str(spec, "vxnet", ni->vxnet, sizeof(ni->vxnet));
	net_str(spec, "router", ni->router, sizeof(ni->router));
	net_str(spec, "eip", ni->eip, sizeof(ni->eip));
	if (prov_forwards_from_json(json_object_get(spec, "port_forwards"), ni->cidr, ni->fwd,
				    &ni->n_fwd, &err) < 0) {
		log_warn("network '%s': %s: %s", name, err.field, err.msg);
		return -1;
	}
	return 0;
}

static int
net_load(struct server *s, const char *name, struct netinfo *ni, struct herr *err)
{
	struct res r;
	int rc;

	if (res_get(s->store, &kind_network, "", name, &r, err) < 0)
		return err->code;
	rc = net_from_spec(s, name, r.spec, ni);
	res_release(&r);
	return rc < 0 ? herr_set(err, HERR_STORE, "network '%s' has no valid cidr", name) : 0;
}

static void
net_spec(const struct netinfo *ni, struct prov_net_spec *ns)
{
	ns->id = ni->id;
	ns->name = ni->name;
	ns->cidr = ni->cidr;
	ns->gateway = ni->gateway;
	ns->prefix_len = ni->prefix;
	ns->vxnet = ni->vxnet[0] ? ni->vxnet : NULL;
	ns->router = ni->router[0] ? ni->router : NULL;
	ns->eip = ni->eip[0] ? ni->eip : NULL;
	ns->forwards = ni->fwd;
	ns->n_forwards = ni->n_fwd;
}

/* Makes sure the network exists at the provider and the server listens on
 * its gateway (drivers with listens_on_gateway), so agents inside can reach
 * it. */
static int
net_ensure(struct ctl *c, const struct netinfo *ni, struct prov *p, struct herr *err)
{
	struct prov_net_spec ns;

	net_spec(ni, &ns);
	if (prov_net_create(p, &ns, err) < 0)
		return err->code;
	if (p->ops->listens_on_gateway)
		return httpd_listen_extra(c->s, ni->gateway, c->s->port, err);
	return 0;
}

void
ctl_server_url_for(struct server *s, const char *gateway, char *out, size_t n)
{
	snprintf(out, n, "%s://%s:%d", httpd_is_tls(s, gateway, s->port) ? "https" : "http",
		 gateway, s->port);
}

/* The URL a new host's agent is told to reach the server at: the account's
 * server_url, else the server's --advertise-url, else (today's default) the
 * network's gateway on the server's port. Both were checked where they came
 * in (prov_server_url_check); trailing slashes are dropped, as the agent
 * appends /v1/... */
static void
server_url_choose(struct server *s, const char *account_url, const char *gateway, char *out,
		  size_t n)
{
	size_t len;

	if (account_url && *account_url)
		snprintf(out, n, "%s", account_url);
	else if (s->advertise_url[0])
		snprintf(out, n, "%s", s->advertise_url);
	else
		ctl_server_url_for(s, gateway, out, n);
	len = strlen(out);
	while (len > 0 && out[len - 1] == '/')
		out[--len] = '\0';
}

/* The addresses of network ni in use, for this pass: built once per pass
 * and network from the live hosts the pass already read (a launch reads no
 * host row), then marked as addresses are handed out. Outside a pass, or
 * past CTL_PASS_IPMAPS networks in one pass, from the store (*scratch). */
static struct ipmap *
ip_map(struct ctl *c, const struct netinfo *ni, struct ipmap *scratch, struct herr *err)
{
	struct host_query q = { .network = ni->name, .state = -1, .live = true };
	struct host *hosts;
	struct ipmap *m;
	size_t nh;

	for (size_t i = 0; i < c->nipmaps; i++)
		if (strcmp(c->ipmaps[i].net, ni->name) == 0 && c->ipmaps[i].base == ni->base &&
		    c->ipmaps[i].mask == ni->mask)
			return &c->ipmaps[i];
	if (c->pass_hosts != NULL && c->nipmaps < CTL_PASS_IPMAPS) {
		m = &c->ipmaps[c->nipmaps++];
		ipmap_init(m, ni->name, ni->base, ni->mask);
		for (size_t i = 0; i < c->pass_nh; i++)
			if (strcmp(c->pass_hosts[i].network, ni->name) == 0)
				ipmap_mark(m, c->pass_hosts[i].private_ip);
		return m;
	}
	if (host_list(c->s->store, &q, &hosts, &nh, err) < 0)
		return NULL;
	ipmap_init(scratch, ni->name, ni->base, ni->mask);
	for (size_t i = 0; i < nh; i++)
		ipmap_mark(scratch, hosts[i].private_ip);
	free(hosts);
	return scratch;
}

/* Lowest free address of the network (not network, gateway or broadcast). */
static int
ip_alloc(struct ctl *c, const struct netinfo *ni, char *out, size_t n, struct herr *err)
{
	struct ipmap scratch = { 0 }, *m = ip_map(c, ni, &scratch, err);
	int rc;

	if (m == NULL)
		return err->code;
	rc = ipmap_take(m, out, n);
	ipmap_free(&scratch);
	if (rc < 0)
		return herr_set(err, HERR_CONFLICT, "network '%s' (%s) has no free address",
				ni->name, ni->cidr);
	return 0;
}

/* The pass's address maps are dropped when it ends: the next pass reads
 * the hosts afresh (terminated hosts' addresses are free again). */
static void
ip_maps_end_pass(struct ctl *c)
{
	for (size_t i = 0; i < c->nipmaps; i++)
		ipmap_free(&c->ipmaps[i]);
	c->nipmaps = 0;
	c->pass_hosts = NULL;
	c->pass_nh = 0;
}

/* --- host transitions --- */

int
ctl_host_state(struct server *s, const char *host_id, enum hstate to, const char *reason,
	       struct herr *err)
{
	enum hstate from;
	int64_t now = now_ms();
	struct host h;
	int rc;

	/* One transaction: the check and the change cannot interleave with
	 * another transition, and the row and its activity cost one commit. */
	if ((rc = store_begin(s->store, err)) < 0)
		return rc;
	if ((rc = host_get(s->store, host_id, &h, err)) < 0) {
		store_rollback(s->store);
		return rc;
	}
	from = h.state;
	if (from == to) {
		rc = 0;
		goto out_rollback;
	}
	/* Terminal states are never left (a late agent report changes nothing):
	 * the model refuses the move. */
	rc = host_state_write(s->store, host_id, from, to, reason, now, NULL, err);
	if (rc < 0)
		goto out_rollback;
	if (to == HS_READY || to == HS_FAILED || to == HS_UNHEALTHY || to == HS_TERMINATED)
		activity_add(s->store, h.cluster, h.grp, h.name,
			     to == HS_READY ? "host_ready" : to == HS_FAILED ? "host_failed"
			     : to == HS_UNHEALTHY ? "host_unhealthy" : "host_terminated",
			     NULL, NULL, err, "%s: %s -> %s%s%s", h.name, hstate_name(from),
			     hstate_name(to), reason && *reason ? ": " : "", reason ? reason : "");
	if ((rc = store_commit(s->store, err)) < 0)
		return rc;
	if (to == HS_TERMINATED)
		token_invalidate();   /* its credential must stop working at once */
	/* A ready host also ends its group's failure backoff: decide() counts
	 * failures since the last ready_ms. */
	server_kick(s);
	return 0;
out_rollback:
	store_rollback(s->store);
	return rc;
}

int
ctl_terminate_host(struct server *s, json_t *row, bool replace, const char *who, struct herr *err)
{
	struct host h;
	const char *cl = h.cluster, *g = h.grp, *id = h.id, *name = h.name;
	struct group gr;
	struct res r;
	bool created;
	int rc;

	/* the API's row (any of HOST_COLUMNS), typed */
	if ((rc = host_from_row(row, &h, err)) < 0)
		return rc;
	if ((rc = store_begin(s->store, err)) < 0)
		return rc;
	if (!replace && h.state != HS_FAILED && res_get(s->store, &kind_group, cl, g, &r, err) == 0) {
		json_int_t d, min;

		if ((rc = group_from_spec(cl, g, r.spec, &gr, err)) < 0) {
			res_release(&r);
			goto fail;
		}
		d = gr.desired < 0 ? 0 : gr.desired;   /* absent: 0, as ever */
		min = gr.min < 0 ? 0 : gr.min;
		if (d - 1 < min) {
			res_release(&r);
			store_rollback(s->store);
			return herr_set(err, HERR_CONFLICT,
					"terminating '%s' would take group '%s' below its min (%lld);"
					" use replace to get a new host instead",
					name, g, (long long)min);
		}
		json_object_set_new(r.spec, "desired", json_integer(d - 1));
		rc = res_put(s->store, &kind_group, cl, g, r.spec, "", &created, err);
		res_release(&r);
		if (rc < 0)
			goto fail;
	}
	herr_clear(err);
	rc = host_mark_terminating(s->store, id,
				   replace ? "terminated by request, to be replaced"
					   : "terminated by request",
				   0, now_ms(), NULL, err);
	if (rc < 0)
		goto fail;
	activity_add(s->store, cl, g, name, "terminate", "manual", NULL, err, "%s terminated by %s%s",
		     name, who, replace ? " (will be replaced)" : "");
	return store_commit(s->store, err);
fail:
	store_rollback(s->store);
	return rc;
}

/* A launch whose intent is stored: what its provider call needs, owned
 * (the controller goes on while a worker makes the host). */
struct launch_job {
	struct server *s;
	struct prov *p;              /* the account's, kept open by the controller */
	struct netinfo ni;
	struct template_spec *t;
	char id[16], name[140], cluster[64], group[64], ip[32], tok[80], client[40];
	char url[PROV_URL_MAX], sdir[1200];
	char *ud;
	json_t *tags;
	struct prov_instance inst;
	struct herr err;
	int rc;
	bool fenced;                 /* not called: this server lost the lease */
};

static void
launch_job_free(void *arg)
{
	struct launch_job *j = arg;

	free(j->ud);
	json_decref(j->tags);
	free(j->t);
	free(j);
}

/* On a worker (or inline): the provider call only, no store. */
static void
launch_work(void *arg)
{
	struct launch_job *j = arg;
	const struct template_spec *t = j->t;
	struct prov_net_spec ns;
	struct host_spec spec;

	net_spec(&j->ni, &ns);
	memset(&spec, 0, sizeof(spec));
	spec.id = j->id;
	spec.name = j->name;
	spec.cluster = j->cluster;
	spec.group = j->group;
	spec.net = &ns;
	spec.private_ip = j->ip;
	spec.user_data = j->ud;
	spec.state_dir = j->sdir;
	spec.agent_bin = j->s->agent_bin;
	spec.mem_limit_bytes = t->limit_memory_mb << 20;
	spec.cpu_limit_pct = t->limit_cpu_pct;
	/* what a cloud needs (the local driver ignores it: see prov-local.c) */
	spec.image = t->image[0] ? t->image : NULL;
	spec.instance_type = t->instance_type[0] ? t->instance_type : NULL;
	spec.cpu = t->cpu;
	spec.memory_mb = t->memory_mb;
	spec.keypair = t->keypair[0] ? t->keypair : NULL;
	spec.security_group = t->security_group[0] ? t->security_group : NULL;
	spec.client_token = j->client;
	spec.tags = j->tags;
	spec.agent_sha256 = agent_bin_sha256();   /* hashed once, at server start */
	spec.server_url = j->url;
	if (strncmp(j->url, "https://", 8) == 0 && j->s->tls &&
	    ((const struct tls *)j->s->tls)->ca_pem)
		spec.ca_sha256 = ((const struct tls *)j->s->tls)->ca_sha256;
	spec.join_token = j->tok;
	memset(&j->inst, 0, sizeof(j->inst));
	/* tests: the intent is stored, the provider not yet called (a pause or
	 * a crash here: tests/e2e/0650-ha-failover.bats) */
	failpoint("launch_intent_stored", NULL);
	/* this thread's writes are fenced by the lease it calls under; none
	 * (the lease lost meanwhile): no call, the host stays `launching` and
	 * the leader resolves it by asking the provider */
	if (!leader_pass(j->s, NULL)) {
		j->fenced = true;
		return;
	}
	j->rc = prov_launch(j->p, &spec, &j->inst, &j->err);
	j->fenced = j->rc == HERR_FENCED;
}

/* After launch_work, on the same thread: the outcome into the store. A
 * failed launch fails its host (the group's backoff record: decide.c). */
static void
launch_finish(void *arg)
{
	struct launch_job *j = arg;
	struct server *s = j->s;
	const struct ctl *c = s->ctl;
	struct herr err = HERR_INIT;

	if (j->fenced) {
		log_info("launch of %s in %s/%s not made: this server does not hold the controller"
			 " lease (the leader resolves it)", j->name, j->cluster, j->group);
		launch_job_free(j);
		return;
	}
	if (j->rc < 0) {
		char why[600];

		snprintf(why, sizeof(why), "launch failed: %s", j->err.msg);
		ctl_host_state(s, j->id, HS_FAILED, why, &err);
	} else {
		host_record_instance(s->store, j->id, j->inst.id, now_ms(), now_ms(), &err);
	}
	if (err.code) {
		struct herr e2 = HERR_INIT;

		log_warn("cannot record the launch of %s in %s/%s: %s", j->name, j->cluster, j->group,
			 err.msg);
		activity_add(s->store, j->cluster, j->group, j->name, "launch_failed", "scale_out",
			     NULL, &e2, "cannot record the launch of %s: %s", j->name, err.msg);
	}
	/* A slot is free: the controller may launch the next. Said only when
	 * the pool runs short of queued launches (a failure said it already,
	 * through ctl_host_state): each pass reads every live host, and a
	 * pass after each launch's end was most of a 10,000-host launch's
	 * CPU. Passes still run at least once a second (ctl_main). */
	if (c == NULL || c->launcher == NULL || launcher_running_low(c->launcher))
		server_kick(s);
	launch_job_free(j);
}

/* The launches of one pass (issue 15): each one's provider side is made
 * ready first (group, template, network ensured, account: read once per
 * group a pass), then the intents of all of them (host rows `launching`,
 * activities, addresses) are written in ONE transaction, and only after its
 * commit are the provider calls handed to the pool. So a pass costs one
 * commit (one fsync) however many hosts it launches, and a provider call is
 * never made for an intent that is not stored: a crash before the commit
 * leaves no row and no call; after it, every row is resolved at the next
 * start (resolve_launching). */
struct launch_batch {
	struct launch_job *jobs[CTL_MAX_ACTIONS];
	const char *reason[CTL_MAX_ACTIONS];   /* the pass's action's, borrowed */
	size_t n;
};

/* A launch that makes no host row: said once a minute per group and
 * message (fail_once), as an activity and a warning. */
static void
launch_fail_report(struct ctl *c, const char *cluster, const char *group, const struct herr *err)
{
	struct herr e2 = HERR_INIT;

	if (!fail_once(c, cluster, group, err->msg))
		return;
	log_warn("cannot launch a host in %s/%s: %s", cluster, group, err->msg);
	activity_add(c->s->store, cluster, group, NULL, "launch_failed", "scale_out", NULL, &e2,
		     "cannot launch a host: %s", err->msg);
}

/* A new job for cluster/group with what its provider call needs that does
 * not depend on the host: from the batch's last job of the same group when
 * there is one, else read (group, template, network, account) and the
 * network ensured at its provider. NULL and err when it cannot launch. */
static struct launch_job *
launch_prepare(struct ctl *c, const struct launch_batch *b, const char *cluster,
	       const char *group, struct herr *err)
{
	struct server *s = c->s;
	struct res ar = { 0 };
	struct account_spec as = { 0 };
	struct group *g;
	struct launch_job *j = xcalloc(1, sizeof(*j));
	struct prov *p;

	j->s = s;
	j->err = (struct herr)HERR_INIT;
	snprintf(j->cluster, sizeof(j->cluster), "%s", cluster);
	snprintf(j->group, sizeof(j->group), "%s", group);
	j->t = xcalloc(1, sizeof(*j->t));
	for (size_t i = b->n; i-- > 0;) {
		const struct launch_job *o = b->jobs[i];

		if (o == NULL || strcmp(o->cluster, cluster) != 0 || strcmp(o->group, group) != 0)
			continue;
		j->p = o->p;
		j->ni = o->ni;
		*j->t = *o->t;
		snprintf(j->url, sizeof(j->url), "%s", o->url);
		return j;
	}
	g = xcalloc(1, sizeof(*g));           /* large: not on the stack */
	if (group_get(s->store, cluster, group, g, err) < 0 ||
	    template_get(s->store, g->template_, j->t, err) < 0 ||
	    net_load(s, j->t->network, &j->ni, err) < 0 ||
	    (p = acct_prov(c, j->t->account, err)) == NULL || net_ensure(c, &j->ni, p, err) < 0) {
		free(g);
		launch_job_free(j);
		return NULL;
	}
	free(g);
	net_applied(c, &j->ni);
	j->p = p;
	if (res_get(s->store, &kind_account, "", j->t->account, &ar, err) < 0 ||
	    account_from_spec(j->t->account, ar.spec, &as, err) < 0)
		herr_clear(err);   /* deleted meanwhile (or unreadable): no override */
	server_url_choose(s, as.server_url, j->ni.gateway, j->url, sizeof(j->url));
	res_release(&ar);
	return j;
}

/* Queues a launch in cluster/group for this pass's batch (see struct
 * launch_batch); one that cannot even be prepared is reported. */
static void
launch_add(struct ctl *c, struct launch_batch *b, const char *cluster, const char *group,
	   const char *reason)
{
	struct herr err = HERR_INIT;
	struct launch_job *j;

	if (b->n == CTL_MAX_ACTIONS)
		return;
	if ((j = launch_prepare(c, b, cluster, group, &err)) == NULL) {
		launch_fail_report(c, cluster, group, &err);
		return;
	}
	b->reason[b->n] = reason;
	b->jobs[b->n++] = j;
}

/* Inside the batch's transaction: the current version of template name
 * into ver (kept in template_versions, so a diff can say later what it
 * was); "unknown" when the template is gone meanwhile. 0 or the store's
 * error. */
static int
launch_version(struct store *st, const char *name, char *ver, size_t n, struct herr *err)
{
	char v[TEMPLATE_VERSION_LEN + 1];
	json_t *snap = NULL;
	int rc;

	if ((rc = template_version_current(st, name, v, &snap, err)) == HERR_NOTFOUND) {
		herr_clear(err);
		snprintf(ver, n, "unknown");
		return 0;
	}
	if (rc < 0 || (rc = template_version_record(st, name, v, snap, err)) < 0) {
		json_decref(snap);
		return rc;
	}
	json_decref(snap);
	snprintf(ver, n, "%s", v);
	return 0;
}

/* A host id: 4 random bytes in hex (host_id_new draws again when taken). */
static void
launch_id_rnd(char *out, size_t n, void *arg)
{
	token_random(out, n, NULL, 4);
}

/* Inside the batch's transaction: job j's host (seq, name, address, ids,
 * credentials) and its intent (host row, activity). 0; HERR_CONFLICT or
 * HERR_INVALID when this host cannot be made (no free address, name too
 * long: nothing was written for it, the batch goes on); any other code is
 * the store's (the batch is rolled back). */
static int
launch_intent(struct ctl *c, struct launch_job *j, const char *reason, struct herr *err)
{
	struct server *s = c->s;
	const struct tls *tls = s->tls;
	char tokhash[65];
	json_t *udj;
	struct host h;
	int64_t seq;
	int rc;

	if ((rc = host_next_seq(s->store, j->cluster, j->group, &seq, err)) < 0)
		return rc == HERR_CONFLICT || rc == HERR_INVALID ? HERR_STORE : rc;
	if ((rc = ip_alloc(c, &j->ni, j->ip, sizeof(j->ip), err)) < 0)
		return rc;
	/* every draw taken (HERR_CONFLICT): this host only, as a full subnet */
	if ((rc = host_id_new(s->store, launch_id_rnd, NULL, j->id, sizeof(j->id), err)) < 0)
		return rc;
	token_random(j->client, sizeof(j->client), NULL, 16);
	token_random(j->tok, sizeof(j->tok), "hj_", 24);
	sha256_hex(j->tok, strlen(j->tok), tokhash);
	snprintf(j->name, sizeof(j->name), "%s-%lld", j->group, (long long)seq);
	memset(&h, 0, sizeof(h));
	if (strlen(j->name) >= sizeof(h.name))
		return herr_set(err, HERR_INVALID, "host name '%s' is too long", j->name);
	snprintf(h.id, sizeof(h.id), "%s", j->id);
	snprintf(h.name, sizeof(h.name), "%s", j->name);
	snprintf(h.cluster, sizeof(h.cluster), "%s", j->cluster);
	snprintf(h.grp, sizeof(h.grp), "%s", j->group);
	snprintf(h.template_, sizeof(h.template_), "%s", j->t->name);
	snprintf(h.account, sizeof(h.account), "%s", j->t->account);
	snprintf(h.network, sizeof(h.network), "%s", j->t->network);
	snprintf(h.private_ip, sizeof(h.private_ip), "%s", j->ip);
	snprintf(h.client_token, sizeof(h.client_token), "%s", j->client);
	h.seq = (int)seq;
	if ((rc = launch_version(s->store, j->t->name, h.template_version,
				 sizeof(h.template_version), err)) < 0)
		return rc == HERR_CONFLICT || rc == HERR_INVALID ? HERR_STORE : rc;
	if ((rc = host_create(s->store, &h, tokhash, now_ms() + JOIN_TOKEN_TTL_MS, now_ms(), err)) < 0 ||
	    (rc = activity_add(s->store, j->cluster, j->group, j->name, "launch", "scale_out", NULL, err,
			       "launching %s (%s): %s", j->name, j->ip, reason)) < 0)
		return rc == HERR_CONFLICT || rc == HERR_INVALID ? HERR_STORE : rc;
	udj = json_pack("{s:s,s:s,s:s,s:s,s:i}", "server", j->url, "host_id", j->id, "host",
			j->name, "join_token", j->tok, "heartbeat_s", HERD_HEARTBEAT_S);
	if (strncmp(j->url, "https://", 8) == 0 && tls && tls->ca_pem)
		/* the agent trusts exactly this CA: it fetches it, checks it */
		json_object_set_new(udj, "ca_sha256", json_string(tls->ca_sha256));
	if (j->t->init_timeout_ms > 0)
		json_object_set_new(udj, "init_timeout_s", json_integer(j->t->init_timeout_ms / 1000));
	j->ud = json_dumps(udj, JSON_COMPACT);
	json_decref(udj);
	snprintf(j->sdir, sizeof(j->sdir), "%s/hosts/%s", s->data_dir, j->id);
	j->tags = json_pack("{s:s,s:s,s:s,s:s}", "herd_host_id", j->id, "herd_cluster", j->cluster,
			    "herd_group", j->group, "herd_instance", s->instance);
	return 0;
}

/* Drops every job of the batch (none was handed out). */
static void
launch_batch_drop(struct launch_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->jobs[i])
			launch_job_free(b->jobs[i]);
	b->n = 0;
}

/* Writes the batch's intents in one transaction and, after its commit,
 * hands each provider call to the launch pool (inline without one). A
 * store failure launches none of them: the next pass decides again. */
static void
launch_batch_run(struct ctl *c, struct launch_batch *b)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	size_t i, ok = 0;
	int rc;

	if (b->n == 0)
		return;
	if (store_begin(s->store, &err) < 0)
		goto out_fail;
	for (i = 0; i < b->n; i++) {
		struct launch_job *j = b->jobs[i];

		herr_clear(&err);
		rc = launch_intent(c, j, b->reason[i], &err);
		if (rc == HERR_CONFLICT || rc == HERR_INVALID) {
			/* this host only: nothing of it was written */
			launch_fail_report(c, j->cluster, j->group, &err);
			launch_job_free(j);
			b->jobs[i] = NULL;
			continue;
		}
		if (rc < 0) {
			store_rollback(s->store);
			goto out_fail;
		}
		ok++;
	}
	herr_clear(&err);
	if (store_commit(s->store, &err) < 0)
		goto out_fail;
	log_debug("reconcile: %zu launch intent(s) in one commit", ok);
	for (i = 0; i < b->n; i++) {
		struct launch_job *j = b->jobs[i];

		if (j == NULL)
			continue;
		b->jobs[i] = NULL;
		if (c->launcher == NULL ||
		    launcher_submit(c->launcher, j->id, launch_work, launch_finish, j, &err) < 0) {
			if (err.code)
				log_warn("launching %s on the controller thread: %s", j->name, err.msg);
			herr_clear(&err);
			launch_work(j);
			launch_finish(j);
		}
	}
	b->n = 0;
	return;
out_fail:
	for (i = 0; i < b->n; i++)
		if (b->jobs[i]) {
			launch_fail_report(c, b->jobs[i]->cluster, b->jobs[i]->group, &err);
			break;   /* one report: it is the store's, not a group's */
		}
	launch_batch_drop(b);
}

/* Asks the provider to remove the host; the row says `terminating` first,
 * with when its LB drain began. The host leaves every LB before the provider
 * is called: one step per pass (lbsync_drain_host), so a long drain holds
 * up only this host, and a restart resumes it from the stored start. */
static void
do_terminate(struct ctl *c, const struct host *h, const char *cause, const char *reason)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	const char *id = h->id, *name = h->name;
	int64_t now = now_ms(), since = h->lb_drain_since_ms;
	struct prov *p;

	if (h->state != HS_TERMINATING) {
		if (host_mark_terminating(s->store, id, NULL, now, now, NULL, &err) < 0)
			goto out;
		since = now;
		activity_add(s->store, h->cluster, h->grp, name, "terminate", cause, NULL, &err,
			     "terminating %s: %s", name, reason);
	} else if (since == 0) {
		/* made terminating elsewhere (the API, crash recovery) */
		if (host_lb_drain_begin(s->store, id, now, &err) < 0)
			goto out;
		since = now;
	}
	/* out of every load balancer first; until then, next pass */
	if (lbsync_drain_host(s, id, since, now) > 0)
		return;
	if ((p = acct_prov(c, h->account, &err)) == NULL)
		goto out;
	if (prov_terminate(p, h->instance_id[0] ? h->instance_id : NULL, id, &err) < 0)
		goto out;
	ctl_host_state(s, id, HS_TERMINATED, "", &err);
out:
	if (err.code)
		log_warn("cannot terminate host %s: %s (will retry)", name, err.msg);
}

/* Whether a worker of this process is launching host id. */
static bool
in_flight(struct ctl *c, const char *id)
{
	return c->launcher && id && launcher_busy(c->launcher, id);
}

/* After a crash: `launching` rows whose provider call may or may not have
 * happened. The provider's list decides (prov_instance_adopt): adopt what
 * exists, running or still pending, fail the rest
 * (the group then launches a replacement — a new host, never the same twice). */
static void
resolve_launching(struct ctl *c)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	struct host_query q = { .state = HS_LAUNCHING };
	struct host *hosts;
	size_t nh;

	if (host_list(s->store, &q, &hosts, &nh, &err) < 0)
		return;
	for (size_t i = 0; i < nh; i++) {
		const char *id = hosts[i].id;
		struct prov *p;
		struct prov_instance *list = NULL;
		size_t n = 0, k;
		bool found = false;

		if (in_flight(c, id))
			continue;   /* a worker of this process is making it */
		p = acct_prov(c, hosts[i].account, &err);
		if (p == NULL || prov_list(p, &list, &n, &err) < 0) {
			log_warn("cannot resolve launching host %s yet: %s", hosts[i].name, err.msg);
			continue;
		}
		/* running or pending (a cloud VM still booting) counts as made */
		if ((k = (size_t)prov_instance_adopt(list, n, id)) != (size_t)-1) {
			found = true;
			host_record_instance(s->store, id, list[k].id, now_ms(), now_ms(), &err);
			activity_add(s->store, NULL, NULL, hosts[i].name, "adopt", "recovery", NULL, &err,
				     "host found at the provider (%s) after a restart: adopted",
				     list[k].state);
		}
		free(list);
		if (!found) {
			ctl_host_state(s, id, HS_FAILED,
				       "the server stopped while launching it and the provider has no such host",
				       &err);
			/* fail -> cleanup: nothing of it may be left at the provider */
			host_mark_terminating(s->store, id, NULL, 0, now_ms(), NULL, &err);
		}
	}
	free(hosts);
}

/* Time between two orphan sweeps: ORPHAN_SWEEP_MS, or ORPHAN_SWEEP_SHARE
 * times what the last one took when that is longer (a sweep is O(instances)). */
static int64_t
sweep_gap(const struct ctl *c)
{
	int64_t g = c->sweep_cost_ms > INT64_MAX / ORPHAN_SWEEP_SHARE
			    ? INT64_MAX
			    : c->sweep_cost_ms * ORPHAN_SWEEP_SHARE;

	return g > ORPHAN_SWEEP_MS ? g : ORPHAN_SWEEP_MS;
}

/* Provider hosts carrying our tag that the store does not know as live, or
 * that are not the instance it recorded for a live host. */
static void
sweep_orphans(struct ctl *c)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	bool any = false;

	for (int a = 0; a < c->naccts; a++) {
		struct prov_instance *list = NULL;
		size_t n = 0;

		if (prov_list(&c->accts[a].p, &list, &n, &err) < 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			struct host h;
			/* unknown to the store, or terminated there: an orphan */
			int rc = host_get(s->store, list[k].host_id, &h, &err);
			if (rc == HERR_NOTFOUND) {
				herr_clear(&err);
				h.state = HS_TERMINATED;
			}
			/* or a second instance of a live host: a RunInstances whose
			 * answer was lost and that a search missed made it; the
			 * host is the instance herd recorded */
			if (rc == 0 && h.state != HS_TERMINATED && h.state != HS_LAUNCHING &&
			    h.instance_id[0] && strcmp(h.instance_id, list[k].id) != 0)
				h.state = HS_TERMINATED;
			if ((rc == 0 || rc == HERR_NOTFOUND) && h.state == HS_TERMINATED) {
				any = true;
				if (c->orphan_seen_ms == 0)
					c->orphan_seen_ms = now_ms();
				else if (now_ms() - c->orphan_seen_ms > ORPHAN_GRACE_MS) {
					log_warn("removing orphan host %s (%s) at provider %s",
						 list[k].host_id, list[k].id, c->accts[a].name);
					prov_terminate(&c->accts[a].p, list[k].id, list[k].host_id, &err);
				}
			}
		}
		free(list);
	}
	if (!any)
		c->orphan_seen_ms = 0;
}

/* The group's before_terminate: the first of its policies (by name) that
 * has one. Scale-in victims of the group are drained with it first, whatever
 * asked for the scale-in (like a lifecycle hook). */
static bool
group_drain_script(struct server *s, const char *cluster, const char *group, char *script,
		   size_t n, int64_t *timeout_ms)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *row;
	char scope[140];
	size_t i;
	bool found = false;

	snprintf(scope, sizeof(scope), "%s/%s", cluster, group);
	if (res_all(s->store, &kind_policy, scope, &rows, &err) < 0)
		return false;
	json_array_foreach(rows, i, row) {
		const char *bt = NULL;
		json_t *spec = json_object_get(row, "spec");
		json_unpack(spec, "{s?s}", "before_terminate", &bt);
		if (bt && !found) {
			snprintf(script, n, "%s", bt);
			*timeout_ms = json_duration_ms(spec, "drain_timeout", DEFAULT_DRAIN_MS);
			found = true;
		}
	}
	json_decref(rows);
	return found;
}

/* Starts draining a scale-in victim or a host a refresh took out (cause
 * "scale_in" or "refresh": its activities say which): its group's
 * before_terminate runs on it (a script run, recorded like any other), and
 * the host is `draining` until the run ends or its deadline passes. The
 * run is made while the host is still ready (a run skips hosts that are
 * not); a crash between the two writes makes a second run next time: a
 * drain is retried, never skipped. */
static void
do_drain(struct ctl *c, const struct host *h, const char *cause, const char *reason)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	const char *id = h->id, *name = h->name, *cl = h->cluster, *g = h->grp;
	struct run_spec rs = { 0 };
	char script[128], detail[512];
	int64_t timeout = DEFAULT_DRAIN_MS, run_id = 0, changed = 0;

	if (!group_drain_script(s, cl, g, script, sizeof(script), &timeout)) {
		do_terminate(c, h, cause, reason);
		return;
	}
	rs.script = script;
	rs.target_kind = "host";
	rs.target = id;
	rs.timeout_ms = timeout;
	rs.who = "herd (before_terminate)";
	if (run_create(s, &rs, &run_id, detail, sizeof(detail), &err) < 0) {
		log_warn("cannot drain %s with %s: %s: terminating it", name, script, err.msg);
		activity_add(s->store, cl, g, name, "drain_failed", cause, NULL, &err,
			     "cannot run before_terminate %s on %s: %s", script, name, err.msg);
		do_terminate(c, h, cause, reason);
		return;
	}
	herr_clear(&err);
	host_mark_draining(s->store, id, run_id, now_ms() + timeout + 5000,
			   "draining before termination", now_ms(), &changed, &err);
	if (changed == 1) {
		json_t *in = json_pack("{s:s,s:I}", "script", script, "run", (json_int_t)run_id);

		activity_add(s->store, cl, g, name, "drain", cause, in, &err,
			     "draining %s with %s (run %lld): %s", name, script, (long long)run_id, reason);
		json_decref(in);
		server_kick(s);
	}
}

/* A draining host whose run has ended (or whose deadline passed) is
 * terminated, with the drain's outcome and output recorded; the cause is
 * the refresh's when one took it out (model/refresh.h), else scale_in. */
static void
drain_check(struct ctl *c, const struct host *h)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	const char *id = h->id, *name = h->name;
	int64_t run_id = h->drain_run_id, deadline = h->drain_deadline_ms;
	char state[32] = "", why[600];
	struct run_host rh;
	bool have_rh;
	const char *cause;
	json_t *in;

	if (run_id > 0 && run_state_get(s->store, run_id, state, sizeof(state), &err) < 0)
		snprintf(state, sizeof(state), "lost");
	if (strcmp(state, "running") == 0 && now_ms() < deadline)
		return;
	cause = refresh_took_out(s->store, id) ? "refresh" : "scale_in";
	have_rh = run_host_get(s->store, run_id, id, &rh, &err) == 0;
	snprintf(why, sizeof(why), "drain of %s %s%s", name,
		 strcmp(state, "running") == 0 ? "timed out" : "finished: ",
		 strcmp(state, "running") == 0 ? "" : have_rh ? run_hstate_name(rh.state) : state);
	in = json_pack("{s:I,s:s,s:o,s:s,s:s}", "run", (json_int_t)run_id, "state", state,
		       "exit_code", have_rh && rh.exit_code >= 0 ? json_integer(rh.exit_code)
								 : json_null(),
		       "stdout", have_rh ? rh.stdout_text : "", "stderr",
		       have_rh ? rh.stderr_text : "");
	activity_add(s->store, h->cluster, h->grp, name, "drained", cause, in, &err, "%s",
		     why);
	json_decref(in);
	if (have_rh)
		run_host_release(&rh);
	do_terminate(c, h, cause, why);
}

/* A scale-out takes a draining host back instead of launching a new one. */
static void
do_reclaim(struct ctl *c, const struct host *h, const char *reason)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	const char *id = h->id;
	int64_t run_id = h->drain_run_id;
	int64_t changed = 0;

	if (run_id > 0)
		run_cancel_request(s->store, run_id, &err);
	host_reclaim(s->store, id, now_ms(), &changed, &err);
	if (changed == 1) {
		activity_add(s->store, h->cluster, h->grp, h->name, "reclaim", "scale_out", NULL, &err,
			     "%s (its drain is cancelled)", reason);
		server_kick(s);
	}
}

/* A wait that keeps a host (grace, last_ready) or holds back replacement
 * (unhealthy_cap) is recorded as an activity when it starts, not on every
 * pass: the reason a host is still there, or no new one comes, is on record.
 * Other waits (after, backoff) are seen in apply's answer. */
static void
report_waits(struct ctl *c, const struct rc_action *acts, size_t na)
{
	struct herr err = HERR_INIT;
	struct ctl_wait now[CTL_MAX_WAITS];
	int nnow = 0;

	for (size_t i = 0; i < na && nnow < CTL_MAX_WAITS; i++) {
		const struct rc_action *a = &acts[i];
		bool seen = false;
		if (a->kind != RC_WAIT || (strcmp(a->cause, "grace") != 0 &&
					   strcmp(a->cause, "last_ready") != 0 &&
					   strcmp(a->cause, "unhealthy_cap") != 0))
			continue;
		snprintf(now[nnow].cause, sizeof(now[nnow].cause), "%s", a->cause);
		snprintf(now[nnow].key, sizeof(now[nnow].key), "%s/%s/%s", a->cluster, a->group,
			 a->host_id ? a->host_id : "");
		for (int k = 0; k < c->nwaits; k++)
			if (strcmp(c->waits[k].cause, now[nnow].cause) == 0 &&
			    strcmp(c->waits[k].key, now[nnow].key) == 0)
				seen = true;
		if (!seen) {
			const char *host = NULL;
			struct host h;
			if (a->host_id && host_get(c->s->store, a->host_id, &h, &err) == 0)
				host = h.name;
			herr_clear(&err);
			activity_add(c->s->store, a->cluster, a->group, host, "wait", a->cause, NULL, &err,
				     "%s%s%s", host ? host : "", host ? ": " : "", a->reason);
			herr_clear(&err);
		}
		nnow++;
	}
	memcpy(c->waits, now, sizeof(now[0]) * (size_t)nnow);
	c->nwaits = nnow;
}

/* Saves refresh r after action a (its reason now) and records the step as
 * an activity of kind kind; in one transaction. */
static void
refresh_step_save(struct ctl *c, struct refresh *r, const char *kind, const char *host,
		  const char *fmt_reason)
{
	struct store *st = c->s->store;
	struct herr err = HERR_INIT;

	snprintf(r->reason, sizeof(r->reason), "%s", fmt_reason);
	if (store_begin(st, &err) < 0 || refresh_save(st, r, now_ms(), &err) < 0 ||
	    activity_add(st, r->cluster, r->grp, host, kind, "refresh", NULL, &err,
			 "refresh %lld to %s: %s", (long long)r->id, r->target, fmt_reason) < 0 ||
	    store_commit(st, &err) < 0) {
		store_rollback(st);
		log_warn("refresh %lld of %s/%s: cannot store its step: %s", (long long)r->id,
			 r->cluster, r->grp, err.msg);
	}
}

/* Drains hosts[idx] out (before_terminate and the load balancer, as a
 * scale-in victim) and updates hosts[] and hrows[] with its new state, so
 * the reconcile decision of this pass no longer counts it, nor takes it
 * back (leaving). */
static void
refresh_drain(struct ctl *c, struct rc_host *hosts, struct host *hrows, size_t idx,
	      const char *reason)
{
	struct herr err = HERR_INIT;
	struct host now;

	hosts[idx].leaving = true;
	if (hrows[idx].state == HS_DRAINING || hrows[idx].state == HS_TERMINATING)
		return;
	do_drain(c, &hrows[idx], "refresh", reason);
	if (host_get(c->s->store, hrows[idx].id, &now, &err) == 0 && now.state != hrows[idx].state) {
		hrows[idx] = now;
		hosts[idx].state = now.state;
	}
}

/* A failed refresh with rollback: the template's spec from before it is
 * stored again, so new hosts come from the old version. 0 or an error. */
static int
refresh_rollback(struct ctl *c, struct refresh *r, struct herr *err)
{
	bool created;

	if (!json_is_object(r->old_spec) || json_object_size(r->old_spec) == 0)
		return herr_set(err, HERR_NOTFOUND, "no template spec kept to roll back to");
	return res_put(c->s->store, &kind_template, "", r->template_, r->old_spec, "", &created, err);
}

/* One running refresh's step (ctl/refresh.h), before the reconcile
 * decision: acts on refresh_decide() and adds the surge hosts it wants to
 * its group's desired in groups[]. */
static void
refresh_one(struct ctl *c, struct refresh *r, struct rc_group *g, struct rc_host *hosts,
	    struct host *hrows, size_t nh, int64_t now)
{
	struct store *st = c->s->store;
	struct herr err = HERR_INIT;
	struct rf_host *rh = xcalloc(nh + 1, sizeof(*rh));
	size_t *map = xcalloc(nh + 1, sizeof(*map)), n = 0, i;
	json_t *out = refresh_hosts_out(st, r->id, &err), *v;
	struct rf_action *a = xcalloc(1, sizeof(*a));
	char why[600];

	struct template_spec *t = xcalloc(1, sizeof(*t));
	json_t *members = NULL;

	/* with a load balancer, a new host counts once the LB has it UP */
	if (template_get(st, r->template_, t, &err) == 0 && t->load_balancer[0]) {
		json_t *views = lbsync_views();

		members = json_incref(json_object_get(json_object_get(views, t->load_balancer),
						      "items"));
		json_decref(views);
		if (members == NULL)
			members = json_array();
	}
	herr_clear(&err);
	for (i = 0; i < nh; i++) {
		size_t k;

		if (strcmp(hrows[i].cluster, r->cluster) != 0 || strcmp(hrows[i].grp, r->grp) != 0)
			continue;
		rh[n] = (struct rf_host){ hrows[i].id, hrows[i].name, hrows[i].state,
					  hrows[i].template_version, hrows[i].seq,
					  hrows[i].created_ms, hrows[i].ready_ms, false,
					  members == NULL };
		json_array_foreach(out, k, v)
			if (strcmp(json_string_value(v), hrows[i].id) == 0)
				rh[n].out = true;
		/* on its way out: the reconcile decision neither counts it,
		 * picks it as a victim, nor takes it back */
		hosts[i].leaving = rh[n].out;
		json_array_foreach(members, k, v) {
			const char *mid = json_string_value(json_object_get(v, "host_id"));
			const char *up = json_string_value(json_object_get(v, "status"));

			if (mid && up && strcmp(mid, hrows[i].id) == 0 && strcmp(up, "UP") == 0)
				rh[n].lb_up = true;
		}
		map[n++] = i;
	}
	json_decref(members);
	free(t);
	refresh_decide(r, rh, n, g->desired, now, a);
	switch (a->kind) {
	case RF_NONE:
		break;
	case RF_WAIT:
		if (strcmp(r->reason, a->reason) != 0)
			refresh_step_save(c, r, "refresh_wait", NULL, a->reason);
		break;
	case RF_CHOOSE:
		json_array_clear(r->batch);
		for (i = 0; i < a->nhosts; i++)
			json_array_append_new(r->batch, json_string(rh[a->hosts[i]].id));
		r->extra = a->extra;
		refresh_step_save(c, r, "refresh_batch", NULL, a->reason);
		break;
	case RF_TAKE_OUT:
		/* the intent first: each host recorded as taken out, the batch
		 * closed, in one commit; then the drains (again after a crash) */
		if (store_begin(st, &err) < 0)
			break;
		for (i = 0; i < a->nhosts && err.code == 0; i++) {
			const struct rf_host *h = &rh[a->hosts[i]];
			int rc = refresh_host_out(st, r->id, h->id, h->name, now, &err);

			if (rc == 1) {
				r->replaced++;
				activity_add(st, r->cluster, r->grp, h->name, "refresh_out", "refresh",
					     NULL, &err, "refresh %lld to %s: taking %s (version %s) out",
					     (long long)r->id, r->target, h->name, h->version);
			}
		}
		r->batches++;
		r->extra = 0;
		json_array_clear(r->batch);
		snprintf(r->reason, sizeof(r->reason), "%s", a->reason);
		if (err.code || refresh_save(st, r, now, &err) < 0 || store_commit(st, &err) < 0) {
			store_rollback(st);
			log_warn("refresh %lld: cannot store its batch: %s", (long long)r->id, err.msg);
			break;
		}
		failpoint("refresh_take_out", NULL);   /* tests: a crash right here */
		for (i = 0; i < a->nhosts; i++) {
			snprintf(why, sizeof(why), "refresh %lld to version %s", (long long)r->id,
				 r->target);
			refresh_drain(c, hosts, hrows, map[a->hosts[i]], why);
		}
		break;
	case RF_REDRAIN:
		for (i = 0; i < a->nhosts; i++) {
			snprintf(why, sizeof(why), "refresh %lld to version %s (again)",
				 (long long)r->id, r->target);
			refresh_drain(c, hosts, hrows, map[a->hosts[i]], why);
		}
		break;
	case RF_DONE:
		snprintf(r->state, sizeof(r->state), "done");
		r->extra = 0;
		refresh_step_save(c, r, "refresh_done", NULL, a->reason);
		break;
	case RF_PAUSE:
		snprintf(r->state, sizeof(r->state), "paused");
		r->extra = 0;
		json_array_clear(r->batch);
		refresh_step_save(c, r, "refresh_paused", NULL, a->reason);
		break;
	case RF_FAIL:
		r->extra = 0;
		json_array_clear(r->batch);
		snprintf(r->state, sizeof(r->state), "failed");
		if (r->p.rollback) {
			if (store_begin(st, &err) == 0 && refresh_rollback(c, r, &err) == 0 &&
			    store_commit(st, &err) == 0) {
				snprintf(r->state, sizeof(r->state), "rolled_back");
				snprintf(why, sizeof(why), "%s; template %s rolled back to its spec before",
					 a->reason, r->template_);
			} else {
				store_rollback(st);
				snprintf(why, sizeof(why), "%s; cannot roll back: %s", a->reason, err.msg);
			}
		} else {
			snprintf(why, sizeof(why), "%s", a->reason);
		}
		refresh_step_save(c, r, r->p.rollback ? "refresh_rollback" : "refresh_failed", NULL,
				  why);
		break;
	}
	if (strcmp(r->state, "running") == 0)
		g->desired += r->extra;
	json_decref(out);
	free(a);
	free(rh);
	free(map);
}

/* Every running refresh's step (refresh_one); a refresh whose group is gone
 * is cancelled. */
static void
refresh_pass(struct ctl *c, struct rc_group *groups, size_t ng, struct rc_host *hosts,
	     struct host *hrows, size_t nh, int64_t now)
{
	struct herr err = HERR_INIT;
	struct refresh *rs = NULL;
	size_t nr = 0;

	if (refresh_running(c->s->store, &rs, &nr, &err) < 0) {
		log_warn("reconcile: cannot read the refreshes: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < nr; i++) {
		struct rc_group *g = NULL;

		for (size_t k = 0; k < ng && g == NULL; k++)
			if (strcmp(groups[k].cluster, rs[i].cluster) == 0 &&
			    strcmp(groups[k].name, rs[i].grp) == 0)
				g = &groups[k];
		if (g == NULL) {
			snprintf(rs[i].state, sizeof(rs[i].state), "cancelled");
			rs[i].extra = 0;
			refresh_step_save(c, &rs[i], "refresh_cancelled", NULL, "its group is gone");
			continue;
		}
		refresh_one(c, &rs[i], g, hosts, hrows, nh, now);
	}
	refresh_free_all(rs, nr);
}

/* Each host's `behind` (model/template-version.h, as `herd group diff`
 * says it), for the scale-in order (ctl/decide.c). Only in a group whose
 * live hosts are on more than one template version: where they all are on
 * one, behind or not, it orders nothing, and the pass reads nothing more. */
static void
mark_behind(struct store *st, const struct group *typed, size_t ng, struct rc_host *hosts,
	    const struct host *hrows, size_t nh)
{
	for (size_t gi = 0; gi < ng; gi++) {
		const struct group *g = &typed[gi];
		const struct host *first = NULL;
		char ver[TEMPLATE_VERSION_LEN + 1];
		struct herr err = HERR_INIT;
		bool mixed = false;

		for (size_t i = 0; i < nh && !mixed; i++) {
			const struct host *h = &hrows[i];

			if (strcmp(h->cluster, g->cluster) != 0 || strcmp(h->grp, g->name) != 0)
				continue;
			if (first == NULL)
				first = h;
			else if (!template_version_is_current(h->template_, h->template_version,
							      first->template_,
							      first->template_version[0]
								      ? first->template_version
								      : "unknown"))
				mixed = true;
		}
		if (!mixed)
			continue;
		if (template_version_current(st, g->template_, ver, NULL, &err) < 0) {
			log_debug("reconcile: %s/%s: no current template version: %s", g->cluster,
				  g->name, err.msg);
			continue;
		}
		for (size_t i = 0; i < nh; i++)
			if (strcmp(hrows[i].cluster, g->cluster) == 0 &&
			    strcmp(hrows[i].grp, g->name) == 0)
				hosts[i].behind = !template_version_is_current(
					hrows[i].template_, hrows[i].template_version, g->template_, ver);
	}
}

static void
reconcile_once(struct ctl *c)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	struct host_query live = { .state = -1, .live = true };
	json_t *grows = NULL, *row;
	struct host *hrows = NULL;
	struct rc_group *groups = NULL;
	struct group *typed = NULL;     /* what groups[] point into */
	struct rc_host *hosts = NULL;
	struct rc_action *acts = NULL;
	struct launch_batch *batch = NULL;
	size_t ng = 0, nh = 0, na, i, room;
	int64_t now = now_ms(), act_start, pass_start = mono_ms();

	/* Silence is measured from when herd could hear. A gap between passes
	 * longer than the heartbeat interval means herd was deaf meanwhile (the
	 * process stopped or suspended, the store stalled, the clock stepped
	 * forward): heartbeats sent then were lost, so hosts get a full
	 * unhealthy_after from now. The time the last pass spent acting
	 * (provider calls, LB drains) is not a gap: the API went on taking
	 * heartbeats meanwhile, and counting it would let a slow cloud or a
	 * long drain postpone every replacement. */
	c->heard_since_ms = reconcile_heard_since(c->heard_since_ms, c->pass_ms, c->act_ms, now,
						  CTL_PAUSE_MS);
	if (c->pass_ms != 0 && c->heard_since_ms == now)
		log_warn("reconcile: no pass for %llds (herd stopped, paused or stalled): hosts get"
			 " unhealthy_after from now before their silence counts",
			 (long long)((now - c->pass_ms - c->act_ms) / 1000));
	c->pass_ms = now;
	c->act_ms = 0;

	if (res_all(s->store, &kind_group, NULL, &grows, &err) < 0 ||
	    host_list(s->store, &live, &hrows, &nh, &err) < 0) {
		log_warn("reconcile: cannot read the store: %s", err.msg);
		goto out;
	}
	groups = xcalloc(json_array_size(grows) + 1, sizeof(*groups));
	typed = xcalloc(json_array_size(grows) + 1, sizeof(*typed));
	hosts = xcalloc(nh + 1, sizeof(*hosts));
	json_array_foreach(grows, i, row) {
		struct group *tg = &typed[ng];
		struct rc_group *rg = &groups[ng];

		/* A spec written around the API that does not load: its group is
		 * left alone (its hosts stay as they are), said once a minute. */
		if (group_from_spec(json_string_value(json_object_get(row, "scope")),
				    json_string_value(json_object_get(row, "name")),
				    json_object_get(row, "spec"), tg, &err) < 0) {
			if (fail_once(c, tg->cluster, tg->name, err.msg))
				log_warn("reconcile: %s: its group is left alone", err.msg);
			herr_clear(&err);
			continue;
		}
		ng++;
		rg->cluster = tg->cluster;
		rg->name = tg->name;
		rg->desired = tg->desired < 0 ? 0 : tg->desired;   /* absent: 0 */
		rg->min = tg->min < 0 ? 0 : tg->min;
		rg->max = tg->max < 0 ? 0 : tg->max;
		rg->termination = tg->termination[0] ? tg->termination : NULL;
		rg->max_provision_ms = tg->max_provision_ms;
		rg->unhealthy_after_ms = tg->unhealthy_after_ms;
		rg->max_unhealthy_pct = tg->max_unhealthy_pct;
		rg->keep_failed_ms = DEFAULT_KEEP_FAILED_MS;
		rg->backoff_base_ms = BACKOFF_BASE_MS;
		rg->backoff_max_ms = BACKOFF_MAX_MS;
		{
			char script[128];
			int64_t t;
			rg->drain = group_drain_script(s, rg->cluster, rg->name, script,
						       sizeof(script), &t);
		}
		if (tg->nafter > 0) {
			const char **a = xcalloc((size_t)tg->nafter, sizeof(*a));
			for (int k = 0; k < tg->nafter; k++)
				a[k] = tg->after[k];
			rg->after = a;
			rg->nafter = tg->nafter;
		}
	}
	for (i = 0; i < nh; i++) {
		const struct host *h = &hrows[i];
		hosts[i].id = h->id;
		hosts[i].name = h->name;
		hosts[i].cluster = h->cluster;
		hosts[i].group = h->grp;
		hosts[i].state = h->state;
		hosts[i].seq = h->seq;
		hosts[i].protected_ = h->protected_;
		hosts[i].created_ms = h->created_ms;
		hosts[i].updated_ms = h->updated_ms;
		hosts[i].ready_ms = h->ready_ms;
		hosts[i].heartbeat_ms = h->heartbeat_ms;
		hosts[i].metric = NAN;
	}
	mark_behind(s->store, typed, ng, hosts, hrows, nh);
	/* termination: least:<metric> needs each host's latest value */
	for (size_t gi = 0; gi < ng; gi++) {
		struct tsdb_series_info *si = NULL;
		struct tsdb_matcher m[2];
		size_t nsi = 0;
		const char *t = groups[gi].termination;

		if (t == NULL || strncmp(t, "least:", 6) != 0 || s->tsdb == NULL)
			continue;
		m[0] = (struct tsdb_matcher){ "cluster", groups[gi].cluster, false };
		m[1] = (struct tsdb_matcher){ "group", groups[gi].name, false };
		if (tsdb_latest(s->tsdb, t + 6, m, 2, now - 60000, &si, &nsi, &err) < 0) {
			herr_clear(&err);
			continue;
		}
		for (size_t k = 0; k < nsi; k++) {
			const char *hn = NULL;
			for (size_t l = 0; l < si[k].nlabels; l++)
				if (strcmp(si[k].labels[l].name, "host") == 0)
					hn = si[k].labels[l].value;
			for (size_t h = 0; hn && h < nh; h++)
				if (strcmp(hosts[h].name, hn) == 0 && strcmp(hosts[h].cluster, groups[gi].cluster) == 0)
					hosts[h].metric = si[k].last_value;
		}
		tsdb_series_free(si, nsi);
	}
	/* Hosts already terminating: finish them (also after a crash); hosts
	 * draining: terminate those whose drain has ended. */
	act_start = mono_ms();
	for (i = 0; i < nh; i++) {
		if (in_flight(c, hosts[i].id))
			continue;   /* terminated once its launch is done */
		if (hosts[i].state == HS_TERMINATING)
			do_terminate(c, &hrows[i], "", "");
		else if (hosts[i].state == HS_DRAINING)
			drain_check(c, &hrows[i]);
	}
	/* refreshes first: the hosts they take out no longer count below,
	 * and the surge hosts they want are added to desired */
	refresh_pass(c, groups, ng, hosts, hrows, nh, now);
	acts = xcalloc(CTL_MAX_ACTIONS, sizeof(*acts));
	batch = xcalloc(1, sizeof(*batch));
	room = c->launcher ? launcher_room(c->launcher) : CTL_MAX_ACTIONS;
	na = reconcile_decide(groups, ng, hosts, nh, now, c->heard_since_ms, acts, CTL_MAX_ACTIONS);
	report_waits(c, acts, na);
	c->pass_hosts = hrows;
	c->pass_nh = nh;
	for (i = 0; i < na && !s->stopping; i++) {
		struct rc_action *a = &acts[i];
		const struct host *hrow = NULL;
		if (a->host_id)
			for (size_t k = 0; k < nh; k++)
				if (hosts[k].id == a->host_id)
					hrow = &hrows[k];
		if (in_flight(c, a->host_id))
			continue;   /* decided again once its launch is done */
		switch (a->kind) {
		case RC_LAUNCH:
			/* past the pool's room: the next pass (kicked as each
			 * launch ends) launches the rest; no intent is written now */
			if (batch->n < room)
				launch_add(c, batch, a->cluster, a->group, a->reason);
			break;
		case RC_TERMINATE:
			if (hrow)
				do_terminate(c, hrow, a->cause, a->reason);
			break;
		case RC_FAIL:
			ctl_host_state(s, a->host_id, HS_FAILED, a->reason, &err);
			break;
		case RC_UNHEALTHY:
			ctl_host_state(s, a->host_id, HS_UNHEALTHY, a->reason, &err);
			break;
		case RC_DRAIN:
			if (hrow)
				do_drain(c, hrow, a->cause, a->reason);
			break;
		case RC_RECLAIM:
			if (hrow)
				do_reclaim(c, hrow, a->reason);
			break;
		case RC_WAIT:
			break;
		}
	}
	launch_batch_run(c, batch);   /* the pass's intents: one commit */
	ip_maps_end_pass(c);
	net_gone_pass(c);
	net_sync_pass(c);
	if (now - c->swept_ms >= sweep_gap(c)) {
		int64_t t0 = mono_ms();

		sweep_orphans(c);
		c->sweep_cost_ms = mono_ms() - t0;
		c->swept_ms = now;
	}
	retain_pass(s, now);     /* at most once a minute: ctl/retain.c */
	rolling_pass(s, now_ms());   /* rolling script runs: ctl/rolling.c */
	lbsync_once(s);
	c->act_ms = mono_ms() - act_start;   /* not a pause: see reconcile_heard_since */
	log_debug("reconcile: pass of %zu live hosts, %zu groups: %lld ms (%zu actions)", nh, ng,
		  (long long)(mono_ms() - pass_start), na);
out:
	for (i = 0; groups && i < ng; i++)
		free((void *)groups[i].after);
	free(groups);
	free(typed);
	free(hosts);
	free(acts);
	if (batch)
		launch_batch_drop(batch);   /* stopping mid-pass: none handed out */
	free(batch);
	json_decref(grows);
	free(hrows);
}

static void ctl_listen_networks(struct ctl *c);

static void *
ctl_main(void *arg)
{
	struct ctl *c = arg;
	struct server *s = c->s;
	uint64_t seen = (uint64_t)-1;

	while (!s->stopping) {
		struct timespec ts;
		int64_t epoch = 0;

		pthread_mutex_lock(&s->lock);
		seen = s->generation;
		pthread_mutex_unlock(&s->lock);
		/* only the lease's holder acts; a new term starts from the
		 * stored state, as a start does: intents resolved by asking
		 * the provider, hosts heard from now */
		if (leader_pass(s, &epoch)) {
			if (epoch != c->term) {
				/* leading again after losing the lease (paused
				 * past it: only on a shared store) */
				if (c->pass_ms != 0)
					log_warn("reconcile: no pass for %llds (lost the lease; leading again"
						 " at epoch %lld): hosts get unhealthy_after from now"
						 " before their silence counts",
						 (long long)((now_ms() - c->pass_ms) / 1000), (long long)epoch);
				c->term = epoch;
				c->resolved_launching = false;
				c->pass_ms = 0;
				/* a follower sets up no network (its calls
				 * would be refused): the leader does, at
				 * each term's start */
				pthread_mutex_lock(&c->lock);
				ctl_listen_networks(c);
				pthread_mutex_unlock(&c->lock);
			}
			if (!c->resolved_launching) {
				resolve_launching(c);
				c->resolved_launching = true;
			}
			pthread_mutex_lock(&c->lock);
			reconcile_once(c);
			pthread_mutex_unlock(&c->lock);
		} else {
			c->term = 0;
		}
		pthread_mutex_lock(&s->lock);
		if (s->generation == seen && !s->stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->kick, &s->lock, &ts);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static void
ctl_listen_networks(struct ctl *c)
{
	struct herr err = HERR_INIT;
	struct host_query live = { .state = -1, .live = true };
	struct host *hosts;
	size_t nh;

	/* Networks with live hosts: their agents must reach us after a restart. */
	if (host_list(c->s->store, &live, &hosts, &nh, &err) < 0)
		return;
	for (size_t i = 0; i < nh; i++) {
		struct netinfo ni;
		struct prov *p;
		bool done = false;
		for (size_t k = 0; k < i && !done; k++)
			done = strcmp(hosts[k].network, hosts[i].network) == 0;
		if (done)
			continue;   /* each network once */
		herr_clear(&err);
		if (net_load(c->s, hosts[i].network, &ni, &err) < 0)
			continue;
		if ((p = acct_prov(c, ni.account, &err)) == NULL || net_ensure(c, &ni, p, &err) < 0)
			log_warn("cannot set up network '%s': %s", ni.name, err.msg);
	}
	free(hosts);
}

int
ctl_start(struct server *s, struct herr *err)
{
	struct ctl *c = xcalloc(1, sizeof(*c));

	c->s = s;
	pthread_mutex_init(&c->lock, NULL);
	c->launcher = launcher_new(s->launch_workers > 0 ? s->launch_workers
							 : LAUNCH_WORKERS_DEFAULT, err);
	if (c->launcher == NULL) {
		free(c);
		return err->code;
	}
	s->ctl = c;
	if (pthread_create(&c->thread, NULL, ctl_main, c) != 0)
		return herr_set(err, -errno, "cannot start the controller thread");
	c->started = true;
	return 0;
}

void
ctl_stop(struct server *s)
{
	struct ctl *c = s->ctl;

	if (c == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->kick);
	pthread_mutex_unlock(&s->lock);
	if (c->started)
		pthread_join(c->thread, NULL);
	/* Launches under way are waited for, up to LAUNCH_STOP_WAIT_MS; queued
	 * ones and those still running then stay `launching` in the store, and
	 * the next start resolves them (resolve_launching). Their workers may
	 * still use the providers: then nothing of the controller is freed. */
	if (c->launcher && launcher_stop(c->launcher, LAUNCH_STOP_WAIT_MS, launch_job_free) > 0) {
		s->ctl = NULL;
		return;
	}
	for (int i = 0; i < c->naccts; i++) {
		prov_close(&c->accts[i].p);
		json_decref(c->accts[i].config);
	}
	free(c);
	s->ctl = NULL;
}

/* Removes network name's provider side (spec: the one it had; acct_spec:
 * its account's, if that is gone too, or NULL). Under the controller's lock
 * (or in teardown, alone). */
static int
net_remove(struct ctl *c, const char *name, const json_t *spec, const json_t *acct_spec,
	   struct herr *err)
{
	struct netinfo ni;
	struct prov_net_spec ns;
	struct prov *p;

	if (net_from_spec(c->s, name, spec, &ni) < 0)
		return herr_set(err, HERR_INVALID, "network '%s' has no valid cidr", name);
	if ((p = acct_prov_was(c, ni.account, acct_spec, err)) == NULL)
		return err->code;
	net_spec(&ni, &ns);
	return prov_net_delete(p, &ns, err);
}

/* Deleted networks (recorded by the API with the delete, model/res.h):
 * each one's bridge is removed at its provider, and only then is the record
 * dropped, with an activity; a failure is retried next pass (a crash
 * between the two: the next start). A network made again under the same
 * name meanwhile owns the bridge now: the record is dropped, the bridge
 * kept. */
static void
net_gone_pass(struct ctl *c)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *row, *in;
	size_t i;

	if (net_gone_list(s->store, &rows, &err) < 0) {
		log_warn("cannot read deleted networks: %s", err.msg);
		return;
	}
	json_array_foreach(rows, i, row) {
		const char *name = NULL, *account = NULL;
		json_int_t id = 0;
		json_t *spec = NULL, *acct_spec = NULL;
		struct res r;
		bool again;

		herr_clear(&err);
		if (json_unpack(row, "{s:I, s:s, s:s, s:o, s:o}", "id", &id, "name", &name, "account",
				&account, "spec", &spec, "account_spec", &acct_spec) < 0)
			continue;
		again = res_get(s->store, &kind_network, "", name, &r, &err) == 0;
		if (again)
			res_release(&r);
		herr_clear(&err);
		if (!again && net_remove(c, name, spec, acct_spec, &err) < 0) {
			if (fail_once(c, "network", name, err.msg))
				log_warn("cannot remove network '%s' at account '%s': %s (will retry)",
					 name, account, err.msg);
			continue;
		}
		if (net_gone_done(s->store, id, &err) < 0) {
			log_warn("cannot forget deleted network '%s': %s", name, err.msg);
			continue;
		}
		in = json_pack("{s:s,s:s}", "network", name, "account", account);
		activity_add(s->store, NULL, NULL, NULL, "network_removed", "deleted", in, &err,
			     again ? "network %s was deleted and made again: its bridge is kept"
				   : "network %s was deleted: its bridge at account %s is removed",
			     name, account);
		json_decref(in);
	}
	json_decref(rows);
}

/* A network changed after its first host launched (its port forwards, its
 * EIP) is applied at its provider in the next pass, not at the next launch:
 * each network in use is ensured again whenever its stored spec differs
 * from the one last applied (ni.sig; remembered in memory, so after a
 * restart each one is ensured once). A network no host uses yet is made at
 * its first launch, as before. Failures are retried each pass and said
 * once a minute. */

/* The slot remembering network name, or a free one; -1 if the table is full
 * (then the network is applied at launches only). */
static int
net_slot(struct ctl *c, const char *name)
{
	int slot = -1;

	if (strlen(name) >= sizeof(c->nets[0].name))
		return -1;
	for (int k = 0; k < CTL_MAX_NETS; k++) {
		if (strcmp(c->nets[k].name, name) == 0)
			return k;
		if (slot < 0 && c->nets[k].name[0] == '\0')
			slot = k;
	}
	return slot;
}

/* ni was just ensured at its provider: remembered, and said when it was a
 * change of a network already applied. */
static void
net_applied(struct ctl *c, const struct netinfo *ni)
{
	struct herr err = HERR_INIT;
	int k = net_slot(c, ni->name);
	json_t *in;

	if (k < 0 || c->nets[k].sig == ni->sig)
		return;
	if (c->nets[k].sig != 0) {
		in = json_pack("{s:s,s:s}", "network", ni->name, "account", ni->account);
		activity_add(c->s->store, NULL, NULL, NULL, "network_updated", "apply", in, &err,
			     "network %s changed: applied at account %s", ni->name, ni->account);
		json_decref(in);
	}
	snprintf(c->nets[k].name, sizeof(c->nets[k].name), "%s", ni->name);
	c->nets[k].sig = ni->sig;
}

static void
net_sync_pass(struct ctl *c)
{
	struct server *s = c->s;
	struct herr err = HERR_INIT;
	json_t *rows = NULL, *row;
	bool seen[CTL_MAX_NETS] = { false };
	size_t i;

	if (res_all(s->store, &kind_network, NULL, &rows, &err) < 0)
		return;
	/* forget networks deleted meanwhile */
	json_array_foreach(rows, i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));

		for (int k = 0; name && k < CTL_MAX_NETS; k++)
			if (c->nets[k].name[0] && strcmp(c->nets[k].name, name) == 0)
				seen[k] = true;
	}
	for (int k = 0; k < CTL_MAX_NETS; k++)
		if (!seen[k])
			memset(&c->nets[k], 0, sizeof(c->nets[k]));
	json_array_foreach(rows, i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		struct host_query q = { .state = -1, .live = true };
		struct host *hosts = NULL;
		struct netinfo ni;
		struct prov *p;
		size_t nh = 0;
		int k;

		if (name == NULL || (k = net_slot(c, name)) < 0 ||
		    net_from_spec(s, name, json_object_get(row, "spec"), &ni) < 0 ||
		    c->nets[k].sig == ni.sig)
			continue;
		herr_clear(&err);
		q.network = name;
		if (host_list(s->store, &q, &hosts, &nh, &err) < 0)
			continue;
		free(hosts);
		if (nh == 0)
			continue; /* not made yet: its first launch makes it */
		if ((p = acct_prov(c, ni.account, &err)) == NULL || net_ensure(c, &ni, p, &err) < 0) {
			if (fail_once(c, "network", name, err.msg)) {
				struct herr e2 = HERR_INIT;
				json_t *in = json_pack("{s:s,s:s}", "network", name, "account",
						       ni.account);

				log_warn("cannot apply network '%s' at account '%s': %s (will retry)",
					 name, ni.account, err.msg);
				activity_add(s->store, NULL, NULL, NULL, "network_failed", "apply", in,
					     &e2, "network %s: cannot apply it at account %s: %s",
					     name, ni.account, err.msg);
				json_decref(in);
			}
			continue;
		}
		net_applied(c, &ni);
	}
	json_decref(rows);
}

int
ctl_teardown(struct server *s, struct herr *err)
{
	struct ctl *c = &teardown_ctl;
	json_t *rows = NULL, *row;
	size_t i;

	c->s = s;
	s->ctl = c;
	if (res_all(s->store, &kind_account, NULL, &rows, err) == 0) {
		json_array_foreach(rows, i, row) {
			struct prov *p = acct_prov(c, json_string_value(json_object_get(row, "name")), err);
			struct prov_instance *list = NULL;
			size_t n = 0;
			if (p == NULL || prov_list(p, &list, &n, err) < 0)
				continue;
			for (size_t k = 0; k < n; k++) {
				herr_clear(err);
				if (prov_terminate(p, list[k].id, list[k].host_id, err) == 0)
					host_mark_terminated(s->store, list[k].host_id, now_ms(), err);
			}
			free(list);
		}
		json_decref(rows);
	}
	host_mark_terminated(s->store, NULL, now_ms(), err);
	/* networks deleted but not yet removed, then every one still declared */
	net_gone_pass(c);
	rows = NULL;
	if (res_all(s->store, &kind_network, NULL, &rows, err) == 0) {
		json_array_foreach(rows, i, row) {
			const char *name = json_string_value(json_object_get(row, "name"));
			struct herr e2 = HERR_INIT;
			if (net_remove(c, name, json_object_get(row, "spec"), NULL, &e2) < 0)
				log_warn("cannot remove network '%s': %s", name, e2.msg);
		}
		json_decref(rows);
	}
	for (int a = 0; a < c->naccts; a++) {
		prov_close(&c->accts[a].p);
		json_decref(c->accts[a].config);
	}
	s->ctl = NULL;
	return 0;
}
