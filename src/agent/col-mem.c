/* col-mem.c - memory total / available / used, machine-wide (a local host
 * sees the machine's /proc/meminfo; cgroup limits are not applied). */
#include <string.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"

static int mem_fd = -1;
static char mem_text[4096];   /* MemTotal..Cached are in the first lines */

/* The kB value of line "key:" in text, or false. */
static bool
mem_field(const char *text, const char *key, uint64_t *kb)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			p += klen + 1;
			return col_parse_u64(&p, kb);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

int
col_mem_parse(const char *text, struct col_mem *m)
{
	uint64_t total, avail, free_kb, buffers = 0, cached = 0;

	memset(m, 0, sizeof(*m));
	if (!mem_field(text, "MemTotal", &total) || total == 0)
		return HERR_INVALID;
	if (!mem_field(text, "MemAvailable", &avail)) {
		/* before Linux 3.14: the classic estimate */
		if (!mem_field(text, "MemFree", &free_kb))
			return HERR_INVALID;
		mem_field(text, "Buffers", &buffers);
		mem_field(text, "Cached", &cached);
		avail = free_kb + buffers + cached;
	}
	if (avail > total)
		avail = total;
	m->total_bytes = total * 1024;
	m->available_bytes = avail * 1024;
	return 0;
}

static int
mem_init(int64_t mono_ms)
{
	mem_fd = col_open("/proc/meminfo");
	return mem_fd < 0 ? mem_fd : 0;
}

static void
mem_collect(struct col_batch *b, int64_t mono_ms)
{
	struct col_mem m;
	uint64_t used;

	if (col_read_whole(mem_fd, mem_text, sizeof(mem_text)) < 0 || col_mem_parse(mem_text, &m) < 0)
		return;
	used = m.total_bytes - m.available_bytes;
	col_add(b, "mem_total_bytes", (double)m.total_bytes, "scope", "machine", NULL, NULL);
	col_add(b, "mem_available_bytes", (double)m.available_bytes, "scope", "machine", NULL, NULL);
	col_add(b, "mem_used_bytes", (double)used, "scope", "machine", NULL, NULL);
	col_add(b, "mem_used_pct", col_round(100.0 * (double)used / (double)m.total_bytes, 2),
		"scope", "machine", NULL, NULL);
}

static void
mem_release(void)
{
	if (mem_fd >= 0)
		close(mem_fd);
	mem_fd = -1;
}

const struct col_ops col_mem_ops = {
	.name = "mem",
	.init = mem_init,
	.collect = mem_collect,
	.release = mem_release,
};
