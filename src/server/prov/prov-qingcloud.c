/* prov-qingcloud.c - the "qingcloud" provider: a host is a QingCloud instance
 * (RunInstances) named "herd-<server instance>-<host id>", on a VxNet named
 * "herd-<net id>" joined to a router, all through the signed API client
 * (qc.h). The name carries the host id inside the RunInstances call itself,
 * so a crash or an unknown outcome is resolved by a search, never by a second
 * launch; tags (herd_instance, herd_cluster, herd_group) are added after,
 * for people and the console, and losing them loses nothing.
 *
 * Threading: herd's launch pool calls launch for several hosts of one
 * struct prov at once (ctl/launcher.c), while the controller thread makes
 * networks and terminates. So each call takes a client of its own (a copy
 * of the account's settings with a curl handle from a small idle pool, so
 * keep-alive survives), and the caches (router, VxNets, tags) are read and
 * written under q->lock, never held across a call. Two threads missing the
 * same VxNet at once would both make it: net_create (the controller, before
 * any launch on the network) fills the cache first, and a launch that
 * still misses finds it by name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "bootstrap.h"
#include "log.h"
#include "main.h"
#include "prov-qingcloud.h"
#include "prov.h"
#include "qc.h"
#include "util.h"
#include "xalloc.h"

#define QCP_RUN_TRIES 3             /* RunInstances sent at most this often per launch */
#define QCP_RUN_RETRY_BASE_MS 500
#define QCP_RUN_RETRY_CAP_MS 4000
#define QCP_NET_JOB_WAIT_MS 10000   /* router create / join: once per network */
#define QCP_NET_EMPTY_WAIT_MS 30000 /* net_delete: for terminating instances to leave */
#define QCP_PAGE 100                /* DescribeInstances' maximum limit */
#define QCP_MAX_PAGES 100           /* list() stops at 10000 instances */
#define QCP_NETS_CACHED 16
#define QCP_TAGS_CACHED 16
#define QCP_EIP_BANDWIDTH_MBPS 10 /* an `eip: auto`'s cap (billed by traffic) */
#define QCP_CURL_IDLE 16            /* idle curl handles kept (keep-alive) */

struct qcp_net {
	char net_id[16];
	char vxnet_id[64];
	char router_id[64];  /* the router the VxNet is joined to */
	uint64_t public_sig; /* public_sig() of the endpoint applied, 0 = not yet */
};

struct qcp {
	struct qc_client c;                   /* settings only: calls use a copy (call()) */
	pthread_mutex_t lock;                 /* the caches below and the idle handles */
	pthread_mutex_t net_lock;             /* one VxNet/router made at a time (held
						 across calls; taken before lock) */
	void *idle[QCP_CURL_IDLE];
	unsigned nidle;
	char router_id[64];                   /* the account's `router`, or the one herd made */
	struct qcp_net nets[QCP_NETS_CACHED]; /* VxNets known ready (joined) */
	unsigned nets_next;
	struct {
		char name[160];
		char id[64];
	} tags[QCP_TAGS_CACHED]; /* tag name -> id, made or found */
	unsigned tags_next;
};

/* ---- pure parts (prov-qingcloud.h) ---- */

static bool
is_hex8(const char *s)
{
	for (int i = 0; i < 8; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[8] == '\0';
}

int
qcp_instance_name(const char *server_instance, const char *host_id, char *out, size_t n)
{
	int w = snprintf(out, n, "herd-%s-%s", server_instance, host_id);

	if (w < 0 || (size_t)w >= n)
		return HERR_INVALID;
	return 0;
}

bool
qcp_host_id_from_name(const char *server_instance, const char *name, char out[16])
{
	size_t il = strlen(server_instance);

	if (name == NULL || strncmp(name, "herd-", 5) != 0 ||
	    strncmp(name + 5, server_instance, il) != 0 || name[5 + il] != '-' ||
	    !is_hex8(name + 6 + il))
		return false;
	memcpy(out, name + 6 + il, 9);
	return true;
}

int
qcp_vxnet_name(const char *net_id, char *out, size_t n)
{
	int w = snprintf(out, n, "herd-%s", net_id);

	return w < 0 || (size_t)w >= n ? HERR_INVALID : 0;
}

const char *
qcp_state(const char *status, const char *transition_status)
{
	const char *t = transition_status ? transition_status : "";

	if (status == NULL || strcmp(status, "terminated") == 0 || strcmp(status, "ceased") == 0)
		return NULL;
	/* docs: command_list/instance/describe_instances.md: transition_status
	 * is one of creating, starting, stopping, restarting, suspending,
	 * resuming, terminating, recovering, resetting. A terminating one is
	 * gone already (TerminateInstances was accepted): listing it would
	 * make it an orphan to terminate again */
	if (strcmp(t, "terminating") == 0)
		return NULL;
	if (strcmp(t, "stopping") == 0 || strcmp(t, "suspending") == 0)
		return "stopped";
	if (strcmp(status, "pending") == 0)
		return "pending";
	if (strcmp(status, "running") == 0)
		return "running";
	return "stopped"; /* stopped, suspended */
}

int
qcp_instance_parse(const json_t *item, const char *server_instance, struct prov_instance *out,
		   struct herr *err)
{
	const char *id = json_string_value(json_object_get(item, "instance_id"));
	const char *name = json_string_value(json_object_get(item, "instance_name"));
	const char *st;
	json_t *nic;

	memset(out, 0, sizeof(*out));
	if (id == NULL || *id == '\0' || strlen(id) >= sizeof(out->id))
		return herr_set(err, HERR_INVALID, "instance without a valid instance_id");
	if (!qcp_host_id_from_name(server_instance, name, out->host_id))
		return 1;
	st = qcp_state(json_string_value(json_object_get(item, "status")),
		       json_string_value(json_object_get(item, "transition_status")));
	if (st == NULL)
		return 1;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->state, sizeof(out->state), "%s", st);
	nic = json_array_get(json_object_get(item, "vxnets"), 0);
	snprintf(out->private_ip, sizeof(out->private_ip), "%s",
		 json_string_value(json_object_get(nic, "private_ip")) ?: "");
	return 0;
}

