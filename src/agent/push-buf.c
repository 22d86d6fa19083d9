/* push-buf.c - the bounded buffer of encoded batches the send thread
 * drains (see struct push_buf in push.h): a byte ring plus a ring of
 * entries, the oldest dropped first and counted, batches in flight settled
 * by the answer; a request takes a run of batches of one format (JSON or
 * protobuf). Plain functions, no locking: push.c holds its lock. */
#include <stdio.h>
#include <string.h>

#include "agent/push.h"
#include "xalloc.h"

void
push_buf_init(struct push_buf *b, size_t max_batches, size_t max_bytes)
{
	memset(b, 0, sizeof(*b));
	b->max_batches = max_batches ? max_batches : PUSH_BUF_MAX_BATCHES;
	b->max_bytes = max_bytes ? max_bytes : PUSH_MAX_BYTES;
	/* untouched pages of the ring cost no memory until an outage fills them */
	b->mem = xmalloc(b->max_bytes);
	b->ent = xcalloc(b->max_batches, sizeof(*b->ent));
}

void
push_buf_release(struct push_buf *b)
{
	xfree(&b->mem);
	xfree(&b->ent);
}

static struct push_ent *
push_buf_ent(const struct push_buf *b, size_t i)
{
	return &b->ent[(b->head + i) % b->max_batches];
}

static void
push_buf_pop(struct push_buf *b)
{
	struct push_ent *e = push_buf_ent(b, 0);

	b->used_bytes -= e->len;
	b->head = (b->head + 1) % b->max_batches;
	b->count--;
}

/* Drops the oldest batch for room, counting it. */
static void
push_buf_drop_oldest(struct push_buf *b)
{
	if (push_buf_ent(b, 0)->seq <= b->inflight_seq)
		b->inflight_dropped++;  /* lost only if its request fails */
	else
		b->dropped++;
	b->dropped_total++;
	push_buf_pop(b);
}

int
push_buf_add(struct push_buf *b, enum push_format fmt, const char *data, size_t len)
{
	struct push_ent *e;
	size_t pos = 0;
	int dropped = 0;

	if (len == 0 || len > b->max_bytes)
		return HERR_TOOBIG;
	for (;;) {
		const struct push_ent *old, *new;
		size_t end;

		if (b->count == b->max_batches) {
			push_buf_drop_oldest(b);
			dropped++;
			continue;
		}
		if (b->count == 0) {
			pos = 0;
			break;
		}
		old = push_buf_ent(b, 0);
		new = push_buf_ent(b, b->count - 1);
		end = new->off + new->len;
		if (new->off >= old->off) {
			/* [old .. new] in one piece: room after it, or before it */
			if (b->max_bytes - end >= len) {
				pos = end;
				break;
			}
			if (old->off >= len) {
				pos = 0;
				break;
			}
		} else if (old->off - end >= len) {
			/* wrapped: the gap between the newest and the oldest */
			pos = end;
			break;
		}
		push_buf_drop_oldest(b);
		dropped++;
	}
	memcpy(b->mem + pos, data, len);
	e = push_buf_ent(b, b->count);
	e->off = pos;
	e->len = len;
	e->seq = ++b->next_seq;
	e->fmt = fmt;
	b->count++;
	b->used_bytes += len;
	return dropped;
}

const char *
push_buf_get(const struct push_buf *b, size_t i, size_t *len, uint64_t *seq)
{
	const struct push_ent *e;

	if (i >= b->count)
		return NULL;
	e = push_buf_ent(b, i);
	if (len)
		*len = e->len;
	if (seq)
		*seq = e->seq;
	return b->mem + e->off;
}

/* A batch too big for any request can never go: gives it up, counted. */
static void
push_buf_give_up(struct push_buf *b)
{
	push_buf_pop(b);
	b->dropped++;
	b->dropped_total++;
}

