/* server.h - the herd server's shared state and the request/response types
 * every API handler sees. One struct server per process. */
#ifndef HERD_SERVER_H
#define HERD_SERVER_H

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "herr.h"

struct store;
struct MHD_Connection;

/* How often agents send a heartbeat (given to them at join and in their
 * config). The reconcile loop takes a longer gap between its passes as a
 * time herd could not hear them. */
#define HERD_HEARTBEAT_S 5

enum role { ROLE_NONE = 0, ROLE_HOST, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN };

/* Who is calling: an API token (viewer/operator/admin) or a host credential. */
struct principal {
	enum role role;
	char name[96];        /* token name, or host name for hosts */
	char host_id[16];     /* set for ROLE_HOST */
	char cluster[64];     /* set for ROLE_HOST */
};

struct req;
typedef void (*handler_fn)(struct req *rq);

struct route {
	const char *method;
	const char *pattern;   /* "/v1/groups/:name"; ":x" matches one segment */
	enum role role;        /* least role allowed; ROLE_NONE = no auth */
	handler_fn fn;
	const void *arg;       /* e.g. the kind for generic resource handlers */
};

#define REQ_MAX_PARAMS 4

struct req {
	struct server *srv;
	struct MHD_Connection *conn;
	const char *method;
	char path[1024];
	const struct route *route;
	char *params[REQ_MAX_PARAMS];  /* path segments matched by ":x" (owned) */
	int nparams;
	struct buf body;               /* raw request body (bounded) */
	bool body_too_big;
	bool answered_early;           /* refusal (413, 401, 403...) queued on the first call */
	bool authorized;               /* api_authorize() passed */
	size_t discarded;              /* body bytes dropped past the limit */
	json_t *json;                  /* parsed body (owned), after req_json() */
	struct principal who;
	/* the answer */
	int status;
	json_t *resp;                  /* owned */
	char *raw;                     /* or raw bytes (owned unless raw_static) */
	size_t raw_len;
	bool raw_static;
	const char *ctype;             /* for raw and stream */
	/* or a body made while it is sent (libmicrohttpd's content reader:
	 * fills buf, returns bytes, or -1 at the end); stream_free(stream_cls)
	 * runs once the answer is done or abandoned */
	ssize_t (*stream)(void *cls, uint64_t pos, char *buf, size_t max);
	void *stream_cls;
	void (*stream_free)(void *cls);
	const char *cache_control;     /* optional header */
	bool suspended;                /* long-poll: answer later */
	int64_t wait_deadline_ms;      /* long-poll deadline (mono) */
	uint64_t gen_seen;             /* server generation when handled */
	uint64_t wait_key;             /* parked: 0 = every kick wakes it, else
				        * only server_kick_commands naming it */
	void *state;                   /* handler state across a long-poll */
	void (*state_free)(void *);
	char audit_detail[1024];       /* what the audit entry says beyond the path */
	int retry_after_s;             /* > 0: a Retry-After header on the answer */
};

struct server {
	char data_dir[1024];
	char listen[128];
	char instance[16];            /* stable id of this data dir */
	char forward_key[40];         /* X-Herd-Forwarded's value (api/forward.c), per store */
	char self_bin[1024];          /* absolute path of the herd binary */
	char agent_bin[1024];         /* what hosts run: herd-agent beside self_bin,
				       --agent-bin, else self_bin (absolute) */
	char web_dir[1024];           /* --web: the console's files ("" = default) */
	char scripts_dir[1024];       /* --scripts: built-in scripts ("" = default) */
	char advertise_url[200];      /* --advertise-url: hosts reach us there ("" = default,
				       PROV_URL_MAX) */
	int port;
	struct store *store;
	size_t body_max;              /* request body limit, bytes */
	unsigned max_conns;           /* connections per listen address, in all (--max-conns) */
	unsigned max_conns_per_addr;  /* ... from one client address (--max-conns-per-addr) */
	unsigned write_queue_max;     /* mutations waiting for the writer (--write-queue) */
	bool http_epoll;              /* --http-mode epoll (else poll) */
	int launch_workers;           /* provider launches at once (--launch-workers) */
	int lock_fd;                  /* flock'd DATA/herd.lock, held until exit */
	int64_t push_interval_ms;     /* how often agents push metrics (--push-interval) */
	char remote_write_host_label[64]; /* the label naming a remote-written series' host
				       (--remote-write-host-label, default "host") */
	int64_t retain_activities_ms; /* activities kept this long (--retain-activities) */
	int64_t retain_audit_ms;      /* audit entries (--retain-audit) */
	int64_t retain_runs_ms;       /* ended runs, their hosts and output (--retain-runs) */
	int64_t retain_hosts_ms;      /* terminated hosts' rows (--retain-hosts) */
	int64_t retain_pass_ms;       /* wall ms of the last retention pass (ctl/retain.c) */
	int64_t lease_ttl_ms;         /* the controller lease's TTL (--lease-ttl) */
	void *leader;                 /* struct leader * (ctl/leader.c): the controller lease */
	volatile int stopping;
	pthread_mutex_t lock;         /* guards the fields below */
	pthread_cond_t kick;          /* wakes controllers: something changed */
	uint64_t generation;          /* bumped on every change hosts may wait on */
	void *httpd;                  /* struct httpd * */
	void *ctl;                    /* controller state */
	void *writer;                 /* struct writer * (api/writer.c) */
	void *tsdb;                   /* struct tsdb * (tsdb/tsdb.h): the metric store */
	void *tls;                    /* struct tls * (tls.h): certificates, --tls */
	void *wake;                   /* struct wake * (wake.c): announces kicks to the
				       other servers of the store; NULL: none */
};

