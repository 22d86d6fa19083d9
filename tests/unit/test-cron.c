/* test-cron.c - cron parsing (fields, names, errors with columns) and
 * cron_next() across month and year ends, the day-of-month/day-of-week rule,
 * time zones and DST, checked also against glibc's localtime by brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cron.h"

/* "2024-03-31 02:30" in UTC -> ms */
static int64_t
utc_ms(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (strptime(s, "%Y-%m-%d %H:%M:%S", &tm) == NULL &&
	    strptime(s, "%Y-%m-%d %H:%M", &tm) == NULL)
		fail_msg("bad time '%s'", s);
	return (int64_t)timegm(&tm) * 1000;
}

static const char *
utc_text(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static struct cron
parse_ok(const char *s)
{
	struct herr err = HERR_INIT;
	struct cron c;

	if (cron_parse(s, &c, &err) != 0)
		fail_msg("'%s': %s", s, err.msg);
	return c;
}

static void
expect_err(const char *s, const char *msg)
{
	struct herr err = HERR_INIT;
	struct cron c;

	if (cron_parse(s, &c, &err) != HERR_INVALID)
		fail_msg("'%s' parsed", s);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("'%s': got \"%s\", want \"%s\"", s, err.msg, msg);
}

/* Checks a sequence of firings in UTC, given as "YYYY-MM-DD HH:MM" each. */
static void
expect_next(const char *sched, const char *tz, const char *after, int n, ...)
{
	struct herr err = HERR_INIT;
	struct cron c = parse_ok(sched);
	int64_t t = utc_ms(after), next;
	char got[32], at[32];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);

		if (cron_next(&c, t, tz, &next, &err) != 0)
			fail_msg("'%s' in %s after %s: %s", sched, tz ? tz : "UTC",
				 utc_text(t, at, sizeof(at)), err.msg);
		if (next != utc_ms(want))
			fail_msg("'%s' in %s after %s: got %s, want %s", sched, tz ? tz : "UTC",
				 utc_text(t, at, sizeof(at)), utc_text(next, got, sizeof(got)),
				 want);
		t = next;
	}
	va_end(ap);
}

