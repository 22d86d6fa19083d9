/* lb-haproxy.c - the "haproxy" LB driver, for local networks: one HAProxy
 * process per data dir, started and supervised by a thread of the server
 * (restarted with backoff when it dies), outliving the server (own session;
 * left serving when the server stops or dies, adopted by the next one, so a
 * control plane restart drops no traffic; stopped by teardown), configured
 * by <data>/lb/haproxy.cfg and driven at run time through its stats socket
 * <data>/lb/haproxy.sock (a symlink to the running process's own socket, so a
 * process that fails to start cannot take the socket of the one serving).
 * Members are added, drained and deleted with the
 * runtime API, so membership never reloads HAProxy; a new or changed listener
 * rewrites the configuration and reloads (a new process started with -sf
 * takes the listeners over and lets the old one finish its sessions). The
 * configuration lists the active members, so reloads and restarts keep them;
 * joining members are added again at run time. */
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "lb.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define HX_TICK_MS 100              /* supervisor period: crash detection, promotions */
#define HX_READY_MS 5000            /* longest wait for a new process's socket */
#define HX_STOP_MS 3000             /* SIGTERM, then SIGKILL */
#define HX_BACKOFF_MIN_MS 200LL     /* first restart after a crash; doubles */
#define HX_BACKOFF_MAX_MS 10000LL
#define HX_STABLE_MS 10000LL        /* a process that lived this long resets the backoff */
#define HX_APPLY_WAIT_MS 15000LL    /* longest apply() waits for a reload */
#define HX_SOCK_TIMEOUT_MS 2000     /* per runtime API command */
#define HX_RESP_MAX (8u << 20)      /* runtime API answer, bytes */
#define HX_RISE 2                   /* checks passed before a member takes traffic */
#define HX_FALL 2
#define HX_FASTINTER_MS 200         /* check period while a member changes state, or is
				     * down: a joining member starts down (health 0) */
#define HX_GONE_TRIES 600           /* del server retries (one per tick) */
#define HX_MAX_OLD 16
/* Every server line, static or added at run time, ends with these: on 2.6 a
 * dynamic server otherwise gets no idle connection pool (pool-max-conn 0,
 * pool-purge-delay 0), so each request opens a new connection to the host:
 * measured at less than half the requests/s of a static server. */
#define HX_POOL_OPTS "pool-purge-delay 5s pool-max-conn -1"

struct hx_member {
	struct lb_member m;
	enum lb_intent intent;
	int64_t drain_since_ms;     /* mono */
};

struct hx_lb {
	struct lb_spec spec;
	struct hx_member *mem;
	size_t nmem;
	char err[256];              /* why its listener is left out; "" if serving */
};

/* A server HAProxy would not delete yet (idle connections): retried. */
struct hx_gone {
	char be[80];
	char srv[64];
	int tries;
};

struct hx {
	pthread_mutex_t lock;       /* guards everything below */
	pthread_cond_t cond;        /* wakes the supervisor and apply() waiters */
	pthread_t thread;
	bool thread_started, stopping;
	bool applied;               /* apply() was called: the LBs wanted are known */
	bool adopted;               /* pid was left by an earlier server; not yet reconciled */
	char bin[512];
	char dir[1100], cfg[1200], tmp[1200], sock[1200], pidf[1200], logf[1200];
	char cur_sock[1200];        /* the serving process's socket; "" if none */
	char *run_cfg;              /* the configuration it runs (owned) */
	uint64_t attempts;          /* starts tried: names each process's socket */
	int64_t bind_check_ms;      /* mono; when left-out listeners were last tried */
	struct hx_lb *lbs;
	size_t nlbs;
	uint64_t cfg_version;       /* bumped when a listener or the set of LBs changes */
	uint64_t run_version;       /* what the running process was started with; 0 = none */
	uint64_t tried_version;     /* the last version a start was tried for */
	int last_rc;
	char last_err[512];
	pid_t pid;                  /* the serving process (ours or adopted), 0 if none */
	int64_t started_mono_ms, started_wall_ms;
	pid_t old[HX_MAX_OLD];      /* soft-stopping processes after a reload */
	int nold;
	int failures;               /* quick deaths in a row: the backoff exponent */
	int64_t restarts;
	int64_t next_start_ms;      /* mono; no restart before */
	struct hx_gone *gone;
	size_t ngone;
};

static struct hx *
hx_of(struct lb *l)
{
	return l->priv;
}

/* --- pure helpers: configuration and stats parsing --- */

static int
cfg_lb(struct buf *o, const struct lb_spec *s, const struct lb_member *mem, size_t nmem)
{
	bool http_check = strcmp(s->check.type, "http") == 0;

	buf_addf(o, "\nfrontend fe_%s\n\tmode %s\n\tbind %s\n\tdefault_backend be_%s\n", s->name,
		 s->mode, s->listen, s->name);
	if (strcmp(s->mode, "http") == 0)
		buf_adds(o, "\toption forwardfor\n");
	buf_addf(o, "\nbackend be_%s\n\tmode %s\n\tbalance %s\n", s->name, s->mode, s->algorithm);
	/* dynamic servers need a dynamic algorithm: consistent hashing for source */
	if (strcmp(s->algorithm, "source") == 0)
		buf_adds(o, "\thash-type consistent\n");
	if (http_check) {
		if (!lb_health_path_valid(s->check.path))
			return -1;
		buf_addf(o, "\toption httpchk GET %s\n", s->check.path);
		if (s->check.expect)
			buf_addf(o, "\thttp-check expect status %d\n", s->check.expect);
	}
	for (size_t i = 0; i < nmem; i++)
		buf_addf(o, "\tserver %s %s:%d check inter %lldms fastinter %dms downinter %dms rise %d"
			 " fall %d weight 1 " HX_POOL_OPTS "\n",
			 mem[i].name, mem[i].addr, mem[i].port, (long long)s->check.interval_ms,
			 HX_FASTINTER_MS, HX_FASTINTER_MS, HX_RISE, HX_FALL);
	return 0;
}

int
haproxy_config(struct buf *o, const char *sock, const struct lb_spec *specs, size_t nspecs,
	       const struct lb_member *const *mem, const size_t *nmem, struct herr *err)
{
	buf_adds(o, "# haproxy.cfg - written by herd for one data dir; rewritten when a load\n"
		    "# balancer or listener changes. Members change at run time (stats socket).\n"
		    "global\n");
	buf_addf(o, "\tstats socket %s mode 600 level admin\n", sock);
	buf_adds(o, "\tstats timeout 30s\n"
		    "\thard-stop-after 60s\n"
		    "\ndefaults\n"
		    "\ttimeout connect 5s\n"
		    "\ttimeout client 60s\n"
		    "\ttimeout server 60s\n"
		    "\ttimeout queue 30s\n"
		    "\ttimeout check 2s\n"
		    "\ttimeout http-request 10s\n"
		    "\toption redispatch\n"
		    "\tretries 3\n");
	for (size_t i = 0; i < nspecs; i++)
		if (cfg_lb(o, &specs[i], mem ? mem[i] : NULL, nmem ? nmem[i] : 0) < 0)
			return herr_field(err, HERR_INVALID, "health_check.path",
					  "load balancer '%s': unsafe health check path", specs[i].name);
	if (o->len >= o->max)
		return herr_set(err, HERR_TOOBIG, "haproxy configuration too large");
	return 0;
}

