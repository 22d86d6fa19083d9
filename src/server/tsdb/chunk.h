/* chunk.h - the metric store's sample codec, written for herd (no packaged C
 * library does Gorilla-style chunks): a chunk is a block of (ts_ms, value)
 * samples encoded at once, so the encoder can pick the cheapest coding for
 * the whole block. Timestamps and values are separate blocks, so the store
 * can share one timestamp block between the series pushed in one batch.
 *
 * Timestamp block: n, t0, first delta, then delta-of-deltas in an adaptive
 * bit code whose widths are chosen per block (a regular interval costs 0
 * bits per sample, jitter of a few ms about 4-6).
 *
 * Value block, one mode per chunk:
 *   CONST  every value bit-identical: 8 bytes for the whole chunk;
 *   NUM    every value is m / 10^d exactly (d = 0..6, |m| <= 2^53): the
 *          integers m coded as values, deltas or delta-of-deltas (whichever
 *          is smallest) in the same adaptive bit code - counters, byte
 *          counts, process counts and percentages rounded to 2 decimals;
 *   XOR    otherwise: Gorilla's XOR float coding (bit-exact: NaN payloads,
 *          -0.0 and +-Inf survive).
 *
 * The codec round-trips any int64 timestamps exactly, in any order, with any
 * jumps (arithmetic is modular). Ordering is the store's business: tsdb
 * rejects a sample older than its series' last one and replaces the value
 * of one with the same timestamp (see tsdb.h).
 *
 * Decoders take untrusted bytes (files, fuzzing): they never read past
 * `len`, never write past `cap`, and answer HERR_INVALID on garbage. */
#ifndef HERD_TSDB_CHUNK_H
#define HERD_TSDB_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_MAX_SAMPLES 65535   /* most samples one chunk may hold */
#define CHUNK_VERSION 1           /* first byte of a whole chunk */

enum chunk_val_mode { CHUNK_CONST = 0, CHUNK_NUM = 1, CHUNK_XOR = 2 };

/* Worst-case encoded sizes, bytes, for n samples. */
size_t chunk_ts_bound(size_t n);
size_t chunk_val_bound(size_t n);
size_t chunk_bound(size_t n);

/* Encodes n timestamps into out (at least chunk_ts_bound(n) bytes).
 * Returns the bytes written. n may be 0. */
size_t chunk_ts_encode(const int64_t *ts, size_t n, uint8_t *out);
/* Decodes a timestamp block: the sample count goes to *n, the timestamps to
 * ts (cap entries; ts may be NULL to read the count only), the bytes read
 * to *used. Returns 0, or HERR_INVALID (garbage, or more than cap). */
int chunk_ts_decode(const uint8_t *p, size_t len, int64_t *ts, size_t cap, size_t *n,
		    size_t *used);

/* Encodes n values into out (at least chunk_val_bound(n) bytes), choosing
 * the mode. Returns the bytes written. */
size_t chunk_val_encode(const double *v, size_t n, uint8_t *out);
/* Decodes a value block of n values (n from its timestamp block) into v.
 * Returns 0, or HERR_INVALID. *used (optional) gets the bytes read. */
int chunk_val_decode(const uint8_t *p, size_t len, size_t n, double *v, size_t *used);
/* The mode of an encoded value block (for tests and stats), or -1. When
 * decimals is not NULL it gets d of NUM mode. */
int chunk_val_mode(const uint8_t *p, size_t len, int *decimals);

/* A self-contained chunk: version byte, timestamp block, value block.
 * chunk_encode needs chunk_bound(n) bytes at out and returns the bytes
 * written. chunk_decode fills up to cap samples and returns their count,
 * or HERR_INVALID. */
size_t chunk_encode(const int64_t *ts, const double *v, size_t n, uint8_t *out);
int chunk_decode(const uint8_t *p, size_t len, int64_t *ts, double *v, size_t cap);

/* Varints (LEB128) shared with the store's file formats. put returns bytes
 * written (<= 10); get returns bytes read, or 0 on truncation/overlong. */
size_t chunk_put_uvarint(uint8_t *out, uint64_t v);
size_t chunk_get_uvarint(const uint8_t *p, size_t len, uint64_t *v);

#endif
