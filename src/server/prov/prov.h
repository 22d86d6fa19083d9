/* prov.h - the provider interface: how hosts and networks are made.
 * Each driver is one file exporting a const struct prov_ops, registered by a
 * line in providers.def. Callers use only the prov_*() dispatchers in prov.c,
 * which log, time and inject faults (failpoints) in one place.
 *
 * Contract for drivers:
 * - launch is idempotent per host id: launching a host id that already exists
 *   returns its instance instead of making a second one;
 * - every resource a driver makes carries the herd host id (tag or name), so
 *   list() can return exactly the hosts this server made, and orphans can be
 *   found; resources without herd's tag are never returned or touched;
 * - terminate of an unknown/already-gone instance returns 0 (idempotent);
 * - launch may be asynchronous (cloud): state "pending" is fine; a pending
 *   instance counts as made (booting): crash recovery adopts it, never fails
 *   and sweeps it (prov_instance_adopt);
 * - spec->client_token is the hosts row's token, the same on every retry of
 *   one host: a cloud driver passes it to the cloud's idempotency field
 *   (ClientToken and the like), so a retried call after a timeout or a crash
 *   returns the instance made by the first instead of a second one;
 * - spec->tags carries herd's host id, cluster and group: a cloud driver tags
 *   every resource with all of them;
 * - spec fields a driver cannot use are ignored, and the driver's file says
 *   which (local: image, instance_type, cpu, memory_mb, keypair,
 *   security_group, client_token: a host is namespaces on this machine);
 * - no code outside a driver compares its name: what callers must do
 *   differently is a capability in struct prov_ops (listens_on_gateway). */
#ifndef HERD_PROV_H
#define HERD_PROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct prov;

/* One port forward of a network's public address (the router's EIP on
 * qingcloud): public `port` to `to`:`to_port` inside the network. */
#define PROV_FORWARDS_MAX 32
struct prov_forward {
	int port;         /* 1-65535, unique per network */
	char to[16];      /* a private IPv4 address inside the network's cidr */
	int to_port;      /* 1-65535 */
	char protocol[4]; /* "tcp" or "udp" */
};

struct prov_net_spec {
	const char *id;        /* herd's network id (stable, 8 lowercase hex) */
	const char *name;      /* network name from the blueprint */
	const char *cidr;      /* e.g. "198.18.10.0/24" */
	const char *gateway;   /* first address of the CIDR, e.g. "198.18.10.1" */
	int prefix_len;        /* e.g. 24 */
	/* a cloud network's existing parts and public endpoint (qingcloud; the
	 * local driver ignores them: a bridge has no router or public IP) */
	const char *vxnet;  /* an existing VxNet id: used, never made or deleted; NULL = none */
	const char *router; /* an existing router id for this network; NULL = the account's */
	const char *eip;    /* the router's public IP: "auto" (herd allocates and
				  releases it) or an "eip-..." id; NULL = none */
	const struct prov_forward *forwards; /* from the public IP; n_forwards of them */
	size_t n_forwards;
};

struct host_spec {
	const char *id;        /* herd host id (8 lowercase hex): the tag */
	const char *name;      /* "node-1": hostname on the host */
	const char *cluster;
	const char *group;
	const struct prov_net_spec *net;
	const char *private_ip;   /* chosen by herd's IPAM, e.g. "198.18.10.5" */
	const char *user_data;    /* agent config (JSON text), as cloud user-data */
	const char *image;        /* template `image` (cloud image id), NULL = none */
	const char *instance_type;/* template `instance_type`, NULL = from cpu/memory_mb */
	int cpu;                  /* template `cpu`: cores, 0 = unset */
	int64_t memory_mb;        /* template `memory`: MiB, 0 = unset */
	const char *keypair;      /* template `keypair`, NULL = none */
	const char *security_group; /* template `security_group`, NULL = none */
	const char *client_token; /* the hosts row's: the cloud's idempotency token */
	const json_t *tags;       /* {"herd_host_id","herd_cluster","herd_group",
				     "herd_instance"}: strings, borrowed */
	const char *state_dir;    /* local: per-host dir under the data dir */
	const char *agent_bin;    /* local: absolute path of the herd binary */
	int64_t mem_limit_bytes;  /* 0 = none */
	int cpu_limit_pct;        /* 0 = none; 100 = one core */
	/* a cloud host's bootstrap: what a driver gives bootstrap_script()
	 * (prov/bootstrap.h) with user_data as the config */
	const char *agent_sha256; /* served agent binary's SHA-256 (hex), NULL = unreadable */
	const char *server_url;   /* how the host reaches the server (user_data's "server") */
	const char *ca_sha256;    /* the server's CA fingerprint (SHA-256 of its DER,
				     hex) when server_url is https, or NULL */
	const char *join_token;   /* the host's one-time join token: a secret, never logged */
};

struct prov_instance {
	char id[128];          /* the provider's id for it (local: netns name) */
	char host_id[16];      /* herd host id it carries */
	char state[16];        /* "pending", "running", "stopped" */
	char private_ip[64];
	int64_t pid;           /* local: the agent's pid (PID 1 of the host) */
};