/* Splits one CSV line in place (HAProxy quotes fields holding commas). */
static size_t
csv_split(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (n < max) {
		char *w;
		if (*p == '"') {
			f[n++] = w = ++p;
			while (*p && !(*p == '"' && p[1] != '"')) {
				if (*p == '"')
					p++;
				*w++ = *p++;
			}
			if (*p == '"')
				p++;
			if (*p == ',')
				p++;
			*w = '\0';
			if (*p == '\0' && p[-1] != ',')
				break;
			continue;
		}
		f[n++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

static enum lb_bstate
status_state(const char *st)
{
	if (strncmp(st, "UP", 2) == 0 || strcmp(st, "no check") == 0)
		return LBB_UP;
	if (strncmp(st, "DRAIN", 5) == 0 || strncmp(st, "NOLB", 4) == 0)
		return LBB_DRAIN;
	if (strncmp(st, "MAINT", 5) == 0)
		return LBB_MAINT;
	return LBB_DOWN;
}

size_t
haproxy_parse_stat(const char *csv, const char *be, struct lb_backend *out, size_t max)
{
	char *text = xstrdup(csv), *save = NULL, *line;
	int c_px = -1, c_sv = -1, c_scur = -1, c_st = -1, c_chk = -1, c_addr = -1;
	size_t n = 0;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[128];
		size_t nf;

		if (line[0] == '#') {
			nf = csv_split(line + (line[1] == ' ' ? 2 : 1), f, 128);
			for (size_t i = 0; i < nf; i++) {
				if (strcmp(f[i], "pxname") == 0) c_px = (int)i;
				else if (strcmp(f[i], "svname") == 0) c_sv = (int)i;
				else if (strcmp(f[i], "scur") == 0) c_scur = (int)i;
				else if (strcmp(f[i], "status") == 0) c_st = (int)i;
				else if (strcmp(f[i], "check_status") == 0) c_chk = (int)i;
				else if (strcmp(f[i], "addr") == 0) c_addr = (int)i;
			}
			continue;
		}
		if (c_px < 0 || c_sv < 0 || c_st < 0 || n >= max)
			continue;
		nf = csv_split(line, f, 128);
		if ((size_t)c_px >= nf || (size_t)c_sv >= nf || (size_t)c_st >= nf ||
		    strcmp(f[c_px], be) != 0 || strcmp(f[c_sv], "FRONTEND") == 0 ||
		    strcmp(f[c_sv], "BACKEND") == 0)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].m.name, sizeof(out[n].m.name), "%s", f[c_sv]);
		snprintf(out[n].status, sizeof(out[n].status), "%s", f[c_st]);
		out[n].state = status_state(f[c_st]);
		if (c_chk >= 0 && (size_t)c_chk < nf) {
			/* "* L7OK": the star marks a check in progress */
			const char *cs = f[c_chk];
			if (cs[0] == '*' && cs[1] == ' ')
				cs += 2;
			snprintf(out[n].check_status, sizeof(out[n].check_status), "%s", cs);
		}
		/* a field that does not parse is unknown (-1), never 0: a drain
		 * takes 0 for "no session left" */
		out[n].scur = -1;
		if (c_scur >= 0 && (size_t)c_scur < nf)
			out[n].scur = str_long_or(f[c_scur], 0, LONG_MAX, -1);
		if (c_addr >= 0 && (size_t)c_addr < nf) {
			char *colon = strrchr(f[c_addr], ':');
			if (colon) {
				out[n].m.port = (int)str_long_or(colon + 1, 0, 65535, 0);
				*colon = '\0';
			}
			snprintf(out[n].m.addr, sizeof(out[n].m.addr), "%s", f[c_addr]);
		}
		n++;
	}
	free(text);
	return n;
}

/* HAProxy's server admin state bits (srv_admin_state): any maintenance, and
 * drain (forced, or inherited from a tracked server). */
#define HX_ADMF_MAINT 0x67
#define HX_ADMF_DRAIN 0x18

size_t
haproxy_parse_servers_state(const char *text, const char *be, struct lb_backend *out, size_t max,
			    int64_t now_ms)
{
	char *txt = xstrdup(text), *line, *save = NULL;
	int c_be = -1, c_name = -1, c_addr = -1, c_admin = -1, c_port = -1;
	size_t n = 0;

	for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[64], *tok, *s2 = NULL;
		size_t nf = 0;
		unsigned long admin;

		for (tok = strtok_r(line, " ", &s2); tok && nf < 64; tok = strtok_r(NULL, " ", &s2))
			f[nf++] = tok;
		if (nf > 0 && strcmp(f[0], "#") == 0) {
			for (size_t i = 1; i < nf; i++) {
				int c = (int)i - 1;   /* data lines have no "#" */
				if (strcmp(f[i], "be_name") == 0) c_be = c;
				else if (strcmp(f[i], "srv_name") == 0) c_name = c;
				else if (strcmp(f[i], "srv_addr") == 0) c_addr = c;
				else if (strcmp(f[i], "srv_admin_state") == 0) c_admin = c;
				else if (strcmp(f[i], "srv_port") == 0) c_port = c;
			}
			continue;
		}
		if (c_be < 0 || c_name < 0 || c_addr < 0 || c_admin < 0 || c_port < 0 || n >= max ||
		    (size_t)c_be >= nf || (size_t)c_name >= nf || (size_t)c_addr >= nf ||
		    (size_t)c_admin >= nf || (size_t)c_port >= nf || strcmp(f[c_be], be) != 0)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].m.name, sizeof(out[n].m.name), "%s", f[c_name]);
		snprintf(out[n].m.addr, sizeof(out[n].m.addr), "%s", f[c_addr]);
		out[n].m.port = (int)str_long_or(f[c_port], 0, 65535, 0);
		admin = strtoul(f[c_admin], NULL, 10);
		/* drain cannot tell joining (not yet serving) from leaving: never
		 * given traffic on a guess; lb-sync takes it back if wanted */
		if (admin & (HX_ADMF_MAINT | HX_ADMF_DRAIN)) {
			out[n].intent = LBI_DRAINING;
			out[n].drain_since_ms = now_ms;
			out[n].state = admin & HX_ADMF_MAINT ? LBB_MAINT : LBB_DRAIN;
		} else {
			out[n].intent = LBI_ACTIVE;
			out[n].state = LBB_UP;
		}
		n++;
	}
	free(txt);
	return n;
}

/* Compares two configurations ignoring the server lines of backends:
 * membership is run-time state (the runtime API changes it, and it is read
 * back from the process), so only listeners and settings need a reload. */
bool
haproxy_config_same_listeners(const char *a, const char *b)
{
	for (;;) {
		size_t la, lb;
		while (strncmp(a, "\tserver ", 8) == 0)
			a += strcspn(a, "\n") + (a[strcspn(a, "\n")] != '\0');
		while (strncmp(b, "\tserver ", 8) == 0)
			b += strcspn(b, "\n") + (b[strcspn(b, "\n")] != '\0');
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		la = strcspn(a, "\n");
		lb = strcspn(b, "\n");
		if (la != lb || memcmp(a, b, la) != 0)
			return false;
		a += la + (a[la] != '\0');
		b += lb + (b[lb] != '\0');
	}
}

/* --- processes --- */

static void
hx_backoff(struct hx *h)
{
	int64_t d = HX_BACKOFF_MIN_MS << (h->failures < 8 ? h->failures : 8);

	h->next_start_ms = mono_ms() + (d > HX_BACKOFF_MAX_MS ? HX_BACKOFF_MAX_MS : d);
	h->failures++;
}

