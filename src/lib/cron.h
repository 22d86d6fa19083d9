/* cron.h - 5-field cron schedules for scheduled scaling actions
 * (`schedule: "0 9 * * 1-5"`), evaluated in an IANA time zone read straight
 * from the system's TZif files, so no process-wide TZ state is touched and
 * every function here is thread-safe. */
#ifndef HERD_CRON_H
#define HERD_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "herr.h"

struct cron {
	uint64_t minutes;  /* bit m: minute m (0-59) matches */
	uint32_t hours;    /* bit h: hour h (0-23) */
	uint32_t mdays;    /* bit d: day of month d (1-31) */
	uint16_t months;   /* bit m: month m (1-12) */
	uint8_t wdays;     /* bit w: day of week w (0-6, 0 = Sunday) */
	bool mdays_star;   /* the day-of-month field started with '*' */
	bool wdays_star;   /* the day-of-week field started with '*' */
};

#define CRON_HORIZON_DAYS (5 * 366) /* cron_next() looks this far ahead */

/* Parses "minute hour day-of-month month day-of-week", fields separated by
 * blanks. Each field is a comma list of `*`, `N`, `N-M`, each optionally
 * with `/STEP` (`*\/15`, `1-30/5`; `N/STEP` means N to the field's end).
 * Months take jan..dec and days of week sun..sat (any case); 0 and 7 are
 * both Sunday, and a range may end at 7 or sun (`fri-sun`). Also @hourly,
 * @daily, @midnight, @weekly, @monthly, @yearly, @annually.
 * Day rule (Vixie cron's): when both day fields are restricted, a day
 * matching either one matches; a field that starts with '*' (even `*\/2`)
 * is not restricted, and then both must match.
 * Returns 0 and fills *out, or HERR_INVALID (leaving *out alone) with a
 * message giving the 1-based column: "hour 24 out of range 0-23 at column 3". */
int cron_parse(const char *s, struct cron *out, struct herr *err);

/* Checks that tz (an IANA name such as "Asia/Shanghai"; NULL, "" and "UTC"
 * mean UTC) names a readable zone under $TZDIR or /usr/share/zoneinfo.
 * Returns 0, or HERR_INVALID "unknown time zone 'Mars/Base'". */
int cron_tz_check(const char *tz, struct herr *err);

/* The first minute strictly after after_ms (ms since the epoch) at which
 * c matches the wall clock of zone tz, as ms since the epoch in *next_ms.
 * Daylight saving time: a local time that does not exist (the hour skipped
 * in spring) never fires; a local time that happens twice (the hour repeated
 * in autumn) fires once, at its first occurrence - unless the hour field
 * matches every hour, in which case the schedule follows real time and
 * fires in both passes (so `*\/15 * * * *` keeps firing every 15 minutes).
 * Errors: HERR_INVALID for an unknown zone or after_ms outside years
 * 1-9990, HERR_NOTFOUND "schedule never matches in the next 5 years"
 * (`0 0 31 2 *`); err may be NULL. */
int cron_next(const struct cron *c, int64_t after_ms, const char *tz, int64_t *next_ms,
	      struct herr *err);

#endif