int
qcp_run_params(const struct host_spec *spec, const char *server_instance, const char *vxnet_id,
	       json_t **out, struct herr *err)
{
	char name[128], nic[160];
	char *script = NULL, *b64;
	size_t udlen = 0;
	json_t *p;

	*out = NULL;
	if (spec->image == NULL || *spec->image == '\0')
		return herr_field(err, HERR_INVALID, "image",
				  "a qingcloud template needs an image (a QingCloud image id)");
	if ((spec->instance_type == NULL || *spec->instance_type == '\0') &&
	    (spec->cpu <= 0 || spec->memory_mb <= 0))
		return herr_field(err, HERR_INVALID, "instance_type",
				  "a qingcloud template needs instance_type, or cpu and memory");
	if (spec->user_data) {
		/* the agent config travels inside the bootstrap script, which
		 * fetches the agent from the server and starts it (bootstrap.h) */
		struct bootstrap_in bi = { spec->server_url, spec->agent_sha256, spec->id,
					   spec->join_token, spec->user_data, spec->ca_sha256 };
		struct herr be = HERR_INIT;

		if (spec->agent_sha256 == NULL)
			return herr_field(err, HERR_INVALID, "user_data",
					  "no agent to install: the server could not read its own binary");
		if (bootstrap_script(&bi, &script, &be) < 0)
			return herr_field(err, be.code == HERR_TOOBIG ? HERR_INVALID : be.code,
					  "user_data", "agent bootstrap: %s%s%s", be.field,
					  *be.field ? ": " : "", be.msg);
		udlen = strlen(script);
	}
	if (udlen > QCP_USERDATA_MAX_BYTES) {
		free(script);
		return herr_field(err, HERR_INVALID, "user_data",
				  "user data of %zu bytes is over QingCloud's %d", udlen,
				  QCP_USERDATA_MAX_BYTES);
	}
	if (qcp_instance_name(server_instance, spec->id, name, sizeof(name)) < 0) {
		free(script);
		return herr_set(err, HERR_INVALID, "host id '%s' makes too long a name", spec->id);
	}
	if (spec->private_ip && *spec->private_ip)
		snprintf(nic, sizeof(nic), "%s|%s", vxnet_id, spec->private_ip);
	else
		snprintf(nic, sizeof(nic), "%s", vxnet_id);
	p = json_pack("{s:s, s:i, s:s, s:[s]}", "image_id", spec->image, "count", 1,
		      "instance_name", name, "vxnets", nic);
	/* cpu + memory win over instance_type in RunInstances (docs:
	 * command_list/instance/run_instances.md), so send only one */
	if (spec->instance_type && *spec->instance_type) {
		json_object_set_new(p, "instance_type", json_string(spec->instance_type));
	} else {
		json_object_set_new(p, "cpu", json_integer(spec->cpu));
		json_object_set_new(p, "memory", json_integer(spec->memory_mb));
	}
	if (spec->keypair && *spec->keypair) {
		json_object_set_new(p, "login_mode", json_string("keypair"));
		json_object_set_new(p, "login_keypair", json_string(spec->keypair));
	} else {
		/* RunInstances requires a login mode; without a keypair the
		 * instance gets a random password nobody keeps: log in through
		 * herd (runs), or set a keypair */
		char pw[40];

		token_random(pw, sizeof(pw), "Hd1", 12);
		json_object_set_new(p, "login_mode", json_string("passwd"));
		json_object_set_new(p, "login_passwd", json_string(pw));
		sodium_memzero(pw, sizeof(pw));
	}
	if (spec->security_group && *spec->security_group)
		json_object_set_new(p, "security_group", json_string(spec->security_group));
	if (spec->name && *spec->name)
		json_object_set_new(p, "hostname", json_string(spec->name));
	if (udlen > 0) {
		size_t b64len = sodium_base64_ENCODED_LEN(udlen, sodium_base64_VARIANT_ORIGINAL);

		b64 = xmalloc(b64len);
		sodium_bin2base64(b64, b64len, (const unsigned char *)script, udlen,
				  sodium_base64_VARIANT_ORIGINAL);
		/* userdata guide: exec = the script is run at the first boot */
		json_object_set_new(p, "userdata_type", json_string("exec"));
		json_object_set_new(p, "userdata_value", json_string(b64));
		free(b64);
	}
	free(script);
	*out = p;
	return 0;
}

static int
field_err(struct herr *err, const char *path, const char *field, const char *msg)
{
	char fp[256];

	snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", field);
	return herr_field(err, HERR_INVALID, fp, "%s", msg);
}

int
qcp_config_check(const json_t *config, const char *path, struct herr *err)
{
	static const char *const need[] = { "zone", "access_key_id", "secret_file", NULL };
	struct qc_client c;
	struct herr e = HERR_INIT;
	const char *rt = json_string_value(json_object_get(config, "router"));
	const char *zone = json_string_value(json_object_get(config, "zone"));
	int rc;

	for (int i = 0; need[i]; i++)
		if (json_object_get(config, need[i]) == NULL)
			return field_err(err, path, need[i], "is required for a qingcloud account");
	if (zone == NULL || *zone == '\0')
		return field_err(err, path, "zone", "must not be empty");
	if (rt &&
	    (strncmp(rt, "rtr-", 4) != 0 || strlen(rt) >= sizeof(((struct qcp *)0)->router_id)))
		return field_err(err, path, "router", "must be a router id (rtr-...)");
	/* the client's own rules (endpoint URL, zone, key id, absolute path);
	 * it reads no file and opens no connection */
	rc = qc_client_init(&c, json_string_value(json_object_get(config, "endpoint")),
			    json_string_value(json_object_get(config, "zone")),
			    json_string_value(json_object_get(config, "access_key_id")),
			    json_string_value(json_object_get(config, "secret_file")), &e);
	qc_client_release(&c);
	if (rc < 0)
		return field_err(err, path, e.field[0] ? e.field : "endpoint", e.msg);
	return 0;
}

/* ---- calls ---- */

/* A client of this call's own: the account's settings and an idle curl
 * handle (or a new one). */
static void
client_take(struct qcp *q, struct qc_client *c)
{
	pthread_mutex_lock(&q->lock);
	*c = q->c;
	c->curl = q->nidle > 0 ? q->idle[--q->nidle] : NULL;
	pthread_mutex_unlock(&q->lock);
	if (c->curl == NULL)
		c->curl = curl_easy_init();
	BUG_ON(c->curl == NULL);
}