static void
test_parse_fields(void **state)
{
	struct cron c;

	(void)state;
	c = parse_ok("* * * * *");
	assert_true(c.minutes == (1ULL << 60) - 1);
	assert_int_equal(c.hours, 0xffffff);
	assert_int_equal(c.mdays, 0xfffffffe);
	assert_int_equal(c.months, 0x1ffe);
	assert_int_equal(c.wdays, 0x7f);
	assert_true(c.mdays_star && c.wdays_star);

	c = parse_ok("0,15,30,45 9-17 1 jan-MAR,Dec mon-fri");
	assert_true(c.minutes == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
	assert_int_equal(c.hours, 0x3fe00);
	assert_int_equal(c.mdays, 1 << 1);
	assert_int_equal(c.months, 1 << 1 | 1 << 2 | 1 << 3 | 1 << 12);
	assert_int_equal(c.wdays, 0x3e);
	assert_false(c.mdays_star || c.wdays_star);

	c = parse_ok("*/15 */6 1-30/5 */4 7");
	assert_true(c.minutes == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
	assert_int_equal(c.hours, 1 << 0 | 1 << 6 | 1 << 12 | 1 << 18);
	assert_int_equal(c.mdays, 1 << 1 | 1 << 6 | 1 << 11 | 1 << 16 | 1 << 21 | 1 << 26);
	assert_int_equal(c.months, 1 << 1 | 1 << 5 | 1 << 9);
	assert_int_equal(c.wdays, 1);
	assert_true(c.mdays_star == false && c.wdays_star == false);

	c = parse_ok("  5/20\t23 */2 * fri-sun  ");
	assert_true(c.minutes == (1ULL << 5 | 1ULL << 25 | 1ULL << 45));
	assert_int_equal(c.hours, 1 << 23);
	assert_true(c.mdays_star);
	assert_int_equal(c.wdays, 1 << 5 | 1 << 6 | 1 << 0);

	c = parse_ok("0 0 * * 0-7");
	assert_int_equal(c.wdays, 0x7f);
	c = parse_ok("0 0 * * 5-7");
	assert_int_equal(c.wdays, 1 << 5 | 1 << 6 | 1 << 0);
	c = parse_ok("0 0 * * SUN,sat");
	assert_int_equal(c.wdays, 1 << 0 | 1 << 6);
	c = parse_ok("59 23 31 12 *");
	assert_true(c.minutes == 1ULL << 59);
	c = parse_ok("0 0 * * 7/5");
	assert_int_equal(c.wdays, 1);
	c = parse_ok("0 0 * * mon/2");
	assert_int_equal(c.wdays, 1 << 1 | 1 << 3 | 1 << 5);
	c = parse_ok("0 0 * * */3");
	assert_int_equal(c.wdays, 1 << 0 | 1 << 3 | 1 << 6);

	c = parse_ok("@daily");
	assert_true(c.minutes == 1 && c.hours == 1 && c.mdays_star && c.wdays_star);
	c = parse_ok(" @Weekly ");
	assert_int_equal(c.wdays, 1);
	assert_false(c.wdays_star);
	c = parse_ok("@hourly");
	assert_int_equal(c.hours, 0xffffff);
	c = parse_ok("@yearly");
	assert_int_equal(c.months, 1 << 1);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	expect_err("", "expected minute field at column 1 (a schedule has 5 fields)");
	expect_err("0 9 * *", "expected day of week field at column 8 (a schedule has 5 fields)");
	expect_err("0 9 * * 1-5 x", "unexpected sixth field at column 13 (a schedule has 5 fields)");
	expect_err("60 * * * *", "minute 60 out of range 0-59 at column 1");
	expect_err("0 24 * * *", "hour 24 out of range 0-23 at column 3");
	expect_err("0 0 0 * *", "day of month 0 out of range 1-31 at column 5");
	expect_err("0 0 32 * *", "day of month 32 out of range 1-31 at column 5");
	expect_err("0 0 * 13 *", "month 13 out of range 1-12 at column 7");
	expect_err("0 0 * * 8", "day of week 8 out of range 0-7 at column 9");
	expect_err("0 0 * * 99999999999999999999",
		   "day of week 99999999999999999999 out of range 0-7 at column 9");
	expect_err("0 0 * foo *", "unknown month name 'foo' at column 7");
	expect_err("0 0 * * monday", "unknown day of week name 'monday' at column 9");
	expect_err("0 0 jan * *", "unexpected 'j' in day of month field at column 5");
	expect_err("5-1 * * * *", "minute range 5-1 goes backwards at column 3");
	expect_err("0 0 * * sat-mon", "day of week range sat-mon goes backwards at column 13");
	expect_err("*/0 * * * *", "step 0 out of range 1-59 at column 3");
	expect_err("*/60 * * * *", "step 60 out of range 1-59 at column 3");
	expect_err("*/ * * * *", "expected step at column 3");
	expect_err("1,,2 * * * *", "expected number for minute at column 3");
	expect_err("1, * * * *", "expected number for minute at column 3");
	expect_err("1- * * * *", "expected number for minute at column 3");
	expect_err("0 0 * - *", "expected number or name for month at column 7");
	expect_err("** * * * *", "unexpected '*' in minute field at column 2");
	expect_err("0 0 L * *", "unexpected 'L' in day of month field at column 5");
	expect_err("0 0 ? * *", "unexpected '?' in day of month field at column 5");
	expect_err("0 0 * * 1#2", "unexpected '#' in day of week field at column 10");
	expect_err("0\x01 0 * * *", "unexpected byte 0x01 in minute field at column 2");
	expect_err("@reboot", "unknown schedule '@reboot' at column 1");
	expect_err("@daily 0", "unexpected text after '@daily' at column 8");
}

static void
test_next_utc(void **state)
{
	(void)state;
	/* strictly after: a time that matches itself moves on */
	expect_next("* * * * *", NULL, "2024-05-01 10:00:00", 2, "2024-05-01 10:01",
		    "2024-05-01 10:02");
	expect_next("* * * * *", "UTC", "2024-05-01 10:00:59", 1, "2024-05-01 10:01");
	expect_next("*/15 * * * *", "", "2024-05-01 10:14:59", 3, "2024-05-01 10:15",
		    "2024-05-01 10:30", "2024-05-01 10:45");
	/* across month, year and leap-day ends */
	expect_next("0 0 1 * *", NULL, "2024-01-31 12:00", 3, "2024-02-01 00:00",
		    "2024-03-01 00:00", "2024-04-01 00:00");
	expect_next("30 23 31 * *", NULL, "2024-01-31 23:30", 3, "2024-03-31 23:30",
		    "2024-05-31 23:30", "2024-07-31 23:30");
	expect_next("0 0 1 1 *", NULL, "2024-12-31 23:59:59", 2, "2025-01-01 00:00",
		    "2026-01-01 00:00");
	expect_next("59 23 31 12 *", NULL, "2024-06-01 00:00", 2, "2024-12-31 23:59",
		    "2025-12-31 23:59");
	expect_next("0 12 29 2 *", NULL, "2024-03-01 00:00", 2, "2028-02-29 12:00",
		    "2032-02-29 12:00");
	expect_next("0 9 * * 1-5", NULL, "2024-05-03 09:00", 3, "2024-05-06 09:00",
		    "2024-05-07 09:00", "2024-05-08 09:00");
	expect_next("0 0 * * sun", NULL, "2024-12-28 00:00", 2, "2024-12-29 00:00",
		    "2025-01-05 00:00");
	expect_next("0 0 * * 7", NULL, "2024-12-28 00:00", 1, "2024-12-29 00:00");
	expect_next("@monthly", NULL, "1999-12-15 00:00", 2, "2000-01-01 00:00",
		    "2000-02-01 00:00");
	/* before 1970 and far ahead */
	expect_next("0 0 1 1 *", NULL, "1960-06-01 00:00", 1, "1961-01-01 00:00");
	expect_next("0 6 1 1 *", NULL, "2099-06-01 00:00", 1, "2100-01-01 06:00");
}

static void
test_next_day_rule(void **state)
{
	(void)state;
	/* both restricted: the 13th or any Friday (2024-09-13 is a Friday) */
	expect_next("0 0 13 * 5", NULL, "2024-09-01 00:00", 5, "2024-09-06 00:00",
		    "2024-09-13 00:00", "2024-09-20 00:00", "2024-09-27 00:00",
		    "2024-10-04 00:00");
	expect_next("0 0 13 * 5", NULL, "2024-10-05 00:00", 3, "2024-10-11 00:00",
		    "2024-10-13 00:00", "2024-10-18 00:00");
	/* one side '*': only the other matters */
	expect_next("0 0 * * 5", NULL, "2024-10-05 00:00", 2, "2024-10-11 00:00",
		    "2024-10-18 00:00");
	expect_next("0 0 13 * *", NULL, "2024-10-05 00:00", 2, "2024-10-13 00:00",
		    "2024-11-13 00:00");
	/* a '*' with a step counts as unrestricted: odd days that are Fridays */
	expect_next("0 0 */2 * 5", NULL, "2024-10-01 00:00", 3, "2024-10-11 00:00",
		    "2024-10-25 00:00", "2024-11-01 00:00");
	/* Friday the 13th needs both in one field set: Sept 2024, then Dec 2024 */
	expect_next("0 0 13 * 5", NULL, "2024-09-12 00:00", 1, "2024-09-13 00:00");
}

static void
test_never(void **state)
{
	static const char *const never[] = { "0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *" };
	struct herr err = HERR_INIT;
	int64_t next = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		struct cron c = parse_ok(never[i]);

		herr_clear(&err);
		assert_int_equal(cron_next(&c, utc_ms("2024-01-01 00:00"), "Europe/Berlin", &next,
					   &err), HERR_NOTFOUND);
		assert_string_equal(err.msg, "schedule never matches in the next 5 years");
	}
	/* 29 Feb after 2096 is next in 2104: past the horizon */
	{
		struct cron c = parse_ok("0 0 29 2 *");

		assert_int_equal(cron_next(&c, utc_ms("2096-03-01 00:00"), NULL, &next, &err),
				 HERR_NOTFOUND);
		assert_int_equal(cron_next(&c, utc_ms("2095-03-01 00:00"), NULL, &next, &err), 0);
		assert_true(next == utc_ms("2096-02-29 00:00"));
	}
	/* but 31 Feb OR Monday is fine */
	expect_next("0 0 31 2 mon", NULL, "2024-01-01 00:00", 1, "2024-02-05 00:00");
}

static void
test_range_and_zone_errors(void **state)
{
	static const char *const bad[] = {
		"Mars/Base", "../etc/passwd", "/etc/localtime", "Europe", "Europe/",
		"Europe//Berlin", "Europe/./Berlin", "Europe/../Europe/Berlin", "Asia/Shanghai ",
		"Etc/GMT+1;rm", "zone.tab",
	};
	struct herr err = HERR_INIT;
	struct cron c = parse_ok("* * * * *");
	int64_t next;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		herr_clear(&err);
		assert_int_equal(cron_next(&c, 0, bad[i], &next, &err), HERR_INVALID);
		snprintf(want, sizeof(want), "unknown time zone '%s'", bad[i]);
		assert_string_equal(err.msg, want);
		assert_int_equal(cron_tz_check(bad[i], &err), HERR_INVALID);
	}
	assert_int_equal(cron_tz_check(NULL, &err), 0);
	assert_int_equal(cron_tz_check("UTC", &err), 0);
	assert_int_equal(cron_tz_check("Asia/Shanghai", &err), 0);
	assert_int_equal(cron_tz_check("America/Argentina/Buenos_Aires", &err), 0);
	assert_int_equal(cron_tz_check("Etc/GMT+5", &err), 0);
	assert_int_equal(cron_next(&c, INT64_MAX, NULL, &next, &err), HERR_INVALID);
	assert_int_equal(cron_next(&c, INT64_MIN, NULL, &next, NULL), HERR_INVALID);
	assert_int_equal(cron_next(&c, -62135596800000LL, NULL, &next, &err), 0);
	assert_true(next == -62135596800000LL + 60000);
}

