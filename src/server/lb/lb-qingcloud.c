/* lb-qingcloud.c - the load balancer driver for networks of the qingcloud
 * provider: each herd LB is a QingCloud load balancer named
 * "herd-<server instance>-<lb name>" with one listener, in the network's
 * VxNet (private) or public on an EIP (`eip: auto` allocates one named like
 * the LB and releases it with the LB; `eip: eip-...` uses that one and never
 * releases it). Members are backends named by their herd host id, attached
 * by instance id.
 *
 * Every change (listeners, backends, disabled) is staged by QingCloud and
 * does nothing until UpdateLoadBalancers applies it (the docs'
 * content/development_docs/api/command_list/lb/update_loadbalancers.md in
 * yunify/qingcloud-docs): apply() updates every LB of this server whose
 * is_applied is 0 and waits for the jobs.
 *
 * Draining is ModifyLoadBalancerBackendAttributes disabled=1 ("1表示禁用，0
 * 表示启用": 1 disables, 0 enables, content/network/loadbalancer/api/
 * loadbanlancer/modify_backend_attribute.md in yunify/qingcloud-docs): once
 * applied, the backend gets no new connections and the ones it has go on.
 * QingCloud exposes no live per-backend session count (GetLoadBalancerMonitor,
 * command_list/monitor/get_loadbalancer_monitor.md, has only a `request`
 * meter for backends, at a 5-minute step at best), so a disabled member is
 * reported with sessions (scur QCLB_ASSUMED_SESSIONS) until the LB's
 * drain_timeout has passed since the driver disabled it (or first saw it
 * disabled, after a restart), then with none: lb-sync deletes it only then.
 *
 * Nothing is remembered between calls but the client: every call finds the
 * LB by its name first, so a crash between a create and the next pass is
 * resolved by the search, and a create whose outcome is unknown
 * (client->last.outcome_unknown) is searched for, never resent blindly.
 * Calls are serialised by a mutex (one qc_client, one curl handle). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"
#include "log.h"
#include "prov/prov.h"
#include "prov/qc.h"
#include "util.h"
#include "xalloc.h"

#define QCLB_PAGE 100
#define QCLB_JOB_WAIT_MS (60LL * 1000) /* create, update, delete jobs */
#define QCLB_EIP_BANDWIDTH_MBPS 1      /* AllocateEips' bandwidth for `eip: auto` */
#define QCLB_MAX_BACKENDS 1000
#define QCLB_ASSUMED_SESSIONS 1 /* a draining member's sessions: unknown, so some */

struct qclb {
	struct qc_client c;
	pthread_mutex_t mu;
	json_t *drains;   /* "<lb>/<member>" -> mono ms its drain began (disabled) */
	json_t *timeouts; /* lb -> its drain_timeout_ms, from ensure */
};

/* What DescribeLoadBalancers says of one of ours. */
struct qlb {
	char id[64];
	char status[32];
	char transition[32];
	bool applied;
	char address[64]; /* its first EIP, else its first private IP */
	char eip_id[64];
	char eip_name[160];
};

/* ---- names ---- */

static int
lb_qc_name(const struct lb *l, const char *lb, char *out, size_t n, struct herr *err)
{
	if ((size_t)snprintf(out, n, "herd-%s-%s", l->instance, lb) >= n)
		return herr_field(err, HERR_INVALID, "name", "load balancer name '%s' is too long",
				  lb);
	return 0;
}

/* The VxNet prov-qingcloud.c makes for network `network`: "herd-<net id>"
 * (qcp_vxnet_name), the id being prov_net_id()'s, the one reconcile uses. */
static void
vxnet_name_of(const struct lb *l, const char *network, char out[32])
{
	char id[16];

	prov_net_id(l->instance, network, id, sizeof(id));
	snprintf(out, 32, "herd-%s", id);
}

/* ---- drains (memory only; q->mu held) ---- */

static void
drain_key(const char *lb, const char *member, char out[160])
{
	snprintf(out, 160, "%s/%s", lb, member);
}

/* When member's drain began: recorded, or now if never (first seen
 * disabled, e.g. after a restart: its drain time runs from now). */
static int64_t
drain_since(struct qclb *q, const char *lb, const char *member)
{
	char k[160];
	const json_t *v;

	drain_key(lb, member, k);
	if ((v = json_object_get(q->drains, k)) == NULL) {
		json_object_set_new(q->drains, k, json_integer(mono_ms()));
		v = json_object_get(q->drains, k);
	}
	return json_integer_value(v);
}

static void
drain_forget(struct qclb *q, const char *lb, const char *member)
{
	char k[160];

	drain_key(lb, member, k);
	json_object_del(q->drains, k);
}

static int64_t
drain_timeout(struct qclb *q, const char *lb)
{
	const json_t *v = json_object_get(q->timeouts, lb);

	return v ? json_integer_value(v) : LB_DEFAULT_DRAIN_MS;
}

