/* cron.c - cron expressions and their next firing time in a time zone.
 * Hand-written: no packaged C library parses cron, and libc's zone support
 * (TZ + tzset + localtime) is process-wide state that other threads of the
 * server would see change, so zones are read here from the TZif files
 * (RFC 8536) with their POSIX TZ footer for times past the table. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cron.h"
#include "xalloc.h"

/* ---- civil calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
	static const int len[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : len[m];
}

/* Days from 1970-01-01 to y-m-d, counting in 400-year cycles of 146097 days
 * from 0000-03-01 so February ends each counted year. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	if (m <= 2)
		y--;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int
weekday(int64_t days)
{
	return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

/* ---- time zones ---- */

struct tz_date {
	char kind;         /* 'J' (1-365, no Feb 29), 'n' (0-365), 'M' */
	int n, m, w, d;    /* day number, or month, week (5 = last), weekday */
	int32_t time_s;    /* local time of day of the change, may be <0 or >24h */
};

struct tz_rule {
	int32_t std_off;   /* seconds east of UTC outside DST */
	int32_t dst_off;   /* seconds east of UTC during DST */
	bool has_dst;
	struct tz_date start, end;
};

struct zone {
	int64_t *trans;    /* transition times, s since the epoch, ascending */
	uint8_t *idx;      /* local time type from each transition on */
	int32_t *utoff;    /* seconds east of UTC of each type */
	size_t ntrans, ntypes;
	bool has_rule;     /* rule applies after the last transition */
	struct tz_rule rule;
	int32_t utc_off;   /* ntypes == 0: a fixed offset (UTC) */
};

#define TZ_MAX_FILE (256 * 1024)
#define TZ_MAX_OFF (25 * 3600)

