/* conns.c - the connection bench (issue 15): holds many open connections
 * to a herd server the way a fleet does, and measures what they cost it.
 * Linked with no herd code (built by the Makefile as build/conns-bench).
 *
 *   conns-bench --addr IP:PORT --token-file F [--idle N] [--park P
 *               --park-path PATH] [--requests M] [--pid PID] [--window S]
 *               [--spread] [--hold] [--park-wait S]
 *
 * N idle connections each send one authenticated GET /v1/hosts and keep the
 * connection (keep-alive pushes between calls); P more send GET PATH, a
 * long-poll the server parks. With N+P open, the bench measures: the
 * server's CPU over --window seconds of idling (/proc/PID/stat), a fresh
 * GET /healthz and a fresh authenticated GET /v1/hosts M times each (a new
 * connection per request: p50/p99), the server's RSS, and whether every
 * idle connection still answers a second GET. With --spread each client
 * socket is bound to its own source address in 127.0.0.0/8, as a fleet's
 * connections come from many addresses. With --hold it then prints "held",
 * waits for a line on stdin (the caller's event) and counts the parked
 * polls answered within --park-wait seconds. Output: key=value lines.
 * Exit 1 when a request was not answered, or a connection was refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 100000
#define RESP_MAX 65536    /* a response larger than this is drained, not kept */
#define IO_TIMEOUT_MS 15000

