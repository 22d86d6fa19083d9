/* col-disk.c - used/free bytes and used % per real mounted filesystem, by
 * statvfs. The mount list comes from /proc/self/mountinfo, parsed again only
 * when poll(2) on the kept fd says the mount table changed. Filesystems are
 * the machine's (a local host shares them): scope="machine". */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/col.h"
#include "log.h"

static int disk_fd = -1;
static char disk_text[65536];
static struct col_mount disk_mounts[COL_DISK_MAX];
static int disk_n;
static bool disk_big_logged;

/* Pseudo, network and image filesystems, sorted for bsearch. Network ones
 * are out because statvfs on a dead server blocks the collection. */
static const char *const disk_skip_fs[] = {
	"9p", "afs", "autofs", "binfmt_misc", "bpf", "ceph", "cgroup", "cgroup2", "cifs",
	"configfs", "debugfs", "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse",
	"fuse.lxcfs", "fuse.portal", "fuse.sshfs", "fusectl", "glusterfs", "hugetlbfs",
	"iso9660", "lustre", "mqueue", "ncpfs", "nfs", "nfs4", "nfsd", "nsfs", "proc",
	"pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "smb3", "smbfs",
	"squashfs", "sysfs", "tmpfs", "tracefs",
};

/* Mount points under these are never disks of the host. */
static const char *const disk_skip_dirs[] = {
	"/proc", "/sys", "/dev", "/run/credentials/", "/var/lib/docker/",
	"/var/lib/containers/storage/", "/var/lib/kubelet/pods/",
};

static int
disk_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool
col_disk_fs_is_real(const char *fstype)
{
	return bsearch(&fstype, disk_skip_fs, sizeof(disk_skip_fs) / sizeof(disk_skip_fs[0]),
		       sizeof(disk_skip_fs[0]), disk_cmp) == NULL;
}

static bool
disk_dir_skipped(const char *mount)
{
	for (size_t i = 0; i < sizeof(disk_skip_dirs) / sizeof(disk_skip_dirs[0]); i++) {
		const char *d = disk_skip_dirs[i];
		size_t n = strlen(d);

		if (d[n - 1] == '/' ? strncmp(mount, d, n) == 0
				    : strncmp(mount, d, n) == 0 && (mount[n] == '\0' || mount[n] == '/'))
			return true;
	}
	return false;
}

/* Copies the space-terminated field at *p into out, undoing the kernel's
 * octal escapes (\040 for a space, ...). Returns false if it does not fit. */
static bool
disk_field(const char **p, char *out, size_t outsz)
{
	const char *s = *p;
	size_t n = 0;
	bool fits = true;

	while (*s && *s != ' ' && *s != '\n') {
		char c = *s++;

		if (c == '\\' && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
		    s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (n + 1 < outsz)
			out[n++] = c;
		else
			fits = false;
	}
	out[n] = '\0';
	if (*s == ' ')
		s++;
	*p = s;
	return fits;
}

static void
disk_skip_field(const char **p)
{
	const char *s = *p;

	while (*s && *s != ' ' && *s != '\n')
		s++;
	if (*s == ' ')
		s++;
	*p = s;
}

int
col_disk_parse(const char *text, struct col_mount *out, size_t max)
{
	const char *line = text;
	bool root_of[COL_DISK_MAX];     /* entry i is its filesystem's root, not a bind mount */
	size_t n = 0;

	while (line && *line) {
		const char *p = line, *nl = strchr(line, '\n');
		struct col_mount m;
		char root[8];
		uint64_t maj, min;
		bool fits, is_root;
		size_t i;

		line = nl ? nl + 1 : NULL;
		disk_skip_field(&p);    /* mount id */
		disk_skip_field(&p);    /* parent id */
		if (!col_parse_u64(&p, &maj) || *p++ != ':' || !col_parse_u64(&p, &min) || *p++ != ' ')
			continue;
		is_root = disk_field(&p, root, sizeof(root)) && strcmp(root, "/") == 0;
		fits = disk_field(&p, m.mount, sizeof(m.mount));
		disk_skip_field(&p);    /* mount options */
		while (*p && *p != '\n' && !(p[0] == '-' && p[1] == ' '))
			disk_skip_field(&p);    /* optional fields: shared:N, master:N, ... */
		if (p[0] != '-')
			continue;
		p += 2;
		if (!disk_field(&p, m.fstype, sizeof(m.fstype)) || !fits || m.mount[0] != '/')
			continue;
		if (!col_disk_fs_is_real(m.fstype) || disk_dir_skipped(m.mount))
			continue;
		m.dev_major = (unsigned)maj;
		m.dev_minor = (unsigned)min;
		for (i = 0; i < n; i++)
			if (out[i].dev_major == m.dev_major && out[i].dev_minor == m.dev_minor)
				break;
		if (i < n) {
			/* seen: a bind mount, or the same filesystem twice. Keep the
			 * mount of its root over a bind mount of a directory in it. */
			if (is_root && !root_of[i]) {
				out[i] = m;
				root_of[i] = true;
			}
			continue;
		}
		if (n >= max || n >= COL_DISK_MAX)
			continue;
		out[n] = m;
		root_of[n] = is_root;
		n++;
	}
	return (int)n;
}

static void
disk_refresh(void)
{
	ssize_t len = col_read(disk_fd, disk_text, sizeof(disk_text));

	if (len < 0)
		return;
	if ((size_t)len + 1 >= sizeof(disk_text) && !disk_big_logged) {
		log_warn("mount table larger than %zu bytes: later mounts are not reported",
			 sizeof(disk_text));
		disk_big_logged = true;
	}
	disk_n = col_disk_parse(disk_text, disk_mounts, COL_DISK_MAX);
}

static int
disk_init(int64_t mono_ms)
{
	disk_fd = col_open("/proc/self/mountinfo");
	if (disk_fd < 0)
		return disk_fd;
	disk_refresh();
	return 0;
}

static void
disk_collect(struct col_batch *b, int64_t mono_ms)
{
	struct pollfd pfd = { .fd = disk_fd, .events = POLLPRI };

	/* POLLPRI|POLLERR once the mount table changed since the last poll */
	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR)))
		disk_refresh();
	for (int i = 0; i < disk_n; i++) {
		const char *mnt = disk_mounts[i].mount;
		struct statvfs v;
		double used, avail;

		if (statvfs(mnt, &v) < 0 || v.f_blocks == 0)
			continue;
		used = (double)(v.f_blocks - v.f_bfree) * (double)v.f_frsize;
		avail = (double)v.f_bavail * (double)v.f_frsize;
		col_add(b, "disk_used_bytes", used, "scope", "machine", "mount", mnt);
		col_add(b, "disk_free_bytes", avail, "scope", "machine", "mount", mnt);
		/* as df: of what an unprivileged user could use at most */
		col_add(b, "disk_used_pct",
			used + avail > 0 ? col_round(100.0 * used / (used + avail), 2) : 0, "scope",
			"machine", "mount", mnt);
	}
}

static void
disk_release(void)
{
	if (disk_fd >= 0)
		close(disk_fd);
	disk_fd = -1;
	disk_n = 0;
}

const struct col_ops col_disk_ops = {
	.name = "disk",
	.init = disk_init,
	.collect = disk_collect,
	.release = disk_release,
};
