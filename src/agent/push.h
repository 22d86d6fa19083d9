/* push.h - the agent's metrics pipeline: a collection thread that, every
 * push interval, collects the system series (col.h) and the latest monitor
 * results (monitor.h) into one batch with one timestamp, encodes it (JSON,
 * or protobuf when the server offers it) into a bounded buffer; and a send
 * thread that POSTs the buffered batches to /v1/agent/metrics (several per
 * request) and fetches /v1/agent/config when the answer's config_version
 * changes. push.c holds the threads, push-buf.c the buffer, push-json.c the
 * config parser and the JSON encoder, push-wire.c the protobuf encoder and
 * the choice of format. Wire format: docs/agent-metrics.md. */
#ifndef HERD_AGENT_PUSH_H
#define HERD_AGENT_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent-contract.h"
#include "agent/col.h"
#include "agent/monitor.h"
#include "expr.h"
#include "herr.h"
#include "pushwire.h"

#define PUSH_INTERVAL_MS 5000           /* until the server's config says */
#define PUSH_BUF_MAX_BATCHES 120        /* buffered while the server is away... */
#define PUSH_MAX_BYTES (1u << 20)       /* ...and at most this many bytes of them */
/* per request: PUSH_MAX_BATCHES_PER_REQUEST (agent-contract.h, the server's too) */
#define PUSH_MAX_REQUEST_BYTES (256u << 10)
#define PUSH_MAX_BATCH_BYTES (64u << 10) /* one encoded batch; series past it are cut */
#define PUSH_TS_SNAP_MS 50              /* a cycle this late still gets its scheduled ts */

/* How a batch is encoded, and so the body of the request carrying it. */
enum push_format {
	PUSH_FMT_JSON,              /* application/json: every server takes it */
	PUSH_FMT_PROTOBUF,          /* application/x-protobuf (proto/push.proto) */
};

/* The bounded buffer of encoded batches, oldest first: a byte ring (batches
 * stored whole, wrapping to the start when the end is too short) and a ring
 * of entries, each with its format (JSON, protobuf: the format can change
 * while batches wait). Adding past either bound drops the oldest batches
 * and counts them. Batches being sent stay in until the answer:
 * acknowledged ones are removed, failed ones stay for the next attempt.
 * Not thread-safe. */
struct push_buf {
	char *mem;                  /* max_bytes, owned */
	size_t max_bytes;
	size_t max_batches;
	struct push_ent {
		size_t off, len;    /* in mem */
		uint64_t seq;       /* 1, 2, ... in order of adding */
		enum push_format fmt;
	} *ent;                     /* max_batches, a ring; owned */
	size_t head;                /* oldest entry */
	size_t count;
	size_t used_bytes;
	uint64_t next_seq;
	uint64_t dropped;           /* dropped and not yet reported to the server */
	uint64_t dropped_total;     /* since start */
	uint64_t inflight_seq;      /* batches up to this seq are being sent; 0 = none */
	uint64_t inflight_dropped;  /* dropped while being sent */
	uint64_t inflight_reported; /* `dropped` as told in the request being sent */
};

enum push_outcome {
	PUSH_SENT,                  /* acknowledged: remove them */
	PUSH_FAILED,                /* no answer or 5xx: keep them for a retry */
	PUSH_REJECTED,              /* refused (4xx): remove them, count as dropped */
};

void push_buf_init(struct push_buf *b, size_t max_batches, size_t max_bytes);
void push_buf_release(struct push_buf *b);
/* Copies a batch encoded as fmt in, dropping the oldest ones as needed.
 * Returns how many were dropped (>= 0), or HERR_TOOBIG if len exceeds
 * max_bytes (nothing changes). */
int push_buf_add(struct push_buf *b, enum push_format fmt, const char *data, size_t len);
/* The i-th oldest batch (borrowed until the next change), or NULL. */
const char *push_buf_get(const struct push_buf *b, size_t i, size_t *len, uint64_t *seq);
/* Writes a request body of the oldest batches of one format (the longest
 * run of the head's format: at most max_batches, and as many as fit in
 * outsz; at least one if any is buffered and fits) into out and marks them
 * in flight; *fmt says which. JSON: {"batches":[...],"dropped":N},
 * NUL-terminated; protobuf: a Push (pushwire_frame). A batch too big for
 * any request is given up and counted as dropped. Returns the body length
 * (0 when nothing is buffered), *nbatches set. */
size_t push_buf_take(struct push_buf *b, char *out, size_t outsz, size_t max_batches,
		     size_t *nbatches, enum push_format *fmt);