static void
zone_release(struct zone *z)
{
	free(z->trans);
	free(z->idx);
	free(z->utoff);
	memset(z, 0, sizeof(*z));
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; returns chars used or -1. */
static int
posix_hms(const char *s, int max_h, int32_t *out)
{
	int i = 0, sign = 1, part = 0;
	int32_t v[3] = { 0, 0, 0 };

	if (s[i] == '+' || s[i] == '-')
		sign = s[i++] == '-' ? -1 : 1;
	for (;;) {
		int digits = 0;

		while (s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v[part] = v[part] * 10 + (s[i++] - '0');
			digits++;
		}
		if (digits == 0 || (part > 0 && v[part] > 59) || (part == 0 && v[0] > max_h))
			return -1;
		if (s[i] != ':' || part == 2)
			break;
		i++;
		part++;
	}
	*out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
	return i;
}

/* A zone abbreviation: letters, or <anything but '>'>. */
static int
posix_name(const char *s)
{
	int i = 0;

	if (s[0] == '<') {
		for (i = 1; s[i] != '\0' && s[i] != '>'; i++)
			;
		return s[i] == '>' && i > 1 ? i + 1 : -1;
	}
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
		i++;
	return i >= 3 ? i : -1;
}

static int
posix_num(const char *s, int *i, int lo, int hi, int *out)
{
	int v = 0, digits = 0;

	while (s[*i] >= '0' && s[*i] <= '9' && digits < 4) {
		v = v * 10 + (s[(*i)++] - '0');
		digits++;
	}
	if (digits == 0 || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
posix_date(const char *s, int *i, struct tz_date *d)
{
	int n;

	memset(d, 0, sizeof(*d));
	if (s[*i] == 'J') {
		(*i)++;
		d->kind = 'J';
		if (posix_num(s, i, 1, 365, &d->n) < 0)
			return -1;
	} else if (s[*i] == 'M') {
		(*i)++;
		d->kind = 'M';
		if (posix_num(s, i, 1, 12, &d->m) < 0 || s[(*i)++] != '.' ||
		    posix_num(s, i, 1, 5, &d->w) < 0 || s[(*i)++] != '.' ||
		    posix_num(s, i, 0, 6, &d->d) < 0)
			return -1;
	} else {
		d->kind = 'n';
		if (posix_num(s, i, 0, 365, &d->n) < 0)
			return -1;
	}
	d->time_s = 7200;
	if (s[*i] == '/') {
		(*i)++;
		if ((n = posix_hms(s + *i, 167, &d->time_s)) < 0)
			return -1;
		*i += n;
	}
	return 0;
}

/* Parses a TZ string like "CET-1CEST,M3.5.0,M10.5.0/3". */
static int
posix_rule(const char *s, struct tz_rule *r)
{
	int i, n;
	int32_t off;

	memset(r, 0, sizeof(*r));
	if ((i = posix_name(s)) < 0 || (n = posix_hms(s + i, 24, &off)) < 0)
		return -1;
	i += n;
	r->std_off = -off;
	if (s[i] == '\0')
		return 0;
	if ((n = posix_name(s + i)) < 0)
		return -1;
	i += n;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (s[i] != ',' && s[i] != '\0') {
		if ((n = posix_hms(s + i, 24, &off)) < 0)
			return -1;
		i += n;
		r->dst_off = -off;
	}
	if (s[i] == '\0') {    /* no rule: the US one, as glibc assumes */
		r->start = (struct tz_date){ 'M', 0, 3, 2, 0, 7200 };
		r->end = (struct tz_date){ 'M', 0, 11, 1, 0, 7200 };
		return 0;
	}
	if (s[i++] != ',' || posix_date(s, &i, &r->start) < 0 || s[i++] != ',' ||
	    posix_date(s, &i, &r->end) < 0 || s[i] != '\0')
		return -1;
	return 0;
}

/* Parses a TZif file (any version; the 64-bit body when there is one). */
static int
tzif_parse(const unsigned char *p, size_t n, struct zone *z)
{
	size_t off = 0, tsize = 4, body;
	uint32_t cnt[6];   /* isut, isstd, leap, time, type, char */
	const unsigned char *q;

	for (int pass = 0;; pass++) {
		if (n - off < 44 || memcmp(p + off, "TZif", 4) != 0)
			return -1;
		for (int k = 0; k < 6; k++)
			cnt[k] = be32(p + off + 20 + 4 * k);
		if (cnt[4] == 0 || cnt[4] > 256 || cnt[3] > 100000 || cnt[2] > 100000 ||
		    cnt[5] > 100000 || (cnt[0] != 0 && cnt[0] != cnt[4]) ||
		    (cnt[1] != 0 && cnt[1] != cnt[4]))
			return -1;
		body = (size_t)cnt[3] * (tsize + 1) + (size_t)cnt[4] * 6 + cnt[5] +
		       (size_t)cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
		if (n - off - 44 < body)
			return -1;
		if (pass == 1 || p[off + 4] < '2')
			break;
		off += 44 + body;  /* skip the 32-bit body for the 64-bit one */
		tsize = 8;
	}
	q = p + off + 44;
	z->ntrans = cnt[3];
	z->ntypes = cnt[4];
	z->trans = xcalloc(z->ntrans ? z->ntrans : 1, sizeof(*z->trans));
	z->idx = xcalloc(z->ntrans ? z->ntrans : 1, 1);
	z->utoff = xcalloc(z->ntypes, sizeof(*z->utoff));
	for (size_t i = 0; i < z->ntrans; i++) {
		z->trans[i] = tsize == 8 ? be64(q + 8 * i) : (int32_t)be32(q + 4 * i);
		if (i > 0 && z->trans[i] <= z->trans[i - 1])
			return -1;
	}
	q += z->ntrans * tsize;
	for (size_t i = 0; i < z->ntrans; i++)
		if ((z->idx[i] = q[i]) >= z->ntypes)
			return -1;
	q += z->ntrans;
	for (size_t i = 0; i < z->ntypes; i++) {
		int32_t u = (int32_t)be32(q + 6 * i);

		if (u < -TZ_MAX_OFF || u > TZ_MAX_OFF)
			return -1;
		z->utoff[i] = u;
	}
	if (tsize == 8) {
		/* footer: "\n<TZ string>\n" */
		const unsigned char *f = p + off + 44 + body, *nl;
		size_t left = n - (size_t)(f - p);
		char tzs[128];

		if (left < 2 || f[0] != '\n' || (nl = memchr(f + 1, '\n', left - 1)) == NULL)
			return -1;
		if (nl > f + 1) {
			if ((size_t)(nl - f - 1) >= sizeof(tzs))
				return -1;
			memcpy(tzs, f + 1, (size_t)(nl - f - 1));
			tzs[nl - f - 1] = '\0';
			if (posix_rule(tzs, &z->rule) < 0)
				return -1;
			z->has_rule = true;
		}
	}
	return 0;
}

static bool
tz_is_utc(const char *tz)
{
	return tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0;
}

/* An IANA name: components of [A-Za-z0-9._+-], none empty, "." or "..". */
static bool
tz_name_ok(const char *tz)
{
	size_t len = strlen(tz);

	if (len == 0 || len > 200 || tz[0] == '/' || tz[len - 1] == '/')
		return false;
	for (const char *c = tz; *c; c++) {
		bool start = c == tz || c[-1] == '/';

		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("._+-/", *c) != NULL))
			return false;
		if (start && (*c == '/' || (c[0] == '.' && (c[1] == '/' || c[1] == '\0')) ||
			      (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))))
			return false;
	}
	return true;
}

