/* jsonw.c - the JSON writer of jsonw.h. Written here because jansson keeps
 * its string printer private (dump.c's dump_string is static: printing one
 * string costs a json_t and a json_dumps) and no packaged C library prints
 * JSON byte for byte as jansson does, which the answers must (the same
 * resource reads the same from every path); the rules below are jansson
 * 2.14's dump.c and utf.c, and tests/unit/test-jsonw.c compares the two. */
#include <errno.h>
#include <string.h>

#include "herr.h"
#include "jsonw.h"

int
jsonw_raw(struct buf *b, const char *s, size_t n)
{
	return buf_add(b, s, n);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if it is
 * not one: what jansson's utf8_check_first/utf8_check_full accept (no
 * overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;
	uint32_t v;

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;            /* a continuation byte, or an overlong 2-byte lead */
	if (c < 0xE0)
		len = 2, v = c & 0x1F;
	else if (c < 0xF0)
		len = 3, v = c & 0x0F;
	else if (c < 0xF5)
		len = 4, v = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) ||
	    (len == 4 && v < 0x10000))
		return 0;
	return len;
}

bool
jsonw_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = utf8_len(p + i, n - i)) == 0)
			return false;
		i += k;
	}
	return true;
}

static const char hex_upper[] = "0123456789ABCDEF";

/* The escape jansson writes for byte c (< 0x20, '"' or '\\'), into out;
 * returns its length. */
static size_t
escape_of(unsigned char c, char out[6])
{
	switch (c) {
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '\b': memcpy(out, "\\b", 2); return 2;
	case '\f': memcpy(out, "\\f", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	default:
		memcpy(out, "\\u00", 4);
		out[4] = hex_upper[c >> 4];
		out[5] = hex_upper[c & 0xF];
		return 6;
	}
}

int
jsonw_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = b->len, i = 0, run = 0, k;
	char esc[6], small[128];
	int rc;

	/* the common case, short plain ASCII: quoted in one append */
	if (n <= sizeof(small) - 2) {
		while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] < 0x80)
			i++;
		if (i == n) {
			small[0] = '"';
			memcpy(small + 1, s, n);
			small[n + 1] = '"';
			return buf_add(b, small, n + 2);
		}   /* else the loop below goes on from i: what is before it is plain */
	}
	if ((rc = buf_add(b, "\"", 1)) < 0)
		return rc;
	while (i < n) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0x80) {
			if ((k = utf8_len(p + i, n - i)) == 0) {
				rc = -EINVAL;
				goto undo;
			}
			i += k;
			continue;
		}
		if ((rc = buf_add(b, s + run, i - run)) < 0 ||
		    (rc = buf_add(b, esc, escape_of(p[i], esc))) < 0)
			goto undo;
		run = ++i;
	}
	if ((rc = buf_add(b, s + run, n - run)) < 0 || (rc = buf_add(b, "\"", 1)) < 0)
		goto undo;
	return 0;
undo:
	b->len = start;
	if (b->p)
		b->p[start] = '\0';
	return rc;
}

int
jsonw_int(struct buf *b, int64_t v)
{
	char d[24];
	size_t i = sizeof(d);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		d[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		d[--i] = '-';
	return buf_add(b, d + i, sizeof(d) - i);
}

/* --- the canonical-form check: a recursive descent bounded by depth --- */

struct scan {
	const unsigned char *p, *end;
	const char *const *reserved;
};

static bool scan_value(struct scan *s, int depth);

static bool
is_hex_upper(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* A string as jansson prints it; key and klen (if key) get its raw bytes. */
static bool
scan_string(struct scan *s, const unsigned char **key, size_t *klen)
{
	const unsigned char *start;
	size_t k;

	if (s->p >= s->end || *s->p != '"')
		return false;
	start = ++s->p;
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			if (key) {
				*key = start;
				*klen = (size_t)(s->p - start);
			}
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			unsigned v;
			if (s->end - s->p < 2)
				return false;
			c = s->p[1];
			if (strchr("\"\\bfnrt", c) != NULL && c != '\0') {
				s->p += 2;
				continue;
			}
			/* \u00XX, uppercase, only for a control character
			 * that has no short escape */
			if (c != 'u' || s->end - s->p < 6 || s->p[2] != '0' || s->p[3] != '0' ||
			    !is_hex_upper(s->p[4]) || !is_hex_upper(s->p[5]))
				return false;
			v = (unsigned)(strchr(hex_upper, s->p[4]) - hex_upper) * 16 +
			    (unsigned)(strchr(hex_upper, s->p[5]) - hex_upper);
			if (v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t')
				return false;
			s->p += 6;
			continue;
		}
		if (c >= 0x80) {
			if ((k = utf8_len(s->p, (size_t)(s->end - s->p))) == 0)
				return false;
			s->p += k;
			continue;
		}
		s->p++;
	}
	return false;
}

/* An integer jansson holds and prints back the same: no "-0", no leading
 * zero, at most 18 digits (a longer one may not fit in json_int_t). */
static bool
scan_integer(struct scan *s)
{
	const unsigned char *digits;
	bool neg = s->p < s->end && *s->p == '-';

	s->p += neg;
	digits = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	if (s->p == digits || s->p - digits > 18)
		return false;
	if (*digits == '0' && (s->p - digits > 1 || neg))
		return false;
	/* a fraction or an exponent: a real */
	return s->p == s->end || (*s->p != '.' && *s->p != 'e' && *s->p != 'E');
}

static bool
scan_word(struct scan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool
is_reserved(const struct scan *s, const unsigned char *key, size_t n)
{
	/* no strlen: a reserved key matches when its n bytes do and it ends there */
	for (const char *const *r = s->reserved; r && *r; r++)
		if ((*r)[0] == (char)key[0] && strncmp(*r, (const char *)key, n) == 0 &&
		    (*r)[n] == '\0')
			return true;
	return false;
}

static bool
scan_object(struct scan *s, int depth)
{
	const unsigned char *key;
	size_t klen;

	s->p++;   /* '{' */
	if (s->p < s->end && *s->p == '}')
		return s->p++, true;
	for (;;) {
		if (!scan_string(s, &key, &klen))
			return false;
		if (depth == 1 && is_reserved(s, key, klen))
			return false;
		if (s->p >= s->end || *s->p++ != ':' || !scan_value(s, depth))
			return false;
		if (s->p >= s->end)
			return false;
		if (*s->p == '}')
			return s->p++, true;
		if (*s->p++ != ',')
			return false;
	}
}

static bool
scan_array(struct scan *s, int depth)
{
	s->p++;   /* '[' */
	if (s->p < s->end && *s->p == ']')
		return s->p++, true;
	for (;;) {
		if (!scan_value(s, depth))
			return false;
		if (s->p >= s->end)
			return false;
		if (*s->p == ']')
			return s->p++, true;
		if (*s->p++ != ',')
			return false;
	}
}

static bool
scan_value(struct scan *s, int depth)
{
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{': return depth < JSON_W_DEPTH && scan_object(s, depth + 1);
	case '[': return depth < JSON_W_DEPTH && scan_array(s, depth + 1);
	case '"': return scan_string(s, NULL, NULL);
	case 't': return scan_word(s, "true");
	case 'f': return scan_word(s, "false");
	case 'n': return scan_word(s, "null");
	default: return scan_integer(s);
	}
}

bool
jsonw_is_canonical(const char *text, size_t n, const char *const *reserved)
{
	struct scan s = { (const unsigned char *)text, (const unsigned char *)text + n, reserved };

	if (n == 0 || text[0] != '{')
		return false;
	return scan_value(&s, 0) && s.p == s.end;
}
