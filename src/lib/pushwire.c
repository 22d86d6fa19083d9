/* pushwire.c - the agents' protobuf push (pushwire.h): batches packed by
 * libprotobuf-c from plain C, request bodies framed from packed batches,
 * and bodies unpacked into an arena with a budget, then viewed as plain C.
 * The sizes come from protobuf-c (protobuf_c_message_get_packed_size), not
 * from any wire arithmetic of ours. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "push.pb-c.h"
#include "pushwire.h"

/* --- encoding --- */

/* The protobuf-c messages of one batch, pointing at the caller's strings. */
struct enc {
	Herd__PushBatch batch;
	Herd__PushSeries *series, **seriesp;
	Herd__PushLabel *labels, **labelsp;
	Herd__PushMonitor *mons, **monsp;
};

static ProtobufCBinaryData
bin(const char *s)
{
	return (ProtobufCBinaryData){ .len = strlen(s), .data = (uint8_t *)s };
}

static int
enc_build(struct enc *e, const struct pushwire_batch *b)
{
	size_t nl = 0, l = 0;

	for (size_t i = 0; i < b->nseries; i++)
		nl += b->series[i].nlabels;
	memset(e, 0, sizeof(*e));
	e->series = calloc(b->nseries + 1, sizeof(*e->series));
	e->seriesp = calloc(b->nseries + 1, sizeof(*e->seriesp));
	e->labels = calloc(nl + 1, sizeof(*e->labels));
	e->labelsp = calloc(nl + 1, sizeof(*e->labelsp));
	e->mons = calloc(b->nmonitors + 1, sizeof(*e->mons));
	e->monsp = calloc(b->nmonitors + 1, sizeof(*e->monsp));
	if (!e->series || !e->seriesp || !e->labels || !e->labelsp || !e->mons || !e->monsp)
		return -ENOMEM;
	herd__push_batch__init(&e->batch);
	e->batch.has_ts_ms = 1;
	e->batch.ts_ms = b->ts_ms;
	for (size_t i = 0; i < b->nseries; i++) {
		const struct pushwire_series *s = &b->series[i];
		Herd__PushSeries *ps = &e->series[i];

		herd__push_series__init(ps);
		ps->has_name = 1;
		ps->name = bin(s->name);
		ps->has_value = 1;
		ps->value = s->value;
		ps->n_labels = s->nlabels;
		ps->labels = &e->labelsp[l];
		for (size_t k = 0; k < s->nlabels; k++, l++) {
			herd__push_label__init(&e->labels[l]);
			e->labels[l].has_name = 1;
			e->labels[l].name = bin(s->labels[k].name);
			e->labels[l].has_value = 1;
			e->labels[l].value = bin(s->labels[k].value);
			e->labelsp[l] = &e->labels[l];
		}
		e->seriesp[i] = ps;
	}
	for (size_t i = 0; i < b->nmonitors; i++) {
		const struct pushwire_monitor *m = &b->monitors[i];
		Herd__PushMonitor *pm = &e->mons[i];

		herd__push_monitor__init(pm);
		pm->has_name = 1;
		pm->name = bin(m->name);
		pm->has_state = 1;
		pm->state = bin(m->state);
		if (m->error) {
			pm->has_error = 1;
			pm->error = bin(m->error);
		}
		e->monsp[i] = pm;
	}
	e->batch.series = e->seriesp;
	e->batch.monitors = e->monsp;
	e->batch.n_monitors = b->nmonitors;
	return 0;
}

static void
enc_release(struct enc *e)
{
	free(e->series);
	free(e->seriesp);
	free(e->labels);
	free(e->labelsp);
	free(e->mons);
	free(e->monsp);
}

/* Packed size of the batch with its first n series. */
static size_t
enc_size(struct enc *e, size_t n)
{
	e->batch.n_series = n;
	return protobuf_c_message_get_packed_size(&e->batch.base);
}

