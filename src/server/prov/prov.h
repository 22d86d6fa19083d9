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
 * - launch may be asynchronous (cloud): state "pending" is fine. */
#ifndef HERD_PROV_H
#define HERD_PROV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

struct prov;

struct prov_net_spec {
	const char *id;        /* herd's network id (stable, 8 lowercase hex) */
	const char *name;      /* network name from the blueprint */
	const char *cidr;      /* e.g. "198.18.10.0/24" */
	const char *gateway;   /* first address of the CIDR, e.g. "198.18.10.1" */
	int prefix_len;        /* e.g. 24 */
};

struct host_spec {
	const char *id;        /* herd host id (8 lowercase hex): the tag */
	const char *name;      /* "node-1": hostname on the host */
	const char *cluster;
	const char *group;
	const struct prov_net_spec *net;
	const char *private_ip;   /* chosen by herd's IPAM, e.g. "198.18.10.5" */
	const char *user_data;    /* agent config (JSON text), as cloud user-data */
	const char *state_dir;    /* local: per-host dir under the data dir */
	const char *agent_bin;    /* local: absolute path of the herd binary */
	int64_t mem_limit_bytes;  /* 0 = none */
	int cpu_limit_pct;        /* 0 = none; 100 = one core */
};

struct prov_instance {
	char id[128];          /* the provider's id for it (local: netns name) */
	char host_id[16];      /* herd host id it carries */
	char state[16];        /* "pending", "running", "stopped" */
	char private_ip[64];
	int64_t pid;           /* local: the agent's pid (PID 1 of the host) */
};

struct prov_ops {
	const char *name;
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
};

struct prov {
	const struct prov_ops *ops;
	char account[64];     /* account name */
	char instance[16];    /* this server's instance id (from its data dir) */
	char data_dir[1024];  /* the server's data dir */
	json_t *config;       /* the account's driver config (borrowed) */
	void *priv;           /* driver state */
};

/* Finds a driver by name, or NULL. */
const struct prov_ops *prov_find(const char *driver);
int prov_open(struct prov *p, const struct prov_ops *ops, struct herr *err);
void prov_close(struct prov *p);
int prov_net_create(struct prov *p, const struct prov_net_spec *net, struct herr *err);
int prov_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err);
int prov_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
		struct herr *err);
int prov_terminate(struct prov *p, const char *instance_id, const char *host_id,
		   struct herr *err);
int prov_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err);

/* Failpoints: HERD_FAILPOINTS="prov_launch=error,prov_terminate=sleep:500"
 * makes the named point fail (returns HERR_UNAVAIL) or sleep. Tests only. */
int failpoint(const char *name, struct herr *err);

#endif