extern struct server *g_srv;

/* Request helpers (api.c) */
const char *req_param(struct req *rq, int i);
const char *req_query(struct req *rq, const char *key);
/* Parses the body as a JSON object into rq->json; on failure answers 400
 * and returns NULL. */
json_t *req_json(struct req *rq);
void reply_json(struct req *rq, int status, json_t *body);  /* steals body */
void reply_err(struct req *rq, const struct herr *err);
void reply_errf(struct req *rq, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void reply_raw(struct req *rq, int status, const char *ctype, char *data, size_t n, bool is_static);
bool req_role_at_least(const struct req *rq, enum role r);
const char *role_name(enum role r);
enum role role_parse(const char *s);

/* Wakes controllers and long-polls: state changed. A host's parked command
 * long-poll (req_wait_commands) is not resumed by it: no delivery came. */
void server_kick(struct server *s);
/* server_kick, and deliveries may be there for host_ids[0..n) (n == 0: for
 * any host, e.g. a run's `parallel` slot was freed): also resumes those
 * hosts' parked command long-polls. Whoever makes a delivery takeable calls
 * it; one forgotten delays the delivery to the poll's deadline, no more. */
void server_kick_commands(struct server *s, const char *const *host_ids, size_t n);

/* A kick announced by another server of the store (wake.c): wakes this
 * one's controllers and long polls as server_kick (cmds false) or
 * server_kick_commands (cmds true) would, announcing nothing again. */
void server_wake_local(struct server *s, const char *const *host_ids, size_t n, bool cmds);

/* Long-poll: suspends rq until server_kick() or timeout_ms, then calls the
 * route's handler again with rq->suspended cleared (rq->state kept). */
void req_wait(struct req *rq, int64_t timeout_ms);
/* req_wait for host_id's command long-poll: resumed only by
 * server_kick_commands naming host_id (or any host), or at timeout_ms. */
void req_wait_commands(struct req *rq, const char *host_id, int64_t timeout_ms);

/* Routing (router.c) */
const struct route *route_match(const char *method, const char *path, char **params,
				int *nparams, bool *method_mismatch);

/* httpd.c */
/* Starts the API on addr ("IP:PORT") and on each of more[0..nmore) (a
 * repeated --listen); addr's port is s->port, the port of gateway
 * listeners. A 0.0.0.0:PORT among them covers every address's PORT: it is
 * bound first and a specific address on the same port is then not bound
 * again (the two would collide). */
int httpd_start(struct server *s, const char *addr, const char *const *more, int nmore,
		struct herr *err);
/* Adds a listener on a local network's gateway (same handler) so hosts can
 * reach the server: plain HTTP unless --tls always (tls_for_addr, bridge).
 * Idempotent per address and port; a no-op when 0.0.0.0 already listens on
 * that port. */
int httpd_listen_extra(struct server *s, const char *ip, int port, struct herr *err);
/* Whether what listens on ip:port (or 0.0.0.0:port) serves HTTPS. */
bool httpd_is_tls(struct server *s, const char *ip, int port);
void httpd_stop(struct server *s);
void httpd_resume_waiters(struct server *s);
/* server_kick_commands' part, called with s->lock held: the kick that made
 * generation gen concerns host_ids[0..n) (n == 0: every host). */
void httpd_kicked(struct server *s, const char *const *host_ids, size_t n, uint64_t gen);
/* Parked requests resumed so far: by a kick, at their deadline (or stop). */
void httpd_wakeups(struct server *s, uint64_t *by_kick, uint64_t *at_deadline);

/* builtin.c: loads the built-in scripts (s->scripts_dir or the default
 * place) as read-only script resources. An unreadable --scripts DIR is an
 * error; a missing default directory is not. */
int builtin_scripts_load(struct server *s, struct herr *err);

#endif
