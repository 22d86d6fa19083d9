/*
 * fqc.h - the fake QingCloud's declarations: a test double of QingCloud's
 * IaaS API (https://docs.qingcloud.com/product/api/), written from
 * yunify/qingcloud-docs and yunify/qingcloud-sdk-go. It knows nothing of
 * herd: it includes no herd header and shares no herd code.
 *
 * main.c   options, the HTTP server, signature and time_stamp checks, call log
 * world.c  the world (zones, instances, jobs, tags, vxnets, routers, EIPs,
 *          load balancers, router statics): actions,
 *          the clock-driven state machine (pure: time passed in), persistence
 * inst.c   --instances netns: each running instance is a namespace set
 * lb.c     --instances netns: load balancers and router port forwards as
 *          haproxy processes, EIPs as addresses on the fake's EIP bridge
 */
#ifndef FQC_H
#define FQC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define FQC_MAX_PARAMS 256
#define FQC_MAX_KEY 128
#define FQC_MAX_VALUE (64 * 1024)
#define FQC_MAX_BODY (1024 * 1024)
#define FQC_MAX_ZONES 16
#define FQC_MAX_DELAYS 8 /* --delay-action */
#define FQC_MAX_JOBS 10000     /* remembered jobs (finished ones are dropped first) */
#define FQC_MAX_RESOURCES 1000 /* tags, vxnets, routers each: beyond, 2500 */

/*
 * QingCloud's ret_code values, from the docs' error code table
 * (docs.qingcloud.com/product/api/common/error_code; the SDK's
 * request/errs/qingcloud.go carries ret_code and message the same way).
 */
enum fqc_ret {
	FQC_OK = 0,
	FQC_ERR_PARAM = 1100,     /* invalid request format or parameter */
	FQC_ERR_AUTH = 1200,      /* authentication failed */
	FQC_ERR_EXPIRED = 1300,   /* request expired (time_stamp) */
	FQC_ERR_DENIED = 1400,    /* permission denied */
	FQC_ERR_NOT_FOUND = 2100, /* resource not found */
	FQC_ERR_QUOTA = 2500,     /* quota exceeded */
	FQC_ERR_INTERNAL = 5000,  /* internal error */
	FQC_ERR_BUSY = 5100,      /* server busy */
};

struct fqc_param {
	char *key;
	char *value;
};

struct fqc_req {
	struct fqc_param params[FQC_MAX_PARAMS];
	size_t nparams;
	bool too_many;
	bool too_big;
	size_t body_bytes;
};

struct fqc_config {
	const char *listen;
	const char *state_dir;
	const char *access_key_id;
	char secret[512];
	const char *zones[FQC_MAX_ZONES];
	size_t nzones;
	int64_t pending_ms;
	int64_t job_ms;
	int64_t cease_ms;
	unsigned fail_rate_pct;
	uint64_t fail_seed;
	const char *fail_actions; /* NULL: --fail-rate applies to every action */
	int64_t quota_instances;
	int64_t quota_eips;
	const char *eip_range; /* "a.b.c.d/len": AllocateEips' addresses */
	int64_t time_skew_max_s;
	bool netns;
	const char *call_log;
	char name_prefix[16];
	/* --delay-action ACTION:MS: the answer to ACTION is held MS after the
	 * call ran (a reply lost or late on the way back) */
	struct {
		const char *action;
		int64_t ms;
	} delays[FQC_MAX_DELAYS];
	size_t ndelays;
};

struct world;

/* fqc_param_get returns the value of the parameter KEY or NULL (world.c). */
const char *fqc_param_get(const struct fqc_req *r, const char *key);

/* world_new loads STATE_DIR/world.json or starts an empty world. */
struct world *world_new(const struct fqc_config *cfg, char *errbuf, size_t errlen);
/* world_free releases the world (after world_shutdown). */
void world_free(struct world *w);
/*
 * world_call runs one accepted, authenticated call at NOW_MS; fills RESP
 * (action, ret_code, message or the action's fields) and returns ret_code.
 */