/* What a sweep (prov_ops.sweep) found and removed, and what it could not
 * remove (a host whose processes outlived SIGKILL, a bridge that still has
 * ports of someone else's). */
struct prov_sweep {
	unsigned hosts, hosts_left;
	unsigned networks, networks_left;
};

struct prov_ops {
	const char *name;
	/* Hosts reach the server through their network's gateway address on
	 * this machine (local): the server listens there, same port, and by
	 * default tells agents http://<gateway>:<port>. Otherwise the server
	 * listens only where told and agents need --advertise-url or the
	 * account's server_url. */
	bool listens_on_gateway;
	/* Called once when an account is loaded; may set p->priv. */
	int (*open)(struct prov *p, struct herr *err);
	void (*close)(struct prov *p);
	int (*net_create)(struct prov *p, const struct prov_net_spec *net, struct herr *err);
	int (*net_delete)(struct prov *p, const struct prov_net_spec *net, struct herr *err);
	int (*launch)(struct prov *p, const struct host_spec *spec,
		      struct prov_instance *out, struct herr *err);
	int (*terminate)(struct prov *p, const char *instance_id, const char *host_id,
			 struct herr *err);
	/* Lists the instances this server made (owned array, free with free()). */
	int (*list)(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err);
	/* Optional, pure (no I/O): checks the fields of an account's spec
	 * (config) the driver needs, when the account is created or updated.
	 * Errors are HERR_INVALID with err->field "path.field" (path "" for a
	 * top-level account: "field"). */
	int (*config_check)(const json_t *config, const char *path, struct herr *err);
	/* Optional: asks the provider whether the account works (credentials,
	 * zone, clock). 0 with a one-line summary in msg ("zone pek3a
	 * reachable, credentials accepted"), or an error whose message names
	 * the provider's answer. Unset: the dispatcher answers "ok". */
	int (*check)(struct prov *p, char *msg, size_t msg_len, struct herr *err);
	/* Optional: finds on its own, with neither the store nor an account
	 * (p->account "", p->config NULL), every host and network that server
	 * instance p->instance of data dir p->data_dir made, and removes them
	 * (herd server --teardown when the store cannot be opened); counts
	 * into out. An error names the first thing that could not be removed.
	 * Unset: the driver cannot find its hosts without the store (a cloud's
	 * accounts and regions are in it). */
	int (*sweep)(struct prov *p, struct prov_sweep *out, struct herr *err);
	/* Optional, no account needed: how many more hosts this driver can
	 * launch on this machine now, for every account and server together
	 * (local: the kernel's neighbour table), with what bounds it in `why`;
	 * -1 when it cannot tell. Unset: no such bound (a cloud's quotas are
	 * the account's, and its launches say so). */
	long (*hosts_left)(char *why, size_t why_len);
};

struct prov {
	const struct prov_ops *ops;
	char account[64];     /* account name */
	char instance[16];    /* this server's instance id (from its data dir) */
	char server_id[24];   /* this server process's id (ctl/leader.c), named in
				 the driver's User-Agent; "" = none */
	char data_dir[1024];  /* the server's data dir */
	json_t *config;       /* the account's driver config (borrowed) */
	void *priv;           /* driver state */
};

/* Finds a driver by name, or NULL. */
const struct prov_ops *prov_find(const char *driver);
/* The names of the drivers built in (providers.def order), comma-separated
 * ("local, qingcloud") into buf (always terminated when n > 0). Returns the
 * length the whole list needs, like snprintf. */
size_t prov_names(char *buf, size_t n);
/* The driver's config_check for an account spec (0 if the driver has
 * none); see struct prov_ops. */
int prov_config_check(const struct prov_ops *ops, const json_t *config, const char *path,
		      struct herr *err);
/* The driver's check (see struct prov_ops); a driver without one answers 0
 * and "ok: provider '<name>' needs no check". */
int prov_check(struct prov *p, char *msg, size_t msg_len, struct herr *err);
/* Consulted immediately before each call that changes something at a
 * provider (network create/delete, launch, terminate), on the calling
 * thread: when may_act() says no, the call is not made and answers
 * HERR_FENCED. The server sets it to "this server holds a live controller
 * lease" (ctl/leader.c); NULL (the default, teardown) lets every call go. */
void prov_gate_set(bool (*may_act)(void));
int prov_open(struct prov *p, const struct prov_ops *ops, struct herr *err);
void prov_close(struct prov *p);
int prov_net_create(struct prov *p, const struct prov_net_spec *net, struct herr *err);
int prov_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err);
int prov_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
		struct herr *err);
int prov_terminate(struct prov *p, const char *instance_id, const char *host_id,
		   struct herr *err);
int prov_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err);
/* The driver's sweep (see struct prov_ops); -ENOTSUP when it has none. */
int prov_sweep(struct prov *p, struct prov_sweep *out, struct herr *err);
/* The driver's hosts_left (see struct prov_ops); -1 when it has none or
 * cannot tell. */