static int
zone_load(const char *tz, struct zone *z, struct herr *err)
{
	const char *dir = getenv("TZDIR");
	char path[512];
	unsigned char *data;
	ssize_t got;
	size_t n = 0;
	int fd, rc = 0;

	memset(z, 0, sizeof(*z));
	if (tz_is_utc(tz))
		return 0;
	if (!tz_name_ok(tz))
		return herr_set(err, HERR_INVALID, "unknown time zone '%.64s'", tz);
	snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", tz);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return herr_set(err, HERR_INVALID, "unknown time zone '%.64s'", tz);
	data = xmalloc(TZ_MAX_FILE);
	while (n < TZ_MAX_FILE && (got = read(fd, data + n, TZ_MAX_FILE - n)) > 0)
		n += (size_t)got;
	if (n == 0 || n == TZ_MAX_FILE || tzif_parse(data, n, z) < 0) {
		zone_release(z);
		rc = herr_set(err, HERR_INVALID, "unknown time zone '%.64s'", tz);
	}
	free(data);
	close(fd);
	return rc;
}

int
cron_tz_check(const char *tz, struct herr *err)
{
	struct zone z;
	int rc = zone_load(tz, &z, err);

	zone_release(&z);
	return rc;
}

/* Midnight local (as civil seconds) of a rule's date in year y, plus its time. */
static int64_t
rule_local(int64_t y, const struct tz_date *d)
{
	int64_t days = days_from_civil(y, 1, 1);

	if (d->kind == 'J') {
		days += d->n - 1 + (is_leap(y) && d->n >= 60);
	} else if (d->kind == 'n') {
		days += d->n;
	} else {
		int64_t first = days_from_civil(y, d->m, 1);
		int day = 1 + (d->d - weekday(first) + 7) % 7 + 7 * (d->w - 1);

		while (day > month_days(y, d->m))
			day -= 7;
		days = first + day - 1;
	}
	return days * 86400 + d->time_s;
}

struct tz_event {
	int64_t at;        /* s since the epoch */
	int32_t off;       /* offset from then on */
	int dst;           /* ties: the change to standard time goes first */
};

static int
event_cmp(const void *a, const void *b)
{
	const struct tz_event *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->dst - y->dst;
}

/* Offset at t under the POSIX rule, and the span [*from, *until) it holds. */
static void
rule_lookup(const struct tz_rule *r, int64_t t, int32_t *off, int64_t *from, int64_t *until)
{
	struct tz_event ev[6];
	int64_t y, cy;
	int cm, cd, last = -1;

	*off = r->std_off;
	*from = INT64_MIN;
	*until = INT64_MAX;
	if (!r->has_dst)
		return;
	civil_from_days(floor_div(t + r->std_off, 86400), &y, &cm, &cd);
	for (int k = 0; k < 3; k++) {
		cy = y - 1 + k;
		ev[2 * k] = (struct tz_event){ rule_local(cy, &r->start) - r->std_off, r->dst_off, 1 };
		ev[2 * k + 1] = (struct tz_event){ rule_local(cy, &r->end) - r->dst_off, r->std_off, 0 };
	}
	qsort(ev, 6, sizeof(ev[0]), event_cmp);
	for (int k = 0; k < 6; k++)
		if (ev[k].at <= t)
			last = k;
	if (last >= 0) {
		*off = ev[last].off;
		*from = ev[last].at;
	} else {
		*off = ev[0].dst ? r->std_off : r->dst_off;
	}
	if (last + 1 < 6)
		*until = ev[last + 1].at;
}

