/* lb.h - the load balancer interface: a listener forwarding to backends
 * (herd hosts). Each driver is one file exporting a const struct lb_ops,
 * registered by a line in lbs.def; callers use only the lb_*() dispatchers
 * in lb.c, which log, time and inject faults (failpoints) in one place.
 *
 * The model fits both a local HAProxy driven through its runtime API and a
 * cloud LB where changes are staged and then committed:
 * - ensure/destroy declare which LBs exist (create or update a listener);
 * - add/drain/remove_backend change membership; a cloud driver may stage
 *   them, a local one applies them at once;
 * - apply commits whatever is staged (cloud: "apply load balancer"; haproxy:
 *   rewrites its configuration and reloads only when the set of LBs or a
 *   listener changed: membership changes never reload);
 * - list_backends reports each member as the LB sees it (state, sessions).
 *
 * Contract for drivers:
 * - every call is idempotent (adding a member twice, removing an unknown one
 *   or destroying a missing LB returns 0);
 * - a member added with add_backend takes traffic only once the LB's own
 *   health check passes;
 * - a drained member gets no new sessions; existing ones finish;
 * - remove_backend closes what is left of a member's sessions;
 * - calls may come from several threads at once (controller, API). */
#ifndef HERD_LB_H
#define HERD_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "herr.h"

struct lb;

#define LB_DEFAULT_DRAIN_MS (30LL * 1000)
#define LB_DEFAULT_CHECK_MS 1000LL
#define LB_MIN_CHECK_MS 100LL              /* health check interval bounds */
#define LB_MAX_CHECK_MS (60LL * 1000)
#define LB_MAX_DRAIN_MS (3600LL * 1000)

struct lb_check {
	char type[8];           /* "tcp" (connect) or "http" */
	char path[256];         /* http: the path to GET, e.g. "/healthz" */
	int expect;             /* http: the status expected; 0 = any 2xx/3xx */
	int64_t interval_ms;    /* between checks of one member */
};

struct lb_spec {
	char name[64];          /* herd's LB name (a DNS label) */
	char listen[64];        /* "127.0.0.1:18080" */
	int backend_port;       /* the port members serve on */
	char mode[8];           /* "tcp" or "http" */
	char algorithm[16];     /* "roundrobin", "leastconn" or "source" */
	struct lb_check check;
	int64_t drain_timeout_ms;  /* longest wait for a member's sessions to end */
	char network[64];       /* herd's network name (cloud drivers find theirs by it) */
	char eip[32];           /* cloud: "" (private), "auto" or an "eip-..." id */
};

struct lb_member {
	char name[64];          /* herd host id: the backend's name at the LB */
	char addr[64];          /* the host's private IPv4 address */
	int port;
	char instance_id[128];  /* the provider's id (cloud LBs attach instances) */
};

/* What herd asked of a member. */
enum lb_intent {
	LBI_JOINING,            /* added; no traffic until its health check passes */
	LBI_ACTIVE,             /* serving (or down, by the LB's check) */
	LBI_DRAINING,           /* no new sessions; to be removed */
};

/* What the LB says of a member. */
enum lb_bstate { LBB_UP, LBB_DOWN, LBB_DRAIN, LBB_MAINT };

struct lb_backend {
	struct lb_member m;
	enum lb_intent intent;
	enum lb_bstate state;
	char status[32];        /* the LB's own word, e.g. "UP", "DOWN 1/2", "DRAIN" */
	char check_status[32];  /* last health check, e.g. "L7OK", "L4CON"; "" if none */
	int64_t scur;           /* current sessions; -1: not known (never "drained") */
	int64_t drain_since_ms; /* monotonic ms when draining began; 0 if not */
};

/* The state of the LB engine itself (the process, or the cloud API). */
struct lb_health {
	bool ok;                /* serving */
	int64_t pid;            /* local engines: the process id, 0 if none */
	int64_t restarts;       /* unplanned restarts since open */
	int64_t up_since_ms;    /* wall ms of the last (re)start; 0 if down */
	char msg[256];          /* why not ok, or the last problem */
};