static void
client_give(struct qcp *q, struct qc_client *c)
{
	pthread_mutex_lock(&q->lock);
	if (q->nidle < QCP_CURL_IDLE) {
		q->idle[q->nidle++] = c->curl;
		c->curl = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	qc_client_release(c);
}

/* qc_call with params taken (decref'd here); *unknown (when not NULL):
 * whether the call's outcome is unknown (c.last.outcome_unknown). */
static int
call_st(struct qcp *q, const char *action, json_t *params, unsigned flags, json_t **resp,
	bool *unknown, struct herr *err)
{
	struct qc_client c;
	int rc;

	client_take(q, &c);
	rc = qc_call(&c, action, params, flags, resp, err);
	if (unknown)
		*unknown = c.last.outcome_unknown;
	client_give(q, &c);
	json_decref(params);
	return rc;
}

static int
call(struct qcp *q, const char *action, json_t *params, unsigned flags, json_t **resp,
     struct herr *err)
{
	return call_st(q, action, params, flags, resp, NULL, err);
}

/* The instance named name, alive (pending/running/stopped): 0 and *out,
 * 1 if none, or a call error. */
static int
find_instance(struct qcp *q, struct prov *p, const char *name, struct prov_instance *out,
	      struct herr *err)
{
	json_t *resp = NULL, *item;
	size_t i;
	int rc, found = 1;

	/* search_word matches names by substring: the exact name is checked
	 * below (describe_instances.md) */
	rc = call(q, "DescribeInstances",
		  json_pack("{s:s, s:[sss], s:i, s:i}", "search_word", name, "status", "pending",
			    "running", "stopped", "verbose", 0, "limit", QCP_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "instance_set"), i, item) {
		const char *n = json_string_value(json_object_get(item, "instance_name"));

		if (n == NULL || strcmp(n, name) != 0)
			continue;
		if (qcp_instance_parse(item, p->instance, out, err) == 0) {
			found = 0;
			break;
		}
		herr_clear(err);
	}
	json_decref(resp);
	return found;
}

static int tag_lookup(struct qcp *q, const char *name, char *out, size_t n, struct herr *err);

/* A tag named name (remembered, found, or made): its id into out. */
static int
tag_ensure(struct qcp *q, const char *name, char *out, size_t n, struct herr *err)
{
	size_t i;
	int rc;

	pthread_mutex_lock(&q->lock);
	for (i = 0; i < QCP_TAGS_CACHED; i++)
		if (q->tags[i].id[0] && strcmp(q->tags[i].name, name) == 0) {
			snprintf(out, n, "%s", q->tags[i].id);
			pthread_mutex_unlock(&q->lock);
			return 0;
		}
	pthread_mutex_unlock(&q->lock);
	rc = tag_lookup(q, name, out, n, err);
	if (rc == 0) {
		pthread_mutex_lock(&q->lock);
		i = q->tags_next++ % QCP_TAGS_CACHED;
		snprintf(q->tags[i].name, sizeof(q->tags[i].name), "%s", name);
		snprintf(q->tags[i].id, sizeof(q->tags[i].id), "%s", out);
		pthread_mutex_unlock(&q->lock);
	}
	return rc;
}

static int
tag_lookup(struct qcp *q, const char *name, char *out, size_t n, struct herr *err)
{
	json_t *resp = NULL, *t;
	size_t i;
	int rc;

	rc = call(q, "DescribeTags",
		  json_pack("{s:s, s:i}", "search_word", name, "limit", QCP_PAGE), QC_IDEMPOTENT,
		  &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "tag_set"), i, t) {
		const char *tn = json_string_value(json_object_get(t, "tag_name"));

		if (tn && strcmp(tn, name) == 0) {
			snprintf(out, n, "%s",
				 json_string_value(json_object_get(t, "tag_id")) ?: "");
			json_decref(resp);
			return 0;
		}
	}
	json_decref(resp);
	/* docs: command_list/tag/create_tag.md */
	rc = call(q, "CreateTag", json_pack("{s:s}", "tag_name", name), 0, &resp, err);
	if (rc < 0)
		return rc;
	snprintf(out, n, "%s", json_string_value(json_object_get(resp, "tag_id")) ?: "");
	json_decref(resp);
	return *out ? 0 : herr_set(err, HERR_UNAVAIL, "CreateTag answered no tag_id");
}

/* Tags resource_id (of resource_type) with "key:value" for each of tags'
 * string members. Best effort: a failure is logged, the resource kept (its
 * name carries herd's ids). */
static void
tag_resource(struct qcp *q, const json_t *tags, const char *resource_type, const char *resource_id)
{
	json_t *pairs = json_array();
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)tags, k, v) {
		struct herr err = HERR_INIT;
		char name[160], tid[64];

		/* the host id is in the name: a tag per host would grow the
		 * account's tags without bound */
		if (!json_is_string(v) || strcmp(k, "herd_host_id") == 0)
			continue;
		snprintf(name, sizeof(name), "%s:%s", k, json_string_value(v));
		if (tag_ensure(q, name, tid, sizeof(tid), &err) < 0) {
			log_warn("qingcloud: cannot make tag '%s': %s", name, err.msg);
			continue;
		}
		json_array_append_new(pairs,
				      json_pack("{s:s, s:s, s:s}", "tag_id", tid, "resource_type",
						resource_type, "resource_id", resource_id));
	}
	if (json_array_size(pairs) > 0) {
		struct herr err = HERR_INIT;
		json_t *resp = NULL;

		/* docs: command_list/tag/attach_tags.md: resource_tag_pairs.N.* */
		if (call(q, "AttachTags", json_pack("{s:O}", "resource_tag_pairs", pairs),
			 QC_IDEMPOTENT, &resp, &err) < 0) {
			log_warn("qingcloud: cannot tag %s %s: %s", resource_type, resource_id,
				 err.msg);
			/* a tag deleted by someone: look them up again next time */
			pthread_mutex_lock(&q->lock);
			memset(q->tags, 0, sizeof(q->tags));
			pthread_mutex_unlock(&q->lock);
		}
		json_decref(resp);
	}
	json_decref(pairs);
}

/* ---- networks ---- */

/* A VxNet: 0 with its id (and router id, "" if not joined, and whether
 * instances use it), 1 if none. By name (search_word, then the exact name)
 * when by_id is false, else by id (an existing VxNet named in the
 * blueprint). */
static int
find_vxnet(struct qcp *q, const char *name_or_id, bool by_id, char *id, size_t idn, char *router,
	   size_t rn, bool *in_use, struct herr *err)
{
	json_t *resp = NULL, *v;
	size_t i;
	int rc, found = 1;

	rc = call(q, "DescribeVxnets",
		  by_id ? json_pack("{s:[s], s:i}", "vxnets", name_or_id, "verbose", 1)
			: json_pack("{s:s, s:i, s:i}", "search_word", name_or_id, "verbose", 1,
				    "limit", QCP_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "vxnet_set"), i, v) {
		const char *n =
			json_string_value(json_object_get(v, by_id ? "vxnet_id" : "vxnet_name"));

		if (n == NULL || strcmp(n, name_or_id) != 0)
			continue;
		snprintf(id, idn, "%s", json_string_value(json_object_get(v, "vxnet_id")) ?: "");
		snprintf(router, rn, "%s",
			 json_string_value(
				 json_object_get(json_object_get(v, "router"), "router_id"))
				 ?: "");
		if (in_use)
			*in_use = json_array_size(json_object_get(v, "instance_ids")) > 0;
		found = 0;
		break;
	}
	json_decref(resp);
	return found;
}

static int
job_wait(struct qcp *q, json_t *resp, int64_t wait_ms, const char *what, struct herr *err)
{
	struct qc_client c;
	int rc;

	client_take(q, &c);
	rc = qc_job_done(&c, resp, now_ms() + wait_ms, what, err);
	client_give(q, &c);
	return rc;
}

/* The router VxNets join: the account's `router`, else one named
 * "herd-<server instance>", made when missing. */