static void
test_next_zones(void **state)
{
	(void)state;
	/* 09:00 in Shanghai (UTC+8, no DST) is 01:00 UTC */
	expect_next("0 9 * * *", "Asia/Shanghai", "2024-05-01 00:00", 3, "2024-05-01 01:00",
		    "2024-05-02 01:00", "2024-05-03 01:00");
	expect_next("0 9 * * *", "UTC", "2024-05-01 00:00", 1, "2024-05-01 09:00");
	/* Monday 09:00 Shanghai is Monday 01:00 UTC; Monday 07:00 is Sunday 23:00 UTC */
	expect_next("0 7 * * mon", "Asia/Shanghai", "2024-05-01 00:00", 2, "2024-05-05 23:00",
		    "2024-05-12 23:00");
	/* new year in Shanghai comes 8 hours early */
	expect_next("0 0 1 1 *", "Asia/Shanghai", "2024-06-01 00:00", 1, "2024-12-31 16:00");
	/* half-hour and 45-minute zones */
	expect_next("0 12 * * *", "Asia/Kolkata", "2024-05-01 00:00", 1, "2024-05-01 06:30");
	expect_next("0 12 * * *", "Asia/Kathmandu", "2024-05-01 00:00", 1, "2024-05-01 06:15");
	expect_next("0 12 * * *", "America/New_York", "2024-01-10 00:00", 1, "2024-01-10 17:00");
	expect_next("0 12 * * *", "America/New_York", "2024-07-10 00:00", 1, "2024-07-10 16:00");
}

