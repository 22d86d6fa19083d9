/* log.c - see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static enum log_level log_level = LOG_INFO;
static const char *log_prefix = "herd";

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

void
log_set_prefix(const char *prefix)
{
	log_prefix = prefix;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (lvl < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ld %s[%s] %s\n", ts, now.tv_nsec / 1000000, log_prefix,
		names[lvl], line);
}
