/* util.c - see util.h. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "util.h"
#include "xalloc.h"

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool
name_is_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

bool
script_name_is_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 100 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* One component of a duration: digits with an optional fraction (no sign,
 * exponent, hex, inf or nan: strtod would take them all). Returns the
 * characters read, 0 if none. */
static size_t
duration_number(const char *s, double *v)
{
	size_t i = 0, int_digits = 0, frac_digits = 0;
	char num[40];

	while (isdigit((unsigned char)s[i]) && i < 20)
		i++, int_digits++;
	if (int_digits == 0 || isdigit((unsigned char)s[i]))
		return 0;
	if (s[i] == '.') {
		i++;
		while (isdigit((unsigned char)s[i]) && frac_digits < 9)
			i++, frac_digits++;
		if (frac_digits == 0 || isdigit((unsigned char)s[i]))
			return 0;
	}
	memcpy(num, s, i);
	num[i] = '\0';
	*v = strtod(num, NULL);
	return i;
}

int
parse_duration_ms(const char *s, int64_t *ms)
{
	static const struct {
		const char *name;
		double ms;
	} units[] = { { "d", 86400e3 }, { "h", 3600e3 }, { "ms", 1 }, { "m", 60e3 }, { "s", 1e3 } };
	/* the order units must come in: d h m s ms */
	static const int rank[] = { 0, 1, 4, 2, 3 };
	double total = 0, v;
	int last = -1;
	size_t n;

	if (s == NULL || (n = duration_number(s, &v)) == 0)
		return HERR_INVALID;
	if (s[n] == '\0') {   /* a bare number: seconds */
		total = v * 1e3;
		goto done;
	}
	for (;;) {
		size_t u;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
			if (strncmp(s + n, units[u].name, strlen(units[u].name)) == 0)
				break;
		if (u == sizeof(units) / sizeof(units[0]) || rank[u] <= last)
			return HERR_INVALID;
		last = rank[u];
		total += v * units[u].ms;
		s += n + strlen(units[u].name);
		if (*s == '\0')
			break;
		if ((n = duration_number(s, &v)) == 0)
			return HERR_INVALID;
	}
done:
	if (total > DURATION_MAX_MS)
		return HERR_INVALID;
	*ms = (int64_t)(total + 0.5);
	return 0;
}

int64_t
json_duration_ms(const json_t *o, const char *key, int64_t dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	int64_t ms;

	return v && parse_duration_ms(v, &ms) == 0 ? ms : dflt;
}

/* A dotted quad of four decimal numbers 0-255 without leading zeros (which
 * inet_aton would read as octal), into *addr in host order. */
static bool
ipv4_parse(const char *s, size_t n, uint32_t *addr)
{
	uint32_t a = 0;
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start = i;
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			start = ++i;
		}
		while (i < n && isdigit((unsigned char)s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		a = a << 8 | v;
	}
	if (i != n)
		return false;
	*addr = a;
	return true;
}

/* Ranges no host network may overlap: routing to them would take over this
 * machine's loopback, or they are not unicast at all. */
static const struct {
	uint32_t base;
	int prefix;
	const char *what;
} net_reserved[] = {
	{ 0x00000000u, 8, "0.0.0.0/8 ('this network')" },
	{ 0x7f000000u, 8, "127.0.0.0/8 (loopback)" },
	{ 0xa9fe0000u, 16, "169.254.0.0/16 (link-local)" },
	{ 0xe0000000u, 4, "224.0.0.0/4 (multicast)" },
	{ 0xf0000000u, 4, "240.0.0.0/4 (reserved, broadcast)" },
};

int
net_cidr_parse(const char *s, uint32_t *base, int *prefix, struct herr *err)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	uint32_t a, mask, last, r_mask;
	int len = 0;
	const char *p;

	if (slash == NULL || !ipv4_parse(s, (size_t)(slash - s), &a))
		return herr_set(err, HERR_INVALID, "'%s' is not an IPv4 network like 198.18.10.0/24",
				s ? s : "");
	for (p = slash + 1; isdigit((unsigned char)*p) && p - slash <= 2; p++)
		len = len * 10 + (*p - '0');
	if (p == slash + 1 || *p != '\0' || (slash[1] == '0' && p - slash > 2))
		return herr_set(err, HERR_INVALID, "'%s' is not an IPv4 network like 198.18.10.0/24", s);
	if (len < NET_PREFIX_MIN || len > NET_PREFIX_MAX)
		return herr_set(err, HERR_INVALID,
				"prefix /%d is outside /%d-/%d (a gateway and hosts must fit)", len,
				NET_PREFIX_MIN, NET_PREFIX_MAX);
	mask = 0xffffffffu << (32 - len);
	if (a & ~mask) {
		uint32_t b = a & mask;
		return herr_set(err, HERR_INVALID, "'%s' has host bits set: did you mean %u.%u.%u.%u/%d", s,
				b >> 24, (b >> 16) & 255, (b >> 8) & 255, b & 255, len);
	}
	last = a | ~mask;
	for (size_t i = 0; i < sizeof(net_reserved) / sizeof(net_reserved[0]); i++) {
		r_mask = 0xffffffffu << (32 - net_reserved[i].prefix);
		if (a <= (net_reserved[i].base | ~r_mask) && last >= net_reserved[i].base)
			return herr_set(err, HERR_INVALID, "'%s' overlaps %s", s, net_reserved[i].what);
	}
	*base = a;
	*prefix = len;
	return 0;
}

