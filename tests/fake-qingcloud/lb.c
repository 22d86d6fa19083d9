/*
 * lb.c - real load balancers and router port forwarding (--instances netns):
 * one haproxy process per applied load balancer or router, and the addresses
 * it listens on. world.c decides what a load balancer or router forwards (a
 * "spec", plain JSON) when UpdateLoadBalancers / UpdateRouters finish; this
 * file renders the spec as an haproxy configuration (lb_haproxy_config, pure),
 * runs haproxy by fork/exec with an argv array, reads the servers' states
 * from haproxy's stats socket and adds or removes the listening addresses.
 *
 * Where the fake listens:
 *   - a private load balancer: its private_ip, a /32 on the VxNet's bridge
 *     (the bridge is on the host, the instances are its ports: both reach it);
 *   - an EIP (a public load balancer's, a router's): a /32 on the fake's own
 *     bridge "fq<prefix>e", a bridge with no ports that only carries EIPs, so
 *     clients on this machine reach them and one `ip link del` removes them.
 *     (A dummy link would be the obvious choice, but the dummy module is not
 *     always loaded; a bridge always is, the fake already uses bridges.)
 *
 * An Update* reloads haproxy the way a load balancer applies a change without
 * cutting its clients: the new process takes over the listening addresses
 * (haproxy -sf OLD: SO_REUSEPORT, then OLD stops listening) and the old one
 * finishes the connections it holds, then exits. So a backend disabled by
 * ModifyLoadBalancerBackendAttributes gets no new connections after the next
 * UpdateLoadBalancers while the ones it already has go on. The old processes
 * are remembered here ("retired", with the pid that replaced them) so they
 * are reaped, and stopped with their successor.
 *
 * Files: STATE_DIR/haproxy/<id>.cfg, <id>.sock (stats, admin level), <id>.log.
 * The config holds only ids the fake generated, addresses it checked and
 * health-check URLs world.c validated: no request value reaches it raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "fqc.h"

#define LB_STATS_MAX_BYTES (256 * 1024) /* a "show stat" answer larger than this is cut */
#define LB_MAX_RETIRED 256 /* old haproxies still finishing their connections */

/* Old haproxies (replaced by a reload) finishing their connections: each
 * with the pid of the process that replaced it (the LB's current one). */
