/* server.c - `herd server`: opens the data dir (store, admin token,
 * instance id), starts the HTTP API and the controllers, and shuts down
 * cleanly on SIGTERM/SIGINT. Hosts keep running across server restarts.
 * One server (or teardown) per data dir at a time: DATA/herd.lock. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/writer.h"
#include "ctl/alert.h"
#include "ctl/ctl.h"
#include "ctl/launcher.h"
#include "ctl/lease.h"
#include "scale/scale.h"
#include "ctl/lbsync.h"
#include "ctl/notify.h"
#include "ctl/promsrc.h"
#include "ctl/rwout.h"
#include "log.h"
#include "main.h"
#include "model/host.h"
#include "model/token.h"
#include "prov/bootstrap.h"
#include "prov/prov.h"
#include "server.h"
#include "store/store.h"
#include "tls.h"
#include "tsdb/tsdb.h"
#include "util.h"
#include "wake.h"
#include "xalloc.h"

struct server *g_srv;

/* Per listen address, in all, unless --max-conns: an agent keeps three
 * (its heartbeats, its pushes, its command long-poll), and 8192 refused
 * the long-polls of 10,000 simulated agents (issue 15); 32768 connections
 * are at most 512 MiB of connection memory (16 KiB each). Lowered to what
 * the descriptor limit leaves. */
#define MAX_CONNS_DEFAULT 32768u
#define LISTEN_MAX 8                   /* --listen given at most this often */
#define MAX_CONNS_PER_ADDR_DEFAULT 256u /* from one client address */
#define METRICS_SYNC_DEFAULT_MS 1000  /* --metrics-sync */
#define OPT_METRICS_SYNC 0x4d53       /* --metrics-sync has no short form */
#define OPT_AGENT_BIN 0x4142          /* nor --agent-bin */
#define OPT_RW_HOST_LABEL 0x5248      /* nor --remote-write-host-label */
#define OPT_STORE 0x5354              /* nor --store */
#define OPT_LEASE_TTL 0x4c54          /* nor --lease-ttl */
#define OPT_TLS 0x544c                /* --tls... neither */
#define OPT_TLS_CERT 0x544d
#define OPT_TLS_KEY 0x544e
#define OPT_TLS_CA 0x544f
#define OPT_TLS_NAME 0x5450
#define FD_RESERVE 512u                /* descriptors kept for store, tsdb, LBs, hosts */


/* Command kicks made inside a transaction, by this thread: the poll they
 * wake may look before the commit, find nothing and park again with a newer
 * generation than the kick's, which then no longer concerns it. They are
 * made again by the first server_kick after the commit (the writer's, or
 * api_handle's rekick). Past KICK_PENDING_MAX hosts: every host. */
#define KICK_PENDING_MAX 64
static __thread struct {
	char ids[KICK_PENDING_MAX][64];
	size_t n;
	bool all, any;
} kick_pending;

static void
kick_commands_now(struct server *s, const char *const *host_ids, size_t n)
{
	pthread_mutex_lock(&s->lock);
	httpd_kicked(s, host_ids, n, __atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE));
	pthread_cond_broadcast(&s->kick);
	pthread_mutex_unlock(&s->lock);
}

static void
kick_now(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	__atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&s->kick);
	pthread_mutex_unlock(&s->lock);
}

void
server_wake_local(struct server *s, const char *const *host_ids, size_t n, bool cmds)
{
	if (cmds)
		kick_commands_now(s, host_ids, n);
	else
		kick_now(s);
}

/* Every kick is also announced to the other servers of the store (wake.c;
 * nothing on SQLite). One made inside a transaction is announced again by
 * the kick after its commit, as it is made again here. */
void
server_kick(struct server *s)
{
	if (kick_pending.any && !(s->store && store_in_tx(s->store))) {
		const char *ids[KICK_PENDING_MAX];

		for (size_t i = 0; i < kick_pending.n; i++)
			ids[i] = kick_pending.ids[i];
		kick_commands_now(s, ids, kick_pending.all ? 0 : kick_pending.n);
		wake_announce(s, ids, kick_pending.all ? 0 : kick_pending.n, true);
		kick_pending.n = 0;
		kick_pending.all = kick_pending.any = false;
		return;
	}
	kick_now(s);
	wake_announce(s, NULL, 0, false);
}