static int
router_ensure(struct qcp *q, struct prov *p, struct herr *err)
{
	char name[64];
	json_t *resp = NULL, *r;
	size_t i;
	int rc;

	if (q->router_id[0])
		return 0;
	snprintf(name, sizeof(name), "herd-%s", p->instance);
	rc = call(q, "DescribeRouters",
		  json_pack("{s:s, s:[ss], s:i}", "search_word", name, "status", "pending",
			    "active", "limit", QCP_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "router_set"), i, r) {
		const char *n = json_string_value(json_object_get(r, "router_name"));

		if (n && strcmp(n, name) == 0) {
			const char *st = json_string_value(json_object_get(r, "status"));

			if (st && strcmp(st, "active") != 0) {
				rc = herr_set(err, HERR_UNAVAIL, "router '%s' is still %s", name,
					      st);
				json_decref(resp);
				return rc;
			}
			snprintf(q->router_id, sizeof(q->router_id), "%s",
				 json_string_value(json_object_get(r, "router_id")) ?: "");
			json_decref(resp);
			return 0;
		}
	}
	json_decref(resp);
	/* docs: command_list/router/create_routers.md; an outcome unknown is
	 * found by the name on the next try */
	rc = call(q, "CreateRouters",
		  json_pack("{s:s, s:i, s:s}", "router_name", name, "count", 1, "vpc_network",
			    "192.168.0.0/16"),
		  0, &resp, err);
	if (rc < 0)
		return rc;
	rc = job_wait(q, resp, QCP_NET_JOB_WAIT_MS, "CreateRouters", err);
	if (rc == 0)
		snprintf(q->router_id, sizeof(q->router_id), "%s",
			 json_string_value(json_array_get(json_object_get(resp, "routers"), 0))
				 ?: "");
	json_decref(resp);
	return rc;
}

static struct qcp_net *
net_cached(struct qcp *q, const char *net_id)
{
	for (int i = 0; i < QCP_NETS_CACHED; i++)
		if (q->nets[i].vxnet_id[0] && strcmp(q->nets[i].net_id, net_id) == 0)
			return &q->nets[i];
	return NULL;
}

/* The VxNet of net, made and joined to the router when missing: its id into
 * vxnet_id and its router's into router_id. Idempotent: found by name (or
 * by the blueprint's `vxnet` id) first; remembered once joined. An
 * existing VxNet not yet joined is joined to the network's `router` (or
 * the account's) like herd's own. */
/* The cached VxNet of net id (and its router) into the buffers: true, or
 * false when not cached. */
static bool
net_cache_get(struct qcp *q, const char *net_id, char *vxnet_id, size_t n, char *router_id,
	      size_t rn)
{
	struct qcp_net *c;

	pthread_mutex_lock(&q->lock);
	if ((c = net_cached(q, net_id)) != NULL) {
		snprintf(vxnet_id, n, "%s", c->vxnet_id);
		snprintf(router_id, rn, "%s", c->router_id);
	}
	pthread_mutex_unlock(&q->lock);
	return c != NULL;
}

static int vxnet_make(struct qcp *q, struct prov *p, const struct prov_net_spec *net,
		      char *vxnet_id, size_t n, char *router_id, size_t rn, struct herr *err);

static int
vxnet_ensure(struct qcp *q, struct prov *p, const struct prov_net_spec *net, char *vxnet_id,
	     size_t n, char *router_id, size_t rn, struct herr *err)
{
	int rc = 0;

	if (net_cache_get(q, net->id, vxnet_id, n, router_id, rn))
		return 0;
	pthread_mutex_lock(&q->net_lock);
	/* another thread may have made it while this one waited */
	if (!net_cache_get(q, net->id, vxnet_id, n, router_id, rn))
		rc = vxnet_make(q, p, net, vxnet_id, n, router_id, rn, err);
	pthread_mutex_unlock(&q->net_lock);
	return rc;
}