/* ---- calls ---- */

/* qc_call with params taken (decref'd here). */
static int
call(struct qclb *q, const char *action, json_t *params, unsigned flags, json_t **resp,
     struct herr *err)
{
	json_t *r = NULL;
	int rc = qc_call(&q->c, action, params, flags, &r, err);

	json_decref(params);
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return rc;
}

static int
job_wait(struct qclb *q, const json_t *resp, const char *what, struct herr *err)
{
	return qc_job_done(&q->c, resp, now_ms() + QCLB_JOB_WAIT_MS, what, err);
}

static void
qlb_parse(const json_t *v, struct qlb *out)
{
	const json_t *eip = json_array_get(json_object_get(v, "eips"), 0);
	const char *priv = json_string_value(json_array_get(json_object_get(v, "private_ips"), 0));
	const char *ea = json_string_value(json_object_get(eip, "eip_addr"));

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s",
		 json_string_value(json_object_get(v, "loadbalancer_id")) ?: "");
	snprintf(out->status, sizeof(out->status), "%s",
		 json_string_value(json_object_get(v, "status")) ?: "");
	snprintf(out->transition, sizeof(out->transition), "%s",
		 json_string_value(json_object_get(v, "transition_status")) ?: "");
	out->applied = json_integer_value(json_object_get(v, "is_applied")) != 0;
	snprintf(out->address, sizeof(out->address), "%s", ea && *ea ? ea : priv ? priv : "");
	snprintf(out->eip_id, sizeof(out->eip_id), "%s",
		 json_string_value(json_object_get(eip, "eip_id")) ?: "");
	snprintf(out->eip_name, sizeof(out->eip_name), "%s",
		 json_string_value(json_object_get(eip, "eip_name")) ?: "");
}

/* The live LBs whose names start with prefix (exact name when exact):
 * their DescribeLoadBalancers items (owned array), paging through all. */
static int
find_lbs(struct qclb *q, const char *word, bool exact, json_t **out, struct herr *err)
{
	json_t *all = json_array();
	size_t off = 0, total;

	do {
		json_t *resp = NULL, *v;
		size_t i;
		/* search_word matches by substring: names are checked here */
		int rc = call(q, "DescribeLoadBalancers",
			      json_pack("{s:s, s:[ssss], s:i, s:i}", "search_word", word, "status",
					"pending", "active", "stopped", "suspended", "offset",
					(int)off, "limit", QCLB_PAGE),
			      QC_IDEMPOTENT, &resp, err);
		if (rc < 0) {
			json_decref(all);
			return rc;
		}
		json_array_foreach(json_object_get(resp, "loadbalancer_set"), i, v) {
			const char *n = json_string_value(json_object_get(v, "loadbalancer_name"));
			if (n &&
			    (exact ? strcmp(n, word) == 0 : strncmp(n, word, strlen(word)) == 0))
				json_array_append(all, v);
		}
		total = (size_t)json_integer_value(json_object_get(resp, "total_count"));
		off += json_array_size(json_object_get(resp, "loadbalancer_set"));
		if (json_array_size(json_object_get(resp, "loadbalancer_set")) == 0)
			total = 0;
		json_decref(resp);
	} while (off < total && off < 100 * QCLB_PAGE);
	*out = all;
	return 0;
}

/* Our LB named after lb: 0 and *out, 1 if none, or a call error. */
static int
find_lb(struct qclb *q, struct lb *l, const char *lb, struct qlb *out, struct herr *err)
{
	char name[160];
	json_t *set = NULL;
	int rc;

	if ((rc = lb_qc_name(l, lb, name, sizeof(name), err)) < 0 ||
	    (rc = find_lbs(q, name, true, &set, err)) < 0)
		return rc;
	rc = json_array_size(set) ? 0 : 1;
	if (rc == 0)
		qlb_parse(json_array_get(set, 0), out);
	json_decref(set);
	return rc;
}

/* The highest host address of cidr ("198.18.7.0/24" -> "198.18.7.254")
 * into out, or "" when cidr is not an IPv4 network of /8../29. herd's own
 * address allocation (reconcile.c, ip_alloc) hands hosts the lowest free
 * addresses from .2 up, and a QingCloud VxNet's router would give a private
 * LB the next free one (create_loadbalancer.md: "如不指定则由路由器自动分配",
 * allocated by the router if not given), which herd may then give a host
 * too: so a private LB asks for the top address. */