void
server_kick_commands(struct server *s, const char *const *host_ids, size_t n)
{
	if (s->store && store_in_tx(s->store)) {
		kick_pending.any = true;
		if (n == 0 || host_ids == NULL || kick_pending.n + n > KICK_PENDING_MAX)
			kick_pending.all = true;
		for (size_t i = 0; !kick_pending.all && i < n; i++)
			if (host_ids[i])
				snprintf(kick_pending.ids[kick_pending.n++], sizeof(kick_pending.ids[0]),
					 "%s", host_ids[i]);
	}
	kick_commands_now(s, host_ids, n);
	wake_announce(s, host_ids, n, true);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: herd server --data DIR [--store DSN] [--listen ADDR:PORT]... [--log-level LEVEL]\n"
		"       herd server --data DIR [--store DSN] --teardown\n"
		"\n"
		"  --data DIR         where the store (by default), admin token, TLS files,\n"
		"                     metrics and host state live\n"
		"  --store DSN        the control-plane store: postgresql://... (or\n"
		"                     postgres://...; libpq's URL, docs/ha.md) or sqlite:PATH\n"
		"                     (default sqlite:DATA/herd.db); keep a password out of\n"
		"                     it (a ~/.pgpass file): command lines are readable\n"
		"  --listen ADDR:PORT API address (default 127.0.0.1:7171); repeat it for more\n"
		"                     (at most 8; 0.0.0.0:PORT is every address, e.g. for\n"
		"                     cloud hosts); the server also listens on each local\n"
		"                     network's gateway, on the first --listen's port\n"
		"  --advertise-url URL\n"
		"                     where new hosts reach the server (http:// or https://;\n"
		"                     default: the local network's gateway, same port); an\n"
		"                     account's server_url overrides it\n"
		"  --agent-bin PATH   the agent binary hosts run and cloud hosts fetch\n"
		"                     (default: herd-agent beside this binary, the static\n"
		"                     build; if there is none, this binary, with a warning)\n"
		"  --tls MODE         auto (default): HTTPS on every listen address but\n"
		"                     127.x and the local networks' gateways, which stay\n"
		"                     plain HTTP; always: HTTPS on all of them; never: plain\n"
		"                     HTTP everywhere (insecure off this machine: logged)\n"
		"  --tls-cert FILE --tls-key FILE\n"
		"                     the certificate (PEM chain) and key to serve; default:\n"
		"                     one signed by herd's own CA, made in DATA/tls on the\n"
		"                     first start (GET /v1/tls/ca gives the CA out)\n"
		"  --tls-ca FILE      with --tls-cert: the CA GET /v1/tls/ca gives out (none\n"
		"                     by default: agents then verify with the system store)\n"
		"  --tls-name NAME    another DNS name or IP for herd's own certificate\n"
		"                     (repeatable; it always has 127.0.0.1, ::1, localhost,\n"
		"                     the hostname and every --listen IP)\n"
		"  --body-max BYTES   largest request body accepted (default 1048576)\n"
		"  --max-conns N      open connections per listen address (default 32768, or\n"
		"                     what the descriptor limit leaves; an agent keeps 3)\n"
		"  --max-conns-per-addr N\n"
		"                     open connections from one client address (default 256)\n"
		"  --write-queue N    changes waiting for the writer, in all (default 1024,\n"
		"                     1-65536); past it a change is answered 503 at once\n"
		"  --http-mode MODE   how connections are watched: epoll (default) or poll\n"
		"  --launch-workers N hosts launched at once (default 8, 1-64); each launch's\n"
		"                     intent is stored first, one at a time\n"
		"  --web DIR          the console's files (default: ../web beside the binary,\n"
		"                     else /usr/share/herd/web)\n"
		"  --scripts DIR      built-in scripts, loaded read-only at start (default:\n"
		"                     ../scripts beside the binary, else /usr/share/herd/scripts)\n"
		"  --retention D      how long metrics are kept (default 15d)\n"
		"  --push-interval D  how often agents push metrics (default 5s, 1s-60s); the\n"
		"                     autoscaler's resolution\n"
		"  --metrics-sync D   how often pushed samples are fdatasync'ed (default 1s,\n"
		"                     0-60s); 0: before each push is answered. A power loss\n"
		"                     loses at most this window of samples (docs/metrics.md)\n"
		"  --remote-write-host-label L\n"
		"                     the label that names a herd host in series written to\n"
		"                     POST /api/v1/write (default host; else instance without\n"
		"                     its port)\n"
		"  --retain-activities D\n"
		"                     how long activities are kept (default 30d; policy\n"
		"                     scales of the last hour stay whatever it says)\n"
		"  --retain-audit D   how long audit entries are kept (default 90d)\n"
		"  --retain-runs D    how long ended runs, their hosts and output are kept\n"
		"                     (default 14d)\n"
		"  --retain-hosts D   how long terminated hosts' rows are kept (default 7d)\n"
		"  --lease-ttl D      the controller lease's TTL (default 6s, 1s-5m): another\n"
		"                     server of the store takes over within about it\n"
		"                     (docs/ha.md)\n"
		"  --log-level L      debug, info, warn or error (default info)\n"
		"  --teardown         terminate every host and network this data dir made, then exit\n");
}