bool
net_cidr_valid(const char *s)
{
	struct herr err = HERR_INIT;
	uint32_t base;
	int prefix;

	return net_cidr_parse(s, &base, &prefix, &err) == 0;
}

bool
ipv4_port_valid(const char *s)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	uint32_t a;
	long port = 0;
	const char *p;

	if (colon == NULL || !ipv4_parse(s, (size_t)(colon - s), &a))
		return false;
	for (p = colon + 1; isdigit((unsigned char)*p) && p - colon <= 5; p++)
		port = port * 10 + (*p - '0');
	return p > colon + 1 && *p == '\0' && colon[1] != '0' && port >= 1 && port <= 65535;
}

/* The integer at the start of s: 0 and *end after its digits, or -1 (no
 * digit, or a character strtol would skip or take that we do not). */
static int
long_prefix(const char *s, long *v, const char **end)
{
	const char *d = s && *s == '-' ? s + 1 : s;
	char *e;

	if (d == NULL || !isdigit((unsigned char)*d))
		return -1;
	errno = 0;
	*v = strtol(s, &e, 10);   /* ERANGE: LONG_MIN or LONG_MAX, saturated */
	*end = e;
	return 0;
}

int
parse_long(const char *s, long min, long max, long *out)
{
	const char *end;
	long v;

	if (long_prefix(s, &v, &end) < 0 || *end != '\0' || v < min || v > max)
		return HERR_INVALID;
	*out = v;
	return 0;
}

long
str_long_or(const char *s, long min, long max, long dflt)
{
	const char *end;
	long v;

	if (long_prefix(s, &v, &end) < 0 || (*end != '\0' && !isspace((unsigned char)*end)) ||
	    v < min || v > max)
		return dflt;
	return v;
}

const char *
fmt_duration(int64_t ms, char *out, size_t outsz)
{
	if (ms < 0)
		snprintf(out, outsz, "-");
	else if (ms < 1000)
		snprintf(out, outsz, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(out, outsz, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(out, outsz, "%lldm%llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
	else if (ms < 86400000)
		snprintf(out, outsz, "%lldh%lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
	else
		snprintf(out, outsz, "%lldd%lldh", (long long)(ms / 86400000), (long long)(ms / 3600000 % 24));
	return out;
}

/* Civil date from days since 1970-01-01 (proleptic Gregorian), by the
 * era/day-of-era arithmetic; gmtime_r takes glibc's time zone lock on every
 * call, which showed up under load in the API. */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* v (0 <= v < 10^n) in n digits, zero-padded. */
static void
put_digits(char *out, int n, int v)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

const char *
fmt_time(int64_t ts_ms, char *out, size_t outsz)
{
	int64_t s, days, sod;
	int y, m, d;

	if (ts_ms <= 0) {
		snprintf(out, outsz, "-");
		return out;
	}
	s = ts_ms / 1000;
	days = s / 86400;
	sod = s % 86400;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999 || outsz < 25) {
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
			 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
			 (int)(ts_ms % 1000));
		return out;
	}
	/* the same text without printf: every API answer prints two of these */
	put_digits(out, 4, y);
	out[4] = '-';
	put_digits(out + 5, 2, m);
	out[7] = '-';
	put_digits(out + 8, 2, d);
	out[10] = 'T';
	put_digits(out + 11, 2, (int)(sod / 3600));
	out[13] = ':';
	put_digits(out + 14, 2, (int)(sod / 60 % 60));
	out[16] = ':';
	put_digits(out + 17, 2, (int)(sod % 60));
	out[19] = '.';
	put_digits(out + 20, 3, (int)(ts_ms % 1000));
	memcpy(out + 23, "Z", 2);
	return out;
}

char *
file_read(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			p = xrealloc(p, cap);
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
		if (n > max) {
			free(p);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(p);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

int
file_write_atomic(const char *path, const void *data, size_t n, int mode)
{
	char tmp[4096];
	int fd, rc = 0;
	const char *p = data;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (rc == 0 && fchmod(fd, (mode_t)mode) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int
mkdir_p(const char *path, int mode)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

uint64_t
fnv1a_str(uint64_t h, const char *s)
{
	for (const unsigned char *b = (const unsigned char *)s; *b; b++)
		h = (h ^ *b) * 1099511628211ull;
	return h;
}