static void
test_dst_berlin(void **state)
{
	(void)state;
	/* spring forward 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 does not exist */
	expect_next("30 2 * * *", "Europe/Berlin", "2024-03-29 12:00", 3, "2024-03-30 01:30",
		    "2024-04-01 00:30", "2024-04-02 00:30");
	expect_next("0 3 * * *", "Europe/Berlin", "2024-03-30 12:00", 2, "2024-03-31 01:00",
		    "2024-04-01 01:00");
	expect_next("0 2 * * *", "Europe/Berlin", "2024-03-30 12:00", 1, "2024-04-01 00:00");
	/* fall back 2024-10-27 03:00 CEST -> 02:00 CET: 02:30 happens twice,
	 * fires once at the first */
	expect_next("30 2 * * *", "Europe/Berlin", "2024-10-25 12:00", 3, "2024-10-26 00:30",
		    "2024-10-27 00:30", "2024-10-28 01:30");
	/* asked during the repeated hour, after the first 02:30 fired */
	expect_next("30 2 * * *", "Europe/Berlin", "2024-10-27 01:10", 1, "2024-10-28 01:30");
	expect_next("45 2 27 10 *", "Europe/Berlin", "2024-10-27 00:50", 1, "2025-10-27 01:45");
	/* every hour: follows real time through both passes */
	expect_next("0 * * * *", "Europe/Berlin", "2024-10-26 23:30", 4, "2024-10-27 00:00",
		    "2024-10-27 01:00", "2024-10-27 02:00", "2024-10-27 03:00");
	expect_next("*/30 * * * *", "Europe/Berlin", "2024-10-27 00:40", 4, "2024-10-27 01:00",
		    "2024-10-27 01:30", "2024-10-27 02:00", "2024-10-27 02:30");
	expect_next("*/30 * * * *", "Europe/Berlin", "2024-03-31 00:10", 3, "2024-03-31 00:30",
		    "2024-03-31 01:00", "2024-03-31 01:30");
	/* beyond the file's table (2037): the footer rule M3.5.0,M10.5.0/3 */
	expect_next("30 2 * * *", "Europe/Berlin", "2045-03-24 12:00", 3, "2045-03-25 01:30",
		    "2045-03-27 00:30", "2045-03-28 00:30");
	expect_next("30 2 * * *", "Europe/Berlin", "2045-10-28 12:00", 2, "2045-10-29 00:30",
		    "2045-10-30 01:30");
	expect_next("0 3 * * *", "Europe/Berlin", "2045-10-28 12:00", 2, "2045-10-29 02:00",
		    "2045-10-30 02:00");
	expect_next("0 * * * *", "Europe/Berlin", "2045-10-28 23:30", 4, "2045-10-29 00:00",
		    "2045-10-29 01:00", "2045-10-29 02:00", "2045-10-29 03:00");
}