/* The admin token is made once, on the first start, and written 0600; one
 * left readable by others (an older herd, a copy) is made 0600 again. */
static int
ensure_admin_token(struct server *s, struct herr *err)
{
	char path[1200], tok[80];
	struct stat sb;
	int64_t ntokens;
	int fd;

	snprintf(path, sizeof(path), "%s/admin.token", s->data_dir);
	if (token_count(s->store, &ntokens, err) < 0)
		return err->code;
	if (ntokens > 0) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &sb) == 0 && (sb.st_mode & 077)) {
			if (fchmod(fd, 0600) < 0)
				log_err("cannot make '%s' mode 0600: %s", path, strerror(errno));
			else
				log_warn("'%s' was mode %04o: made 0600", path, sb.st_mode & 07777);
		}
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (token_create(s->store, "admin", role_name(ROLE_ADMIN), tok, sizeof(tok), err) < 0)
		return err->code;
	snprintf(tok + strlen(tok), sizeof(tok) - strlen(tok), "\n");
	if (file_write_atomic(path, tok, strlen(tok), 0600) < 0)
		return herr_set(err, -errno, "cannot write '%s': %s", path, strerror(errno));
	log_info("admin token written to %s (mode 0600)", path);
	return 0;
}

/* One server per data dir: an exclusive flock on DATA/herd.lock, taken
 * before anything is written there and held until the process ends (the
 * kernel drops it, so kill -9 then a restart works). O_CLOEXEC: a child
 * that outlives the server (HAProxy, a host's agent) must not keep it. The
 * file holds the holder's pid, for the message of the one refused. */
static int
data_lock(struct server *s, struct herr *err)
{
	char path[1200], text[32];
	ssize_t n;
	int fd, e;

	snprintf(path, sizeof(path), "%s/herd.lock", s->data_dir);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return herr_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno;
		n = pread(fd, text, sizeof(text) - 1, 0);
		text[n > 0 ? n : 0] = '\0';
		text[strcspn(text, "\n")] = '\0';
		close(fd);
		if (e != EWOULDBLOCK)
			return herr_set(err, -e, "cannot lock '%s': %s", path, strerror(e));
		return herr_set(err, -EBUSY, "data dir '%s' is in use by another herd server"
				" (pid %s)", s->data_dir, text[0] ? text : "unknown");
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n) {
		e = errno;
		close(fd);
		return herr_set(err, -e, "cannot write '%s': %s", path, strerror(e));
	}
	s->lock_fd = fd;
	return 0;
}

/* Raises the soft descriptor limit to the hard one, and lowers --max-conns
 * to what then fits, so the connection limits are the ones refusing. */
static void
fit_nofile(struct server *s)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		if (s->max_conns == 0)
			s->max_conns = MAX_CONNS_DEFAULT;
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = was;
	}
	room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	if (s->max_conns == 0) {
		/* the default: as many as the descriptors leave, up to its cap */
		s->max_conns = room < MAX_CONNS_DEFAULT ? (unsigned)room : MAX_CONNS_DEFAULT;
	} else if (s->max_conns > room) {
		log_warn("descriptor limit %llu: --max-conns lowered from %u to %llu",
			 (unsigned long long)rl.rlim_cur, s->max_conns, (unsigned long long)room);
		s->max_conns = (unsigned)room;
	}
	if (s->max_conns_per_addr > s->max_conns)
		s->max_conns_per_addr = s->max_conns;
}

/* Parses a connection count for OPT (1 to 1000000); -1 when invalid. */
static long
parse_conns(const char *opt, const char *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > 1000000) {
		fprintf(stderr, "herd server: %s: want a number from 1 to 1000000\n", opt);
		return -1;
	}
	return n;
}

