/*
 * inst.c - --instances netns: each running instance is a machine on this one.
 * Network namespace "fq<prefix>-<instance id>" with a veth to the VxNet's
 * bridge "fq<prefix>b<vxnet suffix>" (the router's manager_ip on the bridge,
 * the instance's private_ip inside, default route via the router), its own
 * UTS (hostname), PID and mount namespaces, and an overlay root
 * (lowerdir=/, upper in STATE_DIR/inst/<id>/upper) so what the user data
 * writes stays in the instance. `ip` runs through fork/exec with argv arrays;
 * no request value ever becomes shell text.
 *
 * User data as QingCloud's userdata guide (qingcloud-docs
 * content/compute/vm/manual/userdata.md) defines it: plain → the decoded
 * string in <userdata_path>/userdata.string; exec → the decoded script in
 * <userdata_file> (default /etc/rc.local), run at boot; metadata.json in
 * <userdata_path>. The instance's PID 1 is a minimal init that runs the
 * script as its child and reaps, as an image's init runs rc.local.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "fqc.h"

static int
run(const char *const argv[])
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

/* The id's part after "prefix-": instance/vxnet ids are short and unique. */
static const char *
suffix(const char *id)
{
	const char *d = strchr(id, '-');

	return d ? d + 1 : id;
}

void
inst_bridge_name(const struct fqc_config *cfg, const char *vxnet_id, char *out, size_t len)
{
	snprintf(out, len, "fq%sb%.8s", cfg->name_prefix, suffix(vxnet_id));
}

int
inst_bridge_ensure(const struct fqc_config *cfg, const char *vxnet_id, const char *gateway_cidr)
{
	char br[32];

	inst_bridge_name(cfg, vxnet_id, br, sizeof(br));
	{
		const char *show[] = { "ip", "link", "show", br, NULL };

		if (run(show) != 0) {
			const char *add[] = { "ip", "link", "add", br, "type", "bridge", NULL };

			if (run(add) != 0) {
				fprintf(stderr, "fake-qingcloud: cannot create bridge '%s'\n", br);
				return -1;
			}
		}
	}
	if (gateway_cidr != NULL) {
		const char *addr[] = { "ip", "addr", "replace", gateway_cidr, "dev", br, NULL };

		run(addr);
	}
	{
		const char *up[] = { "ip", "link", "set", br, "up", NULL };

		return run(up);
	}
}

int
inst_bridge_remove(const struct fqc_config *cfg, const char *vxnet_id)
{
	char br[32];
	const char *del[] = { "ip", "link", "del", br, NULL };

	inst_bridge_name(cfg, vxnet_id, br, sizeof(br));
	return run(del);
}

static int
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char dir[512];
	char *p;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = dir + 1; *p != '\0'; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	fchmod(fd, mode);
	return close(fd);
}

/* PID 1 of the instance: prepare the root, write the user data, run it, reap. */
static void
instance_init(const char *hostname, const char *upper, const char *work, const char *merged,
	      const char *udt, const char *udv, const char *udp, const char *udf, const char *md)
{
	unsigned char bin[4097];
	size_t bl = 0;
	char opts[2048], path[600], sub[700];
	sigset_t all;

	prctl(PR_SET_NAME, "init", 0, 0, 0);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    sethostname(hostname, strlen(hostname)) != 0)
		_exit(120);
	snprintf(opts, sizeof(opts), "lowerdir=/,upperdir=%s,workdir=%s", upper, work);
	if (mount("overlay", merged, "overlay", 0, opts) != 0)
		_exit(121);
	snprintf(sub, sizeof(sub), "%s/dev", merged);
	mount("/dev", sub, NULL, MS_BIND | MS_REC, NULL);
	if (chroot(merged) != 0 || chdir("/") != 0)
		_exit(122);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	snprintf(path, sizeof(path), "%s/metadata.json", udp);
	write_file(path, md, strlen(md), 0644);
	if (udt[0] != '\0' && sodium_base642bin(bin, sizeof(bin) - 1, udv, strlen(udv), "\n\r ",
						&bl, NULL, sodium_base64_VARIANT_ORIGINAL) == 0) {
		if (strcmp(udt, "plain") == 0) {
			snprintf(path, sizeof(path), "%s/userdata.string", udp);
			write_file(path, bin, bl, 0644);
		} else if (strcmp(udt, "exec") == 0 && write_file(udf, bin, bl, 0755) == 0) {
			pid_t c = fork();

			if (c == 0) {
				const char *argv[] = { udf, NULL };

				setsid();
				execv(udf, (char *const *)argv);
				_exit(127);
			}
		}
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (;;)
		if (wait(NULL) < 0 && errno == ECHILD)
			pause();
}

