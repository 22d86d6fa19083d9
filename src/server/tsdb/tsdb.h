/* tsdb.h - herd's embedded metric store, written for this job (no packaged
 * C library does a Gorilla-style TSDB): series = metric name + labels,
 * samples appended in batches that share one timestamp, made durable in a
 * write-ahead log before tsdb_append returns (or within sync_interval_ms,
 * see Durability below), compressed into chunks
 * (chunk.h) persisted in block files, dropped after the retention.
 *
 * On disk, under the directory given to tsdb_open:
 *   wal          records since the last checkpoint (series, sample batches),
 *                each with a length and CRC-32C; replayed on open, a torn or
 *                corrupt tail is skipped with a warning, never a refusal;
 *   head.snap    the samples not yet in a chunk, as of the last checkpoint;
 *   blocks/b-N   chunks (timestamp blocks stored once and shared by every
 *                series cut at the same batches), mapped read-only; a
 *                merged block starts with the range of blocks it covers;
 *   blocks/b-N.tmp  a merge in progress (removed on open).
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
 * Quotas: every series belongs to the host and the cluster named by its
 * "host" and "cluster" labels (the API sets both from the pushing host's
 * credential). A new series is refused when its host already owns
 * host_max_series, its cluster cluster_max_series (at most half of
 * max_series, so one cluster never fills the store for the others), or the
 * store max_series. Existing series keep being written. Refusals are
 * counted per host (tsdb_owner_stats). The counts are kept by series
 * creation and removal (O(1) per new series) and rebuilt on open from the
 * blocks, head and WAL, where no quota applies (what was accepted stays).
 *
 * Compaction: blocks are cut every block_span_ms (2 h), so 15 days make
 * about 180 files. After each background checkpoint, tsdb_compact merges
 * the sealed blocks whose oldest chunk falls in one aligned window of
 * compact_span_ms (24 h) into one block, once the window is over (the
 * newest block lies in a later one) - so every window is rewritten about
 * once. A merge takes at most compact_max_blocks sources of at most
 * compact_max_bytes in all (a window cut short is finished by the next
 * call, merging the merged block with the rest). It copies the chunk
 * records (bytes unchanged, series declared once, shared timestamp blocks
 * kept shared), leaving out chunks already past the retention, into
 * blocks/b-F.tmp (F: the first source's sequence), fsyncs it and renames
 * it over b-F, then unlinks the other sources. Its first record (COVERS)
 * names the sequences F..L it replaces, so every crash point is safe: a
 * b-N.tmp is unfinished and removed on open (the sources are intact); a
 * block whose COVERS reaches past its own sequence makes the files it
 * covers redundant, removed on open before anything is loaded (never
 * double samples); and new blocks are numbered past every covered one.
 * Chunks keep their order (the merged block sits where b-F was), so a
 * reopened store answers exactly what the sources did. Only the file
 * writing runs off the lock: sources are sealed and immutable, marked
 * busy so retention leaves them alone meanwhile; queries and appends wait
 * only for the final repointing. Retention still drops whole blocks whose
 * newest chunk is past it: a merged block spans at most one window (plus a
 * block span), so expired samples stay on disk at most that much longer
 * (never visible: loads and queries cut them per chunk), and a merge
 * leaves already expired chunks out. No downsampling (yet): old samples
 * keep their full resolution.
 *
 * Durability: by default every append waits for the fdatasync of its WAL
 * record (appenders share fsyncs: group commit). With sync_interval_ms > 0
 * an append returns once its record is written and a background thread
 * fdatasyncs the WAL at most that long after: a killed process loses
 * nothing (the kernel holds the written pages), a power loss or kernel
 * crash at most the samples of that window. The WAL never turns corrupt
 * either way: every record carries its CRC-32C, and a replay stops at the
 * first torn or damaged record (the samples before it are kept).
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
#define TSDB_HOST_MAX_SERIES 10000      /* default series per host */
#define TSDB_CLUSTER_MAX_SERIES 200000  /* default series per cluster */
#define TSDB_NOTE_INTERVAL_MS (3600LL * 1000) /* refusals reported once an hour per host */

struct tsdb;

