/* test-prov-local.c - the local provider for real: a bridge, hosts made of
 * namespaces whose "agent" is a shell script reporting back over TCP to the
 * gateway, restarts, half-made hosts, forged pid files, and a check that
 * nothing is left. Needs root; every test skips with a reason otherwise.
 * Addresses: 198.19.<random>.0/24; names carry a random instance id.
 * Also the contract's pure parts (no root): crash recovery's adopt-or-fail
 * decision and the server URL check. */
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <cmocka.h>

#include "herr.h"
#include "server/prov/prov.h"
#include "util.h"
#include "xalloc.h"

enum { HA, HB, HC, HE, NHOSTS }; /* A: in-process, B: "killed server", C: half-made, E: bad */

static struct {
	bool root;
	char dir[256];           /* /var/tmp/herd-test-XXXXXX (not /tmp: hosts get their own) */
	char data[512];          /* server data dir */
	char agent[512];         /* stand-in agent script */
	char instance[16];
	char net_id[9], bridge[IFNAMSIZ], cidr[32], gateway[32];
	char ids[NHOSTS][9];
	char names[NHOSTS][16];
	char ips[NHOSTS][32];
	char user_data[NHOSTS][160];
	char state_dirs[NHOSTS][PATH_MAX + 32];
	struct prov_net_spec net;
	struct host_spec spec[NHOSTS];
	struct prov_instance inst[NHOSTS];
	struct prov p;
	int listen_fd;
	pid_t decoy;             /* a process of ours a forged pid file names */
	char dummy[IFNAMSIZ - 1]; /* test_net_overlap's veth, someone else's link (+ "p": its peer) */
	char ovl_ids[2][9];      /* test_net_overlap's networks: their bridges go in scrub too */
} T = { .listen_fd = -1 };

#define NEED_ROOT()                                                                   \
	do {                                                                          \
		if (!T.root) {                                                        \
			printf("# skip: needs root (network namespaces, bridges)\n"); \
			skip();                                                       \
		}                                                                     \
	} while (0)

/* ---- helpers ----------------------------------------------------------- */

static int
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Output of a shell command (first 4 KiB), for checks with `ip`. */
static char *
capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *
capture(const char *fmt, ...)
{
	char cmd[1024], *out = xcalloc(1, 4096);
	size_t n = 0, r;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if ((f = popen(cmd, "r")) == NULL)
		return out;
	while (n < 4095 && (r = fread(out + n, 1, 4095 - n, f)) > 0)
		n += r;
	pclose(f);
	return out;
}

static bool
path_exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool
path_exists(const char *fmt, ...)
{
	char path[PATH_MAX];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &st) == 0;
}

static bool
link_exists(const char *name)
{
	return path_exists("/sys/class/net/%s", name);
}

static bool
netns_exists(int h)
{
	return path_exists("/run/netns/herd-%s-%s", T.instance, T.ids[h]);
}

/* True if pid is alive and in the netns of host h. */
static bool
pid_in_host(pid_t pid, int h)
{
	char a[128], b[64];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "/run/netns/herd-%s-%s", T.instance, T.ids[h]);
	snprintf(b, sizeof(b), "/proc/%d/ns/net", (int)pid);
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

static pid_t
read_pid_file(int h)
{
	char path[PATH_MAX + 64], *text;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/pid", T.state_dirs[h]);
	if ((text = file_read(path, 64, NULL)) == NULL)
		return 0;
	pid = (pid_t)atoi(text);
	free(text);
	return pid;
}

static void
write_pid_file(int h, pid_t pid)
{
	char path[PATH_MAX + 64], text[32];

	snprintf(path, sizeof(path), "%s/pid", T.state_dirs[h]);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600), 0);
}

/* Pids of processes whose command line holds `needle` (our agents rename
 * themselves herd-test-agent-<instance>). */
