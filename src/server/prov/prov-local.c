/* prov-local.c - the "local" provider: a host is a set of Linux namespaces on
 * this machine: a named netns (/run/netns/herd-<instance>-<hostid>) with a veth
 * on the network's bridge (herd<netid>), plus UTS, mount and PID namespaces
 * whose PID 1 is the herd agent, in a cgroup of its own with the template's
 * limits (herd-<instance>/<hostid>: v1's cpu, cpuacct and memory
 * hierarchies, or v2), running one read-only copy of the agent binary that
 * all hosts share (<data>/bin). Everything later calls need is in the kernel
 * or on disk (netns files, <data>/hosts/<hostid>/pid), never in memory, so a
 * server killed at any point and restarted finds, reuses or cleans its hosts. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/magic.h>
#include <net/if.h>

#include "agent-contract.h"   /* AGENT_CONFIG, HOST_STATE_DIR */
#include "log.h"
#include "netlink.h"
#include "prov.h"
#include "util.h"
#include "xalloc.h"

/*
 * Threading: every call opens its own netlink sockets and enters a host's
 * network namespace only in the calling thread, so calls for different hosts
 * may run on different threads (herd's launch pool does: ctl/launcher.c).
 * What hosts share is serialized: making /run/netns a shared mount
 * (netns_lock) and the per-instance cgroup parent, which the last host's
 * terminate removes while a launch may be making a child in it (cg_lock);
 * a bridge two launches make at once is netlink_bridge_ensure's (EEXIST is
 * success). Calls for the same host id must not overlap; the controller
 * never touches a host while its launch is in flight.
 *
 * Reaping: launch starts an intermediate child that starts PID 1 and exits
 * at once; launch waits for that intermediate by its pid. PID 1 is reparented to
 * the machine's init (or to the nearest PR_SET_CHILD_SUBREAPER ancestor, which
 * then reaps it), never left as the server's own child, so nothing here
 * depends on SIGCHLD handling. A server with a SIGCHLD handler that calls
 * waitpid(-1) may reap the intermediate first: that is harmless (ECHILD).
 *
 * State dir: always <data_dir>/hosts/<hostid>, derived from ids alone so that
 * terminate and list can find it; launch rejects a spec->state_dir naming any
 * other place. It holds pid, private_ip and agent.log, and outlives terminate
 * (the log is what one reads after a failed host); removing it is the caller's.
 */

#define NETNS_DIR "/run/netns"
#define NEIGH_STAT "/proc/net/stat/arp_cache"                  /* the table's counters */
#define NEIGH_THRESH3 "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
#define NEIGH_PER_HOST 2                /* the host's entry for its gateway, the bridge's for it */
#define CGROUP_ROOT "/sys/fs/cgroup"
#define HOST_STATE_MNT HOST_STATE_DIR      /* where a host sees its state dir (agent-contract.h) */
#define HOST_BIN_DIR "/run/herd/bin"           /* inside the host */
#define HOST_BIN HOST_BIN_DIR "/herd"
#define CG_DIRS 4                      /* v2's one + v1's cpu, cpuacct, memory */
#define KILL_TIMEOUT_MS 2000
#define LINK_WAIT_MS 2000              /* for the kernel to finish a host's links */
#define SPAWN_STACK (64 * 1024)        /* each child's stack until it execs or exits */

/* Everything named after one host. */
struct host_paths {
	char host_id[16];
	char netns[64];           /* herd-<instance>-<hostid> */
	char netns_path[96];      /* /run/netns/<netns> */
	char veth[IFNAMSIZ];      /* herdv<hostid>: machine side */
	char state_dir[PATH_MAX]; /* <data_dir>/hosts/<hostid> */
	char pid_path[PATH_MAX + 32];
	char ip_path[PATH_MAX + 32];
	char log_path[PATH_MAX + 32];
	/* CGROUP_ROOT/herd-<instance>/<hostid> (v2), or the same under each
	 * of CGROUP_ROOT/{cpu,cpuacct,memory} (v1): every one that may exist */
	char cgroup[CG_DIRS][PATH_MAX];
};

/* hp->cgroup[i] is under CGROUP_ROOT plus this: [0] is v2's (the unified
 * hierarchy at CGROUP_ROOT itself), [1..3] are v1's hierarchies. */
static const char *const cg_v1_sub[CG_DIRS] = { "", "/cpu", "/cpuacct", "/memory" };
enum { CG_V2, CG_V1_CPU, CG_V1_CPUACCT, CG_V1_MEMORY };

