/* jsonw.h - a small JSON writer onto a struct buf, for hot read paths that
 * would otherwise build a jansson tree only to print it (a list GET). It
 * prints exactly what json_dumps(..., JSON_COMPACT) prints for the same
 * values, so an answer is byte for byte the same whichever path made it:
 * strings escaped as jansson escapes them (", \, \b \f \n \r \t, other
 * control characters as \u00XX, UTF-8 kept as is, invalid UTF-8 refused),
 * integers in decimal. Input is still parsed with jansson (json_unpack). */
#ifndef HERD_JSONW_H
#define HERD_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends s (n bytes) as a JSON string. 0, -EINVAL when s is not valid
 * UTF-8 (b unchanged then, as json_dumps fails), or HERR_TOOBIG. */
int jsonw_str(struct buf *b, const char *s, size_t n);
/* Whether s (n bytes, NULs allowed) is UTF-8 as jansson accepts it (what
 * json_stringn() takes and jsonw_str() prints). */
bool jsonw_utf8_valid(const char *s, size_t n);
/* Appends v in decimal. 0 or HERR_TOOBIG. */
int jsonw_int(struct buf *b, int64_t v);
/* Appends s verbatim (structural text: '{', ",\"key\":"). 0 or HERR_TOOBIG. */
int jsonw_raw(struct buf *b, const char *s, size_t n);

/* Whether text (n bytes) is a JSON object exactly as json_dumps(json_loads(
 * text), JSON_COMPACT) would print it, so it can be copied as is: no
 * whitespace, no reals (their precision is the printer's choice), no
 * integer jansson could not hold, no escape jansson would not write, valid
 * UTF-8, at most JSON_W_DEPTH deep, and none of its top-level keys in
 * reserved (NULL-terminated; may be NULL). Anything else is false: the
 * caller prints it through jansson instead. */
#define JSON_W_DEPTH 64
bool jsonw_is_canonical(const char *text, size_t n, const char *const *reserved);

#endif