static void
top_address(const char *cidr, char *out, size_t n)
{
	char net[32];
	const char *slash = strchr(cidr, '/');
	long plen = 0;
	struct in_addr a;
	uint32_t base;

	out[0] = '\0';
	if (slash == NULL || (size_t)(slash - cidr) >= sizeof(net) ||
	    parse_long(slash + 1, 8, 29, &plen) < 0)
		return;
	snprintf(net, sizeof(net), "%.*s", (int)(slash - cidr), cidr);
	if (inet_pton(AF_INET, net, &a) != 1)
		return;
	base = ntohl(a.s_addr) & ~((1u << (32 - plen)) - 1);
	a.s_addr = htonl(base + (1u << (32 - plen)) - 2);
	inet_ntop(AF_INET, &a, out, (socklen_t)n);
}

/* The id of the VxNet named name (and the ip_network of the router it is
 * joined to, "" if none): 0, 1 if none, or a call error. */
static int
find_vxnet(struct qclb *q, const char *name, char *id, size_t n, char *ipnet, size_t in,
	   struct herr *err)
{
	json_t *resp = NULL, *v;
	size_t i;
	int rc, found = 1;

	rc = call(q, "DescribeVxnets",
		  json_pack("{s:s, s:i, s:i}", "search_word", name, "verbose", 0, "limit",
			    QCLB_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "vxnet_set"), i, v) {
		const char *vn = json_string_value(json_object_get(v, "vxnet_name"));
		if (vn && strcmp(vn, name) == 0) {
			snprintf(id, n, "%s",
				 json_string_value(json_object_get(v, "vxnet_id")) ?: "");
			snprintf(ipnet, in, "%s",
				 json_string_value(json_object_get(json_object_get(v, "router"),
								   "ip_network"))
					 ?: "");
			found = 0;
			break;
		}
	}
	json_decref(resp);
	return found;
}

/* The EIP named name that is not released: 0 and its id, 1 if none. */
static int
find_eip(struct qclb *q, const char *name, char *id, size_t n, struct herr *err)
{
	json_t *resp = NULL, *v;
	size_t i;
	int rc, found = 1;

	rc = call(q, "DescribeEips",
		  json_pack("{s:s, s:[sss], s:i}", "search_word", name, "status", "pending",
			    "available", "associated", "limit", QCLB_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "eip_set"), i, v) {
		const char *en = json_string_value(json_object_get(v, "eip_name"));
		if (en && strcmp(en, name) == 0) {
			snprintf(id, n, "%s",
				 json_string_value(json_object_get(v, "eip_id")) ?: "");
			found = 0;
			break;
		}
	}
	json_decref(resp);
	return found;
}

/* `eip: auto`: the EIP named after the LB, allocated when missing. An
 * AllocateEips whose outcome is unknown is searched for by that name. */
static int
eip_auto(struct qclb *q, const char *name, char *id, size_t n, struct herr *err)
{
	json_t *resp = NULL;
	int rc;

	if ((rc = find_eip(q, name, id, n, err)) <= 0)
		return rc;
	/* bandwidth is required (the docs' command_list/eip/allocate_eips.md) */
	rc = call(q, "AllocateEips",
		  json_pack("{s:i, s:s, s:i}", "bandwidth", QCLB_EIP_BANDWIDTH_MBPS, "eip_name",
			    name, "count", 1),
		  0, &resp, err);
	if (rc < 0) {
		if (q->c.last.outcome_unknown && find_eip(q, name, id, n, err) == 0)
			return 0;
		return rc;
	}
	snprintf(id, n, "%s",
		 json_string_value(json_array_get(json_object_get(resp, "eips"), 0)) ?: "");
	json_decref(resp);
	if (!*id)
		return herr_set(err, HERR_UNAVAIL, "AllocateEips answered no EIP id");
	log_info("lb qingcloud: allocated EIP %s for %s", id, name);
	return 0;
}

/* Our listener of LB id: 0 and its DescribeLoadBalancerListeners items
 * (owned), or a call error. */