/* Parses a --retain-* duration for OPT into *ms: at least RETAIN_MIN_MS
 * (0 would delete everything as it is written); -1 when invalid. */
static int
parse_retain(const char *opt, const char *v, int64_t *ms)
{
	int64_t d;

	if (parse_duration_ms(v, &d) < 0 || d < RETAIN_MIN_MS) {
		fprintf(stderr, "herd server: %s: want a duration of at least 1s, like 30d (got '%s')\n",
			opt, v);
		return -1;
	}
	*ms = d;
	return 0;
}

/* An instance id as ensure_instance makes them: 1-15 letters and digits
 * (it is part of netns and cgroup names). */
static bool
instance_ok(const char *v)
{
	size_t n = strlen(v);

	if (n < 1 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9')))
			return false;
	return true;
}

/* out (outsz bytes) = the store's meta value of key, made first as
 * nbytes random bytes in hex when the store has none (store_meta_init: of
 * servers starting together on one store, all get the first one's). */
static int
meta_random(struct store *st, const char *key, size_t nbytes, char *out, size_t outsz,
	    struct herr *err)
{
	char *v = store_meta_get(st, key), fresh[80];

	if (v == NULL) {
		token_random(fresh, sizeof(fresh), NULL, nbytes);
		if ((v = store_meta_init(st, key, fresh, err)) == NULL)
			return err->code;
	}
	snprintf(out, outsz, "%s", v);
	free(v);
	return 0;
}

/* The instance id is kept in the store (meta) and copied at each start to
 * DATA/instance, so that a teardown finds this data dir's hosts when the
 * store cannot be opened (teardown_without_store). */
static int
ensure_instance(struct server *s, struct herr *err)
{
	char path[PATH_MAX + 16];

	if (meta_random(s->store, "instance", 3, s->instance, sizeof(s->instance), err) < 0)
		return err->code;
	snprintf(path, sizeof(path), "%s/instance", s->data_dir);
	if (file_write_atomic(path, s->instance, strlen(s->instance), 0644) < 0)
		log_warn("cannot write '%s': %s (a teardown without the store would not find"
			 " this data dir's hosts)", path, strerror(errno));
	return 0;
}

/* The key a server puts in X-Herd-Forwarded when it sends a request on to
 * the leader (api/forward.c), so that the leader knows it from a client's
 * header: random, made by the first server on the store, shared by all. */
static int
ensure_forward_key(struct server *s, struct herr *err)
{
	return meta_random(s->store, "forward_key", 16, s->forward_key, sizeof(s->forward_key),
			   err);
}

/* The instance id of a data dir whose store cannot be opened: DATA/instance,
 * else the store read as it is, not migrated (a herd.db a migration failed
 * on, or a newer herd's). Sets s->instance and from (where it was found);
 * -1 when neither has it. */
static int
instance_without_store(struct server *s, const char *dbpath, char *from, size_t fromsz)
{
	char path[PATH_MAX + 16], *v;
	struct herr e = HERR_INIT;
	struct store *st;

	snprintf(path, sizeof(path), "%s/instance", s->data_dir);
	if ((v = file_read(path, 64, NULL)) != NULL) {
		v[strcspn(v, "\n")] = '\0';
		if (instance_ok(v)) {
			snprintf(s->instance, sizeof(s->instance), "%s", v);
			snprintf(from, fromsz, "%s", path);
			free(v);
			return 0;
		}
		free(v);
	}
	if ((st = store_open_at(dbpath, STORE_SCHEMA_AS_IS, &e)) == NULL)
		return -1;
	v = store_meta_get(st, "instance");
	store_close(st);
	if (v == NULL || !instance_ok(v)) {
		free(v);
		return -1;
	}
	snprintf(s->instance, sizeof(s->instance), "%s", v);
	snprintf(from, fromsz, "the store's meta table, read without migrating");
	free(v);
	return 0;
}

/* herd server --teardown when the store cannot be opened (why): what the
 * providers find of this data dir on their own is removed, the rest is
 * said to be left (ctl/sweep.c). Exit status: 1 when the instance id is
 * unknown or something found could not be removed, 3 when a driver could
 * not look (ctl_sweep_report), else 0. */
static int
teardown_without_store(struct server *s, const char *dbpath, const struct herr *why)
{
	struct ctl_sweep r[8];
	struct herr e = HERR_INIT;
	char from[PATH_MAX + 64], report[4096], *save = NULL;
	size_t n;
	int rc;

	fprintf(stderr, "herd server: teardown: cannot open the store: %s\n", why->msg);
	if (instance_without_store(s, dbpath, from, sizeof(from)) < 0) {
		fprintf(stderr, "herd server: teardown: this data dir's instance id is in neither"
			" %s/instance nor the store: nothing can be found without the store,"
			" nothing was removed\n", s->data_dir);
		return 1;
	}
	fprintf(stderr, "herd server: teardown: without the store: removing what the providers"
		" find of instance '%s' (from %s) on their own\n", s->instance, from);
	n = ctl_teardown_sweep(s, r, sizeof(r) / sizeof(r[0]));
	lbsync_teardown(s, &e);   /* a killed server's HAProxy, sockets */
	rc = ctl_sweep_report(r, n, report, sizeof(report));
	for (char *line = strtok_r(report, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "herd server: teardown: %s\n", line);
	return rc;
}

/* Sets s->agent_bin: --agent-bin (which must be an executable file), else
 * herd-agent beside this binary, else this binary with one warning (hosts
 * then run the dynamically linked herd). 0, or -1 after a message. */
static int
agent_bin_choose(struct server *s, const char *opt)
{
	char beside[1024];

	if (opt) {
		if (realpath(opt, s->agent_bin) == NULL || access(s->agent_bin, X_OK) < 0) {
			fprintf(stderr, "herd server: --agent-bin '%s' is not an executable file: %s\n",
				opt, strerror(errno));
			return -1;
		}
	} else if (agent_bin_beside(s->self_bin, beside, sizeof(beside)) == 0
		   && access(beside, X_OK) == 0) {
		snprintf(s->agent_bin, sizeof(s->agent_bin), "%s", beside);
	} else {
		snprintf(s->agent_bin, sizeof(s->agent_bin), "%s", s->self_bin);
		log_warn("no herd-agent beside %s (`make` builds it; or --agent-bin PATH): "
			 "hosts run this binary instead", s->self_bin);
	}
	agent_bin_use(s->agent_bin);
	return 0;
}

int
server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "body-max", required_argument, NULL, 'b' },
		{ "web", required_argument, NULL, 'w' },
		{ "scripts", required_argument, NULL, 'S' },
		{ "teardown", no_argument, NULL, 'T' },
		{ "retention", required_argument, NULL, 'R' },
		{ "push-interval", required_argument, NULL, 'P' },
		{ "metrics-sync", required_argument, NULL, OPT_METRICS_SYNC },
		{ "tls", required_argument, NULL, OPT_TLS },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-name", required_argument, NULL, OPT_TLS_NAME },
		{ "retain-activities", required_argument, NULL, 'a' },
		{ "retain-audit", required_argument, NULL, 'u' },
		{ "retain-runs", required_argument, NULL, 'r' },
		{ "retain-hosts", required_argument, NULL, 'H' },
		{ "max-conns", required_argument, NULL, 'C' },
		{ "max-conns-per-addr", required_argument, NULL, 'A' },
		{ "write-queue", required_argument, NULL, 'W' },
		{ "http-mode", required_argument, NULL, 'M' },
		{ "advertise-url", required_argument, NULL, 'U' },
		{ "launch-workers", required_argument, NULL, 'K' },
		{ "agent-bin", required_argument, NULL, OPT_AGENT_BIN },
		{ "remote-write-host-label", required_argument, NULL, OPT_RW_HOST_LABEL },
		{ "store", required_argument, NULL, OPT_STORE },
		{ "lease-ttl", required_argument, NULL, OPT_LEASE_TTL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server *s = xcalloc(1, sizeof(*s));
	struct herr err = HERR_INIT;
	const char *data = NULL, *listen = "127.0.0.1:7171", *agent_opt = NULL, *store_dsn = NULL;
	const char *more[LISTEN_MAX - 1]; /* the second and later --listen */
	int nlisten = 0;
	char dbpath[1200];
	struct tls_opts tlso = { 0 };
	char listen_ips[LISTEN_MAX][64], adv_host[256];
	const char *ipv[LISTEN_MAX];
	struct tsdb_opts topts;
	bool teardown = false;
	sigset_t set;
	long n;
	int c, sig, rc = 1;

	s->body_max = 1 << 20;
	s->push_interval_ms = 5000;
	snprintf(s->remote_write_host_label, sizeof(s->remote_write_host_label), "host");
	s->retain_activities_ms = RETAIN_ACTIVITIES_DEFAULT_MS;
	s->retain_audit_ms = RETAIN_AUDIT_DEFAULT_MS;
	s->retain_runs_ms = RETAIN_RUNS_DEFAULT_MS;
	s->retain_hosts_ms = RETAIN_HOSTS_DEFAULT_MS;
	s->max_conns = 0;   /* the default, fitted by fit_nofile */
	s->max_conns_per_addr = MAX_CONNS_PER_ADDR_DEFAULT;
	s->write_queue_max = WRITER_QUEUE_DEFAULT;
	s->http_epoll = true;
	s->launch_workers = LAUNCH_WORKERS_DEFAULT;
	s->lock_fd = -1;
	s->lease_ttl_ms = LEASE_TTL_DEFAULT_MS;
	tsdb_opts_default(&topts);
	topts.sync_interval_ms = METRICS_SYNC_DEFAULT_MS;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:l:L:b:w:S:R:P:C:A:M:U:W:K:a:u:r:H:Th", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'l':
			if (nlisten == LISTEN_MAX) {
				fprintf(stderr, "herd server: --listen: at most %d addresses\n",
					LISTEN_MAX);
				return 2;
			}
			if (nlisten == 0)
				listen = optarg;
			else
				more[nlisten - 1] = optarg;
			nlisten++;
			break;
		case 'b': s->body_max = (size_t)strtoull(optarg, NULL, 10); break;
		case 'T': teardown = true; break;
		case 'C':
			if ((n = parse_conns("--max-conns", optarg)) < 0)
				return 2;
			s->max_conns = (unsigned)n;
			break;
		case 'A':
			if ((n = parse_conns("--max-conns-per-addr", optarg)) < 0)
				return 2;
			s->max_conns_per_addr = (unsigned)n;
			break;
		case 'W':
			if ((n = str_long_or(optarg, 1, WRITER_QUEUE_MAX, 0)) == 0) {
				fprintf(stderr, "herd server: --write-queue: want a number from 1 to %u\n",
					WRITER_QUEUE_MAX);
				return 2;
			}
			s->write_queue_max = (unsigned)n;
			break;
		case 'M':
			if (strcmp(optarg, "epoll") != 0 && strcmp(optarg, "poll") != 0) {
				fprintf(stderr, "herd server: --http-mode: want epoll or poll (got '%s')\n",
					optarg);
				return 2;
			}
			s->http_epoll = strcmp(optarg, "epoll") == 0;
			break;
		case 'P':
			if (parse_duration_ms(optarg, &s->push_interval_ms) < 0 ||
			    s->push_interval_ms < 1000 || s->push_interval_ms > 60000 ||
			    s->push_interval_ms % 1000 != 0) {
				fprintf(stderr, "herd server: --push-interval: want whole seconds from 1s to 60s\n");
				return 2;
			}
			break;
		case OPT_TLS:
			if (tls_mode_parse(optarg, &tlso.mode) < 0) {
				fprintf(stderr, "herd server: --tls: want auto, always or never, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case OPT_TLS_CERT: tlso.cert_file = optarg; break;
		case OPT_TLS_KEY: tlso.key_file = optarg; break;
		case OPT_TLS_CA: tlso.ca_file = optarg; break;
		case OPT_TLS_NAME:
			if (tlso.nnames == TLS_NAMES_MAX) {
				fprintf(stderr, "herd server: --tls-name: at most %d names\n", TLS_NAMES_MAX);
				return 2;
			}
			tlso.names[tlso.nnames++] = optarg;
			break;
		case OPT_RW_HOST_LABEL:
			if (!tsdb_label_name_ok(optarg) || strncmp(optarg, "__", 2) == 0 ||
			    strlen(optarg) >= sizeof(s->remote_write_host_label)) {
				fprintf(stderr, "herd server: --remote-write-host-label: want a label name"
					" ([a-zA-Z_][a-zA-Z0-9_]*, not __*, at most 63 characters)\n");
				return 2;
			}
			snprintf(s->remote_write_host_label, sizeof(s->remote_write_host_label), "%s",
				 optarg);
			break;
		case OPT_METRICS_SYNC:
			if (parse_duration_ms(optarg, &topts.sync_interval_ms) < 0 ||
			    topts.sync_interval_ms < 0 || topts.sync_interval_ms > 60000) {
				fprintf(stderr, "herd server: --metrics-sync: want a duration from 0 to 60s, like 1s\n");
				return 2;
			}
			break;
		case 'a':
			if (parse_retain("--retain-activities", optarg, &s->retain_activities_ms) < 0)
				return 2;
			break;
		case 'u':
			if (parse_retain("--retain-audit", optarg, &s->retain_audit_ms) < 0)
				return 2;
			break;
		case 'r':
			if (parse_retain("--retain-runs", optarg, &s->retain_runs_ms) < 0)
				return 2;
			break;
		case 'H':
			if (parse_retain("--retain-hosts", optarg, &s->retain_hosts_ms) < 0)
				return 2;
			break;
		case 'R':
			if (parse_duration_ms(optarg, &topts.retention_ms) < 0 ||
			    topts.retention_ms < 60 * 1000) {
				fprintf(stderr, "herd server: --retention: want a duration of at least 1m, like 15d\n");
				return 2;
			}
			break;
		case 'K':
			if (launcher_workers_parse(optarg, &s->launch_workers, &err) < 0) {
				fprintf(stderr, "herd server: %s: %s\n", err.field, err.msg);
				return 2;
			}
			break;
		case 'U':
			if (prov_server_url_check(optarg, &err) < 0) {
				fprintf(stderr, "herd server: --advertise-url: %s\n", err.msg);
				return 2;
			}
			snprintf(s->advertise_url, sizeof(s->advertise_url), "%s", optarg);
			break;
		case 'w': snprintf(s->web_dir, sizeof(s->web_dir), "%s", optarg); break;
		case 'S': snprintf(s->scripts_dir, sizeof(s->scripts_dir), "%s", optarg); break;
		case 'L':
			if (strcmp(optarg, "debug") == 0) log_set_level(LOG_DEBUG);
			else if (strcmp(optarg, "warn") == 0) log_set_level(LOG_WARN);
			else if (strcmp(optarg, "error") == 0) log_set_level(LOG_ERR);
			break;
		case OPT_AGENT_BIN:
			agent_opt = optarg;
			break;
		case OPT_STORE:
			if (!store_dsn_valid(optarg)) {
				fprintf(stderr, "herd server: --store: want postgresql://..., "
					"postgres://... or sqlite:PATH (at most 1023 bytes)\n");
				return 2;
			}
			store_dsn = optarg;
			break;
		case OPT_LEASE_TTL:
			if (parse_duration_ms(optarg, &s->lease_ttl_ms) < 0 ||
			    s->lease_ttl_ms < LEASE_TTL_MIN_MS || s->lease_ttl_ms > LEASE_TTL_MAX_MS) {
				fprintf(stderr, "herd server: --lease-ttl: want a duration from 1s to 5m, like 6s\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (data == NULL) {
		fprintf(stderr, "herd server: --data DIR is required\n");
		usage(stderr);
		return 2;
	}
	if (s->body_max < 1024) {
		fprintf(stderr, "herd server: --body-max must be at least 1024\n");
		return 2;
	}
	log_set_prefix("server");
	if (mkdir_p(data, 0700) < 0 || realpath(data, s->data_dir) == NULL) {
		fprintf(stderr, "herd server: cannot use data dir '%s': %s\n", data, strerror(errno));
		return 1;
	}
	if (readlink("/proc/self/exe", s->self_bin, sizeof(s->self_bin) - 1) < 0)
		snprintf(s->self_bin, sizeof(s->self_bin), "%s", "herd");
	if (agent_bin_choose(s, agent_opt) < 0)
		return 2;
	if (agent_bin_sha256() == NULL)   /* the agent cloud hosts fetch: hashed once, now */
		log_warn("cannot read the agent binary '%s': cloud hosts cannot fetch it",
			 s->agent_bin);
	snprintf(s->listen, sizeof(s->listen), "%s", listen);
	if (data_lock(s, &err) < 0) {
		fprintf(stderr, "herd server: %s\n", err.msg);
		return 1;
	}
	fit_nofile(s);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->kick, NULL);
	g_srv = s;
	if (store_dsn)
		snprintf(dbpath, sizeof(dbpath), "%s", store_dsn);
	else
		snprintf(dbpath, sizeof(dbpath), "%s/herd.db", s->data_dir);
	if ((s->store = store_open(dbpath, &err)) == NULL && teardown) {
		rc = teardown_without_store(s, dbpath, &err);
		goto out;
	}
	if (s->store == NULL || ensure_instance(s, &err) < 0 ||
	    ensure_forward_key(s, &err) < 0 || ensure_admin_token(s, &err) < 0) {
		fprintf(stderr, "herd server: %s\n", err.msg);
		goto out;
	}
	if (teardown) {
		rc = ctl_teardown(s, &err) < 0 ? 1 : 0;
		lbsync_teardown(s, &err);   /* a killed server's HAProxy, sockets */
		if (rc)
			fprintf(stderr, "herd server: teardown: %s\n", err.msg);
		goto out;
	}
	if (builtin_scripts_load(s, &err) < 0) {
		fprintf(stderr, "herd server: %s\n", err.msg);
		goto out;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/tsdb", s->data_dir);
	if ((s->tsdb = tsdb_open(dbpath, &topts, &err)) == NULL) {
		fprintf(stderr, "herd server: metrics store: %s\n", err.msg);
		goto out;
	}
	/* Signals are taken synchronously by this thread; every other thread
	 * inherits the blocked mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < nlisten || i == 0; i++) {
		const char *a = i == 0 ? listen : more[i - 1], *colon = strrchr(a, ':');

		snprintf(listen_ips[i], sizeof(listen_ips[i]), "%.*s",
			 colon ? (int)(colon - a) : (int)strlen(a), a);
		ipv[i] = listen_ips[i];
	}
	/* hosts reach us by --advertise-url's name: the certificate carries it */
	if (s->advertise_url[0] && tlso.nnames < TLS_NAMES_MAX) {
		const char *h = strstr(s->advertise_url, "://");

		h = h ? h + 3 : s->advertise_url;
		snprintf(adv_host, sizeof(adv_host), "%.*s", (int)strcspn(h, ":/"), h);
		tlso.names[tlso.nnames++] = adv_host;
	}
	if (tls_setup(s, &tlso, ipv, nlisten > 0 ? (size_t)nlisten : 1, &err) < 0) {
		fprintf(stderr, "herd server: %s%s%s\n", err.field[0] ? err.field : "",
			err.field[0] ? ": " : "", err.msg);
		goto out;
	}
	if (wake_start(s, &err) < 0) {
		fprintf(stderr, "herd server: %s\n", err.msg);
		goto out;
	}
	if (httpd_start(s, listen, more, nlisten > 1 ? nlisten - 1 : 0, &err) < 0) {
		fprintf(stderr, "herd server: --listen: %s\n", err.msg);
		goto out;
	}
	for (int i = 1; i < nlisten; i++)
		log_info("also listening on %s://%s",
			 httpd_is_tls(s, listen_ips[i], (int)str_long_or(strrchr(more[i - 1], ':') + 1,
									  1, 65535, 0)) ? "https" : "http",
			 more[i - 1]);
	if (leader_start(s, &err) < 0 || ctl_start(s, &err) < 0 || autoscale_start(s, &err) < 0 ||
	    promsrc_start(s, &err) < 0 || alert_start(s, &err) < 0 || notify_start(s, &err) < 0 ||
	    rwout_start(s, &err) < 0) {
		fprintf(stderr, "herd server: %s\n", err.msg);
		ctl_stop(s);
		promsrc_stop(s);
		alert_stop(s);
		notify_stop(s);
		leader_stop(s);
		httpd_stop(s);
		rwout_stop(s);
		goto out;
	}
	log_info("herd %s listening on %s://%s (data %s, instance %s)", HERD_VERSION,
		 httpd_is_tls(s, listen_ips[0], s->port) ? "https" : "http", listen, s->data_dir, s->instance);
	while (sigwait(&set, &sig) != 0)
		;
	log_info("signal %d: shutting down", sig);
	ctl_stop(s);        /* sets s->stopping: the autoscaler and alerts end too */
	promsrc_stop(s);    /* a query under way ends within its timeout */
	autoscale_stop(s);
	alert_stop(s);
	notify_stop(s);     /* cuts a send under way: that notification goes again next start */
	leader_stop(s);     /* the lease lapses now: another server takes over at once */
	lbsync_stop(s);   /* closes the LB drivers (waits for API calls using them); HAProxy keeps serving */
	httpd_stop(s);
	rwout_stop(s);      /* after the last push: the buffers go to disk, sent next start */
	wake_stop(s);       /* after every kicker: the last kicks are announced */
	if (host_heartbeats_flush(s->store, &err) < 0)
		log_warn("cannot write the heartbeats kept in memory: %s", err.msg);
	rc = 0;
out:
	wake_stop(s);
	tsdb_close(s->tsdb);
	store_close(s->store);
	tls_free(s);
	return rc;
}
