/* herr.c - error values with messages; see herr.h. */
#include <stdio.h>
#include <string.h>

#include "herr.h"

static int
herr_vset(struct herr *e, int code, const char *field, const char *fmt, va_list ap)
{
	if (e == NULL)
		return code;
	e->code = code;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return code;
}

int
herr_set(struct herr *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	herr_vset(e, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int
herr_field(struct herr *e, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	herr_vset(e, code, field, fmt, ap);
	va_end(ap);
	return code;
}

void
herr_clear(struct herr *e)
{
	e->code = 0;
	e->field[0] = '\0';
	e->msg[0] = '\0';
}

const char *
herr_word(int code)
{
	switch (code) {
	case HERR_INVALID: return "invalid";
	case HERR_NOTFOUND: return "not_found";
	case HERR_CONFLICT: return "conflict";
	case HERR_TOOBIG: return "too_big";
	case HERR_AUTH: return "unauthorized";
	case HERR_FORBIDDEN: return "forbidden";
	case HERR_UNAVAIL: return "unavailable";
	case HERR_TIMEOUT: return "timeout";
	case HERR_FENCED: return "fenced";
	case -ENOTSUP: return "not_supported";
	default: return "internal";
	}
}

int
herr_http_status(int code)
{
	switch (code) {
	case HERR_INVALID: return 400;
	case HERR_NOTFOUND: return 404;
	case HERR_CONFLICT: return 409;
	case HERR_TOOBIG: return 413;
	case HERR_AUTH: return 401;
	case HERR_FORBIDDEN: return 403;
	case HERR_UNAVAIL: return 503;
	case HERR_TIMEOUT: return 504;
	case HERR_FENCED: return 409;
	case -ENOTSUP: return 501;
	default: return 500;
	}
}
