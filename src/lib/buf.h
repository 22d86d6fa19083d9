/* buf.h - a growable byte buffer with a hard maximum (like curl's dynbuf):
 * anything a peer can grow goes through one of these, and passing `max`
 * is an error the caller turns into a 413 or a driver error. */
#ifndef HERD_BUF_H
#define HERD_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;        /* always NUL-terminated when non-NULL */
	size_t len;     /* bytes used, excluding the NUL */
	size_t cap;     /* bytes allocated */
	size_t max;     /* hard limit on len */
	bool truncated; /* buf_add_trunc dropped bytes */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Appends; returns 0, or HERR_TOOBIG (leaving b unchanged) past max. */
int buf_add(struct buf *b, const void *data, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends what fits under max and sets b->truncated if anything was cut. */
void buf_add_trunc(struct buf *b, const void *data, size_t n);
/* Hands the bytes to the caller (who frees them) and resets b. */
char *buf_steal(struct buf *b);

#endif