int
inst_start(const struct fqc_config *cfg, const char *id, const char *hostname,
	   const struct inst_net *net, const char *udt, const char *udv, const char *udp,
	   const char *udf, const char *md, int *pid_out)
{
	char ns[64], vh[32], vp[32], br[32], dir[1024], upper[1100], work[1100], merged[1100];
	char nspath[128], cidr[80];
	int p[2], fd, st;
	pid_t child, init_pid = 0;
	const char *nsadd[] = { "ip", "netns", "add", ns, NULL };
	const char *lo[] = { "ip", "-n", ns, "link", "set", "lo", "up", NULL };

	snprintf(ns, sizeof(ns), "fq%s-%s", cfg->name_prefix, id);
	snprintf(vh, sizeof(vh), "fq%sv%.8s", cfg->name_prefix, suffix(id));
	snprintf(vp, sizeof(vp), "fq%sp%.8s", cfg->name_prefix, suffix(id));
	snprintf(dir, sizeof(dir), "%s/inst", cfg->state_dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/inst/%s", cfg->state_dir, id);
	mkdir(dir, 0700);
	snprintf(upper, sizeof(upper), "%s/upper", dir);
	snprintf(work, sizeof(work), "%s/work", dir);
	snprintf(merged, sizeof(merged), "%s/merged", dir);
	mkdir(upper, 0755);
	mkdir(work, 0700);
	mkdir(merged, 0755);
	if (run(nsadd) != 0 || run(lo) != 0) {
		fprintf(stderr, "fake-qingcloud: cannot create netns '%s'\n", ns);
		return -1;
	}
	if (net->vxnet_id != NULL) {
		const char *veth[] = { "ip",   "link", "add", vh,      "type", "veth",
				       "peer", "name", vp,    "netns", ns,     NULL };
		const char *master[] = { "ip", "link", "set", vh, "master", br, "up", NULL };
		const char *ren[] = { "ip", "-n", ns, "link", "set", vp, "name", "eth0", NULL };
		const char *up[] = { "ip", "-n", ns, "link", "set", "eth0", "up", NULL };

		inst_bridge_name(cfg, net->vxnet_id, br, sizeof(br));
		if (run(veth) != 0 || run(master) != 0 || run(ren) != 0 || run(up) != 0)
			fprintf(stderr, "fake-qingcloud: cannot wire '%s' to '%s'\n", ns, br);
		if (net->private_ip != NULL && net->private_ip[0] != '\0' && net->ip_network) {
			const char *plen = strchr(net->ip_network, '/');
			const char *addr[] = { "ip", "-n",  ns,     "addr", "add",
					       cidr, "dev", "eth0", NULL };
			const char *route[] = { "ip",  "-n",      ns,    "route",
						"add", "default", "via", net->gateway_ip,
						NULL };

			snprintf(cidr, sizeof(cidr), "%s%s", net->private_ip, plen ? plen : "/24");
			run(addr);
			run(route);
		}
	}
	snprintf(nspath, sizeof(nspath), "/run/netns/%s", ns);
	if (pipe(p) != 0)
		return -1;
	child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		pid_t g;

		close(p[0]);
		fd = open(nspath, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWNET) != 0 ||
		    unshare(CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWPID) != 0)
			_exit(1);
		g = fork();
		if (g == 0) {
			close(p[1]);
			instance_init(hostname, upper, work, merged, udt, udv, udp, udf, md);
			_exit(0);
		}
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(g > 0 ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &init_pid, sizeof(init_pid)) != sizeof(init_pid))
		init_pid = 0;
	close(p[0]);
	waitpid(child, &st, 0);
	if (init_pid <= 0) {
		fprintf(stderr, "fake-qingcloud: cannot start instance '%s'\n", id);
		return -1;
	}
	*pid_out = init_pid;
	return 0;
}

int
inst_stop(const struct fqc_config *cfg, const char *id, int pid)
{
	char ns[64], vh[32];
	const char *del[] = { "ip", "netns", "del", ns, NULL };
	const char *vdel[] = { "ip", "link", "del", vh, NULL };
	int rc;

	snprintf(ns, sizeof(ns), "fq%s-%s", cfg->name_prefix, id);
	snprintf(vh, sizeof(vh), "fq%sv%.8s", cfg->name_prefix, suffix(id));
	if (pid > 0) {
		/*
		 * SIGKILL to a PID namespace's init kills every process in it. The
		 * fake is the child subreaper of the inits (main.c), so it reaps them.
		 */
		if (kill(pid, SIGKILL) == 0)
			waitpid(pid, NULL, 0);
	}
	/* the veth goes with the namespace, but only once nothing holds the
	 * namespace: its host end is removed as well (no error if gone). Both
	 * are named from the id alone, so an instance whose start failed half
	 * way (no pid) is cleaned up just the same. */
	rc = run(del);
	run(vdel);
	return rc;
}
