/* notify/notify.h - alert delivery's channels: a receiver (a `receivers:`
 * resource, parsed by receiver_parse, the one validator the kind and the
 * delivery worker share) and the drivers that send a batch of alert events
 * to it: webhook (JSON signed with HMAC-SHA256), email (SMTP through
 * libcurl) and alertmanager (Alertmanager's v2 API). Drivers know their
 * protocol and nothing of herd's tables: events come as JSON objects (the
 * form of alert_event_list). The pure parts (routing, the retry schedule,
 * the signature, the payloads) are here for unit tests; ctl/notify.c
 * decides when to send and acts. */
#ifndef HERD_NOTIFY_H
#define HERD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

#define NOTIFY_TO_MAX 20               /* email recipients */
#define NOTIFY_BATCH_MAX 100           /* events in one notification */
#define NOTIFY_GROUP_WAIT_MS 10000     /* group_wait by default */
#define NOTIFY_TIMEOUT_MS 10000        /* per request, by default */
#define NOTIFY_SECRET_MAX 1024         /* bytes of a secret or password file */
#define NOTIFY_RESPONSE_MAX 65536      /* bytes of an answer kept (the rest is read, dropped) */
#define NOTIFY_BACKOFF_FIRST_MS 1000   /* first retry after a failure ... */
#define NOTIFY_BACKOFF_MAX_MS 300000   /* ... doubling up to 5 min */

enum notify_type { NOTIFY_WEBHOOK, NOTIFY_EMAIL, NOTIFY_ALERTMANAGER };

/* A receiver, parsed. Strings are borrowed from the spec it was parsed
 * from (which must outlive it); match lists are borrowed arrays of strings,
 * NULL = any. */
struct receiver {
	const char *name;
	enum notify_type type;
	const char *url;
	const char *secret_file;      /* webhook: HMAC key, read at each send */
	const char *from;             /* email */
	const char *to[NOTIFY_TO_MAX];
	int nto;
	const char *user;             /* email: SMTP login, or NULL */
	const char *password_file;    /* email: its password, read at each send */
	const json_t *severities, *rules, *clusters, *groups;   /* match */
	int64_t group_wait_ms;
	int64_t timeout_ms;
};

/* Parses and checks spec (a receiver's stored or submitted spec): type,
 * the URL's scheme for the type, the type's required fields, match.
 * 0, or HERR_INVALID naming the field (relative to the spec). */
int receiver_parse(const char *name, const json_t *spec, struct receiver *r, struct herr *err);

/* Whether event ev (an alert_event_list object) goes to r: every match
 * list given holds the event's value (clusters/groups: "CLUSTER/GROUP" or
 * "CLUSTER" in groups matches too). */
bool receiver_match(const struct receiver *r, const json_t *ev);

/* The retry schedule: the wait before attempt `failures`+1 after
 * `failures` (>= 1) failures in a row: NOTIFY_BACKOFF_FIRST_MS doubling,
 * capped at NOTIFY_BACKOFF_MAX_MS, then jittered into [d/2, d) by
 * jitter in [0, 1) so that receivers coming back are not hit all at once. */
int64_t notify_backoff_ms(int failures, double jitter);

/* What one attempt's outcome means. */
enum notify_outcome {
	NOTIFY_OK,       /* delivered: advance */
	NOTIFY_RETRY,    /* the receiver is down or busy: same batch, later */
	NOTIFY_DROP,     /* refused for good (a 4xx other than 408/429, SMTP 5xx): skip it */
};

/* Decides the outcome from the transport's code (0 = an answer came) and
 * the answer's status (HTTP, or SMTP's last reply code when smtp). */
enum notify_outcome notify_classify(int rc, long status, bool smtp);

/* A stable id of an alert instance (rule, cluster, group, key): 16 hex
 * digits + NUL, the same for all its events, so receivers can dedupe. */
void notify_fingerprint(const json_t *ev, char out[17]);

/* The webhook's signature header value, "sha256=" + 64 hex digits: the
 * HMAC-SHA256 under key of "TS.BODY" (ts: the X-Herd-Timestamp header's
 * value, unix seconds). out needs 72 bytes. */
void notify_webhook_sign(const unsigned char *key, size_t key_len, int64_t ts_s,
			 const char *body, size_t body_len, char out[72]);

/* The webhook's JSON body (owned) for events of one receiver. */
json_t *notify_webhook_body(const char *receiver, const json_t *events);

/* Alertmanager v2's POST /api/v2/alerts body (owned array) for events. */
json_t *notify_am_payload(const json_t *events);

/* The email (headers and text, CRLF lines; owned, NUL-terminated) for
 * events; now_ms dates it. Header values carry no control characters. */
char *notify_email_message(const struct receiver *r, const json_t *events, int64_t now_ms);

/* Sends events (a non-empty array) to r. rc 0 = an answer came: *status
 * holds it (HTTP status, or SMTP's last reply code); else HERR_UNAVAIL /
 * HERR_TIMEOUT (retry) or another code with err set. */
int notify_send(const struct receiver *r, const json_t *events, long *status, struct herr *err);

/* --- the drivers' shared parts (notify.c) --- */
/* Reads a secret file (an absolute path, mode 0600 or stricter, at most
 * NOTIFY_SECRET_MAX bytes, a trailing newline dropped) into out (wipe it
 * with sodium_memzero after use); *len its bytes. */
int notify_secret_read(const char *path, const char *field, unsigned char *out, size_t outsz,
		       size_t *len, struct herr *err);
/* POSTs body (JSON) to url with the extra headers (NULL-terminated, may be
 * NULL); timeout_ms for the whole request; the answer is read up to
 * NOTIFY_RESPONSE_MAX and dropped. 0 with *status, or HERR_UNAVAIL /
 * HERR_TIMEOUT. */
int notify_http_post(const char *url, const char *const *headers, const char *body,
		     size_t body_len, int64_t timeout_ms, long *status, struct herr *err);

/* Cuts every send under way and to come (the server is stopping). */
void notify_abort_sends(void);
/* libcurl's progress callback that does it: set on every handle. */
int notify_xferinfo(void *arg, long long dltotal, long long dlnow, long long ultotal,
		    long long ulnow);

int notify_webhook_send(const struct receiver *r, const json_t *events, long *status,
			struct herr *err);
int notify_email_send(const struct receiver *r, const json_t *events, long *status,
		      struct herr *err);
int notify_am_send(const struct receiver *r, const json_t *events, long *status,
		   struct herr *err);

#endif