static void
test_dst_south_and_odd(void **state)
{
	(void)state;
	/* Sydney: DST ends first Sunday of April (03:00 AEDT -> 02:00 AEST),
	 * starts first Sunday of October (02:00 AEST -> 03:00 AEDT) */
	expect_next("30 2 * * *", "Australia/Sydney", "2024-04-05 00:00", 3, "2024-04-05 15:30",
		    "2024-04-06 15:30", "2024-04-07 16:30");
	expect_next("30 2 * * *", "Australia/Sydney", "2024-10-04 00:00", 3, "2024-10-04 16:30",
		    "2024-10-06 15:30", "2024-10-07 15:30");
	/* 2050-10-02 is the first Sunday: past the table, from the footer rule */
	expect_next("30 2 * * *", "Australia/Sydney", "2050-09-30 00:00", 2, "2050-09-30 16:30",
		    "2050-10-02 15:30");
	/* Lord Howe moves clocks by 30 minutes: 01:45 repeats on 2024-04-07 */
	expect_next("45 1 * * *", "Australia/Lord_Howe", "2024-04-05 00:00", 3,
		    "2024-04-05 14:45", "2024-04-06 14:45", "2024-04-07 15:15");
	/* Sao Paulo dropped DST in 2019 */
	expect_next("0 0 * * *", "America/Sao_Paulo", "2030-11-05 00:00", 1, "2030-11-05 03:00");
}

/* ---- zones written here, to reach rule forms real zones lack ---- */

static void
put32(FILE *f, uint32_t v)
{
	fputc(v >> 24, f);
	fputc(v >> 16 & 0xff, f);
	fputc(v >> 8 & 0xff, f);
	fputc(v & 0xff, f);
}

/* A TZif v2 file with one type (offset off) and no transitions: everything
 * comes from the footer, or from off when footer is "". */
static void
write_tzif(const char *dir, const char *name, int32_t off, const char *footer)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (int v = 1; v <= 2; v++) {
		fwrite("TZif2", 1, 5, f);
		for (int i = 0; i < 15; i++)
			fputc(0, f);
		put32(f, 0);   /* isutcnt */
		put32(f, 0);   /* isstdcnt */
		put32(f, 0);   /* leapcnt */
		put32(f, 0);   /* timecnt */
		put32(f, 1);   /* typecnt */
		put32(f, 4);   /* charcnt */
		put32(f, (uint32_t)off);
		fputc(0, f);
		fputc(0, f);
		fwrite("XST", 1, 4, f);
	}
	fprintf(f, "\n%s\n", footer);
	fclose(f);
}