size_t
pushwire_encode_batch(const struct pushwire_batch *b, uint8_t *out, size_t outsz, size_t *cut)
{
	struct enc e;
	size_t lo, hi, len = 0;

	if (cut)
		*cut = 0;
	if (enc_build(&e, b) < 0)
		goto done;
	if (enc_size(&e, 0) > outsz) {
		if (cut)
			*cut = b->nseries;
		goto done;
	}
	/* the most series that fit: sizes grow with n, so a bisection */
	lo = 0;
	hi = b->nseries;
	if (enc_size(&e, hi) > outsz) {
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if (enc_size(&e, mid) <= outsz)
				lo = mid;
			else
				hi = mid;
		}
		hi = lo;
	}
	if (cut)
		*cut = b->nseries - hi;
	enc_size(&e, hi);
	len = protobuf_c_message_pack(&e.batch.base, out);
done:
	enc_release(&e);
	return len;
}

size_t
pushwire_frame(const struct pushwire_blob *batches, size_t n, bool has_dropped, uint64_t dropped,
	       uint8_t *out, size_t outsz)
{
	Herd__PushFrame f = HERD__PUSH_FRAME__INIT;
	ProtobufCBinaryData *bd = calloc(n + 1, sizeof(*bd));
	size_t len = 0;

	if (bd == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		bd[i] = (ProtobufCBinaryData){ .len = batches[i].len, .data = (uint8_t *)batches[i].data };
	f.n_batches = n;
	f.batches = bd;
	f.has_dropped = has_dropped;
	f.dropped = dropped;
	if (herd__push_frame__get_packed_size(&f) <= outsz)
		len = herd__push_frame__pack(&f, out);
	free(bd);
	return len;
}

/* --- decoding --- */

struct chunk {
	struct chunk *next;
	_Alignas(16) char data[];
};

#define CHUNK_MIN (64u << 10)

/* protobuf-c's allocator: a bump in the arena, one zero byte after each
 * block (see pushwire.h), 16-byte aligned; nothing is freed before the
 * arena is released. */
static void *
arena_alloc(void *data, size_t size)
{
	struct pushwire_arena *a = data;
	size_t need = (size + 1 + 15) & ~(size_t)15;
	char *p;

	if (need < size || need > a->budget - a->total) {
		a->over = true;
		return NULL;
	}
	if (a->size - a->used < need) {
		size_t csize = need > CHUNK_MIN ? need : CHUNK_MIN;
		struct chunk *c = malloc(sizeof(*c) + csize);

		if (c == NULL)
			return NULL;
		c->next = a->chunks;
		a->chunks = c;
		a->cur = c->data;
		a->size = csize;
		a->used = 0;
	}
	p = a->cur + a->used;
	a->used += need;
	a->total += need;
	p[size] = '\0';
	return p;
}

static void
arena_free(void *data, void *p)
{
}

void
pushwire_arena_release(struct pushwire_arena *a)
{
	struct chunk *c = a->chunks;

	while (c) {
		struct chunk *next = c->next;

		free(c);
		c = next;
	}
	a->chunks = NULL;
}

/* A decoded `bytes` as a string: "" when empty (protobuf-c leaves data
 * NULL), NULL when it holds a NUL. */
static const char *
str(const ProtobufCBinaryData *b)
{
	if (b->len == 0)
		return "";
	if (memchr(b->data, '\0', b->len))
		return NULL;
	return (const char *)b->data;   /* the arena's zero byte ends it */
}

/* The string of b into *out, or HERR_INVALID naming the field. */
static int
field_str(const ProtobufCBinaryData *b, const char **out, struct herr *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
field_str(const ProtobufCBinaryData *b, const char **out, struct herr *err, const char *fmt, ...)
{
	char f[160];
	va_list ap;

	if ((*out = str(b)) != NULL)
		return 0;
	va_start(ap, fmt);
	vsnprintf(f, sizeof(f), fmt, ap);
	va_end(ap);
	return herr_field(err, HERR_INVALID, f, "must not contain a NUL byte");
}

int
pushwire_decode(const void *body, size_t len, size_t max_batches, struct pushwire_arena *a,
		struct pushwire_push *out, struct herr *err)
{
	ProtobufCAllocator al = { .alloc = arena_alloc, .free = arena_free, .allocator_data = a };
	size_t nser = 0, nlab = 0, nmon = 0, si = 0, li = 0, mi = 0;
	struct pushwire_series *ser;
	struct pushwire_label *lab;
	struct pushwire_monitor *mon;
	struct pushwire_batch *bat;
	Herd__Push *m;

	a->used = a->size = a->total = 0;
	a->cur = a->stack;
	a->size = sizeof(a->stack);
	a->over = false;
	a->chunks = NULL;
	a->budget = len > (SIZE_MAX - (64u << 10)) / 24 ? SIZE_MAX : len * 24 + (64u << 10);
	memset(out, 0, sizeof(*out));
	m = herd__push__unpack(&al, len, body);
	if (m == NULL) {
		if (a->over)
			return herr_field(err, HERR_TOOBIG, "body",
					  "the push's message is too large to decode");
		return herr_field(err, HERR_INVALID, "body",
				  "is not a protobuf Push message (proto/push.proto)");
	}
	if (m->n_batches > max_batches)
		return herr_field(err, HERR_INVALID, "batches", "at most %zu batches per push",
				  max_batches);
	for (size_t i = 0; i < m->n_batches; i++) {
		nser += m->batches[i]->n_series;
		nmon += m->batches[i]->n_monitors;
		for (size_t j = 0; j < m->batches[i]->n_series; j++)
			nlab += m->batches[i]->series[j]->n_labels;
	}
	bat = arena_alloc(a, (m->n_batches + 1) * sizeof(*bat));
	ser = arena_alloc(a, (nser + 1) * sizeof(*ser));
	lab = arena_alloc(a, (nlab + 1) * sizeof(*lab));
	mon = arena_alloc(a, (nmon + 1) * sizeof(*mon));
	if (!bat || !ser || !lab || !mon)
		return a->over ? herr_field(err, HERR_TOOBIG, "body",
					    "the push's message is too large to decode")
			       : herr_set(err, -ENOMEM, "out of memory decoding a push");
	for (size_t i = 0; i < m->n_batches; i++) {
		const Herd__PushBatch *pb = m->batches[i];
		struct pushwire_batch *b = &bat[i];

		*b = (struct pushwire_batch){ .has_ts = pb->has_ts_ms, .ts_ms = pb->ts_ms,
					      .series = &ser[si], .nseries = pb->n_series,
					      .monitors = &mon[mi], .nmonitors = pb->n_monitors };
		for (size_t j = 0; j < pb->n_series; j++, si++) {
			const Herd__PushSeries *ps = pb->series[j];
			struct pushwire_series *s = &ser[si];

			*s = (struct pushwire_series){ .value = ps->value, .labels = &lab[li],
						       .nlabels = ps->n_labels };
			if (!ps->has_value) {
				char f[96];

				snprintf(f, sizeof(f), "batches[%zu].series[%zu].value", i, j);
				return herr_field(err, HERR_INVALID, f, "is missing");
			}
			if (field_str(&ps->name, &s->name, err, "batches[%zu].series[%zu].name", i, j) < 0)
				return err->code;
			for (size_t k = 0; k < ps->n_labels; k++, li++) {
				const Herd__PushLabel *pl = ps->labels[k];

				if (field_str(&pl->name, &lab[li].name, err,
					      "batches[%zu].series[%zu].labels[%zu].name", i, j, k) < 0 ||
				    field_str(&pl->value, &lab[li].value, err,
					      "batches[%zu].series[%zu].labels[%zu].value", i, j, k) < 0)
					return err->code;
			}
		}
		for (size_t j = 0; j < pb->n_monitors; j++, mi++) {
			const Herd__PushMonitor *pm = pb->monitors[j];

			if (field_str(&pm->name, &mon[mi].name, err, "batches[%zu].monitors[%zu].name",
				      i, j) < 0 ||
			    field_str(&pm->state, &mon[mi].state, err,
				      "batches[%zu].monitors[%zu].state", i, j) < 0)
				return err->code;
			mon[mi].error = NULL;
			if (pm->has_error &&
			    field_str(&pm->error, &mon[mi].error, err, "batches[%zu].monitors[%zu].error",
				      i, j) < 0)
				return err->code;
		}
	}
	out->batches = bat;
	out->nbatches = m->n_batches;
	out->has_dropped = m->has_dropped;
	out->dropped = m->dropped;
	return 0;
}
