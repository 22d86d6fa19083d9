/* httpc.h - a small JSON-over-HTTP client, used by the CLI, the agent and
 * `herd meta`. Two implementations of this one interface: httpc.c on libcurl
 * (the herd binary), and the static agent's own HTTP/1.1 client with mbedTLS
 * (herd-agent). One struct httpc per thread; it keeps its connection so
 * requests reuse it (keep-alive). Responses are capped.
 *
 * TLS (an https:// base): by default the server is verified like curl does,
 * against the system's CA store, names included. httpc_trust_cafile trusts
 * a PEM file instead (the CLI's --cacert); httpc_trust_ca_pem trusts exactly
 * one CA given in memory (a pinned private CA, whose every certificate is the
 * server: the name check may be off); httpc_pin_ca fetches the server's CA
 * (GET /v1/tls/ca, PEM, unauthenticated), accepts it only if the SHA-256 of
 * its DER is the expected fingerprint, then trusts exactly it. */
#ifndef HERD_HTTPC_H
#define HERD_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "herr.h"

struct httpc {
	void *curl;             /* CURL * */
	char base[512];         /* "http://127.0.0.1:7171" (no trailing slash) */
	char auth[512];         /* "Authorization: Bearer ..." or "" */
	long timeout_ms;        /* whole-request timeout; 0 = 30 s */
	size_t max_response;    /* bytes; 0 = 16 MiB */
	void *impl;             /* the implementation's own state, or NULL */
	char cafile[256];       /* PEM file of trusted CAs; "" = the system store */
	char *ca_pem;           /* owned: the one CA trusted, PEM; NULL = none */
	bool verify_host;       /* check the certificate's names (default true) */
	bool insecure;          /* verify nothing (the CLI's --insecure) */
};

void httpc_init(struct httpc *c, const char *base, const char *token);
void httpc_release(struct httpc *c);

/* TLS settings (see the top); take effect on the next request. */
void httpc_trust_cafile(struct httpc *c, const char *path);
void httpc_trust_ca_pem(struct httpc *c, const char *pem, size_t len, bool verify_host);
void httpc_insecure(struct httpc *c);
/* Fingerprint: 64 hex digits (either case; ':' separators allowed), the
 * SHA-256 of the CA certificate's DER. Returns 0 once the CA is trusted;
 * HERR_UNAVAIL when the server cannot be reached (retry), HERR_FORBIDDEN with
 * a message naming both fingerprints when the server's CA is another one. */
int httpc_pin_ca(struct httpc *c, const char *fingerprint, struct herr *err);

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

/* Like httpc_json_text, with the answer's bytes appended to resp (the
 * caller's, NUL-terminated, at most resp->max: past it, HERR_TOOBIG) and not
 * parsed: for answers the caller reads itself (the push's, every second). */
int httpc_text(struct httpc *c, const char *method, const char *path, const char *body,
	       long *status, struct buf *resp, struct herr *err);

/* Like httpc_text, with a body of len bytes that need not be text (NULs
 * allowed; NULL for none) sent as Content-Type ctype: for bodies that are
 * not JSON (the agent's protobuf push, PUSHWIRE_CONTENT_TYPE). ctype must
 * be printable ASCII ("type/subtype[; params]"): anything else is
 * HERR_INVALID and nothing is sent. */
int httpc_send(struct httpc *c, const char *method, const char *path, const char *ctype,
	       const void *body, size_t len, long *status, struct buf *resp, struct herr *err);
/* Whether ctype can go in a Content-Type header as is (httpc_send's check):
 * 1 to 127 bytes of printable ASCII. */
bool httpc_ctype_is_valid(const char *ctype);

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
