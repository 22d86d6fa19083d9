/* chunk.c - the sample codec described in chunk.h: varints, an adaptive
 * bit code for small integers (shared by timestamps and integral values),
 * decimal detection for values, and Gorilla's XOR coding as the fallback.
 * Written for herd; plain functions with no state, driven directly by the
 * unit test and the fuzz target. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "herr.h"
#include "xalloc.h"

/* --- bits --- */

struct bitw {
	uint8_t *p;
	uint64_t acc;   /* pending bits in the low end */
	unsigned n;     /* how many, < 8 between calls */
};

static inline void
bw_put32(struct bitw *w, uint64_t v, unsigned k)
{
	w->acc = (w->acc << k) | v;
	w->n += k;
	while (w->n >= 8) {
		w->n -= 8;
		*w->p++ = (uint8_t)(w->acc >> w->n);
	}
}

/* Writes the low k bits of v (k <= 64), most significant first. */
static inline void
bw_put(struct bitw *w, uint64_t v, unsigned k)
{
	if (k == 0)
		return;
	if (k > 32) {
		bw_put32(w, v >> 32 & ((k == 64) ? 0xffffffffu : ((1ull << (k - 32)) - 1)), k - 32);
		bw_put32(w, v & 0xffffffffu, 32);
	} else {
		bw_put32(w, k == 32 ? v & 0xffffffffu : v & ((1ull << k) - 1), k);
	}
}

static inline uint8_t *
bw_end(struct bitw *w)
{
	if (w->n)
		*w->p++ = (uint8_t)(w->acc << (8 - w->n));
	w->n = 0;
	return w->p;
}

struct bitr {
	const uint8_t *p, *end;
	uint64_t acc;   /* bits, most significant first */
	unsigned n;     /* valid bits at the top of acc */
	bool bad;       /* read past the end */
};

static inline void
br_refill(struct bitr *b)
{
	if (b->end - b->p >= 8) {
		uint64_t v;
		unsigned k;

		memcpy(&v, b->p, 8);
		v = __builtin_bswap64(v);
		b->acc |= v >> b->n;
		k = (63 - b->n) >> 3;
		b->p += k;
		b->n += k * 8;
	} else {
		while (b->n <= 56 && b->p < b->end) {
			b->acc |= (uint64_t)*b->p++ << (56 - b->n);
			b->n += 8;
		}
	}
}

/* Reads k bits, 0 <= k <= 56. */
static inline uint64_t
br_read(struct bitr *b, unsigned k)
{
	uint64_t v;

	if (k == 0)
		return 0;
	if (b->n < k) {
		br_refill(b);
		if (b->n < k) {
			b->bad = true;
			b->n = 0;
			b->acc = 0;
			b->p = b->end;
			return 0;
		}
	}
	v = b->acc >> (64 - k);
	b->acc <<= k;
	b->n -= k;
	return v;
}

static inline uint64_t
br_read64(struct bitr *b, unsigned k)
{
	uint64_t hi;

	if (k <= 56)
		return br_read(b, k);
	hi = br_read(b, k - 32);
	return hi << 32 | br_read(b, 32);
}

/* Bytes consumed so far (whole bytes; a partial last byte counts). */
static inline size_t
br_used(const struct bitr *b, const uint8_t *start)
{
	return (size_t)(b->p - start) - b->n / 8;
}

/* --- varints --- */