struct tsdb_opts {
	int64_t retention_ms;           /* default 15 days */
	int64_t chunk_span_ms;          /* chunks end at multiples of this; default 30 min */
	unsigned chunk_max_samples;     /* and hold at most this many; default 360 */
	int64_t checkpoint_interval_ms; /* default 5 min; < 0: no background thread */
	size_t wal_max_bytes;           /* checkpoint early past this; default 64 MiB */
	int64_t block_span_ms;          /* a block file takes chunks this long; default 2 h */
	size_t max_series;              /* default 1,000,000 */
	size_t host_max_series;         /* default TSDB_HOST_MAX_SERIES */
	size_t cluster_max_series;      /* default TSDB_CLUSTER_MAX_SERIES */
	bool no_fsync;                  /* benchmarks only: durability off */
	int64_t compact_span_ms;        /* merge sealed blocks per aligned window this
					 * long; default 24 h; < 0: never compact */
	size_t compact_max_bytes;       /* sources of one merge total at most this;
					 * default 64 MiB */
	unsigned compact_max_blocks;    /* sources of one merge; default 16 */
	int64_t (*clock_ms)(void);      /* the store's clock (tests inject a simulated
					 * one); NULL: the wall clock */
	int64_t sync_interval_ms;       /* 0 (default): an append returns once its WAL
					 * record is fdatasync'ed; > 0: once written, and
					 * a thread fdatasyncs the WAL this often (a power
					 * loss loses at most that window, never more) */
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

/* The quotas of one append, overriding the store's defaults (0 = the
 * default): the cluster's own settings. */
struct tsdb_limits {
	size_t host_max_series;
	size_t cluster_max_series;
};

/* Why a new series was refused. */
enum tsdb_refusal {
	TSDB_REFUSED_NONE = 0,
	TSDB_REFUSED_HOST,      /* "host_quota" */
	TSDB_REFUSED_CLUSTER,   /* "cluster_quota" */
	TSDB_REFUSED_STORE,     /* "store_full": max_series */
};

/* What one append did besides storing. */
struct tsdb_append_info {
	size_t refused;                 /* new series refused (quota or max_series) */
	enum tsdb_refusal reason;       /* of the last refusal */
	bool note;                      /* a refusal to report: the host's first, or
					 * the first in TSDB_NOTE_INTERVAL_MS */
	/* when refused > 0: */
	uint64_t host_refused;          /* the host's refusals so far */
	size_t host_series, host_max;   /* the host's series after the append, its quota */
};

/* One owner's accounting: series it owns now, new series refused since
 * the store opened, the last refusal. */
struct tsdb_owner_stats {
	size_t series;
	size_t max_series;              /* the default quota (a cluster may set its own) */
	uint64_t refused;
	enum tsdb_refusal reason;
	int64_t refused_ms;             /* last refusal; 0: none */
	size_t cluster_series;          /* the host's cluster, all hosts */
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
	uint64_t series_limited;  /* dropped: a new series past max_series or a quota */
	uint64_t checkpoints;
	uint64_t compactions;     /* merges done (tsdb_compact) */
	uint64_t compact_hold_us; /* longest a merge held the lock (repointing), us */
	uint64_t fsyncs;          /* WAL fsyncs (fewer than appends under load) */
	uint64_t wal_unsynced;    /* WAL bytes written but not yet fdatasync'ed */
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
 * written and fsynced; concurrent appenders share fsyncs) unless
 * sync_interval_ms > 0: then written (a crash of the process loses nothing,
 * the kernel has it) and fsynced within sync_interval_ms. Returns how many
 * samples were stored (the rest were rejected as out of order, duplicate or
 * too old), or HERR_INVALID (nothing stored: a bad name, label or count, the
 * field named in err), HERR_TOOBIG (max_series reached) or -errno when the
 * WAL cannot be written. */
int tsdb_append(struct tsdb *db, int64_t ts_ms, const struct tsdb_sample *s, size_t n,
		struct herr *err);
/* tsdb_append with the quotas of lim (NULL: the defaults); info (may be
 * NULL) tells what was refused and whether to report it. Refused series
 * are not errors: the return value counts what was stored. */
int tsdb_append_q(struct tsdb *db, int64_t ts_ms, const struct tsdb_sample *s, size_t n,
		  const struct tsdb_limits *lim, struct tsdb_append_info *info, struct herr *err);

/* The accounting of the host (cluster, host) - or of the whole cluster when
 * host is NULL. Unknown owners give zeros. */
void tsdb_owner_stats(struct tsdb *db, const char *cluster, const char *host,
		      struct tsdb_owner_stats *out);
/* "host_quota", "cluster_quota", "store_full", or "" for none. */
const char *tsdb_refusal_name(enum tsdb_refusal r);
/* Whether refusals at now_ms deserve a report when the last one was at
 * noted_ms (0: never): the first, then once per TSDB_NOTE_INTERVAL_MS. */
bool tsdb_note_decide(int64_t now_ms, int64_t noted_ms);

/* Writes finished chunks and the head snapshot, empties the WAL, applies
 * the retention as of now_ms (0 = the wall clock). Returns 0 or -errno. */
int tsdb_checkpoint(struct tsdb *db, int64_t now_ms, struct herr *err);

/* Merges one run of small adjacent sealed blocks into one (see
 * "Compaction" above): the merged file is written off the lock, then the
 * chunks are repointed under it in one short step. Returns 1 when a merge
 * was done, 0 when nothing is due, or -errno (the sources stay in use).
 * The background thread calls it after each checkpoint; callers may too.
 * Not concurrent with tsdb_close. */
int tsdb_compact(struct tsdb *db, struct herr *err);

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

/* How many series of each metric match the matchers, and the newest
 * sample among them: metric by metric, the lock held for one at a time and
 * nothing copied per series (tsdb_series copies every one). *out: owned
 * array of *nout, sorted by name (tsdb_metric_counts_free). */
struct tsdb_metric_count {
	char *name;
	size_t series;
	int64_t last_ts_ms;
};
int tsdb_metric_counts(struct tsdb *db, const struct tsdb_matcher *m, size_t nm,
		       struct tsdb_metric_count **out, size_t *nout);
void tsdb_metric_counts_free(struct tsdb_metric_count *c, size_t n);

/* Prometheus text exposition (format 0.0.4) of the latest sample of every
 * series with a sample at or after since_ms, with its timestamp, grouped by
 * metric. Returns 0, or HERR_TOOBIG when out's limit is reached. */
int tsdb_expose(struct tsdb *db, struct buf *out, int64_t since_ms, struct herr *err);

/* Streaming exposition, the same text as tsdb_expose a piece at a time,
 * with the lock held only while a piece is made: begin takes the list of
 * metric names (the only memory that grows with the store); each next
 * appends at most max_series series to out and returns false once
 * everything is written. A series created during the walk may or may not
 * appear; a removed one is skipped. end frees (NULL is fine). */
struct tsdb_expose_cursor;
struct tsdb_expose_cursor *tsdb_expose_begin(struct tsdb *db, int64_t since_ms);
bool tsdb_expose_next(struct tsdb *db, struct tsdb_expose_cursor *c, struct buf *out,
		      size_t max_series);
void tsdb_expose_end(struct tsdb_expose_cursor *c);

/* How a metric of the store is written in the exposition: the caller's
 * vocabulary (Prometheus names and units), not the store's. fn is called
 * once per metric with f preset to {metric, "untyped", NULL, 1}; it may
 * point name elsewhere (a string that outlives the cursor), set the type
 * and a one-line help (no backslash or newline; NULL: no HELP line),
 * multiply every value by scale, or set name to NULL to leave the metric
 * out. Without it (tsdb_expose, or no call) names and values are the
 * store's and families are untyped. */
struct tsdb_expose_family {
	const char *name;
	const char *type;
	const char *help;
	double scale;
};
typedef void (*tsdb_expose_family_fn)(const char *metric, struct tsdb_expose_family *f);
void tsdb_expose_set_family(struct tsdb_expose_cursor *c, tsdb_expose_family_fn fn);

/* Latest, a page at a time, walking series in id (creation) order so a
 * cursor stays valid while series are added (each page is then sorted by
 * metric and labels): at most limit series with an id >= *cursor (0 to
 * start), looking at no more than 64 x limit candidates; *cursor is then
 * where the next page starts, or UINT32_MAX when the listing is complete.
 * *out: owned array of *nout (tsdb_series_free). */
int tsdb_latest_page(struct tsdb *db, const char *metric, const struct tsdb_matcher *m, size_t nm,
		     int64_t since_ms, uint32_t *cursor, size_t limit,
		     struct tsdb_series_info **out, size_t *nout, struct herr *err);

/* One alternative of tsdb_latest_page_any: matchers that must all hold. */
struct tsdb_match_set {
	const struct tsdb_matcher *m;
	size_t nm;
};
/* tsdb_latest_page over the series matching m and any one of the nalt
 * sets of alt (none when nalt is 0): each set is looked up in the index by
 * itself, so a set naming a host costs that host's series, not those of
 * everything else m matches (a group's). Same cursor and order. */
int tsdb_latest_page_any(struct tsdb *db, const char *metric, const struct tsdb_matcher *m,
			 size_t nm, const struct tsdb_match_set *alt, size_t nalt, int64_t since_ms,
			 uint32_t *cursor, size_t limit, struct tsdb_series_info **out,
			 size_t *nout, struct herr *err);

void tsdb_stats(struct tsdb *db, struct tsdb_stats *st);

/* Text helpers shared with the API: a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*,
 * a label name [a-zA-Z_][a-zA-Z0-9_]*, both 1..TSDB_NAME_MAX bytes. */
bool tsdb_metric_name_ok(const char *s);
bool tsdb_label_name_ok(const char *s);

#endif
