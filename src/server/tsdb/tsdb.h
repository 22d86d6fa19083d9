/* tsdb.h - herd's embedded metric store, written for this job (no packaged
 * C library does a Gorilla-style TSDB): series = metric name + labels,
 * samples appended in batches that share one timestamp, made durable in a
 * write-ahead log before tsdb_append returns, compressed into chunks
 * (chunk.h) persisted in block files, dropped after the retention.
 *
 * On disk, under the directory given to tsdb_open:
 *   wal          records since the last checkpoint (series, sample batches),
 *                each with a length and CRC-32C; replayed on open, a torn or
 *                corrupt tail is skipped with a warning, never a refusal;
 *   head.snap    the samples not yet in a chunk, as of the last checkpoint;
 *   blocks/b-N   chunks (timestamp blocks stored once and shared by every
 *                series cut at the same batches), mapped read-only.
 * A checkpoint (every checkpoint_interval_ms, when the WAL passes
 * wal_max_bytes, and on close) writes finished chunks and head.snap,
 * fsyncs, then empties the WAL.
 *
 * Ordering: within a series, a sample older than the newest one is rejected
 * (counted in tsdb_stats.out_of_order); one with the same timestamp replaces
 * the newest value while that is still in the head chunk, else it is
 * rejected too (duplicates). Samples older than now - retention are dropped
 * (too_old).
 *
 * Thread-safe: one read-write lock; appenders share fsyncs (group commit). */
#ifndef HERD_TSDB_H
#define HERD_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "expr.h"
#include "herr.h"

#define TSDB_MAX_LABELS 16         /* labels per series, metric name excluded */
#define TSDB_NAME_MAX 128          /* metric and label names, bytes */
#define TSDB_VALUE_MAX 256         /* label values, bytes */
#define TSDB_MAX_STEPS 11000       /* aggregate steps per query */
#define TSDB_DEFAULT_RETENTION_MS (15LL * 86400 * 1000)

struct tsdb;

struct tsdb_opts {
	int64_t retention_ms;           /* default 15 days */
	int64_t chunk_span_ms;          /* chunks end at multiples of this; default 30 min */
	unsigned chunk_max_samples;     /* and hold at most this many; default 360 */
	int64_t checkpoint_interval_ms; /* default 5 min; < 0: no background thread */
	size_t wal_max_bytes;           /* checkpoint early past this; default 64 MiB */
	int64_t block_span_ms;          /* a block file takes chunks this long; default 2 h */
	size_t max_series;              /* default 1,000,000 */
	bool no_fsync;                  /* benchmarks only: durability off */
};

struct tsdb_label {
	const char *name;
	const char *value;
};

/* One sample of a batch: the batch gives the timestamp. */
struct tsdb_sample {
	const char *metric;
	const struct tsdb_label *labels;  /* any order */
	size_t nlabels;
	double value;
};

/* Label matcher: name = value, or name != value when neg. */
struct tsdb_matcher {
	const char *name;
	const char *value;
	bool neg;
};

/* A series as queries return it: metric and labels (sorted by name) point
 * into the struct's own allocation. */
struct tsdb_series_info {
	const char *metric;
	struct tsdb_label *labels;
	size_t nlabels;
	int64_t first_ts_ms;   /* oldest sample kept */
	int64_t last_ts_ms;    /* newest sample */
	double last_value;
};

/* Points of one series in a range. */
struct tsdb_range_series {
	struct tsdb_series_info info;
	int64_t *ts_ms;
	double *values;
	size_t n;
};

/* One aligned step of an aggregate: steps end at multiples of step_ms, step
 * t covers (t - step_ms, t]; each series contributes its last sample in the
 * step; nseries says how many did (0: value is NaN - no data). */
struct tsdb_agg_point {
	int64_t ts_ms;
	double value;
	int nseries;
};