static int
procs_matching(const char *needle, pid_t *pids, int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc");

	while (d && (de = readdir(d)) != NULL) {
		char path[300], buf[512];
		ssize_t r;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[r] = '\0';
		if (strstr(buf, needle) && n < max)
			pids[n++] = (pid_t)atoi(de->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static int
agents_alive(void)
{
	char needle[64];
	pid_t pids[64];

	snprintf(needle, sizeof(needle), "herd-test-agent-%s", T.instance);
	return procs_matching(needle, pids, 64);
}

static bool
addr_in_use(const char *prefix)
{
	struct ifaddrs *ifa, *i;
	char buf[64];
	bool used = false;

	if (getifaddrs(&ifa) < 0)
		return true;
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
		if (strncmp(buf, prefix, strlen(prefix)) == 0)
			used = true;
	}
	freeifaddrs(ifa);
	return used;
}

static bool
iface_has_addr(const char *ifname, const char *ip)
{
	struct ifaddrs *ifa, *i;
	char buf[64];
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
		if (strcmp(buf, ip) == 0)
			found = true;
	}
	freeifaddrs(ifa);
	return found;
}

static unsigned
link_flags(const char *name)
{
	char path[PATH_MAX], *text;
	unsigned v = 0;

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", name);
	if ((text = file_read(path, 64, NULL)) != NULL) {
		v = (unsigned)strtoul(text, NULL, 16);
		free(text);
	}
	return v;
}

static void
prov_init(struct prov *p, const char *instance)
{
	struct herr err = HERR_INIT;

	memset(p, 0, sizeof(*p));
	snprintf(p->account, sizeof(p->account), "test");
	snprintf(p->instance, sizeof(p->instance), "%s", instance);
	snprintf(p->data_dir, sizeof(p->data_dir), "%s", T.data);
	assert_int_equal(prov_open(p, prov_find("local"), &err), 0);
}

static int
launch(int h, struct prov_instance *out, struct herr *err)
{
	return prov_launch(&T.p, &T.spec[h], out, err);
}

/* Reads one report line from an agent's connection (bounded wait). */
static void
read_report(int fd, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t n = 0;
	ssize_t r;

	while (n < size - 1 && !memchr(buf, '\n', n)) {
		assert_true(poll(&pfd, 1, 5000) == 1);
		if ((r = read(fd, buf + n, size - 1 - n)) <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
	}
	buf[n] = '\0';
}

/* Accepts one agent report; returns the host index it came from. */
static int
accept_report(char *buf, size_t size)
{
	struct pollfd pfd = { .fd = T.listen_fd, .events = POLLIN };
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	char ip[64];
	int fd, h;

	assert_true(poll(&pfd, 1, 10000) == 1);
	fd = accept(T.listen_fd, (struct sockaddr *)&peer, &plen);
	assert_true(fd >= 0);
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	buf[0] = '\0';
	read_report(fd, buf, size);
	close(fd);
	for (h = 0; h < NHOSTS; h++)
		if (strcmp(ip, T.ips[h]) == 0)
			return h;
	print_error("report from unexpected address %s: %s\n", ip, buf);
	fail();
	return -1;
}

/* ---- fixture ----------------------------------------------------------- */

/* Removes whatever the driver may have left, without the driver, so a failed
 * test never leaves namespaces, links or processes behind. */
static void
scrub(void)
{
	char needle[64];
	pid_t pids[64];
	int n;

	for (int h = 0; h < NHOSTS; h++) {
		if (T.ids[h][0] == '\0')
			continue;
		if (netns_exists(h)) {
			char *out = capture("ip netns pids herd-%s-%s 2>/dev/null", T.instance,
					    T.ids[h]);
			for (char *tok = strtok(out, "\n"); tok; tok = strtok(NULL, "\n"))
				if (atoi(tok) > 1)
					kill((pid_t)atoi(tok), SIGKILL);
			free(out);
			run("ip netns del herd-%s-%s 2>/dev/null", T.instance, T.ids[h]);
		}
		run("ip link del herdv%s 2>/dev/null", T.ids[h]);
		run("ip link del herdw%s 2>/dev/null", T.ids[h]);
		run("rmdir /sys/fs/cgroup/herd-%s/%s /sys/fs/cgroup/cpu/herd-%s/%s "
		    "/sys/fs/cgroup/cpuacct/herd-%s/%s /sys/fs/cgroup/memory/herd-%s/%s 2>/dev/null",
		    T.instance, T.ids[h], T.instance, T.ids[h], T.instance, T.ids[h], T.instance,
		    T.ids[h]);
	}
	snprintf(needle, sizeof(needle), "herd-test-agent-%s", T.instance);
	n = procs_matching(needle, pids, 64);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (T.decoy > 0) {
		kill(T.decoy, SIGKILL);
		waitpid(T.decoy, NULL, 0);
		T.decoy = 0;
	}
	if (T.bridge[0] && link_exists(T.bridge))
		run("ip link del %s 2>/dev/null", T.bridge);
	if (T.dummy[0] && link_exists(T.dummy))
		run("ip link del %s 2>/dev/null", T.dummy);
	for (int i = 0; i < 2; i++)
		if (T.ovl_ids[i][0])
			run("ip link del herd%s 2>/dev/null", T.ovl_ids[i]);
	run("rmdir /sys/fs/cgroup/herd-%s /sys/fs/cgroup/cpu/herd-%s /sys/fs/cgroup/cpuacct/herd-%s "
	    "/sys/fs/cgroup/memory/herd-%s 2>/dev/null", T.instance, T.instance, T.instance,
	    T.instance);
}

static int
group_setup(void **state)
{
	static const char *const names[NHOSTS] = { "master-1", "node-1", "node-2", "node-9" };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	char prefix[32], script[2048];
	unsigned octet;
	FILE *f;

	T.root = geteuid() == 0;
	if (!T.root)
		return 0;
	snprintf(T.dir, sizeof(T.dir), "/var/tmp/herd-test-XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	snprintf(T.data, sizeof(T.data), "%s/data", T.dir);
	snprintf(T.agent, sizeof(T.agent), "%s/agent.sh", T.dir);
	if (mkdir_p(T.data, 0700) < 0)
		return -1;
	token_random(T.instance, sizeof(T.instance), "t", 3);
	token_random(T.net_id, sizeof(T.net_id), NULL, 4);
	snprintf(T.bridge, sizeof(T.bridge), "herd%s", T.net_id);
	do {
		unsigned char r;

		token_random(prefix, sizeof(prefix), NULL, 1);
		r = (unsigned char)strtoul(prefix, NULL, 16);
		octet = 1 + r % 254;
		snprintf(prefix, sizeof(prefix), "198.19.%u.", octet);
	} while (addr_in_use(prefix));
	snprintf(T.cidr, sizeof(T.cidr), "198.19.%u.0/24", octet);
	snprintf(T.gateway, sizeof(T.gateway), "198.19.%u.1", octet);
	T.net = (struct prov_net_spec){ .id = T.net_id, .name = "vpc-test", .cidr = T.cidr,
					.gateway = T.gateway, .prefix_len = 24 };
	for (int h = 0; h < NHOSTS; h++) {
		token_random(T.ids[h], sizeof(T.ids[h]), NULL, 4);
		snprintf(T.names[h], sizeof(T.names[h]), "%s", names[h]);
		snprintf(T.ips[h], sizeof(T.ips[h]), "198.19.%u.%d", octet, 10 + h);
		snprintf(T.user_data[h], sizeof(T.user_data[h]),
			 "{\"server\":\"http://%s:7171\",\"join_token\":\"jt_%s\"}", T.gateway,
			 T.ids[h]);
		snprintf(T.state_dirs[h], sizeof(T.state_dirs[h]), "%s/hosts/%s", T.data, T.ids[h]);
		T.spec[h] = (struct host_spec){
			.id = T.ids[h], .name = T.names[h], .cluster = "demo", .group = "node",
			.net = &T.net, .private_ip = T.ips[h], .user_data = T.user_data[h],
			.state_dir = T.state_dirs[h], .agent_bin = T.agent,
		};
	}
	T.spec[HB].mem_limit_bytes = 64 << 20;
	T.spec[HB].cpu_limit_pct = 50;
	prov_init(&T.p, T.instance);

	/* The reports go to a listener on the gateway: created here on the
	 * bridge's address, so make the network first. */
	{
		struct herr err = HERR_INIT;

		if (prov_net_create(&T.p, &T.net, &err) < 0) {
			fprintf(stderr, "net_create: %s\n", err.msg);
			scrub();
			return -1;
		}
	}
	T.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, T.gateway, &sa.sin_addr);
	if (T.listen_fd < 0 || bind(T.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(T.listen_fd, 16) < 0 ||
	    getsockname(T.listen_fd, (struct sockaddr *)&sa, &salen) < 0) {
		perror("listener");
		scrub();
		return -1;
	}
	/* The stand-in agent: counts what it sees, reports it to the gateway,
	 * leaves marks in its state dir and log, then idles under a name the
	 * test (and a person running pgrep) can find. */
	snprintf(script, sizeof(script),
		 "#!/bin/bash\n"
		 "# stand-in herd agent written by test-prov-local\n"
		 "l=$(ip -o link show eth0); s=${l#* state }; eth0=${s%%%% *}\n"
		 "n=0\n"
		 "for d in /proc/[0-9]*; do n=$((n + 1)); done\n"
		 "shopt -s nullglob dotglob\n"
		 "t=(/tmp/*)\n"
		 "read -r host </proc/sys/kernel/hostname\n"
		 "IFS= read -r json </run/herd/agent.json\n"
		 "mode=$(stat -c %%a /run/herd/agent.json)\n"
		 "echo marker >/var/lib/herd/marker\n"
		 "exec 3<>/dev/tcp/%s/%d\n"
		 "printf 'host=%%s pid=%%s procs=%%s tmp=%%s args=%%s path=%%s home=%%s leak=%%s "
		 "mode=%%s eth0=%%s json=%%s\\n' \"$host\" \"$$\" \"$n\" \"${#t[@]}\" \"$*\" "
		 "\"$PATH\" \"$HOME\" \"${HERD_TEST_LEAK:-none}\" \"$mode\" \"$eth0\" \"$json\" >&3\n"
		 "exec 3>&-\n"
		 "echo agent started\n"
		 "exec -a herd-test-agent-%s sleep 1000\n",
		 T.gateway, ntohs(sa.sin_port), T.instance);
	if ((f = fopen(T.agent, "w")) == NULL || fputs(script, f) < 0 || fclose(f) != 0 ||
	    chmod(T.agent, 0755) < 0) {
		scrub();
		return -1;
	}
	setenv("HERD_TEST_LEAK", "leaked", 1); /* must not reach the agent */
	printf("# instance %s, network %s (%s), dir %s\n", T.instance, T.bridge, T.cidr, T.dir);
	return 0;
}

static int
group_teardown(void **state)
{
	if (!T.root)
		return 0;
	if (T.listen_fd >= 0)
		close(T.listen_fd);
	scrub();
	prov_close(&T.p);
	run("rm -rf '%s'", T.dir);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_net_create(void **state)
{
	struct herr err = HERR_INIT;

	NEED_ROOT();
	/* group setup made it once; again must be fine */
	assert_int_equal(prov_net_create(&T.p, &T.net, &err), 0);
	assert_true(path_exists("/sys/class/net/%s/bridge", T.bridge));
	assert_true(link_flags(T.bridge) & IFF_UP);
	assert_true(iface_has_addr(T.bridge, T.gateway));
}

/* Launches host B in a child process that is killed -9 right after, as a
 * server would be: everything later must work from kernel and disk alone. */
static void
launch_in_doomed_child(int h)
{
	struct prov_instance out;
	int pipefd[2], status;
	pid_t child;

	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct herr err = HERR_INIT;
		struct prov p;

		close(pipefd[0]);
		prov_init(&p, T.instance);
		memset(&out, 0, sizeof(out));
		if (prov_launch(&p, &T.spec[h], &out, &err) < 0)
			fprintf(stderr, "child launch: %s\n", err.msg);
		if (write(pipefd[1], &out, sizeof(out)) != (ssize_t)sizeof(out))
			_exit(1);
		raise(SIGKILL);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &T.inst[h], sizeof(T.inst[h])), sizeof(T.inst[h]));
	close(pipefd[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void
check_host(int h)
{
	char name[128], path[PATH_MAX + 64], *out;
	struct stat st;
	pid_t pid = (pid_t)T.inst[h].pid;

	snprintf(name, sizeof(name), "herd-%s-%s", T.instance, T.ids[h]);
	assert_string_equal(T.inst[h].id, name);
	assert_string_equal(T.inst[h].host_id, T.ids[h]);
	assert_string_equal(T.inst[h].state, "running");
	assert_string_equal(T.inst[h].private_ip, T.ips[h]);
	assert_true(pid > 1);
	assert_int_equal(read_pid_file(h), pid);
	assert_true(pid_in_host(pid, h));

	/* visible to iproute2 */
	out = capture("ip netns list");
	assert_non_null(strstr(out, name));
	free(out);
	out = capture("ip -n %s -o -4 addr show dev eth0", name);
	snprintf(path, sizeof(path), "inet %s/24", T.ips[h]);
	assert_non_null(strstr(out, path));
	free(out);
	out = capture("ip -n %s -o link show dev lo", name);
	assert_non_null(strstr(out, "UP"));
	free(out);
	out = capture("ip -n %s route show default", name);
	snprintf(path, sizeof(path), "default via %s dev eth0", T.gateway);
	assert_non_null(strstr(out, path));
	free(out);

	/* machine side of the veth: on the bridge, up */
	snprintf(name, sizeof(name), "herdv%s", T.ids[h]);
	assert_true(link_exists(name));
	assert_true(link_flags(name) & IFF_UP);
	out = capture("readlink /sys/class/net/%s/master", name);
	assert_non_null(strstr(out, T.bridge));
	free(out);

	assert_int_equal(stat(T.state_dirs[h], &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void
test_launch(void **state)
{
	struct herr err = HERR_INIT;
	char buf[4096], want[512];
	bool seen[NHOSTS] = { false };
	int64_t t0;

	NEED_ROOT();
	t0 = mono_ms();
	if (launch(HA, &T.inst[HA], &err) < 0)
		fail_msg("launch: %s", err.msg);
	printf("# launch took %lld ms\n", (long long)(mono_ms() - t0));
	t0 = mono_ms();
	launch_in_doomed_child(HB);
	printf("# launch in a child killed -9 after it took %lld ms\n",
	       (long long)(mono_ms() - t0));
	fflush(stdout);
	check_host(HA);
	check_host(HB);

	/* Each agent reports from inside its host, through eth0 and the bridge
	 * to the gateway: network, hostname, PID namespace, fresh /proc and
	 * /tmp, clean environment, args and config. */
	for (int i = 0; i < 2; i++) {
		int h = accept_report(buf, sizeof(buf));

		assert_false(seen[h]);
		seen[h] = true;
		snprintf(want, sizeof(want), "host=%s pid=1 procs=1 tmp=0 ", T.names[h]);
		if (strstr(buf, want) == NULL)
			fail_msg("report '%s' lacks '%s'", buf, want);
		assert_non_null(strstr(buf, " args=agent --config /run/herd/agent.json "));
		assert_non_null(strstr(buf, " path=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
					    "/usr/bin:/sbin:/bin home=/root leak=none mode=600 "));
		/* the agent's first look at its network: up, not still coming up */
		if (strstr(buf, " eth0=UP ") == NULL)
			fail_msg("eth0 is not up when the agent starts: %s", buf);
		snprintf(want, sizeof(want), " json=%s\n", T.user_data[h]);
		assert_non_null(strstr(buf, want));
	}
	assert_true(seen[HA] && seen[HB]);

	/* state dir bind-mounted at /var/lib/herd; agent output in agent.log */
	for (int h = HA; h <= HB; h++) {
		char path[PATH_MAX + 64], *text = NULL;

		snprintf(path, sizeof(path), "%s/marker", T.state_dirs[h]);
		assert_true(path_exists("%s", path));
		snprintf(path, sizeof(path), "%s/agent.log", T.state_dirs[h]);
		for (int i = 0; i < 200; i++) {
			free(text);
			text = file_read(path, 4096, NULL);
			if (text && strstr(text, "agent started"))
				break;
			sleep_ms(10);
		}
		assert_non_null(text);
		assert_non_null(strstr(text, "agent started"));
		free(text);
	}
	/* the host's config lives in the host's own /run, not the machine's */
	{
		char *text = file_read("/run/herd/agent.json", 1 << 20, NULL);

		assert_true(text == NULL || strstr(text, T.user_data[HA]) == NULL);
		free(text);
	}

	/* limits: applied in cgroup v2 or v1 (the launch fails otherwise) */
	{
		struct statfs sfs;
		bool v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
		char path[256], *text;

		snprintf(path, sizeof(path), v2 ? "/sys/fs/cgroup/herd-%s/%s/memory.max" :
			 "/sys/fs/cgroup/memory/herd-%s/%s/memory.limit_in_bytes",
			 T.instance, T.ids[HB]);
		text = file_read(path, 64, NULL);
		assert_non_null(text);
		assert_int_equal(atoll(text), 64 << 20);
		free(text);
		snprintf(path, sizeof(path), v2 ? "/sys/fs/cgroup/herd-%s/%s/cpu.max" :
			 "/sys/fs/cgroup/cpu/herd-%s/%s/cpu.cfs_quota_us", T.instance, T.ids[HB]);
		text = file_read(path, 64, NULL);
		assert_non_null(text);
		assert_int_equal(atoll(text), 50000);
		free(text);
	}
}

static void
test_launch_is_idempotent(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_instance again;

	NEED_ROOT();
	assert_int_equal(launch(HA, &again, &err), 0);
	assert_int_equal(again.pid, T.inst[HA].pid);
	assert_string_equal(again.state, "running");
	assert_string_equal(again.private_ip, T.ips[HA]);
	assert_int_equal(agents_alive(), 2);
}

static void
test_list_after_restart(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_instance *v = NULL;
	struct prov fresh, other;
	size_t n = 0;
	int found = 0;

	NEED_ROOT();
	/* a "restarted server": nothing in memory */
	prov_init(&fresh, T.instance);
	assert_int_equal(prov_list(&fresh, &v, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		for (int h = HA; h <= HB; h++)
			if (strcmp(v[i].host_id, T.ids[h]) == 0) {
				assert_string_equal(v[i].state, "running");
				assert_int_equal(v[i].pid, T.inst[h].pid);
				assert_string_equal(v[i].private_ip, T.ips[h]);
				assert_string_equal(v[i].id, T.inst[h].id);
				found++;
			}
	assert_int_equal(n, 2);
	assert_int_equal(found, 2);
	free(v);
	prov_close(&fresh);

	/* another server on the same machine sees none of them */
	prov_init(&other, "zz0ther");
	assert_int_equal(prov_list(&other, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
	/* and may not terminate them */
	assert_int_equal(prov_terminate(&other, T.inst[HA].id, T.ids[HA], &err), HERR_INVALID);
	assert_true(pid_in_host((pid_t)T.inst[HA].pid, HA));
	prov_close(&other);
}

static void
test_bad_launch_leaves_nothing(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_instance out;
	struct host_spec spec = T.spec[HE];
	char missing[PATH_MAX + 16], *cmd;
	int rc;

	NEED_ROOT();
	/* invalid input */
	spec.id = "NOTHEX!!";
	assert_int_equal(prov_launch(&T.p, &spec, &out, &err), HERR_INVALID);
	spec = T.spec[HE];
	spec.state_dir = "/elsewhere";
	assert_int_equal(prov_launch(&T.p, &spec, &out, &err), HERR_INVALID);
	spec = T.spec[HE];
	spec.agent_bin = "/tmp/herd";
	assert_int_equal(prov_launch(&T.p, &spec, &out, &err), HERR_INVALID);
	assert_non_null(strstr(err.msg, "/tmp"));

	/* an agent that cannot be exec'd (executable mode, not a program): the
	 * error names the step, and the half-made host is removed */
	snprintf(missing, sizeof(missing), "%s/not-an-agent", T.dir);
	cmd = capture("printf 'not a program' > '%s' && chmod 755 '%s'", missing, missing);
	free(cmd);
	spec = T.spec[HE];
	spec.agent_bin = missing;
	rc = prov_launch(&T.p, &spec, &out, &err);
	assert_true(rc < 0);
	printf("# expected failure: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "exec agent"));
	assert_false(netns_exists(HE));
	{
		char veth[IFNAMSIZ];

		snprintf(veth, sizeof(veth), "herdv%s", T.ids[HE]);
		assert_false(link_exists(veth));
	}
	assert_int_equal(read_pid_file(HE), 0);
}

static void
test_half_made_host_is_remade(void **state)
{
	struct herr err = HERR_INIT;
	int status;

	NEED_ROOT();
	/* a netns without process, a stray veth, and a pid file naming one of
	 * our processes that is not in the host at all */
	assert_int_equal(run("ip netns add herd-%s-%s", T.instance, T.ids[HC]), 0);
	assert_int_equal(run("ip link add herdv%s type veth peer name herdw%s", T.ids[HC],
			     T.ids[HC]), 0);
	assert_int_equal(mkdir_p(T.state_dirs[HC], 0700), 0);
	T.decoy = fork();
	assert_true(T.decoy >= 0);
	if (T.decoy == 0) {
		execl("/bin/sleep", "herd-test-decoy", "1000", (char *)NULL);
		_exit(127);
	}
	write_pid_file(HC, T.decoy);

	assert_int_equal(launch(HC, &T.inst[HC], &err), 0);
	check_host(HC);
	assert_true(T.inst[HC].pid != T.decoy);
	assert_int_equal(kill(T.decoy, 0), 0);
	{
		char stray[IFNAMSIZ];

		snprintf(stray, sizeof(stray), "herdw%s", T.ids[HC]);
		assert_false(link_exists(stray)); /* went with its peer */
	}
	{
		char buf[4096];

		assert_int_equal(accept_report(buf, sizeof(buf)), HC);
	}
	assert_int_equal(prov_terminate(&T.p, T.inst[HC].id, T.ids[HC], &err), 0);
	assert_false(netns_exists(HC));
	/* the decoy was never touched */
	assert_int_equal(waitpid(T.decoy, &status, WNOHANG), 0);
	assert_int_equal(kill(T.decoy, 0), 0);
}

static void
test_forged_pid_file(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_instance *v = NULL;
	size_t n = 0;
	int pidfd, status;

	NEED_ROOT();
	assert_true(T.decoy > 0);
	/* B's pid file now names an unrelated process (pid reuse) */
	pidfd = pidfd_open((pid_t)T.inst[HB].pid, 0);
	assert_true(pidfd >= 0);
	write_pid_file(HB, T.decoy);
	assert_int_equal(prov_list(&T.p, &v, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].host_id, T.ids[HB]) == 0) {
			assert_string_equal(v[i].state, "stopped");
			assert_int_equal(v[i].pid, 0);
		}
	free(v);
	/* terminate kills B's real processes (found in its netns), not the decoy */
	assert_int_equal(prov_terminate(&T.p, T.inst[HB].id, T.ids[HB], &err), 0);
	assert_int_equal(kill(T.decoy, 0), 0);
	assert_int_equal(waitpid(T.decoy, &status, WNOHANG), 0);
	{
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		assert_int_equal(poll(&pfd, 1, 0), 1); /* B's PID 1 has exited */
	}
	close(pidfd);
	assert_false(netns_exists(HB));
	kill(T.decoy, SIGKILL);
	assert_int_equal(waitpid(T.decoy, &status, 0), T.decoy);
	T.decoy = 0;
}

static void
test_terminate(void **state)
{
	struct herr err = HERR_INIT;
	char veth[IFNAMSIZ], path[PATH_MAX + 64];
	int64_t t0;
	int pidfd;

	NEED_ROOT();
	pidfd = pidfd_open((pid_t)T.inst[HA].pid, 0);
	assert_true(pidfd >= 0);
	t0 = mono_ms();
	if (prov_terminate(&T.p, T.inst[HA].id, T.ids[HA], &err) < 0)
		fail_msg("terminate: %s", err.msg);
	printf("# terminate took %lld ms\n", (long long)(mono_ms() - t0));
	{
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		assert_int_equal(poll(&pfd, 1, 0), 1);
	}
	close(pidfd);
	assert_false(netns_exists(HA));
	snprintf(veth, sizeof(veth), "herdv%s", T.ids[HA]);
	assert_false(link_exists(veth));
	assert_int_equal(read_pid_file(HA), 0);
	snprintf(path, sizeof(path), "%s/agent.log", T.state_dirs[HA]);
	assert_true(path_exists("%s", path)); /* the log outlives the host */

	/* idempotent: gone, never made, by id only */
	assert_int_equal(prov_terminate(&T.p, T.inst[HA].id, T.ids[HA], &err), 0);
	assert_int_equal(prov_terminate(&T.p, NULL, T.ids[HE], &err), 0);
	assert_int_equal(prov_terminate(&T.p, "", "deadbeef", &err), 0);
	assert_int_equal(prov_terminate(&T.p, NULL, "../../etc", &err), HERR_INVALID);
}

/* The bridge gone under a launch (a reboot, `ip link del`): the launch makes
 * it again, up with the gateway address, and the agent reaches the server
 * through it. A launch looks the bridge up once and remakes it only when it
 * is missing, so this is the path that does. */
static void
test_launch_remakes_bridge(void **state)
{
	struct herr err = HERR_INIT;
	char buf[4096];

	NEED_ROOT();
	assert_int_equal(run("ip link del %s", T.bridge), 0);
	assert_false(link_exists(T.bridge));
	if (launch(HA, &T.inst[HA], &err) < 0)
		fail_msg("launch: %s", err.msg);
	assert_true(link_flags(T.bridge) & IFF_UP);
	assert_true(iface_has_addr(T.bridge, T.gateway));
	check_host(HA);
	assert_int_equal(accept_report(buf, sizeof(buf)), HA);
	assert_int_equal(prov_terminate(&T.p, T.inst[HA].id, T.ids[HA], &err), 0);
	assert_false(netns_exists(HA));
}

static void
test_net_delete(void **state)
{
	struct herr err = HERR_INIT;

	NEED_ROOT();
	assert_int_equal(prov_net_delete(&T.p, &T.net, &err), 0);
	assert_false(link_exists(T.bridge));
	assert_int_equal(prov_net_delete(&T.p, &T.net, &err), 0);
}

static void
test_nothing_left(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_instance *v = NULL;
	size_t n = 1;

	NEED_ROOT();
	assert_int_equal(prov_list(&T.p, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
	for (int h = 0; h < NHOSTS; h++) {
		char name[IFNAMSIZ];

		assert_false(netns_exists(h));
		snprintf(name, sizeof(name), "herdv%s", T.ids[h]);
		assert_false(link_exists(name));
		snprintf(name, sizeof(name), "herdw%s", T.ids[h]);
		assert_false(link_exists(name));
		assert_false(path_exists("/sys/fs/cgroup/herd-%s/%s", T.instance, T.ids[h]));
		assert_false(path_exists("/sys/fs/cgroup/cpu/herd-%s/%s", T.instance, T.ids[h]));
		assert_false(path_exists("/sys/fs/cgroup/cpuacct/herd-%s/%s", T.instance, T.ids[h]));
		assert_false(path_exists("/sys/fs/cgroup/memory/herd-%s/%s", T.instance, T.ids[h]));
	}
	assert_false(path_exists("/sys/fs/cgroup/memory/herd-%s", T.instance));
	assert_false(link_exists(T.bridge));
	assert_int_equal(agents_alive(), 0);
}

/* Crash recovery adopts a running or a pending (booting cloud VM) instance
 * of the host, and nothing else: not another host's, not a stopped one. */
static void
test_adopt_decision(void **state)
{
	struct prov_instance l[4];

	(void)state;
	memset(l, 0, sizeof(l));
	snprintf(l[0].host_id, sizeof(l[0].host_id), "aaaa0001");
	snprintf(l[0].state, sizeof(l[0].state), "running");
	snprintf(l[1].host_id, sizeof(l[1].host_id), "bbbb0002");
	snprintf(l[1].state, sizeof(l[1].state), "pending");
	snprintf(l[2].host_id, sizeof(l[2].host_id), "cccc0003");
	snprintf(l[2].state, sizeof(l[2].state), "stopped");
	snprintf(l[3].host_id, sizeof(l[3].host_id), "cccc0003");
	snprintf(l[3].state, sizeof(l[3].state), "pending");
	assert_int_equal(prov_instance_adopt(l, 4, "aaaa0001"), 0);
	assert_int_equal(prov_instance_adopt(l, 4, "bbbb0002"), 1);   /* pending: adopted */
	assert_int_equal(prov_instance_adopt(l, 4, "cccc0003"), 3);   /* not the stopped one */
	assert_int_equal(prov_instance_adopt(l, 3, "cccc0003"), -1);  /* only stopped: fail */
	assert_int_equal(prov_instance_adopt(l, 4, "dddd0004"), -1);  /* absent: fail */
	assert_int_equal(prov_instance_adopt(NULL, 0, "aaaa0001"), -1);
}

static void
test_server_url_check(void **state)
{
	static const char *const good[] = {
		"http://198.18.0.1:7171", "https://herd.example.com", "http://h:1/base/",
		"http://[fd00::1]:8080", "https://a-b.c:65535/x/y", NULL,
	};
	static const char *const bad[] = {
		"", "ftp://h", "http://", "http://:80", "http://h:0", "http://h:65536",
		"http://h:123456", "http://u@h", "http://h/a b", "http://h/?q", "http://h#f",
		"http://h/\"x", "http://[zz]", "HTTP//h", "http://h:80x", NULL,
	};
	char longer[300];
	struct herr err = HERR_INIT;

	(void)state;
	for (int i = 0; good[i]; i++) {
		herr_clear(&err);
		if (prov_server_url_check(good[i], &err) != 0)
			fail_msg("'%s' refused: %s", good[i], err.msg);
	}
	for (int i = 0; bad[i]; i++) {
		herr_clear(&err);
		if (prov_server_url_check(bad[i], &err) != HERR_INVALID)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
	assert_int_equal(prov_server_url_check(NULL, &err), HERR_INVALID);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longer, "http://", 7);
	assert_int_equal(prov_server_url_check(longer, &err), HERR_INVALID);
}

/* A network whose addresses the machine already routes or holds is refused
 * before its bridge exists (its more specific route would take their
 * traffic): here someone else's link with 198.19.<o>.1/30. */
static void
test_net_overlap(void **state)
{
	struct herr err = HERR_INIT;
	struct prov_net_spec net;
	char *id = T.ovl_ids[0], *other_id = T.ovl_ids[1];
	char bridge[IFNAMSIZ], cidr[32], gw[32], wide[32], prefix[32], next[32];
	unsigned octet, ours = (unsigned)atoi(T.gateway + 7);   /* 198.19.<ours>.1 */

	NEED_ROOT();
	token_random(T.dummy, sizeof(T.dummy), "herdt", 4);   /* herdt + 8 hex: 13 chars */
	token_random(id, sizeof(T.ovl_ids[0]), NULL, 4);
	token_random(other_id, sizeof(T.ovl_ids[1]), NULL, 4);
	do {
		unsigned char r;

		token_random(prefix, sizeof(prefix), NULL, 1);
		r = (unsigned char)strtoul(prefix, NULL, 16);
		octet = 2 + (r % 126) * 2;    /* even: its /23 is octet and octet + 1 */
		snprintf(prefix, sizeof(prefix), "198.19.%u.", octet);
		snprintf(next, sizeof(next), "198.19.%u.", octet + 1);
		/* nothing but the veth may be what the /23 meets */
	} while (addr_in_use(prefix) || addr_in_use(next) || octet == ours || octet + 1 == ours);
	/* a veth pair (this kernel may have no dummy driver); its peer goes with it */
	if (run("ip link add %s type veth peer name %sp && ip addr add 198.19.%u.1/30 dev %s && "
		"ip link set %s up", T.dummy, T.dummy, octet, T.dummy, T.dummy) != 0)
		fail_msg("cannot make link %s", T.dummy);

	/* the same /24: the dummy's route and address are inside it */
	snprintf(cidr, sizeof(cidr), "198.19.%u.0/24", octet);
	snprintf(gw, sizeof(gw), "198.19.%u.1", octet);
	net = (struct prov_net_spec){ .id = id, .name = "vpc-overlap", .cidr = cidr,
				      .gateway = gw, .prefix_len = 24 };
	assert_int_equal(prov_net_create(&T.p, &net, &err), HERR_CONFLICT);
	printf("# expected refusal: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "vpc-overlap"));
	assert_non_null(strstr(err.msg, T.dummy));
	snprintf(prefix, sizeof(prefix), "198.19.%u.", octet);
	assert_non_null(strstr(err.msg, prefix));
	snprintf(bridge, sizeof(bridge), "herd%s", id);
	assert_false(link_exists(bridge));

	/* a wider network that contains it: refused too */
	snprintf(wide, sizeof(wide), "198.19.%u.0/23", octet);
	snprintf(gw, sizeof(gw), "198.19.%u.1", octet + 1);
	net = (struct prov_net_spec){ .id = other_id, .name = "vpc-wide", .cidr = wide,
				      .gateway = gw, .prefix_len = 23 };
	err = (struct herr)HERR_INIT;
	assert_int_equal(prov_net_create(&T.p, &net, &err), HERR_CONFLICT);
	assert_non_null(strstr(err.msg, T.dummy));
	snprintf(bridge, sizeof(bridge), "herd%s", other_id);
	assert_false(link_exists(bridge));

	/* the link gone, the same /24 is made, and made again (its own bridge
	 * and route are not an overlap) */
	run("ip link del %s", T.dummy);
	snprintf(gw, sizeof(gw), "198.19.%u.1", octet);
	net = (struct prov_net_spec){ .id = id, .name = "vpc-overlap", .cidr = cidr,
				      .gateway = gw, .prefix_len = 24 };
	err = (struct herr)HERR_INIT;
	if (prov_net_create(&T.p, &net, &err) < 0)
		fail_msg("net_create after the dummy left: %s", err.msg);
	if (prov_net_create(&T.p, &net, &err) < 0)
		fail_msg("net_create again: %s", err.msg);
	snprintf(bridge, sizeof(bridge), "herd%s", id);
	assert_true(link_exists(bridge));
	if (prov_net_delete(&T.p, &net, &err) < 0)
		fail_msg("net_delete: %s", err.msg);
	assert_false(link_exists(bridge));
}

/* The neighbour table's room: a local host takes two entries and herd keeps
 * the machine's table within 7/8 of gc_thresh3; unknown never refuses. */
static void
test_neigh_room(void **state)
{
	struct herr err = HERR_INIT;
	long entries = -2, thresh3 = -2;

	/* 1024 (the default): the limit is 896, so 894 in use is the last fit */
	assert_int_equal(prov_local_neigh_room(0, 1024, &err), 0);
	assert_int_equal(prov_local_neigh_room(894, 1024, &err), 0);
	assert_int_equal(prov_local_neigh_room(895, 1024, &err), HERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "895 entries"));
	assert_non_null(strstr(err.msg, "net.ipv4.neigh.default.gc_thresh3 = 1024"));
	assert_non_null(strstr(err.msg, "at most 896"));
	/* a table already past the limit, or full, or absurd: refused */
	err = (struct herr)HERR_INIT;
	assert_int_equal(prov_local_neigh_room(1025, 1024, &err), HERR_UNAVAIL);
	err = (struct herr)HERR_INIT;
	assert_int_equal(prov_local_neigh_room(LONG_MAX, 1024, &err), HERR_UNAVAIL);
	/* a tiny limit: 8 -> 7, one host fits on 5 */
	assert_int_equal(prov_local_neigh_room(5, 8, &err), 0);
	err = (struct herr)HERR_INIT;
	assert_int_equal(prov_local_neigh_room(6, 8, &err), HERR_UNAVAIL);
	/* raised by an admin: room again */
	assert_int_equal(prov_local_neigh_room(895, 8192, &err), 0);
	/* unknown is not full: the check never blocks a launch it cannot judge */
	assert_int_equal(prov_local_neigh_room(-1, 1024, &err), 0);
	assert_int_equal(prov_local_neigh_room(895, -1, &err), 0);
	assert_int_equal(prov_local_neigh_room(895, 0, &err), 0);

	/* how many more hosts: the same rule counted ahead (apply warns with it) */
	assert_int_equal(prov_local_neigh_hosts_left(0, 1024), 448);
	assert_int_equal(prov_local_neigh_hosts_left(894, 1024), 1);
	assert_int_equal(prov_local_neigh_hosts_left(895, 1024), 0);
	assert_int_equal(prov_local_neigh_hosts_left(LONG_MAX, 1024), 0);
	assert_int_equal(prov_local_neigh_hosts_left(5, 8), 1);
	assert_int_equal(prov_local_neigh_hosts_left(6, 8), 0);
	assert_int_equal(prov_local_neigh_hosts_left(-1, 1024), -1);
	assert_int_equal(prov_local_neigh_hosts_left(0, 0), -1);
	assert_int_equal(prov_local_neigh_hosts_left(0, LONG_MAX), (LONG_MAX - LONG_MAX / 8) / 2);

	/* and what it reads on this machine: numbers, not "unknown" */
	prov_local_neigh_read(&entries, &thresh3);
	assert_true(entries >= 0);
	assert_true(thresh3 > 0);
	{
		char why[300];
		long left = prov_hosts_left(prov_find("local"), why, sizeof(why));

		/* the driver's capability, through the dispatcher: a count here */
		assert_true(left >= 0);
		assert_non_null(strstr(why, "gc_thresh3"));
		assert_int_equal(prov_hosts_left(prov_find("qingcloud"), why, sizeof(why)), -1);
		assert_string_equal(why, "");
	}
	printf("# neighbour table: %ld entries, gc_thresh3 %ld\n", entries, thresh3);
}

/* Capabilities, not names: the local driver's hosts reach the server on
 * their network's gateway. */
static void
test_local_capability(void **state)
{
	(void)state;
	assert_non_null(prov_find("local"));
	assert_true(prov_find("local")->listens_on_gateway);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_create),
		cmocka_unit_test(test_launch),
		cmocka_unit_test(test_launch_is_idempotent),
		cmocka_unit_test(test_list_after_restart),
		cmocka_unit_test(test_bad_launch_leaves_nothing),
		cmocka_unit_test(test_half_made_host_is_remade),
		cmocka_unit_test(test_forged_pid_file),
		cmocka_unit_test(test_terminate),
		cmocka_unit_test(test_launch_remakes_bridge),
		cmocka_unit_test(test_net_delete),
		cmocka_unit_test(test_nothing_left),
		cmocka_unit_test(test_adopt_decision),
		cmocka_unit_test(test_server_url_check),
		cmocka_unit_test(test_net_overlap),
		cmocka_unit_test(test_neigh_room),
		cmocka_unit_test(test_local_capability),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests_name("prov-local", tests, group_setup, group_teardown);
}
