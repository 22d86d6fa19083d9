/* httpc-mini.h - the pure pieces of herd-agent's HTTP client (httpc-mini.c),
 * apart so that unit tests reach them: URL bases, request heads, response
 * heads, chunked bodies and CA fingerprints. The client itself is src/lib/httpc.h's. */
#ifndef HERD_HTTPC_MINI_H
#define HERD_HTTPC_MINI_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* "http[s]://host[:port]" (host may be "[v6]"). Returns 0 or -1. */
struct hm_url {
	bool tls;
	char host[256];         /* without brackets */
	char port[8];
};
int hm_url_parse(const char *base, struct hm_url *u);

/* The request into req (reset first): its head and, when with_body, the
 * body after it (blen bytes, NULs allowed), so that one send carries both
 * (one TCP segment, one TLS record, instead of two per request). auth is a
 * whole header line without its CRLF, or ""; ctype the body's content type
 * (checked by the caller: httpc_ctype_is_valid). Content-Length is sent
 * when there is a body and for any method but GET and DELETE. Returns 0,
 * or HERR_TOOBIG past req's max. */
int hm_request_build(struct buf *req, const char *method, const char *path,
		     const struct hm_url *u, const char *auth, const char *ctype, const char *body,
		     size_t blen, bool with_body);

/* A response head (status line + headers, ending in an empty line). */
struct hm_head {
	long status;
	long long content_length; /* -1 = none */
	bool chunked;
	bool close;               /* Connection: close, or HTTP/1.0 without keep-alive */
};
/* Parses head (len bytes, the blank line included). Returns 0 or -1. */
int hm_head_parse(const char *head, size_t len, struct hm_head *h);

/* Chunked transfer decoding, fed as bytes arrive. */
struct hm_chunk {
	int state;              /* HM_CH_* in httpc-mini.c */
	unsigned long long left; /* bytes left in the current chunk */
	size_t linelen;         /* bytes of the current size/trailer line */
};
/* Consumes up to n bytes of in; data bytes are handed to out(arg, p, k).
 * Returns the bytes consumed (< n only when the body ended), -1 on a
 * malformed body, or out's non-zero return. *done is set at the end. */
long hm_chunk_feed(struct hm_chunk *ch, const char *in, size_t n, bool *done,
		   int (*out)(void *arg, const char *p, size_t k), void *arg);

#endif