/* vxnet_ensure's making part, under q->net_lock. */
static int
vxnet_make(struct qcp *q, struct prov *p, const struct prov_net_spec *net, char *vxnet_id,
	   size_t n, char *router_id, size_t rn, struct herr *err)
{
	struct qcp_net *c;
	char name[64], router[64];
	json_t *resp = NULL;
	int rc;

	if (qcp_vxnet_name(net->id, name, sizeof(name)) < 0)
		return herr_set(err, HERR_INVALID, "invalid network id '%s'", net->id);
	if (net->vxnet) {
		rc = find_vxnet(q, net->vxnet, true, vxnet_id, n, router, sizeof(router), NULL,
				err);
		if (rc == 1)
			return herr_set(err, HERR_NOTFOUND,
					"network '%s': vxnet '%s' not found in zone %s", net->name,
					net->vxnet, q->c.zone);
	} else {
		rc = find_vxnet(q, name, false, vxnet_id, n, router, sizeof(router), NULL, err);
	}
	if (rc < 0)
		return rc;
	if (rc == 1) {
		/* docs: command_list/vxnet/create_vxnets.md: vxnet_type 1 =
		 * managed (a router's DHCP and addresses) */
		rc = call(q, "CreateVxnets",
			  json_pack("{s:s, s:i, s:i}", "vxnet_name", name, "vxnet_type", 1, "count",
				    1),
			  0, &resp, err);
		if (rc < 0)
			return rc;
		snprintf(vxnet_id, n, "%s",
			 json_string_value(json_array_get(json_object_get(resp, "vxnets"), 0))
				 ?: "");
		json_decref(resp);
		resp = NULL;
		router[0] = '\0';
		if (*vxnet_id == '\0')
			return herr_set(err, HERR_UNAVAIL, "CreateVxnets answered no vxnet id");
		{
			json_t *tags = json_pack("{s:s}", "herd_instance", p->instance);

			tag_resource(q, tags, "vxnet", vxnet_id);
			json_decref(tags);
		}
	}
	if (router[0] == '\0') {
		if (net->router)
			snprintf(router, sizeof(router), "%s", net->router);
		else if ((rc = router_ensure(q, p, err)) < 0)
			return rc;
		else
			snprintf(router, sizeof(router), "%s", q->router_id);
		/* docs: command_list/router/join_router.md: ip_network is the
		 * VxNet's CIDR; the router takes its first address */
		rc = call(q, "JoinRouter",
			  json_pack("{s:s, s:s, s:s, s:s}", "vxnet", vxnet_id, "router", router,
				    "ip_network", net->cidr, "manager_ip", net->gateway),
			  0, &resp, err);
		if (rc < 0)
			return rc;
		rc = job_wait(q, resp, QCP_NET_JOB_WAIT_MS, "JoinRouter", err);
		json_decref(resp);
		if (rc < 0)
			return rc;
	}
	snprintf(router_id, rn, "%s", router);
	pthread_mutex_lock(&q->lock);
	c = &q->nets[q->nets_next++ % QCP_NETS_CACHED];
	memset(c, 0, sizeof(*c));
	snprintf(c->net_id, sizeof(c->net_id), "%s", net->id);
	snprintf(c->vxnet_id, sizeof(c->vxnet_id), "%s", vxnet_id);
	snprintf(c->router_id, sizeof(c->router_id), "%s", router);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* ---- the public endpoint: the router's EIP and its port forwards ---- */

/* What herd names the EIP it allocates for net ("auto"), so that a crash
 * after AllocateEips finds it again instead of allocating a second. */
static void
eip_name(const struct prov_net_spec *net, char *out, size_t n)
{
	snprintf(out, n, "herd-%s", net->id);
}

/* The live EIP named name: 0 with its id and whether it is associated, 1
 * if none. */
static int
find_eip(struct qcp *q, const char *name, char *id, size_t idn, bool *associated, struct herr *err)
{
	json_t *resp = NULL, *e;
	size_t i;
	int rc, found = 1;

	/* docs: command_list/eip/describe_eips.md: released ones only when
	 * asked for by status */
	rc = call(q, "DescribeEips",
		  json_pack("{s:s, s:[sss], s:i}", "search_word", name, "status", "pending",
			    "available", "associated", "limit", QCP_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "eip_set"), i, e) {
		const char *n = json_string_value(json_object_get(e, "eip_name"));
		const char *st = json_string_value(json_object_get(e, "status"));

		if (n == NULL || strcmp(n, name) != 0)
			continue;
		snprintf(id, idn, "%s", json_string_value(json_object_get(e, "eip_id")) ?: "");
		*associated = st && strcmp(st, "associated") == 0;
		found = 0;
		break;
	}
	json_decref(resp);
	return found;
}

/* The EIP net wants on its router: its id into out (allocated when
 * "auto" and none is found by name). */
static int
eip_ensure(struct qcp *q, struct prov *p, const struct prov_net_spec *net, char *out, size_t n,
	   struct herr *err)
{
	char name[64];
	json_t *resp = NULL;
	bool assoc;
	int rc;

	if (strcmp(net->eip, "auto") != 0) {
		snprintf(out, n, "%s", net->eip);
		return 0;
	}
	eip_name(net, name, sizeof(name));
	if ((rc = find_eip(q, name, out, n, &assoc, err)) <= 0)
		return rc;
	/* docs: command_list/eip/allocate_eips.md: bandwidth in Mbps is
	 * required; billing_mode "traffic" costs by use, not by the size of
	 * the pipe. Not QC_IDEMPOTENT: a resend could allocate a second; an
	 * unknown outcome is found by the name on the next pass. */
	rc = call(q, "AllocateEips",
		  json_pack("{s:i, s:s, s:s, s:i}", "bandwidth", QCP_EIP_BANDWIDTH_MBPS,
			    "billing_mode", "traffic", "eip_name", name, "count", 1),
		  0, &resp, err);
	if (rc < 0)
		return rc;
	snprintf(out, n, "%s",
		 json_string_value(json_array_get(json_object_get(resp, "eips"), 0)) ?: "");
	json_decref(resp);
	/* not tagged: its name carries the network id, enough to find it */
	if (*out == '\0')
		return herr_set(err, HERR_UNAVAIL, "AllocateEips answered no eip id");
	return 0;
}

/* The EIP id router carries now ("" = none), and whether its rules and EIP
 * are applied (a crash between a change and UpdateRouters leaves them
 * not). */
static int
router_eip(struct qcp *q, const char *router, char *out, size_t n, bool *applied, struct herr *err)
{
	json_t *resp = NULL, *r;
	int rc;

	rc = call(q, "DescribeRouters", json_pack("{s:[s]}", "routers", router), QC_IDEMPOTENT,
		  &resp, err);
	if (rc < 0)
		return rc;
	r = json_array_get(json_object_get(resp, "router_set"), 0);
	if (r == NULL) {
		json_decref(resp);
		return herr_set(err, HERR_NOTFOUND, "router '%s' not found in zone %s", router,
				q->c.zone);
	}
	/* docs: command_list/router/describe_routers.md: eip {eip_id, eip_name,
	 * eip_addr}, empty when none */
	snprintf(out, n, "%s",
		 json_string_value(json_object_get(json_object_get(r, "eip"), "eip_id")) ?: "");
	/* is_applied: 0 until UpdateRouters (describe_routers.md) */
	*applied = !json_is_integer(json_object_get(r, "is_applied")) ||
		   json_integer_value(json_object_get(r, "is_applied")) != 0;
	json_decref(resp);
	return 0;
}

/* The router static name of forward f of net: "herd-<net id>-<port>-<proto>",
 * so herd's rules are told from anyone else's on a shared router. */
static void
static_name(const struct prov_net_spec *net, const struct prov_forward *f, char *out, size_t n)
{
	snprintf(out, n, "herd-%s-%d-%s", net->id, f->port, f->protocol);
}

static bool
static_matches(const json_t *s, const struct prov_net_spec *net, const struct prov_forward *f)
{
	char name[64], port[8], to_port[8];
	const char *v4 = json_string_value(json_object_get(s, "val4"));

	static_name(net, f, name, sizeof(name));
	snprintf(port, sizeof(port), "%d", f->port);
	snprintf(to_port, sizeof(to_port), "%d", f->to_port);
	return strcmp(json_string_value(json_object_get(s, "router_static_name")) ?: "", name) ==
		       0 &&
	       strcmp(json_string_value(json_object_get(s, "val1")) ?: "", port) == 0 &&
	       strcmp(json_string_value(json_object_get(s, "val2")) ?: "", f->to) == 0 &&
	       strcmp(json_string_value(json_object_get(s, "val3")) ?: "", to_port) == 0 &&
	       strcmp(v4 && *v4 ? v4 : "tcp", f->protocol) == 0;
}

/* Makes router's port forwarding rules named for net exactly want[0..n)
 * (n = 0: removes them all). *changed is set when a rule was added or
 * deleted (UpdateRouters applies them). Idempotent: DescribeRouterStatics
 * first; herd's rules are those named "herd-<net id>-…". */
static int
statics_sync(struct qcp *q, const struct prov_net_spec *net, const char *router,
	     const struct prov_forward *want, size_t n, bool *changed, struct herr *err)
{
	json_t *resp = NULL, *s, *del = json_array(), *add = json_array();
	bool have[PROV_FORWARDS_MAX] = { false };
	char prefix[32];
	size_t i;
	int rc;

	snprintf(prefix, sizeof(prefix), "herd-%s-", net->id);
	/* docs: command_list/router/describe_router_statics.md; type 1 = port
	 * forwarding */
	rc = call(q, "DescribeRouterStatics",
		  json_pack("{s:s, s:i, s:i}", "router", router, "static_type", 1, "limit",
			    QCP_PAGE),
		  QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		goto out;
	json_array_foreach(json_object_get(resp, "router_static_set"), i, s) {
		const char *nm = json_string_value(json_object_get(s, "router_static_name"));
		bool keep = false;

		if (nm == NULL || strncmp(nm, prefix, strlen(prefix)) != 0)
			continue;
		for (size_t k = 0; k < n && !keep; k++)
			if (!have[k] && static_matches(s, net, &want[k]))
				keep = have[k] = true;
		if (!keep)
			json_array_append(del, json_object_get(s, "router_static_id"));
	}
	if (json_array_size(del) > 0) {
		json_t *r2 = NULL;

		rc = call(q, "DeleteRouterStatics", json_pack("{s:O}", "router_statics", del),
			  QC_IDEMPOTENT, &r2, err);
		json_decref(r2);
		if (rc < 0 && rc != HERR_NOTFOUND)
			goto out;
		herr_clear(err);
		rc = 0;
		*changed = true;
	}
	for (size_t k = 0; k < n; k++) {
		char name[64], port[8], to_port[8];

		if (have[k])
			continue;
		static_name(net, &want[k], name, sizeof(name));
		snprintf(port, sizeof(port), "%d", want[k].port);
		snprintf(to_port, sizeof(to_port), "%d", want[k].to_port);
		/* docs: command_list/router/add_router_statics.md: static_type 1
		 * = port forwarding; val1 source port, val2 private address,
		 * val3 its port, val4 protocol */
		json_array_append_new(add, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}",
						     "static_type", 1, "router_static_name", name,
						     "val1", port, "val2", want[k].to, "val3",
						     to_port, "val4", want[k].protocol));
	}
	if (json_array_size(add) > 0) {
		json_t *r2 = NULL;

		/* not QC_IDEMPOTENT: a resend would add the rule twice; an
		 * unknown outcome is described again on the next pass (and a
		 * duplicate deleted there: only one matches per forward) */
		rc = call(q, "AddRouterStatics",
			  json_pack("{s:s, s:O}", "router", router, "statics", add), 0, &r2, err);
		json_decref(r2);
		if (rc < 0)
			goto out;
		*changed = true;
	}
out:
	json_decref(resp);
	json_decref(del);
	json_decref(add);
	return rc;
}

