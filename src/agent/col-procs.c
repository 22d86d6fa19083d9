/* col-procs.c - the number of processes: the numeric entries of /proc, read
 * with getdents64 on a directory fd kept open and rewound each cycle (no
 * opendir, no allocation). /proc is the host's own PID namespace's in a
 * local host, so the figure is the host's: scope="host". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "agent/col.h"

static int procs_fd = -1;
static char procs_buf[32768] __attribute__((aligned(8)));   /* dirent64 records */

size_t
col_procs_count_dirents(const char *buf, size_t len)
{
	size_t n = 0, off = 0;

	while (off + offsetof(struct dirent64, d_name) < len) {
		const struct dirent64 *d = (const struct dirent64 *)(const void *)(buf + off);
		const char *p = d->d_name;

		if (d->d_reclen == 0 || off + d->d_reclen > len)
			break;
		if (*p >= '1' && *p <= '9') {
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p == '\0')
				n++;
		}
		off += d->d_reclen;
	}
	return n;
}

static int
procs_init(int64_t mono_ms)
{
	procs_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return procs_fd < 0 ? -errno : 0;
}

static void
procs_collect(struct col_batch *b, int64_t mono_ms)
{
	size_t n = 0;
	ssize_t got;

	if (lseek(procs_fd, 0, SEEK_SET) < 0)
		return;
	while ((got = getdents64(procs_fd, (void *)procs_buf, sizeof(procs_buf))) > 0)
		n += col_procs_count_dirents(procs_buf, (size_t)got);
	if (got < 0)
		return;
	col_add(b, "procs", (double)n, "scope", "host", NULL, NULL);
}

static void
procs_release(void)
{
	if (procs_fd >= 0)
		close(procs_fd);
	procs_fd = -1;
}

const struct col_ops col_procs_ops = {
	.name = "procs",
	.init = procs_init,
	.collect = procs_collect,
	.release = procs_release,
};
