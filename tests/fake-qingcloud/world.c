/*
 * world.c - the fake QingCloud's world and its actions. The world is one
 * JSON document ({"instances":[…],"jobs":[…],"tags":[…],"vxnets":[…],
 * "routers":[…],"router_statics":[…],"eips":[…],"loadbalancers":[…],
 * "lb_listeners":[…],"lb_backends":[…]}) under a mutex, saved to
 * STATE_DIR/world.json (write to a temporary file, then rename) by the
 * ticker when it has changed, at most once per save_gap() (1 s, or 10 x the
 * last save when the world is large: the serialisation holds the mutex, the
 * write does not) and on shutdown, so a restarted fake keeps its world and a
 * kill -9 loses at most the changes of that gap. Time is passed in:
 * world_tick(now_ms) is the whole state machine. Load balancers and router
 * rules change what forwards only when an UpdateLoadBalancers/UpdateRouters
 * job ends (lb_apply, router_apply → real_apply → lb.c).
 *
 * Parameter and field names follow yunify/qingcloud-docs
 * content/development_docs/api/command_list/<resource>/<action>.md and the
 * SDK (e.g. qingcloud-sdk-go service/instance.go).
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <sodium.h>

#include "fqc.h"

struct world {
	pthread_mutex_t lock;
	const struct fqc_config *cfg;
	json_t *root;
	json_t *pids;   /* instance_id → pid of the instance's init (netns; memory only) */
	json_t *hapids; /* loadbalancer/router id → pid of its haproxy (netns; memory only) */
	json_t *tagidx; /* resource id → {tag_id: true} of its pairs (memory only; may
			   name deleted tags: readers go through "tags") */
	json_t *instidx; /* instance_id → its object in "instances" (memory only;
			    instances are never removed from the array) */
	int64_t due_ms;  /* world_tick scans nothing before this: no pending or
			    terminated instance, no unfinished job is due earlier */
	struct inst_ent { /* every instance, in the array's order: a name search
			     reads these, no JSON key lookups per instance */
		json_t *inst;
		const char *id, *name; /* its members' (never replaced) */
	} *ents;
	size_t nents, capents;
	char path[4096];
	bool dirty;
	int64_t saved_ms;   /* when the last save began (ticker's clock) */
	int64_t save_cost_ms; /* how long it took */
};

#define SAVE_GAP_MIN_MS 1000 /* the least time between two saves */
#define SAVE_COST_SHARE 10   /* and at least this many times the last save's cost */

/* --- helpers ------------------------------------------------------------- */

static void
iso_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
jtime(int64_t ms)
{
	char b[32];

	iso_time(ms, b, sizeof(b));
	return json_string(b);
}

static void
new_id(const char *prefix, size_t n, char *out, size_t len)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t i, p = (size_t)snprintf(out, len, "%s-", prefix);

	for (i = 0; i < n && p + 1 < len; i++)
		out[p++] = al[randombytes_uniform(sizeof(al) - 1)];
	out[p] = '\0';
}

static const char *
sget(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static int64_t
iget(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static json_t *
find_by(json_t *arr, const char *field, const char *id)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
		if (strcmp(sget(o, field), id) == 0)
			return o;
	return NULL;
}

/* The instance with id, or NULL: the index, not a scan (AttachTags,
 * Terminate, a job's end ran one per call: O(N) each at 10,000). */
static json_t *
inst_find(struct world *w, const char *id)
{
	return json_object_get(w->instidx, id);
}

/* inst was appended to "instances": its entry for name searches. */
static void
inst_ent_add(struct world *w, json_t *inst)
{
	if (w->nents == w->capents) {
		size_t cap = w->capents ? w->capents * 2 : 256;
		struct inst_ent *e = realloc(w->ents, cap * sizeof(*e));

		if (e == NULL)
			abort();   /* the fake's own memory: nothing to answer with */
		w->ents = e;
		w->capents = cap;
	}
	w->ents[w->nents].inst = inst;
	w->ents[w->nents].id = sget(inst, "instance_id");
	w->ents[w->nents].name = sget(inst, "instance_name");
	w->nents++;
}

/* Something may change state at or after at_ms: world_tick scans again. */
static void
due_at(struct world *w, int64_t at_ms)
{
	if (at_ms < w->due_ms)
		w->due_ms = at_ms;
}

/* "instances.N": segments equal, "N" matching a run of digits. */
static bool
key_matches(const char *pat, const char *key)
{
	const char *start = pat;

	while (*pat != '\0' && *key != '\0') {
		/* a whole segment "N" */
		if (pat[0] == 'N' && (pat == start || pat[-1] == '.') &&
		    (pat[1] == '.' || pat[1] == '\0')) {
			if (*key < '0' || *key > '9')
				return false;
			while (*key >= '0' && *key <= '9')
				key++;
			pat++;
			continue;
		}
		if (*pat != *key)
			return false;
		pat++;
		key++;
	}
	return *pat == '\0' && *key == '\0';
}

/* Every value whose key is PREFIX.N, in the order of N. */
static json_t *
list_param(const struct fqc_req *r, const char *prefix)
{
	json_t *out = json_array();
	char pat[FQC_MAX_KEY + 8];
	long idx[FQC_MAX_PARAMS];
	const char *val[FQC_MAX_PARAMS];
	size_t i, j, n = 0, pl = strlen(prefix);

	snprintf(pat, sizeof(pat), "%s.N", prefix);
	for (i = 0; i < r->nparams; i++) {
		if (!key_matches(pat, r->params[i].key) || r->params[i].value[0] == '\0')
			continue;
		idx[n] = strtol(r->params[i].key + pl + 1, NULL, 10);
		val[n++] = r->params[i].value;
	}
	for (i = 1; i < n; i++) /* insertion sort: n ≤ FQC_MAX_PARAMS */
		for (j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
			long ti = idx[j];
			const char *tv = val[j];

			idx[j] = idx[j - 1];
			val[j] = val[j - 1];
			idx[j - 1] = ti;
			val[j - 1] = tv;
		}
	for (i = 0; i < n; i++)
		json_array_append_new(out, json_string(val[i]));
	return out;
}

static bool
in_list(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static int fail(json_t *resp, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(json_t *resp, int code, const char *fmt, ...)
{
	va_list ap;

	char m[512];

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	json_object_set_new(resp, "ret_code", json_integer(code));
	json_object_set_new(resp, "message", json_string(m));
	return code;
}

/* An integer parameter in [lo, hi], DEF when absent; -1 with RESP filled when bad. */
static int
int_param(const struct fqc_req *r, const char *k, long lo, long hi, long def, long *out,
	  json_t *resp)
{
	const char *v = fqc_param_get(r, k);
	char *end;
	long n;

	*out = def;
	if (v == NULL || v[0] == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi) {
		char m[256];

		snprintf(m, sizeof(m),
			 "InvalidParameterValue, [%s] should be an integer from %ld to %ld", k, lo,
			 hi);
		json_object_set_new(resp, "ret_code", json_integer(FQC_ERR_PARAM));
		json_object_set_new(resp, "message", json_string(m));
		return -1;
	}
	*out = n;
	return 0;
}

/* Tag ids attached to RESOURCE_ID. */
static json_t *
tags_of(struct world *w, const char *resource_id, bool full)
{
	json_t *out = json_array(), *t, *p;
	size_t i, j;

	json_array_foreach(json_object_get(w->root, "tags"), i, t)
		json_array_foreach(json_object_get(t, "pairs"), j, p)
			if (strcmp(sget(p, "resource_id"), resource_id) == 0) {
				if (full)
					json_array_append_new(out,
							      json_pack("{s:s, s:s, s:s}", "tag_id",
									sget(t, "tag_id"),
									"tag_name",
									sget(t, "tag_name"),
									"color", sget(t, "color")));
				else
					json_array_append_new(out, json_string(sget(t, "tag_id")));
			}
	return out;
}

/* True when no tags.N filter was given or RESOURCE_ID carries one of them. */
static bool
tag_filter_ok(struct world *w, const json_t *filter, const char *resource_id)
{
	json_t *have;
	size_t i;
	json_t *v;
	bool ok = false;

	if (json_array_size(filter) == 0)
		return true;
	have = tags_of(w, resource_id, false);
	json_array_foreach(have, i, v)
		if (in_list(filter, json_string_value(v)))
			ok = true;
	json_decref(have);
	return ok;
}

static bool
search_ok(const char *word, const char *id, const char *name)
{
	return word == NULL || word[0] == '\0' || strstr(id, word) != NULL ||
	       strstr(name, word) != NULL;
}

static const char *
new_job(struct world *w, const char *action, json_t *resource_ids, int64_t now, int64_t done_ms)
{
	char id[32], ids[4096] = "";
	size_t i, n = 0;
	json_t *v, *job;

	new_id("j", 8, id, sizeof(id));
	json_array_foreach(resource_ids, i, v)
		n += (size_t)snprintf(ids + n, n < sizeof(ids) ? sizeof(ids) - n : 0, "%s%s",
				      i ? "," : "", json_string_value(v));
	job = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "job_id", id, "job_action", action,
			"status", "pending", "resource_ids", ids, "create_ms", (json_int_t)now,
			"status_ms", (json_int_t)now, "done_ms", (json_int_t)done_ms);
	json_array_append_new(json_object_get(w->root, "jobs"), job);
	due_at(w, now);
	/* bounded: past FQC_MAX_JOBS the oldest finished jobs are forgotten */
	{
		json_t *jobs = json_object_get(w->root, "jobs");

		for (i = 0; json_array_size(jobs) > FQC_MAX_JOBS && i < json_array_size(jobs);)
			if (strcmp(sget(json_array_get(jobs, i), "status"), "successful") == 0)
				json_array_remove(jobs, i);
			else
				i++;
	}
	w->dirty = true;
	return sget(job, "job_id");
}

/* --- addresses: JoinRouter's ip_network ----------------------------------- */

static bool
parse_cidr(const char *s, uint32_t *net, int *plen)
{
	char a[32];
	const char *slash = strchr(s, '/');
	struct in_addr in;
	char *end;
	long n;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return false;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	n = strtol(slash + 1, &end, 10);
	if (*end != '\0' || n < 16 || n > 29 || inet_pton(AF_INET, a, &in) != 1)
		return false;
	*plen = (int)n;
	*net = ntohl(in.s_addr) & (0xffffffffu << (32 - n));
	return true;
}

static void
ip_str(uint32_t ip, char *out, size_t len)
{
	struct in_addr in = { .s_addr = htonl(ip) };

	inet_ntop(AF_INET, &in, out, (socklen_t)len);
}

static bool
ip_in_use(struct world *w, const char *vxnet_id, const char *ip)
{
	json_t *i, *n;
	size_t a, b;

	json_array_foreach(json_object_get(w->root, "instances"), a, i) {
		if (strcmp(sget(i, "status"), "ceased") == 0)
			continue;
		json_array_foreach(json_object_get(i, "vxnets"), b, n)
			if (strcmp(sget(n, "vxnet_id"), vxnet_id) == 0 &&
			    strcmp(sget(n, "private_ip"), ip) == 0)
				return true;
	}
	/* a private load balancer holds an address of its VxNet too */
	json_array_foreach(json_object_get(w->root, "loadbalancers"), a, i)
		if (strcmp(sget(i, "status"), "deleted") != 0 &&
		    strcmp(sget(i, "vxnet_id"), vxnet_id) == 0 &&
		    strcmp(sget(i, "private_ip"), ip) == 0)
			return true;
	return false;
}

/* The next free address of the VxNet's ip_network (.2 upward), or "". */
static void
alloc_ip(struct world *w, json_t *vx, char *out, size_t len)
{
	uint32_t net, h;
	int plen;
	const char *gw = sget(vx, "manager_ip");

	out[0] = '\0';
	if (!parse_cidr(sget(vx, "ip_network"), &net, &plen))
		return;
	for (h = 2; h < (1u << (32 - plen)) - 1; h++) {
		ip_str(net + h, out, len);
		if (strcmp(out, gw) != 0 && !ip_in_use(w, sget(vx, "vxnet_id"), out))
			return;
	}
	out[0] = '\0';
}

/* --- real instances --------------------------------------------------------- */

static void
metadata_of(json_t *inst, char *out, size_t len)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "instance_id",
			      sget(inst, "instance_id"), "instance_name",
			      sget(inst, "instance_name"), "image_id", sget(inst, "image_id"),
			      "vcpus_current", (json_int_t)iget(inst, "vcpus_current"),
			      "memory_current", (json_int_t)iget(inst, "memory_current"), "zone_id",
			      sget(inst, "zone_id"));
	char *s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(out, len, "%s", s ? s : "{}");
	free(s);
	json_decref(m);
}

static void
real_start(struct world *w, json_t *inst)
{
	struct inst_net net = { 0 };
	json_t *nic = json_array_get(json_object_get(inst, "vxnets"), 0);
	char md[2048];
	int pid = 0;

	if (!w->cfg->netns)
		return;
	if (nic != NULL) {
		json_t *vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id",
				     sget(nic, "vxnet_id"));

		net.vxnet_id = sget(nic, "vxnet_id");
		if (vx != NULL && sget(vx, "ip_network")[0] != '\0') {
			char gwc[64];
			uint32_t n;
			int plen;

			net.ip_network = sget(vx, "ip_network");
			net.gateway_ip = sget(vx, "manager_ip");
			net.private_ip = sget(nic, "private_ip");
			if (parse_cidr(net.ip_network, &n, &plen)) {
				snprintf(gwc, sizeof(gwc), "%s/%d", net.gateway_ip, plen);
				inst_bridge_ensure(w->cfg, net.vxnet_id, gwc);
			}
		} else {
			inst_bridge_ensure(w->cfg, net.vxnet_id, NULL);
		}
	}
	metadata_of(inst, md, sizeof(md));
	if (inst_start(w->cfg, sget(inst, "instance_id"), sget(inst, "hostname"), &net,
		       sget(inst, "userdata_type"), sget(inst, "userdata_value"),
		       sget(inst, "userdata_path"), sget(inst, "userdata_file"), md, &pid) == 0)
		json_object_set_new(w->pids, sget(inst, "instance_id"), json_integer(pid));
}

static void
real_stop(struct world *w, const char *instance_id)
{
	json_t *p = json_object_get(w->pids, instance_id);

	if (!w->cfg->netns)
		return;
	inst_stop(w->cfg, instance_id, p ? (int)json_integer_value(p) : 0);
	json_object_del(w->pids, instance_id);
}

/* --- actions -------------------------------------------------------------- */

static int
act_describe_zones(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *want = list_param(r, "zones"), *set = json_array();
	size_t i;

	for (i = 0; i < w->cfg->nzones; i++)
		if (json_array_size(want) == 0 || in_list(want, w->cfg->zones[i]))
			json_array_append_new(set, json_pack("{s:s, s:s}", "zone_id",
							     w->cfg->zones[i], "status", "active"));
	json_object_set_new(resp, "total_count", json_integer((json_int_t)json_array_size(set)));
	json_object_set_new(resp, "zone_set", set);
	json_decref(want);
	return 0;
}

static bool
live(const json_t *inst)
{
	const char *s = sget(inst, "status");

	return strcmp(s, "terminated") != 0 && strcmp(s, "ceased") != 0;
}

static bool
abs_path_ok(const char *p)
{
	return p[0] == '/' && strlen(p) < 256 && strstr(p, "..") == NULL && strstr(p, "//") == NULL;
}