/* UpdateRouters: applies a router's changed rules and EIP (docs:
 * command_list/router/update_routers.md: nothing changes before it). */
static int
router_apply(struct qcp *q, const char *router, struct herr *err)
{
	json_t *resp = NULL;
	int rc;

	rc = call(q, "UpdateRouters", json_pack("{s:[s]}", "routers", router), QC_IDEMPOTENT, &resp,
		  err);
	if (rc == 0)
		rc = job_wait(q, resp, QCP_NET_JOB_WAIT_MS, "UpdateRouters", err);
	json_decref(resp);
	return rc;
}

/* A small hash of net's public endpoint (eip and forwards): a driver that
 * applied it once skips the calls until it changes. */
static uint64_t
public_sig(const struct prov_net_spec *net)
{
	uint64_t h;
	char buf[128];

	snprintf(buf, sizeof(buf), "%s|%s", net->eip ?: "", net->router ?: "");
	h = fnv1a_str(FNV1A_INIT, buf);
	for (size_t i = 0; i < net->n_forwards; i++) {
		const struct prov_forward *f = &net->forwards[i];

		snprintf(buf, sizeof(buf), "|%d>%s:%d/%s", f->port, f->to, f->to_port, f->protocol);
		h = fnv1a_str(h, buf);
	}
	return h | 1; /* 0 = not applied */
}

/* Gives router net's EIP (when it has one) and exactly net's port forwards,
 * then UpdateRouters when anything changed. A router carrying another EIP
 * is a conflict: a router has one public IP, and herd never takes one away
 * from whoever set it. */
static int
public_ensure(struct qcp *q, struct prov *p, const struct prov_net_spec *net, const char *router,
	      struct herr *err)
{
	struct qcp_net *c;
	uint64_t sig = public_sig(net);
	char want[64], cur[64];
	bool changed = false, applied = true;
	int rc;

