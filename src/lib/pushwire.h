/* pushwire.h - the agents' metrics push in protobuf (proto/push.proto) to
 * and from plain C batches: what an agent sends when the server's config
 * offers it (docs/agent-metrics.md), and what the server decodes without
 * building a JSON tree per push (docs/scale.md, "Pushes"). Encoded and
 * decoded by libprotobuf-c: nothing of the wire format is written by hand
 * here. Used by the agent (encoder; linked statically into herd-agent), by
 * `herd bench agents` and the push bench (encoder), and by the server's
 * push handler (decoder). No server code: the checks of what a value means
 * (metric names, label names, clock skew, limits per batch) stay in the
 * server's model (metrics_push_decode_wire), shared with the JSON body. */
#ifndef HERD_PUSHWIRE_H
#define HERD_PUSHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"

#define PUSHWIRE_CONTENT_TYPE "application/x-protobuf"

/* The push as plain C, both ways. Strings are NUL-terminated and hold no
 * NUL. Encoding, the caller owns them; decoded, they live in the arena. */
struct pushwire_label {
	const char *name, *value;
};

struct pushwire_series {
	const char *name;
	double value;
	const struct pushwire_label *labels;
	size_t nlabels;
};

struct pushwire_monitor {
	const char *name, *state;
	const char *error;          /* NULL: none */
};

struct pushwire_batch {
	bool has_ts;                /* decoded: whether ts_ms was there */
	int64_t ts_ms;
	const struct pushwire_series *series;
	size_t nseries;
	const struct pushwire_monitor *monitors;
	size_t nmonitors;
};

struct pushwire_push {
	const struct pushwire_batch *batches;
	size_t nbatches;
	bool has_dropped;
	uint64_t dropped;
};

/* --- encoding (the agent, the benches) --- */

/* Writes batch b as one PushBatch message into out (outsz bytes). Series
 * are taken in order while the whole still fits: the ones left out are
 * counted in *cut (may be NULL), as are all of them when not even the
 * monitors fit. Returns the length, or 0 when not even an empty batch
 * with its monitors fits, or on allocation failure. */
size_t pushwire_encode_batch(const struct pushwire_batch *b, uint8_t *out, size_t outsz,
			     size_t *cut);

/* One encoded batch, as pushwire_encode_batch wrote it. */
struct pushwire_blob {
	const uint8_t *data;
	size_t len;
};

/* Bytes a request body spends on one batch of len bytes besides the batch
 * itself (its tag and length), and on the dropped count at most. */
#define PUSHWIRE_BATCH_OVERHEAD 6   /* 1-byte tag, length up to 5 bytes */
#define PUSHWIRE_DROPPED_MAX 11     /* 1-byte tag, a varint of up to 10 */

/* A request body (a Push) of n encoded batches and, when has_dropped, the
 * dropped count, into out. Returns the length, or 0 when it does not fit
 * outsz (n + PUSHWIRE_BATCH_OVERHEAD per batch plus the batches plus
 * PUSHWIRE_DROPPED_MAX always fits). */
size_t pushwire_frame(const struct pushwire_blob *batches, size_t n, bool has_dropped,
		      uint64_t dropped, uint8_t *out, size_t outsz);

/* --- decoding (the server) --- */

/* Where a decoded push lives: protobuf-c's messages and the plain C view
 * of them. The first PUSHWIRE_ARENA_STACK bytes are inside the struct (an
 * agent's usual push needs no heap), then heap chunks; at most `budget`
 * bytes in all (a small body announcing huge repeated fields cannot make
 * the server allocate past it). Every allocation is followed by one zero
 * byte, so that protobuf-c's `bytes` are NUL-terminated strings once
 * checked for inner NULs. */
#define PUSHWIRE_ARENA_STACK (32u << 10)

struct pushwire_arena {
	size_t used;                /* of the current chunk */
	size_t size;                /* of the current chunk */
	char *cur;                  /* the current chunk */
	size_t total;               /* bytes handed out, all chunks */
	size_t budget;
	bool over;                  /* an allocation was refused for the budget */
	void *chunks;               /* heap chunks, a list; owned */
	_Alignas(16) char stack[PUSHWIRE_ARENA_STACK];
};

/* Decodes a Push body of len bytes into *out, allocating in a (set up
 * here; pushwire_arena_release(a) after, even on error). The budget (24
 * times the body plus 64 KiB) is checked while protobuf-c decodes; then at
 * most max_batches batches (PUSH_MAX_BATCHES_PER_REQUEST for an agent),
 * every series has a value, and no string holds a NUL. HERR_INVALID naming
 * the field ("body", "batches[2].series[0].labels[1].value") or
 * HERR_TOOBIG ("body"); 0. An empty body is a push of no batches. The meaning
 * of the values (names, states, times, the per-batch limits) is the
 * caller's to check. */
int pushwire_decode(const void *body, size_t len, size_t max_batches, struct pushwire_arena *a,
		    struct pushwire_push *out, struct herr *err);
void pushwire_arena_release(struct pushwire_arena *a);

#endif
