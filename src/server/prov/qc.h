/* qc.h - a client for QingCloud's IaaS API (https://api.qingcloud.com/iaas/),
 * the one the qingcloud provider driver calls. Libcurl for HTTP, jansson for
 * JSON, libsodium for HMAC-SHA256 and base64; no OpenSSL.
 *
 * Signing: signature version 1, HmacSHA256, as QingCloud's SDKs compute it
 * (yunify/qingcloud-sdk-go request/signer.go, qingcloud-sdk-python
 * qingcloud/conn/auth.py, the docs' "签名方法" page
 * content/development_docs/api/signature.md in yunify/qingcloud-docs):
 *   string to sign = METHOD "\n" PATH "\n" QUERY
 * where PATH is the endpoint's path ("/iaas/") and QUERY the parameters
 * sorted by name in byte order, name=value joined by '&', names and values
 * percent-encoded keeping only RFC 3986's unreserved bytes (A-Z a-z 0-9 - . _ ~),
 * upper-case hex, space as "%20" (never '+'). The HMAC-SHA256 of it under the
 * secret access key, base64 (standard alphabet, padded), is sent URL-encoded
 * as the last parameter, `signature`. Both published vectors reproduce
 * (tests/unit/test-qc.c).
 *
 * Calls: qc_call() adds action, zone, access_key_id, time_stamp (UTC,
 * "2006-01-02T15:04:05Z" as the SDKs format it; QingCloud refuses a request
 * whose time_stamp is more than 60 s off with 1300), version=1,
 * signature_method=HmacSHA256, signature_version=1, signs and sends a GET with
 * the query string (the SDKs' default; QC_POST sends the same parameters as
 * an x-www-form-urlencoded body, for long ones such as user data).
 *
 * Limits: a response body is at most QC_RESPONSE_MAX_BYTES (over it:
 * HERR_TOOBIG); a secret file at most QC_SECRET_MAX_BYTES; a request's query
 * at most QC_QUERY_MAX_BYTES; each attempt is bounded by the client's timeouts
 * and a call by max_attempts.
 *
 * Secret: read from the account's secret_file on every call (so rotating the
 * file needs no restart), never stored, never logged, wiped with
 * sodium_memzero() as soon as the signature is made. The file must be a
 * regular file that neither group nor others can read or write (mode 0600 or
 * 0400, like an ssh private key): a readable secret file is refused with a
 * message saying so, because the key can spend the account's money.
 *
 * Retries (the rules): transport errors and ret_code 5000 (internal
 * error) and 5100 (server busy) are retried with exponential backoff and full
 * jitter (qc_backoff_ms), as the Python SDK's send_request does; 1xxx and
 * 2xxx never are. A call that is not QC_IDEMPOTENT (RunInstances,
 * AllocateEips, Create*) is resent only when the request surely never reached
 * QingCloud (the connection was never made); after a transport error once it
 * was sent, or a 5000/5100 (the docs' error code page: 5000 is an error
 * *while executing*, 5100 includes an execution timeout), its outcome is
 * unknown and qc_call returns HERR_UNAVAIL saying "outcome unknown", with
 * client->last.outcome_unknown set: the caller searches (by the name or tag it
 * sent) instead of sending it again. */
#ifndef HERD_QC_H
#define HERD_QC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"

#define QC_ENDPOINT_DEFAULT "https://api.qingcloud.com/iaas/"
#define QC_RESPONSE_MAX_BYTES ((size_t)8 << 20)
#define QC_SECRET_MAX_BYTES 256
#define QC_QUERY_MAX_BYTES ((size_t)1 << 20)
#define QC_SIGNATURE_LEN 45  /* base64 of 32 bytes (44) + NUL */
#define QC_TIME_STAMP_LEN 21 /* "2013-08-27T14:30:10Z" + NUL */

/* 2500: over a resource quota or the daily API call quota. Its own code (an
 * errno, so herr_word() says "internal" and the API answers 500) so the driver
 * can tell it from other failures and record an activity naming QingCloud's
 * code and message, then back off. */