struct opts {
	struct sockaddr_in srv;
	char token[256];
	const char *park_path;
	long idle, park, requests, pid, window_s, park_wait_s;
	bool spread, hold;
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Source address for client number i: 127.x.y.z, never 127.0.0.1 (the
 * server's own clients) and never .0/.255. */
static void
source_of(long i, struct sockaddr_in *sa)
{
	unsigned long k = (unsigned long)i;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(1 + (k / 254) % 250) << 16 |
				    (uint32_t)(1 + (k / 254 / 250) % 250) << 8 |
				    (uint32_t)(1 + k % 254));
}

/* A connected blocking socket with IO_TIMEOUT_MS on reads and writes. */
static int
dial(const struct opts *o, long i)
{
	struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->spread && i >= 0) {
		struct sockaddr_in src;

		source_of(i, &src);
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (const struct sockaddr *)&o->srv, sizeof(o->srv)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_get(int fd, const struct opts *o, const char *path, bool auth)
{
	char req[1024];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: herd\r\n%s%s%s", path,
			 auth ? "Authorization: Bearer " : "", auth ? o->token : "",
			 auth ? "\r\n\r\n" : "\r\n");

	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	return send(fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Reads one response (headers, then Content-Length bytes or chunks until
 * the terminating 0 chunk); its status, or -1. */
static int
read_resp(int fd)
{
	static __thread char buf[RESP_MAX];
	size_t have = 0, body_at = 0;
	long clen = -1;
	int status = -1;
	bool chunked = false;

	for (;;) {
		ssize_t r;
		char *hend;

		if (have == sizeof(buf) - 1)
			return -1;
		r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if (body_at == 0 && (hend = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");

			body_at = (size_t)(hend - buf) + 4;
			if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
				return -1;
			if (cl && cl < hend)
				clen = strtol(cl + 17, NULL, 10);
			chunked = strcasestr(buf, "\r\ntransfer-encoding: chunked") != NULL;
		}
		if (body_at && clen >= 0 && have - body_at >= (size_t)clen)
			return status;
		if (body_at && chunked && strstr(buf + body_at, "\r\n0\r\n\r\n") != NULL)
			return status;
		if (body_at && clen < 0 && !chunked)
			return status;
	}
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* M fresh connections, one GET each; prints p50/p99 in ms. */
static int
fresh_gets(const struct opts *o, const char *name, const char *path, bool auth)
{
	int64_t *lat = calloc((size_t)o->requests, sizeof(*lat));
	long i, failed = 0;

	if (lat == NULL)
		return -1;
	for (i = 0; i < o->requests; i++) {
		int64_t t0 = now_us();
		int fd = dial(o, -1), st = -1;

		if (fd >= 0 && send_get(fd, o, path, auth) == 0)
			st = read_resp(fd);
		if (fd >= 0)
			close(fd);
		lat[i] = now_us() - t0;
		if (st != 200)
			failed++;
	}
	qsort(lat, (size_t)o->requests, sizeof(*lat), cmp64);
	printf("%s_p50_ms=%.2f\n%s_p99_ms=%.2f\n%s_failed=%ld\n", name,
	       (double)lat[(o->requests - 1) / 2] / 1000.0, name,
	       (double)lat[(o->requests * 99 - 1) / 100] / 1000.0, name, failed);
	free(lat);
	return failed ? -1 : 0;
}

/* utime + stime of PID, in clock ticks; -1 when unreadable. */
static long long
cpu_ticks(long pid)
{
	char path[64], line[2048], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return -1;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static long
status_kb(long pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static long
open_fds(long pid)
{
	char cmd[96];
	long n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls /proc/%ld/fd 2>/dev/null | wc -l", pid);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fscanf(p, "%ld", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

/* Polls the parked sockets until each answered or S seconds passed;
 * the count answered with 200. */
static long
await_parked(const int *fd, long n, long secs)
{
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	int64_t until = now_us() + (int64_t)secs * 1000000;
	long left = n, ok = 0;

	if (pf == NULL)
		return -1;
	for (long i = 0; i < n; i++) {
		pf[i].fd = fd[i];
		pf[i].events = POLLIN;
	}
	while (left > 0 && now_us() < until) {
		int r = poll(pf, (nfds_t)n, 200);

		for (long i = 0; r > 0 && i < n; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (read_resp(pf[i].fd) == 200)
				ok++;
			pf[i].fd = -1;
			left--;
		}
	}
	free(pf);
	return ok;
}

/* How many parked sockets already have something to read (an answer that
 * came before any event). */
static long
answered_early(const int *fd, long n)
{
	long k = 0;

	for (long i = 0; i < n; i++) {
		struct pollfd p = { .fd = fd[i], .events = POLLIN };

		if (poll(&p, 1, 0) > 0)
			k++;
	}
	return k;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	const char *tf = NULL, *addr = NULL;

	memset(o, 0, sizeof(*o));
	o->requests = 200;
	o->window_s = 5;
	o->park_wait_s = 30;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *num = NULL;

		if (strcmp(a, "--spread") == 0) { o->spread = true; continue; }
		if (strcmp(a, "--hold") == 0) { o->hold = true; continue; }
		if (v == NULL)
			goto bad;
		i++;
		if (strcmp(a, "--addr") == 0) addr = v;
		else if (strcmp(a, "--token-file") == 0) tf = v;
		else if (strcmp(a, "--park-path") == 0) o->park_path = v;
		else if (strcmp(a, "--idle") == 0) num = &o->idle;
		else if (strcmp(a, "--park") == 0) num = &o->park;
		else if (strcmp(a, "--requests") == 0) num = &o->requests;
		else if (strcmp(a, "--pid") == 0) num = &o->pid;
		else if (strcmp(a, "--window") == 0) num = &o->window_s;
		else if (strcmp(a, "--park-wait") == 0) num = &o->park_wait_s;
		else goto bad;
		if (num) {
			char *end;

			*num = strtol(v, &end, 10);
			if (*end || *num < 0 || *num > CONNS_MAX) {
				fprintf(stderr, "conns-bench: %s: want 0 to %d\n", a, CONNS_MAX);
				return -1;
			}
		}
	}
	if (addr == NULL || tf == NULL || o->requests < 1 || (o->park && !o->park_path))
		goto bad;
	{
		char ip[64];
		const char *colon = strrchr(addr, ':');
		FILE *f;

		if (!colon || (size_t)(colon - addr) >= sizeof(ip))
			goto bad;
		memcpy(ip, addr, (size_t)(colon - addr));
		ip[colon - addr] = '\0';
		o->srv.sin_family = AF_INET;
		o->srv.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, ip, &o->srv.sin_addr) != 1)
			goto bad;
		if ((f = fopen(tf, "r")) == NULL || !fgets(o->token, sizeof(o->token), f)) {
			fprintf(stderr, "conns-bench: cannot read %s\n", tf);
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
		o->token[strcspn(o->token, "\r\n")] = '\0';
	}
	return 0;
bad:
	fprintf(stderr, "usage: conns-bench --addr IP:PORT --token-file F [--idle N] [--park P "
			"--park-path PATH]\n                   [--requests M] [--pid PID] "
			"[--window S] [--spread] [--hold] [--park-wait S]\n");
	return -1;
}

int
main(int argc, char **argv)
{
	struct opts o;
	int *fd;
	long i, opened = 0, parked = 0, again = 0, rc = 0;
	int64_t t0;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = calloc((size_t)(o.idle + o.park + 1), sizeof(*fd));
	if (fd == NULL)
		return 2;
	t0 = now_us();
	for (i = 0; i < o.idle; i++) {
		fd[i] = dial(&o, i);
		if (fd[i] < 0 || send_get(fd[i], &o, "/v1/hosts", true) < 0 ||
		    read_resp(fd[i]) != 200) {
			printf("idle_failed_at=%ld\nerrno=%s\n", i, strerror(errno));
			rc = 1;
			break;
		}
		opened++;
	}
	printf("idle_open=%ld\nidle_open_s=%.2f\n", opened, (double)(now_us() - t0) / 1e6);
	for (i = 0; rc == 0 && i < o.park; i++) {
		int *p = &fd[o.idle + i];

		*p = dial(&o, o.idle + i);
		if (*p < 0 || send_get(*p, &o, o.park_path, true) < 0) {
			printf("park_failed_at=%ld\n", i);
			rc = 1;
			break;
		}
		parked++;
	}
	printf("parked=%ld\n", parked);
	if (o.pid) {
		long long c0 = cpu_ticks(o.pid), c1;
		int64_t w0 = now_us();

		sleep((unsigned)o.window_s);
		c1 = cpu_ticks(o.pid);
		printf("server_idle_cpu_pct=%.1f\n",
		       100.0 * (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) /
			       ((double)(now_us() - w0) / 1e6));
	}
	if (fresh_gets(&o, "healthz", "/healthz", false) < 0 ||
	    fresh_gets(&o, "hosts", "/v1/hosts", true) < 0)
		rc = 1;
	if (o.pid) {
		printf("server_rss_kb=%ld\nserver_threads=%ld\nserver_fds=%ld\n",
		       status_kb(o.pid, "VmRSS"), status_kb(o.pid, "Threads"), open_fds(o.pid));
	}
	/* every idle connection is still served */
	for (i = 0; i < opened; i++)
		if (send_get(fd[i], &o, "/v1/hosts", true) == 0 && read_resp(fd[i]) == 200)
			again++;
	printf("idle_answered_again=%ld\n", again);
	if (again != opened)
		rc = 1;
	printf("parked_answered_early=%ld\n", answered_early(fd + o.idle, parked));
	if (o.hold) {
		char line[16];

		printf("held\n");
		if (fgets(line, sizeof(line), stdin) == NULL)
			clearerr(stdin);
		printf("parked_answered=%ld\n", await_parked(fd + o.idle, parked, o.park_wait_s));
	}
	for (i = 0; i < o.idle + o.park; i++)
		if (fd[i] > 0)
			close(fd[i]);
	free(fd);
	return (int)rc;
}
