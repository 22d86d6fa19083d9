/* store-sqlite.h - the SQLite backend's pure snapshot decider, for its unit
 * tests (the backend itself is reached through store_open, store.h). */
#ifndef HERD_STORE_SQLITE_H
#define HERD_STORE_SQLITE_H

#include <stdbool.h>
#include <stdint.h>

/* How long a read snapshot kept open after its statement may serve a later
 * read of the same thread (ms since it was taken): past it, the next read
 * takes a new one, and an idle connection's is ended by the store's sweeper
 * within SQ_SNAPSHOT_MS more. So a commit of another process is seen by
 * reads begun at most 2 * SQ_SNAPSHOT_MS after it; a commit of this process
 * at once (store_generation). */
#define SQ_SNAPSHOT_MS 10

/* What a read outside a transaction does with its connection's snapshot. */
enum sq_snap_act {
	SQ_SNAP_NONE,      /* read on its own (autocommit), ending one held */
	SQ_SNAP_KEEP,      /* read in the snapshot held */
	SQ_SNAP_RENEW,     /* end the one held, take a new one */
	SQ_SNAP_TAKE,      /* none held: take one */
};

/* held: a snapshot is open, taken at taken_ms when the store's generation
 * was taken_gen; pinned: inside store_read_begin/end (never renewed there);
 * nested: under another statement of the thread still running; write_ms:
 * when this process last began or committed a write. A snapshot is kept
 * while no commit of this process came after it (gen unchanged) and it is
 * younger than SQ_SNAPSHOT_MS; none is held while writes are under way
 * (one in the last SQ_SNAPSHOT_MS): a reader holding its snapshot between
 * requests would keep every checkpoint from copying the newest commit, so
 * the WAL would never start over and each commit would checkpoint again
 * (measured: PUTs under a GET load 1.4..4x slower). */
enum sq_snap_act sq_snapshot_decide(bool held, bool pinned, bool nested, uint64_t taken_gen,
				    int64_t taken_ms, uint64_t gen, int64_t now_ms, int64_t write_ms);

/* Whether writes are under way: one began or committed at write_ms, less
 * than SQ_SNAPSHOT_MS before now_ms. */
bool sq_writing(int64_t now_ms, int64_t write_ms);

/* Whether a held snapshot its thread is not using should be ended now (by
 * the sweeper): older than SQ_SNAPSHOT_MS, or older than a commit of this
 * process. */
bool sq_snapshot_stale(uint64_t taken_gen, int64_t taken_ms, uint64_t gen, int64_t now_ms);

#endif