/* RunInstances: development_docs/api/command_list/instance/run_instances.md */
static int
act_run_instances(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *image = fqc_param_get(r, "image_id");
	const char *type = fqc_param_get(r, "instance_type");
	const char *name = fqc_param_get(r, "instance_name");
	const char *login = fqc_param_get(r, "login_mode");
	const char *udt = fqc_param_get(r, "userdata_type");
	const char *udv = fqc_param_get(r, "userdata_value");
	const char *udp = fqc_param_get(r, "userdata_path");
	const char *udf = fqc_param_get(r, "userdata_file");
	const char *hostname = fqc_param_get(r, "hostname");
	json_t *nets = list_param(r, "vxnets"), *ids = json_array(), *v, *inst;
	long count, cpu, mem, nlive = 0;
	size_t i, k;
	int code = 0;

	if (image == NULL || image[0] == '\0') {
		code = fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required", "image_id");
		goto out;
	}
	if (login == NULL || (strcmp(login, "keypair") != 0 && strcmp(login, "passwd") != 0)) {
		code = fail(resp, FQC_ERR_PARAM,
			    "InvalidParameterValue, [%s] should be keypair or passwd",
			    "login_mode");
		goto out;
	}
	if (strcmp(login, "keypair") == 0 && fqc_param_get(r, "login_keypair") == NULL) {
		code = fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, [%s] is required when login_mode is keypair",
			    "login_keypair");
		goto out;
	}
	if (strcmp(login, "passwd") == 0 && fqc_param_get(r, "login_passwd") == NULL) {
		code = fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, [%s] is required when login_mode is passwd",
			    "login_passwd");
		goto out;
	}
	if (int_param(r, "count", 1, 100, 1, &count, resp) != 0 ||
	    int_param(r, "cpu", 1, 64, 0, &cpu, resp) != 0 ||
	    int_param(r, "memory", 512, 524288, 0, &mem, resp) != 0) {
		code = FQC_ERR_PARAM;
		goto out;
	}
	if ((cpu == 0 || mem == 0) && (type == NULL || type[0] == '\0')) {
		code = fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, [%s] or cpu and memory are required",
			    "instance_type");
		goto out;
	}
	if (cpu == 0 || mem == 0) { /* the docs' instance_type table: c<cpu>m<GB> families */
		cpu = 1;
		mem = 1024;
		if (sscanf(type, "c%ldm%ld", &cpu, &mem) == 2)
			mem *= 1024;
	}
	if (udt != NULL && udt[0] != '\0') {
		if (strcmp(udt, "tar") == 0) {
			code = fail(
				resp, FQC_ERR_PARAM,
				"InvalidParameterValue, userdata_type [%s] needs UploadUserDataAttachment, not in this fake yet",
				udt);
			goto out;
		}
		if (strcmp(udt, "plain") != 0 && strcmp(udt, "exec") != 0) {
			code = fail(
				resp, FQC_ERR_PARAM,
				"InvalidParameterValue, [userdata_type] should be plain, exec or tar, not [%s]",
				udt);
			goto out;
		}
		{
			/* docs: plain/exec values are base64, at most 4K once decoded */
			unsigned char bin[4097];
			size_t bl;

			if (udv == NULL ||
			    sodium_base642bin(bin, sizeof(bin), udv, strlen(udv), "\n\r ", &bl,
					      NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
			    bl > 4096) {
				code = fail(
					resp, FQC_ERR_PARAM,
					"InvalidParameterValue, [%s] should be base64 of at most 4K",
					"userdata_value");
				goto out;
			}
		}
	}
	/* docs (userdata guide): an invalid path falls back to the default */
	if (udp == NULL || !abs_path_ok(udp))
		udp = "/etc/qingcloud/userdata";
	if (udf == NULL || !abs_path_ok(udf))
		udf = "/etc/rc.local";
	json_array_foreach(nets, i, v) {
		char vid[64];
		const char *s = json_string_value(v), *bar = strchr(s, '|');

		snprintf(vid, sizeof(vid), "%.*s", bar ? (int)(bar - s) : (int)strlen(s), s);
		if (strcmp(vid, "vxnet-0") != 0 &&
		    find_by(json_object_get(w->root, "vxnets"), "vxnet_id", vid) == NULL) {
			code = fail(resp, FQC_ERR_NOT_FOUND,
				    "ResourceNotFound, resource [%s] not found", vid);
			goto out;
		}
	}
	/* counted only when it could matter: every instance ever made (live
	 * or not) and the request within the quota cannot exceed it */
	if (json_array_size(json_object_get(w->root, "instances")) + (size_t)count >
	    (size_t)w->cfg->quota_instances)
		json_array_foreach(json_object_get(w->root, "instances"), i, inst)
			if (live(inst))
				nlive++;
	if (nlive + count > w->cfg->quota_instances) {
		char m[256];

		snprintf(
			m, sizeof(m),
			"QuotaExceeded, quota of [instance] exceeded, %lld in use, %ld requested, quota %lld",
			(long long)nlive, count, (long long)w->cfg->quota_instances);
		code = fail(resp, FQC_ERR_QUOTA, "%s", m);
		goto out;
	}
	for (k = 0; k < (size_t)count; k++) {
		char id[32];
		json_t *nics = json_array();

		new_id("i", 8, id, sizeof(id));
		json_array_foreach(nets, i, v) {
			char vid[64], ip[64] = "";
			const char *s = json_string_value(v), *bar = strchr(s, '|');
			json_t *vx;

			snprintf(vid, sizeof(vid), "%.*s", bar ? (int)(bar - s) : (int)strlen(s),
				 s);
			vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id", vid);
			if (bar != NULL && count == 1)
				snprintf(ip, sizeof(ip), "%s", bar + 1);
			else if (vx != NULL)
				alloc_ip(w, vx, ip, sizeof(ip));
			json_array_append_new(nics, json_pack("{s:s, s:s}", "vxnet_id", vid,
							      "private_ip", ip));
		}
		inst = json_pack(
			"{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			"instance_id", id, "instance_name", name ? name : "", "image_id", image,
			"instance_type", type ? type : "", "vcpus_current", (json_int_t)cpu,
			"memory_current", (json_int_t)mem, "status", "pending", "transition_status",
			"starting", "create_ms", (json_int_t)now, "status_ms", (json_int_t)now,
			"vxnets", nics, "userdata_type", udt ? udt : "", "userdata_value",
			udv ? udv : "", "userdata_path", udp, "userdata_file", udf,
			/* the image's default hostname is the instance id */
			"hostname", hostname && hostname[0] ? hostname : id, "login_mode", login,
			"login_keypair",
			fqc_param_get(r, "login_keypair") ? fqc_param_get(r, "login_keypair") : "",
			"zone_id", fqc_param_get(r, "zone"));
		json_array_append_new(json_object_get(w->root, "instances"), inst);
		json_object_set(w->instidx, id, inst);
		inst_ent_add(w, inst);
		due_at(w, now);
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w, "RunInstances", ids, now,
						now + (w->cfg->job_ms > w->cfg->pending_ms
							       ? w->cfg->job_ms
							       : w->cfg->pending_ms))));
	json_object_set(resp, "instances", ids);
	w->dirty = true;
out:
	json_decref(ids);
	json_decref(nets);
	return code;
}

/* The full tags (as tags_of(…, true)) of every resource named in ids, an
 * object id → array: one pass over the tag pairs for a whole page of
 * resources, not one per resource. */
static json_t *
tags_of_all(struct world *w, json_t *ids)
{
	json_t *out = json_object(), *t, *v, *has, *a;
	size_t i, j;

	json_array_foreach(ids, i, v) {
		json_object_set_new(out, json_string_value(v), a = json_array());
		if ((has = json_object_get(w->tagidx, json_string_value(v))) == NULL)
			continue;
		/* the order of tags_of: the tags' order */
		json_array_foreach(json_object_get(w->root, "tags"), j, t)
			if (json_object_get(has, sget(t, "tag_id")) != NULL)
				json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "tag_id",
								   sget(t, "tag_id"), "tag_name",
								   sget(t, "tag_name"), "color",
								   sget(t, "color")));
	}
	return out;
}

/* The index of pairs (w->tagidx): tag tid is attached to resource rid. */
static void
tagidx_set(struct world *w, const char *rid, const char *tid, bool on)
{
	json_t *has = json_object_get(w->tagidx, rid);

	if (on && has == NULL)
		json_object_set_new(w->tagidx, rid, has = json_object());
	if (on)
		json_object_set_new(has, tid, json_true());
	else if (has != NULL)
		json_object_del(has, tid);
}

/* tags: the instance's tags (tags_of_all), a reference taken. */
static json_t *
instance_view(struct world *w, json_t *inst, json_t *tags, bool verbose)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:s}",
			      "instance_id", sget(inst, "instance_id"), "instance_name",
			      sget(inst, "instance_name"), "status", sget(inst, "status"),
			      "transition_status", sget(inst, "transition_status"), "instance_type",
			      sget(inst, "instance_type"), "vcpus_current",
			      (json_int_t)iget(inst, "vcpus_current"), "memory_current",
			      (json_int_t)iget(inst, "memory_current"), "create_time",
			      jtime(iget(inst, "create_ms")), "status_time",
			      jtime(iget(inst, "status_ms")), "image",
			      json_pack("{s:s}", "image_id", sget(inst, "image_id")), "hostname",
			      sget(inst, "hostname"));

	json_object_set(o, "vxnets", json_object_get(inst, "vxnets"));
	json_object_set_new(o, "tags", tags != NULL ? tags : json_array());
	json_object_set_new(o, "keypair_ids", json_array());
	if (sget(inst, "login_keypair")[0] != '\0')
		json_array_append_new(json_object_get(o, "keypair_ids"),
				      json_string(sget(inst, "login_keypair")));
	json_object_set_new(o, "zone_id", json_string(sget(inst, "zone_id")));
	return o;
}

/* Applies offset/limit (docs common/offset: limit defaults to 20, at most 100). */
static int
page(const struct fqc_req *r, json_t *all, const char *set_name, json_t *resp)
{
	long offset, limit;
	json_t *set = json_array();
	size_t i;

	if (int_param(r, "offset", 0, 1000000, 0, &offset, resp) != 0 ||
	    int_param(r, "limit", 1, 100, 20, &limit, resp) != 0) {
		json_decref(set);
		json_decref(all);
		return FQC_ERR_PARAM;
	}
	for (i = (size_t)offset; i < json_array_size(all) && i < (size_t)(offset + limit); i++)
		json_array_append(set, json_array_get(all, i));
	json_object_set_new(resp, "total_count", json_integer((json_int_t)json_array_size(all)));
	json_object_set_new(resp, set_name, set);
	json_decref(all);
	return 0;
}

/* Replaces the instances of a page (set) by their views, the tags of all
 * in one pass over the tag pairs: viewing every match of a listing, each
 * view reading every pair, made a listing O(N^2). */
static int
view_page(struct world *w, json_t *set, bool verbose)
{
	json_t *ids = json_array(), *tagmap, *inst;
	size_t i;

	json_array_foreach(set, i, inst)
		json_array_append_new(ids, json_string(sget(inst, "instance_id")));
	tagmap = tags_of_all(w, ids);
	json_array_foreach(set, i, inst)
		json_array_set_new(
			set, i,
			instance_view(w, inst,
				      json_incref(json_object_get(tagmap, sget(inst, "instance_id"))),
				      verbose));
	json_decref(tagmap);
	json_decref(ids);
	return 0;
}

static int
act_describe_instances(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "instances"), *st = list_param(r, "status");
	json_t *tags = list_param(r, "tags"), *all = json_array(), *inst;
	const char *word = fqc_param_get(r, "search_word");
	const char *verbose = fqc_param_get(r, "verbose");
	size_t i;

	for (i = 0; i < w->nents; i++) {
		const char *id = w->ents[i].id;

		inst = w->ents[i].inst;
		/* the cheapest test first, on the entries' strings: a name search
		 * (one a launch) matches one instance of N and reads no JSON for
		 * the rest */
		if (!search_ok(word, id, w->ents[i].name))
			continue;
		if (json_array_size(ids) > 0 && !in_list(ids, id))
			continue;
		if (json_array_size(st) > 0 ? !in_list(st, sget(inst, "status"))
					    : strcmp(sget(inst, "status"), "ceased") == 0)
			continue;
		if (!tag_filter_ok(w, tags, id))
			continue;
		json_array_append(all, inst);
	}
	json_decref(ids);
	json_decref(st);
	json_decref(tags);
	if (page(r, all, "instance_set", resp) != 0)
		return FQC_ERR_PARAM;
	return view_page(w, json_object_get(resp, "instance_set"), verbose && verbose[0] == '1');
}

static int
act_terminate_instances(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "instances"), *v, *inst;
	size_t i;
	int code = 0;

	if (json_array_size(ids) == 0) {
		code = fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "instances.n");
		goto out;
	}
	json_array_foreach(ids, i, v) {
		inst = inst_find(w, json_string_value(v));
		if (inst == NULL || strcmp(sget(inst, "status"), "ceased") == 0) {
			code = fail(resp, FQC_ERR_NOT_FOUND,
				    "ResourceNotFound, resource [%s] not found",
				    json_string_value(v));
			goto out;
		}
		if (!live(inst) || strcmp(sget(inst, "transition_status"), "terminating") == 0) {
			code = fail(
				resp, FQC_ERR_DENIED,
				"PermissionDenied, instance [%s] is already terminated or terminating",
				json_string_value(v));
			goto out;
		}
	}
	json_array_foreach(ids, i, v) {
		inst = inst_find(w, json_string_value(v));
		json_object_set_new(inst, "transition_status", json_string("terminating"));
	}
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w, "TerminateInstances", ids, now,
						now + w->cfg->job_ms)));
	w->dirty = true;
out:
	json_decref(ids);
	return code;
}

/* DescribeJobs: development_docs/api/command_list/job/describe_jobs.md */
static int
act_describe_jobs(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "jobs"), *st = list_param(r, "status"), *all = json_array();
	const char *ja = fqc_param_get(r, "job_action");
	json_t *job;
	size_t i;

	json_array_foreach(json_object_get(w->root, "jobs"), i, job) {
		if (json_array_size(ids) > 0 && !in_list(ids, sget(job, "job_id")))
			continue;
		if (json_array_size(st) > 0 && !in_list(st, sget(job, "status")))
			continue;
		if (ja != NULL && ja[0] != '\0' && strcmp(ja, sget(job, "job_action")) != 0)
			continue;
		json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "job_id",
						     sget(job, "job_id"), "job_action",
						     sget(job, "job_action"), "status",
						     sget(job, "status"), "resource_ids",
						     sget(job, "resource_ids"), "create_time",
						     jtime(iget(job, "create_ms")), "status_time",
						     jtime(iget(job, "status_ms"))));
	}
	json_decref(ids);
	json_decref(st);
	return page(r, all, "job_set", resp);
}

/* True when N more of ARRAY would pass FQC_MAX_RESOURCES: the fake's own bound. */
static bool
over_cap(struct world *w, const char *array, long n)
{
	return json_array_size(json_object_get(w->root, array)) + (size_t)n > FQC_MAX_RESOURCES;
}

/* Tags: development_docs/api/command_list/tag/{create,attach,detach,describe}_tags.md */
static int
act_create_tag(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *name = fqc_param_get(r, "tag_name");
	char id[32];
	json_t *t;
	size_t i;

	if (name == NULL || name[0] == '\0')
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required", "tag_name");
	json_array_foreach(json_object_get(w->root, "tags"), i, t)
		if (strcmp(sget(t, "tag_name"), name) == 0)
			return fail(resp, FQC_ERR_PARAM,
				    "InvalidParameterValue, tag name [%s] already exists", name);
	if (over_cap(w, "tags", 1))
		return fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded", "tag");
	new_id("tag", 8, id, sizeof(id));
	json_array_append_new(json_object_get(w->root, "tags"),
			      json_pack("{s:s, s:s, s:s, s:s, s:I, s:[]}", "tag_id", id, "tag_name",
					name, "color",
					fqc_param_get(r, "color") ? fqc_param_get(r, "color")
								  : "#9f9bb7",
					"description",
					fqc_param_get(r, "description")
						? fqc_param_get(r, "description")
						: "",
					"create_ms", (json_int_t)now, "pairs"));
	json_object_set_new(resp, "tag_id", json_string(id));
	w->dirty = true;
	return 0;
}

static bool
resource_exists(struct world *w, const char *type, const char *id)
{
	const char *arr = strcmp(type, "instance") == 0 ? "instances"
			  : strcmp(type, "vxnet") == 0  ? "vxnets"
			  : strcmp(type, "router") == 0 ? "routers"
							: NULL;
	const char *field = strcmp(type, "instance") == 0 ? "instance_id"
			    : strcmp(type, "vxnet") == 0  ? "vxnet_id"
							  : "router_id";

	if (arr != NULL && strcmp(arr, "instances") == 0)
		return inst_find(w, id) != NULL;
	return arr != NULL && find_by(json_object_get(w->root, arr), field, id) != NULL;
}