size_t
chunk_put_uvarint(uint8_t *out, uint64_t v)
{
	size_t i = 0;

	while (v >= 0x80) {
		out[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[i++] = (uint8_t)v;
	return i;
}

size_t
chunk_get_uvarint(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t r = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		if (i == 9 && p[i] > 1)
			return 0;
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

static inline uint64_t
zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
unzz(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline unsigned
width(uint64_t x)
{
	return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

/* --- the adaptive integer code ---
 * A block of m unsigned integers (zig-zagged residuals) is written as a
 * shape byte, widths, then one symbol per integer:
 *   ZERO   all zero: nothing more;
 *   FIXED  w2: each integer in w2 bits;
 *   TWO    w1 w2: '0' + w1 bits | '1' + w2 bits;
 *   THREE  w1 w2: '0' = zero | '10' + w1 bits | '11' + w2 bits.
 * The encoder picks the shape and widths with the fewest bits for this
 * block, from a histogram of bit widths. */

enum { IC_ZERO = 0, IC_FIXED = 1, IC_TWO = 2, IC_THREE = 3 };

struct icode {
	unsigned shape, w1, w2;
	uint64_t bits;  /* payload bits */
};

static void
icode_plan(const uint64_t *u, size_t m, struct icode *ic)
{
	size_t hist[65] = { 0 }, le[65];
	unsigned w2 = 0;
	uint64_t best, c;

	for (size_t i = 0; i < m; i++)
		hist[width(u[i])]++;
	le[0] = hist[0];
	for (unsigned w = 1; w <= 64; w++)
		le[w] = le[w - 1] + hist[w];
	for (unsigned w = 64; w > 0; w--)
		if (hist[w]) {
			w2 = w;
			break;
		}
	ic->w1 = 0;
	ic->w2 = w2;
	if (w2 == 0) {
		ic->shape = IC_ZERO;
		ic->bits = 0;
		return;
	}
	ic->shape = IC_FIXED;
	best = (uint64_t)m * w2;
	for (unsigned w1 = 0; w1 < w2; w1++) {
		c = (uint64_t)le[w1] * (1 + w1) + (uint64_t)(m - le[w1]) * (1 + w2);
		if (c < best) {
			best = c;
			ic->shape = IC_TWO;
			ic->w1 = w1;
		}
		if (w1 == 0)
			continue;
		c = (uint64_t)hist[0] + (uint64_t)(le[w1] - hist[0]) * (2 + w1) +
		    (uint64_t)(m - le[w1]) * (2 + w2);
		if (c < best) {
			best = c;
			ic->shape = IC_THREE;
			ic->w1 = w1;
		}
	}
	ic->bits = best;
}

static uint8_t *
icode_write(const uint64_t *u, size_t m, const struct icode *ic, uint8_t *out)
{
	struct bitw w = { out, 0, 0 };

	*w.p++ = (uint8_t)ic->shape;
	if (ic->shape == IC_ZERO)
		return w.p;
	if (ic->shape != IC_FIXED)
		*w.p++ = (uint8_t)ic->w1;
	*w.p++ = (uint8_t)ic->w2;
	switch (ic->shape) {
	case IC_FIXED:
		for (size_t i = 0; i < m; i++)
			bw_put(&w, u[i], ic->w2);
		break;
	case IC_TWO:
		for (size_t i = 0; i < m; i++) {
			if (width(u[i]) <= ic->w1) {
				bw_put(&w, 0, 1);
				bw_put(&w, u[i], ic->w1);
			} else {
				bw_put(&w, 1, 1);
				bw_put(&w, u[i], ic->w2);
			}
		}
		break;
	case IC_THREE:
		for (size_t i = 0; i < m; i++) {
			if (u[i] == 0) {
				bw_put(&w, 0, 1);
			} else if (width(u[i]) <= ic->w1) {
				bw_put(&w, 2, 2);
				bw_put(&w, u[i], ic->w1);
			} else {
				bw_put(&w, 3, 2);
				bw_put(&w, u[i], ic->w2);
			}
		}
		break;
	}
	return bw_end(&w);
}

/* Reads m integers; returns bytes read, or 0 on garbage. */
static size_t
icode_read(const uint8_t *p, size_t len, uint64_t *u, size_t m)
{
	struct bitr b;
	unsigned shape, w1 = 0, w2;
	size_t h;

	if (len < 1)
		return 0;
	shape = p[0];
	if (shape == IC_ZERO) {
		memset(u, 0, m * sizeof(*u));
		return 1;
	}
	if (shape > IC_THREE)
		return 0;
	h = shape == IC_FIXED ? 2 : 3;
	if (len < h)
		return 0;
	if (shape != IC_FIXED)
		w1 = p[1];
	w2 = p[h - 1];
	if (w2 == 0 || w2 > 64 || w1 > w2)
		return 0;
	b = (struct bitr){ p + h, p + len, 0, 0, false };
	switch (shape) {
	case IC_FIXED:
		for (size_t i = 0; i < m; i++)
			u[i] = br_read64(&b, w2);
		break;
	case IC_TWO:
		for (size_t i = 0; i < m; i++)
			u[i] = br_read(&b, 1) ? br_read64(&b, w2) : br_read64(&b, w1);
		break;
	default:
		for (size_t i = 0; i < m; i++) {
			if (br_read(&b, 1) == 0)
				u[i] = 0;
			else
				u[i] = br_read(&b, 1) ? br_read64(&b, w2) : br_read64(&b, w1);
		}
		break;
	}
	if (b.bad)
		return 0;
	return h + br_used(&b, p + h);
}

/* Scratch arrays: on the stack for the usual chunk sizes. */
#define SCRATCH_N 512

/* --- timestamps --- */

size_t
chunk_ts_bound(size_t n)
{
	return 40 + (n * 66 + 7) / 8;
}

size_t
chunk_ts_encode(const int64_t *ts, size_t n, uint8_t *out)
{
	uint64_t stack[SCRATCH_N], *u;
	uint8_t *p = out;
	struct icode ic;
	size_t m;

	p += chunk_put_uvarint(p, n);
	if (n == 0)
		return (size_t)(p - out);
	p += chunk_put_uvarint(p, zz(ts[0]));
	if (n == 1)
		return (size_t)(p - out);
	p += chunk_put_uvarint(p, zz((int64_t)((uint64_t)ts[1] - (uint64_t)ts[0])));
	if (n == 2)
		return (size_t)(p - out);
	m = n - 2;
	u = m <= SCRATCH_N ? stack : xmalloc(m * sizeof(*u));
	for (size_t i = 0; i < m; i++) {
		uint64_t d1 = (uint64_t)ts[i + 2] - (uint64_t)ts[i + 1];
		uint64_t d0 = (uint64_t)ts[i + 1] - (uint64_t)ts[i];
		u[i] = zz((int64_t)(d1 - d0));
	}
	icode_plan(u, m, &ic);
	p = icode_write(u, m, &ic, p);
	if (u != stack)
		free(u);
	return (size_t)(p - out);
}

int
chunk_ts_decode(const uint8_t *p, size_t len, int64_t *ts, size_t cap, size_t *n,
		size_t *used)
{
	uint64_t count, t0, d0, stack[SCRATCH_N], *u;
	size_t off, k, m, r;

	if ((off = chunk_get_uvarint(p, len, &count)) == 0 || count > CHUNK_MAX_SAMPLES)
		return HERR_INVALID;
	*n = (size_t)count;
	if (ts == NULL) {
		if (used)
			*used = off;
		return 0;
	}
	if (count > cap)
		return HERR_INVALID;
	if (count == 0)
		goto done;
	if ((k = chunk_get_uvarint(p + off, len - off, &t0)) == 0)
		return HERR_INVALID;
	off += k;
	ts[0] = unzz(t0);
	if (count == 1)
		goto done;
	if ((k = chunk_get_uvarint(p + off, len - off, &d0)) == 0)
		return HERR_INVALID;
	off += k;
	ts[1] = (int64_t)((uint64_t)ts[0] + (uint64_t)unzz(d0));
	if (count == 2)
		goto done;
	m = (size_t)count - 2;
	u = m <= SCRATCH_N ? stack : xmalloc(m * sizeof(*u));
	r = icode_read(p + off, len - off, u, m);
	if (r) {
		uint64_t d = (uint64_t)ts[1] - (uint64_t)ts[0], t = (uint64_t)ts[1];
		for (size_t i = 0; i < m; i++) {
			d += (uint64_t)unzz(u[i]);
			t += d;
			ts[i + 2] = (int64_t)t;
		}
	}
	if (u != stack)
		free(u);
	if (r == 0)
		return HERR_INVALID;
	off += r;
done:
	if (used)
		*used = off;
	return 0;
}

/* --- values --- */

static const double pow10_tab[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };
#define DEC_MAX 6
#define NUM_LIMIT 9007199254740992.0 /* 2^53 */

static inline uint64_t
dbits(double v)
{
	uint64_t u;

	memcpy(&u, &v, 8);
	return u;
}

static inline double
bitsd(uint64_t u)
{
	double v;

	memcpy(&v, &u, 8);
	return v;
}

static inline double
num_value(int64_t m, int d)
{
	return d ? (double)m / pow10_tab[d] : (double)m;
}

/* Whether v is exactly m / 10^d for an integer |m| <= 2^53; sets *m. */
static inline bool
dec_ok(double v, int d, int64_t *m)
{
	double s = v * pow10_tab[d];
	int64_t i;

	if (!(s >= -NUM_LIMIT && s <= NUM_LIMIT))
		return false;
	i = (int64_t)llrint(s);
	if (dbits(num_value(i, d)) != dbits(v))
		return false;
	*m = i;
	return true;
}

/* The smallest d for which every value is a decimal with d places, filling
 * m; -1 if there is none. */
static int
dec_analyse(const double *v, size_t n, int64_t *m)
{
	int d = 0;

restart:
	for (size_t i = 0; i < n; i++) {
		if (dec_ok(v[i], d, &m[i]))
			continue;
		while (++d <= DEC_MAX)
			if (dec_ok(v[i], d, &m[i]))
				goto restart;
		return -1;
	}
	return d;
}

static void
residuals(const int64_t *m, size_t n, int order, uint64_t *u)
{
	switch (order) {
	case 0:
		for (size_t i = 0; i < n; i++)
			u[i] = zz(m[i]);
		break;
	case 1:
		for (size_t i = 1; i < n; i++)
			u[i - 1] = zz((int64_t)((uint64_t)m[i] - (uint64_t)m[i - 1]));
		break;
	default:
		for (size_t i = 2; i < n; i++) {
			uint64_t d1 = (uint64_t)m[i] - (uint64_t)m[i - 1];
			uint64_t d0 = (uint64_t)m[i - 1] - (uint64_t)m[i - 2];
			u[i - 2] = zz((int64_t)(d1 - d0));
		}
		break;
	}
}

size_t
chunk_val_bound(size_t n)
{
	return 40 + (n * 77 + 7) / 8;
}

static uint8_t *
xor_write(const double *v, size_t n, uint8_t *p)
{
	struct bitw w;
	uint64_t prev = dbits(v[0]);
	unsigned plead = 255, ptrail = 0;

	memcpy(p, &prev, 8); /* little-endian hosts only, like the rest of herd */
	w = (struct bitw){ p + 8, 0, 0 };
	for (size_t i = 1; i < n; i++) {
		uint64_t cur = dbits(v[i]), x = cur ^ prev;
		unsigned lead, trail, sig;

		prev = cur;
		if (x == 0) {
			bw_put(&w, 0, 1);
			continue;
		}
		lead = (unsigned)__builtin_clzll(x);
		trail = (unsigned)__builtin_ctzll(x);
		if (lead > 31)
			lead = 31;
		if (plead != 255 && lead >= plead && trail >= ptrail) {
			bw_put(&w, 2, 2);
			bw_put(&w, x >> ptrail, 64 - plead - ptrail);
			continue;
		}
		sig = 64 - lead - trail;
		bw_put(&w, 3, 2);
		bw_put(&w, lead, 5);
		bw_put(&w, sig & 63, 6);
		bw_put(&w, x >> trail, sig);
		plead = lead;
		ptrail = trail;
	}
	return bw_end(&w);
}

static size_t
xor_read(const uint8_t *p, size_t len, size_t n, double *v)
{
	struct bitr b;
	uint64_t prev;
	unsigned plead = 255, ptrail = 0;

	if (len < 8)
		return 0;
	memcpy(&prev, p, 8);
	v[0] = bitsd(prev);
	b = (struct bitr){ p + 8, p + len, 0, 0, false };
	for (size_t i = 1; i < n; i++) {
		if (br_read(&b, 1) == 0) {
			v[i] = bitsd(prev);
			continue;
		}
		if (br_read(&b, 1) == 0) {
			if (plead == 255)
				return 0;
			prev ^= br_read64(&b, 64 - plead - ptrail) << ptrail;
		} else {
			unsigned lead = (unsigned)br_read(&b, 5), sig = (unsigned)br_read(&b, 6);
			if (sig == 0)
				sig = 64;
			if (lead + sig > 64)
				return 0;
			plead = lead;
			ptrail = 64 - lead - sig;
			prev ^= br_read64(&b, sig) << ptrail;
		}
		if (b.bad)
			return 0;
		v[i] = bitsd(prev);
	}
	if (b.bad)
		return 0;
	return 8 + br_used(&b, p + 8);
}

size_t
chunk_val_encode(const double *v, size_t n, uint8_t *out)
{
	int64_t mstack[SCRATCH_N], *m;
	uint64_t ustack[SCRATCH_N], *u;
	uint8_t *p = out;
	struct icode best = { 0 }, ic;
	int d, order = 0;
	size_t i;

	if (n == 0) {
		*p++ = CHUNK_CONST;
		return 1;
	}
	for (i = 1; i < n && dbits(v[i]) == dbits(v[0]); i++)
		;
	if (i == n) {
		uint64_t b = dbits(v[0]);
		*p++ = CHUNK_CONST;
		memcpy(p, &b, 8);
		return 9;
	}
	m = n <= SCRATCH_N ? mstack : xmalloc(n * sizeof(*m));
	u = n <= SCRATCH_N ? ustack : xmalloc(n * sizeof(*u));
	d = dec_analyse(v, n, m);
	if (d < 0) {
		*p++ = CHUNK_XOR;
		p = xor_write(v, n, p);
		goto out;
	}
	/* pick the order with the fewest payload bits (header bytes count too) */
	for (int o = 0; o <= 2 && (size_t)o <= n; o++) {
		size_t cnt = n - (size_t)o;
		residuals(m, n, o, u);
		icode_plan(u, cnt, &ic);
		ic.bits += (uint64_t)o * 24; /* rough cost of the varint heads */
		if (o == 0 || ic.bits < best.bits) {
			best = ic;
			order = o;
		}
	}
	*p++ = CHUNK_NUM;
	*p++ = (uint8_t)(d << 2 | order);
	if (order >= 1)
		p += chunk_put_uvarint(p, zz(m[0]));
	if (order == 2)
		p += chunk_put_uvarint(p, zz((int64_t)((uint64_t)m[1] - (uint64_t)m[0])));
	if (n > (size_t)order) {
		residuals(m, n, order, u);
		icode_plan(u, n - (size_t)order, &best);
		p = icode_write(u, n - (size_t)order, &best, p);
	}
out:
	if (m != mstack)
		free(m);
	if (u != ustack)
		free(u);
	return (size_t)(p - out);
}

int
chunk_val_mode(const uint8_t *p, size_t len, int *decimals)
{
	if (len < 1 || p[0] > CHUNK_XOR)
		return -1;
	if (decimals)
		*decimals = p[0] == CHUNK_NUM && len >= 2 ? p[1] >> 2 : 0;
	return p[0];
}

int
chunk_val_decode(const uint8_t *p, size_t len, size_t n, double *v, size_t *used)
{
	uint64_t ustack[SCRATCH_N], *u, h;
	size_t off = 2, k, r = 0;
	int d, order;
	int64_t m0 = 0, d0 = 0;

	if (len < 1 || n > CHUNK_MAX_SAMPLES)
		return HERR_INVALID;
	switch (p[0]) {
	case CHUNK_CONST:
		if (n == 0) {
			if (used)
				*used = 1;
			return 0;
		}
		if (len < 9)
			return HERR_INVALID;
		memcpy(&h, p + 1, 8);
		for (size_t i = 0; i < n; i++)
			v[i] = bitsd(h);
		if (used)
			*used = 9;
		return 0;
	case CHUNK_XOR:
		if (n == 0 || (r = xor_read(p + 1, len - 1, n, v)) == 0)
			return HERR_INVALID;
		if (used)
			*used = 1 + r;
		return 0;
	case CHUNK_NUM:
		break;
	default:
		return HERR_INVALID;
	}
	if (len < 2 || n == 0)
		return HERR_INVALID;
	d = p[1] >> 2;
	order = p[1] & 3;
	if (d > DEC_MAX || order > 2 || (size_t)order > n)
		return HERR_INVALID;
	if (order >= 1) {
		if ((k = chunk_get_uvarint(p + off, len - off, &h)) == 0)
			return HERR_INVALID;
		off += k;
		m0 = unzz(h);
	}
	if (order == 2) {
		if ((k = chunk_get_uvarint(p + off, len - off, &h)) == 0)
			return HERR_INVALID;
		off += k;
		d0 = unzz(h);
	}
	if (n == (size_t)order) {
		v[0] = num_value(m0, d);
		if (n == 2)
			v[1] = num_value((int64_t)((uint64_t)m0 + (uint64_t)d0), d);
		if (used)
			*used = off;
		return 0;
	}
	u = n <= SCRATCH_N ? ustack : xmalloc(n * sizeof(*u));
	r = icode_read(p + off, len - off, u, n - (size_t)order);
	if (r) {
		switch (order) {
		case 0:
			for (size_t i = 0; i < n; i++)
				v[i] = num_value(unzz(u[i]), d);
			break;
		case 1: {
			uint64_t x = (uint64_t)m0;
			v[0] = num_value(m0, d);
			for (size_t i = 1; i < n; i++) {
				x += (uint64_t)unzz(u[i - 1]);
				v[i] = num_value((int64_t)x, d);
			}
			break;
		}
		default: {
			uint64_t x = (uint64_t)m0 + (uint64_t)d0, dd = (uint64_t)d0;
			v[0] = num_value(m0, d);
			v[1] = num_value((int64_t)x, d);
			for (size_t i = 2; i < n; i++) {
				dd += (uint64_t)unzz(u[i - 2]);
				x += dd;
				v[i] = num_value((int64_t)x, d);
			}
			break;
		}
		}
	}
	if (u != ustack)
		free(u);
	if (r == 0)
		return HERR_INVALID;
	if (used)
		*used = off + r;
	return 0;
}

/* --- whole chunks --- */

size_t
chunk_bound(size_t n)
{
	return 1 + chunk_ts_bound(n) + chunk_val_bound(n);
}

size_t
chunk_encode(const int64_t *ts, const double *v, size_t n, uint8_t *out)
{
	size_t k = 1;

	out[0] = CHUNK_VERSION;
	k += chunk_ts_encode(ts, n, out + k);
	k += chunk_val_encode(v, n, out + k);
	return k;
}

int
chunk_decode(const uint8_t *p, size_t len, int64_t *ts, double *v, size_t cap)
{
	size_t n, used;

	if (len < 1 || p[0] != CHUNK_VERSION)
		return HERR_INVALID;
	if (chunk_ts_decode(p + 1, len - 1, ts, cap, &n, &used) < 0)
		return HERR_INVALID;
	if (chunk_val_decode(p + 1 + used, len - 1 - used, n, v, NULL) < 0)
		return HERR_INVALID;
	return (int)n;
}
