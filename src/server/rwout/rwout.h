/* rwout/rwout.h - remote_write out: what a `remote_writes:` resource says
 * (rw_parse, the one validator the kind and the sender share), relabelling
 * (a subset of Prometheus's relabel_config: replace, keep, drop, labeldrop,
 * labelkeep with POSIX extended regexes anchored at both ends), the record
 * form of a sample in the in-memory buffer and the on-disk segments, the
 * retry schedule, the outcome of an attempt and the shard count (pure, for
 * unit tests), and the HTTP POST of several bodies at once (libcurl multi,
 * one per shard). The sender that decides when to send is ctl/rwout.c. */
#ifndef HERD_RWOUT_H
#define HERD_RWOUT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herr.h"
#include "promwire.h"

#define RW_RELABEL_MAX 32           /* rules per remote */
#define RW_HEADERS_MAX 16           /* extra headers per remote */
#define RW_LABELS_MAX 40            /* labels of one sample (herd's 4 + the series' own) */
#define RW_LABEL_MAX 1024           /* bytes of one label name or value */
#define RW_SECRET_MAX 4096          /* bytes of a token or password file */
#define RW_ERROR_MAX 256            /* bytes of the last error kept */
#define RW_TIMEOUT_MS 30000         /* one request */

enum rw_action { RW_A_REPLACE, RW_A_KEEP, RW_A_DROP, RW_A_LABELDROP, RW_A_LABELKEEP };

struct rw_rule {
	enum rw_action action;
	const char *source[8];      /* source_labels (borrowed) */
	int nsource;
	const char *separator;      /* ";" */
	const char *target;         /* target_label (replace) */
	const char *replacement;    /* "$1" */
	regex_t re;                 /* ^(regex)$ */
	bool compiled;
};

/* A remote, parsed. Strings are borrowed from the spec (which must outlive
 * it); rw_conf_release frees the regexes. */
struct rw_conf {
	const char *name;
	const char *url;
	const char *bearer_token_file;
	const char *username, *password_file;
	const char *header_names[RW_HEADERS_MAX], *header_values[RW_HEADERS_MAX];
	int nheaders;
	struct rw_rule rules[RW_RELABEL_MAX];
	int nrules;
	uint64_t max_bytes;          /* on-disk queue */
	int max_samples_per_send;
	int64_t batch_send_deadline_ms;
	int64_t min_backoff_ms, max_backoff_ms;
	int max_shards;
};

#define RW_DEFAULT_MAX_BYTES (256ull << 20)
#define RW_DEFAULT_SAMPLES_PER_SEND 2000
#define RW_DEFAULT_DEADLINE_MS 5000
#define RW_DEFAULT_MIN_BACKOFF_MS 30
#define RW_DEFAULT_MAX_BACKOFF_MS 5000
#define RW_DEFAULT_MAX_SHARDS 4

/* Parses and checks spec: url (http/https), the auth files (absolute
 * paths; read at each send, never stored), headers (not the ones the spec
 * reserves), relabel (each rule's fields, its regex compiled), queue.
 * 0, or HERR_INVALID naming the field (relative to the spec, e.g.
 * "relabel[2].regex"). On success rw_conf_release must be called. */
int rw_parse(const char *name, const json_t *spec, struct rw_conf *c, struct herr *err);
void rw_conf_release(struct rw_conf *c);

/* A sample's labels while relabelled: at most RW_LABELS_MAX, names and
 * values copied into the set's own storage. */
struct rw_labels {
	char name[RW_LABELS_MAX][128];
	char *value[RW_LABELS_MAX];  /* each in vbuf */
	int n;
	char vbuf[RW_LABELS_MAX * RW_LABEL_MAX + 4096];
	size_t vused;
};

/* Applies c's rules in order to ls. Returns false when the sample is
 * dropped (keep/drop, or no __name__ left); true with ls sorted by name. */
bool rw_relabel(const struct rw_conf *c, struct rw_labels *ls);
/* Sets label name to value in ls (replaces; value "" deletes); false when
 * ls is full or the strings too long. */
bool rw_labels_set(struct rw_labels *ls, const char *name, const char *value);

/* --- records: one sample in the buffer and the segments ---
 * u32 length of the rest, i64 ts_ms, f64 value, u16 label count, then per
 * label u16 length + name + NUL, u16 length + value + NUL (so that labels
 * can point into a record); host byte order (the files are read by the
 * same server). */
#define RW_RECORD_MAX (4 + 8 + 8 + 2 + RW_LABELS_MAX * (6 + 2 * RW_LABEL_MAX))

/* Appends a record to out (room for RW_RECORD_MAX is the caller's);
 * returns its length, or 0 when the labels do not fit the limits. */
size_t rw_record_put(char *out, int64_t ts_ms, double value, const char *const *names,
		     const char *const *values, int n);
/* Reads the record at p (avail bytes): its length, or 0 when it is
 * incomplete or malformed (a torn tail). ls gets the labels (may be NULL). */
size_t rw_record_get(const char *p, size_t avail, int64_t *ts_ms, double *value,
		     struct rw_labels *ls);
/* The labels of the record at p (len bytes, all of it) as pw_labels
 * pointing into it: their count, or -1 when malformed or over max. */
int rw_record_labels(const char *p, size_t len, struct pw_label *out, int max);
/* The series hash of a record's labels (for sharding by series). */
uint64_t rw_record_hash(const char *p, size_t len);

/* --- decisions --- */
/* The wait before attempt failures+1 (failures >= 1): min doubling, capped
 * at max, jittered into [d/2, d) by jitter in [0, 1). */
int64_t rw_backoff_ms(int failures, int64_t min_ms, int64_t max_ms, double jitter);

enum rw_outcome { RW_OK, RW_RETRY, RW_DROP };
/* rc: 0 when an HTTP answer came; status: its code. 2xx ok; 5xx, 429 and
 * no answer retry; any other status is dropped (the spec: MUST NOT retry). */
enum rw_outcome rw_classify(int rc, long status);

/* Shards for the next round: 1 plus the closed segments waiting behind
 * the one being sent (the backlog), at most max. */
int rw_shards_decide(size_t waiting_segments, int max_shards);

/* --- sending --- */
struct rw_post {
	const char *body;
	size_t len;
	long status;         /* out: HTTP status, 0 if none */
	int rc;              /* out: 0 when an answer came, else HERR_UNAVAIL/HERR_TIMEOUT */
	long retry_after_s;  /* out: a 429's Retry-After, or 0 */
	char answer[RW_ERROR_MAX]; /* out: the start of a refusal's body, or the transport error */
};

/* POSTs the n bodies to c's URL at once (one connection each), with the
 * spec's headers, c's auth and headers. *stop (may be NULL) cuts the
 * transfers when set. Returns 0, or an error when the auth files cannot be
 * read (nothing sent). */
int rw_post_all(const struct rw_conf *c, struct rw_post *posts, int n, volatile int *stop,
		struct herr *err);

#endif