static int
act_attach_detach(struct world *w, const struct fqc_req *r, bool attach, json_t *resp)
{
	char k[FQC_MAX_KEY + 64];
	int n, found = 0;

	for (n = 1; n <= FQC_MAX_PARAMS; n++) {
		const char *tid, *rtype, *rid;
		json_t *t, *pairs, *p;
		size_t i;
		bool have = false;

		snprintf(k, sizeof(k), "resource_tag_pairs.%d.tag_id", n);
		tid = fqc_param_get(r, k);
		snprintf(k, sizeof(k), "resource_tag_pairs.%d.resource_type", n);
		rtype = fqc_param_get(r, k);
		snprintf(k, sizeof(k), "resource_tag_pairs.%d.resource_id", n);
		rid = fqc_param_get(r, k);
		if (tid == NULL && rtype == NULL && rid == NULL)
			continue;
		if (tid == NULL || rtype == NULL || rid == NULL) {
			snprintf(k, sizeof(k), "resource_tag_pairs.%d", n);
			return fail(
				resp, FQC_ERR_PARAM,
				"MissingParameter, [%s] needs tag_id, resource_type and resource_id",
				k);
		}
		found++;
		t = find_by(json_object_get(w->root, "tags"), "tag_id", tid);
		if (t == NULL)
			return fail(resp, FQC_ERR_NOT_FOUND,
				    "ResourceNotFound, resource [%s] not found", tid);
		if (!resource_exists(w, rtype, rid))
			return fail(resp, FQC_ERR_NOT_FOUND,
				    "ResourceNotFound, resource [%s] not found", rid);
		pairs = json_object_get(t, "pairs");
		/* attach: the index says whether the pair is there (a tag on every
		 * instance has N pairs: no scan per call) */
		have = json_object_get(json_object_get(w->tagidx, rid), tid) != NULL;
		if (!attach && have)
			json_array_foreach(pairs, i, p)
				if (strcmp(sget(p, "resource_id"), rid) == 0) {
					json_array_remove(pairs, i);
					break;
				}
		if (attach && !have)
			json_array_append_new(pairs, json_pack("{s:s, s:s}", "resource_id", rid,
							       "resource_type", rtype));
		tagidx_set(w, rid, tid, attach);
	}
	if (found == 0)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "resource_tag_pairs.n");
	w->dirty = true;
	return 0;
}

static int
act_attach_tags(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	return act_attach_detach(w, r, true, resp);
}

static int
act_detach_tags(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	return act_attach_detach(w, r, false, resp);
}

static int
act_describe_tags(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "tags"), *all = json_array(), *t;
	const char *word = fqc_param_get(r, "search_word");
	const char *verbose = fqc_param_get(r, "verbose");
	size_t i;

	json_array_foreach(json_object_get(w->root, "tags"), i, t) {
		json_t *o;

		if (json_array_size(ids) > 0 && !in_list(ids, sget(t, "tag_id")))
			continue;
		if (!search_ok(word, sget(t, "tag_id"), sget(t, "tag_name")))
			continue;
		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "tag_id", sget(t, "tag_id"),
			      "tag_name", sget(t, "tag_name"), "color", sget(t, "color"),
			      "description", sget(t, "description"), "resource_count",
			      (json_int_t)json_array_size(json_object_get(t, "pairs")),
			      "create_time", jtime(iget(t, "create_ms")));
		if (verbose != NULL && verbose[0] == '1')
			json_object_set(o, "resource_tag_pairs", json_object_get(t, "pairs"));
		json_array_append_new(all, o);
	}
	json_decref(ids);
	return page(r, all, "tag_set", resp);
}

static int
act_delete_tags(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "tags"), *v;
	size_t i, j;
	json_t *tags = json_object_get(w->root, "tags");

	json_array_foreach(ids, i, v)
		if (find_by(tags, "tag_id", json_string_value(v)) == NULL) {
			int c = fail(resp, FQC_ERR_NOT_FOUND,
				     "ResourceNotFound, resource [%s] not found",
				     json_string_value(v));

			json_decref(ids);
			return c;
		}
	json_array_foreach(ids, i, v)
		for (j = 0; j < json_array_size(tags); j++)
			if (strcmp(sget(json_array_get(tags, j), "tag_id"), json_string_value(v)) ==
			    0)
				json_array_remove(tags, j--);
	json_object_set_new(resp, "tags", ids);
	w->dirty = true;
	return 0;
}

/* VxNets: development_docs/api/command_list/vxnet/{create,describe,delete}_vxnets.md */
static int
act_create_vxnets(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	long count, type;
	json_t *ids;
	const char *name = fqc_param_get(r, "vxnet_name");

	if (int_param(r, "count", 1, 100, 1, &count, resp) != 0 ||
	    int_param(r, "vxnet_type", 0, 1, 1, &type, resp) != 0)
		return FQC_ERR_PARAM;
	if (over_cap(w, "vxnets", count))
		return fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded", "vxnet");
	ids = json_array();
	while (count-- > 0) {
		char id[32];

		new_id("vxnet", 7, id, sizeof(id));
		json_array_append_new(json_object_get(w->root, "vxnets"),
				      json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "vxnet_id",
						id, "vxnet_name", name ? name : "", "vxnet_type",
						(json_int_t)type, "create_ms", (json_int_t)now,
						"router_id", "", "ip_network", "", "manager_ip",
						""));
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(resp, "vxnets", ids);
	w->dirty = true;
	return 0;
}

static json_t *
instances_in(struct world *w, const char *vxnet_id)
{
	json_t *out = json_array(), *i, *n;
	size_t a, b;

	json_array_foreach(json_object_get(w->root, "instances"), a, i) {
		if (!live(i))
			continue;
		json_array_foreach(json_object_get(i, "vxnets"), b, n)
			if (strcmp(sget(n, "vxnet_id"), vxnet_id) == 0)
				json_array_append_new(out, json_string(sget(i, "instance_id")));
	}
	return out;
}

static int
act_describe_vxnets(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "vxnets"), *tags = list_param(r, "tags"), *all = json_array();
	const char *word = fqc_param_get(r, "search_word");
	const char *verbose = fqc_param_get(r, "verbose");
	json_t *vx;
	size_t i;

	json_array_foreach(json_object_get(w->root, "vxnets"), i, vx) {
		const char *id = sget(vx, "vxnet_id");
		json_t *o;

		if ((json_array_size(ids) > 0 && !in_list(ids, id)) ||
		    !search_ok(word, id, sget(vx, "vxnet_name")) || !tag_filter_ok(w, tags, id))
			continue;
		o = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "vxnet_id", id, "vxnet_name",
			      sget(vx, "vxnet_name"), "vxnet_type",
			      (json_int_t)iget(vx, "vxnet_type"), "vpc_router_id",
			      sget(vx, "router_id"), "create_time", jtime(iget(vx, "create_ms")),
			      "tags", tags_of(w, id, true));
		if (sget(vx, "router_id")[0] != '\0')
			json_object_set_new(o, "router",
					    json_pack("{s:s, s:s, s:s}", "router_id",
						      sget(vx, "router_id"), "ip_network",
						      sget(vx, "ip_network"), "manager_ip",
						      sget(vx, "manager_ip")));
		if (verbose != NULL && verbose[0] == '1')
			json_object_set_new(o, "instance_ids", instances_in(w, id));
		json_array_append_new(all, o);
	}
	json_decref(ids);
	json_decref(tags);
	return page(r, all, "vxnet_set", resp);
}

static int
act_delete_vxnets(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "vxnets"), *v, *vxs = json_object_get(w->root, "vxnets");
	size_t i, j;

	json_array_foreach(ids, i, v) {
		const char *id = json_string_value(v);
		json_t *vx = find_by(vxs, "vxnet_id", id), *in;
		int c = 0;

		if (vx == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", id);
		else if (sget(vx, "router_id")[0] != '\0')
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, vxnet [%s] is still joined to a router", id);
		else if (json_array_size(in = instances_in(w, id)) > 0) {
			json_decref(in);
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, vxnet [%s] still has instances", id);
		} else
			json_decref(in);
		if (c != 0) {
			json_decref(ids);
			return c;
		}
	}
	json_array_foreach(ids, i, v)
		for (j = 0; j < json_array_size(vxs); j++)
			if (strcmp(sget(json_array_get(vxs, j), "vxnet_id"),
				   json_string_value(v)) == 0) {
				if (w->cfg->netns)
					inst_bridge_remove(w->cfg, json_string_value(v));
				json_array_remove(vxs, j--);
			}
	json_object_set_new(resp, "vxnets", ids);
	w->dirty = true;
	return 0;
}

static json_t *eip_find(struct world *w, const char *id);
static json_t *eip_brief(const json_t *e);
static void eip_set_resource(json_t *e, const char *type, const char *id, int64_t now);
static void real_teardown(struct world *w, json_t *res, const char *id, bool forget);
static void remove_where(json_t *array, const char *field, const char *value);
static bool lb_in_vxnet(struct world *w, const char *vxnet_id);

/* Routers: development_docs/api/command_list/router/ (create_routers.md, join_router.md, …) */
static int
act_create_routers(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	long count;
	json_t *ids;
	const char *name = fqc_param_get(r, "router_name");
	const char *vpc = fqc_param_get(r, "vpc_network");

	if (int_param(r, "count", 1, 100, 1, &count, resp) != 0)
		return FQC_ERR_PARAM;
	if (over_cap(w, "routers", count))
		return fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded", "router");
	ids = json_array();
	while (count-- > 0) {
		char id[32];

		new_id("rtr", 8, id, sizeof(id));
		json_array_append_new(json_object_get(w->root, "routers"),
				      json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "router_id",
						id, "router_name", name ? name : "", "vpc_network",
						vpc ? vpc : "192.168.0.0/16", "status", "pending",
						"transition_status", "creating", "create_ms",
						(json_int_t)now, "status_ms", (json_int_t)now));
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(resp, "job_id",
			    json_string(
				    new_job(w, "CreateRouters", ids, now, now + w->cfg->job_ms)));
	json_object_set_new(resp, "routers", ids);
	w->dirty = true;
	return 0;
}

static int
act_describe_routers(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "routers"), *st = list_param(r, "status");
	json_t *tags = list_param(r, "tags"), *all = json_array(), *rt;
	const char *word = fqc_param_get(r, "search_word");
	size_t i;

	json_array_foreach(json_object_get(w->root, "routers"), i, rt) {
		const char *id = sget(rt, "router_id");
		json_t *o, *e;

		if ((json_array_size(ids) > 0 && !in_list(ids, id)) ||
		    (json_array_size(st) > 0 && !in_list(st, sget(rt, "status"))) ||
		    !search_ok(word, id, sget(rt, "router_name")) || !tag_filter_ok(w, tags, id))
			continue;
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "router_id", id,
			      "router_name", sget(rt, "router_name"), "status", sget(rt, "status"),
			      "transition_status", sget(rt, "transition_status"), "vpc_network",
			      sget(rt, "vpc_network"), "create_time", jtime(iget(rt, "create_ms")),
			      "status_time", jtime(iget(rt, "status_ms")), "tags",
			      tags_of(w, id, true), "is_applied",
			      (json_int_t)(json_object_get(rt, "is_applied")
						   ? iget(rt, "is_applied")
						   : 1));
		/* docs (describe_routers.md): eip is {eip_id, eip_name, eip_addr} */
		e = sget(rt, "eip_id")[0] != '\0' ? eip_find(w, sget(rt, "eip_id")) : NULL;
		json_object_set_new(o, "eip", e ? eip_brief(e) : json_object());
		json_array_append_new(all, o);
	}
	json_decref(ids);
	json_decref(st);
	json_decref(tags);
	return page(r, all, "router_set", resp);
}

static int
act_delete_routers(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "routers"), *v, *rt, *vx;
	size_t i, j;
	int c = 0;

	if (json_array_size(ids) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required", "routers.n");
		goto out;
	}
	json_array_foreach(ids, i, v) {
		rt = find_by(json_object_get(w->root, "routers"), "router_id",
			     json_string_value(v));
		if (rt == NULL || strcmp(sget(rt, "status"), "deleted") == 0) {
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
			goto out;
		}
		json_array_foreach(json_object_get(w->root, "vxnets"), j, vx)
			if (strcmp(sget(vx, "router_id"), json_string_value(v)) == 0) {
				c = fail(resp, FQC_ERR_DENIED,
					 "PermissionDenied, router [%s] still has vxnets joined",
					 json_string_value(v));
				goto out;
			}
	}
	json_array_foreach(ids, i, v) {
		rt = find_by(json_object_get(w->root, "routers"), "router_id",
			     json_string_value(v));
		json_object_set_new(rt, "transition_status", json_string("deleting"));
	}
	json_object_set_new(resp, "job_id",
			    json_string(
				    new_job(w, "DeleteRouters", ids, now, now + w->cfg->job_ms)));
	json_object_set(resp, "routers", ids);
	w->dirty = true;
out:
	json_decref(ids);
	return c;
}

static int
act_join_router(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *vid = fqc_param_get(r, "vxnet"), *rid = fqc_param_get(r, "router");
	const char *ipn = fqc_param_get(r, "ip_network"), *mip = fqc_param_get(r, "manager_ip");
	json_t *vx, *rt, *ids;
	uint32_t net;
	int plen;
	char gw[64];

	if (vid == NULL || rid == NULL || ipn == NULL)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    vid == NULL   ? "vxnet"
			    : rid == NULL ? "router"
					  : "ip_network");
	vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id", vid);
	rt = find_by(json_object_get(w->root, "routers"), "router_id", rid);
	if (vx == NULL)
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    vid);
	if (rt == NULL)
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    rid);
	if (sget(vx, "router_id")[0] != '\0')
		return fail(resp, FQC_ERR_DENIED,
			    "PermissionDenied, vxnet [%s] is already joined to a router", vid);
	if (!parse_cidr(ipn, &net, &plen))
		return fail(resp, FQC_ERR_PARAM,
			    "InvalidParameterValue, [ip_network] should be a.b.c.d/16..29, not [%s]",
			    ipn);
	/* docs (join_router.md): manager_ip defaults to the network's .1 */
	if (mip == NULL || mip[0] == '\0')
		ip_str(net + 1, gw, sizeof(gw));
	else
		snprintf(gw, sizeof(gw), "%s", mip);
	json_object_set_new(vx, "router_id", json_string(rid));
	json_object_set_new(vx, "ip_network", json_string(ipn));
	json_object_set_new(vx, "manager_ip", json_string(gw));
	if (w->cfg->netns) {
		char gwc[80];

		snprintf(gwc, sizeof(gwc), "%s/%d", gw, plen);
		inst_bridge_ensure(w->cfg, vid, gwc);
	}
	ids = json_pack("[s]", rid);
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w, "JoinRouter", ids, now, now + w->cfg->job_ms)));
	json_object_set_new(resp, "vxnet_id", json_string(vid));
	json_object_set_new(resp, "router_id", json_string(rid));
	json_decref(ids);
	w->dirty = true;
	return 0;
}

static int
act_leave_router(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *rid = fqc_param_get(r, "router");
	json_t *vids = list_param(r, "vxnets"), *v, *vx, *in, *ids;
	size_t i;
	int c = 0;

	if (rid == NULL || json_array_size(vids) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 rid == NULL ? "router" : "vxnets.n");
		goto out;
	}
	json_array_foreach(vids, i, v) {
		vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id", json_string_value(v));
		if (vx == NULL || strcmp(sget(vx, "router_id"), rid) != 0) {
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, vxnet [%s] is not joined to the router",
				 json_string_value(v));
			goto out;
		}
		in = instances_in(w, json_string_value(v));
		if (json_array_size(in) > 0) {
			json_decref(in);
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, vxnet [%s] still has instances",
				 json_string_value(v));
			goto out;
		}
		json_decref(in);
		if (lb_in_vxnet(w, json_string_value(v))) {
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, vxnet [%s] still has load balancers",
				 json_string_value(v));
			goto out;
		}
	}
	json_array_foreach(vids, i, v) {
		vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id", json_string_value(v));
		json_object_set_new(vx, "router_id", json_string(""));
		json_object_set_new(vx, "ip_network", json_string(""));
		json_object_set_new(vx, "manager_ip", json_string(""));
		if (w->cfg->netns)
			inst_bridge_remove(w->cfg, json_string_value(v));
	}
	ids = json_pack("[s]", rid);
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w, "LeaveRouter", ids, now, now + w->cfg->job_ms)));
	json_decref(ids);
	w->dirty = true;
out:
	json_decref(vids);
	return c;
}