static void
test_footer_rules(void **state)
{
	char dir[] = "/tmp/herd-tz-XXXXXX", path[300];
	const char *old = getenv("TZDIR");
	struct herr err = HERR_INIT;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_tzif(dir, "Last", 3600, "XST-1XDT,M4.5.0,M9.5.0/3");
	write_tzif(dir, "Perm", -18000, "EST5EDT,0/0,J365/25");
	write_tzif(dir, "Julian", 3600, "XST-1XDT,J60/2,J300/2");
	write_tzif(dir, "Zero", 3600, "XST-1XDT,59/2,299/2");
	write_tzif(dir, "Quoted", 0, "<+0530>-5:30");
	write_tzif(dir, "Fixed", 7200, "");
	write_tzif(dir, "BadRule", 3600, "XST-1XDT,M13.1.0,M9.5.0");
	snprintf(path, sizeof(path), "%s/Junk", dir);
	f = fopen(path, "w");
	fputs("TZif2 not really", f);
	fclose(f);
	setenv("TZDIR", dir, 1);

	/* last Sunday of a 30-day month: 2023-09-24 (the 5th would be the 31st) */
	expect_next("0 12 * * *", "Last", "2023-09-23 00:00", 2, "2023-09-23 10:00",
		    "2023-09-24 11:00");
	expect_next("0 12 * * *", "Last", "2024-04-27 00:00", 2, "2024-04-27 11:00",
		    "2024-04-28 10:00");
	/* permanent DST: the year-end change and the new year's start coincide */
	expect_next("0 12 * * *", "Perm", "2024-12-30 00:00", 3, "2024-12-30 16:00",
		    "2024-12-31 16:00", "2025-01-01 16:00");
	expect_next("0 12 * * *", "Perm", "2024-06-30 00:00", 1, "2024-06-30 16:00");
	/* Jn never counts 29 February, n does */
	expect_next("0 12 29 2 *", "Julian", "2024-01-01 00:00", 1, "2024-02-29 11:00");
	expect_next("0 12 1 3 *", "Julian", "2024-01-01 00:00", 1, "2024-03-01 10:00");
	expect_next("0 12 29 2 *", "Zero", "2024-01-01 00:00", 1, "2024-02-29 10:00");
	expect_next("0 12 28 2 *", "Zero", "2023-01-01 00:00", 1, "2023-02-28 11:00");
	expect_next("0 12 * * *", "Quoted", "2024-01-01 00:00", 1, "2024-01-01 06:30");
	expect_next("0 12 * * *", "Fixed", "2024-01-01 00:00", 1, "2024-01-01 10:00");
	assert_int_equal(cron_tz_check("BadRule", &err), HERR_INVALID);
	assert_int_equal(cron_tz_check("Junk", &err), HERR_INVALID);
	assert_string_equal(err.msg, "unknown time zone 'Junk'");

	if (old != NULL)
		setenv("TZDIR", old, 1);
	else
		unsetenv("TZDIR");
	for (const char *const *n = (const char *const[]){ "Last", "Perm", "Julian", "Zero",
		"Quoted", "Fixed", "BadRule", "Junk", NULL }; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		unlink(path);
	}
	rmdir(dir);
}

/* ---- brute force against glibc ---- */

static const char *const zones[] = {
	"Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
	"Asia/Shanghai", "America/Sao_Paulo", "Pacific/Chatham", "Europe/Dublin",
	"America/St_Johns", "Africa/Casablanca", "Asia/Tehran", "Pacific/Apia", "UTC",
};

static void
set_tz(const char *tz)
{
	char buf[128];

	snprintf(buf, sizeof(buf), ":%s", tz);
	setenv("TZ", buf, 1);
	tzset();
}

static bool
ref_matches(const struct cron *c, const struct tm *tm)
{
	bool md = c->mdays >> tm->tm_mday & 1, wd = c->wdays >> tm->tm_wday & 1;
	bool day = (c->mdays_star || c->wdays_star) ? md && wd : md || wd;

	return (c->minutes >> tm->tm_min & 1) && (c->hours >> tm->tm_hour & 1) &&
	       (c->months >> (tm->tm_mon + 1) & 1) && day;
}

/* The next firing by stepping UTC minutes (local minutes begin on whole UTC
 * minutes in every zone listed), or -1 past `window` seconds. */