/* Settles the batches taken by the last push_buf_take. */
void push_buf_done(struct push_buf *b, enum push_outcome how);

/* Edge-triggered pushes (push-edge.c): a value the server watches a
 * metric for. A series of that name crossing it is pushed at once. */
struct push_threshold {
	char metric[EXPR_METRIC_MAX + 1];
	enum expr_op op;            /* the side where the policy's comparison holds */
	double value;
};

#define PUSH_EDGE_MIN_GAP_MS 100    /* at most one immediate push per this */
#define PUSH_EDGE_SLOTS 256         /* (threshold, series) sides remembered */

/* Which side of a threshold a series was on at its last finite value. */
enum push_side { PUSH_SIDE_UNKNOWN, PUSH_SIDE_OFF, PUSH_SIDE_ON };

/* Whether cur crosses t coming from prev (pure): the comparison holds
 * now and did not (or nothing was known: the first value is already
 * past), or held and does not now. NaN and infinities never cross and
 * leave *next = prev (a missing value is no side); equality is decided
 * as the policy's expression decides it (expr_holds). *next is the side
 * cur is on. */
bool push_edge_crossed(const struct push_threshold *t, enum push_side prev, double cur,
		       enum push_side *next);

/* The detector: the thresholds and each (threshold, series) side. */
struct push_edge {
	size_t nthr;
	struct push_threshold thr[PUSH_MAX_THRESHOLDS];
	size_t nslot;
	struct push_edge_slot {
		uint64_t key;           /* FNV-1a of the series' name and labels */
		uint8_t thr;
		uint8_t side;           /* enum push_side */
	} slot[PUSH_EDGE_SLOTS];    /* full: new series are not watched */
};

/* Sets the thresholds; sides are forgotten when they change. */
void push_edge_set(struct push_edge *e, const struct push_threshold *t, size_t n);
/* Compares every series of b with the thresholds of its metric, remembering
 * sides. Returns how many crossed; *first (may be NULL) names the first
 * crossing's metric (borrowed from e). */
size_t push_edge_scan(struct push_edge *e, const struct col_batch *b, const char **first);

/* The agent's part of the server's config (GET /v1/agent/config). */
struct push_config {
	int64_t version;
	int64_t interval_ms;        /* push_interval_s * 1000 */
	size_t nmon;
	struct mon_spec mon[MON_MAX];   /* commands owned */
	size_t nthr;
	struct push_threshold thr[PUSH_MAX_THRESHOLDS];
	bool protobuf;              /* "push_formats" lists "protobuf" */
};

/* Parses {"version":N,"push_interval_s":S,"monitors":[{"name","command",
 * "interval_s","timeout_s"}],"thresholds":[{"metric","op","value"}],
 * "push_formats":["json","protobuf"]}. push_formats that is not an array
 * of strings offers JSON only (an older server sends none). A
 * malformed threshold is skipped with a warning, as is one past
 * PUSH_MAX_THRESHOLDS. A malformed monitor is skipped with a
 * warning; anything else malformed is HERR_INVALID naming the field. On
 * success release c with push_config_release. */
int push_config_parse(const json_t *j, struct push_config *c, struct herr *err);
void push_config_release(struct push_config *c);

/* Encodes one batch {"ts_ms":..,"series":[..],"monitors":[..]} into out:
 * the series of b, and one entry per monitor that has run (state, error).
 * Series past outsz are left out (counted in *cut). Returns the length
 * (NUL-terminated), or 0 if not even the frame fits. No allocation. */
size_t push_encode_batch(const struct col_batch *b, const struct mon_snapshot *snap, char *out,
			 size_t outsz, size_t *cut);

/* Where the protobuf encoder lays a batch out as pushwire.h's plain C
 * (borrowing the batch's strings): allocated once, by the caller. */
struct push_wire {
	struct pushwire_series series[COL_MAX_SERIES];
	struct pushwire_label labels[COL_MAX_SERIES * COL_MAX_LABELS];
	struct pushwire_monitor mons[MON_MAX];
};

/* The same batch as push_encode_batch, as one PushBatch message
 * (proto/push.proto) into out: the series of b (their labels; a NULL label
 * value as ""), one entry per monitor that has run, with its error when it
 * is not ok. Series past outsz are left out (counted in *cut). Returns the
 * length, or 0 if not even the monitors fit. */
