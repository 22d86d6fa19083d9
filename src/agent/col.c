/* col.c - the collector table and what collectors share: adding series to
 * a batch, reading /proc files through kept file descriptors (one pread
 * each when the kernel builds the file whole), rates. Adding a collector =
 * a col-<name>.c with its col_<name>_ops + one line below. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/col.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

static const struct col_ops *const col_table[] = {
	&col_cpu_ops,
	&col_load_ops,
	&col_mem_ops,
	&col_disk_ops,
	&col_net_ops,
	&col_procs_ops,
	&col_uptime_ops,
	&col_cgroup_ops,
};

#define COL_COUNT (sizeof(col_table) / sizeof(col_table[0]))

static bool col_on[COL_COUNT];

int
col_init(void)
{
	int64_t now = mono_ms();
	int n = 0;

	for (size_t i = 0; i < COL_COUNT; i++) {
		int rc = col_table[i]->init(now);

		col_on[i] = rc == 0;
		if (rc < 0)
			log_warn("collector '%s' is off: %s", col_table[i]->name, strerror(-rc));
		else
			n++;
	}
	return n;
}

void
col_collect(struct col_batch *b, int64_t mono_ms)
{
	b->n = 0;
	b->overflow = 0;
	for (size_t i = 0; i < COL_COUNT; i++)
		if (col_on[i])
			col_table[i]->collect(b, mono_ms);
}

void
col_release(void)
{
	for (size_t i = 0; i < COL_COUNT; i++) {
		if (col_on[i])
			col_table[i]->release();
		col_on[i] = false;
	}
}

void
col_add(struct col_batch *b, const char *name, double value, const char *k1, const char *v1,
	const char *k2, const char *v2)
{
	struct col_series *s;

	if (b->n >= COL_MAX_SERIES || !isfinite(value)) {
		b->overflow++;
		return;
	}
	s = &b->series[b->n++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->value = value;
	if (k1 == NULL) {
		k1 = k2;
		v1 = v2;
		k2 = NULL;
	}
	s->label_key[0] = k1;
	s->label_val[0] = k1 ? v1 : NULL;
	s->label_key[1] = k2;
	s->label_val[1] = k2 ? v2 : NULL;
}

void
col_add_labels(struct col_batch *b, const char *name, double value, const char *const *keys,
	       const char *const *vals, size_t n)
{
	struct col_series *s;

	BUG_ON(n > COL_MAX_LABELS);
	if (b->n >= COL_MAX_SERIES || !isfinite(value)) {
		b->overflow++;
		return;
	}
	s = &b->series[b->n++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->value = value;
	for (size_t i = 0; i < n; i++) {
		s->label_key[i] = keys[i];
		s->label_val[i] = vals[i];
	}
}

int
col_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

ssize_t
col_read(int fd, char *buf, size_t bufsz)
{
	size_t len = 0;

	/* seq files hand out a page or so per read: go on until EOF or full */
	while (len + 1 < bufsz) {
		ssize_t n = pread(fd, buf + len, bufsz - 1 - len, (off_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

ssize_t
col_read_whole(int fd, char *buf, size_t bufsz)
{
	ssize_t n;

	do
		n = pread(fd, buf, bufsz - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		buf[0] = '\0';
		return -errno;
	}
	buf[n] = '\0';
	return n;
}

double
col_rate(uint64_t prev, uint64_t cur, int64_t dt_ms)
{
	if (dt_ms <= 0 || cur < prev)
		return -1;
	return (double)(cur - prev) * 1000.0 / (double)dt_ms;
}

double
col_round(double v, int decimals)
{
	static const double scale[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

	if (decimals < 0)
		decimals = 0;
	if (decimals > 6)
		decimals = 6;
	return round(v * scale[decimals]) / scale[decimals];
}

bool
col_parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*out = v;
	*p = s;
	return true;
}

bool
col_parse_fixed(const char **p, double *out)
{
	const char *s = *p;
	uint64_t k = 0;
	int digits = 0, decimals = -1;
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
		s++;
	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			k = k * 10 + (uint64_t)(*s - '0');
		if (*s == '.')
			for (s++, decimals = 0; *s >= '0' && *s <= '9' && decimals < 3; s++, decimals++)
				k = k * 10 + (uint64_t)(*s - '0');
		/* the fast path's own: <= 15 digits, <= 2 decimals, nothing after
		 * that strtod would read on (exponent, hex, more digits) */
		if (digits + (decimals > 0 ? decimals : 0) <= 15 && decimals <= 2 &&
		    !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      *s == '.')) {
			*out = decimals == 2 ? (double)k / 100.0 : decimals == 1 ? (double)k / 10.0
									     : (double)k;
			*p = s;
			return true;
		}
	}
	*out = strtod(*p, &end);
	if (end == *p)
		return false;
	*p = end;
	return true;
}