static int
act_update_routers(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "routers"), *v;
	size_t i;
	int c = 0;

	if (json_array_size(ids) == 0)
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required", "routers.n");
	json_array_foreach(ids, i, v)
		if (c == 0 && find_by(json_object_get(w->root, "routers"), "router_id",
				      json_string_value(v)) == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
	if (c == 0)
		json_object_set_new(resp, "job_id",
				    json_string(new_job(w, "UpdateRouters", ids, now,
							now + w->cfg->job_ms)));
	json_decref(ids);
	return c;
}

/* --- EIPs: development_docs/api/command_list/eip/<action>.md --------------------- */

static bool
eip_live(const json_t *e)
{
	const char *s = sget(e, "status");

	return strcmp(s, "released") != 0 && strcmp(s, "ceased") != 0;
}

/* A live EIP by id, or NULL. */
static json_t *
eip_find(struct world *w, const char *id)
{
	json_t *e = find_by(json_object_get(w->root, "eips"), "eip_id", id);

	return e != NULL && eip_live(e) ? e : NULL;
}

static json_t *
eip_brief(const json_t *e)
{
	return json_pack("{s:s, s:s, s:s}", "eip_id", sget(e, "eip_id"), "eip_name",
			 sget(e, "eip_name"), "eip_addr", sget(e, "eip_addr"));
}

/* True when one of ARRAY (loadbalancers, routers) has IP among its applied_addrs. */
static bool
addr_applied(struct world *w, const char *array, const char *ip)
{
	json_t *o, *v;
	size_t i, j;

	json_array_foreach(json_object_get(w->root, array), i, o)
		json_array_foreach(json_object_get(o, "applied_addrs"), j, v) {
			const char *bar = strchr(json_string_value(v), '|');

			if (bar != NULL && strcmp(bar + 1, ip) == 0)
				return true;
		}
	return false;
}

/* The next address of --eip-range no live EIP holds (.1 upward), or "". */
static void
alloc_eip_addr(struct world *w, char *out, size_t len)
{
	uint32_t net, h;
	int plen;
	json_t *e;
	size_t i;

	out[0] = '\0';
	if (!parse_cidr(w->cfg->eip_range, &net, &plen))
		return;
	for (h = 1; h < (1u << (32 - plen)) - 1; h++) {
		bool used = false;

		ip_str(net + h, out, len);
		json_array_foreach(json_object_get(w->root, "eips"), i, e)
			if (eip_live(e) && strcmp(sget(e, "eip_addr"), out) == 0)
				used = true;
		/* released, but still where a not-yet-updated LB or router listens */
		used = used || addr_applied(w, "loadbalancers", out) ||
		       addr_applied(w, "routers", out);
		if (!used)
			return;
	}
	out[0] = '\0';
}

static void
eip_set_resource(json_t *e, const char *type, const char *id, int64_t now)
{
	json_object_set_new(e, "status", json_string(id[0] ? "associated" : "available"));
	json_object_set_new(e, "resource_type", json_string(type));
	json_object_set_new(e, "resource_id", json_string(id));
	json_object_set_new(e, "status_ms", json_integer(now));
}

static int
act_allocate_eips(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *name = fqc_param_get(r, "eip_name");
	const char *billing = fqc_param_get(r, "billing_mode");
	long bw, count, mode, nlive = 0;
	json_t *e, *ids;
	size_t i;

	if (fqc_param_get(r, "bandwidth") == NULL)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "bandwidth");
	if (int_param(r, "bandwidth", 1, 1000, 1, &bw, resp) != 0 ||
	    int_param(r, "count", 1, 100, 1, &count, resp) != 0 ||
	    int_param(r, "associate_mode", 0, 1, 0, &mode, resp) != 0)
		return FQC_ERR_PARAM;
	if (billing != NULL && strcmp(billing, "bandwidth") != 0 && strcmp(billing, "traffic") != 0)
		return fail(resp, FQC_ERR_PARAM,
			    "InvalidParameterValue, [billing_mode] should be bandwidth or traffic");
	json_array_foreach(json_object_get(w->root, "eips"), i, e)
		if (eip_live(e))
			nlive++;
	if (nlive + count > w->cfg->quota_eips)
		return fail(
			resp, FQC_ERR_QUOTA,
			"QuotaExceeded, quota of [eip] exceeded, %ld in use, %ld requested, quota %lld",
			nlive, count, (long long)w->cfg->quota_eips);
	if (over_cap(w, "eips", count))
		return fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded", "eip");
	ids = json_array();
	while (count-- > 0) {
		char id[32], addr[64];

		alloc_eip_addr(w, addr, sizeof(addr));
		if (addr[0] == '\0') {
			json_decref(ids);
			return fail(resp, FQC_ERR_QUOTA,
				    "QuotaExceeded, no free address left in --eip-range [%s]",
				    w->cfg->eip_range);
		}
		new_id("eip", 8, id, sizeof(id));
		json_array_append_new(
			json_object_get(w->root, "eips"),
			json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:I}",
				  "eip_id", id, "eip_name", name ? name : "", "eip_addr", addr,
				  "bandwidth", (json_int_t)bw, "billing_mode",
				  billing ? billing : "bandwidth", "associate_mode",
				  (json_int_t)mode, "status", "available", "transition_status", "",
				  "resource_type", "", "resource_id", "", "create_ms",
				  (json_int_t)now, "status_ms", (json_int_t)now));
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(resp, "eips", ids);
	w->dirty = true;
	return 0;
}

static json_t *
eip_view(struct world *w, const json_t *e)
{
	json_t *o =
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:o, s:o, s:o, s:o}",
			  "eip_id", sget(e, "eip_id"), "eip_name", sget(e, "eip_name"), "eip_addr",
			  sget(e, "eip_addr"), "status", sget(e, "status"), "transition_status",
			  sget(e, "transition_status"), "bandwidth",
			  (json_int_t)iget(e, "bandwidth"), "billing_mode", sget(e, "billing_mode"),
			  "associate_mode", (json_int_t)iget(e, "associate_mode"), "icp_codes", "",
			  "eip_group",
			  json_pack("{s:s, s:s}", "eip_group_id", "eipg-00000000", "eip_group_name",
				    "fake-qingcloud"),
			  "create_time", jtime(iget(e, "create_ms")), "status_time",
			  jtime(iget(e, "status_ms")), "tags", tags_of(w, sget(e, "eip_id"), true));

	if (sget(e, "resource_id")[0] != '\0')
		json_object_set_new(o, "resource",
				    json_pack("{s:s, s:s, s:s}", "resource_id",
					      sget(e, "resource_id"), "resource_type",
					      sget(e, "resource_type"), "resource_name", ""));
	else
		json_object_set_new(o, "resource", json_object());
	return o;
}

static int
act_describe_eips(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "eips"), *st = list_param(r, "status");
	json_t *tags = list_param(r, "tags"), *all = json_array(), *e;
	const char *word = fqc_param_get(r, "search_word");
	const char *inst = fqc_param_get(r, "instance_id");
	size_t i;

	json_array_foreach(json_object_get(w->root, "eips"), i, e) {
		const char *id = sget(e, "eip_id");

		if ((json_array_size(ids) > 0 && !in_list(ids, id)) ||
		    (json_array_size(st) > 0 ? !in_list(st, sget(e, "status")) : !eip_live(e)) ||
		    (inst != NULL && inst[0] != '\0' &&
		     (strcmp(sget(e, "resource_type"), "instance") != 0 ||
		      strcmp(sget(e, "resource_id"), inst) != 0)) ||
		    !search_ok(word, id, sget(e, "eip_name")) || !tag_filter_ok(w, tags, id))
			continue;
		json_array_append_new(all, eip_view(w, e));
	}
	json_decref(ids);
	json_decref(st);
	json_decref(tags);
	return page(r, all, "eip_set", resp);
}

/* AssociateEip (eip/associate_eip.md): an available EIP to an instance without one. */
static int
act_associate_eip(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *eid = fqc_param_get(r, "eip"), *iid = fqc_param_get(r, "instance");
	json_t *e, *inst, *o, *ids;
	size_t i;

	if (eid == NULL || iid == NULL)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    eid == NULL ? "eip" : "instance");
	if ((e = eip_find(w, eid)) == NULL)
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    eid);
	inst = inst_find(w, iid);
	if (inst == NULL || !live(inst))
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    iid);
	if (strcmp(sget(e, "status"), "available") != 0)
		return fail(resp, FQC_ERR_DENIED, "PermissionDenied, eip [%s] is not available",
			    eid);
	json_array_foreach(json_object_get(w->root, "eips"), i, o)
		if (eip_live(o) && strcmp(sget(o, "resource_id"), iid) == 0)
			return fail(resp, FQC_ERR_DENIED,
				    "PermissionDenied, instance [%s] already has an eip", iid);
	eip_set_resource(e, "instance", iid, now);
	ids = json_pack("[s]", eid);
	json_object_set_new(resp, "job_id",
			    json_string(
				    new_job(w, "AssociateEip", ids, now, now + w->cfg->job_ms)));
	json_decref(ids);
	w->dirty = true;
	return 0;
}

static json_t *lb_find(struct world *w, const char *id);

/* Takes E off whatever holds it: the load balancer or router must be updated again. */
static void
eip_detach(struct world *w, json_t *e, int64_t now)
{
	const char *type = sget(e, "resource_type"), *rid = sget(e, "resource_id");
	json_t *o;

	if (strcmp(type, "loadbalancer") == 0 && (o = lb_find(w, rid)) != NULL) {
		json_t *list = json_object_get(o, "eips");
		size_t i;

		for (i = 0; i < json_array_size(list); i++)
			if (strcmp(json_string_value(json_array_get(list, i)), sget(e, "eip_id")) ==
			    0)
				json_array_remove(list, i--);
		json_object_set_new(o, "is_applied", json_integer(0));
	} else if (strcmp(type, "router") == 0 &&
		   (o = find_by(json_object_get(w->root, "routers"), "router_id", rid)) != NULL) {
		json_object_set_new(o, "eip_id", json_string(""));
		json_object_set_new(o, "is_applied", json_integer(0));
	}
	eip_set_resource(e, "", "", now);
}

static int
act_dissociate_eips(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "eips"), *v, *e;
	size_t i;
	int c = 0;

	if (json_array_size(ids) == 0)
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required", "eips.n");
	json_array_foreach(ids, i, v) {
		if (c != 0)
			break;
		if ((e = eip_find(w, json_string_value(v))) == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
		else if (strcmp(sget(e, "status"), "associated") != 0)
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, eip [%s] is not associated",
				 json_string_value(v));
	}
	if (c == 0) {
		json_array_foreach(ids, i, v)
			eip_detach(w, eip_find(w, json_string_value(v)), now);
		json_object_set_new(resp, "job_id",
				    json_string(new_job(w, "DissociateEips", ids, now,
							now + w->cfg->job_ms)));
		w->dirty = true;
	}
	json_decref(ids);
	return c;
}

static int
act_release_eips(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "eips"), *v, *e;
	size_t i;
	int c = 0;

	if (json_array_size(ids) == 0)
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required", "eips.n");
	json_array_foreach(ids, i, v) {
		if (c != 0)
			break;
		if ((e = eip_find(w, json_string_value(v))) == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
		else if (strcmp(sget(e, "status"), "available") != 0)
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, eip [%s] is associated: dissociate it first",
				 json_string_value(v));
	}
	if (c == 0) {
		json_array_foreach(ids, i, v) {
			e = eip_find(w, json_string_value(v));
			json_object_set_new(e, "status", json_string("released"));
			json_object_set_new(e, "status_ms", json_integer(now));
		}
		json_object_set_new(resp, "job_id",
				    json_string(new_job(w, "ReleaseEips", ids, now,
							now + w->cfg->job_ms)));
		w->dirty = true;
	}
	json_decref(ids);
	return c;
}

/* --- real forwarding (netns mode): haproxy per load balancer or router ------ */

/*
 * Makes RES (a load balancer or router, id ID) forward as SPEC says, listening
 * on ADDRS ("dev|ip" strings): addresses no longer wanted are removed, haproxy
 * is restarted or stopped. SPEC and ADDRS are kept in RES (applied_spec,
 * applied_addrs) so deletion knows what to undo and a restart applies them
 * again. Steals SPEC and ADDRS.
 */
static void
real_apply(struct world *w, json_t *res, const char *id, json_t *spec, json_t *addrs)
{
	json_t *old = json_object_get(res, "applied_addrs"), *v, *fe, *p;
	char eipdev[32];
	size_t i, nbinds = 0;
	int pid;

	json_object_set_new(res, "applied_spec", spec);
	if (!w->cfg->netns) {
		json_object_set_new(res, "applied_addrs", addrs);
		return;
	}
	lb_eip_dev_name(w->cfg, eipdev, sizeof(eipdev));
	json_array_foreach(old, i, v)
		if (!in_list(addrs, json_string_value(v))) {
			char dev[64];
			const char *s = json_string_value(v), *bar = strchr(s, '|');

			if (bar == NULL)
				continue;
			snprintf(dev, sizeof(dev), "%.*s", (int)(bar - s), s);
			lb_addr_remove(dev, bar + 1);
		}
	json_array_foreach(addrs, i, v) {
		char dev[64];
		const char *s = json_string_value(v), *bar = strchr(s, '|');

		if (bar == NULL)
			continue;
		snprintf(dev, sizeof(dev), "%.*s", (int)(bar - s), s);
		if (strcmp(dev, eipdev) == 0)
			lb_eip_dev_ensure(w->cfg);
		lb_addr_add(dev, bar + 1);
	}
	json_object_set_new(res, "applied_addrs", addrs);
	json_array_foreach(json_object_get(spec, "frontends"), i, fe)
		nbinds += json_array_size(json_object_get(fe, "binds"));
	p = json_object_get(w->hapids, id);
	pid = p ? (int)json_integer_value(p) : 0;
	if (nbinds == 0) {
		lb_haproxy_stop(pid);
		json_object_del(w->hapids, id);
	} else if (lb_haproxy_apply(w->cfg, id, spec, &pid) == 0) {
		json_object_set_new(w->hapids, id, json_integer(pid));
	} else {
		json_object_del(w->hapids, id);
	}
}

/* Stops RES's haproxy and removes its addresses; FORGET also drops the applied state. */
static void
real_teardown(struct world *w, json_t *res, const char *id, bool forget)
{
	json_t *p = json_object_get(w->hapids, id), *v;
	size_t i;

	if (w->cfg->netns) {
		if (p != NULL)
			lb_haproxy_stop((int)json_integer_value(p));
		json_array_foreach(json_object_get(res, "applied_addrs"), i, v) {
			char dev[64];
			const char *s = json_string_value(v), *bar = strchr(s, '|');

			if (bar == NULL)
				continue;
			snprintf(dev, sizeof(dev), "%.*s", (int)(bar - s), s);
			lb_addr_remove(dev, bar + 1);
		}
	}
	json_object_del(w->hapids, id);
	if (forget) {
		json_object_del(res, "applied_spec");
		json_object_del(res, "applied_addrs");
	}
}

/* --- load balancers: development_docs/api/command_list/lb/<action>.md ------------- */

static bool
lb_live(const json_t *lb)
{
	const char *s = sget(lb, "status");

	return strcmp(s, "deleted") != 0 && strcmp(s, "ceased") != 0;
}

static json_t *
lb_find(struct world *w, const char *id)
{
	json_t *lb = find_by(json_object_get(w->root, "loadbalancers"), "loadbalancer_id", id);

	return lb != NULL && lb_live(lb) ? lb : NULL;
}

/* True when a load balancer not yet deleted lives in VXNET_ID (it holds an address there). */
static bool
lb_in_vxnet(struct world *w, const char *vxnet_id)
{
	json_t *lb;
	size_t i;

	json_array_foreach(json_object_get(w->root, "loadbalancers"), i, lb)
		if (lb_live(lb) && strcmp(sget(lb, "vxnet_id"), vxnet_id) == 0)
			return true;
	return false;
}

static void
lb_changed(json_t *lb)
{
	json_object_set_new(lb, "is_applied", json_integer(0));
}

/* An address of the VxNet's ip_network, free of instances and load balancers. */
static bool
vxnet_ip_ok(struct world *w, json_t *vx, const char *ip)
{
	uint32_t net, a;
	int plen;
	struct in_addr in;

	if (!parse_cidr(sget(vx, "ip_network"), &net, &plen) || inet_pton(AF_INET, ip, &in) != 1)
		return false;
	a = ntohl(in.s_addr);
	return (a & (0xffffffffu << (32 - plen))) == net && a != net &&
	       a != (net | ~(0xffffffffu << (32 - plen))) &&
	       strcmp(ip, sget(vx, "manager_ip")) != 0 && !ip_in_use(w, sget(vx, "vxnet_id"), ip);
}