size_t push_encode_batch_pb(const struct col_batch *b, const struct mon_snapshot *snap,
			    struct push_wire *w, uint8_t *out, size_t outsz, size_t *cut);

/* Whether an answer refuses the format of the push it answers (pure): a
 * protobuf push (sent) answered 415, or 400 naming no field or the field
 * "body" (err_field, the answer's error field; NULL or "" for none). That
 * is a server that cannot read the body at all: one from before the
 * protobuf push reads any body as JSON and answers 400 "invalid JSON"
 * with no field (an older server behind the same address during an
 * upgrade, say). A 400 naming a field inside the push refuses those
 * batches, not the format; status 0 is no answer. */
bool push_format_refused(enum push_format sent, long status, const char *err_field);

/* The format the collection thread encodes in (pure): protobuf when the
 * server's config offers it and no protobuf push was refused
 * (push_format_refused) since that config was fetched; JSON otherwise: an
 * older server, or one that took the offer back. */
enum push_format push_format_decide(bool offered, bool refused);

/* The "field" of an error answer {"error":{"field":...}} (len bytes of
 * JSON) into out (outsz bytes, NUL-terminated); false when there is none. */
bool push_answer_error_field(const char *text, size_t len, char *out, size_t outsz);

/* A series value as the batch carries it, into out (>= 32 bytes, not
 * NUL-terminated); returns the length. Integers as integers, others in the
 * shortest of "%.15g" and "%.17g" that reads back the same. A value with
 * at most two decimals (percentages, load averages) is written without
 * printf and strtod, to the same text. */
size_t push_num_format(double v, char *out);

/* config_version of a push's answer (len bytes of JSON): 1 and *v, or 0 when
 * there is none (not an object, no such integer). The server's usual form,
 * exactly {"config_version":N,"accepted":N,"rejected":N} (a newline after
 * it or not), is read without building a jansson tree; anything else is
 * given to jansson. */
int push_answer_config_version(const char *text, size_t len, json_int_t *v);

/* What the collection thread tells a test or the bench after each cycle. */
struct push_tick {
	uint64_t cycle;             /* 1, 2, ... */
	int64_t ts_ms;              /* the batch's timestamp */
	int64_t due_ms;             /* wall clock it was scheduled for */
	int64_t started_ms;         /* wall clock the cycle started */
	int64_t cpu_ns;             /* thread CPU time of the cycle */
	bool edge;                  /* an immediate push: a value crossed a threshold */
	size_t series;
	enum push_format format;    /* of the encoded batch: */
	const char *json;           /* the encoded batch (JSON text, or a PushBatch
				     * when format says so), borrowed for the call */
	size_t len;
};
typedef void (*push_tick_fn)(const struct push_tick *t, void *arg);

struct push_opts {
	const char *server;         /* base URL; NULL = collect and buffer only */
	const char *credential;     /* the host's bearer token */
	const char *ca_pem;         /* the pinned server CA (PEM), or NULL: see httpc.h */
	int64_t interval_ms;        /* until the server's config says; 0 = PUSH_INTERVAL_MS */
	const char *monitor_dir;    /* where monitor command files go */
	char *const *env;           /* the monitors' whole environment */
	size_t max_batches;         /* 0 = PUSH_BUF_MAX_BATCHES */
	size_t max_bytes;           /* 0 = PUSH_MAX_BYTES */
	push_tick_fn on_tick;       /* optional, called on the collection thread */
	void *arg;
};

struct push;

/* Everything is allocated here, once; the strings of o are copied. */
struct push *push_new(const struct push_opts *o);
/* Starts the collection thread (and the send thread when o->server was
 * given, which fetches the config first). Returns 0 or -errno. */
int push_start(struct push *p);
/* Applies a config: the push interval (from the next cycle) and the
 * monitors (see monitors_set). The send thread calls it; tests too. */
void push_apply_config(struct push *p, const struct push_config *c);
/* Stops the threads and monitors. Returns false if the send thread is
 * stuck in a request after 2 s: then p must not be freed. */
bool push_stop(struct push *p);
void push_free(struct push *p);
/* Immediate (edge) cycles since start. */
uint64_t push_edge_total(struct push *p);
/* Batches dropped since start (buffer full). */
uint64_t push_dropped_total(struct push *p);

struct agent;

/* The agent's hooks, one call each in agent.c: start after the join (the
 * credential is known), stop on the way out. Both log, neither fails; stop
 * _exit(0)s the process if the send thread is stuck in a request for 2 s. */
void agent_push_start(struct agent *a);
void agent_push_stop(void);

#endif