static int
listeners_of(struct qclb *q, const char *id, json_t **set, struct herr *err)
{
	json_t *resp = NULL;
	int rc;

	rc = call(q, "DescribeLoadBalancerListeners",
		  json_pack("{s:s, s:i, s:i}", "loadbalancer", id, "verbose", 0, "limit",
			    QCLB_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	*set = json_incref(json_object_get(resp, "loadbalancer_listener_set"));
	json_decref(resp);
	if (*set == NULL)
		*set = json_array();
	return 0;
}

/* The healthy_check_method and healthy_check_option of spec (the docs'
 * content/development_docs/api/command_list/lb/add_loadbalancer_listeners.md in
 * yunify/qingcloud-docs: "tcp" or "http|/path", and
 * "inter|timeout|fall|rise" in seconds, inter 2-60, timeout 5-300). */
static void
check_params(const struct lb_spec *spec, char *method, size_t mn, char *option, size_t on)
{
	int64_t inter_s = spec->check.interval_ms / 1000;

	if (strcmp(spec->check.type, "http") == 0)
		snprintf(method, mn, "http|%s", spec->check.path);
	else
		snprintf(method, mn, "tcp");
	if (inter_s < 2)
		inter_s = 2;
	if (inter_s > 60)
		inter_s = 60;
	snprintf(option, on, "%lld|5|2|2", (long long)inter_s);
}

static int
listen_port(const struct lb_spec *spec)
{
	const char *c = strrchr(spec->listen, ':');
	long port = 0;

	/* lb_spec_from_json checked it; 0 if it ever is not a port */
	return c && parse_long(c + 1, 1, 65535, &port) == 0 ? (int)port : 0;
}

/* Makes LB id have exactly one listener, matching spec. A listener that
 * differs (port, protocol, balance mode, check) is deleted with its
 * backends and made again: lb-sync adds the members back on its pass. */
static int
listener_ensure(struct qclb *q, const char *id, const struct lb_spec *spec, struct herr *err)
{
	char method[300], option[64];
	json_t *set = NULL, *v, *stale = json_array();
	bool have = false;
	size_t i;
	int rc, port = listen_port(spec);

	check_params(spec, method, sizeof(method), option, sizeof(option));
	if ((rc = listeners_of(q, id, &set, err)) < 0)
		goto out;
	json_array_foreach(set, i, v) {
		const char *p = json_string_value(json_object_get(v, "listener_protocol"));
		const char *b = json_string_value(json_object_get(v, "balance_mode"));
		const char *m = json_string_value(json_object_get(v, "healthy_check_method"));
		const char *o = json_string_value(json_object_get(v, "healthy_check_option"));
		bool same = !have &&
			    json_integer_value(json_object_get(v, "listener_port")) == port && p &&
			    strcmp(p, spec->mode) == 0 && b && strcmp(b, spec->algorithm) == 0 &&
			    m && strcmp(m, method) == 0 && o && strcmp(o, option) == 0;
		if (same)
			have = true;
		else
			json_array_append(stale, json_object_get(v, "loadbalancer_listener_id"));
	}
	if (json_array_size(stale) > 0 &&
	    (rc = call(q, "DeleteLoadBalancerListeners",
		       json_pack("{s:O}", "loadbalancer_listeners", stale), QC_IDEMPOTENT, NULL,
		       err)) < 0)
		goto out;
	if (!have) {
		/* named after the LB: a create whose outcome is unknown shows
		 * up in the next pass's DescribeLoadBalancerListeners */
		rc = call(q, "AddLoadBalancerListeners",
			  json_pack("{s:s, s:[{s:i, s:s, s:s, s:s, s:s, s:s, s:s}]}",
				    "loadbalancer", id, "listeners", "listener_port", port,
				    "listener_protocol", spec->mode, "backend_protocol", spec->mode,
				    "balance_mode", spec->algorithm, "healthy_check_method", method,
				    "healthy_check_option", option, "loadbalancer_listener_name",
				    spec->name),
			  0, NULL, err);
	}
out:
	json_decref(set);
	json_decref(stale);
	return rc;
}

/* ---- ops ---- */

static int
qingcloud_lb_open(struct lb *l, struct herr *err)
{
	struct qclb *q = xcalloc(1, sizeof(*q));
	const json_t *cf = l->config;
	int rc;

	/* the account's settings, as the qingcloud provider reads them */
	rc = qc_client_init(&q->c, json_string_value(json_object_get(cf, "endpoint")),
			    json_string_value(json_object_get(cf, "zone")),
			    json_string_value(json_object_get(cf, "access_key_id")),
			    json_string_value(json_object_get(cf, "secret_file")), err);
	if (rc < 0) {
		free(q);
		return rc;
	}
	q->c.timeout_ms = 15000;
	q->c.max_attempts = 3;
	q->drains = json_object();
	q->timeouts = json_object();
	pthread_mutex_init(&q->mu, NULL);
	l->priv = q;
	return 0;
}

static void
qingcloud_lb_close(struct lb *l)
{
	struct qclb *q = l->priv;

	if (q == NULL)
		return;
	qc_client_release(&q->c);
	json_decref(q->drains);
	json_decref(q->timeouts);
	pthread_mutex_destroy(&q->mu);
	free(q);
	l->priv = NULL;
}

static int
ensure_locked(struct qclb *q, struct lb *l, const struct lb_spec *spec, struct herr *err)
{
	char name[160], vx[64] = "", eip[64] = "", ipnet[64] = "", pip[32] = "";
	struct qlb cur;
	json_t *resp = NULL, *params;
	int rc;

	if ((rc = lb_qc_name(l, spec->name, name, sizeof(name), err)) < 0)
		return rc;
	if ((rc = find_lb(q, l, spec->name, &cur, err)) < 0)
		return rc;
	if (rc == 1) {
		if (strcmp(spec->eip, "auto") == 0) {
			if ((rc = eip_auto(q, name, eip, sizeof(eip), err)) < 0)
				return rc;
		} else if (spec->eip[0]) {
			snprintf(eip, sizeof(eip), "%s", spec->eip);
		} else {
			char vn[32];
			vxnet_name_of(l, spec->network, vn);
			if ((rc = find_vxnet(q, vn, vx, sizeof(vx), ipnet, sizeof(ipnet), err)) < 0)
				return rc;
			top_address(ipnet, pip, sizeof(pip));
			if (rc == 1)
				return herr_field(err, HERR_NOTFOUND, "network",
						  "network '%s' has no VxNet (%s) yet",
						  spec->network, vn);
		}
		params = eip[0] ? json_pack("{s:[s], s:s}", "eips", eip, "loadbalancer_name", name)
				: json_pack("{s:s, s:s}", "vxnet", vx, "loadbalancer_name", name);
		if (pip[0])
			json_object_set_new(params, "private_ip", json_string(pip));
		rc = call(q, "CreateLoadBalancer", params, 0, &resp, err);
		if (rc < 0) {
			if (!q->c.last.outcome_unknown || find_lb(q, l, spec->name, &cur, err) != 0)
				return rc;
		} else {
			log_info("lb qingcloud: created %s (%s)", name,
				 json_string_value(json_object_get(resp, "loadbalancer_id"))
					 ?: "?");
			rc = job_wait(q, resp, "CreateLoadBalancer", err);
			json_decref(resp);
			if (rc < 0)
				return rc;
			if ((rc = find_lb(q, l, spec->name, &cur, err)) != 0)
				return rc < 0 ? rc
					      : herr_set(err, HERR_UNAVAIL,
							 "%s vanished after creation", name);
		}
	}
	if (strcmp(cur.status, "active") != 0)
		return herr_set(err, HERR_UNAVAIL, "QingCloud load balancer %s is %s%s%s", cur.id,
				cur.status, cur.transition[0] ? "/" : "", cur.transition);
	return listener_ensure(q, cur.id, spec, err);
}

static int
qingcloud_lb_ensure(struct lb *l, const struct lb_spec *spec, struct herr *err)
{
	struct qclb *q = l->priv;
	int rc;

	pthread_mutex_lock(&q->mu);
	json_object_set_new(q->timeouts, spec->name, json_integer(spec->drain_timeout_ms));
	rc = ensure_locked(q, l, spec, err);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
qingcloud_lb_destroy(struct lb *l, const char *lb, struct herr *err)
{
	struct qclb *q = l->priv;
	char name[160];
	json_t *resp = NULL;
	struct qlb cur;
	int rc;

	pthread_mutex_lock(&q->mu);
	if ((rc = lb_qc_name(l, lb, name, sizeof(name), err)) < 0 ||
	    (rc = find_lb(q, l, lb, &cur, err)) < 0)
		goto out;
	if (rc == 0) {
		rc = call(q, "DeleteLoadBalancers", json_pack("{s:[s]}", "loadbalancers", cur.id),
			  QC_IDEMPOTENT, &resp, err);
		if (rc == 0)
			rc = job_wait(q, resp, "DeleteLoadBalancers", err);
		json_decref(resp);
		if (rc < 0)
			goto out;
		log_info("lb qingcloud: deleted %s (%s)", name, cur.id);
	}
	/* an `eip: auto` EIP carries the LB's name: released once the LB
	 * is gone (also when a crash left it behind); another is never */
	{
		char eip[64];
		if ((rc = find_eip(q, name, eip, sizeof(eip), err)) < 0)
			goto out;
		if (rc == 0) {
			resp = NULL;
			rc = call(q, "ReleaseEips", json_pack("{s:[s]}", "eips", eip),
				  QC_IDEMPOTENT, &resp, err);
			if (rc == 0)
				rc = job_wait(q, resp, "ReleaseEips", err);
			json_decref(resp);
			if (rc == 0)
				log_info("lb qingcloud: released EIP %s of %s", eip, name);
		}
		rc = rc < 0 ? rc : 0;
	}
out:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
qingcloud_lb_list(struct lb *l, char (**names)[64], size_t *n, struct herr *err)
{
	struct qclb *q = l->priv;
	char prefix[64];
	json_t *set = NULL, *v;
	size_t i;
	int rc;

	snprintf(prefix, sizeof(prefix), "herd-%s-", l->instance);
	pthread_mutex_lock(&q->mu);
	rc = find_lbs(q, prefix, false, &set, err);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0)
		return rc;
	*names = xcalloc(json_array_size(set) + 1, sizeof(**names));
	*n = 0;
	json_array_foreach(set, i, v) {
		const char *nm = json_string_value(json_object_get(v, "loadbalancer_name"));
		if (strlen(nm + strlen(prefix)) < 64)
			snprintf((*names)[(*n)++], 64, "%s", nm + strlen(prefix));
	}
	json_decref(set);
	return 0;
}

/* LB lb's listener id and its backends (owned): 0, 1 if the LB or its
 * listener is missing, or a call error. */
static int
backends_of(struct qclb *q, struct lb *l, const char *lb, char *lst, size_t ln, json_t **set,
	    struct herr *err)
{
	json_t *ls = NULL, *resp = NULL;
	struct qlb cur;
	int rc;

	*set = NULL;
	if ((rc = find_lb(q, l, lb, &cur, err)) != 0)
		return rc;
	if ((rc = listeners_of(q, cur.id, &ls, err)) < 0)
		return rc;
	snprintf(lst, ln, "%s",
		 json_string_value(
			 json_object_get(json_array_get(ls, 0), "loadbalancer_listener_id"))
			 ?: "");
	json_decref(ls);
	if (!*lst)
		return 1;
	*set = json_array();
	for (size_t off = 0; off < QCLB_MAX_BACKENDS;) {
		json_t *page;
		size_t got;
		rc = call(q, "DescribeLoadBalancerBackends",
			  json_pack("{s:s, s:i, s:i}", "loadbalancer_listener", lst, "offset",
				    (int)off, "limit", QCLB_PAGE),
			  QC_IDEMPOTENT, &resp, err);
		if (rc < 0) {
			json_decref(*set);
			*set = NULL;
			return rc;
		}
		page = json_object_get(resp, "loadbalancer_backend_set");
		got = json_array_size(page);
		json_array_extend(*set, page);
		off += got;
		got = got == 0 ||
		      off >= (size_t)json_integer_value(json_object_get(resp, "total_count"));
		json_decref(resp);
		resp = NULL;
		if (got)
			break;
	}
	return 0;
}

static const json_t *
backend_named(const json_t *set, const char *member)
{
	const json_t *v;
	size_t i;

	json_array_foreach(set, i, v) {
		const char *n = json_string_value(json_object_get(v, "loadbalancer_backend_name"));
		if (n && strcmp(n, member) == 0)
			return v;
	}
	return NULL;
}

/* The instance id of host member: herd names it "herd-<instance>-<host
 * id>" (prov-qingcloud.c, qcp_instance_name). 0, 1 if none, or an error. */
static int
instance_of(struct qclb *q, struct lb *l, const char *member, char *id, size_t n, struct herr *err)
{
	char name[160];
	json_t *resp = NULL, *v;
	size_t i;
	int rc, found = 1;

	snprintf(name, sizeof(name), "herd-%s-%s", l->instance, member);
	rc = call(q, "DescribeInstances",
		  json_pack("{s:s, s:[sss], s:i, s:i}", "search_word", name, "status", "pending",
			    "running", "stopped", "verbose", 0, "limit", QCLB_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "instance_set"), i, v) {
		const char *in = json_string_value(json_object_get(v, "instance_name"));
		if (in && strcmp(in, name) == 0) {
			snprintf(id, n, "%s",
				 json_string_value(json_object_get(v, "instance_id")) ?: "");
			found = 0;
			break;
		}
	}
	json_decref(resp);
	return found;
}

static int
qingcloud_lb_add_backend(struct lb *l, const char *lb, const struct lb_member *m, struct herr *err)
{
	struct qclb *q = l->priv;
	char lst[64], inst[128];
	json_t *set = NULL;
	const json_t *b;
	int rc;

	pthread_mutex_lock(&q->mu);
	if ((rc = backends_of(q, l, lb, lst, sizeof(lst), &set, err)) != 0) {
		if (rc == 1)
			rc = herr_set(err, HERR_NOTFOUND, "load balancer %s has no listener yet",
				      lb);
		goto out;
	}
	if ((b = backend_named(set, m->name)) != NULL) {
		/* there already: wanted again after a drain, or added twice */
		if (json_integer_value(json_object_get(b, "disabled")) != 0)
			rc = call(q, "ModifyLoadBalancerBackendAttributes",
				  json_pack("{s:O, s:i}", "loadbalancer_backend",
					    json_object_get(b, "loadbalancer_backend_id"),
					    "disabled", 0),
				  QC_IDEMPOTENT, NULL, err);
		if (rc == 0)
			drain_forget(q, lb, m->name);
		goto out;
	}
	if (m->instance_id[0]) {
		snprintf(inst, sizeof(inst), "%s", m->instance_id);
	} else if ((rc = instance_of(q, l, m->name, inst, sizeof(inst), err)) != 0) {
		if (rc == 1)
			rc = herr_set(err, HERR_NOTFOUND, "host %s has no QingCloud instance",
				      m->name);
		goto out;
	}
	/* not resent blindly: named by host id, so the next pass's
	 * list_backends shows whether an unknown outcome happened */
	rc = call(q, "AddLoadBalancerBackends",
		  json_pack("{s:s, s:[{s:s, s:i, s:i, s:s}]}", "loadbalancer_listener", lst,
			    "backends", "resource_id", inst, "port", m->port, "weight", 1,
			    "loadbalancer_backend_name", m->name),
		  0, NULL, err);
out:
	pthread_mutex_unlock(&q->mu);
	json_decref(set);
	return rc;
}

/* disabled=1 (drain) or delete the backend named member of lb. */
static int
backend_change(struct lb *l, const char *lb, const char *member, bool drain, struct herr *err)
{
	struct qclb *q = l->priv;
	char lst[64];
	json_t *set = NULL;
	const json_t *b;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = backends_of(q, l, lb, lst, sizeof(lst), &set, err);
	if (rc == 0 && (b = backend_named(set, member)) != NULL) {
		const json_t *id = json_object_get(b, "loadbalancer_backend_id");
		bool off = json_integer_value(json_object_get(b, "disabled")) != 0;
		if (drain && !off)
			rc = call(q, "ModifyLoadBalancerBackendAttributes",
				  json_pack("{s:O, s:i}", "loadbalancer_backend", id, "disabled",
					    1),
				  QC_IDEMPOTENT, NULL, err);
		else if (!drain)
			rc = call(q, "DeleteLoadBalancerBackends",
				  json_pack("{s:[O]}", "loadbalancer_backends", id), QC_IDEMPOTENT,
				  NULL, err);
		/* the drain time runs from the disable (staged: the caller
		 * applies it at once) */
		if (rc == 0 && drain)
			drain_since(q, lb, member);
	}
	if (rc >= 0 && !drain)
		drain_forget(q, lb, member);
	pthread_mutex_unlock(&q->mu);
	json_decref(set);
	return rc < 0 ? rc : 0;
}

static int
qingcloud_lb_drain_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	return backend_change(l, lb, member, true, err);
}

static int
qingcloud_lb_remove_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	return backend_change(l, lb, member, false, err);
}

/* UpdateLoadBalancers for every LB of this server with changes not yet
 * applied, then waits for the jobs: membership changes do nothing before. */
static int
qingcloud_lb_apply(struct lb *l, struct herr *err)
{
	struct qclb *q = l->priv;
	char prefix[64];
	json_t *set = NULL, *ids = json_array(), *v, *resp = NULL;
	size_t i;
	int rc;

	snprintf(prefix, sizeof(prefix), "herd-%s-", l->instance);
	pthread_mutex_lock(&q->mu);
	if ((rc = find_lbs(q, prefix, false, &set, err)) < 0)
		goto out;
	json_array_foreach(set, i, v) {
		struct qlb x;
		qlb_parse(v, &x);
		if (!x.applied && strcmp(x.status, "active") == 0 && x.transition[0] == '\0')
			json_array_append_new(ids, json_string(x.id));
	}
	if (json_array_size(ids) == 0)
		goto out;
	rc = call(q, "UpdateLoadBalancers", json_pack("{s:O}", "loadbalancers", ids), QC_IDEMPOTENT,
		  &resp, err);
	if (rc == 0)
		rc = job_wait(q, resp, "UpdateLoadBalancers", err);
	json_decref(resp);
out:
	pthread_mutex_unlock(&q->mu);
	json_decref(set);
	json_decref(ids);
	return rc;
}

/* The private IPs of the instances in ids (an array of instance ids) into
 * an object id -> address. */
static json_t *
addresses_of(struct qclb *q, json_t *ids, struct herr *err)
{
	json_t *out = json_object(), *resp = NULL, *v;
	size_t i;

	/* at most QCLB_PAGE ids a call (the API's limit) */
	for (size_t k = 0; k < json_array_size(ids); k += QCLB_PAGE) {
		json_t *chunk = json_array();
		for (size_t j = k; j < k + QCLB_PAGE && j < json_array_size(ids); j++)
			json_array_append(chunk, json_array_get(ids, j));
		resp = NULL;
		if (call(q, "DescribeInstances",
			 json_pack("{s:o, s:i, s:i}", "instances", chunk, "verbose", 0, "limit",
				   QCLB_PAGE),
			 QC_IDEMPOTENT, &resp, err) < 0)
			break;
		json_array_foreach(json_object_get(resp, "instance_set"), i, v) {
			const char *id = json_string_value(json_object_get(v, "instance_id"));
			const char *ip = json_string_value(
				json_object_get(json_array_get(json_object_get(v, "vxnets"), 0),
						"private_ip"));
			if (id && ip)
				json_object_set_new(out, id, json_string(ip));
		}
		json_decref(resp);
	}
	return out;
}

static int
qingcloud_lb_list_backends(struct lb *l, const char *lb, struct lb_backend **out, size_t *n,
			   struct herr *err)
{
	struct qclb *q = l->priv;
	char lst[64];
	json_t *set = NULL, *ids = json_array(), *addrs = NULL, *v;
	int64_t now, limit;
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&q->mu);
	rc = backends_of(q, l, lb, lst, sizeof(lst), &set, err);
	json_array_foreach(set, i, v)
		json_array_append(ids, json_object_get(v, "resource_id"));
	if (rc == 0)
		addrs = addresses_of(q, ids, err);
	if (rc < 0) {
		pthread_mutex_unlock(&q->mu);
		goto out;
	}
	rc = 0;
	now = mono_ms();
	limit = drain_timeout(q, lb);
	*out = xcalloc(json_array_size(set) + 1, sizeof(**out));
	json_array_foreach(set, i, v) {
		struct lb_backend *b = &(*out)[*n];
		const char *nm = json_string_value(json_object_get(v, "loadbalancer_backend_name"));
		const char *rid = json_string_value(json_object_get(v, "resource_id"));
		const char *st = json_string_value(json_object_get(v, "status")) ?: "";
		bool disabled = json_integer_value(json_object_get(v, "disabled")) != 0;

		if (nm == NULL || strlen(nm) >= sizeof(b->m.name))
			continue; /* not one herd named */
		snprintf(b->m.name, sizeof(b->m.name), "%s", nm);
		snprintf(b->m.instance_id, sizeof(b->m.instance_id), "%s", rid ?: "");
		snprintf(b->m.addr, sizeof(b->m.addr), "%s",
			 json_string_value(json_object_get(addrs, rid ?: "")) ?: "");
		b->m.port = (int)json_integer_value(json_object_get(v, "port"));
		/* QingCloud's own word (command_list/lb/describe_loadbalancer_backends.md:
		 * "up", "down", "abnormal") */
		snprintf(b->status, sizeof(b->status), "%s", st);
		b->state = disabled ? LBB_DRAIN : strcmp(st, "up") == 0 ? LBB_UP : LBB_DOWN;
		b->intent = disabled ? LBI_DRAINING : LBI_ACTIVE;
		/* sessions are not in QingCloud's API (see the top): a
		 * disabled member has some until its drain time is up */
		b->drain_since_ms = disabled ? drain_since(q, lb, nm) : 0;
		b->scur = disabled && now - b->drain_since_ms < limit ? QCLB_ASSUMED_SESSIONS : 0;
		(*n)++;
	}
	pthread_mutex_unlock(&q->mu);
out:
	json_decref(set);
	json_decref(ids);
	json_decref(addrs);
	return rc;
}