/* CreateLoadBalancer (lb/create_loadbalancer.md): eips.n (public) or vxnet (private). */
static int
act_create_lb(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *vid = fqc_param_get(r, "vxnet"), *pip = fqc_param_get(r, "private_ip");
	const char *name = fqc_param_get(r, "loadbalancer_name");
	json_t *eips = list_param(r, "eips"), *vx = NULL, *v, *ids;
	char id[32], ip[64] = "";
	long type, hdr;
	size_t i;
	int c = 0;

	if (int_param(r, "loadbalancer_type", 0, 5, 0, &type, resp) != 0 ||
	    int_param(r, "http_header_size", 1, 127, 15, &hdr, resp) != 0) {
		c = FQC_ERR_PARAM;
		goto out;
	}
	if ((vid == NULL || vid[0] == '\0') == (json_array_size(eips) == 0)) {
		c = fail(resp, FQC_ERR_PARAM,
			 "InvalidParameterValue, exactly one of [eips.n] and [vxnet] is required");
		goto out;
	}
	if (json_array_size(eips) > 4) {
		c = fail(resp, FQC_ERR_PARAM,
			 "InvalidParameterValue, [eips.n] at most 4 for a load balancer");
		goto out;
	}
	json_array_foreach(eips, i, v) {
		json_t *e = eip_find(w, json_string_value(v));

		if (e == NULL) {
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
			goto out;
		}
		if (strcmp(sget(e, "status"), "available") != 0) {
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, eip [%s] is not available",
				 json_string_value(v));
			goto out;
		}
	}
	if (vid != NULL && vid[0] != '\0') {
		vx = find_by(json_object_get(w->root, "vxnets"), "vxnet_id", vid);
		if (vx == NULL) {
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", vid);
			goto out;
		}
		if (sget(vx, "ip_network")[0] == '\0') {
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, vxnet [%s] is not joined to a router", vid);
			goto out;
		}
		if (pip != NULL && pip[0] != '\0') {
			if (!vxnet_ip_ok(w, vx, pip)) {
				c = fail(
					resp, FQC_ERR_PARAM,
					"InvalidParameterValue, [private_ip] [%s] is not a free address of %s",
					pip, sget(vx, "ip_network"));
				goto out;
			}
			snprintf(ip, sizeof(ip), "%s", pip);
		} else {
			alloc_ip(w, vx, ip, sizeof(ip));
			if (ip[0] == '\0') {
				c = fail(resp, FQC_ERR_QUOTA,
					 "QuotaExceeded, vxnet [%s] has no free address", vid);
				goto out;
			}
		}
	}
	if (over_cap(w, "loadbalancers", 1)) {
		c = fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded",
			 "loadbalancer");
		goto out;
	}
	new_id("lb", 8, id, sizeof(id));
	json_array_foreach(eips, i, v)
		eip_set_resource(eip_find(w, json_string_value(v)), "loadbalancer", id, now);
	json_array_append_new(
		json_object_get(w->root, "loadbalancers"),
		json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:O, s:s, s:s, s:I, s:s, s:I, s:I}",
			  "loadbalancer_id", id, "loadbalancer_name", name ? name : "",
			  "loadbalancer_type", (json_int_t)type, "http_header_size",
			  (json_int_t)hdr, "vxnet_id", vx ? vid : "", "private_ip", ip, "eips",
			  eips, "status", "pending", "transition_status", "creating", "is_applied",
			  (json_int_t)1, "security_group_id",
			  fqc_param_get(r, "security_group") ? fqc_param_get(r, "security_group")
							     : "",
			  "create_ms", (json_int_t)now, "status_ms", (json_int_t)now));
	ids = json_pack("[s]", id);
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w, "CreateLoadBalancer", ids, now,
						now + w->cfg->job_ms)));
	json_decref(ids);
	json_object_set_new(resp, "loadbalancer_id", json_string(id));
	w->dirty = true;
out:
	json_decref(eips);
	return c;
}

static json_t *
listener_view(const json_t *l)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:s}",
			 "loadbalancer_listener_id", sget(l, "loadbalancer_listener_id"),
			 "loadbalancer_listener_name", sget(l, "loadbalancer_listener_name"),
			 "loadbalancer_id", sget(l, "loadbalancer_id"), "listener_port",
			 (json_int_t)iget(l, "listener_port"), "listener_protocol",
			 sget(l, "listener_protocol"), "backend_protocol",
			 sget(l, "backend_protocol"), "balance_mode", sget(l, "balance_mode"),
			 "healthy_check_method", sget(l, "healthy_check_method"),
			 "healthy_check_option", sget(l, "healthy_check_option"), "forwardfor",
			 (json_int_t)iget(l, "forwardfor"), "listener_option",
			 (json_int_t)iget(l, "listener_option"), "session_sticky",
			 sget(l, "session_sticky"), "create_time", jtime(iget(l, "create_ms")),
			 "controller", "self");
}

static int
act_describe_lbs(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancers"), *st = list_param(r, "status");
	json_t *tags = list_param(r, "tags"), *all = json_array(), *lb;
	const char *word = fqc_param_get(r, "search_word");
	const char *verbose = fqc_param_get(r, "verbose");
	size_t i, j;

	json_array_foreach(json_object_get(w->root, "loadbalancers"), i, lb) {
		const char *id = sget(lb, "loadbalancer_id");
		json_t *o, *eips = json_array(), *v, *l;

		if ((json_array_size(ids) > 0 && !in_list(ids, id)) ||
		    (json_array_size(st) > 0 ? !in_list(st, sget(lb, "status")) : !lb_live(lb)) ||
		    !search_ok(word, id, sget(lb, "loadbalancer_name")) ||
		    !tag_filter_ok(w, tags, id)) {
			json_decref(eips);
			continue;
		}
		json_array_foreach(json_object_get(lb, "eips"), j, v) {
			json_t *e = find_by(json_object_get(w->root, "eips"), "eip_id",
					    json_string_value(v));

			if (e != NULL)
				json_array_append_new(eips, eip_brief(e));
		}
		o = json_pack(
			"{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:o, s:s, s:o, s:o, s:o, s:s, s:o}",
			"loadbalancer_id", id, "loadbalancer_name", sget(lb, "loadbalancer_name"),
			"description", "", "loadbalancer_type",
			(json_int_t)iget(lb, "loadbalancer_type"), "status", sget(lb, "status"),
			"transition_status", sget(lb, "transition_status"), "is_applied",
			(json_int_t)iget(lb, "is_applied"), "eips", eips, "vxnet_id",
			sget(lb, "vxnet_id"), "private_ips", json_array(), "create_time",
			jtime(iget(lb, "create_ms")), "status_time", jtime(iget(lb, "status_ms")),
			"security_group_id", sget(lb, "security_group_id"), "tags",
			tags_of(w, id, true));
		if (sget(lb, "private_ip")[0] != '\0')
			json_array_append_new(json_object_get(o, "private_ips"),
					      json_string(sget(lb, "private_ip")));
		if (verbose != NULL && verbose[0] == '1') {
			json_t *ls = json_array();

			json_array_foreach(json_object_get(w->root, "lb_listeners"), j, l)
				if (strcmp(sget(l, "loadbalancer_id"), id) == 0)
					json_array_append_new(ls, listener_view(l));
			json_object_set_new(o, "listeners", ls);
		}
		json_array_append_new(all, o);
	}
	json_decref(ids);
	json_decref(st);
	json_decref(tags);
	return page(r, all, "loadbalancer_set", resp);
}

/* Removes from ARRAY every element whose FIELD is VALUE. */
static void
remove_where(json_t *array, const char *field, const char *value)
{
	size_t i;

	for (i = 0; i < json_array_size(array); i++)
		if (strcmp(sget(json_array_get(array, i), field), value) == 0)
			json_array_remove(array, i--);
}

static int
act_delete_lbs(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancers"), *v, *lb;
	size_t i;
	int c = 0;

	if (json_array_size(ids) == 0)
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "loadbalancers.n");
	json_array_foreach(ids, i, v) {
		if (c != 0)
			break;
		lb = lb_find(w, json_string_value(v));
		if (lb == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
		else if (strcmp(sget(lb, "transition_status"), "deleting") == 0)
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, load balancer [%s] is being deleted",
				 json_string_value(v));
	}
	if (c == 0) {
		json_array_foreach(ids, i, v)
			json_object_set_new(lb_find(w, json_string_value(v)), "transition_status",
					    json_string("deleting"));
		json_object_set_new(resp, "job_id",
				    json_string(new_job(w, "DeleteLoadBalancers", ids, now,
							now + w->cfg->job_ms)));
		json_object_set(resp, "loadbalancers", ids);
		w->dirty = true;
	}
	json_decref(ids);
	return c;
}

/* A URL path or host for an haproxy check line: no space, quote or control character. */
static bool
check_word_ok(const char *s, bool path)
{
	if (s[0] == '\0' || strlen(s) > 200 || (path && s[0] != '/'))
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(path ? "/._-~%?=&+:" : ".-:", *s)))
			return false;
	return true;
}

/*
 * healthy_check_method "tcp" or "http|/url[|host]" and healthy_check_option
 * "inter|timeout|fall|rise" with the docs' ranges (add_loadbalancer_listeners.md).
 */
static const char *
check_spec_error(const char *method, const char *option)
{
	long inter, timeout, fall, rise;
	char extra;

	if (strcmp(method, "tcp") != 0) {
		char buf[512], *path, *host;

		if (strncmp(method, "http|", 5) != 0 || strlen(method) >= sizeof(buf))
			return "healthy_check_method";
		snprintf(buf, sizeof(buf), "%s", method + 5);
		path = buf;
		host = strchr(buf, '|');
		if (host != NULL)
			*host++ = '\0';
		if (!check_word_ok(path, true) || (host != NULL && !check_word_ok(host, false)))
			return "healthy_check_method";
	}
	if (sscanf(option, "%ld|%ld|%ld|%ld%c", &inter, &timeout, &fall, &rise, &extra) != 4 ||
	    inter < 2 || inter > 60 || timeout < 5 || timeout > 300 || fall < 2 || fall > 10 ||
	    rise < 2 || rise > 10)
		return "healthy_check_option";
	return NULL;
}

static int
act_add_lb_listeners(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *lid = fqc_param_get(r, "loadbalancer");
	json_t *lb, *add = json_array(), *ids = json_array(), *l, *v;
	char k[FQC_MAX_KEY + 64];
	size_t i;
	int n, c = 0;

	if (lid == NULL) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "loadbalancer");
		goto out;
	}
	if ((lb = lb_find(w, lid)) == NULL) {
		c = fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found", lid);
		goto out;
	}
	for (n = 1; n <= FQC_MAX_PARAMS; n++) {
		const char *f[8];
		static const char *const names[8] = { "listener_port",
						      "listener_protocol",
						      "backend_protocol",
						      "balance_mode",
						      "healthy_check_method",
						      "healthy_check_option",
						      "loadbalancer_listener_name",
						      "session_sticky" };
		long port, fwd, opt, tunnel;
		const char *bad;
		int m;

		for (m = 0; m < 8; m++) {
			snprintf(k, sizeof(k), "listeners.%d.%s", n, names[m]);
			f[m] = fqc_param_get(r, k);
		}
		snprintf(k, sizeof(k), "listeners.%d.listener_port", n);
		if (f[0] == NULL)
			continue;
		if (int_param(r, k, 1, 65535, 0, &port, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		snprintf(k, sizeof(k), "listeners.%d.forwardfor", n);
		if (int_param(r, k, 0, 7, 0, &fwd, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		snprintf(k, sizeof(k), "listeners.%d.listener_option", n);
		if (int_param(r, k, 0, 15, 0, &opt, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		snprintf(k, sizeof(k), "listeners.%d.tunnel_timeout", n);
		if (int_param(r, k, 10, 86400, 3600, &tunnel, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		if (f[1] == NULL || f[2] == NULL) {
			snprintf(k, sizeof(k), "listeners.%d.%s", n,
				 f[1] == NULL ? "listener_protocol" : "backend_protocol");
			c = fail(resp, FQC_ERR_PARAM,
				 "MissingParameter, the request parameter [%s] is required", k);
			goto out;
		}
		if (strcmp(f[1], "https") == 0) {
			c = fail(
				resp, FQC_ERR_PARAM,
				"InvalidParameterValue, [listeners.%d.listener_protocol] https needs server certificates, not in this fake",
				n);
			goto out;
		}
		if ((strcmp(f[1], "http") != 0 && strcmp(f[1], "tcp") != 0) ||
		    strcmp(f[1], f[2]) != 0) {
			c = fail(
				resp, FQC_ERR_PARAM,
				"InvalidParameterValue, [listeners.%d.listener_protocol] and backend_protocol should both be http or tcp",
				n);
			goto out;
		}
		if (f[3] != NULL && strcmp(f[3], "roundrobin") != 0 &&
		    strcmp(f[3], "leastconn") != 0 && strcmp(f[3], "source") != 0) {
			c = fail(
				resp, FQC_ERR_PARAM,
				"InvalidParameterValue, [listeners.%d.balance_mode] should be roundrobin, leastconn or source",
				n);
			goto out;
		}
		if ((bad = check_spec_error(f[4] ? f[4] : "tcp", f[5] ? f[5] : "10|5|2|5"))) {
			c = fail(resp, FQC_ERR_PARAM, "InvalidParameterValue, [listeners.%d.%s]", n,
				 bad);
			goto out;
		}
		json_array_foreach(json_object_get(w->root, "lb_listeners"), i, l)
			if (strcmp(sget(l, "loadbalancer_id"), lid) == 0 &&
			    iget(l, "listener_port") == port)
				goto dup;
		json_array_foreach(add, i, l)
			if (iget(l, "listener_port") == port)
				goto dup;
		{
			char id[32];

			new_id("lbl", 8, id, sizeof(id));
			json_array_append_new(
				add,
				json_pack(
					"{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}",
					"loadbalancer_listener_id", id, "loadbalancer_id", lid,
					"listener_port", (json_int_t)port, "listener_protocol",
					f[1], "backend_protocol", f[2], "balance_mode",
					f[3] ? f[3] : "roundrobin", "healthy_check_method",
					f[4] ? f[4] : "tcp", "healthy_check_option",
					f[5] ? f[5] : "10|5|2|5", "loadbalancer_listener_name",
					f[6] ? f[6] : "", "session_sticky", f[7] ? f[7] : "",
					"forwardfor", (json_int_t)fwd, "listener_option",
					(json_int_t)opt, "tunnel_timeout", (json_int_t)tunnel,
					"create_ms", (json_int_t)now));
			json_array_append_new(ids, json_string(id));
		}
		continue;
dup:
		c = fail(resp, FQC_ERR_PARAM,
			 "InvalidParameterValue, [listeners.%d.listener_port] %ld is already used",
			 n, port);
		goto out;
	}
	if (json_array_size(add) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "listeners.n.listener_port");
		goto out;
	}
	if (over_cap(w, "lb_listeners", (long)json_array_size(add))) {
		c = fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded",
			 "loadbalancer_listener");
		goto out;
	}
	json_array_foreach(add, i, v)
		json_array_append(json_object_get(w->root, "lb_listeners"), v);
	lb_changed(lb);
	json_object_set(resp, "loadbalancer_listeners", ids);
	w->dirty = true;
out:
	json_decref(add);
	json_decref(ids);
	return c;
}

static json_t *
backend_view(const json_t *b, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}",
			 "loadbalancer_backend_id", sget(b, "loadbalancer_backend_id"),
			 "loadbalancer_backend_name", sget(b, "loadbalancer_backend_name"),
			 "loadbalancer_listener_id", sget(b, "loadbalancer_listener_id"),
			 "loadbalancer_id", sget(b, "loadbalancer_id"), "resource_id",
			 sget(b, "resource_id"), "port", (json_int_t)iget(b, "port"), "weight",
			 (json_int_t)iget(b, "weight"), "disabled", (json_int_t)iget(b, "disabled"),
			 "status", status, "create_time", jtime(iget(b, "create_ms")));
}

static int
act_describe_lb_listeners(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancer_listeners"), *all = json_array(), *l, *b;
	const char *lid = fqc_param_get(r, "loadbalancer");
	const char *verbose = fqc_param_get(r, "verbose");
	size_t i, j;

	json_array_foreach(json_object_get(w->root, "lb_listeners"), i, l) {
		json_t *o;

		if ((json_array_size(ids) > 0 &&
		     !in_list(ids, sget(l, "loadbalancer_listener_id"))) ||
		    (lid != NULL && lid[0] != '\0' && strcmp(lid, sget(l, "loadbalancer_id")) != 0))
			continue;
		o = listener_view(l);
		if (verbose != NULL && verbose[0] == '1') {
			json_t *bs = json_array();

			json_array_foreach(json_object_get(w->root, "lb_backends"), j, b)
				if (strcmp(sget(b, "loadbalancer_listener_id"),
					   sget(l, "loadbalancer_listener_id")) == 0)
					json_array_append_new(bs, backend_view(b, ""));
			json_object_set_new(o, "backends", bs);
		}
		json_array_append_new(all, o);
	}
	json_decref(ids);
	return page(r, all, "loadbalancer_listener_set", resp);
}

static int
act_delete_lb_listeners(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancer_listeners"), *v, *l;
	json_t *ls = json_object_get(w->root, "lb_listeners");
	size_t i;

	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "loadbalancer_listeners.n");
	}
	json_array_foreach(ids, i, v)
		if (find_by(ls, "loadbalancer_listener_id", json_string_value(v)) == NULL) {
			int c = fail(resp, FQC_ERR_NOT_FOUND,
				     "ResourceNotFound, resource [%s] not found",
				     json_string_value(v));

			json_decref(ids);
			return c;
		}
	json_array_foreach(ids, i, v) {
		l = find_by(ls, "loadbalancer_listener_id", json_string_value(v));
		lb_changed(lb_find(w, sget(l, "loadbalancer_id")));
		remove_where(json_object_get(w->root, "lb_backends"), "loadbalancer_listener_id",
			     json_string_value(v));
		remove_where(ls, "loadbalancer_listener_id", json_string_value(v));
	}
	json_object_set_new(resp, "loadbalancer_listeners", ids);
	w->dirty = true;
	return 0;
}

static int
act_add_lb_backends(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *lid = fqc_param_get(r, "loadbalancer_listener");
	json_t *l, *add = json_array(), *ids = json_array(), *v;
	char k[FQC_MAX_KEY + 64];
	size_t i;
	int n, c = 0;

	if (lid == NULL) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "loadbalancer_listener");
		goto out;
	}
	l = find_by(json_object_get(w->root, "lb_listeners"), "loadbalancer_listener_id", lid);
	if (l == NULL) {
		c = fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found", lid);
		goto out;
	}
	for (n = 1; n <= FQC_MAX_PARAMS; n++) {
		const char *rid, *name;
		json_t *inst;
		long port, weight;
		char id[32];

		snprintf(k, sizeof(k), "backends.%d.resource_id", n);
		if ((rid = fqc_param_get(r, k)) == NULL)
			continue;
		inst = inst_find(w, rid);
		if (inst == NULL || !live(inst)) {
			c = fail(
				resp, FQC_ERR_NOT_FOUND,
				"ResourceNotFound, [%s] resource [%s] not found (instances only in this fake)",
				k, rid);
			goto out;
		}
		snprintf(k, sizeof(k), "backends.%d.port", n);
		if (fqc_param_get(r, k) == NULL) {
			c = fail(resp, FQC_ERR_PARAM,
				 "MissingParameter, the request parameter [%s] is required", k);
			goto out;
		}
		if (int_param(r, k, 1, 65535, 0, &port, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		snprintf(k, sizeof(k), "backends.%d.weight", n);
		if (int_param(r, k, 1, 100, 1, &weight, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		snprintf(k, sizeof(k), "backends.%d.loadbalancer_backend_name", n);
		name = fqc_param_get(r, k);
		new_id("lbb", 8, id, sizeof(id));
		json_array_append_new(add,
				      json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}",
						"loadbalancer_backend_id", id,
						"loadbalancer_listener_id", lid, "loadbalancer_id",
						sget(l, "loadbalancer_id"), "resource_id", rid,
						"loadbalancer_backend_name", name ? name : "",
						"port", (json_int_t)port, "weight",
						(json_int_t)weight, "disabled", (json_int_t)0,
						"create_ms", (json_int_t)now));
		json_array_append_new(ids, json_string(id));
	}
	if (json_array_size(add) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "backends.n.resource_id");
		goto out;
	}
	if (over_cap(w, "lb_backends", (long)json_array_size(add))) {
		c = fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded",
			 "loadbalancer_backend");
		goto out;
	}
	json_array_foreach(add, i, v)
		json_array_append(json_object_get(w->root, "lb_backends"), v);
	lb_changed(lb_find(w, sget(l, "loadbalancer_id")));
	json_object_set(resp, "loadbalancer_backends", ids);
	w->dirty = true;
