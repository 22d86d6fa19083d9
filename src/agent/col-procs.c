/* col-procs.c - the number of processes: the numeric entries of /proc, read
 * with getdents64 on a directory fd kept open and rewound each cycle (no
 * opendir, no allocation). /proc is the host's own PID namespace's in a
 * local host, so the figure is the host's: scope="host". The rewind is to
 * where the process entries begin (offset 256, after /proc's ~60 fixed
 * entries, which the kernel would otherwise list every cycle) once a read
 * from there began with "self" as Linux's does; else to 0. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "agent/col.h"

static int procs_fd = -1;
static off_t procs_pos;             /* 0, or COL_PROCS_PID_POS */
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

bool
col_procs_at_pids(const char *buf, size_t len)
{
	const struct dirent64 *d = (const struct dirent64 *)(const void *)buf;
	size_t name = offsetof(struct dirent64, d_name);

	if (len < name + 5 || d->d_reclen < name + 5 || d->d_reclen > len)
		return false;
	return memcmp(d->d_name, "self", 5) == 0;
}

bool
col_procs_skipping(void)
{
	return procs_pos != 0;
}

/* Counts the processes reading from pos into *n: 0, -errno, or 1 when
 * check is set and the first record is not "self". */
static int
procs_count(off_t pos, bool check, size_t *n)
{
	ssize_t got;

	*n = 0;
	if (lseek(procs_fd, pos, SEEK_SET) < 0)
		return -errno;
	while ((got = getdents64(procs_fd, (void *)procs_buf, sizeof(procs_buf))) > 0) {
		if (check && !col_procs_at_pids(procs_buf, (size_t)got))
			return 1;
		check = false;
		*n += col_procs_count_dirents(procs_buf, (size_t)got);
	}
	return got < 0 ? -errno : 0;
}

static int
procs_init(int64_t mono_ms)
{
	size_t n;

	procs_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procs_fd < 0)
		return -errno;
	procs_pos = procs_count(COL_PROCS_PID_POS, true, &n) == 0 ? COL_PROCS_PID_POS : 0;
	return 0;
}

static void
procs_collect(struct col_batch *b, int64_t mono_ms)
{
	size_t n;
	int rc = procs_count(procs_pos, procs_pos != 0, &n);

	if (rc == 1) {
		procs_pos = 0;  /* not where it was: list it all from now on */
		rc = procs_count(0, false, &n);
	}
	if (rc != 0)
		return;
	col_add(b, "procs", (double)n, "scope", "host", NULL, NULL);
}

static void
procs_release(void)
{
	if (procs_fd >= 0)
		close(procs_fd);
	procs_fd = -1;
	procs_pos = 0;
}

const struct col_ops col_procs_ops = {
	.name = "procs",
	.init = procs_init,
	.collect = procs_collect,
	.release = procs_release,
};
