/* httpc.h - a small JSON-over-HTTP client on libcurl, used by the CLI, the
 * agent and `herd meta`. One struct httpc per thread; it keeps its curl
 * handle so connections are reused (keep-alive). Responses are capped. */
#ifndef HERD_HTTPC_H
#define HERD_HTTPC_H

#include <stddef.h>

#include <jansson.h>

#include "herr.h"

struct httpc {
	void *curl;             /* CURL * */
	char base[512];         /* "http://127.0.0.1:7171" (no trailing slash) */
	char auth[512];         /* "Authorization: Bearer ..." or "" */
	long timeout_ms;        /* whole-request timeout; 0 = 30 s */
	size_t max_response;    /* bytes; 0 = 16 MiB */
};

void httpc_init(struct httpc *c, const char *base, const char *token);
void httpc_release(struct httpc *c);

/* Sends method path (e.g. "/v1/groups?limit=10") with an optional JSON body
 * (borrowed). Sets *status to the HTTP status and *resp to the parsed JSON
 * body (owned; NULL if the body was empty or not JSON). Returns 0 when an
 * HTTP answer came back (whatever its status), or HERR_UNAVAIL / HERR_TOOBIG /
 * HERR_TIMEOUT with a message when none did. */
int httpc_json(struct httpc *c, const char *method, const char *path, json_t *body,
	       long *status, json_t **resp, struct herr *err);

/* Like httpc_json, with a body that is already JSON text (NUL-terminated;
 * NULL for none), sent as is: for bodies built without jansson (the agent's
 * metrics batches). */
int httpc_json_text(struct httpc *c, const char *method, const char *path, const char *body,
		    long *status, json_t **resp, struct herr *err);

/* Like httpc_json, but a non-2xx answer becomes an error too: the message is
 * the server's error message (and err->field its field). */
int httpc_call(struct httpc *c, const char *method, const char *path, json_t *body,
	       json_t **resp, struct herr *err);

/* Streams the response body of GET path to a callback as it arrives (for
 * --follow). The callback returns 0 to go on, non-zero to stop. */
int httpc_stream(struct httpc *c, const char *path,
		 int (*cb)(const char *data, size_t n, void *arg), void *arg,
		 long *status, struct herr *err);

/* Percent-encodes s for a URL path segment or query value (every byte but
 * A-Z a-z 0-9 - . _ ~, upper-case hex; curl_easy_escape). Owned result,
 * free() it. */
char *httpc_escape(const char *s);

#endif