out:
	json_decref(add);
	json_decref(ids);
	return c;
}

/*
 * A backend's status as DescribeLoadBalancerBackends' docs define it (up, down,
 * abnormal). Netns mode: haproxy's own view of the server (UP… → up; DOWN…,
 * MAINT → down; anything else, e.g. NOLB or DRAIN → abnormal); no haproxy
 * (not applied) → down. Otherwise: up when the instance is running.
 */
static const char *
backend_status(struct world *w, const json_t *b, json_t **states, const char **states_lb)
{
	json_t *inst;
	const char *s;

	if (!w->cfg->netns) {
		inst = inst_find(w, sget(b, "resource_id"));
		return inst != NULL && strcmp(sget(inst, "status"), "running") == 0 ? "up" : "down";
	}
	if (*states == NULL || strcmp(*states_lb, sget(b, "loadbalancer_id")) != 0) {
		json_decref(*states);
		*states_lb = sget(b, "loadbalancer_id");
		*states = json_object_get(w->hapids, *states_lb) != NULL
				  ? lb_haproxy_server_states(w->cfg, *states_lb)
				  : json_object();
	}
	s = json_string_value(json_object_get(*states, sget(b, "loadbalancer_backend_id")));
	if (s == NULL || strncmp(s, "DOWN", 4) == 0 || strcmp(s, "MAINT") == 0)
		return "down";
	/* "UP 1/2": in rotation, a check pending or failing once (fall not reached) */
	if (strncmp(s, "UP", 2) == 0 || strcmp(s, "no check") == 0)
		return "up";
	return "abnormal";
}

static int
act_describe_lb_backends(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancer_backends"), *all = json_array(), *b;
	json_t *states = NULL;
	const char *states_lb = "";
	const char *lsn = fqc_param_get(r, "loadbalancer_listener");
	const char *lid = fqc_param_get(r, "loadbalancer");
	size_t i;

	json_array_foreach(json_object_get(w->root, "lb_backends"), i, b) {
		if ((json_array_size(ids) > 0 &&
		     !in_list(ids, sget(b, "loadbalancer_backend_id"))) ||
		    (lsn != NULL && lsn[0] != '\0' &&
		     strcmp(lsn, sget(b, "loadbalancer_listener_id")) != 0) ||
		    (lid != NULL && lid[0] != '\0' && strcmp(lid, sget(b, "loadbalancer_id")) != 0))
			continue;
		json_array_append_new(all,
				      backend_view(b, backend_status(w, b, &states, &states_lb)));
	}
	json_decref(states);
	json_decref(ids);
	return page(r, all, "loadbalancer_backend_set", resp);
}

static int
act_delete_lb_backends(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancer_backends"), *v, *b;
	json_t *bs = json_object_get(w->root, "lb_backends");
	size_t i;

	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "loadbalancer_backends.n");
	}
	json_array_foreach(ids, i, v)
		if (find_by(bs, "loadbalancer_backend_id", json_string_value(v)) == NULL) {
			int c = fail(resp, FQC_ERR_NOT_FOUND,
				     "ResourceNotFound, resource [%s] not found",
				     json_string_value(v));

			json_decref(ids);
			return c;
		}
	json_array_foreach(ids, i, v) {
		b = find_by(bs, "loadbalancer_backend_id", json_string_value(v));
		lb_changed(lb_find(w, sget(b, "loadbalancer_id")));
		remove_where(bs, "loadbalancer_backend_id", json_string_value(v));
	}
	json_object_set_new(resp, "loadbalancer_backends", ids);
	w->dirty = true;
	return 0;
}

/* ModifyLoadBalancerBackendAttributes: port, weight, disabled (1: out of rotation). */
static int
act_modify_lb_backend(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *id = fqc_param_get(r, "loadbalancer_backend");
	json_t *b;
	long port, weight, disabled;

	if (id == NULL)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "loadbalancer_backend");
	b = find_by(json_object_get(w->root, "lb_backends"), "loadbalancer_backend_id", id);
	if (b == NULL)
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    id);
	if (int_param(r, "port", 1, 65535, (long)iget(b, "port"), &port, resp) != 0 ||
	    int_param(r, "weight", 1, 100, (long)iget(b, "weight"), &weight, resp) != 0 ||
	    int_param(r, "disabled", 0, 1, (long)iget(b, "disabled"), &disabled, resp) != 0)
		return FQC_ERR_PARAM;
	json_object_set_new(b, "port", json_integer(port));
	json_object_set_new(b, "weight", json_integer(weight));
	json_object_set_new(b, "disabled", json_integer(disabled));
	lb_changed(lb_find(w, sget(b, "loadbalancer_id")));
	w->dirty = true;
	return 0;
}

static int
act_update_lbs(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "loadbalancers"), *v, *lb;
	size_t i;
	int c = 0;

	if (json_array_size(ids) == 0)
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "loadbalancers.n");
	json_array_foreach(ids, i, v) {
		if (c != 0)
			break;
		lb = lb_find(w, json_string_value(v));
		if (lb == NULL)
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
		else if (strcmp(sget(lb, "status"), "active") != 0 ||
			 sget(lb, "transition_status")[0] != '\0')
			c = fail(resp, FQC_ERR_DENIED,
				 "PermissionDenied, load balancer [%s] is %s%s%s",
				 json_string_value(v), sget(lb, "status"),
				 sget(lb, "transition_status")[0] ? "/" : "",
				 sget(lb, "transition_status"));
	}
	if (c == 0) {
		json_array_foreach(ids, i, v)
			json_object_set_new(lb_find(w, json_string_value(v)), "transition_status",
					    json_string("updating"));
		json_object_set_new(resp, "job_id",
				    json_string(new_job(w, "UpdateLoadBalancers", ids, now,
							now + w->cfg->job_ms)));
		w->dirty = true;
	}
	json_decref(ids);
	return c;
}

/* AssociateEipsToLoadBalancer / DissociateEipsFromLoadBalancer (lb/associate_eips_to_loadbalancer.md, lb/dissociate_eips_from_loadbalancer.md). */
static int
act_lb_eips(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp, bool assoc)
{
	const char *lid = fqc_param_get(r, "loadbalancer");
	json_t *ids = list_param(r, "eips"), *v, *lb, *e, *jids;
	size_t i;
	int c = 0;

	if (lid == NULL || json_array_size(ids) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 lid == NULL ? "loadbalancer" : "eips.n");
		goto out;
	}
	if ((lb = lb_find(w, lid)) == NULL) {
		c = fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found", lid);
		goto out;
	}
	if (sget(lb, "vxnet_id")[0] != '\0') {
		c = fail(resp, FQC_ERR_DENIED,
			 "PermissionDenied, load balancer [%s] is private (in a vxnet)", lid);
		goto out;
	}
	json_array_foreach(ids, i, v) {
		e = eip_find(w, json_string_value(v));
		if (e == NULL) {
			c = fail(resp, FQC_ERR_NOT_FOUND,
				 "ResourceNotFound, resource [%s] not found", json_string_value(v));
			goto out;
		}
		if (assoc ? strcmp(sget(e, "status"), "available") != 0
			  : strcmp(sget(e, "resource_id"), lid) != 0) {
			c = fail(resp, FQC_ERR_DENIED, "PermissionDenied, eip [%s] is %s",
				 json_string_value(v),
				 assoc ? "not available" : "not on this load balancer");
			goto out;
		}
	}
	if (assoc && json_array_size(json_object_get(lb, "eips")) + json_array_size(ids) > 4) {
		c = fail(resp, FQC_ERR_PARAM,
			 "InvalidParameterValue, [eips.n] at most 4 for a load balancer");
		goto out;
	}
	json_array_foreach(ids, i, v) {
		e = eip_find(w, json_string_value(v));
		if (assoc) {
			eip_set_resource(e, "loadbalancer", lid, now);
			json_array_append(json_object_get(lb, "eips"), v);
			lb_changed(lb);
		} else {
			eip_detach(w, e, now);
		}
	}
	jids = json_pack("[s]", lid);
	json_object_set_new(resp, "job_id",
			    json_string(new_job(w,
						assoc ? "AssociateEipsToLoadBalancer"
						      : "DissociateEipsFromLoadBalancer",
						jids, now, now + w->cfg->job_ms)));
	json_decref(jids);
	w->dirty = true;
out:
	json_decref(ids);
	return c;
}

static int
act_associate_eips_to_lb(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	return act_lb_eips(w, r, now, resp, true);
}

static int
act_dissociate_eips_from_lb(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	return act_lb_eips(w, r, now, resp, false);
}

/*
 * UpdateLoadBalancers' effect: each listener a frontend on the load balancer's
 * address(es) (private_ip, or each EIP) at listener_port; each backend a server
 * at its instance's private_ip:port, out of rotation when disabled; the check
 * from healthy_check_method/option.
 */
static void
lb_apply(struct world *w, json_t *lb)
{
	const char *id = sget(lb, "loadbalancer_id");
	json_t *spec = json_pack("{s:[]}", "frontends"), *addrs = json_array(), *l, *b, *v;
	char dev[64];
	size_t i, j;

	if (sget(lb, "vxnet_id")[0] != '\0') {
		char a[128];

		inst_bridge_name(w->cfg, sget(lb, "vxnet_id"), dev, sizeof(dev));
		snprintf(a, sizeof(a), "%s|%s", dev, sget(lb, "private_ip"));
		json_array_append_new(addrs, json_string(a));
	} else {
		lb_eip_dev_name(w->cfg, dev, sizeof(dev));
		json_array_foreach(json_object_get(lb, "eips"), i, v) {
			json_t *e = eip_find(w, json_string_value(v));
			char a[128];

			if (e == NULL)
				continue;
			snprintf(a, sizeof(a), "%s|%s", dev, sget(e, "eip_addr"));
			json_array_append_new(addrs, json_string(a));
		}
	}
	json_array_foreach(json_object_get(w->root, "lb_listeners"), i, l) {
		const char *method = sget(l, "healthy_check_method");
		char path[512] = "/", host[256] = "";
		long inter = 10, timeout = 5, fall = 2, rise = 5;
		json_t *fe, *binds = json_array(), *servers = json_array();

		if (strcmp(sget(l, "loadbalancer_id"), id) != 0)
			continue;
		if (strncmp(method, "http|", 5) == 0) {
			char *bar;

			snprintf(path, sizeof(path), "%s", method + 5);
			if ((bar = strchr(path, '|')) != NULL) {
				*bar = '\0';
				snprintf(host, sizeof(host), "%s", bar + 1);
			}
		}
		sscanf(sget(l, "healthy_check_option"), "%ld|%ld|%ld|%ld", &inter, &timeout, &fall,
		       &rise);
		json_array_foreach(addrs, j, v) {
			char bind[128];

			snprintf(bind, sizeof(bind), "%s:%lld",
				 strchr(json_string_value(v), '|') + 1,
				 (long long)iget(l, "listener_port"));
			json_array_append_new(binds, json_string(bind));
		}
		json_array_foreach(json_object_get(w->root, "lb_backends"), j, b) {
			json_t *inst;
			const char *ip;
			struct in_addr in;

			if (strcmp(sget(b, "loadbalancer_listener_id"),
				   sget(l, "loadbalancer_listener_id")) != 0)
				continue;
			inst = inst_find(w, sget(b, "resource_id"));
			ip = inst ? sget(json_array_get(json_object_get(inst, "vxnets"), 0),
					 "private_ip")
				  : "";
			/* RunInstances' "vxnet|ip" is the caller's text: only an IPv4 reaches haproxy */
			if (inet_pton(AF_INET, ip, &in) != 1)
				continue;
			json_array_append_new(servers,
					      json_pack("{s:s, s:s, s:I, s:I, s:b}", "name",
							sget(b, "loadbalancer_backend_id"), "addr",
							ip, "port", (json_int_t)iget(b, "port"),
							"weight", (json_int_t)iget(b, "weight"),
							"disabled", iget(b, "disabled") != 0));
		}
		fe = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o}",
			       "name", sget(l, "loadbalancer_listener_id"), "mode",
			       sget(l, "listener_protocol"), "balance", sget(l, "balance_mode"),
			       "binds", binds, "check",
			       strncmp(method, "http|", 5) == 0 ? "http" : "tcp", "check_path",
			       path, "check_host", host, "inter_s", (json_int_t)inter, "timeout_s",
			       (json_int_t)timeout, "fall", (json_int_t)fall, "rise",
			       (json_int_t)rise, "servers", servers);
		json_array_append_new(json_object_get(spec, "frontends"), fe);
	}
	real_apply(w, lb, id, spec, addrs);
}