static int64_t
ref_next(const struct cron *c, int64_t after_s, int64_t window)
{
	bool every_hour = (c->hours & 0xffffff) == 0xffffff;

	for (int64_t t = (after_s / 60 + 1) * 60; t <= after_s + window; t += 60) {
		time_t tt = (time_t)t;
		struct tm tm;
		bool repeat = false;

		localtime_r(&tt, &tm);
		if (!ref_matches(c, &tm))
			continue;
		if (!every_hour) {
			int64_t civil = t + tm.tm_gmtoff;

			for (int64_t d = 1800; d <= 7200 && !repeat; d += 1800) {
				time_t e = (time_t)(t - d);
				struct tm etm;

				localtime_r(&e, &etm);
				repeat = e + etm.tm_gmtoff == civil;
			}
		}
		if (!repeat)
			return t;
	}
	return -1;
}

static long
gmtoff_at(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	return tm.tm_gmtoff;
}

/* The first second in (from, from + span] with another UTC offset, or -1. */
static int64_t
ref_transition(int64_t from, int64_t span)
{
	long off = gmtoff_at(from);

	for (int64_t t = from + 6 * 3600; t <= from + span; t += 6 * 3600) {
		if (gmtoff_at(t) != off) {
			int64_t lo = t - 6 * 3600, hi = t;   /* off at lo, other at hi */

			while (hi - lo > 1) {
				int64_t mid = lo + (hi - lo) / 2;

				if (gmtoff_at(mid) == off)
					lo = mid;
				else
					hi = mid;
			}
			return hi;
		}
	}
	return -1;
}

static void
test_against_glibc(void **state)
{
	static const char *const scheds[] = {
		"30 2 * * *", "0 * * * *", "*/7 1-3 * * *", "15,45 0-4 * * 0", "0 1 1 * *",
		"0 2 13 * 5,6", "59 23 * * *", "0 0,3 * 3,4,9,10,11 *", "*/20 2 * * *", "0 */2 * * *",
	};
	struct herr err = HERR_INIT;
	unsigned seed = 12345;
	const int64_t window = 40 * 86400;

	(void)state;
	for (size_t zi = 0; zi < sizeof(zones) / sizeof(zones[0]); zi++) {
		set_tz(zones[zi]);
		for (int round = 0; round < 25; round++) {
			const char *sched = scheds[rand_r(&seed) % (sizeof(scheds) / sizeof(scheds[0]))];
			struct cron c = parse_ok(sched);
			/* 1975..2075, biased to times near DST changes (Mar, Apr, Oct, Nov) */
			int64_t year = 1975 + rand_r(&seed) % 100;
			int mon = (int[]){ 2, 3, 9, 10, 0, 5 }[rand_r(&seed) % 6];
			struct tm tm = { .tm_year = (int)year - 1900, .tm_mon = mon,
					 .tm_mday = 1 + rand_r(&seed) % 28,
					 .tm_hour = rand_r(&seed) % 24, .tm_min = rand_r(&seed) % 60 };
			int64_t after = (int64_t)timegm(&tm) + rand_r(&seed) % 60;
			int64_t want, got, tr;

			/* mostly start shortly before a change of offset in that month */
			if (round % 4 != 0 && (tr = ref_transition(after - (tm.tm_mday - 1) * 86400,
								    31 * 86400)) > 0)
				after = tr - rand_r(&seed) % (5 * 3600);
			want = ref_next(&c, after, window);
			char a[32], b[32];

			for (int step = 0; step < 6 && want >= 0; step++) {
				if (cron_next(&c, after * 1000, zones[zi], &got, &err) != 0)
					fail_msg("%s %s: %s", zones[zi], sched, err.msg);
				if (got != want * 1000)
					fail_msg("%s '%s' after %s: got %s, glibc says %s", zones[zi],
						 sched, utc_text(after * 1000, a, sizeof(a)),
						 utc_text(got, b, sizeof(b)),
						 utc_text(want * 1000, a, sizeof(a)));
				after = want;
				want = ref_next(&c, after, window);
			}
		}
	}
	unsetenv("TZ");
	tzset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_next_utc),
		cmocka_unit_test(test_next_day_rule),
		cmocka_unit_test(test_never),
		cmocka_unit_test(test_range_and_zone_errors),
		cmocka_unit_test(test_next_zones),
		cmocka_unit_test(test_dst_berlin),
		cmocka_unit_test(test_dst_south_and_odd),
		cmocka_unit_test(test_footer_rules),
		cmocka_unit_test(test_against_glibc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