struct tsdb_stats {
	size_t series;
	size_t chunks;
	size_t head_samples;
	size_t blocks;
	uint64_t block_bytes;     /* chunk data on disk */
	uint64_t wal_bytes;       /* since the last checkpoint */
	uint64_t appended;        /* samples stored (replacements included) */
	uint64_t out_of_order;    /* rejected: older than the series' newest */
	uint64_t duplicates;      /* rejected: same timestamp, already in a chunk */
	uint64_t too_old;         /* dropped: older than the retention */
	uint64_t series_limited;  /* dropped: a new series past max_series */
	uint64_t checkpoints;
	uint64_t fsyncs;          /* WAL fsyncs (fewer than appends under load) */
};

/* Fills opts with the defaults. */
void tsdb_opts_default(struct tsdb_opts *o);

/* Opens (creating) the store in dir: loads the blocks and head snapshot,
 * replays the WAL (skipping and logging a torn or corrupt tail), and
 * checkpoints. opts may be NULL for the defaults. Returns the store (owned:
 * tsdb_close it), or NULL with err set when the directory is unusable. */
struct tsdb *tsdb_open(const char *dir, const struct tsdb_opts *opts, struct herr *err);
/* Checkpoints and frees. NULL is fine. */
void tsdb_close(struct tsdb *db);

/* Appends a batch of n samples sharing ts_ms. Durable when it returns (WAL
 * written and fsynced; concurrent appenders share fsyncs). Returns how many
 * samples were stored (the rest were rejected as out of order, duplicate or
 * too old), or HERR_INVALID (nothing stored: a bad name, label or count, the
 * field named in err), HERR_TOOBIG (max_series reached) or -errno when the
 * WAL cannot be written. */
int tsdb_append(struct tsdb *db, int64_t ts_ms, const struct tsdb_sample *s, size_t n,
		struct herr *err);

/* Writes finished chunks and the head snapshot, empties the WAL, applies
 * the retention as of now_ms (0 = the wall clock). Returns 0 or -errno. */
int tsdb_checkpoint(struct tsdb *db, int64_t now_ms, struct herr *err);

/* Samples of every series of metric matching the matchers with from_ms <=
 * ts <= to_ms. At most max_points in all (HERR_TOOBIG past it). *out gets an
 * owned array of *nout series (tsdb_range_free). */
int tsdb_range(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	       int64_t from_ms, int64_t to_ms, size_t max_points,
	       struct tsdb_range_series **out, size_t *nout, struct herr *err);
void tsdb_range_free(struct tsdb_range_series *r, size_t n);

/* Aggregate across the series of metric matching the matchers, at steps
 * ending at multiples of step_ms from the first >= from_ms to the last <=
 * to_ms (at most TSDB_MAX_STEPS; HERR_INVALID past it or for step_ms < 1).
 * *out gets an owned array (free()) of *nout points, oldest first. Cheap
 * enough to call on every push: it decodes only the chunks in the window. */
int tsdb_agg(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
	     enum expr_agg agg, int64_t from_ms, int64_t to_ms, int64_t step_ms,
	     struct tsdb_agg_point **out, size_t *nout, struct herr *err);

/* Series of metric (NULL = any) matching the matchers, ordered by metric
 * then labels. tsdb_latest lists only those with a sample at or after
 * since_ms; tsdb_series lists all. *out: owned array (tsdb_series_free). */
int tsdb_latest(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
		int64_t since_ms, struct tsdb_series_info **out, size_t *nout, struct herr *err);
int tsdb_series(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
		struct tsdb_series_info **out, size_t *nout, struct herr *err);
void tsdb_series_free(struct tsdb_series_info *s, size_t n);

/* Prometheus text exposition (format 0.0.4) of the latest sample of every
 * series with a sample at or after since_ms, with its timestamp, grouped by
 * metric. Returns 0, or HERR_TOOBIG when out's limit is reached. */
int tsdb_expose(struct tsdb *db, struct buf *out, int64_t since_ms, struct herr *err);

void tsdb_stats(struct tsdb *db, struct tsdb_stats *st);

/* Text helpers shared with the API: a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*,
 * a label name [a-zA-Z_][a-zA-Z0-9_]*, both 1..TSDB_NAME_MAX bytes. */
bool tsdb_metric_name_ok(const char *s);
bool tsdb_label_name_ok(const char *s);

#endif