long prov_hosts_left(const struct prov_ops *ops, char *why, size_t why_len);
/* The driver at position i of providers.def, or NULL past the last. */
const struct prov_ops *prov_driver_at(size_t i);

/* Crash recovery's decision for a host left `launching`: the index in
 * list[0..n) of the instance carrying host_id that counts as made (state
 * "running" or "pending": a booting cloud VM is adopted, never failed and
 * swept), or -1 when there is none (the launch never happened or the
 * instance is gone: fail the host). Pure. */
long prov_instance_adopt(const struct prov_instance *list, size_t n, const char *host_id);

/* A local host's cgroup and the limits in effect in it, read from the
 * kernel, into o: "cgroup" (its dirs: v2's, or v1's as
 * /sys/fs/cgroup/{cpu,cpuacct,memory}/herd-<instance>/<hostid>),
 * "limit_cpu_pct" (100 = one core) and "limit_memory_mb" (0 = none). Nothing
 * when instance_id is not the local driver's name for host_id (another
 * provider's host) or the host has no cgroup. */
void prov_local_cgroup_json(const char *instance_id, const char *host_id, json_t *o);

/* The local driver's check of the kernel's neighbour (ARP) table before a
 * launch. That table is one for the whole machine, every network namespace
 * included, and a local host takes two entries of it (its own for its
 * gateway, the bridge's for it); past gc_thresh3 the kernel makes no new
 * entry anywhere on the machine, for herd's hosts or anyone else's. 0 when
 * `entries` (in use now) plus a host's two stay within seven eighths of
 * `thresh3`, else HERR_UNAVAIL with a message naming the sysctl; 0 too when
 * either is unknown (negative): the check guards, it is not needed for a
 * launch to be right. Pure. */
int prov_local_neigh_room(long entries, long thresh3, struct herr *err);
/* What that check reads: the table's entries now and gc_thresh3, each -1
 * when the kernel does not say. */
void prov_local_neigh_read(long *entries, long *thresh3);
/* How many more local hosts that check lets launch with `entries` in use
 * and `thresh3` (0 or more), or -1 when either is unknown. Pure. */
long prov_local_neigh_hosts_left(long entries, long thresh3);

/* herd's id of network `name` made by server instance `instance`: the first
 * 8 hex digits of sha256("<instance>/<name>"), into out (at least 9 bytes).
 * Stable across restarts; every driver that names things after a network
 * (the local bridge, a QingCloud VxNet, an LB placed in it) uses this one. */
void prov_net_id(const char *instance, const char *name, char *out, size_t n);

/* Checks a URL hosts use to reach the server (--advertise-url, an account's
 * server_url): http:// or https://, a host name or address (IPv6 in
 * brackets), an optional port 1-65535, an optional path; no user info,
 * query, fragment, spaces or quotes; at most PROV_URL_MAX - 1 bytes.
 * Returns 0 or HERR_INVALID with a message naming what is wrong. */
#define PROV_URL_MAX 200
int prov_server_url_check(const char *url, struct herr *err);

/* Reads a network's `port_forwards` (a JSON list of {port, to, to_port,
 * protocol}; to_port defaults to port, protocol to "tcp") into out[0..*n),
 * checking each against the network's cidr ("198.18.10.0/24": `to` must be
 * a host address inside it). NULL or absent: *n = 0. Pure: the network kind
 * checks a spec with it and the controller reads one, so a stored spec
 * never fails in a driver. Errors are HERR_INVALID with err->field
 * "port_forwards[i].<field>". */
int prov_forwards_from_json(const json_t *list, const char *cidr, struct prov_forward *out,
			    size_t *n, struct herr *err);

/* Failpoints: HERD_FAILPOINTS="prov_launch=error,prov_terminate=sleep:500"
 * makes the named point fail (returns HERR_UNAVAIL), sleep (logs "failpoint
 * 'NAME': sleeping MS ms"), `exit` the
 * process at once (_exit(99), like kill -9), or `hang` (logs "failpoint
 * 'NAME': hanging" and never returns, so a test can kill -9 the server at
 * exactly that step). "ACTION@N" acts only from the Nth time the point is
 * reached ("prov_launch=hang@2": the first launch goes through). Tests only. The dispatchers
 * have one point before each driver call ("prov_launch") and one after it
 * succeeded ("prov_launch_done": the provider did it but herd has not yet
 * recorded the answer; `error` there is an answer lost on the way). Drivers
 * may add points the dispatcher cannot see: "qingcloud_run_answered" (in
 * qingcloud_launch: RunInstances answered with an instance id, before the
 * tags and the job wait; with a long job, a kill there is "after
 * RunInstances, its job pending") and "local_cgroup_limits" (in
 * local_launch, for a host with limits: the kernel refuses them, EINVAL). The
 * controller has "launch_intent_stored" (a launch's worker: its host row
 * `launching` is stored, the lease not yet checked for the provider call)
 * and "refresh_take_out". */
int failpoint(const char *name, struct herr *err);

#endif