static struct {
	pthread_mutex_t lock;
	struct {
		int pid, successor;
	} r[LB_MAX_RETIRED];
	size_t n;
} retired = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Runs ARGV, quiet; 0 when it exits 0. */
static int
run_quiet(const char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

void
lb_eip_dev_name(const struct fqc_config *cfg, char *out, size_t len)
{
	snprintf(out, len, "fq%se", cfg->name_prefix);
}

int
lb_eip_dev_ensure(const struct fqc_config *cfg)
{
	char dev[32];
	const char *show[] = { "ip", "link", "show", dev, NULL };
	const char *add[] = { "ip", "link", "add", dev, "type", "bridge", NULL };
	const char *up[] = { "ip", "link", "set", dev, "up", NULL };

	lb_eip_dev_name(cfg, dev, sizeof(dev));
	if (run_quiet(show) != 0 && run_quiet(add) != 0) {
		fprintf(stderr, "fake-qingcloud: cannot create EIP bridge '%s'\n", dev);
		return -1;
	}
	return run_quiet(up);
}

void
lb_eip_dev_remove(const struct fqc_config *cfg)
{
	char dev[32];
	const char *show[] = { "ip", "link", "show", dev, NULL };
	const char *del[] = { "ip", "link", "del", dev, NULL };

	lb_eip_dev_name(cfg, dev, sizeof(dev));
	if (run_quiet(show) == 0)
		run_quiet(del);
}

int
lb_addr_add(const char *dev, const char *ip)
{
	char cidr[64];
	const char *add[] = { "ip", "addr", "replace", cidr, "dev", dev, NULL };

	snprintf(cidr, sizeof(cidr), "%s/32", ip);
	if (run_quiet(add) != 0) {
		fprintf(stderr, "fake-qingcloud: cannot add address '%s' to '%s'\n", ip, dev);
		return -1;
	}
	return 0;
}

int
lb_addr_remove(const char *dev, const char *ip)
{
	char cidr[64];
	const char *del[] = { "ip", "addr", "del", cidr, "dev", dev, NULL };

	snprintf(cidr, sizeof(cidr), "%s/32", ip);
	return run_quiet(del);
}

static void
lb_path(const struct fqc_config *cfg, const char *id, const char *ext, char *out, size_t len)
{
	snprintf(out, len, "%s/haproxy/%s.%s", cfg->state_dir, id, ext);
}

/* One listener (or port forward): a frontend and its backend of the same name. */
static void
render_frontend(FILE *f, const json_t *fe)
{
	const char *name = json_string_value(json_object_get(fe, "name"));
	const char *mode = json_string_value(json_object_get(fe, "mode"));
	const char *check = json_string_value(json_object_get(fe, "check"));
	const char *path = json_string_value(json_object_get(fe, "check_path"));
	const char *host = json_string_value(json_object_get(fe, "check_host"));
	bool checked = check != NULL && strcmp(check, "none") != 0;
	json_t *v;
	size_t i;

	fprintf(f, "\nfrontend %s\n\tmode %s\n", name, mode);
	json_array_foreach(json_object_get(fe, "binds"), i, v)
		fprintf(f, "\tbind %s\n", json_string_value(v));
	fprintf(f, "\tdefault_backend %s\n", name);
	fprintf(f, "\nbackend %s\n\tmode %s\n\tbalance %s\n", name, mode,
		json_string_value(json_object_get(fe, "balance")));
	if (checked) {
		fprintf(f, "\ttimeout check %llds\n",
			(long long)json_integer_value(json_object_get(fe, "timeout_s")));
		if (strcmp(check, "http") == 0) {
			fprintf(f, "\toption httpchk\n");
			if (host != NULL && host[0] != '\0')
				fprintf(f,
					"\thttp-check send meth GET uri %s ver HTTP/1.1 hdr Host %s\n",
					path, host);
			else
				fprintf(f, "\thttp-check send meth GET uri %s\n", path);
		}
	}
	json_array_foreach(json_object_get(fe, "servers"), i, v) {
		fprintf(f, "\tserver %s %s:%lld weight %lld",
			json_string_value(json_object_get(v, "name")),
			json_string_value(json_object_get(v, "addr")),
			(long long)json_integer_value(json_object_get(v, "port")),
			(long long)json_integer_value(json_object_get(v, "weight")));
		if (checked)
			fprintf(f, " check inter %llds fall %lld rise %lld",
				(long long)json_integer_value(json_object_get(fe, "inter_s")),
				(long long)json_integer_value(json_object_get(fe, "fall")),
				(long long)json_integer_value(json_object_get(fe, "rise")));
		if (json_is_true(json_object_get(v, "disabled")))
			fprintf(f, " disabled");
		fprintf(f, "\n");
	}
}

char *
lb_haproxy_config(const json_t *spec, const char *stats_sock)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *fe;
	size_t i;

	if (f == NULL)
		return NULL;
	fprintf(f,
		"# written by fake-qingcloud: rewritten on every Update*, do not edit\n"
		"global\n\tstats socket %s mode 600 level admin\n\tmaxconn 1000\n"
		"\ndefaults\n\ttimeout connect 5s\n\ttimeout client 60s\n\ttimeout server 60s\n",
		stats_sock);
	json_array_foreach(json_object_get(spec, "frontends"), i, fe)
		if (json_array_size(json_object_get(fe, "binds")) > 0)
			render_frontend(f, fe);
	fclose(f);
	return buf;
}

