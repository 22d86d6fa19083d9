/* fuzz-cron.c - libFuzzer target for cron_parse() and cron_next(). Input:
 * the schedule, then optionally '\n', 8 bytes of after_ms and a byte picking
 * the zone (top bit: after_ms raw, else folded into 1900-2200). Checks that
 * the next time is after after_ms, on a minute of the schedule (in UTC), and
 * that asking again just before it gives it again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const zones[] = {
	NULL, "Europe/Berlin", "Australia/Lord_Howe", "America/New_York", "Asia/Shanghai",
	"Pacific/Chatham", "Nope/Nope",
};

static void
check_utc(const struct cron *c, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	bool md, wd;

	gmtime_r(&t, &tm);
	md = c->mdays >> tm.tm_mday & 1;
	wd = c->wdays >> tm.tm_wday & 1;
	if (ms % 60000 != 0 || tm.tm_sec != 0 || !(c->minutes >> tm.tm_min & 1) ||
	    !(c->hours >> tm.tm_hour & 1) || !(c->months >> (tm.tm_mon + 1) & 1) ||
	    !((c->mdays_star || c->wdays_star) ? md && wd : md || wd)) {
		fprintf(stderr, "%lld does not match\n", (long long)ms);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct herr err = HERR_INIT;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t slen = nl ? (size_t)(nl - data) : size;
	char *s = malloc(slen + 1);
	int64_t after = 1700000000000LL, next, again;
	const char *tz = NULL;
	struct cron c;
	int rc;

	memcpy(s, data, slen);
	s[slen] = '\0';
	if (nl != NULL && size - slen - 1 >= 9) {
		uint64_t raw;

		memcpy(&raw, nl + 1, 8);
		tz = zones[(nl[9] & 0x7f) % (sizeof(zones) / sizeof(zones[0]))];
		/* mostly 1900..2200; with the top bit of the zone byte, raw */
		if (nl[9] & 0x80)
			after = (int64_t)raw;
		else
			after = -2208988800000LL + (int64_t)(raw % (300 * 36525ULL * 864000));
	}
	rc = cron_parse(s, &c, &err);
	free(s);
	if (rc < 0) {
		if (rc != HERR_INVALID || err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (c.minutes == 0 || c.hours == 0 || c.mdays == 0 || c.months == 0 || c.wdays == 0)
		abort();
	rc = cron_next(&c, after, tz, &next, &err);
	if (rc < 0) {
		if (err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (next <= after)
		abort();
	if (tz == NULL)
		check_utc(&c, next);
	if (next >= 253086508800000LL)
		return 0;   /* past the range cron_next() accepts */
	if (cron_next(&c, next - 1, tz, &again, &err) != 0 || again != next) {
		fprintf(stderr, "next after %lld is %lld, but after %lld it is %lld\n",
			(long long)after, (long long)next, (long long)next - 1, (long long)again);
		abort();
	}
	return 0;
}