#define QC_ERR_QUOTA (-EDQUOT)

enum qc_flags {
	QC_IDEMPOTENT = 1 << 0, /* safe to resend after it may have reached QingCloud */
	QC_POST = 1 << 1,       /* parameters in a form body instead of the URL */
};

/* What the last qc_call() saw, for the caller's activity messages. */
struct qc_status {
	int ret_code;         /* QingCloud's ret_code; -1 = no answer (transport) */
	char message[512];    /* QingCloud's message, "" if none */
	int attempts;         /* requests sent (or tried) by the last call */
	bool outcome_unknown; /* a non-idempotent call may or may not have happened */
};

struct qc_client {
	char endpoint[512]; /* "https://api.qingcloud.com/iaas/" */
	char zone[64];      /* "pek3a" */
	char access_key_id[128];
	char secret_file[4096];  /* path of the file holding the secret access key */
	long timeout_ms;         /* whole request; default 30000 */
	long connect_timeout_ms; /* default 5000 */
	int max_attempts;        /* per call, first included; default 4 */
	int64_t backoff_base_ms; /* default 500 */
	int64_t backoff_cap_ms;  /* default 10000 */
	char user_agent[96];     /* "" = "herd" */
	struct qc_status last;
	void *curl; /* CURL *, kept for keep-alive */
};

/* Checks and copies the account's settings into c (endpoint NULL or "" =
 * QC_ENDPOINT_DEFAULT; it must be http:// or https://, with no query or
 * fragment). Does not read the secret file. Returns 0, or HERR_INVALID with
 * err->field naming "endpoint", "zone", "access_key_id" or "secret_file".
 * Pair with qc_client_release(). */
int qc_client_init(struct qc_client *c, const char *endpoint, const char *zone,
		   const char *access_key_id, const char *secret_file, struct herr *err);
void qc_client_release(struct qc_client *c);

/* Calls `action` with params (borrowed; NULL = none): a JSON object whose
 * values are strings, integers, booleans (sent as 1/0), arrays of those (sent
 * as name.1, name.2, ...) and arrays of objects (name.1.key, ...), as the Go
 * SDK's builder flattens them. On success (ret_code 0) returns 0 and sets
 * *resp to the parsed answer (owned: json_decref it). Otherwise returns, with
 * "QingCloud NNNN: <words>: <QingCloud's message>" in err:
 *   1100, 1101 HERR_INVALID; 1200 HERR_AUTH (access key or signature
 *   rejected); 1300 HERR_AUTH (request expired: check this server's clock);
 *   1400 HERR_FORBIDDEN; 2100 HERR_NOTFOUND; 2110 HERR_CONFLICT;
 *   2400 HERR_FORBIDDEN (balance not enough); 2500 QC_ERR_QUOTA;
 *   5000, 5100 and others HERR_UNAVAIL (after the retries);
 *   HERR_UNAVAIL / HERR_TIMEOUT when no answer came, HERR_TOOBIG past
 *   QC_RESPONSE_MAX_BYTES, HERR_INVALID for a bad param, HERR_FORBIDDEN /
 *   HERR_NOTFOUND for an unusable secret file.
 * c->last holds QingCloud's code and message. Blocks up to max_attempts x
 * timeout_ms plus the backoff sleeps. */
int qc_call(struct qc_client *c, const char *action, const json_t *params, unsigned flags,
	    json_t **resp, struct herr *err);

enum qc_job_state {
	QC_JOB_PENDING,    /* "pending": queued */
	QC_JOB_WORKING,    /* "working": running */
	QC_JOB_SUCCESSFUL, /* "successful" */
	QC_JOB_FAILED,     /* "failed", "done with failure", or any other final word */
};