static int
qingcloud_lb_health(struct lb *l, struct lb_health *out, struct herr *err)
{
	struct qclb *q = l->priv;
	char prefix[64];
	json_t *set = NULL, *v;
	size_t i, unapplied = 0, busy = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(prefix, sizeof(prefix), "herd-%s-", l->instance);
	pthread_mutex_lock(&q->mu);
	rc = find_lbs(q, prefix, false, &set, err);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		snprintf(out->msg, sizeof(out->msg), "QingCloud API: %s", err->msg);
		herr_clear(err);
		return 0;
	}
	json_array_foreach(set, i, v) {
		struct qlb x;
		qlb_parse(v, &x);
		unapplied += !x.applied;
		busy += strcmp(x.status, "active") != 0 || x.transition[0] != '\0';
	}
	out->ok = busy == 0;
	snprintf(out->msg, sizeof(out->msg),
		 "zone %s: %zu load balancers, %zu not active, %zu with changes not applied",
		 q->c.zone, json_array_size(set), busy, unapplied);
	json_decref(set);
	return 0;
}

static int
qingcloud_lb_address(struct lb *l, const char *lb, char *out, size_t n, struct herr *err)
{
	struct qclb *q = l->priv;
	struct qlb cur;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = find_lb(q, l, lb, &cur, err);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0)
		return rc;
	snprintf(out, n, "%s", rc == 0 ? cur.address : "");
	return 0;
}

const struct lb_ops lb_qingcloud_ops = {
	.name = "qingcloud",
	.provider = "qingcloud",
	.shared = false,
	.open = qingcloud_lb_open,
	.close = qingcloud_lb_close,
	.ensure = qingcloud_lb_ensure,
	.destroy = qingcloud_lb_destroy,
	.list = qingcloud_lb_list,
	.add_backend = qingcloud_lb_add_backend,
	.drain_backend = qingcloud_lb_drain_backend,
	.remove_backend = qingcloud_lb_remove_backend,
	.apply = qingcloud_lb_apply,
	.list_backends = qingcloud_lb_list_backends,
	.health = qingcloud_lb_health,
	.address = qingcloud_lb_address,
};