/* Offset at t, and the span [*from, *until) over which it stays the same
 * (a span may end without the offset changing). */
static void
zone_lookup(const struct zone *z, int64_t t, int32_t *off, int64_t *from, int64_t *until)
{
	size_t lo = 0, hi = z->ntrans;

	*from = INT64_MIN;
	*until = INT64_MAX;
	if (z->ntypes == 0) {
		*off = z->utc_off;
		return;
	}
	if (z->ntrans == 0 || t < z->trans[0]) {
		*off = z->utoff[0];
		if (z->ntrans > 0) {
			*until = z->trans[0];
		} else if (z->has_rule) {
			rule_lookup(&z->rule, t, off, from, until);
		}
		return;
	}
	while (hi - lo > 1) {      /* last transition <= t */
		size_t mid = lo + (hi - lo) / 2;

		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*off = z->utoff[z->idx[lo]];
	*from = z->trans[lo];
	if (lo + 1 < z->ntrans) {
		*until = z->trans[lo + 1];
	} else if (z->has_rule) {
		int64_t rfrom;

		rule_lookup(&z->rule, t, off, &rfrom, until);
		if (rfrom > *from)
			*from = rfrom;
	}
}

/* ---- parsing ---- */

struct field {
	const char *name;
	int lo, hi;                 /* accepted numbers */
	const char *const *names;   /* names[i] is value i + name_base */
	int nnames, name_base;
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};
static const char *const wday_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL, 0, 0 },
	{ "hour", 0, 23, NULL, 0, 0 },
	{ "day of month", 1, 31, NULL, 0, 0 },
	{ "month", 1, 12, month_names, 12, 1 },
	{ "day of week", 0, 7, wday_names, 7, 0 },
};