	pthread_mutex_lock(&q->lock);
	c = net_cached(q, net->id);
	applied = c && c->public_sig == sig;
	pthread_mutex_unlock(&q->lock);
	if (applied)
		return 0;
	applied = true;
	if (net->eip) {
		if ((rc = eip_ensure(q, p, net, want, sizeof(want), err)) < 0 ||
		    (rc = router_eip(q, router, cur, sizeof(cur), &applied, err)) < 0)
			return rc;
		changed = !applied;
		if (cur[0] && strcmp(cur, want) != 0)
			return herr_set(err, HERR_CONFLICT,
					"network '%s': router %s already has EIP %s (wanted %s): "
					"a router has one public IP",
					net->name, router, cur, want);
		if (cur[0] == '\0') {
			json_t *resp = NULL;

			/* docs: command_list/router/modify_router_attributes.md:
			 * eip, applied by UpdateRouters */
			rc = call(q, "ModifyRouterAttributes",
				  json_pack("{s:s, s:s}", "router", router, "eip", want),
				  QC_IDEMPOTENT, &resp, err);
			json_decref(resp);
			if (rc < 0)
				return rc;
			changed = true;
		}
	}
	if ((rc = statics_sync(q, net, router, net->forwards, net->n_forwards, &changed, err)) < 0)
		return rc;
	if (changed && (rc = router_apply(q, router, err)) < 0)
		return rc;
	pthread_mutex_lock(&q->lock);
	if ((c = net_cached(q, net->id)) != NULL)
		c->public_sig = sig;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Undoes public_ensure for a network going away: deletes herd's rules of
 * net on router (when known), dissociates and releases the EIP herd
 * allocated for it (an `eip-…` the blueprint named is left associated:
 * someone else's). Idempotent. */
static int
public_teardown(struct qcp *q, const struct prov_net_spec *net, const char *router,
		struct herr *err)
{
	char name[64], id[64] = "";
	bool changed = false, assoc = false;
	json_t *resp = NULL;
	int rc;

	if (router[0] && (rc = statics_sync(q, net, router, NULL, 0, &changed, err)) < 0)
		return rc;
	eip_name(net, name, sizeof(name));
	rc = find_eip(q, name, id, sizeof(id), &assoc, err);
	if (rc < 0)
		return rc;
	if (rc == 1)
		id[0] = '\0'; /* none left: nothing to release */
	if (id[0] && assoc) {
		/* docs: command_list/eip/dissociate_eips.md (instances and
		 * routers alike) */
		rc = call(q, "DissociateEips", json_pack("{s:[s]}", "eips", id), QC_IDEMPOTENT,
			  &resp, err);
		if (rc == 0)
			rc = job_wait(q, resp, QCP_NET_JOB_WAIT_MS, "DissociateEips", err);
		json_decref(resp);
		resp = NULL;
		if (rc < 0)
			return rc;
		changed = true;
	}
	if (changed && router[0] && (rc = router_apply(q, router, err)) < 0)
		return rc;
	/* again: the dissociation's job has ended, the EIP is available */
	rc = id[0] ? find_eip(q, name, id, sizeof(id), &assoc, err) : 1;
	if (rc < 0)
		return rc;
	if (rc == 0) {
		/* docs: command_list/eip/release_eips.md: available ones only */
		rc = call(q, "ReleaseEips", json_pack("{s:[s]}", "eips", id), QC_IDEMPOTENT, &resp,
			  err);
		json_decref(resp);
		if (rc == HERR_NOTFOUND) {
			herr_clear(err);
			rc = 0;
		}
	}
	return rc < 0 ? rc : 0;
}

static int
qingcloud_net_create(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	struct qcp *q = p->priv;
	char vx[64], router[64];
	int rc;

	if ((rc = vxnet_ensure(q, p, net, vx, sizeof(vx), router, sizeof(router), err)) < 0)
		return rc;
	return public_ensure(q, p, net, router, err);
}

/* Removes the network's public endpoint (rules, the EIP herd allocated),
 * then leaves the router and deletes the VxNet herd made, once instances
 * no longer use it (waiting up to QCP_NET_EMPTY_WAIT_MS for terminating
 * ones; then HERR_CONFLICT). An existing VxNet (`vxnet`) stays, joined.
 * No VxNet: 0. */
static int
qingcloud_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	struct qcp *q = p->priv;
	struct qcp_net *c;
	char name[64], vx[64] = "", router[64] = "";
	bool in_use = false;
	json_t *resp = NULL;
	int rc;

	pthread_mutex_lock(&q->lock);
	if ((c = net_cached(q, net->id)) != NULL)
		memset(c, 0, sizeof(*c));
	pthread_mutex_unlock(&q->lock);
	if (qcp_vxnet_name(net->id, name, sizeof(name)) < 0)
		return herr_set(err, HERR_INVALID, "invalid network id '%s'", net->id);
	if (net->vxnet) {
		rc = find_vxnet(q, net->vxnet, true, vx, sizeof(vx), router, sizeof(router), NULL,
				err);
		if (rc < 0)
			return rc;
		if (rc == 1 && net->router)
			snprintf(router, sizeof(router), "%s", net->router);
		return public_teardown(q, net, router, err);
	}
	rc = find_vxnet(q, name, false, vx, sizeof(vx), router, sizeof(router), &in_use, err);
	if (rc < 0)
		return rc;
	if (rc == 1) /* gone: a crash may have left the EIP */
		return public_teardown(q, net, net->router ?: "", err);
	if ((rc = public_teardown(q, net, router, err)) < 0)
		return rc;
	/* TerminateInstances is asynchronous: the hosts herd just terminated
	 * stay on the VxNet until their jobs end */
	for (int64_t until = mono_ms() + QCP_NET_EMPTY_WAIT_MS; in_use && mono_ms() < until;) {
		sleep_ms(1000);
		rc = find_vxnet(q, name, false, vx, sizeof(vx), router, sizeof(router), &in_use,
				err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	if (in_use)
		return herr_set(err, HERR_CONFLICT, "vxnet %s (%s) still has instances", vx, name);
	if (router[0]) {
		rc = call(q, "LeaveRouter",
			  json_pack("{s:s, s:[s]}", "router", router, "vxnets", vx), QC_IDEMPOTENT,
			  &resp, err);
		if (rc < 0)
			return rc;
		rc = job_wait(q, resp, QCP_NET_JOB_WAIT_MS, "LeaveRouter", err);
		json_decref(resp);
		resp = NULL;
		if (rc < 0)
			return rc;
	}
	rc = call(q, "DeleteVxnets", json_pack("{s:[s]}", "vxnets", vx), QC_IDEMPOTENT, &resp, err);
	json_decref(resp);
	if (rc == HERR_NOTFOUND) {
		herr_clear(err);
		return 0;
	}
	return rc < 0 ? rc : 0;
}

/* ---- hosts ---- */

static int
qingcloud_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
		 struct herr *err)
{
	struct qcp *q = p->priv;
	char name[128], vx[64], rt[64];
	json_t *params = NULL, *resp = NULL;
	const char *iid;
	int rc;

	if (qcp_instance_name(p->instance, spec->id, name, sizeof(name)) < 0)
		return herr_set(err, HERR_INVALID, "host id '%s' makes too long a name", spec->id);
	/* 1. idempotent per host id: the instance may exist from a launch a
	 * crash or a timeout interrupted */
	rc = find_instance(q, p, name, out, err);
	if (rc <= 0)
		return rc;
	if ((rc = vxnet_ensure(q, p, spec->net, vx, sizeof(vx), rt, sizeof(rt), err)) < 0)
		return rc;
	if ((rc = qcp_run_params(spec, p->instance, vx, &params, err)) < 0)
		return rc;
	/* 2. not QC_IDEMPOTENT: QingCloud's RunInstances takes no client token,
	 * so the client never resends it by itself; POST: the user data can be
	 * long. A 5000/5100 or a lost answer leaves the outcome unknown: the
	 * name says whether it happened (after a pause, so an instance still
	 * being registered can show), and only a search that finds nothing
	 * allows another try, at most QCP_RUN_TRIES in all. The rare instance
	 * made by a try whose answer was lost and that the search missed is a
	 * second instance for this host id: sweep_orphans removes it (it is not
	 * the instance herd recorded). */
	for (int t = 0;; t++) {
		struct herr e2 = HERR_INIT;
		bool unknown = false;
		int f;

		rc = call_st(q, "RunInstances", json_incref(params), QC_POST, &resp, &unknown, err);
		if (rc == 0 || !unknown)
			break;
		sleep_ms(qc_backoff_ms(t, QCP_RUN_RETRY_BASE_MS, QCP_RUN_RETRY_CAP_MS,
				       randombytes_random()) + QCP_RUN_RETRY_BASE_MS);
		f = find_instance(q, p, name, out, &e2);
		if (f == 0) {
			json_decref(params);
			herr_clear(err);
			return 0;
		}
		/* the search itself failed: unknown stays unknown, no resend */
		if (f < 0 || t + 1 >= QCP_RUN_TRIES)
			break;
		log_info("qingcloud: RunInstances for %s: %s; not made, trying again", name,
			 err->msg);
		herr_clear(err);
	}
	json_decref(params);
	if (rc < 0)
		return rc;
	iid = json_string_value(json_array_get(json_object_get(resp, "instances"), 0));
	if (iid == NULL || strlen(iid) >= sizeof(out->id)) {
		json_decref(resp);
		return herr_set(err, HERR_UNAVAIL, "RunInstances answered no instance id");
	}
	if ((rc = failpoint("qingcloud_run_answered", err)) < 0) { /* made, not tagged (prov.h) */
		json_decref(resp);
		return rc;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", iid);
	snprintf(out->host_id, sizeof(out->host_id), "%s", spec->id);
	snprintf(out->private_ip, sizeof(out->private_ip), "%s", spec->private_ip ?: "");
	snprintf(out->state, sizeof(out->state), "pending");
	if (spec->tags)
		tag_resource(q, spec->tags, "instance", iid);
	/* 3. the RunInstances job is not waited for: the host's own agent says
	 * when it is up, the caller records only the id, and a wait would hold
	 * a launch worker for the job's length (seconds on QingCloud) and cost
	 * DescribeJobs calls; the instance is returned pending, as it is */
	json_decref(resp);
	return 0;
}

static int
qingcloud_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err)
{
	struct qcp *q = p->priv;
	struct prov_instance *v = NULL;
	size_t len = 0, cap = 0;
	char prefix[64];

	*out = NULL;
	*n = 0;
	snprintf(prefix, sizeof(prefix), "herd-%s-", p->instance);
	for (int page = 0; page < QCP_MAX_PAGES; page++) {
		json_t *resp = NULL, *item;
		size_t i, got;
		int rc;

		rc = call(q, "DescribeInstances",
			  json_pack("{s:s, s:[sss], s:i, s:i, s:i}", "search_word", prefix,
				    "status", "pending", "running", "stopped", "verbose", 0,
				    "offset", page * QCP_PAGE, "limit", QCP_PAGE),
			  QC_IDEMPOTENT, &resp, err);
		if (rc < 0) {
			free(v);
			return rc;
		}
		got = json_array_size(json_object_get(resp, "instance_set"));
		json_array_foreach(json_object_get(resp, "instance_set"), i, item) {
			struct prov_instance pi;
			struct herr e2 = HERR_INIT;

			if (qcp_instance_parse(item, p->instance, &pi, &e2) != 0)
				continue;
			if (len == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[len++] = pi;
		}
		json_decref(resp);
		if (got < QCP_PAGE)
			break;
	}
	*out = v;
	*n = len;
	return 0;
}

/* Whether instance id is gone (terminated, ceased, or unknown). */
static bool
instance_gone(struct qcp *q, const char *id)
{
	struct herr err = HERR_INIT;
	json_t *resp = NULL, *item;
	bool gone;

	if (call(q, "DescribeInstances",
		 json_pack("{s:[s], s:[sssss]}", "instances", id, "status", "pending", "running",
			   "stopped", "terminated", "ceased"),
		 QC_IDEMPOTENT, &resp, &err) < 0)
		return false;
	item = json_array_get(json_object_get(resp, "instance_set"), 0);
	gone = item == NULL ||
	       qcp_state(json_string_value(json_object_get(item, "status")), NULL) == NULL ||
	       strcmp(json_string_value(json_object_get(item, "transition_status")) ?: "",
		      "terminating") == 0;
	json_decref(resp);
	return gone;
}

static int
qingcloud_terminate(struct prov *p, const char *instance_id, const char *host_id, struct herr *err)
{
	struct qcp *q = p->priv;
	struct prov_instance found;
	json_t *resp = NULL;
	int rc;

	if (instance_id == NULL || *instance_id == '\0') {
		/* never recorded (a crash): the name finds it */
		char name[128];

		if (host_id == NULL ||
		    qcp_instance_name(p->instance, host_id, name, sizeof(name)) < 0)
			return 0;
		if ((rc = find_instance(q, p, name, &found, err)) != 0)
			return rc < 0 ? rc : 0;
		instance_id = found.id;
	}
	/* docs: command_list/instance/terminate_instances.md; asking twice is
	 * harmless, so it may be resent */
	rc = call(q, "TerminateInstances", json_pack("{s:[s]}", "instances", instance_id),
		  QC_IDEMPOTENT, &resp, err);
	json_decref(resp);
	if (rc == HERR_NOTFOUND || (rc == HERR_FORBIDDEN && instance_gone(q, instance_id))) {
		/* 2100, or 1400 for one already terminating/terminated/ceased */
		herr_clear(err);
		return 0;
	}
	return rc < 0 ? rc : 0;
}

/* ---- account ---- */

static int
qingcloud_check(struct prov *p, char *msg, size_t msg_len, struct herr *err)
{
	struct qcp *q = p->priv;
	json_t *resp = NULL, *z;
	char status[32] = "";
	bool found = false;
	size_t i;
	int rc;

	/* docs: command_list/zone/describe_zones.md. A signed call: 1200 says
	 * the key is wrong, 1300 the clock (qc_call's words) */
	rc = call(q, "DescribeZones", json_object(), QC_IDEMPOTENT, &resp, err);
	if (rc < 0)
		return rc;
	json_array_foreach(json_object_get(resp, "zone_set"), i, z)
		if (strcmp(json_string_value(json_object_get(z, "zone_id")) ?: "", q->c.zone) ==
		    0) {
			snprintf(status, sizeof(status), "%s",
				 json_string_value(json_object_get(z, "status")) ?: "");
			found = true;
		}
	json_decref(resp);
	if (!found)
		return herr_field(err, HERR_INVALID, "zone",
				  "zone '%s' is not one of this account's zones (DescribeZones)",
				  q->c.zone);
	if (strcmp(status, "active") != 0)
		return herr_field(err, HERR_UNAVAIL, "zone", "zone '%s' is %s", q->c.zone, status);
	/* a zone-bound call proves the zone takes this key */
	rc = call(q, "DescribeInstances", json_pack("{s:i}", "limit", 1), QC_IDEMPOTENT, &resp,
		  err);
	json_decref(resp);
	if (rc < 0)
		return rc;
	snprintf(msg, msg_len, "zone %s reachable, credentials accepted", q->c.zone);
	return 0;
}

static int
qingcloud_open(struct prov *p, struct herr *err)
{
	struct qcp *q = xcalloc(1, sizeof(*q));
	const json_t *cf = p->config;
	const char *rt = json_string_value(json_object_get(cf, "router"));
	int rc;

	rc = qc_client_init(&q->c, json_string_value(json_object_get(cf, "endpoint")),
			    json_string_value(json_object_get(cf, "zone")),
			    json_string_value(json_object_get(cf, "access_key_id")),
			    json_string_value(json_object_get(cf, "secret_file")), err);
	if (rc < 0) {
		free(q);
		return rc;
	}
	/* which server made a call, in the cloud's own request logs (several
	 * servers share a store: docs/ha.md) */
	snprintf(q->c.user_agent, sizeof(q->c.user_agent), "herd/%s%s%s%s", HERD_VERSION,
		 p->server_id[0] ? " (server " : "", p->server_id, p->server_id[0] ? ")" : "");
	/* a controller pass must not stall for minutes on one account */
	q->c.timeout_ms = 15000;
	q->c.max_attempts = 3;
	if (rt)
		snprintf(q->router_id, sizeof(q->router_id), "%s", rt);
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->net_lock, NULL);
	q->idle[q->nidle++] = q->c.curl;   /* calls take handles from here */
	q->c.curl = NULL;
	p->priv = q;
	return 0;
}

static void
qingcloud_close(struct prov *p)
{
	struct qcp *q = p->priv;

	if (q == NULL)
		return;
	while (q->nidle > 0) {
		struct qc_client c = { .curl = q->idle[--q->nidle] };

		qc_client_release(&c);
	}
	qc_client_release(&q->c);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->net_lock);
	free(q);
	p->priv = NULL;
}

/* Of struct host_spec, the qingcloud driver ignores state_dir, agent_bin,
 * mem_limit_bytes and cpu_limit_pct (the instance type sizes a VM) and
 * client_token (RunInstances has no idempotency field: the instance name
 * carries the host id and is searched for instead). */
const struct prov_ops prov_qingcloud_ops = {
	.name = "qingcloud",
	.listens_on_gateway = false, /* hosts use server_url / --advertise-url */
	.open = qingcloud_open,
	.close = qingcloud_close,
	.net_create = qingcloud_net_create,
	.net_delete = qingcloud_net_delete,
	.launch = qingcloud_launch,
	.terminate = qingcloud_terminate,
	.list = qingcloud_list,
	.config_check = qcp_config_check,
	.check = qingcloud_check,
};
