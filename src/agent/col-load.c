/* col-load.c - load averages (1, 5, 15 min), machine-wide, /proc/loadavg. */
#include <stdlib.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"

static int load_fd = -1;
static char load_text[128];

int
col_load_parse(const char *text, double load[3])
{
	const char *p = text;

	for (int i = 0; i < 3; i++)
		if (!col_parse_fixed(&p, &load[i]) || load[i] < 0)
			return HERR_INVALID;
	return 0;
}

static int
load_init(int64_t mono_ms)
{
	load_fd = col_open("/proc/loadavg");
	return load_fd < 0 ? load_fd : 0;
}

static void
load_collect(struct col_batch *b, int64_t mono_ms)
{
	double load[3];

	if (col_read_whole(load_fd, load_text, sizeof(load_text)) < 0 ||
	    col_load_parse(load_text, load) < 0)
		return;
	col_add(b, "load1", load[0], "scope", "machine", NULL, NULL);
	col_add(b, "load5", load[1], "scope", "machine", NULL, NULL);
	col_add(b, "load15", load[2], "scope", "machine", NULL, NULL);
}

static void
load_release(void)
{
	if (load_fd >= 0)
		close(load_fd);
	load_fd = -1;
}

const struct col_ops col_load_ops = {
	.name = "load",
	.init = load_init,
	.collect = load_collect,
	.release = load_release,
};