/* Polls DescribeJobs (jobs.1=job_id) with backoff until the job is
 * successful or failed, or until deadline_ms (a now_ms() time) passes.
 * Returns 0 and sets *state (and the status word in state_word, if not NULL,
 * of state_word_len bytes) when the job ended, whatever its outcome;
 * HERR_TIMEOUT at the deadline; HERR_NOTFOUND if QingCloud does not know the
 * job; another qc_call() error if DescribeJobs keeps failing. Transient
 * errors (5000/5100, transport) between polls are absorbed until the
 * deadline. */
int qc_job_wait(struct qc_client *c, const char *job_id, int64_t deadline_ms,
		enum qc_job_state *state, char *state_word, size_t state_word_len,
		struct herr *err);

/* Waits for the job a call answered (resp's "job_id"; none: 0 at once)
 * until deadline_ms, and fails unless it ended successful: HERR_UNAVAIL
 * "QingCloud job <id> (<what>) ended '<word>'", or qc_job_wait()'s error.
 * For drivers, which only care whether the change took. */
int qc_job_done(struct qc_client *c, const json_t *resp, int64_t deadline_ms, const char *what,
		struct herr *err);

/* ---- pure parts, exposed for the unit tests and the fake's verifier ---- */

/* The delay before retry number `attempt` (0 = the first retry): full jitter,
 * a uniform pick in [0, min(cap_ms, base_ms * 2^attempt)] made from
 * random_u32 (any uint32_t: the caller passes randombytes_random()).
 * Saturates: no overflow for any attempt; at most 2^32-2 ms. base_ms <= 0
 * gives 0. */
int64_t qc_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint32_t random_u32);

/* "2013-08-27T14:30:10Z" for ts_ms (ms since the epoch, UTC; sub-second
 * part dropped) into out. Returns out. */
const char *qc_time_stamp(int64_t ts_ms, char out[QC_TIME_STAMP_LEN]);

/* Adds params (see qc_call) to flat as name -> string, flattening arrays and
 * nested objects the SDK's way. Returns 0 or HERR_INVALID naming the param
 * (a null, a float, an object not in an array, nesting too deep, an empty
 * or too long name). Names and values are escaped when signed, never here. */
int qc_flatten(const json_t *params, json_t *flat, struct herr *err);

/* Sets the common parameters on flat: action, zone, access_key_id,
 * time_stamp (from now_ms), version=1, signature_method=HmacSHA256,
 * signature_version=1. */
void qc_add_common(json_t *flat, const char *action, const char *zone, const char *access_key_id,
		   int64_t now_ms);

/* The canonical query of flat (string values only): sorted by name in byte
 * order, each name=value percent-encoded as the header says, joined by '&'.
 * Owned result; NULL (with err) past QC_QUERY_MAX_BYTES or on a non-string. */
char *qc_canonical_query(const json_t *flat, struct herr *err);

/* Percent-encodes s the signer's way into an owned string. */
char *qc_escape(const char *s);

/* base64(HMAC-SHA256(secret, method "\n" path "\n" query)) into out. */
void qc_sign(const char *method, const char *path, const char *canonical_query,
	     const unsigned char *secret, size_t secret_len, char out[QC_SIGNATURE_LEN]);

/* The path of an endpoint URL ("https://h:443/iaas/" -> "/iaas/", no path ->
 * "/") into out. Returns 0 or HERR_INVALID (not http(s)://, query, fragment,
 * too long). */
int qc_endpoint_path(const char *endpoint, char *out, size_t outsz, struct herr *err);

/* Maps a ret_code to herr codes and words: returns the herr code for it and
 * sets *words ("bad parameters", ...). 0 returns 0. */
int qc_ret_code_map(int ret_code, const char **words);
/* Whether ret_code is one the client retries (5000, 5100). */
bool qc_ret_code_retryable(int ret_code);

/* The state of job_id in a DescribeJobs answer: 0 and *state (and the word
 * into state_word), or HERR_NOTFOUND if the job is not in job_set,
 * HERR_INVALID if the answer is malformed. */
int qc_job_state_parse(const json_t *resp, const char *job_id, enum qc_job_state *state,
		       char *state_word, size_t state_word_len, struct herr *err);

#endif