/* --- router port forwarding: router/{add,describe,delete}_router_statics.md -- */

static json_t *
router_eip(struct world *w, const json_t *rt)
{
	const char *eid = sget(rt, "eip_id");

	return eid[0] != '\0' ? eip_find(w, eid) : NULL;
}

/* ModifyRouterAttributes (router/modify_router_attributes.md): eip ("" detaches), name. */
static int
act_modify_router_attributes(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *rid = fqc_param_get(r, "router"), *eid = fqc_param_get(r, "eip");
	const char *name = fqc_param_get(r, "router_name");
	json_t *rt, *e = NULL, *old;

	if (rid == NULL)
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required", "router");
	rt = find_by(json_object_get(w->root, "routers"), "router_id", rid);
	if (rt == NULL)
		return fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found",
			    rid);
	if (eid != NULL && eid[0] != '\0') {
		if ((e = eip_find(w, eid)) == NULL)
			return fail(resp, FQC_ERR_NOT_FOUND,
				    "ResourceNotFound, resource [%s] not found", eid);
		if (strcmp(sget(e, "status"), "available") != 0 &&
		    strcmp(sget(e, "resource_id"), rid) != 0)
			return fail(resp, FQC_ERR_DENIED,
				    "PermissionDenied, eip [%s] is not available", eid);
	}
	if (eid != NULL) {
		if ((old = router_eip(w, rt)) != NULL && old != e)
			eip_set_resource(old, "", "", now);
		if (e != NULL)
			eip_set_resource(e, "router", rid, now);
		json_object_set_new(rt, "eip_id", json_string(eid));
		json_object_set_new(rt, "is_applied", json_integer(0));
	}
	if (name != NULL)
		json_object_set_new(rt, "router_name", json_string(name));
	w->dirty = true;
	return 0;
}

static bool
port_ok(const char *s)
{
	char *end;
	long n;

	if (s == NULL || s[0] == '\0')
		return false;
	n = strtol(s, &end, 10);
	return *end == '\0' && n >= 1 && n <= 65535;
}

static int
act_add_router_statics(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *rid = fqc_param_get(r, "router"), *vid = fqc_param_get(r, "vxnet");
	json_t *rt, *add = json_array(), *ids = json_array(), *v;
	char k[FQC_MAX_KEY + 64];
	size_t i;
	int n, c = 0;

	if (rid == NULL) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required", "router");
		goto out;
	}
	if ((rt = find_by(json_object_get(w->root, "routers"), "router_id", rid)) == NULL) {
		c = fail(resp, FQC_ERR_NOT_FOUND, "ResourceNotFound, resource [%s] not found", rid);
		goto out;
	}
	for (n = 1; n <= FQC_MAX_PARAMS; n++) {
		const char *val[6], *name;
		long type;
		char id[32];
		int m;
		json_t *o;

		snprintf(k, sizeof(k), "statics.%d.static_type", n);
		if (fqc_param_get(r, k) == NULL)
			continue;
		if (int_param(r, k, 1, 8, 1, &type, resp) != 0) {
			c = FQC_ERR_PARAM;
			goto out;
		}
		for (m = 0; m < 6; m++) {
			snprintf(k, sizeof(k), "statics.%d.val%d", n, m + 1);
			val[m] = fqc_param_get(r, k);
		}
		if (val[0] == NULL) {
			snprintf(k, sizeof(k), "statics.%d.val1", n);
			c = fail(resp, FQC_ERR_PARAM,
				 "MissingParameter, the request parameter [%s] is required", k);
			goto out;
		}
		if (type ==
		    1) { /* port forwarding: val1 source port, val2 ip, val3 port, val4 tcp|udp */
			struct in_addr in;
			const char *bad = !port_ok(val[0]) ? "val1"
					  : val[1] == NULL || inet_pton(AF_INET, val[1], &in) != 1
						  ? "val2"
					  : !port_ok(val[2]) ? "val3"
					  : val[3] != NULL && strcmp(val[3], "tcp") != 0 &&
							  strcmp(val[3], "udp") != 0
						  ? "val4"
						  : NULL;

			if (bad != NULL) {
				c = fail(
					resp, FQC_ERR_PARAM,
					"InvalidParameterValue, [statics.%d.%s] is not valid for a port forwarding rule",
					n, bad);
				goto out;
			}
		}
		snprintf(k, sizeof(k), "statics.%d.router_static_name", n);
		name = fqc_param_get(r, k);
		new_id("rtrs", 8, id, sizeof(id));
		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "router_static_id", id, "router_id",
			      rid, "vxnet_id", vid ? vid : "", "router_static_name",
			      name ? name : "", "static_type", (json_int_t)type, "create_ms",
			      (json_int_t)now);
		for (m = 0; m < 6; m++) {
			char f[8];

			snprintf(f, sizeof(f), "val%d", m + 1);
			json_object_set_new(o, f,
					    json_string(val[m]                  ? val[m]
							: (type == 1 && m == 3) ? "tcp"
										: ""));
		}
		json_array_append_new(add, o);
		json_array_append_new(ids, json_string(id));
	}
	if (json_array_size(add) == 0) {
		c = fail(resp, FQC_ERR_PARAM,
			 "MissingParameter, the request parameter [%s] is required",
			 "statics.n.static_type");
		goto out;
	}
	if (over_cap(w, "router_statics", (long)json_array_size(add))) {
		c = fail(resp, FQC_ERR_QUOTA, "QuotaExceeded, quota of [%s] exceeded",
			 "router_static");
		goto out;
	}
	json_array_foreach(add, i, v)
		json_array_append(json_object_get(w->root, "router_statics"), v);
	json_object_set_new(rt, "is_applied", json_integer(0));
	json_object_set(resp, "router_statics", ids);
	w->dirty = true;
out:
	json_decref(add);
	json_decref(ids);
	return c;
}

static int
act_describe_router_statics(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "router_statics"), *all = json_array(), *s;
	const char *rid = fqc_param_get(r, "router"), *vid = fqc_param_get(r, "vxnet");
	const char *type = fqc_param_get(r, "static_type");
	size_t i;

	json_array_foreach(json_object_get(w->root, "router_statics"), i, s) {
		json_t *o;
		int m;

		if ((json_array_size(ids) > 0 && !in_list(ids, sget(s, "router_static_id"))) ||
		    (rid != NULL && rid[0] != '\0' && strcmp(rid, sget(s, "router_id")) != 0) ||
		    (vid != NULL && vid[0] != '\0' && strcmp(vid, sget(s, "vxnet_id")) != 0) ||
		    (type != NULL && type[0] != '\0' && atol(type) != iget(s, "static_type")))
			continue;
		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "router_static_id",
			      sget(s, "router_static_id"), "router_id", sget(s, "router_id"),
			      "vxnet_id", sget(s, "vxnet_id"), "router_static_name",
			      sget(s, "router_static_name"), "static_type",
			      (json_int_t)iget(s, "static_type"), "create_time",
			      jtime(iget(s, "create_ms")));
		for (m = 1; m <= 6; m++) {
			char f[8];

			snprintf(f, sizeof(f), "val%d", m);
			json_object_set_new(o, f, json_string(sget(s, f)));
		}
		json_array_append_new(all, o);
	}
	json_decref(ids);
	return page(r, all, "router_static_set", resp);
}

static int
act_delete_router_statics(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	json_t *ids = list_param(r, "router_statics"), *v, *s, *rt;
	json_t *ss = json_object_get(w->root, "router_statics");
	size_t i;

	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return fail(resp, FQC_ERR_PARAM,
			    "MissingParameter, the request parameter [%s] is required",
			    "router_statics.n");
	}
	json_array_foreach(ids, i, v)
		if (find_by(ss, "router_static_id", json_string_value(v)) == NULL) {
			int c = fail(resp, FQC_ERR_NOT_FOUND,
				     "ResourceNotFound, resource [%s] not found",
				     json_string_value(v));

			json_decref(ids);
			return c;
		}
	json_array_foreach(ids, i, v) {
		s = find_by(ss, "router_static_id", json_string_value(v));
		rt = find_by(json_object_get(w->root, "routers"), "router_id",
			     sget(s, "router_id"));
		if (rt != NULL)
			json_object_set_new(rt, "is_applied", json_integer(0));
		remove_where(ss, "router_static_id", json_string_value(v));
	}
	json_object_set_new(resp, "router_statics", ids);
	w->dirty = true;
	return 0;
}

/*
 * UpdateRouters' effect on port forwarding: each static_type 1 rule with
 * protocol tcp a TCP frontend on the router's EIP at val1 to val2:val3. udp
 * rules are kept but not forwarded (haproxy is TCP only); no EIP, no forwarding.
 */
static void
router_apply(struct world *w, json_t *rt)
{
	const char *rid = sget(rt, "router_id");
	json_t *spec = json_pack("{s:[]}", "frontends"), *addrs = json_array(), *s;
	json_t *e = router_eip(w, rt);
	size_t i;

	json_array_foreach(json_object_get(w->root, "router_statics"), i, s) {
		char bind[128];
		long port = strtol(sget(s, "val3"), NULL, 10);

		if (e == NULL || strcmp(sget(s, "router_id"), rid) != 0 ||
		    iget(s, "static_type") != 1 || strcmp(sget(s, "val4"), "tcp") != 0)
			continue;
		snprintf(bind, sizeof(bind), "%s:%s", sget(e, "eip_addr"), sget(s, "val1"));
		json_array_append_new(
			json_object_get(spec, "frontends"),
			json_pack("{s:s, s:s, s:s, s:[s], s:s, s:[{s:s, s:s, s:I, s:I, s:b}]}",
				  "name", sget(s, "router_static_id"), "mode", "tcp", "balance",
				  "roundrobin", "binds", bind, "check", "none", "servers", "name",
				  "dest", "addr", sget(s, "val2"), "port", (json_int_t)port,
				  "weight", (json_int_t)1, "disabled", 0));
	}
	if (e != NULL && json_array_size(json_object_get(spec, "frontends")) > 0) {
		char dev[64], a[128];

		lb_eip_dev_name(w->cfg, dev, sizeof(dev));
		snprintf(a, sizeof(a), "%s|%s", dev, sget(e, "eip_addr"));
		json_array_append_new(addrs, json_string(a));
	}
	real_apply(w, rt, rid, spec, addrs);
}

/* --- dispatch -------------------------------------------------------------- */

typedef int (*action_fn)(struct world *, const struct fqc_req *, int64_t, json_t *);

static const struct action {
	const char *name;
	action_fn fn;
	bool zone_free;
	const char *params[40];
} actions[] = {
	{ "DescribeZones", act_describe_zones, true, { "zones.N", "status.N" } },
	{ "RunInstances",
	  act_run_instances,
	  false,
	  { "image_id",       "instance_type", "cpu",           "memory",         "count",
	    "instance_name",  "login_mode",    "login_keypair", "login_passwd",   "vxnets.N",
	    "security_group", "need_userdata", "userdata_type", "userdata_value", "userdata_path",
	    "userdata_file",  "hostname",      "os_disk_size",  "instance_class", "cpu_model",
	    "need_newsid",    "volumes.N",     "target_user" } },
	{ "DescribeInstances",
	  act_describe_instances,
	  false,
	  { "instances.N", "image_id.N", "instance_type.N", "instance_class", "status.N",
	    "search_word", "tags.N", "verbose", "offset", "limit", "owner" } },
	{ "TerminateInstances", act_terminate_instances, false, { "instances.N", "direct_cease" } },
	{ "DescribeJobs",
	  act_describe_jobs,
	  false,
	  { "jobs.N", "status.N", "job_action", "verbose", "offset", "limit" } },
	{ "CreateTag", act_create_tag, false, { "tag_name", "color", "description" } },
	{ "CreateTags", act_create_tag, false, { "tag_name", "color", "description" } },
	{ "DeleteTags", act_delete_tags, false, { "tags.N" } },
	{ "AttachTags",
	  act_attach_tags,
	  false,
	  { "resource_tag_pairs.N.tag_id", "resource_tag_pairs.N.resource_type",
	    "resource_tag_pairs.N.resource_id" } },
	{ "DetachTags",
	  act_detach_tags,
	  false,
	  { "resource_tag_pairs.N.tag_id", "resource_tag_pairs.N.resource_type",
	    "resource_tag_pairs.N.resource_id" } },
	{ "DescribeTags",
	  act_describe_tags,
	  false,
	  { "tags.N", "search_word", "verbose", "offset", "limit", "owner" } },
	{ "CreateVxnets", act_create_vxnets, false, { "vxnet_name", "vxnet_type", "count" } },
	{ "DescribeVxnets",
	  act_describe_vxnets,
	  false,
	  { "vxnets.N", "vxnet_type", "search_word", "tags.N", "verbose", "offset", "limit" } },
	{ "DeleteVxnets", act_delete_vxnets, false, { "vxnets.N" } },
	{ "CreateRouters",
	  act_create_routers,
	  false,
	  { "router_name", "router_type", "security_group", "vpc_network", "count" } },
	{ "DescribeRouters",
	  act_describe_routers,
	  false,
	  { "routers.N", "vxnet", "status.N", "search_word", "tags.N", "verbose", "offset",
	    "limit" } },
	{ "DeleteRouters", act_delete_routers, false, { "routers.N" } },
	{ "JoinRouter",
	  act_join_router,
	  false,
	  { "vxnet", "router", "ip_network", "manager_ip", "dyn_ip_start", "dyn_ip_end",
	    "features" } },
	{ "LeaveRouter", act_leave_router, false, { "router", "vxnets.N" } },
	{ "UpdateRouters", act_update_routers, false, { "routers.N" } },
	{ "ModifyRouterAttributes",
	  act_modify_router_attributes,
	  false,
	  { "router", "eip", "security_group", "router_name", "description", "features", "vxnet",
	    "dyn_ip_start", "dyn_ip_end" } },
	{ "AddRouterStatics",
	  act_add_router_statics,
	  false,
	  { "router", "vxnet", "statics.N.router_static_name", "statics.N.static_type",
	    "statics.N.val1", "statics.N.val2", "statics.N.val3", "statics.N.val4",
	    "statics.N.val5", "statics.N.val6" } },
	{ "DescribeRouterStatics",
	  act_describe_router_statics,
	  false,
	  { "router_statics.N", "router", "vxnet", "static_type", "verbose", "offset", "limit" } },
	{ "DeleteRouterStatics", act_delete_router_statics, false, { "router_statics.N" } },
	{ "AllocateEips",
	  act_allocate_eips,
	  false,
	  { "bandwidth", "billing_mode", "associate_mode", "eip_name", "count", "need_icp",
	    "target_user" } },
	{ "DescribeEips",
	  act_describe_eips,
	  false,
	  { "eips.N", "instance_id", "status.N", "search_word", "tags.N", "verbose", "offset",
	    "limit", "owner" } },
	{ "AssociateEip", act_associate_eip, false, { "eip", "instance", "force" } },
	{ "DissociateEips", act_dissociate_eips, false, { "eips.N" } },
	{ "ReleaseEips", act_release_eips, false, { "eips.N", "force" } },
	{ "CreateLoadBalancer",
	  act_create_lb,
	  false,
	  { "eips.N", "vxnet", "private_ip", "loadbalancer_type", "loadbalancer_name",
	    "security_group", "http_header_size", "target_user", "node_count", "project_id" } },
	{ "DescribeLoadBalancers",
	  act_describe_lbs,
	  false,
	  { "loadbalancers.N", "status.N", "search_word", "tags.N", "verbose", "offset", "limit",
	    "owner" } },
	{ "DeleteLoadBalancers", act_delete_lbs, false, { "loadbalancers.N" } },
	{ "UpdateLoadBalancers", act_update_lbs, false, { "loadbalancers.N" } },
	{ "AddLoadBalancerListeners",
	  act_add_lb_listeners,
	  false,
	  { "loadbalancer", "listeners.N.listener_port", "listeners.N.listener_protocol",
	    "listeners.N.server_certificate_id", "listeners.N.backend_protocol",
	    "listeners.N.loadbalancer_listener_name", "listeners.N.balance_mode",
	    "listeners.N.session_sticky", "listeners.N.forwardfor",
	    "listeners.N.healthy_check_method", "listeners.N.healthy_check_option",
	    "listeners.N.listener_option", "listeners.N.tunnel_timeout" } },
	{ "DescribeLoadBalancerListeners",
	  act_describe_lb_listeners,
	  false,
	  { "loadbalancer_listeners.N", "loadbalancer", "verbose", "offset", "limit" } },
	{ "DeleteLoadBalancerListeners",
	  act_delete_lb_listeners,
	  false,
	  { "loadbalancer_listeners.N" } },
	{ "AddLoadBalancerBackends",
	  act_add_lb_backends,
	  false,
	  { "loadbalancer_listener", "backends.N.resource_id",
	    "backends.N.loadbalancer_backend_name", "backends.N.loadbalancer_policy_id",
	    "backends.N.port", "backends.N.weight" } },
	{ "DescribeLoadBalancerBackends",
	  act_describe_lb_backends,
	  false,
	  { "loadbalancer_backends.N", "loadbalancer_listener", "loadbalancer", "verbose", "offset",
	    "limit" } },
	{ "DeleteLoadBalancerBackends",
	  act_delete_lb_backends,
	  false,
	  { "loadbalancer_backends.N" } },
	{ "ModifyLoadBalancerBackendAttributes",
	  act_modify_lb_backend,
	  false,
	  { "loadbalancer_backend", "port", "weight", "disabled", "loadbalancer_policy_id" } },
	{ "AssociateEipsToLoadBalancer",
	  act_associate_eips_to_lb,
	  false,
	  { "eips.N", "loadbalancer" } },
	{ "DissociateEipsFromLoadBalancer",
	  act_dissociate_eips_from_lb,
	  false,
	  { "eips.N", "loadbalancer" } },
};