/* True when haproxy's stats socket at PATH answers a connect. */
static int
stats_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Ends PID (SIGTERM, SIGKILL after 2 s) and reaps it. */
static void
stop_one(int pid)
{
	int i;

	if (kill(pid, SIGTERM) != 0) {
		waitpid(pid, NULL, WNOHANG);
		return;
	}
	/* haproxy exits at once on SIGTERM; SIGKILL after 2 s */
	for (i = 0; i < 200; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Forgets retired processes that have exited (reaped). Lock held. */
static void
retired_reap(void)
{
	size_t i = 0;

	while (i < retired.n) {
		if (waitpid(retired.r[i].pid, NULL, WNOHANG) != 0)
			retired.r[i] = retired.r[--retired.n];
		else
			i++;
	}
}

/* OLD was replaced by NEW: OLD and whatever OLD had replaced now finish
 * their connections under NEW's name. A full table stops OLD at once. */
static void
retire(int old, int new)
{
	pthread_mutex_lock(&retired.lock);
	retired_reap();
	for (size_t i = 0; i < retired.n; i++)
		if (retired.r[i].successor == old)
			retired.r[i].successor = new;
	if (retired.n < LB_MAX_RETIRED) {
		retired.r[retired.n].pid = old;
		retired.r[retired.n].successor = new;
		retired.n++;
		old = 0;
	}
	pthread_mutex_unlock(&retired.lock);
	if (old > 0)
		stop_one(old);
}

int
lb_haproxy_stop(int pid)
{
	int gone[LB_MAX_RETIRED];
	size_t ng = 0, i = 0;

	if (pid <= 0)
		return 0;
	/* the old processes it replaced go with it */
	pthread_mutex_lock(&retired.lock);
	while (i < retired.n) {
		if (retired.r[i].successor == pid) {
			gone[ng++] = retired.r[i].pid;
			retired.r[i] = retired.r[--retired.n];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&retired.lock);
	for (i = 0; i < ng; i++)
		stop_one(gone[i]);
	stop_one(pid);
	return 0;
}

int
lb_haproxy_apply(const struct fqc_config *cfg, const char *id, const json_t *spec, int *pid)
{
	char dir[1024], cfgp[1100], tmp[1110], sock[1100], logp[1100], oldpid[16];
	char *text;
	FILE *f;
	pid_t child;
	int i, fd, old;

	snprintf(dir, sizeof(dir), "%s/haproxy", cfg->state_dir);
	mkdir(dir, 0700);
	lb_path(cfg, id, "cfg", cfgp, sizeof(cfgp));
	lb_path(cfg, id, "sock", sock, sizeof(sock));
	lb_path(cfg, id, "log", logp, sizeof(logp));
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "fake-qingcloud: stats socket path '%s' is too long\n", sock);
		return -1;
	}
	text = lb_haproxy_config(spec, sock);
	if (text == NULL)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfgp);
	f = fopen(tmp, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0 || rename(tmp, cfgp) != 0) {
		fprintf(stderr, "fake-qingcloud: cannot write '%s': %s\n", cfgp, strerror(errno));
		free(text);
		return -1;
	}
	free(text);
	/* a reload: the old process (if any) finishes its connections */
	old = *pid;
	*pid = 0;
	snprintf(oldpid, sizeof(oldpid), "%d", old);
	unlink(sock);
	child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		const char *argv[] = { "haproxy", "-f", cfgp, "-db", old > 0 ? "-sf" : NULL, oldpid,
				       NULL };
		sigset_t none;

		/* main.c blocks SIGTERM in every thread: haproxy must not inherit that */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/*
		 * a fake killed with -9 takes its haproxies along: SIGTERM when the
		 * forking thread ends (the ticker or main thread: both live until
		 * world_shutdown, which stops them anyway)
		 */
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	/* ready when the stats socket answers: at most 5 s */
	for (i = 0; i < 500; i++) {
		int s = stats_connect(sock);

		if (s >= 0) {
			close(s);
			*pid = child;
			if (old > 0)
				retire(old, child);
			return 0;
		}
		if (waitpid(child, NULL, WNOHANG) == child)
			break;
		usleep(10 * 1000);
	}
	fprintf(stderr, "fake-qingcloud: haproxy for '%s' did not start (see %s)\n", id, logp);
	stop_one(child);
	if (old > 0)
		lb_haproxy_stop(old);
	return -1;
}

json_t *
lb_haproxy_server_states(const struct fqc_config *cfg, const char *id)
{
	char sock[1100], *buf, *line, *save;
	size_t len = 0;
	json_t *out = json_object();
	int fd;

	lb_path(cfg, id, "sock", sock, sizeof(sock));
	fd = stats_connect(sock);
	if (fd < 0)
		return out;
	buf = malloc(LB_STATS_MAX_BYTES + 1);
	if (buf == NULL)
		abort();
	if (write(fd, "show stat\n", 10) == 10) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* bounded in bytes and time: 1 s without data ends the read */
		while (len < LB_STATS_MAX_BYTES && poll(&p, 1, 1000) == 1) {
			ssize_t n = read(fd, buf + len, LB_STATS_MAX_BYTES - len);

			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	close(fd);
	buf[len] = '\0';
	/* CSV: pxname,svname,…; field 18 (index 17) is status: UP, DOWN, MAINT, no check, … */
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *field[20], *p = line;
		int n = 0;

		if (line[0] == '#')
			continue;
		while (n < 20 && p != NULL) {
			field[n++] = p;
			p = strchr(p, ',');
			if (p != NULL)
				*p++ = '\0';
		}
		if (n < 18 || strcmp(field[1], "FRONTEND") == 0 || strcmp(field[1], "BACKEND") == 0)
			continue;
		json_object_set_new(out, field[1], json_string(field[17]));
	}
	free(buf);
	return out;
}
