/* col-uptime.c - seconds since the machine booted, /proc/uptime. Machine-
 * wide: a local host shares the kernel (no time namespace). */
#include <stdlib.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"

static int uptime_fd = -1;
static char uptime_text[128];

int
col_uptime_parse(const char *text, double *uptime_s)
{
	const char *p = text;

	if (!col_parse_fixed(&p, uptime_s) || *uptime_s < 0)
		return HERR_INVALID;
	return 0;
}

static int
uptime_init(int64_t mono_ms)
{
	uptime_fd = col_open("/proc/uptime");
	return uptime_fd < 0 ? uptime_fd : 0;
}

static void
uptime_collect(struct col_batch *b, int64_t mono_ms)
{
	double s;

	if (col_read_whole(uptime_fd, uptime_text, sizeof(uptime_text)) < 0 ||
	    col_uptime_parse(uptime_text, &s) < 0)
		return;
	/* whole seconds: the integer-friendly value compresses to almost nothing */
	col_add(b, "uptime_s", col_round(s, 0), "scope", "machine", NULL, NULL);
}

static void
uptime_release(void)
{
	if (uptime_fd >= 0)
		close(uptime_fd);
	uptime_fd = -1;
}

const struct col_ops col_uptime_ops = {
	.name = "uptime",
	.init = uptime_init,
	.collect = uptime_collect,
	.release = uptime_release,
};