static const char *const common_params[] = {
	"action",           "zone",
	"access_key_id",    "signature",
	"signature_method", "signature_version",
	"time_stamp",       "expires",
	"version",
};

int
world_call(struct world *w, const struct fqc_req *r, int64_t now, json_t *resp)
{
	const char *name = fqc_param_get(r, "action");
	const struct action *a = NULL;
	char an[160];
	size_t i, j;
	int code;

	snprintf(an, sizeof(an), "%.140sResponse", name);
	json_object_set_new(resp, "action", json_string(an));
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(actions[i].name, name) == 0)
			a = &actions[i];
	if (a == NULL)
		return fail(resp, FQC_ERR_PARAM, "InvalidAction, the action [%s] is not valid",
			    name);
	for (i = 0; i < r->nparams; i++) {
		bool ok = false;

		for (j = 0; j < sizeof(common_params) / sizeof(common_params[0]) && !ok; j++)
			ok = strcmp(common_params[j], r->params[i].key) == 0;
		for (j = 0; a->params[j] != NULL && !ok; j++)
			ok = key_matches(a->params[j], r->params[i].key);
		if (!ok)
			return fail(resp, FQC_ERR_PARAM, "InvalidParameter, unknown parameter [%s]",
				    r->params[i].key);
	}
	if (!a->zone_free) {
		const char *z = fqc_param_get(r, "zone");
		bool known = false;

		if (z == NULL || z[0] == '\0')
			return fail(resp, FQC_ERR_PARAM,
				    "MissingParameter, the request parameter [%s] is required",
				    "zone");
		for (i = 0; i < w->cfg->nzones; i++)
			known = known || strcmp(w->cfg->zones[i], z) == 0;
		if (!known)
			return fail(resp, FQC_ERR_PARAM,
				    "InvalidParameterValue, zone [%s] is not valid", z);
	}
	pthread_mutex_lock(&w->lock);
	code = a->fn(w, r, now, resp);
	pthread_mutex_unlock(&w->lock);
	if (json_object_get(resp, "ret_code") == NULL)
		json_object_set_new(resp, "ret_code", json_integer(code));
	return code;
}

/* --- time and persistence ---------------------------------------------------- */

/* The world as text (compact, sorted keys); called with the mutex held.
 * NULL when out of memory. */
static char *
snapshot(struct world *w)
{
	char *text = json_dumps(w->root, JSON_COMPACT | JSON_SORT_KEYS);

	if (text != NULL)
		w->dirty = false;
	return text;
}

/* Writes text to world.json (a temporary file, then rename); no mutex needed:
 * only the ticker, or shutdown after the ticker ended, writes. */
static void
write_world(const char *path, const char *text)
{
	char tmp[4200];
	FILE *f;
	bool ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	ok = f != NULL && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	if (f != NULL && fclose(f) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0)
		fprintf(stderr, "fake-qingcloud: cannot save '%s': %s\n", path, strerror(errno));
}

/* The ticker's clock (main.c's now_ms()): what a save cost. */
static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Saving is O(world): it is spaced so that it takes at most 1/SAVE_COST_SHARE
 * of the time, and never more often than every SAVE_GAP_MIN_MS. */
static int64_t
save_gap(const struct world *w)
{
	int64_t gap = w->save_cost_ms > INT64_MAX / SAVE_COST_SHARE
			      ? INT64_MAX
			      : w->save_cost_ms * SAVE_COST_SHARE;

	return gap > SAVE_GAP_MIN_MS ? gap : SAVE_GAP_MIN_MS;
}

static void
job_done(struct world *w, json_t *job, int64_t now)
{
	const char *act = sget(job, "job_action");
	char ids[4096], *save_p, *id;

	snprintf(ids, sizeof(ids), "%s", sget(job, "resource_ids"));
	for (id = strtok_r(ids, ",", &save_p); id != NULL; id = strtok_r(NULL, ",", &save_p)) {
		json_t *o;

		if (strcmp(act, "TerminateInstances") == 0 &&
		    (o = inst_find(w, id))) {
			real_stop(w, id);
			json_object_set_new(o, "status", json_string("terminated"));
			json_object_set_new(o, "transition_status", json_string(""));
			json_object_set_new(o, "status_ms", json_integer(now));
			due_at(w, now);
		} else if (strcmp(act, "CreateRouters") == 0 &&
			   (o = find_by(json_object_get(w->root, "routers"), "router_id", id))) {
			json_object_set_new(o, "status", json_string("active"));
			json_object_set_new(o, "transition_status", json_string(""));
			json_object_set_new(o, "status_ms", json_integer(now));
		} else if (strcmp(act, "DeleteRouters") == 0) {
			json_t *rs = json_object_get(w->root, "routers");

			if ((o = find_by(rs, "router_id", id)) != NULL) {
				json_t *e = router_eip(w, o);

				real_teardown(w, o, id, true);
				if (e != NULL)
					eip_set_resource(e, "", "", now);
			}
			remove_where(json_object_get(w->root, "router_statics"), "router_id", id);
			remove_where(rs, "router_id", id);
		} else if (strcmp(act, "UpdateRouters") == 0 &&
			   (o = find_by(json_object_get(w->root, "routers"), "router_id", id))) {
			router_apply(w, o);
			json_object_set_new(o, "is_applied", json_integer(1));
		} else if (strcmp(act, "CreateLoadBalancer") == 0 && (o = lb_find(w, id))) {
			json_object_set_new(o, "status", json_string("active"));
			json_object_set_new(o, "transition_status", json_string(""));
			json_object_set_new(o, "status_ms", json_integer(now));
		} else if (strcmp(act, "UpdateLoadBalancers") == 0 && (o = lb_find(w, id))) {
			lb_apply(w, o);
			json_object_set_new(o, "is_applied", json_integer(1));
			json_object_set_new(o, "transition_status", json_string(""));
		} else if (strcmp(act, "DeleteLoadBalancers") == 0 && (o = lb_find(w, id))) {
			json_t *v;
			size_t j;

			real_teardown(w, o, id, true);
			json_array_foreach(json_object_get(o, "eips"), j, v) {
				json_t *e = eip_find(w, json_string_value(v));

				if (e != NULL)
					eip_set_resource(e, "", "", now);
			}
			json_object_set_new(o, "eips", json_array());
			remove_where(json_object_get(w->root, "lb_backends"), "loadbalancer_id",
				     id);
			remove_where(json_object_get(w->root, "lb_listeners"), "loadbalancer_id",
				     id);
			json_object_set_new(o, "status", json_string("deleted"));
			json_object_set_new(o, "transition_status", json_string(""));
			json_object_set_new(o, "status_ms", json_integer(now));
		}
	}
}

void
world_tick(struct world *w, int64_t now)
{
	json_t *o;
	size_t i;

	pthread_mutex_lock(&w->lock);
	if (now < w->due_ms)
		goto out_save;   /* nothing is due: no scan of every instance and job */
	w->due_ms = INT64_MAX;
	/* instances: pending → running after --pending-ms; terminated → ceased after --cease-ms */
	json_array_foreach(json_object_get(w->root, "instances"), i, o) {
		const char *s = sget(o, "status");

		if (strcmp(s, "pending") == 0 && now < iget(o, "create_ms") + w->cfg->pending_ms)
			due_at(w, iget(o, "create_ms") + w->cfg->pending_ms);
		else if (strcmp(s, "terminated") == 0 && now < iget(o, "status_ms") + w->cfg->cease_ms)
			due_at(w, iget(o, "status_ms") + w->cfg->cease_ms);
		if (strcmp(s, "pending") == 0 && now >= iget(o, "create_ms") + w->cfg->pending_ms) {
			json_object_set_new(o, "status", json_string("running"));
			json_object_set_new(o, "transition_status", json_string(""));
			json_object_set_new(o, "status_ms", json_integer(now));
			real_start(w, o);
			w->dirty = true;
		} else if (strcmp(s, "terminated") == 0 &&
			   now >= iget(o, "status_ms") + w->cfg->cease_ms) {
			json_object_set_new(o, "status", json_string("ceased"));
			json_object_set_new(o, "status_ms", json_integer(now));
			w->dirty = true;
		}
	}
	/* jobs: pending → working at half time → successful at done_ms (docs: job states) */
	json_array_foreach(json_object_get(w->root, "jobs"), i, o) {
		const char *s = sget(o, "status");
		int64_t c = iget(o, "create_ms"), d = iget(o, "done_ms");

		if (strcmp(s, "pending") == 0 && now >= c + (d - c) / 2) {
			json_object_set_new(o, "status", json_string("working"));
			json_object_set_new(o, "status_ms", json_integer(now));
			w->dirty = true;
			s = "working";
		}
		if (strcmp(s, "working") == 0 && now >= d) {
			job_done(w, o, now);
			json_object_set_new(o, "status", json_string("successful"));
			json_object_set_new(o, "status_ms", json_integer(now));
			w->dirty = true;
		} else if (strcmp(s, "pending") == 0) {
			due_at(w, c + (d - c) / 2);
		} else if (strcmp(s, "working") == 0) {
			due_at(w, d);
		}
	}
out_save:
	if (w->dirty && (w->saved_ms == 0 || now - w->saved_ms >= save_gap(w))) {
		char *text = snapshot(w);

		pthread_mutex_unlock(&w->lock);
		w->saved_ms = now;
		if (text != NULL)
			write_world(w->path, text);
		free(text);
		w->save_cost_ms = wall_ms() - now;
		return;
	}
	pthread_mutex_unlock(&w->lock);
}

struct world *
world_new(const struct fqc_config *cfg, char *err, size_t errlen)
{
	struct world *w = calloc(1, sizeof(*w));
	static const char *const arrays[] = { "instances",     "jobs",         "tags",
					      "vxnets",        "routers",      "eips",
					      "loadbalancers", "lb_listeners", "lb_backends",
					      "router_statics" };
	json_error_t je;
	size_t i;
	json_t *o;

	if (w == NULL)
		abort();
	pthread_mutex_init(&w->lock, NULL);
	w->cfg = cfg;
	w->pids = json_object();
	w->hapids = json_object();
	snprintf(w->path, sizeof(w->path), "%s/world.json", cfg->state_dir);
	if (access(w->path, F_OK) == 0) {
		w->root = json_load_file(w->path, 0, &je);
		if (w->root == NULL || !json_is_object(w->root)) {
			snprintf(err, errlen, "cannot load '%s': %s", w->path, je.text);
			free(w);
			return NULL;
		}
	} else {
		w->root = json_object();
	}
	for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		if (!json_is_array(json_object_get(w->root, arrays[i])))
			json_object_set_new(w->root, arrays[i], json_array());
	w->tagidx = json_object();
	w->instidx = json_object();
	w->due_ms = 0;   /* the first tick scans what was loaded */
	json_array_foreach(json_object_get(w->root, "instances"), i, o) {
		json_object_set(w->instidx, sget(o, "instance_id"), o);
		inst_ent_add(w, o);
	}
	json_array_foreach(json_object_get(w->root, "tags"), i, o) {
		json_t *p;
		size_t j;

		json_array_foreach(json_object_get(o, "pairs"), j, p)
			tagidx_set(w, sget(p, "resource_id"), sget(o, "tag_id"), true);
	}
	/* a restarted fake boots its running instances again, as a host reboot would */
	if (cfg->netns) {
		json_array_foreach(json_object_get(w->root, "vxnets"), i, o)
			if (sget(o, "ip_network")[0] != '\0') {
				uint32_t n;
				int plen;
				char gwc[80];

				if (parse_cidr(sget(o, "ip_network"), &n, &plen)) {
					snprintf(gwc, sizeof(gwc), "%s/%d", sget(o, "manager_ip"),
						 plen);
					inst_bridge_ensure(cfg, sget(o, "vxnet_id"), gwc);
				}
			}
		json_array_foreach(json_object_get(w->root, "instances"), i, o)
			if (strcmp(sget(o, "status"), "running") == 0)
				real_start(w, o);
		/* and forwards again what was applied before the restart */
		json_array_foreach(json_object_get(w->root, "loadbalancers"), i, o)
			if (lb_live(o) && json_object_get(o, "applied_spec") != NULL)
				real_apply(w, o, sget(o, "loadbalancer_id"),
					   json_incref(json_object_get(o, "applied_spec")),
					   json_incref(json_object_get(o, "applied_addrs")));
		json_array_foreach(json_object_get(w->root, "routers"), i, o)
			if (json_object_get(o, "applied_spec") != NULL)
				real_apply(w, o, sget(o, "router_id"),
					   json_incref(json_object_get(o, "applied_spec")),
					   json_incref(json_object_get(o, "applied_addrs")));
	}
	return w;
}

void
world_shutdown(struct world *w)
{
	json_t *o;
	size_t i;

	pthread_mutex_lock(&w->lock);
	if (w->cfg->netns) {
		/* every instance not long gone, started or not: one whose start
		 * failed half way has a namespace and a veth but no pid */
		json_array_foreach(json_object_get(w->root, "instances"), i, o)
			if (json_object_get(w->pids, sget(o, "instance_id")) != NULL ||
			    strcmp(sget(o, "status"), "ceased") != 0)
				inst_stop(w->cfg, sget(o, "instance_id"),
					  (int)json_integer_value(
						  json_object_get(w->pids, sget(o, "instance_id"))));
		/* haproxy and its addresses first: private addresses are on the bridges */
		json_array_foreach(json_object_get(w->root, "loadbalancers"), i, o)
			real_teardown(w, o, sget(o, "loadbalancer_id"), false);
		json_array_foreach(json_object_get(w->root, "routers"), i, o)
			real_teardown(w, o, sget(o, "router_id"), false);
		lb_eip_dev_remove(w->cfg);
		json_array_foreach(json_object_get(w->root, "vxnets"), i, o)
			inst_bridge_remove(w->cfg, sget(o, "vxnet_id"));
	}
	{
		char *text = snapshot(w);

		if (text != NULL)
			write_world(w->path, text);
		free(text);
	}
	pthread_mutex_unlock(&w->lock);
}

void
world_free(struct world *w)
{
	json_decref(w->root);
	json_decref(w->pids);
	json_decref(w->hapids);
	json_decref(w->tagidx);
	json_decref(w->instidx);
	free(w->ents);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