static size_t
push_buf_take_json(struct push_buf *b, char *out, size_t outsz, size_t max_batches,
		   size_t *nbatches)
{
	static const char head[] = "{\"batches\":[";
	char tail[48];
	size_t len, n = 0, tlen;

	tlen = (size_t)snprintf(tail, sizeof(tail), "],\"dropped\":%llu}",
				(unsigned long long)b->dropped);
	memcpy(out, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	while (n < b->count && n < max_batches) {
		const struct push_ent *e = push_buf_ent(b, n);

		if (e->fmt != PUSH_FMT_JSON || len + (n > 0) + e->len + tlen + 1 > outsz)
			break;
		if (n > 0)
			out[len++] = ',';
		memcpy(out + len, b->mem + e->off, e->len);
		len += e->len;
		b->inflight_seq = e->seq;
		n++;
	}
	memcpy(out + len, tail, tlen + 1);
	*nbatches = n;
	return len + tlen;
}

/* A Push: the batches as they are (each already a PushBatch), framed. */
static size_t
push_buf_take_pb(struct push_buf *b, char *out, size_t outsz, size_t max_batches,
		 size_t *nbatches)
{
	struct pushwire_blob blob[PUSH_MAX_BATCHES_PER_REQUEST];
	size_t n = 0, need = PUSHWIRE_DROPPED_MAX, len;

	if (max_batches > PUSH_MAX_BATCHES_PER_REQUEST)
		max_batches = PUSH_MAX_BATCHES_PER_REQUEST;
	while (n < b->count && n < max_batches) {
		const struct push_ent *e = push_buf_ent(b, n);

		if (e->fmt != PUSH_FMT_PROTOBUF || need + e->len + PUSHWIRE_BATCH_OVERHEAD > outsz)
			break;
		need += e->len + PUSHWIRE_BATCH_OVERHEAD;
		blob[n].data = (const uint8_t *)b->mem + e->off;
		blob[n].len = e->len;
		n++;
	}
	len = pushwire_frame(blob, n, true, b->dropped, (uint8_t *)out, outsz);
	if (len == 0)
		return 0;       /* out of memory in protobuf-c: nothing in flight */
	b->inflight_seq = push_buf_ent(b, n - 1)->seq;
	*nbatches = n;
	return len;
}

/* Bytes a request spends besides the batch itself, at most (its format's
 * frame, the dropped count, a NUL). */
static size_t
push_buf_overhead(const struct push_buf *b, enum push_format fmt)
{
	char tail[48];

	if (fmt == PUSH_FMT_PROTOBUF)
		return PUSHWIRE_BATCH_OVERHEAD + PUSHWIRE_DROPPED_MAX;
	return sizeof("{\"batches\":[") + 1 +
	       (size_t)snprintf(tail, sizeof(tail), "],\"dropped\":%llu}",
				(unsigned long long)b->dropped);
}

size_t
push_buf_take(struct push_buf *b, char *out, size_t outsz, size_t max_batches,
	      size_t *nbatches, enum push_format *fmt)
{
	const struct push_ent *e;
	size_t len;

	*nbatches = 0;
	while (b->count > 0) {
		e = push_buf_ent(b, 0);
		if (e->len + push_buf_overhead(b, e->fmt) <= outsz)
			break;
		push_buf_give_up(b);
	}
	if (b->count == 0 || max_batches == 0)
		return 0;
	*fmt = push_buf_ent(b, 0)->fmt;
	if (*fmt == PUSH_FMT_PROTOBUF)
		len = push_buf_take_pb(b, out, outsz, max_batches, nbatches);
	else
		len = push_buf_take_json(b, out, outsz, max_batches, nbatches);
	if (len == 0)
		return 0;
	b->inflight_dropped = 0;
	b->inflight_reported = b->dropped;
	return len;
}

void
push_buf_done(struct push_buf *b, enum push_outcome how)
{
	size_t popped = 0;

	if (how == PUSH_SENT || how == PUSH_REJECTED) {
		while (b->count > 0 && push_buf_ent(b, 0)->seq <= b->inflight_seq) {
			push_buf_pop(b);
			popped++;
		}
	}
	switch (how) {
	case PUSH_SENT:
		/* the server now knows of those drops; the ones in flight arrived */
		b->dropped -= b->inflight_reported;
		b->dropped_total -= b->inflight_dropped;
		break;
	case PUSH_FAILED:
		b->dropped += b->inflight_dropped;
		break;
	case PUSH_REJECTED:
		b->dropped += b->inflight_dropped + popped;
		b->dropped_total += popped;
		break;
	}
	b->inflight_seq = 0;
	b->inflight_dropped = 0;
	b->inflight_reported = 0;
}

