/* push-edge.c - edge-triggered pushes: the pure crossing detector that
 * decides, after each collection cycle and each monitor sample, whether a
 * value crossed one of the thresholds the server watches its metric for
 * (the agent config's "thresholds", from the group's policies). push.c
 * pushes at once on a crossing; `herd bench agents` could share this. */
#include <math.h>
#include <string.h>

#include "agent/push.h"
#include "util.h"

bool
push_edge_crossed(const struct push_threshold *t, enum push_side prev, double cur,
		  enum push_side *next)
{
	struct expr e = { .op = t->op, .value = t->value };
	enum push_side now;

	*next = prev;
	if (!isfinite(cur))
		return false;
	now = expr_holds(&e, cur) ? PUSH_SIDE_ON : PUSH_SIDE_OFF;
	*next = now;
	if (prev == PUSH_SIDE_UNKNOWN)
		return now == PUSH_SIDE_ON;     /* the first value is already past */
	return now != prev;
}

static bool
thr_equal(const struct push_threshold *a, const struct push_threshold *b)
{
	return strcmp(a->metric, b->metric) == 0 && a->op == b->op && a->value == b->value;
}

void
push_edge_set(struct push_edge *e, const struct push_threshold *t, size_t n)
{
	bool same = n == e->nthr;

	if (n > PUSH_MAX_THRESHOLDS)
		n = PUSH_MAX_THRESHOLDS;
	for (size_t i = 0; same && i < n; i++)
		same = thr_equal(&e->thr[i], &t[i]);
	if (same)
		return;
	memcpy(e->thr, t, n * sizeof(*t));
	e->nthr = n;
	e->nslot = 0;
}

static uint64_t
series_key(const struct col_series *s)
{
	uint64_t h = fnv1a_str(FNV1A_INIT, s->name);

	for (size_t k = 0; k < COL_MAX_LABELS && s->label_key[k]; k++) {
		h = fnv1a(h, ",", 1);
		h = fnv1a_str(h, s->label_key[k]);
		h = fnv1a(h, "=", 1);
		h = fnv1a_str(h, s->label_val[k] ? s->label_val[k] : "");
	}
	return h;
}

static struct push_edge_slot *
slot_get(struct push_edge *e, uint64_t key, size_t thr)
{
	for (size_t i = 0; i < e->nslot; i++)
		if (e->slot[i].key == key && e->slot[i].thr == thr)
			return &e->slot[i];
	if (e->nslot == PUSH_EDGE_SLOTS)
		return NULL;
	e->slot[e->nslot] = (struct push_edge_slot){ key, (uint8_t)thr, PUSH_SIDE_UNKNOWN };
	return &e->slot[e->nslot++];
}

size_t
push_edge_scan(struct push_edge *e, const struct col_batch *b, const char **first)
{
	size_t crossed = 0;

	if (first)
		*first = NULL;
	if (e->nthr == 0)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct col_series *s = &b->series[i];
		uint64_t key = 0;

		for (size_t t = 0; t < e->nthr; t++) {
			struct push_edge_slot *sl;
			enum push_side next;

			if (strcmp(e->thr[t].metric, s->name) != 0)
				continue;
			if (key == 0)
				key = series_key(s);
			if ((sl = slot_get(e, key, t)) == NULL)
				continue;
			if (push_edge_crossed(&e->thr[t], (enum push_side)sl->side, s->value, &next)) {
				if (crossed++ == 0 && first)
					*first = e->thr[t].metric;
			}
			sl->side = (uint8_t)next;
		}
	}
	return crossed;
}