int world_call(struct world *w, const struct fqc_req *r, int64_t now_ms, json_t *resp);
/* world_tick advances instance and job states to NOW_MS and saves. */
void world_tick(struct world *w, int64_t now_ms);
/* world_shutdown tears down every real instance (netns mode) and saves. */
void world_shutdown(struct world *w);

/* inst.c: real instances. Each returns 0 or -1 with a message on stderr. */
struct inst_net {
	const char *vxnet_id;
	const char *ip_network; /* "a.b.c.d/len" from JoinRouter, or NULL */
	const char *private_ip; /* the instance's address, or NULL */
	const char *gateway_ip; /* the router's address on the VxNet, or NULL */
};
/* inst_start creates the namespaces and runs the user data; *PID is set. */
int inst_start(const struct fqc_config *cfg, const char *instance_id, const char *hostname,
	       const struct inst_net *net, const char *userdata_type, const char *userdata_b64,
	       const char *userdata_path, const char *userdata_file, const char *metadata_json,
	       int *pid);
/* inst_stop kills the instance's processes and removes its namespace. */
int inst_stop(const struct fqc_config *cfg, const char *instance_id, int pid);
/* inst_bridge_ensure makes the VxNet's bridge with the router's address. */
int inst_bridge_ensure(const struct fqc_config *cfg, const char *vxnet_id,
		       const char *gateway_cidr);
/* inst_bridge_remove deletes the VxNet's bridge if it exists. */
int inst_bridge_remove(const struct fqc_config *cfg, const char *vxnet_id);

/* inst_bridge_name: the host bridge of VXNET_ID ("fq<prefix>b<suffix>"). */
void inst_bridge_name(const struct fqc_config *cfg, const char *vxnet_id, char *out, size_t len);

/* lb.c: real load balancers and port forwards. */
/* lb_eip_dev_name: the bridge that carries the fake's EIPs, "fq<prefix>e". */
void lb_eip_dev_name(const struct fqc_config *cfg, char *out, size_t len);
/* lb_eip_dev_ensure makes the EIP bridge (up); 0 or -1. */
int lb_eip_dev_ensure(const struct fqc_config *cfg);
/* lb_eip_dev_remove deletes the EIP bridge and so every EIP address on it. */
void lb_eip_dev_remove(const struct fqc_config *cfg);
/* lb_addr_add / lb_addr_remove: IP/32 on DEV; 0 or -1. */
int lb_addr_add(const char *dev, const char *ip);
int lb_addr_remove(const char *dev, const char *ip);
/*
 * lb_haproxy_config renders SPEC ({"frontends":[{name, mode, balance, binds[],
 * check (none|tcp|http), check_path, check_host, inter_s, timeout_s, fall,
 * rise, servers[{name, addr, port, weight, disabled}]}]}) as an haproxy
 * configuration with its stats socket at STATS_SOCK. Pure; malloc'd, NULL on
 * failure. A frontend without binds is left out.
 */
char *lb_haproxy_config(const json_t *spec, const char *stats_sock);
/*
 * lb_haproxy_apply writes STATE_DIR/haproxy/ID.cfg from SPEC and (re)starts
 * haproxy for ID: *PID is the old process (0: none), set to the new one.
 * Returns once the stats socket answers (at most 5 s); 0 or -1.
 */
int lb_haproxy_apply(const struct fqc_config *cfg, const char *id, const json_t *spec, int *pid);
/* lb_haproxy_stop ends haproxy PID (SIGTERM, SIGKILL after 2 s) and reaps it. */
int lb_haproxy_stop(int pid);
/* lb_haproxy_server_states: {server name: haproxy status} from ID's stats socket. */
json_t *lb_haproxy_server_states(const struct fqc_config *cfg, const char *id);

#endif