static bool
is_hex8(const char *s)
{
	if (s == NULL || strlen(s) != 8)
		return false;
	for (int i = 0; i < 8; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The instance id scopes netns names, so it must not contain '-'. */
static bool
instance_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static bool
ipv4_is_valid(const char *s)
{
	struct in_addr a;

	return s != NULL && inet_pton(AF_INET, s, &a) == 1;
}

static int
check_prov(const struct prov *p, struct herr *err)
{
	if (!instance_is_valid(p->instance))
		return herr_set(err, HERR_INVALID, "invalid instance id '%s'", p->instance);
	if (p->data_dir[0] != '/')
		return herr_set(err, HERR_INVALID, "data dir '%s' is not an absolute path",
				p->data_dir);
	return 0;
}

static int
host_paths_init(const struct prov *p, const char *host_id, struct host_paths *hp,
		struct herr *err)
{
	int rc;

	if ((rc = check_prov(p, err)) < 0)
		return rc;
	if (!is_hex8(host_id))
		return herr_set(err, HERR_INVALID, "invalid host id '%s'", host_id ? host_id : "");
	snprintf(hp->host_id, sizeof(hp->host_id), "%s", host_id);
	snprintf(hp->netns, sizeof(hp->netns), "herd-%s-%s", p->instance, host_id);
	snprintf(hp->netns_path, sizeof(hp->netns_path), NETNS_DIR "/%s", hp->netns);
	snprintf(hp->veth, sizeof(hp->veth), "herdv%s", host_id);
	for (int i = 0; i < CG_DIRS; i++)
		snprintf(hp->cgroup[i], sizeof(hp->cgroup[i]), CGROUP_ROOT "%s/herd-%s/%s",
			 cg_v1_sub[i], p->instance, host_id);
	if ((size_t)snprintf(hp->state_dir, sizeof(hp->state_dir), "%s/hosts/%s", p->data_dir,
			     host_id) >= sizeof(hp->state_dir) - 32)
		return herr_set(err, HERR_INVALID, "data dir '%s' is too long", p->data_dir);
	snprintf(hp->pid_path, sizeof(hp->pid_path), "%s/pid", hp->state_dir);
	snprintf(hp->ip_path, sizeof(hp->ip_path), "%s/private_ip", hp->state_dir);
	snprintf(hp->log_path, sizeof(hp->log_path), "%s/agent.log", hp->state_dir);
	return 0;
}

/* Small state files: tmp + rename, no fsync. They describe kernel objects
 * (a netns, a process) that a machine crash takes away anyway. */
static int
state_write(const char *path, const char *text)
{
	char tmp[PATH_MAX + 16];
	size_t n = strlen(text);
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static pid_t
pid_file_read(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0') || v <= 1 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

/* Reads the netns file's identity; false if absent or not a mounted netns
 * (a bare file left by a launch that died before the bind mount). */
static bool
netns_stat(const char *path, struct stat *st)
{
	struct statfs sfs;

	if (statfs(path, &sfs) < 0 || sfs.f_type != NSFS_MAGIC)
		return false;
	return stat(path, st) == 0;
}

static bool
pid_in_netns(pid_t pid, const struct stat *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return stat(path, &st) == 0 && st.st_dev == ns->st_dev && st.st_ino == ns->st_ino;
}

/* True if pid is PID 1 of its own PID namespace (last NSpid field is 1). */
static bool
pid_is_ns_init(pid_t pid)
{
	char path[64], *text, *line, *last;
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((text = file_read(path, 1 << 16, NULL)) == NULL)
		return false;
	if ((line = strstr(text, "\nNSpid:")) != NULL) {
		line[strcspn(line + 1, "\n") + 1] = '\0';
		last = strrchr(line, '\t');
		ok = last != NULL && strcmp(last + 1, "1") == 0;
	}
	free(text);
	return ok;
}

/* The host's PID 1 if it is alive, else 0. The pid file alone is never
 * trusted: the pid must be PID 1 of a PID namespace inside this host's netns. */
static pid_t
host_init_pid(const struct host_paths *hp, const struct stat *ns)
{
	pid_t pid = pid_file_read(hp->pid_path);

	if (pid > 0 && pid_in_netns(pid, ns) && pid_is_ns_init(pid))
		return pid;
	return 0;
}

/* ---- killing ---------------------------------------------------------- */

/* SIGKILLs pid if it is in netns `ns`; returns a pidfd to wait on, or -1 if
 * there is nothing to wait for. The check is repeated after the pidfd is
 * opened and the signal goes through the pidfd, so a process that reuses the
 * pid in between is never hit. */
static int
kill_in_netns(pid_t pid, const struct stat *ns)
{
	int fd;

	if (!pid_in_netns(pid, ns) || (fd = pidfd_open(pid, 0)) < 0)
		return -1;
	if (!pid_in_netns(pid, ns) || pidfd_send_signal(fd, SIGKILL, NULL, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits until the process behind pidfd has exited; closes fd. */
static bool
pidfd_wait(int fd, int64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t left;
	int n;

	for (;;) {
		left = deadline_ms - mono_ms();
		n = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	close(fd);
	return n == 1;
}

/* Kills every process in network namespace `ns`, PID 1 first (its death takes
 * its whole PID namespace along), then anything else found in /proc (a PID 1
 * whose pid file was never written, `ip netns exec` sessions). Returns the
 * number of processes still alive at the deadline. */
static int
netns_kill_all(pid_t init, const struct stat *ns, int64_t deadline_ms)
{
	int fds[256], nfds, left = 0, fd;
	pid_t self = getpid();
	struct dirent *de;
	DIR *d;

	if (init > 0 && (fd = kill_in_netns(init, ns)) >= 0 && !pidfd_wait(fd, deadline_ms))
		return 1;
	for (int round = 0; round < 10; round++) {
		if ((d = opendir("/proc")) == NULL)
			return 0;
		nfds = 0;
		while ((de = readdir(d)) != NULL && nfds < (int)(sizeof(fds) / sizeof(fds[0]))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);

			if (*end != '\0' || pid <= 0 || pid == self)
				continue;
			if ((fd = kill_in_netns((pid_t)pid, ns)) >= 0)
				fds[nfds++] = fd;
		}
		closedir(d);
		if (nfds == 0)
			return 0;
		left = 0;
		for (int i = 0; i < nfds; i++)
			if (!pidfd_wait(fds[i], deadline_ms))
				left++;
		if (left > 0)
			return left;
	}
	return left;
}

/* ---- namespaces and cgroups ------------------------------------------- */

/* Makes /run/netns a shared mount point, as iproute2 does, so a netns bind
 * mount made here is also removed from mount namespaces copied later. */
static pthread_mutex_t netns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;

static int
netns_dir_ensure_locked(struct herr *err)
{
	bool bound = false;

	if (mkdir(NETNS_DIR, 0755) < 0 && errno != EEXIST)
		return herr_set(err, -errno, "cannot create '%s': %s", NETNS_DIR, strerror(errno));
	while (mount("", NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || bound)
			return herr_set(err, -errno, "cannot make '%s' a shared mount: %s",
					NETNS_DIR, strerror(errno));
		/* Not a mount point yet: bind it onto itself, then retry. */
		if (mount(NETNS_DIR, NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
			return herr_set(err, -errno, "cannot bind-mount '%s': %s", NETNS_DIR,
					strerror(errno));
		bound = true;
	}
	return 0;
}

/* Two threads must not both find it unmounted and bind it twice. */
static int
netns_dir_ensure(struct herr *err)
{
	int rc;

	pthread_mutex_lock(&netns_lock);
	rc = netns_dir_ensure_locked(err);
	pthread_mutex_unlock(&netns_lock);
	return rc;
}

/* Removes a netns file whatever state it is in; absent is fine. */
static int
netns_remove(const char *path, struct herr *err)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return herr_set(err, -errno, "cannot unmount '%s': %s", path, strerror(errno));
	if (unlink(path) < 0 && errno != ENOENT)
		return herr_set(err, -errno, "cannot remove '%s': %s", path, strerror(errno));
	return 0;
}

/* Creates a named network namespace at path (like `ip netns add`) without
 * moving the caller: only this thread enters the new namespace, for the
 * bind mount, and comes back. Returns an O_CLOEXEC fd on it in *fd_out. */
static int
netns_create(const char *path, int *fd_out, struct herr *err)
{
	int fd, self, rc = 0;

	if ((rc = netns_dir_ensure(err)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return herr_set(err, -errno, "cannot create '%s': %s", path, strerror(errno));
	close(fd);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		rc = herr_set(err, -errno, "cannot open own network namespace: %s",
			      strerror(errno));
		goto out_unlink;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		rc = herr_set(err, -errno, "cannot create network namespace '%s': %s", path,
			      strerror(errno));
		close(self);
		goto out_unlink;
	}
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		rc = herr_set(err, -errno, "cannot bind-mount network namespace on '%s': %s",
			      path, strerror(errno));
	if (setns(self, CLONE_NEWNET) < 0) {
		/* This thread would act on the host's network from now on. */
		perror("herd: cannot return to own network namespace");
		abort();
	}
	close(self);
	if (rc < 0)
		goto out_unlink;
	if ((*fd_out = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = herr_set(err, -errno, "cannot open '%s': %s", path, strerror(errno));
		netns_remove(path, NULL);
		return rc;
	}
	return 0;
out_unlink:
	unlink(path);
	return rc;
}

static int
cgroup_write(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 64];
	size_t n = strlen(text);
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n)
		rc = -errno;
	close(fd);
	return rc;
}

/* Removes one of a host's cgroup dirs; retries briefly, as a cgroup whose
 * last task has just exited may still read as populated. Absent is fine. */
static void
cgroup_remove_dir(const char *dir)
{
	char parent[PATH_MAX];

	for (int i = 0; i < 50; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			break;
		if (errno != EBUSY) {
			log_warn("cannot remove cgroup '%s': %s", dir, strerror(errno));
			return;
		}
		sleep_ms(10);
	}
	/* The per-instance parent goes when its last host does (not while a
	 * launch is between making it and making its child: cg_lock). */
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	pthread_mutex_lock(&cg_lock);
	rmdir(parent);
	pthread_mutex_unlock(&cg_lock);
}

/* Removes every cgroup dir a host may have, v1's and v2's: a server
 * restarted on the same machine finds what an earlier one made. */
static void
cgroup_remove(const struct host_paths *hp)
{
	for (int i = 0; i < CG_DIRS; i++)
		cgroup_remove_dir(hp->cgroup[i]);
}

/* Makes dir's parent (herd-<instance>) and dir itself; under cg_lock. */
static int
cgroup_mkdir_locked(const char *dir)
{
	char parent[PATH_MAX];

	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	if ((mkdir(parent, 0755) < 0 && errno != EEXIST) || (mkdir(dir, 0755) < 0 && errno != EEXIST))
		return -errno;
	return 0;
}

static int
cgroup_procs_open(const char *dir)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* cgroup v2: one dir; the memory controller always (memory.current is the
 * host's figure), cpu when limited (cpu.stat is there without it). */
static int
cgroup_setup_v2(const struct host_spec *spec, const struct host_paths *hp, int fds[CG_DIRS],
		const char **what, const char **where)
{
	const char *dir = hp->cgroup[CG_V2];
	char parent[PATH_MAX], text[64];
	int rc;

	*where = dir;
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	*what = "create";
	pthread_mutex_lock(&cg_lock);   /* until the child exists: see cgroup_remove_dir */
	if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out_unlock;
	}
	/* Delegate the controllers down to the host's cgroup. */
	*what = "enable controllers for";
	if ((rc = cgroup_write(CGROUP_ROOT, "cgroup.subtree_control", "+memory")) < 0 ||
	    (rc = cgroup_write(parent, "cgroup.subtree_control", "+memory")) < 0)
		goto out_unlock;
	if (spec->cpu_limit_pct > 0 &&
	    ((rc = cgroup_write(CGROUP_ROOT, "cgroup.subtree_control", "+cpu")) < 0 ||
	     (rc = cgroup_write(parent, "cgroup.subtree_control", "+cpu")) < 0))
		goto out_unlock;
	*what = "create";
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out_unlock;
	}
	pthread_mutex_unlock(&cg_lock);
	*what = "set limits in";
	if (spec->mem_limit_bytes > 0) {
		snprintf(text, sizeof(text), "%lld", (long long)spec->mem_limit_bytes);
		if ((rc = cgroup_write(dir, "memory.max", text)) < 0)
			return rc;
	}
	if (spec->cpu_limit_pct > 0) {
		/* quota per 100 ms period: 100% = one core = 100000 us */
		snprintf(text, sizeof(text), "%lld 100000", (long long)spec->cpu_limit_pct * 1000);
		if ((rc = cgroup_write(dir, "cpu.max", text)) < 0)
			return rc;
	}
	*what = "open";
	if ((rc = cgroup_procs_open(dir)) < 0)
		return rc;
	fds[CG_V2] = rc;
	return 0;
out_unlock:
	pthread_mutex_unlock(&cg_lock);
	return rc;
}

/* cgroup v1: a dir in each of the cpu, cpuacct and memory hierarchies (one
 * and the same dir where cpu and cpuacct are mounted together). A hierarchy
 * the machine lacks is skipped unless a limit needs it. */
static int
cgroup_setup_v1(const struct host_spec *spec, const struct host_paths *hp, int fds[CG_DIRS],
		const char **what, const char **where)
{
	char text[64];
	int rc = 0;

	*what = "create";
	pthread_mutex_lock(&cg_lock);   /* until the child exists: see cgroup_remove_dir */
	for (int i = CG_V1_CPU; i <= CG_V1_MEMORY && rc == 0; i++) {
		char root[64];

		snprintf(root, sizeof(root), CGROUP_ROOT "%s", cg_v1_sub[i]);
		if (access(root, F_OK) < 0 && !(i == CG_V1_CPU && spec->cpu_limit_pct > 0) &&
		    !(i == CG_V1_MEMORY && spec->mem_limit_bytes > 0))
			continue;
		*where = hp->cgroup[i];
		rc = cgroup_mkdir_locked(hp->cgroup[i]);
	}
	pthread_mutex_unlock(&cg_lock);
	if (rc < 0)
		return rc;
	*what = "set limits in";
	if (spec->mem_limit_bytes > 0) {
		snprintf(text, sizeof(text), "%lld", (long long)spec->mem_limit_bytes);
		*where = hp->cgroup[CG_V1_MEMORY];
		if ((rc = cgroup_write(hp->cgroup[CG_V1_MEMORY], "memory.limit_in_bytes", text)) < 0)
			return rc;
	}
	if (spec->cpu_limit_pct > 0) {
		/* quota per 100 ms period: 100% = one core = 100000 us */
		snprintf(text, sizeof(text), "%lld", (long long)spec->cpu_limit_pct * 1000);
		*where = hp->cgroup[CG_V1_CPU];
		if ((rc = cgroup_write(hp->cgroup[CG_V1_CPU], "cpu.cfs_period_us", "100000")) < 0 ||
		    (rc = cgroup_write(hp->cgroup[CG_V1_CPU], "cpu.cfs_quota_us", text)) < 0)
			return rc;
	}
	*what = "open";
	for (int i = CG_V1_CPU; i <= CG_V1_MEMORY; i++) {
		if (access(hp->cgroup[i], F_OK) < 0)
			continue;
		*where = hp->cgroup[i];
		if ((rc = cgroup_procs_open(hp->cgroup[i])) < 0)
			return rc;
		fds[i] = rc;
	}
	return 0;
}

static void
cgroup_fds_close(int fds[CG_DIRS])
{
	for (int i = 0; i < CG_DIRS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Puts every host in its own cgroup (v2 where CGROUP_ROOT is the unified
 * hierarchy, else v1's cpu, cpuacct and memory), with the template's limits.
 * Fills fds with the cgroup.procs the child joins (-1 = none). A limit that
 * cannot be applied fails the launch; without limits, a machine that has no
 * writable cgroups runs the host in the server's cgroup (no scope="host"
 * figures) and a warning says why. */
static int
cgroup_setup(const struct host_spec *spec, const struct host_paths *hp, int fds[CG_DIRS],
	     struct herr *err)
{
	bool limited = spec->mem_limit_bytes > 0 || spec->cpu_limit_pct > 0;
	struct statfs sfs;
	const char *what = "find", *where = CGROUP_ROOT;
	bool v2;
	int rc;

	for (int i = 0; i < CG_DIRS; i++)
		fds[i] = -1;
	if (statfs(CGROUP_ROOT, &sfs) < 0) {
		rc = -errno;
		goto out_fail;
	}
	v2 = sfs.f_type == CGROUP2_SUPER_MAGIC;
	/* tests: a kernel that refuses the limits (prov.h) */
	if (limited && failpoint("local_cgroup_limits", NULL) < 0) {
		what = "set limits in";
		rc = -EINVAL;
		goto out_fail;
	}
	rc = v2 ? cgroup_setup_v2(spec, hp, fds, &what, &where) :
		  cgroup_setup_v1(spec, hp, fds, &what, &where);
	if (rc == 0)
		return 0;
out_fail:
	cgroup_fds_close(fds);
	cgroup_remove(hp);
	if (limited)
		return herr_set(err, rc, "host '%s': limits (limit_cpu_pct %d, limit_memory_mb %lld) "
				"cannot be applied: cannot %s cgroup '%s': %s", spec->id,
				spec->cpu_limit_pct, (long long)(spec->mem_limit_bytes >> 20), what,
				where, strerror(-rc));
	log_warn("host '%s': runs in the server's cgroup (no scope=\"host\" figures): cannot %s "
		 "cgroup '%s': %s", spec->id, what, where, strerror(-rc));
	return 0;
}

/* ---- the agent binary ------------------------------------------------ */

/* Hosts run one private copy of the agent binary, bound read-only on
 * HOST_BIN in each: <data_dir>/bin/herd-<16 hex of its SHA-256>, made on the
 * first launch after the binary changed (path, inode, size or mtime), so the
 * page cache holds it once for all hosts, and an upgraded binary is a new
 * file while running hosts keep the one they started with. */
static pthread_mutex_t bin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char src[PATH_MAX], data_dir[PATH_MAX], copy[PATH_MAX];
	struct stat st;
} bin_made;

#define AGENT_BIN_MAX (256 << 20)

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
agent_copy_make(const struct prov *p, const char *bin, char *out, size_t outsz, struct herr *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32], hex[65];
	struct stat st;
	size_t len = 0, off = 0;
	char *data;
	ssize_t n;
	int fd, rc;

	if ((data = file_read(bin, AGENT_BIN_MAX, &len)) == NULL)
		return herr_set(err, -errno, "cannot read agent binary '%s': %s", bin,
				strerror(errno));
	sha256_hex(data, len, hex);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/bin", p->data_dir) >= sizeof(dir) - 32) {
		free(data);
		return herr_set(err, HERR_INVALID, "data dir '%s' is too long", p->data_dir);
	}
	snprintf(out, outsz, "%s/herd-%.16s", dir, hex);
	if (stat(out, &st) == 0 && st.st_size == (off_t)len) {
		free(data);
		return 0;
	}
	if ((rc = mkdir_p(dir, 0700)) < 0) {
		free(data);
		return herr_set(err, rc, "cannot create '%s': %s", dir, strerror(-rc));
	}
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", out, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0555)) < 0) {
		rc = -errno;
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, data + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	rc = off == len ? 0 : -errno;
	close(fd);
	if (rc == 0 && rename(tmp, out) < 0)
		rc = -errno;
out:
	free(data);
	if (rc < 0) {
		unlink(tmp);
		return herr_set(err, rc, "cannot copy agent binary to '%s': %s", out, strerror(-rc));
	}
	log_info("agent binary '%s' copied to '%s' for hosts", bin, out);
	return 0;
}

/* The copy of bin that hosts run, made if need be, into out. */
static int
agent_copy(const struct prov *p, const char *bin, char *out, size_t outsz, struct herr *err)
{
	struct stat st;
	int rc = 0;

	if (stat(bin, &st) < 0)
		return herr_set(err, -errno, "cannot stat agent binary '%s': %s", bin,
				strerror(errno));
	pthread_mutex_lock(&bin_lock);
	if (strcmp(bin_made.src, bin) == 0 && strcmp(bin_made.data_dir, p->data_dir) == 0 &&
	    same_file(&bin_made.st, &st) && access(bin_made.copy, F_OK) == 0) {
		snprintf(out, outsz, "%s", bin_made.copy);
	} else if ((rc = agent_copy_make(p, bin, out, outsz, err)) == 0) {
		snprintf(bin_made.src, sizeof(bin_made.src), "%s", bin);
		snprintf(bin_made.data_dir, sizeof(bin_made.data_dir), "%s", p->data_dir);
		snprintf(bin_made.copy, sizeof(bin_made.copy), "%s", out);
		bin_made.st = st;
	}
	pthread_mutex_unlock(&bin_lock);
	return rc;
}

/* ---- teardown --------------------------------------------------------- */

/* Removes every piece of a host that exists: processes, veth, netns file,
 * cgroup, state files (not the state dir). Safe on half-made hosts and on
 * hosts that are already gone. If processes outlive the timeout, stops before
 * removing the netns (so a retry can still find them) and fails. */
static int
host_teardown(const struct host_paths *hp, struct herr *err)
{
	struct nl_sock *sk = NULL;
	struct stat ns;
	int left, rc;

	if (netns_stat(hp->netns_path, &ns)) {
		left = netns_kill_all(host_init_pid(hp, &ns), &ns, mono_ms() + KILL_TIMEOUT_MS);
		if (left > 0)
			return herr_set(err, HERR_TIMEOUT,
					"%d process(es) of host '%s' still alive %d ms after SIGKILL",
					left, hp->host_id, KILL_TIMEOUT_MS);
	}
	/* Deleting the machine side takes the peer along, synchronously; left
	 * to netns cleanup it would go asynchronously and block a relaunch. */
	if ((rc = netlink_open(&sk, err)) < 0)
		return rc;
	rc = netlink_link_delete(sk, hp->veth, err);
	netlink_close(&sk);
	if (rc < 0)
		return rc;
	if ((rc = netns_remove(hp->netns_path, err)) < 0)
		return rc;
	cgroup_remove(hp);
	unlink(hp->pid_path);
	unlink(hp->ip_path);
	return 0;
}

/* ---- PID 1 ------------------------------------------------------------ */

/* Steps of the children, reported to launch when one fails. */
enum spawn_stage {
	ST_SETNS, ST_CGROUP, ST_UNSHARE, ST_FORK, ST_HOSTNAME, ST_PRIVATE, ST_NETNS_DETACH,
	ST_BIND_STATE, ST_LOG, ST_DEVNULL, ST_MOUNT_RUN, ST_MOUNT_TMP, ST_MOUNT_PROC,
	ST_MASK, ST_CONFIG, ST_BIND_BIN, ST_SETSID, ST_CHDIR, ST_EXEC,
};

static const char *const spawn_stage_names[] = {
	[ST_SETNS] = "enter network namespace",
	[ST_CGROUP] = "join cgroup",
	[ST_UNSHARE] = "create UTS, mount and PID namespaces",
	[ST_FORK] = "fork PID 1",
	[ST_HOSTNAME] = "set hostname",
	[ST_PRIVATE] = "make mounts private",
	[ST_NETNS_DETACH] = "detach " NETNS_DIR,
	[ST_BIND_STATE] = "bind-mount state dir on " HOST_STATE_MNT,
	[ST_LOG] = "open agent.log",
	[ST_DEVNULL] = "open /dev/null",
	[ST_MOUNT_RUN] = "mount tmpfs on /run",
	[ST_MOUNT_TMP] = "mount tmpfs on /tmp",
	[ST_MOUNT_PROC] = "mount proc on /proc",
	[ST_MASK] = "hide the server's data dir",
	[ST_CONFIG] = "write " AGENT_CONFIG,
	[ST_BIND_BIN] = "bind the agent binary on " HOST_BIN,
	[ST_SETSID] = "start a session",
	[ST_CHDIR] = "change to /",
	[ST_EXEC] = "exec agent",
};

/* What the children send on the report pipe (one write each, < PIPE_BUF). */
struct spawn_report {
	int32_t kind;   /* SPAWN_PID or SPAWN_FAIL */
	int32_t stage;  /* enum spawn_stage, SPAWN_FAIL */
	int32_t err;    /* errno, SPAWN_FAIL */
	int32_t pid;    /* PID 1 as the machine sees it, SPAWN_PID */
};
enum { SPAWN_PID = 1, SPAWN_FAIL = 2 };

/* Everything the children need, prepared before fork: after fork they make
 * system calls only (the server is multi-threaded). */
struct spawn {
	int ns_fd;              /* the host's netns */
	int cgroup_fd[CG_DIRS]; /* cgroup.procs of the host's cgroups, or -1 */
	int report_fd;          /* write end of the report pipe (O_CLOEXEC) */
	const char *hostname;
	const char *state_dir;
	const char *mask_dir;   /* the server's data dir, hidden from the host; or NULL */
	const char *log_path;
	const char *config;     /* user data */
	size_t config_len;
	const char *agent_bin;  /* the private copy hosts run (agent_copy) */
	const char *agent_src;  /* what it is a copy of: spec->agent_bin */
	char *const *argv;
	char *const *envp;
	char *pid1_stack;       /* the top of PID 1's stack (spawn_host's mapping) */
};

static void __attribute__((noreturn))
spawn_fail(const struct spawn *s, enum spawn_stage stage)
{
	struct spawn_report r = { SPAWN_FAIL, (int32_t)stage, errno, 0 };
	ssize_t n = write(s->report_fd, &r, sizeof(r));

	(void)n;
	_exit(127);
}

/* True if the data dir can be hidden from hosts: not "/", and not a parent
 * of HOST_STATE_MNT (covering it would hide the host's own state too). */
static bool
mask_ok(const char *data_dir)
{
	size_t n = strlen(data_dir);

	while (n > 1 && data_dir[n - 1] == '/')
		n--;
	if (n <= 1)
		return false;
	return !(strncmp(HOST_STATE_MNT, data_dir, n) == 0 &&
		 (HOST_STATE_MNT[n] == '/' || HOST_STATE_MNT[n] == '\0'));
}

/* "/proc/self/fd/<fd>" into out (32 bytes), without stdio: after fork. */
static void
fd_path(int fd, char out[32])
{
	static const char pre[] = "/proc/self/fd/";
	char digits[12];
	int n = 0, i;

	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd > 0 && n < (int)sizeof(digits));
	memcpy(out, pre, sizeof(pre) - 1);
	for (i = 0; i < n; i++)
		out[sizeof(pre) - 1 + i] = digits[n - 1 - i];
	out[sizeof(pre) - 1 + n] = '\0';
}

static void __attribute__((noreturn))
spawn_pid1(const struct spawn *s)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	size_t off = 0;
	ssize_t n;
	char bin_src[32];
	int fd, logfd, nullfd, binfd;

	/* A clean process: default signal handlers (then unblocked: launch
	 * blocked them all before fork), nothing of the server's left open. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	umask(022);

	if (sethostname(s->hostname, strlen(s->hostname)) < 0)
		spawn_fail(s, ST_HOSTNAME);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		spawn_fail(s, ST_PRIVATE);
	/* Our copies of the other hosts' netns mounts would pin those
	 * namespaces for as long as this host lives. */
	if (umount2(NETNS_DIR, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		spawn_fail(s, ST_NETNS_DETACH);
	/* Before the tmpfs mounts, which could hide a data dir under /tmp. */
	if (mount(s->state_dir, HOST_STATE_MNT, NULL, MS_BIND, NULL) < 0)
		spawn_fail(s, ST_BIND_STATE);
	if ((logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_CLOEXEC,
			  0600)) < 0)
		spawn_fail(s, ST_LOG);
	if ((nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		spawn_fail(s, ST_DEVNULL);
	/* The agent binary, opened here in the host's mount namespace (a bind
	 * mount's source must be in it): the mounts below hide the data dir. */
	if ((binfd = open(s->agent_bin, O_PATH | O_CLOEXEC)) < 0)
		spawn_fail(s, ST_BIND_BIN);
	if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		spawn_fail(s, ST_MOUNT_RUN);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		spawn_fail(s, ST_MOUNT_TMP);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		spawn_fail(s, ST_MOUNT_PROC);
	/* Hosts run as root on the machine's files: the server's data dir
	 * (admin.token, herd.db, HAProxy's admin sockets) is covered by an
	 * empty read-only tmpfs in this mount namespace, so a script on a host
	 * cannot read or change it. The host's own state dir is already bound
	 * on HOST_STATE_MNT. A data dir under /tmp is hidden by the mount above
	 * (stat fails: nothing to do). */
	if (s->mask_dir && access(s->mask_dir, F_OK) == 0 &&
	    mount("tmpfs", s->mask_dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0000,size=4k") < 0)
		spawn_fail(s, ST_MASK);
	if (mkdir("/run/herd", 0700) < 0)
		spawn_fail(s, ST_CONFIG);
	if ((fd = open(AGENT_CONFIG, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		spawn_fail(s, ST_CONFIG);
	while (off < s->config_len) {
		if ((n = write(fd, s->config + off, s->config_len - off)) < 0) {
			if (errno == EINTR)
				continue;
			spawn_fail(s, ST_CONFIG);
		}
		off += (size_t)n;
	}
	close(fd);
	/* The agent binary: the server's private copy (agent_copy), bound
	 * read-only through the fd opened above (the data dir it lives in is
	 * hidden by now), so it runs (and scripts find `herd` on PATH)
	 * wherever the server's binary lives, /tmp included; every host shares
	 * its pages, and an upgrade never changes a running host under its
	 * feet. */
	if (mkdir(HOST_BIN_DIR, 0755) < 0 ||
	    (fd = open(HOST_BIN, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755)) < 0)
		spawn_fail(s, ST_BIND_BIN);
	close(fd);
	fd_path(binfd, bin_src);
	if (mount(bin_src, HOST_BIN, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, HOST_BIN, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
		  NULL) < 0)
		spawn_fail(s, ST_BIND_BIN);
	close(binfd);
	if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		spawn_fail(s, ST_LOG);
	close(nullfd);
	close(logfd);
	/* Out of the server's session: a ^C on its terminal is not the host's. */
	if (setsid() < 0)
		spawn_fail(s, ST_SETSID);
	if (chdir("/") < 0)
		spawn_fail(s, ST_CHDIR);
	execve(HOST_BIN, s->argv, s->envp);
	spawn_fail(s, ST_EXEC);
}

static int
spawn_pid1_main(void *arg)
{
	spawn_pid1(arg);
}

/* The intermediate child: enters the netns, unshares the rest, starts PID 1,
 * reports its pid and exits, so PID 1 is reparented away from the server.
 * Both run in the server's memory, as posix_spawn's child does (clone with
 * CLONE_VM | CLONE_VFORK: each parent sleeps until its child has exec'd or
 * exited), on stacks of their own. A fork() here copied the server's page
 * tables twice per host and left every page the server then wrote to fault
 * once more, with a TLB flush on each CPU: about a quarter of the server's
 * CPU while launching 20 hosts (perf), and the children's unmapping of those
 * copies as much again. */
static void __attribute__((noreturn))
spawn_intermediate(const struct spawn *s)
{
	struct spawn_report r = { SPAWN_PID, 0, 0, 0 };
	pid_t pid;
	ssize_t n;

	if (setns(s->ns_fd, CLONE_NEWNET) < 0)
		spawn_fail(s, ST_SETNS);
	for (int i = 0; i < CG_DIRS; i++)
		if (s->cgroup_fd[i] >= 0 && write(s->cgroup_fd[i], "0", 1) != 1)
			spawn_fail(s, ST_CGROUP);
	if (unshare(CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWPID) < 0)
		spawn_fail(s, ST_UNSHARE);
	if ((pid = clone(spawn_pid1_main, s->pid1_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
			 (void *)s)) < 0)
		spawn_fail(s, ST_FORK);
	r.pid = (int32_t)pid;
	n = write(s->report_fd, &r, sizeof(r));
	_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
}

static int
spawn_intermediate_main(void *arg)
{
	spawn_intermediate(arg);
}

/* Starts the host's PID 1 and returns once it has exec'd the agent or
 * failed. The clone returns only then (both children are vforks:
 * spawn_intermediate), so every report is already in the pipe when it is
 * read, and a PID 1 stuck in the kernel before its exec holds this thread.
 * Writes the pid file as soon as the pid is read, so a server killed from
 * then on finds it; a server killed earlier leaves a PID 1 that teardown
 * finds through /proc. */
static int
spawn_host(const struct spawn *tmpl, const struct host_paths *hp, pid_t *pid_out,
	   struct herr *err)
{
	struct spawn s = *tmpl;
	struct spawn_report r;
	sigset_t all, old;
	int pipefd[2], status, rc = 0, wrc;
	bool failed = false;
	char text[32];
	pid_t mid, pid = 0;
	ssize_t n;
	char *stacks;

	/* two stacks, each with a guard page below it */
	stacks = mmap(NULL, 2 * SPAWN_STACK, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stacks == MAP_FAILED)
		return herr_set(err, -errno, "cannot map spawn stacks: %s", strerror(errno));
	if (mprotect(stacks, 4096, PROT_NONE) < 0 ||
	    mprotect(stacks + SPAWN_STACK, 4096, PROT_NONE) < 0) {
		rc = -errno;
		munmap(stacks, 2 * SPAWN_STACK);
		return herr_set(err, rc, "cannot guard spawn stacks: %s", strerror(-rc));
	}
	s.pid1_stack = stacks + 2 * SPAWN_STACK;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		rc = -errno;
		munmap(stacks, 2 * SPAWN_STACK);
		return herr_set(err, rc, "cannot create pipe: %s", strerror(-rc));
	}
	s.report_fd = pipefd[1];
	/* No server signal handler may run in the children: they start with
	 * every signal blocked, and PID 1 resets handlers before unblocking. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	mid = clone(spawn_intermediate_main, stacks + SPAWN_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD,
		    &s);
	rc = mid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* both children have exec'd or exited: nothing runs on the stacks */
	munmap(stacks, 2 * SPAWN_STACK);
	close(pipefd[1]);
	if (rc < 0) {
		close(pipefd[0]);
		return herr_set(err, rc, "cannot start host '%s': %s", hp->host_id,
				strerror(-rc));
	}
	/* Both children are done writing: the intermediate has exited and
	 * PID 1's end closed at its exec (or its exit). */
	for (;;) {
		n = read(pipefd[0], &r, sizeof(r));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			break;
		if (n < 0) {
			rc = herr_set(err, -errno, "cannot read host '%s' child's report: %s",
				      hp->host_id, strerror(errno));
			break;
		}
		if (n != (ssize_t)sizeof(r)) {
			rc = herr_set(err, -EIO, "short report from host '%s' child", hp->host_id);
			break;
		}
		if (r.kind == SPAWN_PID && r.pid > 1) {
			pid = r.pid;
			snprintf(text, sizeof(text), "%d\n", (int)pid);
			/* PID 1's own failure may have come first (it reports
			 * before the intermediate can): keep rc */
			if ((wrc = state_write(hp->pid_path, text)) < 0) {
				rc = herr_set(err, wrc, "cannot write '%s': %s", hp->pid_path,
					      strerror(-wrc));
				break;
			}
		} else if (r.kind == SPAWN_FAIL && !failed) {
			failed = true;
			if (r.stage == ST_EXEC)
				rc = herr_set(err, r.err ? -r.err : -EIO,
					      "host '%s': cannot exec agent '%s' (a copy of '%s'): %s",
					      hp->host_id, s.agent_bin, s.agent_src, strerror(r.err));
			else
				rc = herr_set(err, r.err ? -r.err : -EIO, "host '%s': cannot %s: %s",
					      hp->host_id,
					      r.stage >= 0 && r.stage < ST_EXEC ?
						      spawn_stage_names[r.stage] : "start",
					      strerror(r.err));
		}
	}
	close(pipefd[0]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && pid == 0)
		rc = herr_set(err, -ECHILD, "host '%s': PID 1 was not started", hp->host_id);
	*pid_out = pid;
	return rc;
}

/* ---- driver operations ------------------------------------------------ */

static int
local_open(struct prov *p, struct herr *err)
{
	return check_prov(p, err);
}

static int
net_check(const struct prov_net_spec *net, char *bridge, size_t bridgesz, struct herr *err)
{
	if (net == NULL || !is_hex8(net->id))
		return herr_set(err, HERR_INVALID, "invalid network id '%s'",
				net && net->id ? net->id : "");
	if (!ipv4_is_valid(net->gateway))
		return herr_set(err, HERR_INVALID, "invalid gateway '%s' for network '%s'",
				net->gateway ? net->gateway : "", net->id);
	if (net->prefix_len < 1 || net->prefix_len > 30)
		return herr_set(err, HERR_INVALID, "invalid prefix length %d for network '%s'",
				net->prefix_len, net->id);
	snprintf(bridge, bridgesz, "herd%s", net->id);
	return 0;
}

/* Bridge up with the gateway address; with sk open in the machine's netns.
 * A bridge not made yet must not take addresses the machine already routes
 * or holds: its more specific route would take their traffic (another
 * network's, another test's veth, the machine's own LAN) and its hosts
 * would answer for them. HERR_CONFLICT naming what it meets. A bridge that
 * exists (ours, or our HA peer's) is not looked at again. */
static int
net_ensure(struct nl_sock *sk, const struct prov_net_spec *net, const char *bridge,
	   struct herr *err)
{
	struct herr miss = HERR_INIT;
	char what[IFNAMSIZ + 96];
	int ifindex, rc;

	rc = netlink_link_index(sk, bridge, &ifindex, &miss);
	if (rc == -ENODEV) {
		if ((rc = netlink_overlap_find(sk, net->gateway, net->prefix_len, what, sizeof(what),
					       err)) < 0)
			return rc;
		if (rc > 0)
			return herr_set(err, HERR_CONFLICT,
					"network '%s' (%s) overlaps %s on this machine: its bridge "
					"would take that traffic; give the network another cidr",
					net->name ? net->name : net->id, net->cidr ? net->cidr : "",
					what);
	} else if (rc < 0) {
		return herr_set(err, rc, "%s", miss.msg);
	}
	if ((rc = netlink_bridge_ensure(sk, bridge, err)) < 0)
		return rc;
	return netlink_addr_add(sk, bridge, net->gateway, net->prefix_len, err);
}

/* A network's bridge is recorded as an empty file <data_dir>/nets/<bridge>
 * while it exists, so that a sweep finds a bridge with no host on it
 * without the store (the bridge's name comes from the network's name). */
static void
net_record_path(const struct prov *p, const char *bridge, char *out, size_t n)
{
	snprintf(out, n, "%s/nets/%s", p->data_dir, bridge);
}

static void
net_record(const struct prov *p, const char *bridge)
{
	char path[PATH_MAX + 32];
	int fd;

	net_record_path(p, bridge, path, sizeof(path));
	if (access(path, F_OK) == 0)   /* every launch ensures its network: one stat */
		return;
	*strrchr(path, '/') = '\0';
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto out_warn;
	net_record_path(p, bridge, path, sizeof(path));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
		goto out_warn;
	close(fd);
	return;
out_warn:
	log_warn("cannot record network bridge '%s' in '%s': %s", bridge, path, strerror(errno));
}

static void
net_unrecord(const struct prov *p, const char *bridge)
{
	char path[PATH_MAX + 32];

	net_record_path(p, bridge, path, sizeof(path));
	unlink(path);
}

static int
local_net_create(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	struct nl_sock *sk;
	char bridge[IFNAMSIZ];
	int rc;

	if ((rc = net_check(net, bridge, sizeof(bridge), err)) < 0)
		return rc;
	if ((rc = netlink_open(&sk, err)) < 0)
		return rc;
	rc = net_ensure(sk, net, bridge, err);
	netlink_close(&sk);
	if (rc == 0 && check_prov(p, NULL) == 0)
		net_record(p, bridge);
	return rc;
}

static int
local_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	struct nl_sock *sk;
	char bridge[IFNAMSIZ];
	int rc;

	if (net == NULL || !is_hex8(net->id))
		return herr_set(err, HERR_INVALID, "invalid network id '%s'",
				net && net->id ? net->id : "");
	snprintf(bridge, sizeof(bridge), "herd%s", net->id);
	if ((rc = netlink_open(&sk, err)) < 0)
		return rc;
	rc = netlink_link_delete(sk, bridge, err);
	netlink_close(&sk);
	if (rc == 0 && check_prov(p, NULL) == 0)
		net_unrecord(p, bridge);
	return rc;
}

/* The bridge's index, making it (up, with the gateway address) only if it is
 * missing: the controller ensures the network before every launch
 * (local_net_create), so one lookup is the common case, not three round
 * trips more per host on the machine-wide rtnl lock. */
static int
bridge_index(struct nl_sock *sk, const struct prov_net_spec *net, const char *bridge,
	     int *ifindex, struct herr *err)
{
	struct herr miss = HERR_INIT;
	int rc;

	if ((rc = netlink_link_index(sk, bridge, ifindex, &miss)) == 0)
		return 0;
	if (rc != -ENODEV)
		return herr_set(err, rc, "%s", miss.msg);
	if ((rc = net_ensure(sk, net, bridge, err)) < 0)
		return rc;
	return netlink_link_index(sk, bridge, ifindex, err);
}

/* Inside the host's netns: lo and eth0 up, eth0's address, the default
 * route. A new netns's lo is always index 1 (LOOPBACK_IFINDEX); eth0's
 * index is looked up once: five round trips, as `ip -batch` makes them. */
static int
host_net_setup(struct nl_sock *nsk, const struct host_spec *spec, int *eth0_out,
	       struct herr *err)
{
	int eth0 = 0, rc;

	if ((rc = netlink_link_index(nsk, "eth0", &eth0, err)) < 0 ||
	    (rc = netlink_link_set_up_index(nsk, 1, err)) < 0 ||
	    (rc = netlink_link_set_up_index(nsk, eth0, err)) < 0 ||
	    (rc = netlink_addr_add_index(nsk, eth0, spec->private_ip, spec->net->prefix_len,
					 err)) < 0)
		return rc;
	*eth0_out = eth0;
	return netlink_route_default_index(nsk, eth0, spec->net->gateway, err);
}

/* True when the kernel has finished bringing up a link just made or set up:
 * a veth end operationally up, a bridge not down (a bridge with no port yet
 * says "unknown", and sends). */
static bool
link_ready(struct nl_sock *sk, int ifindex, const char *name, bool bridge)
{
	struct herr ignore = HERR_INIT;
	bool lower_up = false;
	int st = NETLINK_OPER_UNKNOWN;

	if (netlink_link_oper(sk, ifindex, name, &st, &lower_up, &ignore) < 0)
		return false;
	if (bridge)
		return lower_up && (st == NETLINK_OPER_UP || st == NETLINK_OPER_UNKNOWN);
	return lower_up && st == NETLINK_OPER_UP;
}

/* Waits, at most LINK_WAIT_MS, until the host's eth0, its machine side and
 * the bridge can carry packets. A link with a carrier still drops what it
 * sends until the kernel's link watch work (a workqueue, under RTNL) has
 * activated its queue, and that work also sets its operstate. An agent
 * started before then on a busy machine lost the gateway's ARP reply at
 * the machine side's queue (seen in a capture: the request in on the port,
 * the bridge's reply never out of it) and waited one second for its next
 * ARP: one trial in about 19 of bench/hosts.sh's 20 hosts took 1.1-1.2 s
 * instead of 0.2 s. Usually the first look finds all three up. Past the
 * limit the host starts anyway (its agent retries) and a warning says so. */
static void
host_links_wait(struct nl_sock *sk, struct nl_sock *nsk, const struct host_paths *hp,
		int eth0, int bridge_ifindex)
{
	int64_t t0 = mono_ms(), deadline = t0 + LINK_WAIT_MS;
	int looks = 1;

	while (!(link_ready(nsk, eth0, NULL, false) && link_ready(sk, 0, hp->veth, false) &&
		 link_ready(sk, bridge_ifindex, NULL, true))) {
		if (mono_ms() >= deadline) {
			log_warn("host '%s': its links are not up %d ms after it was set up; "
				 "starting it anyway", hp->host_id, LINK_WAIT_MS);
			return;
		}
		sleep_ms(1);
		looks++;
	}
	if (looks > 1)
		log_debug("host '%s': links up after %lld ms (%d looks)", hp->host_id,
			  (long long)(mono_ms() - t0), looks);
}

static void
instance_fill(struct prov_instance *out, const struct host_paths *hp, const char *state,
	      const char *ip, pid_t pid)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", hp->netns);
	snprintf(out->host_id, sizeof(out->host_id), "%s", hp->host_id);
	snprintf(out->state, sizeof(out->state), "%s", state);
	snprintf(out->private_ip, sizeof(out->private_ip), "%s", ip ? ip : "");
	out->pid = pid;
}

long
prov_local_neigh_hosts_left(long entries, long thresh3)
{
	long limit;

	if (entries < 0 || thresh3 <= 0)
		return -1;
	limit = thresh3 - thresh3 / 8;
	return entries >= limit ? 0 : (limit - entries) / NEIGH_PER_HOST;
}

int
prov_local_neigh_room(long entries, long thresh3, struct herr *err)
{
	long limit = thresh3 - thresh3 / 8;

	/* room, or unknown: the check never blocks what it cannot judge */
	if (prov_local_neigh_hosts_left(entries, thresh3) != 0)
		return 0;
	return herr_set(err, HERR_UNAVAIL,
			"the kernel's neighbour table holds %ld entries, for the whole machine; "
			"a local host takes %d more, and herd keeps it at most %ld (7/8 of "
			"net.ipv4.neigh.default.gc_thresh3 = %ld, past which no network "
			"namespace on this machine gets a new neighbour): raise gc_thresh2 and "
			"gc_thresh3 to run more local hosts", entries, NEIGH_PER_HOST, limit, thresh3);
}

/* The table's entries now (the first column of any line of the kernel's
 * counters: it is the table's, not a CPU's), or -1 when unreadable. */
static long
neigh_entries(void)
{
	char *text = file_read(NEIGH_STAT, 4096, NULL), *line, *end;
	long v = -1;

	if (text && (line = strchr(text, '\n')) != NULL) {
		v = strtol(line + 1, &end, 16);
		if (end == line + 1)
			v = -1;
	}
	free(text);
	return v;
}

/* The decimal number a small kernel file starts with, or -1 (absent, "max"). */
static long long
num_file_read(const char *path)
{
	char *text, *end;
	long long v;

	if ((text = file_read(path, 128, NULL)) == NULL)
		return -1;
	v = strtoll(text, &end, 10);
	if (end == text)
		v = -1;
	free(text);
	return v;
}

void
prov_local_neigh_read(long *entries, long *thresh3)
{
	long long t = num_file_read(NEIGH_THRESH3);

	*entries = neigh_entries();
	*thresh3 = t > LONG_MAX ? LONG_MAX : (long)t;
}

static int
launch_check(const struct host_spec *spec, const struct host_paths *hp, struct herr *err)
{
	const char *bin = spec->agent_bin;

	if (spec->state_dir && strcmp(spec->state_dir, hp->state_dir) != 0)
		return herr_set(err, HERR_INVALID,
				"state dir '%s' of host '%s' is not '%s', the one derived from its id",
				spec->state_dir, spec->id, hp->state_dir);
	if (!name_is_valid(spec->name))
		return herr_set(err, HERR_INVALID, "invalid host name '%s'",
				spec->name ? spec->name : "");
	if (!ipv4_is_valid(spec->private_ip))
		return herr_set(err, HERR_INVALID, "invalid private ip '%s' for host '%s'",
				spec->private_ip ? spec->private_ip : "", spec->id);
	if (bin == NULL || bin[0] != '/')
		return herr_set(err, HERR_INVALID, "agent binary '%s' is not an absolute path",
				bin ? bin : "");
	if (access(bin, X_OK) < 0)
		return herr_set(err, HERR_INVALID, "agent binary '%s' is not executable: %s", bin,
				strerror(errno));
	return 0;
}

static int
local_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
	     struct herr *err)
{
	static char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	static char env_home[] = "HOME=/root";
	static char *const envp[] = { env_path, env_home, NULL };
	struct host_paths hp;
	struct nl_sock *sk = NULL, *nsk = NULL;
	struct spawn s = { .ns_fd = -1, .cgroup_fd = { -1, -1, -1, -1 }, .report_fd = -1 };
	char bin_copy[PATH_MAX];
	struct herr undo = HERR_INIT;
	char bridge[IFNAMSIZ], text[80];
	char *argv[5];
	struct stat ns;
	int bridge_ifindex = 0, eth0 = 0, rc;
	long entries, thresh3;
	pid_t pid = 0;

	if ((rc = host_paths_init(p, spec->id, &hp, err)) < 0)
		return rc;
	if ((rc = net_check(spec->net, bridge, sizeof(bridge), err)) < 0 ||
	    (rc = launch_check(spec, &hp, err)) < 0)
		return rc;

	/* Idempotent: a live host is returned as it is ... */
	if (netns_stat(hp.netns_path, &ns) && (pid = host_init_pid(&hp, &ns)) > 0) {
		char *ip = file_read(hp.ip_path, 64, NULL);

		if (ip)
			ip[strcspn(ip, "\n")] = '\0';
		instance_fill(out, &hp, "running", ip ? ip : spec->private_ip, pid);
		free(ip);
		return 0;
	}
	/* ... and anything less is cleared and made anew, if the machine's
	 * neighbour table has room for one more host. */
	prov_local_neigh_read(&entries, &thresh3);
	if ((rc = prov_local_neigh_room(entries, thresh3, err)) < 0 ||
	    (rc = host_teardown(&hp, err)) < 0)
		return rc;

	if ((rc = mkdir_p(hp.state_dir, 0700)) == 0 && chmod(hp.state_dir, 0700) < 0)
		rc = -errno;
	if (rc < 0)
		return herr_set(err, rc, "cannot create state dir '%s': %s", hp.state_dir,
				strerror(-rc));
	if ((rc = mkdir_p(HOST_STATE_MNT, 0755)) < 0)
		return herr_set(err, rc, "cannot create '%s': %s", HOST_STATE_MNT, strerror(-rc));
	snprintf(text, sizeof(text), "%s\n", spec->private_ip);
	if ((rc = state_write(hp.ip_path, text)) < 0)
		return herr_set(err, rc, "cannot write '%s': %s", hp.ip_path, strerror(-rc));

	/* Network: the bridge (made again if the machine rebooted), the netns,
	 * the veth with its peer created directly inside as eth0, addresses. */
	if ((rc = netlink_open(&sk, err)) < 0)
		return rc;
	if ((rc = bridge_index(sk, spec->net, bridge, &bridge_ifindex, err)) < 0)
		goto out_close;
	if ((rc = netns_create(hp.netns_path, &s.ns_fd, err)) < 0)
		goto out_close;
	if ((rc = netlink_veth_create(sk, hp.veth, bridge_ifindex, "eth0", s.ns_fd, err)) < 0)
		goto out_undo;
	if ((rc = netlink_open_in_netns(s.ns_fd, &nsk, err)) < 0 ||
	    (rc = host_net_setup(nsk, spec, &eth0, err)) < 0)
		goto out_undo;

	/* Processes. */
	if ((rc = cgroup_setup(spec, &hp, s.cgroup_fd, err)) < 0)
		goto out_undo;
	argv[0] = (char *)spec->agent_bin;
	argv[1] = (char *)"agent";
	argv[2] = (char *)"--config";
	argv[3] = (char *)AGENT_CONFIG;
	argv[4] = NULL;
	s.hostname = spec->name;
	s.state_dir = hp.state_dir;
	s.mask_dir = mask_ok(p->data_dir) ? p->data_dir : NULL;
	s.log_path = hp.log_path;
	s.config = spec->user_data ? spec->user_data : "";
	s.config_len = strlen(s.config);
	if ((rc = agent_copy(p, spec->agent_bin, bin_copy, sizeof(bin_copy), err)) < 0)
		goto out_undo;
	s.agent_bin = bin_copy;
	s.agent_src = spec->agent_bin;
	s.argv = argv;
	s.envp = envp;
	host_links_wait(sk, nsk, &hp, eth0, bridge_ifindex);
	if ((rc = spawn_host(&s, &hp, &pid, err)) < 0)
		goto out_undo;
	instance_fill(out, &hp, "running", spec->private_ip, pid);
	log_info("host '%s' (%s) launched: netns '%s', pid %d, ip %s", spec->id, spec->name,
		 hp.netns, (int)pid, spec->private_ip);
	goto out_close;

out_undo:
	if (host_teardown(&hp, &undo) < 0)
		log_warn("host '%s': cleanup after failed launch: %s", spec->id, undo.msg);
out_close:
	cgroup_fds_close(s.cgroup_fd);
	if (s.ns_fd >= 0)
		close(s.ns_fd);
	netlink_close(&nsk);
	netlink_close(&sk);
	return rc;
}

static int
local_terminate(struct prov *p, const char *instance_id, const char *host_id,
		struct herr *err)
{
	struct host_paths hp;
	int rc;

	if ((rc = host_paths_init(p, host_id, &hp, err)) < 0)
		return rc;
	/* Never touch what another server (or anyone else) made. */
	if (instance_id && instance_id[0] && strcmp(instance_id, hp.netns) != 0)
		return herr_set(err, HERR_INVALID, "instance '%s' is not host '%s' of this server",
				instance_id, host_id);
	return host_teardown(&hp, err);
}

static int
local_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err)
{
	struct prov_instance *v = NULL;
	size_t len = 0, cap = 0, plen;
	char prefix[32];
	struct dirent *de;
	struct stat ns;
	int rc;
	DIR *d;

	*out = NULL;
	*n = 0;
	if ((rc = check_prov(p, err)) < 0)
		return rc;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "herd-%s-", p->instance);
	if ((d = opendir(NETNS_DIR)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return herr_set(err, -errno, "cannot read '%s': %s", NETNS_DIR, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		struct host_paths hp;
		char *ip;
		pid_t pid = 0;

		if (strncmp(de->d_name, prefix, plen) != 0 || !is_hex8(de->d_name + plen))
			continue;
		if (host_paths_init(p, de->d_name + plen, &hp, NULL) < 0)
			continue;
		if (netns_stat(hp.netns_path, &ns))
			pid = host_init_pid(&hp, &ns);
		if ((ip = file_read(hp.ip_path, 64, NULL)) != NULL)
			ip[strcspn(ip, "\n")] = '\0';
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		instance_fill(&v[len++], &hp, pid > 0 ? "running" : "stopped", ip, pid);
		free(ip);
	}
	closedir(d);
	*out = v;
	*n = len;
	return 0;
}

/* ---- sweep (no store) -------------------------------------------------- */

/* A bridge this driver names: "herd" and a network id (8 hex). */
static bool
bridge_is_ours(const char *name)
{
	return strncmp(name, "herd", 4) == 0 && is_hex8(name + 4);
}

struct bridges {
	char (*v)[IFNAMSIZ];
	size_t n, cap;
};

static void
bridges_add(struct bridges *b, const char *name)
{
	if (!bridge_is_ours(name))
		return;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i], name) == 0)
			return;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 8;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	snprintf(b->v[b->n++], IFNAMSIZ, "%s", name);
}

/* Calls fn with each name in dir that fits ok (a missing dir has none). */
static void
dir_each(const char *dir, bool (*ok)(const char *), void (*fn)(const char *, void *), void *arg)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (ok(de->d_name))
			fn(de->d_name, arg);
	closedir(d);
}

static void
bridges_add_fn(const char *name, void *arg)
{
	bridges_add(arg, name);
}

/* A state dir without its netns (a host half made or half removed): its
 * cgroup and state files. Not a veth of that name: without this
 * instance's netns it cannot be this data dir's (a launch makes the netns
 * first, a teardown removes it last). */
static void
sweep_state_dir(const char *host_id, void *arg)
{
	const struct prov *p = arg;
	struct host_paths hp;
	struct stat ns;

	if (host_paths_init(p, host_id, &hp, NULL) < 0 || netns_stat(hp.netns_path, &ns))
		return;
	cgroup_remove(&hp);
	unlink(hp.pid_path);
	unlink(hp.ip_path);
}

/* Removes bridge b when none but this data dir's hosts (gone by now) used
 * it; one with ports left is someone else's too: left, and said. */
static int
sweep_bridge(const struct prov *p, struct nl_sock *sk, const char *b, struct prov_sweep *out,
	     struct herr *err)
{
	struct herr e = HERR_INIT;
	int ports = netlink_link_ports(sk, b, &e);

	if (ports == -ENODEV) {
		net_unrecord(p, b);
		return 0;
	}
	if (ports == 0 && netlink_link_delete(sk, b, &e) == 0) {
		net_unrecord(p, b);
		out->networks++;
		return 0;
	}
	out->networks_left++;
	if (ports > 0)
		return herr_set(err, -EBUSY, "bridge '%s' still has %d port(s): left", b, ports);
	return herr_set(err, e.code, "%s", e.msg);
}

static int
local_sweep(struct prov *p, struct prov_sweep *out, struct herr *err)
{
	struct prov_instance *list = NULL;
	struct bridges br = { 0 };
	struct nl_sock *sk = NULL;
	char dir[PATH_MAX + 16];
	size_t n = 0;
	int rc, first = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = local_list(p, &list, &n, err)) < 0)
		return rc;
	if ((rc = netlink_open(&sk, err)) < 0) {
		free(list);
		return rc;
	}
	for (size_t k = 0; k < n; k++) {
		struct host_paths hp;
		struct herr e = HERR_INIT;
		char master[IFNAMSIZ];

		if (host_paths_init(p, list[k].host_id, &hp, NULL) < 0)
			continue;
		/* the bridge it is on: its network's, found without the store */
		if (netlink_link_master(sk, hp.veth, master, sizeof(master), NULL) == 0)
			bridges_add(&br, master);
		if (host_teardown(&hp, &e) == 0) {
			out->hosts++;
			continue;
		}
		out->hosts_left++;
		if (first++ == 0)
			herr_set(err, e.code, "%s", e.msg);
	}
	free(list);
	snprintf(dir, sizeof(dir), "%s/hosts", p->data_dir);
	dir_each(dir, is_hex8, sweep_state_dir, p);
	snprintf(dir, sizeof(dir), "%s/nets", p->data_dir);
	dir_each(dir, bridge_is_ours, bridges_add_fn, &br);
	for (size_t i = 0; i < br.n; i++) {
		struct herr e = HERR_INIT;

		if (sweep_bridge(p, sk, br.v[i], out, &e) < 0 && first++ == 0)
			herr_set(err, e.code, "%s", e.msg);
	}
	free(br.v);
	netlink_close(&sk);
	return first ? err->code : 0;
}

/* The number in a cgroup file (dir/file), or -1 ("max", absent). */
static long long
cgroup_read_num(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return num_file_read(path);
}

void
prov_local_cgroup_json(const char *instance_id, const char *host_id, json_t *o)
{
	char inst[32], sub[64], path[PATH_MAX];
	const char *dash;
	long long quota, period, mem;
	struct statfs sfs;
	size_t n;

	/* instance_id is "herd-<instance>-<hostid>" (host_paths_init) */
	if (instance_id == NULL || host_id == NULL || !is_hex8(host_id) ||
	    strncmp(instance_id, "herd-", 5) != 0 || (dash = strrchr(instance_id, '-')) == NULL ||
	    strcmp(dash + 1, host_id) != 0 || (n = (size_t)(dash - instance_id - 5)) == 0 ||
	    n >= sizeof(inst))
		return;
	memcpy(inst, instance_id + 5, n);
	inst[n] = '\0';
	if (!instance_is_valid(inst))
		return;
	snprintf(sub, sizeof(sub), "herd-%s/%s", inst, host_id);
	if (statfs(CGROUP_ROOT, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
		snprintf(path, sizeof(path), CGROUP_ROOT "/%s", sub);
		if (access(path, F_OK) < 0)
			return;
		json_object_set_new(o, "cgroup", json_string(path));
		/* cpu.max is "QUOTA PERIOD" or "max PERIOD" */
		{
			char *text, *p;
			char f[PATH_MAX + 16];

			snprintf(f, sizeof(f), "%s/cpu.max", path);
			quota = period = -1;
			if ((text = file_read(f, 128, NULL)) != NULL) {
				quota = strtoll(text, &p, 10);
				if (p == text)
					quota = -1;
				else
					period = strtoll(p, NULL, 10);
				free(text);
			}
		}
		mem = cgroup_read_num(path, "memory.max");
	} else {
		snprintf(path, sizeof(path), CGROUP_ROOT "/cpuacct/%s", sub);
		if (access(path, F_OK) < 0)
			return;
		json_object_set_new(o, "cgroup",
				    json_sprintf(CGROUP_ROOT "/{cpu,cpuacct,memory}/%s", sub));
		snprintf(path, sizeof(path), CGROUP_ROOT "/cpu/%s", sub);
		quota = cgroup_read_num(path, "cpu.cfs_quota_us");
		period = cgroup_read_num(path, "cpu.cfs_period_us");
		snprintf(path, sizeof(path), CGROUP_ROOT "/memory/%s", sub);
		mem = cgroup_read_num(path, "memory.limit_in_bytes");
		/* v1 says "none" with a huge number */
		if (mem >= (1LL << 50))
			mem = -1;
	}
	json_object_set_new(o, "limit_cpu_pct",
			    json_integer(quota > 0 && period > 0 ? quota * 100 / period : 0));
	json_object_set_new(o, "limit_memory_mb", json_integer(mem > 0 ? mem >> 20 : 0));
}

static long
local_hosts_left(char *why, size_t why_len)
{
	long entries, thresh3, left;

	prov_local_neigh_read(&entries, &thresh3);
	left = prov_local_neigh_hosts_left(entries, thresh3);
	if (left >= 0)
		snprintf(why, why_len,
			 "the kernel's neighbour table, for the whole machine, holds %ld entries "
			 "of the %ld herd allows (7/8 of net.ipv4.neigh.default.gc_thresh3 = "
			 "%ld), %d per local host", entries, thresh3 - thresh3 / 8, thresh3,
			 NEIGH_PER_HOST);
	return left;
}

/* Of struct host_spec, the local driver ignores image, instance_type, cpu,
 * memory_mb, keypair, security_group, client_token and tags (a host is
 * namespaces running this machine's herd binary; the host id in every name
 * is its tag and its idempotency key). It uses the limits
 * (mem_limit_bytes, cpu_limit_pct), state_dir, agent_bin and user_data.
 * Of struct prov_net_spec it ignores vxnet, router, eip and forwards: a
 * bridge on this machine has no router or public IP. */
const struct prov_ops prov_local_ops = {
	.name       = "local",
	.listens_on_gateway = true,   /* agents reach the server on the bridge */
	.open       = local_open,
	.net_create = local_net_create,
	.net_delete = local_net_delete,
	.launch     = local_launch,
	.terminate  = local_terminate,
	.list       = local_list,
	.sweep      = local_sweep,
	.hosts_left = local_hosts_left,
};
