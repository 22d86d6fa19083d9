/* util.h - small helpers shared by every part: clocks, random tokens,
 * hashing, names, durations. */
#ifndef HERD_UTIL_H
#define HERD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"

int64_t now_ms(void);   /* wall clock, ms since the epoch */
int64_t mono_ms(void);  /* monotonic clock, ms */
void sleep_ms(int64_t ms);

/* Writes a random token of `nbytes` random bytes as lowercase hex into out
 * (needs 2*nbytes+1 bytes); with a prefix like "hd_" prepended if given. */
void token_random(char *out, size_t outsz, const char *prefix, size_t nbytes);
/* SHA-256 of data as 64 lower-case hex chars + NUL (libsodium: util-crypto.c;
 * herd-agent: mbedTLS, src/hostbin/crypto-mbed.c). */
void sha256_hex(const void *data, size_t n, char out[65]);
/* SipHash-2-4 with a 128-bit output (libsodium's siphashx24) of data, the
 * key random per process: an in-memory cache's key for a secret (the API's
 * credentials cache), a tenth of a SHA-256 and of no use outside this
 * process. The server only (libsodium; herd-agent has none). */
#define CACHE_HASH_BYTES 16
void cache_hash(const void *data, size_t n, unsigned char out[CACHE_HASH_BYTES]);
/* Constant-time equality of n bytes (libsodium; the server only). */
bool mem_ct_equal(const void *a, const void *b, size_t n);
/* Constant-time string equality (lengths may leak). */
bool str_ct_equal(const char *a, const char *b);

/* A DNS label: 1-63 chars of [a-z0-9-], not starting or ending with '-'. */
bool name_is_valid(const char *s);
/* A script name: 1-100 chars of [A-Za-z0-9._-], not starting with '.'. */
bool script_name_is_valid(const char *s);

/* A duration: "250ms", "10s", "1m30s", "1.5h", "2d", or a bare number of
 * seconds. Each unit (d h m s ms) at most once, largest first; digits with
 * an optional fraction, no sign, exponent, hex, inf/nan or spaces; at most
 * DURATION_MAX_MS. The one parser for specs: the API validates with it and
 * the controllers read with it. Returns 0 and sets *ms, or HERR_INVALID. */
#define DURATION_MAX_MS 1e15
int parse_duration_ms(const char *s, int64_t *ms);
/* The duration in a JSON object's field (a string like "10s"), or dflt if it
 * is absent or not a duration (only a spec stored before the API checked
 * durations can hold one). o is a const json_t * (jansson). */
struct json_t;
int64_t json_duration_ms(const struct json_t *o, const char *key, int64_t dflt);

/* An IPv4 network hosts can live on, e.g. "198.18.10.0/24": a dotted quad
 * without leading zeros, prefix NET_PREFIX_MIN-NET_PREFIX_MAX (room for a
 * gateway and hosts), host bits zero, overlapping none of 0.0.0.0/8,
 * 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 240.0.0.0/4. Used by the network
 * API and by the controller reading a stored network. Returns 0 and sets
 * *base (host order) and *prefix, or HERR_INVALID with the reason in err. */
#define NET_PREFIX_MIN 8
#define NET_PREFIX_MAX 30
int net_cidr_parse(const char *s, uint32_t *base, int *prefix, struct herr *err);
bool net_cidr_valid(const char *s);
/* "A.B.C.D:PORT": a dotted quad (no leading zeros) and a port 1-65535 in
 * plain digits (no sign, space or leading zero). */
bool ipv4_port_valid(const char *s);
/* Reads s, a whole decimal integer (an optional '-' then digits, nothing
 * else: no space, sign '+' or hex), within [min, max] into *out; what strtol
 * cannot hold saturates to LONG_MIN/LONG_MAX before the range check. For
 * query parameters and other input: 0, or HERR_INVALID (NULL, empty, junk,
 * out of range; *out untouched). Replaces atoi/atol, which cannot refuse. */
int parse_long(const char *s, long min, long max, long *out);
/* A number a peer herd drives printed (HAProxy's stats, "Pid: 123\n"): the
 * digits at the start of s, ending at the end of s or at white space, if
 * within [min, max]; dflt otherwise. */
long str_long_or(const char *s, long min, long max, long dflt);
/* Formats ms as "1m30s", "250ms", ... into out. */
const char *fmt_duration(int64_t ms, char *out, size_t outsz);
/* ISO-8601 UTC with milliseconds. */
const char *fmt_time(int64_t ts_ms, char *out, size_t outsz);

/* Reads a whole file (at most max bytes); returns malloc'd NUL-terminated
 * text and sets *len, or NULL with errno set (EFBIG past max). */
char *file_read(const char *path, size_t max, size_t *len);
/* Writes data to path atomically (tmp + fsync + rename) with mode. */
int file_write_atomic(const char *path, const void *data, size_t n, int mode);
/* mkdir -p with mode. */
int mkdir_p(const char *path, int mode);

/* FNV-1a (64-bit) of n bytes, continuing from h (FNV1A_INIT to start), and
 * of a string: for in-memory tables and change signatures, never where an
 * adversary picks the input to collide on purpose matters. */
#define FNV1A_INIT 1469598103934665603ull
uint64_t fnv1a(uint64_t h, const void *p, size_t n);
uint64_t fnv1a_str(uint64_t h, const char *s);

#endif