/* Starts bin with the server's blocked signals and ignored SIGPIPE undone,
 * stdin on /dev/null, stdout and stderr on out_fd, no other inherited
 * descriptor, in a session of its own: HAProxy outlives the server (a
 * killed or restarted control plane must not drop traffic; the next server
 * adopts it), and a signal to the server's process group or terminal does
 * not reach it. posix_spawn, not fork: nothing of the server's memory is
 * copied, and a binary that cannot be executed is this call's error
 * (-1, errno), not a child's exit status. */
static pid_t
hx_spawn(const char *bin, char *const argv[], int out_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, pipe_only;
	pid_t pid = -1;
	int rc;

	sigemptyset(&none);
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		errno = rc;
		return -1;
	}
	if ((rc = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		errno = rc;
		return -1;
	}
	if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2)) == 0 &&
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
	    (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
						    POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&at, &pipe_only)) == 0)
		rc = posix_spawn(&pid, bin, &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

static bool
pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* True if pid is a haproxy running the configuration at cfg: its program
 * is named haproxy and its arguments hold "-f <cfg>". A pid file is only a
 * hint (the pid may have been reused): nothing is adopted, signalled or
 * waited for unless this holds. A zombie has no cmdline: false. */
static bool
pid_runs_cfg(pid_t pid, const char *cfg)
{
	char path[64], *cmd;
	const char *prog, *prev = NULL;
	size_t n = 0;
	bool yes = false;

	if (pid <= 1)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((cmd = file_read(path, 65536, &n)) == NULL)
		return false;
	prog = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	if (n > 0 && strncmp(prog, "haproxy", 7) == 0) {
		for (size_t i = strlen(cmd) + 1; i < n && !yes; i += strlen(cmd + i) + 1) {
			yes = prev && strcmp(prev, "-f") == 0 && strcmp(cmd + i, cfg) == 0;
			prev = cmd + i;
		}
	}
	free(cmd);
	return yes;
}

/* True once pid no longer runs cfg (exited, or the pid now names another
 * process); reaps it if it was our child. Supervision cannot rely on
 * waitpid: an adopted process is not our child. */
static bool
hx_gone(pid_t pid, const char *cfg)
{
	int status;

	waitpid(pid, &status, WNOHANG);
	return !pid_alive(pid) || !pid_runs_cfg(pid, cfg);
}

/* Stops a process running cfg, ours or adopted: SIGTERM, then SIGKILL
 * after HX_STOP_MS; never signals a pid that does not run cfg. */
static void
hx_stop_pid(pid_t pid, const char *cfg)
{
	int64_t end = mono_ms() + HX_STOP_MS;
	int status;

	if (pid <= 1 || hx_gone(pid, cfg))
		return;
	kill(pid, SIGTERM);
	while (mono_ms() < end) {
		if (hx_gone(pid, cfg))
			return;
		sleep_ms(20);
	}
	if (!hx_gone(pid, cfg)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* Stops a child: SIGTERM, then SIGKILL after HX_STOP_MS; reaps it. */
static void
hx_kill_child(pid_t pid)
{
	int64_t end = mono_ms() + HX_STOP_MS;
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (mono_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Stops every process running this data dir's configuration (the one in
 * the pid file, and older ones still finishing their sessions after a
 * reload), found by their cmdline, never by the pid file alone. */
static void
hx_stop_all_of_cfg(const char *cfg)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == (long)getpid() ||
		    !pid_runs_cfg((pid_t)pid, cfg))
			continue;
		log_info("lb haproxy: stopping haproxy (pid %ld) of '%s'", pid, cfg);
		hx_stop_pid((pid_t)pid, cfg);
	}
	closedir(d);
}

/* The pid in a pid file, or 0. */
static pid_t
pidfile_read(const char *pidf)
{
	char *txt = file_read(pidf, 64, NULL), *end = NULL;
	long pid = txt ? strtol(txt, &end, 10) : 0;

	if (txt == NULL || end == txt || pid <= 1 || pid > 1L << 22)
		pid = 0;
	free(txt);
	return (pid_t)pid;
}

/* Removes haproxy.sock and every process's haproxy.<n>.sock in dir but the
 * one named keep (a file name, or NULL). */
static void
remove_sockets(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char path[1400];
		if (strncmp(e->d_name, "haproxy.", 8) != 0 || n < 13 ||
		    strcmp(e->d_name + n - 5, ".sock") != 0 || (keep && strcmp(e->d_name, keep) == 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

/* The last "[ALERT]" line of the log, for error messages. */
static void
log_tail(const char *logf, char *out, size_t n)
{
	size_t len = 0;
	char *txt = file_read(logf, 1 << 20, &len), *p, *best = NULL;

	snprintf(out, n, "see %s", logf);
	if (txt == NULL)
		return;
	for (p = txt; (p = strstr(p, "[ALERT]")) != NULL; p++)
		best = p;
	if (best) {
		char *nl = strchr(best, '\n');
		if (nl)
			*nl = '\0';
		snprintf(out, n, "%s", best);
	}
	free(txt);
}

/* --- the runtime API (stats socket) --- */

static int
sock_cmd(const char *path, const char *cmd, struct buf *resp, struct herr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { HX_SOCK_TIMEOUT_MS / 1000, (HX_SOCK_TIMEOUT_MS % 1000) * 1000 };
	char chunk[16384];
	size_t len = strlen(cmd);
	ssize_t r;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return herr_set(err, -errno, "cannot make a socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return herr_set(err, HERR_UNAVAIL, "cannot reach haproxy at '%s': %s", path,
				strerror(e));
	}
	if (send(fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		close(fd);
		return herr_set(err, HERR_UNAVAIL, "cannot send to haproxy: %s", strerror(errno));
	}
	buf_reset(resp);
	while ((r = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
		if (buf_add(resp, chunk, (size_t)r) < 0) {
			close(fd);
			return herr_set(err, HERR_TOOBIG, "haproxy's answer to '%.40s' is over %u bytes",
					cmd, HX_RESP_MAX);
		}
	}
	close(fd);
	if (r < 0)
		return herr_set(err, HERR_UNAVAIL, "no answer from haproxy to '%.40s': %s", cmd,
				strerror(errno));
	if (resp->p == NULL)
		buf_adds(resp, "");
	return 0;
}

static int
hx_cmd(struct hx *h, const char *cmd, struct buf *resp, struct herr *err)
{
	if (h->cur_sock[0] == '\0')
		return herr_set(err, HERR_UNAVAIL, "haproxy is not running");
	return sock_cmd(h->cur_sock, cmd, resp, err);
}

/* Runs cmd; success is an empty answer or one containing ok (if given). */
static int
hx_cmd_ok(struct hx *h, const char *cmd, const char *ok, struct herr *err)
{
	struct buf resp;
	int rc;

	buf_init(&resp, HX_RESP_MAX);
	if ((rc = hx_cmd(h, cmd, &resp, err)) == 0) {
		char *p = resp.p;
		size_t n = strlen(p);
		while (n && (p[n - 1] == '\n' || p[n - 1] == ' '))
			p[--n] = '\0';
		if (n > 0 && (ok == NULL || strstr(p, ok) == NULL))
			rc = herr_set(err, HERR_CONFLICT, "haproxy refused '%s': %s", cmd, p);
	}
	buf_release(&resp);
	return rc;
}

static pid_t
socket_pid(const char *path)
{
	struct herr err = HERR_INIT;
	struct buf resp;
	pid_t pid = 0;
	char *p;

	buf_init(&resp, HX_RESP_MAX);
	if (sock_cmd(path, "show info", &resp, &err) == 0 && (p = strstr(resp.p, "\nPid: ")) != NULL)
		pid = (pid_t)str_long_or(p + 6, 1, 4194304, 0);   /* PID_MAX_LIMIT */
	buf_release(&resp);
	return pid;
}

static struct hx_lb *
hx_find(struct hx *h, const char *name)
{
	for (size_t i = 0; i < h->nlbs; i++)
		if (strcmp(h->lbs[i].spec.name, name) == 0)
			return &h->lbs[i];
	return NULL;
}

static struct hx_member *
hx_member(struct hx_lb *b, const char *name)
{
	for (size_t i = 0; i < b->nmem; i++)
		if (strcmp(b->mem[i].m.name, name) == 0)
			return &b->mem[i];
	return NULL;
}

static void
gone_forget(struct hx *h, const char *be, const char *srv)
{
	for (size_t i = 0; i < h->ngone; i++)
		if (strcmp(h->gone[i].be, be) == 0 && strcmp(h->gone[i].srv, srv) == 0)
			h->gone[i--] = h->gone[--h->ngone];
}

/* Adds a joining member at run time: drained (no traffic) with checks on;
 * the supervisor sets it ready once its check passes (a server added
 * "enabled" on 2.6 takes traffic before any check, or never serves). */
static int
hx_add_runtime(struct hx *h, const struct hx_lb *b, const struct hx_member *x, struct herr *err)
{
	char cmd[512];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "add server be_%s/%s %s:%d check inter %lldms fastinter %dms downinter %dms"
		 " rise %d fall %d weight 1 " HX_POOL_OPTS,
		 b->spec.name, x->m.name, x->m.addr, x->m.port, (long long)b->spec.check.interval_ms,
		 HX_FASTINTER_MS, HX_FASTINTER_MS, HX_RISE, HX_FALL);
	rc = hx_cmd_ok(h, cmd, "New server registered", err);
	if (rc < 0 && strstr(err->msg, "Already exists") == NULL)
		return rc;
	herr_clear(err);
	snprintf(cmd, sizeof(cmd), "set server be_%s/%s state drain", b->spec.name, x->m.name);
	if ((rc = hx_cmd_ok(h, cmd, NULL, err)) < 0)
		return rc;
	snprintf(cmd, sizeof(cmd), "enable health be_%s/%s", b->spec.name, x->m.name);
	return hx_cmd_ok(h, cmd, NULL, err);
}

/* Takes a server out: maintenance, close its sessions, delete. A delete
 * HAProxy refuses (idle connections) is retried by the supervisor. */
static void
hx_del_runtime(struct hx *h, const char *lbname, const char *srv)
{
	struct herr err = HERR_INIT;
	char cmd[256], be[80];

	snprintf(be, sizeof(be), "be_%s", lbname);
	snprintf(cmd, sizeof(cmd), "set server %s/%s state maint", be, srv);
	hx_cmd_ok(h, cmd, NULL, &err);
	snprintf(cmd, sizeof(cmd), "shutdown sessions server %s/%s", be, srv);
	hx_cmd_ok(h, cmd, NULL, &err);
	herr_clear(&err);
	snprintf(cmd, sizeof(cmd), "del server %s/%s", be, srv);
	if (hx_cmd_ok(h, cmd, "Server deleted", &err) == 0 || strstr(err.msg, "No such") ||
	    err.code == HERR_UNAVAIL)
		return;
	log_debug("lb haproxy: %s (will retry)", err.msg);
	h->gone = xrealloc(h->gone, (h->ngone + 1) * sizeof(*h->gone));
	memset(&h->gone[h->ngone], 0, sizeof(h->gone[0]));
	snprintf(h->gone[h->ngone].be, sizeof(h->gone[0].be), "%s", be);
	snprintf(h->gone[h->ngone].srv, sizeof(h->gone[0].srv), "%s", srv);
	h->ngone++;
}

static void
hx_retry_gone(struct hx *h)
{
	for (size_t i = 0; i < h->ngone; i++) {
		struct herr err = HERR_INIT;
		char cmd[256];
		struct hx_gone *g = &h->gone[i];

		snprintf(cmd, sizeof(cmd), "del server %s/%s", g->be, g->srv);
		if (hx_cmd_ok(h, cmd, "Server deleted", &err) == 0 || strstr(err.msg, "No such") ||
		    ++g->tries >= HX_GONE_TRIES) {
			if (g->tries >= HX_GONE_TRIES)
				log_warn("lb haproxy: giving up deleting %s/%s: %s", g->be, g->srv, err.msg);
			h->gone[i--] = h->gone[--h->ngone];
		}
	}
}

/* Joining members whose health check passed get traffic. */
static void
hx_promote(struct hx *h)
{
	for (size_t i = 0; i < h->nlbs; i++) {
		struct hx_lb *b = &h->lbs[i];
		struct herr err = HERR_INIT;
		struct lb_backend *st;
		struct buf resp;
		char be[80];
		size_t n, k;
		bool any = false;

		for (k = 0; k < b->nmem; k++)
			any |= b->mem[k].intent == LBI_JOINING;
		if (!any)
			continue;
		buf_init(&resp, HX_RESP_MAX);
		if (hx_cmd(h, "show stat", &resp, &err) < 0) {
			buf_release(&resp);
			return;
		}
		snprintf(be, sizeof(be), "be_%s", b->spec.name);
		st = xcalloc(b->nmem + 64, sizeof(*st));
		n = haproxy_parse_stat(resp.p, be, st, b->nmem + 64);
		buf_release(&resp);
		for (k = 0; k < b->nmem; k++) {
			struct hx_member *x = &b->mem[k];
			int up = -1, of = 0;
			if (x->intent != LBI_JOINING)
				continue;
			for (size_t j = 0; j < n; j++) {
				size_t cl = strlen(st[j].check_status);
				if (strcmp(st[j].m.name, x->m.name) != 0)
					continue;
				/* "DRAIN" = fully up; "DRAIN x/y" = up by x-1 checks over rise */
				if (strcmp(st[j].status, "DRAIN") == 0)
					up = 1;
				else if (sscanf(st[j].status, "DRAIN %d/%d", &up, &of) != 2)
					up = -1;
				if (cl < 2 || strcmp(st[j].check_status + cl - 2, "OK") != 0)
					up = -1;
			}
			if (up >= 1) {
				char cmd[256];
				snprintf(cmd, sizeof(cmd), "set server be_%s/%s state ready", b->spec.name,
					 x->m.name);
				if (hx_cmd_ok(h, cmd, NULL, &err) == 0) {
					x->intent = LBI_ACTIVE;
					log_info("lb %s: member %s (%s:%d) passed its health check: serving",
						 b->spec.name, x->m.name, x->m.addr, x->m.port);
				}
			}
		}
		free(st);
	}
}

/* Reads the members an adopted process serves into LBs herd knows nothing
 * of yet, so that lb-sync leaves the matching ones untouched (no session
 * reset), removes the stale ones and adds the missing ones. */
static void
hx_import(struct hx *h)
{
	struct buf resp;

	buf_init(&resp, HX_RESP_MAX);
	for (size_t i = 0; i < h->nlbs; i++) {
		struct hx_lb *b = &h->lbs[i];
		struct herr err = HERR_INIT;
		struct lb_backend *st;
		char cmd[128];
		size_t n, max = 4096;

		if (b->nmem > 0)
			continue;
		snprintf(cmd, sizeof(cmd), "show servers state be_%s", b->spec.name);
		if (hx_cmd(h, cmd, &resp, &err) < 0) {
			log_warn("lb %s: cannot read the adopted members: %s", b->spec.name, err.msg);
			continue;
		}
		st = xcalloc(max, sizeof(*st));
		snprintf(cmd, sizeof(cmd), "be_%s", b->spec.name);
		n = haproxy_parse_servers_state(resp.p, cmd, st, max, mono_ms());
		b->mem = xcalloc(n + 1, sizeof(*b->mem));
		for (size_t k = 0; k < n; k++) {
			b->mem[k].m = st[k].m;
			b->mem[k].intent = st[k].intent;
			b->mem[k].drain_since_ms = st[k].drain_since_ms;
		}
		b->nmem = n;
		log_info("lb %s: adopted %zu member%s", b->spec.name, n, n == 1 ? "" : "s");
		free(st);
	}
	buf_release(&resp);
}

/* Runs `haproxy -c` on the new configuration; its complaint becomes err. */
static int
hx_check_cfg(struct hx *h, struct herr *err)
{
	char *argv[] = { h->bin, (char *)"-c", (char *)"-q", (char *)"-f", h->tmp, NULL };
	char out[2048];
	size_t n = 0;
	int pfd[2], status = 0;
	pid_t pid;
	ssize_t r;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return herr_set(err, -errno, "pipe: %s", strerror(errno));
	pid = hx_spawn(h->bin, argv, pfd[1]);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return herr_set(err, -errno, "cannot run '%s': %s", h->bin, strerror(errno));
	}
	for (;;) {
		char chunk[1024];
		if ((r = read(pfd[0], chunk, sizeof(chunk))) < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if ((size_t)r > sizeof(out) - 1 - n)
			r = (ssize_t)(sizeof(out) - 1 - n);
		memcpy(out + n, chunk, (size_t)r);
		n += (size_t)r;
	}
	out[n] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return herr_set(err, HERR_INVALID, "haproxy rejects the configuration: %s",
			n ? out : "(no message)");
}

/* Can a new listener bind `listen`? Tried the way HAProxy binds (with
 * SO_REUSEPORT), so a port our running HAProxy holds counts as free and
 * one another program holds does not. */
static bool
listen_free(const char *listen, char *why, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(listen, ':');
	char ip[64];
	int fd, one = 1;
	bool ok;

	snprintf(ip, sizeof(ip), "%.*s", colon ? (int)(colon - listen) : 0, listen);
	if (colon == NULL || inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		snprintf(why, n, "invalid listen address '%s'", listen);
		return false;
	}
	sa.sin_port = htons((uint16_t)str_long_or(colon + 1, 0, 65535, 0));
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return true;   /* let HAProxy say */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (!ok)
		snprintf(why, n, "cannot listen on %s: %s", listen, strerror(errno));
	close(fd);
	return ok;
}

/* Writes the configuration and starts a process (taking over from the
 * running one, if any, with -sf); waits until its own socket answers, then
 * points haproxy.sock at it. A listener that cannot bind is left out (its
 * LB reports why) so it does not keep the others from being served. */
static int
hx_start(struct hx *h, struct herr *err)
{
	struct lb_spec *specs = xcalloc(h->nlbs + 1, sizeof(*specs));
	struct lb_member **mem = xcalloc(h->nlbs + 1, sizeof(*mem));
	size_t *nmem = xcalloc(h->nlbs + 1, sizeof(*nmem));
	size_t nspecs = 0;
	char oldpid[24], pidtxt[24], sock[1200], link_tmp[1300];
	char *argv[8];
	struct buf cfg;
	pid_t old = h->pid, pid;
	int64_t end;
	int fd, argc = 0, rc = 0, status;
	bool ready = false, same = false;

	buf_init(&cfg, 16u << 20);
	if (h->adopted && old > 0)
		hx_import(h);
	snprintf(sock, sizeof(sock), "%s/haproxy.%llu.sock", h->dir,
		 (unsigned long long)++h->attempts);
	for (size_t i = 0; i < h->nlbs; i++) {
		struct hx_lb *b = &h->lbs[i];
		if (!listen_free(b->spec.listen, b->err, sizeof(b->err))) {
			log_warn("lb %s: %s: left out of haproxy until it can", b->spec.name, b->err);
			continue;
		}
		b->err[0] = '\0';
		specs[nspecs] = b->spec;
		mem[nspecs] = xcalloc(b->nmem + 1, sizeof(**mem));
		for (size_t k = 0; k < b->nmem; k++)
			if (b->mem[k].intent == LBI_ACTIVE)
				mem[nspecs][nmem[nspecs]++] = b->mem[k].m;
		nspecs++;
	}
	h->bind_check_ms = mono_ms();
	if (nspecs == 0) {
		rc = herr_set(err, HERR_UNAVAIL, "no load balancer can listen: %s", h->lbs[0].err);
	} else if (old > 0 && h->run_cfg) {
		/* what runs is what would run (a left-out listener): no reload */
		rc = haproxy_config(&cfg, h->cur_sock, specs, nspecs,
				    (const struct lb_member *const *)mem, nmem, err);
		same = rc == 0 && (h->adopted ? haproxy_config_same_listeners(cfg.p, h->run_cfg)
					     : strcmp(cfg.p, h->run_cfg) == 0);
		buf_reset(&cfg);
		if (same && h->adopted) {
			h->adopted = false;
			log_info("lb haproxy: adopted pid %d runs the configuration wanted: no reload",
				 (int)old);
		}
	}
	if (rc == 0 && !same)
		rc = haproxy_config(&cfg, sock, specs, nspecs, (const struct lb_member *const *)mem,
				    nmem, err);
	for (size_t i = 0; i < nspecs; i++)
		free(mem[i]);
	free(mem);
	free(nmem);
	free(specs);
	if (rc < 0 || same)
		goto out;
	if (file_write_atomic(h->tmp, cfg.p, cfg.len, 0600) < 0) {
		rc = herr_set(err, -errno, "cannot write '%s': %s", h->tmp, strerror(errno));
		goto out;
	}
	if ((rc = hx_check_cfg(h, err)) < 0)
		goto out;
	if (rename(h->tmp, h->cfg) < 0) {
		rc = herr_set(err, -errno, "cannot write '%s': %s", h->cfg, strerror(errno));
		goto out;
	}
	if ((fd = open(h->logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		rc = herr_set(err, -errno, "cannot open '%s': %s", h->logf, strerror(errno));
		goto out_restore;
	}
	argv[argc++] = h->bin;
	argv[argc++] = (char *)"-f";
	argv[argc++] = h->cfg;
	if (old > 0) {
		snprintf(oldpid, sizeof(oldpid), "%d", (int)old);
		argv[argc++] = (char *)"-sf";
		argv[argc++] = oldpid;
	}
	argv[argc] = NULL;
	pid = hx_spawn(h->bin, argv, fd);
	close(fd);
	if (pid < 0) {
		rc = herr_set(err, -errno, "cannot start '%s': %s", h->bin, strerror(errno));
		goto out_restore;
	}
	for (end = mono_ms() + HX_READY_MS; mono_ms() < end;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char why[400];
			log_tail(h->logf, why, sizeof(why));
			rc = herr_set(err, HERR_UNAVAIL, "haproxy exited at start (status %d): %s",
				      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), why);
			goto out_restore;
		}
		if (socket_pid(sock) == pid) {
			ready = true;
			break;
		}
		sleep_ms(20);
	}
	if (!ready) {
		hx_kill_child(pid);
		rc = herr_set(err, HERR_TIMEOUT, "haproxy did not answer on '%s' within %d ms", sock,
			      HX_READY_MS);
		goto out_restore;
	}
	if (old > 0) {
		if (h->nold < HX_MAX_OLD)
			h->old[h->nold++] = old;
		else
			hx_stop_pid(old, h->cfg);
	}
	/* haproxy.sock -> the new process's socket, atomically */
	snprintf(link_tmp, sizeof(link_tmp), "%s.new", h->sock);
	unlink(link_tmp);
	if (symlink(strrchr(sock, '/') + 1, link_tmp) < 0 || rename(link_tmp, h->sock) < 0)
		log_warn("lb haproxy: cannot link '%s': %s", h->sock, strerror(errno));
	if (h->cur_sock[0])
		unlink(h->cur_sock);
	snprintf(h->cur_sock, sizeof(h->cur_sock), "%s", sock);
	h->pid = pid;
	h->adopted = false;
	h->started_mono_ms = mono_ms();
	h->started_wall_ms = now_ms();
	free(h->run_cfg);
	h->run_cfg = xstrdup(cfg.p);
	snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)pid);
	file_write_atomic(h->pidf, pidtxt, strlen(pidtxt), 0600);
	log_info("lb haproxy: %s pid %d with %zu load balancer%s (%s)", old > 0 ? "reloaded as" : "started",
		 (int)pid, nspecs, nspecs == 1 ? "" : "s", h->cfg);
	/* what the configuration does not hold: joining members come back at
	 * run time; draining ones were on their way out and stay out */
	for (size_t i = 0; i < h->nlbs; i++) {
		struct hx_lb *b = &h->lbs[i];
		for (size_t k = 0; k < b->nmem; k++) {
			struct herr e2 = HERR_INIT;
			if (b->mem[k].intent == LBI_DRAINING) {
				b->mem[k--] = b->mem[--b->nmem];
				continue;
			}
			if (b->err[0] == '\0' && b->mem[k].intent == LBI_JOINING &&
			    hx_add_runtime(h, b, &b->mem[k], &e2) < 0)
				log_warn("lb %s: cannot add member %s: %s", b->spec.name, b->mem[k].m.name,
					 e2.msg);
		}
	}
	h->ngone = 0;
	goto out;
out_restore:
	/* the file says what runs */
	if (old > 0 && h->run_cfg)
		file_write_atomic(h->cfg, h->run_cfg, strlen(h->run_cfg), 0600);
out:
	if (rc < 0)
		unlink(sock);
	buf_release(&cfg);
	unlink(h->tmp);
	return rc;
}

/* Left-out listeners are tried again now and then: when one can bind, the
 * configuration is rewritten. */
static void
hx_retry_left_out(struct hx *h)
{
	if (mono_ms() - h->bind_check_ms < 2000)
		return;
	h->bind_check_ms = mono_ms();
	for (size_t i = 0; i < h->nlbs; i++) {
		char why[256];
		if (h->lbs[i].err[0] && listen_free(h->lbs[i].spec.listen, why, sizeof(why))) {
			log_info("lb %s: %s is free now", h->lbs[i].spec.name, h->lbs[i].spec.listen);
			h->cfg_version++;
			return;
		}
	}
}

static void
hx_stop_all(struct hx *h)
{
	if (h->pid > 0) {
		log_info("lb haproxy: stopping pid %d", (int)h->pid);
		hx_stop_pid(h->pid, h->cfg);
	}
	for (int i = 0; i < h->nold; i++)
		hx_stop_pid(h->old[i], h->cfg);
	h->pid = 0;
	h->nold = 0;
	h->run_version = 0;
	unlink(h->pidf);
	unlink(h->sock);
	if (h->cur_sock[0])
		unlink(h->cur_sock);
	h->cur_sock[0] = '\0';
}

/* Notices a process that died. The serving process may be an adopted one
 * (not our child), so death is "no longer a haproxy running our
 * configuration", not waitpid's word; our children are still reaped. */
static void
hx_reap(struct hx *h)
{
	for (int i = 0; i < h->nold; i++)
		if (hx_gone(h->old[i], h->cfg))
			h->old[i--] = h->old[--h->nold];
	if (h->pid > 0 && hx_gone(h->pid, h->cfg)) {
		int64_t lived = mono_ms() - h->started_mono_ms;
		if (lived >= HX_STABLE_MS)
			h->failures = 0;
		hx_backoff(h);
		h->restarts++;
		snprintf(h->last_err, sizeof(h->last_err), "haproxy (pid %d) is gone after %lld ms%s",
			 (int)h->pid, (long long)lived, h->adopted ? " (adopted)" : "");
		log_warn("lb haproxy: %s; restarting in %lld ms", h->last_err,
			 (long long)(h->next_start_ms - mono_ms()));
		h->pid = 0;
		h->run_version = 0;
		h->adopted = false;
		h->cur_sock[0] = '\0';
	}
}

static void *
hx_main(void *arg)
{
	struct hx *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		struct timespec ts;
		int64_t now;

		hx_reap(h);
		now = mono_ms();
		/* a new configuration is tried at once; a failed one again only
		 * while nothing serves (each try pauses the old process's
		 * listeners for a moment) */
		/* nothing is started or stopped before the first apply(): until
		 * then the LBs wanted are not all known, and an adopted process
		 * must not be reloaded or stopped for a partial list */
		if (!h->applied) {
			/* only watched */
		} else if (h->nlbs > 0 && (h->pid == 0 || h->run_version != h->cfg_version) &&
		    ((h->pid == 0 && now >= h->next_start_ms) || h->tried_version != h->cfg_version)) {
			struct herr err = HERR_INIT;
			uint64_t v = h->cfg_version;
			h->tried_version = v;
			if ((h->last_rc = hx_start(h, &err)) == 0) {
				h->run_version = v;
				h->last_err[0] = '\0';
			} else {
				snprintf(h->last_err, sizeof(h->last_err), "%s", err.msg);
				log_warn("lb haproxy: %s", err.msg);
				hx_backoff(h);
			}
			pthread_cond_broadcast(&h->cond);
		} else if (h->nlbs == 0 && (h->pid > 0 || h->nold > 0)) {
			hx_stop_all(h);
			h->run_version = h->tried_version = h->cfg_version;
			pthread_cond_broadcast(&h->cond);
		}
		if (h->pid > 0 && h->applied) {
			hx_promote(h);
			hx_retry_gone(h);
			hx_retry_left_out(h);
		}
		if (h->pid > 0 && h->failures > 0 && mono_ms() - h->started_mono_ms >= HX_STABLE_MS)
			h->failures = 0;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HX_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* --- ops --- */

static int
hx_paths(struct lb *l, struct hx *h, struct herr *err)
{
	snprintf(h->dir, sizeof(h->dir), "%s/lb", l->data_dir);
	snprintf(h->cfg, sizeof(h->cfg), "%s/haproxy.cfg", h->dir);
	snprintf(h->tmp, sizeof(h->tmp), "%s/haproxy.cfg.new", h->dir);
	snprintf(h->sock, sizeof(h->sock), "%s/haproxy.sock", h->dir);
	snprintf(h->pidf, sizeof(h->pidf), "%s/haproxy.pid", h->dir);
	snprintf(h->logf, sizeof(h->logf), "%s/haproxy.log", h->dir);
	if (strlen(h->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return herr_set(err, HERR_INVALID,
				"data dir path too long for haproxy's socket '%s' (at most %zu bytes)",
				h->sock, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

static int
hx_find_bin(char *out, size_t n, struct herr *err)
{
	const char *env = getenv("HERD_HAPROXY");
	static const char *const dirs[] = { "/usr/sbin", "/usr/local/sbin", "/usr/bin",
					    "/usr/local/bin", "/sbin", NULL };

	if (env && *env) {
		snprintf(out, n, "%s", env);
		if (access(out, X_OK) == 0)
			return 0;
		return herr_set(err, -ENOENT, "HERD_HAPROXY '%s' is not executable", env);
	}
	for (int i = 0; dirs[i]; i++) {
		snprintf(out, n, "%s/haproxy", dirs[i]);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return herr_set(err, -ENOENT, "haproxy not found (install the haproxy package, or set HERD_HAPROXY)");
}

/* Takes over the haproxy an earlier server left serving: the process that
 * answers on haproxy.sock (-> haproxy.<n>.sock) with its pid, if that pid
 * is a live haproxy running this data dir's configuration. The pid file is
 * only a hint: a pid naming any other process is neither adopted nor
 * signalled. Its members are read from it at the first start (hx_start). */
static bool
hx_adopt(struct hx *h)
{
	pid_t hint = pidfile_read(h->pidf), pid;
	unsigned long long attempt;
	char target[256], sock[1200], pidtxt[24];
	struct stat st;
	ssize_t n;

	if (hint && !pid_runs_cfg(hint, h->cfg))
		log_info("lb haproxy: pid file names pid %d, not a haproxy of '%s': ignored", (int)hint,
			 h->cfg);
	if ((n = readlink(h->sock, target, sizeof(target) - 1)) <= 0)
		return false;
	target[n] = '\0';
	if (strchr(target, '/') || sscanf(target, "haproxy.%llu.sock", &attempt) != 1)
		return false;
	snprintf(sock, sizeof(sock), "%s/%s", h->dir, target);
	if ((pid = socket_pid(sock)) <= 1 || !pid_runs_cfg(pid, h->cfg))
		return false;
	if (pid != hint)
		log_warn("lb haproxy: pid file says %d, the socket %d: adopting %d", (int)hint, (int)pid,
			 (int)pid);
	h->pid = pid;
	h->adopted = true;
	h->attempts = attempt;
	snprintf(h->cur_sock, sizeof(h->cur_sock), "%s", sock);
	h->run_cfg = file_read(h->cfg, 16u << 20, NULL);   /* the file says what runs */
	h->started_mono_ms = mono_ms();
	h->started_wall_ms = stat(h->pidf, &st) == 0 && pid == hint
			     ? (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 : now_ms();
	snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)pid);
	if (pid != hint)
		file_write_atomic(h->pidf, pidtxt, strlen(pidtxt), 0600);
	remove_sockets(h->dir, target);
	log_info("lb haproxy: adopted pid %d left serving by an earlier server (%s)", (int)pid, sock);
	return true;
}

static int
hx_open(struct lb *l, struct herr *err)
{
	struct hx *h = xcalloc(1, sizeof(*h));
	int fd;

	if (hx_paths(l, h, err) < 0 || hx_find_bin(h->bin, sizeof(h->bin), err) < 0)
		goto fail;
	if (mkdir_p(h->dir, 0700) < 0) {
		herr_set(err, -errno, "cannot create '%s': %s", h->dir, strerror(errno));
		goto fail;
	}
	if (!hx_adopt(h)) {
		/* a haproxy of ours that cannot be adopted would hold the
		 * listeners: stopped (found by cmdline, not by the pid file) */
		hx_stop_all_of_cfg(h->cfg);
		unlink(h->pidf);
		unlink(h->sock);
		remove_sockets(h->dir, NULL);
		if ((fd = open(h->logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
			close(fd);
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->cfg_version = 1;
	if (pthread_create(&h->thread, NULL, hx_main, h) != 0) {
		herr_set(err, -EAGAIN, "cannot start the haproxy supervisor thread");
		goto fail;
	}
	h->thread_started = true;
	l->priv = h;
	return 0;
fail:
	free(h);
	return err->code;
}

static void
hx_close(struct lb *l)
{
	struct hx *h = hx_of(l);

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->thread_started)
		pthread_join(h->thread, NULL);
	/* HAProxy keeps serving (pid file and socket stay): the next server
	 * adopts it; only teardown or deleting every LB stops it */
	if (h->pid > 0)
		log_info("lb haproxy: leaving pid %d serving for the next server", (int)h->pid);
	for (size_t i = 0; i < h->nlbs; i++)
		free(h->lbs[i].mem);
	free(h->lbs);
	free(h->gone);
	free(h->run_cfg);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

/* Only what the configuration file says counts as a change that reloads. */
static bool
spec_cfg_differs(const struct lb_spec *a, const struct lb_spec *b)
{
	return strcmp(a->listen, b->listen) != 0 || a->backend_port != b->backend_port ||
	       strcmp(a->mode, b->mode) != 0 || strcmp(a->algorithm, b->algorithm) != 0 ||
	       strcmp(a->check.type, b->check.type) != 0 || strcmp(a->check.path, b->check.path) != 0 ||
	       a->check.expect != b->check.expect || a->check.interval_ms != b->check.interval_ms;
}

static int
hx_ensure(struct lb *l, const struct lb_spec *spec, struct herr *err)
{
	struct hx *h = hx_of(l);
	struct hx_lb *b;

	pthread_mutex_lock(&h->lock);
	if ((b = hx_find(h, spec->name)) == NULL) {
		h->lbs = xrealloc(h->lbs, (h->nlbs + 1) * sizeof(*h->lbs));
		b = &h->lbs[h->nlbs++];
		memset(b, 0, sizeof(*b));
		b->spec = *spec;
		h->cfg_version++;
		log_info("lb %s: new listener %s (%s, %s) -> port %d", spec->name, spec->listen,
			 spec->mode, spec->algorithm, spec->backend_port);
	} else if (spec_cfg_differs(&b->spec, spec)) {
		b->spec = *spec;
		h->cfg_version++;
		log_info("lb %s: listener changed: %s -> port %d", spec->name, spec->listen,
			 spec->backend_port);
	} else {
		b->spec.drain_timeout_ms = spec->drain_timeout_ms;
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int
hx_destroy(struct lb *l, const char *name, struct herr *err)
{
	struct hx *h = hx_of(l);

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nlbs; i++) {
		if (strcmp(h->lbs[i].spec.name, name) == 0) {
			free(h->lbs[i].mem);
			/* order kept: the configuration a next server would write
			 * matches the one it adopts (no needless reload) */
			memmove(&h->lbs[i], &h->lbs[i + 1], (h->nlbs - i - 1) * sizeof(*h->lbs));
			h->nlbs--;
			h->cfg_version++;
			log_info("lb %s: removed", name);
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int
hx_list(struct lb *l, char (**names)[64], size_t *n, struct herr *err)
{
	struct hx *h = hx_of(l);

	pthread_mutex_lock(&h->lock);
	*names = xcalloc(h->nlbs + 1, sizeof(**names));
	for (size_t i = 0; i < h->nlbs; i++)
		snprintf((*names)[i], sizeof((*names)[i]), "%s", h->lbs[i].spec.name);
	*n = h->nlbs;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int
hx_add_backend(struct lb *l, const char *lb, const struct lb_member *m, struct herr *err)
{
	struct hx *h = hx_of(l);
	struct hx_member *x;
	struct hx_lb *b;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	if ((b = hx_find(h, lb)) == NULL) {
		rc = herr_set(err, HERR_NOTFOUND, "no load balancer '%s' at haproxy", lb);
		goto out;
	}
	if ((x = hx_member(b, m->name)) != NULL) {
		if (strcmp(x->m.addr, m->addr) == 0 && x->m.port == m->port &&
		    x->intent != LBI_DRAINING)
			goto out;
		/* moved, or taken back while draining: add it again, checks first */
		if (h->pid > 0 && b->err[0] == '\0')
			hx_del_runtime(h, lb, x->m.name);
		*x = b->mem[--b->nmem];
	}
	b->mem = xrealloc(b->mem, (b->nmem + 1) * sizeof(*b->mem));
	x = &b->mem[b->nmem++];
	memset(x, 0, sizeof(*x));
	x->m = *m;
	x->intent = LBI_JOINING;
	if (h->pid > 0 && b->err[0] == '\0') {
		char be[80];
		snprintf(be, sizeof(be), "be_%s", lb);
		gone_forget(h, be, m->name);
		if ((rc = hx_add_runtime(h, b, x, err)) < 0)
			b->nmem--;
	}
	if (rc == 0)
		log_info("lb %s: member %s (%s:%d) added; serving once its health check passes", lb,
			 m->name, m->addr, m->port);
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int
hx_drain_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	struct hx *h = hx_of(l);
	struct hx_member *x;
	struct hx_lb *b;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	if ((b = hx_find(h, lb)) == NULL || (x = hx_member(b, member)) == NULL ||
	    x->intent == LBI_DRAINING)
		goto out;
	if (h->pid > 0 && b->err[0] == '\0') {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "set server be_%s/%s state drain", lb, member);
		if ((rc = hx_cmd_ok(h, cmd, NULL, err)) < 0)
			goto out;
	}
	x->intent = LBI_DRAINING;
	x->drain_since_ms = mono_ms();
	log_info("lb %s: draining member %s", lb, member);
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int
hx_remove_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	struct hx *h = hx_of(l);
	struct hx_member *x;
	struct hx_lb *b;

	pthread_mutex_lock(&h->lock);
	if ((b = hx_find(h, lb)) != NULL && (x = hx_member(b, member)) != NULL) {
		if (h->pid > 0 && b->err[0] == '\0')
			hx_del_runtime(h, lb, member);
		*x = b->mem[--b->nmem];
		log_info("lb %s: member %s removed", lb, member);
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* Reloads when the configuration changed, and waits for the result; a
 * process that died is the supervisor's to restart (no wait here). */
static int
hx_apply(struct lb *l, struct herr *err)
{
	struct hx *h = hx_of(l);
	int64_t end = mono_ms() + HX_APPLY_WAIT_MS;
	uint64_t v;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	h->applied = true;
	v = h->cfg_version;
	if (h->tried_version < v) {
		pthread_cond_broadcast(&h->cond);
		while (h->tried_version < v && !h->stopping && mono_ms() < end) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		}
	}
	if (h->nlbs > 0 && (h->pid == 0 || h->run_version != v))
		rc = herr_set(err, HERR_UNAVAIL, "haproxy is not serving this configuration%s%s",
			      h->last_err[0] ? ": " : "", h->last_err);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int
hx_list_backends(struct lb *l, const char *lb, struct lb_backend **out, size_t *n,
		 struct herr *err)
{
	struct hx *h = hx_of(l);
	struct lb_backend *st = NULL, *res;
	struct hx_lb *b;
	size_t nst = 0;
	bool asked = true;
	int rc = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&h->lock);
	if ((b = hx_find(h, lb)) == NULL) {
		rc = herr_set(err, HERR_NOTFOUND, "no load balancer '%s' at haproxy", lb);
		goto out;
	}
	if (b->err[0] && h->run_version == h->cfg_version) {
		rc = herr_set(err, HERR_UNAVAIL, "%s", b->err);
		goto out;
	}
	if (h->pid > 0) {
		struct buf resp;
		struct herr e2 = HERR_INIT;
		char be[80];
		buf_init(&resp, HX_RESP_MAX);
		snprintf(be, sizeof(be), "be_%s", lb);
		if (hx_cmd(h, "show stat", &resp, &e2) == 0) {
			st = xcalloc(b->nmem + 64, sizeof(*st));
			nst = haproxy_parse_stat(resp.p, be, st, b->nmem + 64);
		} else {
			asked = false;
		}
		buf_release(&resp);
	}
	res = xcalloc(b->nmem + 1, sizeof(*res));
	for (size_t i = 0; i < b->nmem; i++) {
		struct lb_backend *r = &res[i];
		r->m = b->mem[i].m;
		r->intent = b->mem[i].intent;
		r->drain_since_ms = b->mem[i].drain_since_ms;
		r->state = LBB_DOWN;
		snprintf(r->status, sizeof(r->status), "%s",
			 h->pid == 0 ? "not running" : asked ? "absent" : "unknown");
		for (size_t k = 0; k < nst; k++) {
			if (strcmp(st[k].m.name, r->m.name) == 0) {
				r->state = st[k].state;
				r->scur = st[k].scur;
				memcpy(r->status, st[k].status, sizeof(r->status));
				memcpy(r->check_status, st[k].check_status, sizeof(r->check_status));
			}
		}
	}
	*out = res;
	*n = b->nmem;
out:
	pthread_mutex_unlock(&h->lock);
	free(st);
	return rc;
}

static int
hx_health(struct lb *l, struct lb_health *out, struct herr *err)
{
	struct hx *h = hx_of(l);

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&h->lock);
	out->pid = h->pid;
	out->ok = h->pid > 0 && h->run_version == h->cfg_version;
	out->restarts = h->restarts;
	out->up_since_ms = h->pid > 0 ? h->started_wall_ms : 0;
	if (h->nlbs == 0 && h->pid == 0)
		snprintf(out->msg, sizeof(out->msg), "no load balancers: not running");
	else
		snprintf(out->msg, sizeof(out->msg), "%s", h->last_err);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int
hx_teardown(struct lb *l, struct herr *err)
{
	struct hx h;

	memset(&h, 0, sizeof(h));
	if (hx_paths(l, &h, err) < 0)
		return 0;   /* nothing could have been started */
	hx_stop_all_of_cfg(h.cfg);
	unlink(h.pidf);
	unlink(h.sock);
	remove_sockets(h.dir, NULL);
	unlink(h.tmp);
	return 0;
}

const struct lb_ops lb_haproxy_ops = {
	.name = "haproxy",
	.provider = "local",
	.shared = true,
	.open = hx_open,
	.close = hx_close,
	.ensure = hx_ensure,
	.destroy = hx_destroy,
	.list = hx_list,
	.add_backend = hx_add_backend,
	.drain_backend = hx_drain_backend,
	.remove_backend = hx_remove_backend,
	.apply = hx_apply,
	.list_backends = hx_list_backends,
	.health = hx_health,
	.teardown = hx_teardown,
};