static const struct {
	const char *name, *expands;
} macros[] = {
	{ "@hourly", "0 * * * *" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
	{ "@weekly", "0 0 * * 0" }, { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
col(size_t i)
{
	return (int)i + 1;
}

static int
unexpected(const char *s, size_t i, const char *field, struct herr *err)
{
	unsigned char c = (unsigned char)s[i];

	if (c > ' ' && c < 0x7f)
		return herr_set(err, HERR_INVALID, "unexpected '%c' in %s field at column %d", c,
				field, col(i));
	return herr_set(err, HERR_INVALID, "unexpected byte 0x%02x in %s field at column %d", c,
			field, col(i));
}

/* A number or name of field f at s+*i. */
static int
field_value(const char *s, size_t *i, const struct field *f, int *out, struct herr *err)
{
	size_t start = *i;
	long v = 0;

	if (s[*i] >= '0' && s[*i] <= '9') {
		while (s[*i] >= '0' && s[*i] <= '9') {
			if (v < 100000)
				v = v * 10 + (s[*i] - '0');
			(*i)++;
		}
		if (v < f->lo || v > f->hi)
			return herr_set(err, HERR_INVALID, "%s %.*s out of range %d-%d at column %d",
					f->name, (int)(*i - start), s + start, f->lo, f->hi,
					col(start));
		*out = (int)v;
		return 0;
	}
	if (f->names != NULL && ((s[*i] | 0x20) >= 'a' && (s[*i] | 0x20) <= 'z')) {
		while ((s[*i] | 0x20) >= 'a' && (s[*i] | 0x20) <= 'z')
			(*i)++;
		for (int k = 0; k < f->nnames; k++)
			if (*i - start == 3 && strncasecmp(s + start, f->names[k], 3) == 0) {
				*out = k + f->name_base;
				return 0;
			}
		return herr_set(err, HERR_INVALID, "unknown %s name '%.*s' at column %d", f->name,
				(int)(*i - start > 16 ? 16 : *i - start), s + start, col(start));
	}
	if (s[*i] == '\0' || is_blank(s[*i]) || s[*i] == ',' || s[*i] == '-' || s[*i] == '/')
		return herr_set(err, HERR_INVALID, "expected %s %s at column %d",
				f->names ? "number or name for" : "number for", f->name, col(*i));
	return unexpected(s, *i, f->name, err);
}

/* One field at s+*i up to a blank or the end; sets bits in *bits. */
static int
parse_field(const char *s, size_t *i, const struct field *f, bool dow, uint64_t *bits,
	    struct herr *err)
{
	int rc;

	*bits = 0;
	for (;;) {
		int lo, hi, step = 1;
		size_t at = *i;

		if (s[*i] == '*') {
			lo = f->lo;
			hi = dow ? 6 : f->hi;
			(*i)++;
		} else {
			if ((rc = field_value(s, i, f, &lo, err)) < 0)
				return rc;
			hi = lo;
			if (s[*i] == '-') {
				size_t hat;

				(*i)++;
				hat = *i;
				if ((rc = field_value(s, i, f, &hi, err)) < 0)
					return rc;
				if (dow && hi == 0 && lo > 0)
					hi = 7;         /* fri-sun */
				if (hi < lo)
					return herr_set(err, HERR_INVALID,
							"%s range %.*s goes backwards at column %d",
							f->name, (int)(*i - at), s + at, col(hat));
			}
		}
		if (s[*i] == '/') {
			size_t sat = ++*i;
			long v = 0;

			if (s[*i] < '0' || s[*i] > '9')
				return herr_set(err, HERR_INVALID, "expected step at column %d",
						col(sat));
			while (s[*i] >= '0' && s[*i] <= '9') {
				if (v < 100000)
					v = v * 10 + (s[*i] - '0');
				(*i)++;
			}
			if (v < 1 || v > f->hi)
				return herr_set(err, HERR_INVALID,
						"step %.*s out of range 1-%d at column %d",
						(int)(*i - sat), s + sat, f->hi, col(sat));
			step = (int)v;
			if (s[at] != '*' && hi == lo)   /* N/STEP: N to the end */
				hi = dow && lo < 7 ? 6 : f->hi;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= 1ULL << (dow ? v % 7 : v);
		if (s[*i] == ',') {
			(*i)++;
			continue;
		}
		if (s[*i] == '\0' || is_blank(s[*i]))
			return 0;
		return unexpected(s, *i, f->name, err);
	}
}

int
cron_parse(const char *s, struct cron *out, struct herr *err)
{
	uint64_t bits[5];
	bool star[5];
	size_t i = 0;
	int rc;

	while (is_blank(s[i]))
		i++;
	if (s[i] == '@') {
		size_t n = strcspn(s + i, " \t");

		for (size_t k = 0; k < sizeof(macros) / sizeof(macros[0]); k++)
			if (strlen(macros[k].name) == n &&
			    strncasecmp(s + i, macros[k].name, n) == 0) {
				size_t j = i + n;

				while (is_blank(s[j]))
					j++;
				if (s[j] != '\0')
					return herr_set(err, HERR_INVALID,
							"unexpected text after '%s' at column %d",
							macros[k].name, col(j));
				return cron_parse(macros[k].expands, out, err);
			}
		return herr_set(err, HERR_INVALID, "unknown schedule '%.*s' at column %d",
				(int)(n > 20 ? 20 : n), s + i, col(i));
	}
	for (int f = 0; f < 5; f++) {
		if (s[i] == '\0')
			return herr_set(err, HERR_INVALID,
					"expected %s field at column %d (a schedule has 5 fields)",
					fields[f].name, col(i));
		star[f] = s[i] == '*';
		if ((rc = parse_field(s, &i, &fields[f], f == 4, &bits[f], err)) < 0)
			return rc;
		while (is_blank(s[i]))
			i++;
	}
	if (s[i] != '\0')
		return herr_set(err, HERR_INVALID,
				"unexpected sixth field at column %d (a schedule has 5 fields)",
				col(i));
	out->minutes = bits[0];
	out->hours = (uint32_t)bits[1];
	out->mdays = (uint32_t)bits[2];
	out->months = (uint16_t)bits[3];
	out->wdays = (uint8_t)bits[4];
	out->mdays_star = star[2];
	out->wdays_star = star[4];
	return 0;
}

/* ---- next firing time ---- */

static bool
day_matches(const struct cron *c, int64_t y, int m, int d)
{
	bool md = c->mdays >> d & 1;
	bool wd = c->wdays >> weekday(days_from_civil(y, m, d)) & 1;

	if (c->mdays_star || c->wdays_star)
		return md && wd;
	return md || wd;
}

struct civil {
	int64_t y;
	int mo, d, h, mi;
};

static int64_t
civil_secs(const struct civil *t)
{
	return days_from_civil(t->y, t->mo, t->d) * 86400 + t->h * 3600 + t->mi * 60;
}

/* Carries a field that was just incremented past its end (the month only
 * ever with d == 1). */
static void
civil_carry(struct civil *t)
{
	if (t->mi == 60) {
		t->mi = 0;
		t->h++;
	}
	if (t->h == 24) {
		t->h = 0;
		t->d++;
	}
	if (t->mo <= 12 && t->d > month_days(t->y, t->mo)) {
		t->d = 1;
		t->mo++;
	}
	if (t->mo > 12) {
		t->mo = 1;
		t->y++;
	}
}

/* The first civil minute (local seconds as if UTC) in [lo, hi) that c
 * matches, or INT64_MIN. lo is a multiple of 60. Skips a whole month, day
 * or hour at a time when that part does not match. */
static int64_t
civil_match(const struct cron *c, int64_t lo, int64_t hi)
{
	int64_t days = floor_div(lo, 86400), sec = lo - days * 86400;
	struct civil t = { 0, 0, 0, (int)(sec / 3600), (int)(sec % 3600 / 60) };

	civil_from_days(days, &t.y, &t.mo, &t.d);
	while (civil_secs(&t) < hi) {
		if (!(c->months >> t.mo & 1)) {
			t.mo++;
			t.d = 1;
			t.h = t.mi = 0;
		} else if (!day_matches(c, t.y, t.mo, t.d)) {
			t.d++;
			t.h = t.mi = 0;
		} else if (!(c->hours >> t.h & 1)) {
			t.h++;
			t.mi = 0;
		} else if (!(c->minutes >> t.mi & 1)) {
			t.mi++;
		} else {
			return civil_secs(&t);
		}
		civil_carry(&t);
	}
	return INT64_MIN;
}

/* Whether civil time L already happened in one of the two spans before the
 * one starting at `from` (a repeated hour after clocks went back). */
static bool
civil_repeated(const struct zone *z, int64_t L, int64_t from)
{
	for (int k = 0; k < 2 && from != INT64_MIN; k++) {
		int64_t pfrom, puntil, u;
		int32_t off;

		zone_lookup(z, from - 1, &off, &pfrom, &puntil);
		u = L - off;
		if (u >= pfrom && u < from)
			return true;
		from = pfrom;
	}
	return false;
}

#define CRON_MIN_S (-62135596800LL)  /* 0001-01-01T00:00:00Z */
#define CRON_MAX_S (253086508800LL)  /* 9990-01-01T00:00:00Z */

int
cron_next(const struct cron *c, int64_t after_ms, const char *tz, int64_t *next_ms,
	  struct herr *err)
{
	struct zone z;
	int64_t t, limit;
	bool every_hour = (c->hours & 0xffffff) == 0xffffff;
	int rc;

	if (after_ms < CRON_MIN_S * 1000 || after_ms >= CRON_MAX_S * 1000)
		return herr_set(err, HERR_INVALID, "time %lld ms is out of range",
				(long long)after_ms);
	if ((rc = zone_load(tz, &z, err)) < 0)
		return rc;
	t = floor_div(after_ms, 1000) + 1;
	limit = t + (int64_t)CRON_HORIZON_DAYS * 86400;
	while (t < limit) {
		int64_t from, until, L;
		int32_t off;

		zone_lookup(&z, t, &off, &from, &until);
		if (until > limit)
			until = limit;
		L = civil_match(c, floor_div(t + off + 59, 60) * 60, until + off);
		if (L == INT64_MIN) {
			t = until;
			continue;
		}
		if (!every_hour && civil_repeated(&z, L, from)) {
			t = L - off + 1;
			continue;
		}
		*next_ms = (L - off) * 1000;
		zone_release(&z);
		return 0;
	}
	zone_release(&z);
	return herr_set(err, HERR_NOTFOUND, "schedule never matches in the next 5 years");
}