struct lb_ops {
	const char *name;       /* "haproxy" */
	const char *provider;   /* the provider driver whose networks it serves */
	bool shared;            /* one instance per data dir, whatever the account */
	int (*open)(struct lb *l, struct herr *err);
	void (*close)(struct lb *l);
	int (*ensure)(struct lb *l, const struct lb_spec *spec, struct herr *err);
	int (*destroy)(struct lb *l, const char *lb, struct herr *err);
	/* The names of the LBs it holds (owned array of 64-byte names). */
	int (*list)(struct lb *l, char (**names)[64], size_t *n, struct herr *err);
	int (*add_backend)(struct lb *l, const char *lb, const struct lb_member *m,
			   struct herr *err);
	int (*drain_backend)(struct lb *l, const char *lb, const char *member, struct herr *err);
	int (*remove_backend)(struct lb *l, const char *lb, const char *member, struct herr *err);
	int (*apply)(struct lb *l, struct herr *err);
	/* Members of one LB (owned array, free with free()). */
	int (*list_backends)(struct lb *l, const char *lb, struct lb_backend **out, size_t *n,
			     struct herr *err);
	int (*health)(struct lb *l, struct lb_health *out, struct herr *err);
	/* Removes what a stopped server left behind (process, sockets); needs
	 * no open. */
	int (*teardown)(struct lb *l, struct herr *err);
	/* Optional: the address clients use for LB lb ("198.19.255.1" or a
	 * private address; "" while it has none) into out. */
	int (*address)(struct lb *l, const char *lb, char *out, size_t n, struct herr *err);
};

struct lb {
	const struct lb_ops *ops;
	char account[64];       /* account name; "" for shared drivers */
	char instance[16];      /* this server's instance id */
	char data_dir[1024];    /* the server's data dir */
	json_t *config;         /* the account's driver config (borrowed), or NULL */
	void *priv;             /* driver state */
};

/* Finds a driver by name, or NULL. */
const struct lb_ops *lb_find(const char *driver);
/* The driver for LBs on networks of the given provider driver, or NULL. */
const struct lb_ops *lb_find_for_provider(const char *provider);
/* The i-th registered driver, or NULL past the end. */
const struct lb_ops *lb_driver_at(size_t i);

/* As prov_gate_set, for the calls that change a load balancer (ensure,
 * destroy, add/drain/remove a backend, apply). */
void lb_gate_set(bool (*may_act)(void));
int lb_open(struct lb *l, const struct lb_ops *ops, struct herr *err);
void lb_close(struct lb *l);
int lb_ensure(struct lb *l, const struct lb_spec *spec, struct herr *err);
int lb_destroy(struct lb *l, const char *lb, struct herr *err);
int lb_list(struct lb *l, char (**names)[64], size_t *n, struct herr *err);
int lb_add_backend(struct lb *l, const char *lb, const struct lb_member *m, struct herr *err);
int lb_drain_backend(struct lb *l, const char *lb, const char *member, struct herr *err);
int lb_remove_backend(struct lb *l, const char *lb, const char *member, struct herr *err);
int lb_apply(struct lb *l, struct herr *err);
int lb_list_backends(struct lb *l, const char *lb, struct lb_backend **out, size_t *n,
		     struct herr *err);
int lb_health(struct lb *l, struct lb_health *out, struct herr *err);
int lb_teardown(struct lb *l, struct herr *err);
/* The address clients use for lb; "" (and 0) from drivers without the op. */
int lb_address(struct lb *l, const char *lb, char *out, size_t n, struct herr *err);

/* Fills spec from an LB resource's stored spec (defaults applied), checking
 * what a driver will write into its configuration. HERR_INVALID naming the
 * field on bad input. The LB API validates with it, so what it stores the
 * controller can read. `eip` must be "auto" or "eip-" and lowercase
 * letters and digits. */
int lb_spec_from_json(const char *name, const json_t *j, struct lb_spec *spec, struct herr *err);
/* A health check path a driver can put on a configuration line: starts
 * with '/', printable ASCII without spaces, quotes, backslash or '#',
 * shorter than struct lb_check's path. Used by lb_spec_from_json and the
 * drivers. */
bool lb_health_path_valid(const char *path);
const char *lb_intent_name(enum lb_intent i);
const char *lb_bstate_name(enum lb_bstate s);

/* --- haproxy driver internals, exposed for unit tests --- */
/* Parses `show stat` CSV: fills out[] with the servers of backend be (at
 * most max), setting status, check_status, scur, state and m.name/addr. */
size_t haproxy_parse_stat(const char *csv, const char *be, struct lb_backend *out, size_t max);
/* Parses `show servers state` for backend be: fills out[] (at most max)
 * with m.name/addr/port and the intent its admin state implies: ACTIVE if
 * ready, DRAINING (drain_since_ms = now_ms) if drained or in maintenance. */
size_t haproxy_parse_servers_state(const char *text, const char *be, struct lb_backend *out,
				   size_t max, int64_t now_ms);
/* True if two configurations differ at most in their backends' server
 * lines (membership, which changes at run time without a reload). */
bool haproxy_config_same_listeners(const char *a, const char *b);
/* Writes a haproxy configuration for specs[i] with members mem[i][0..nmem[i]). */
int haproxy_config(struct buf *out, const char *sock, const struct lb_spec *specs, size_t nspecs,
		   const struct lb_member *const *mem, const size_t *nmem, struct herr *err);

#endif
