/* herr.h - an error code with a human message (and, for API input, the
 * offending field) in fixed buffers, so reporting an error never allocates.
 * Codes are negative: -errno, or HERR_* below -4096 for herd's own. */
#ifndef HERD_HERR_H
#define HERD_HERR_H

#include <errno.h>
#include <stdarg.h>

enum {
	HERR_BASE = -4096,
	HERR_INVALID = -4097,   /* bad input: 400 */
	HERR_NOTFOUND = -4098,  /* 404 */
	HERR_CONFLICT = -4099,  /* exists / still referenced: 409 */
	HERR_TOOBIG = -4100,    /* over a limit: 413 */
	HERR_AUTH = -4101,      /* 401 */
	HERR_FORBIDDEN = -4102, /* 403 */
	HERR_STORE = -4103,     /* store failure: 500 */
	HERR_UNAVAIL = -4104,   /* peer/provider unreachable: 503 */
	HERR_TIMEOUT = -4105,
	HERR_FENCED = -4106,    /* a controller write with a lost lease: never retried */
};

struct herr {
	int code;
	char field[128];   /* JSON path of the offending input, or "" */
	char msg[512];
};

#define HERR_INIT { 0, "", "" }

/* Sets code and message; returns code so callers can `return herr_set(...)`. */
int herr_set(struct herr *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, naming the input field the message is about. */
int herr_field(struct herr *e, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void herr_clear(struct herr *e);
/* Short machine word for a code: "invalid", "not_found", ... */
const char *herr_word(int code);
/* HTTP status for a code. */
int herr_http_status(int code);

#endif
