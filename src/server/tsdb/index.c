/* index.c - series keys, the key -> id hash table and the label postings
 * of the metric store (see index.h). Open addressing with linear probing
 * throughout; ids are slots in an array and never reused, so postings stay
 * sorted by construction. */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "util.h"
#include "xalloc.h"

struct slot {
	char *key;        /* NULL once removed */
	uint32_t len;
	uint32_t hash;
};

struct posting {
	char *key;        /* "name\0value\0" */
	uint32_t len, hash;
	uint32_t *ids, n, cap;
};

#define TAB_EMPTY 0u
#define TAB_TOMB UINT32_MAX

struct tsdb_index {
	struct slot *slots;
	uint32_t nslots, capslots;
	uint32_t *tab;            /* id + 1, TAB_EMPTY or TAB_TOMB */
	size_t tabcap, tabused;   /* used counts tombstones */
	struct posting *post;     /* key NULL = empty */
	size_t postcap, postused;
	size_t live;
	size_t stale;             /* removed series still in postings */
};

static uint32_t
hash_bytes(const char *p, size_t n)
{
	uint64_t h = fnv1a(FNV1A_INIT, p, n);

	return (uint32_t)(h ^ (h >> 32));
}

struct tsdb_index *
index_new(void)
{
	struct tsdb_index *ix = xcalloc(1, sizeof(*ix));

	ix->tabcap = 1024;
	ix->tab = xcalloc(ix->tabcap, sizeof(*ix->tab));
	ix->postcap = 256;
	ix->post = xcalloc(ix->postcap, sizeof(*ix->post));
	return ix;
}

void
index_free(struct tsdb_index *ix)
{
	if (ix == NULL)
		return;
	for (uint32_t i = 0; i < ix->nslots; i++)
		free(ix->slots[i].key);
	for (size_t i = 0; i < ix->postcap; i++) {
		free(ix->post[i].key);
		free(ix->post[i].ids);
	}
	free(ix->slots);
	free(ix->tab);
	free(ix->post);
	free(ix);
}

/* --- keys --- */

int
index_key(const char *metric, const struct tsdb_label *l, size_t n, char *out, size_t cap,
	  struct herr *err)
{
	const struct tsdb_label *s[TSDB_MAX_LABELS];
	size_t k = 0, len = 0, ml;

	if (metric == NULL || metric[0] == '\0')
		return herr_field(err, HERR_INVALID, "name", "metric name is empty");
	for (size_t i = 0; i < n; i++) {
		size_t j;
		if (l[i].name == NULL || l[i].name[0] == '\0')
			return herr_field(err, HERR_INVALID, "labels", "label name is empty");
		if (l[i].value == NULL || l[i].value[0] == '\0')
			continue; /* an empty value is the same as no label */
		if (k == TSDB_MAX_LABELS)
			return herr_field(err, HERR_INVALID, "labels", "more than %d labels",
					  TSDB_MAX_LABELS);
		for (j = k; j > 0 && strcmp(s[j - 1]->name, l[i].name) > 0; j--)
			s[j] = s[j - 1];
		if (j > 0 && strcmp(s[j - 1]->name, l[i].name) == 0)
			return herr_field(err, HERR_INVALID, "labels", "label '%s' given twice",
					  l[i].name);
		s[j] = &l[i];
		k++;
	}
	ml = strlen(metric) + 1;
	if (ml > cap)
		goto toolong;
	memcpy(out, metric, ml);
	len = ml;
	for (size_t i = 0; i < k; i++) {
		size_t a = strlen(s[i]->name) + 1, b = strlen(s[i]->value) + 1;
		if (len + a + b > cap)
			goto toolong;
		memcpy(out + len, s[i]->name, a);
		memcpy(out + len + a, s[i]->value, b);
		len += a + b;
	}
	return (int)len;
toolong:
	return herr_field(err, HERR_INVALID, "labels", "series key longer than %zu bytes", cap);
}

void
index_key_walk(const char *key, size_t len,
	       bool (*fn)(const char *name, const char *value, void *arg), void *arg)
{
	const char *p = key, *end = key + len;

	if (len == 0 || !fn("__name__", p, arg))
		return;
	p += strlen(p) + 1;
	while (p < end) {
		const char *name = p, *value = p + strlen(p) + 1;
		if (value >= end || !fn(name, value, arg))
			return;
		p = value + strlen(value) + 1;
	}
}

size_t
index_key_split(const char *key, size_t len, const char **metric, struct tsdb_label *l,
		size_t max)
{
	const char *p = key, *end = key + len;
	size_t n = 0;

	*metric = key;
	p += strlen(p) + 1;
	while (p < end && n < max) {
		l[n].name = p;
		p += strlen(p) + 1;
		if (p >= end)
			break;
		l[n++].value = p;
		p += strlen(p) + 1;
	}
	return n;
}

const char *
index_key_label(const char *key, size_t len, const char *name)
{
	const char *p = key, *end = key + len;

	p += strlen(p) + 1;
	while (p < end) {
		const char *v = p + strlen(p) + 1;
		int c;
		if (v >= end)
			break;
		c = strcmp(p, name);
		if (c == 0)
			return v;
		if (c > 0)
			break; /* sorted */
		p = v + strlen(v) + 1;
	}
	return "";
}

bool
index_key_matches(const char *key, size_t len, const char *metric, const struct tsdb_matcher *m,
		  size_t nm)
{
	if (metric && strcmp(key, metric) != 0)
		return false;
	for (size_t i = 0; i < nm; i++) {
		const char *v = strcmp(m[i].name, "__name__") == 0 ? key
								   : index_key_label(key, len, m[i].name);
		bool eq = strcmp(v, m[i].value ? m[i].value : "") == 0;
		if (eq == m[i].neg)
			return false;
	}
	return true;
}

/* --- the key table --- */

static void
tab_grow(struct tsdb_index *ix)
{
	size_t cap = 1024;
	uint32_t *t;

	/* rebuilt at most half full: doubles, or just sheds tombstones */
	while (cap < (ix->live + 1) * 2)
		cap *= 2;
	t = xcalloc(cap, sizeof(*t));
	for (size_t i = 0; i < ix->tabcap; i++) {
		uint32_t v = ix->tab[i];
		size_t h;
		if (v == TAB_EMPTY || v == TAB_TOMB)
			continue;
		for (h = ix->slots[v - 1].hash & (cap - 1); t[h] != TAB_EMPTY; h = (h + 1) & (cap - 1))
			;
		t[h] = v;
	}
	free(ix->tab);
	ix->tab = t;
	ix->tabcap = cap;
	ix->tabused = ix->live;
}

uint32_t
index_find(const struct tsdb_index *ix, const char *key, size_t len)
{
	uint32_t hv = hash_bytes(key, len);

	for (size_t h = hv & (ix->tabcap - 1);; h = (h + 1) & (ix->tabcap - 1)) {
		uint32_t v = ix->tab[h];
		const struct slot *s;
		if (v == TAB_EMPTY)
			return INDEX_NONE;
		if (v == TAB_TOMB)
			continue;
		s = &ix->slots[v - 1];
		if (s->hash == hv && s->len == len && memcmp(s->key, key, len) == 0)
			return v - 1;
	}
}

static struct posting *
post_find(const struct tsdb_index *ix, const char *key, size_t len, uint32_t hv)
{
	for (size_t h = hv & (ix->postcap - 1);; h = (h + 1) & (ix->postcap - 1)) {
		struct posting *p = &ix->post[h];
		if (p->key == NULL)
			return p;
		if (p->hash == hv && p->len == len && memcmp(p->key, key, len) == 0)
			return p;
	}
}

static void
post_grow(struct tsdb_index *ix)
{
	size_t cap = ix->postcap * 2;
	struct posting *np = xcalloc(cap, sizeof(*np));

	for (size_t i = 0; i < ix->postcap; i++) {
		struct posting *p = &ix->post[i];
		size_t h;
		if (p->key == NULL)
			continue;
		for (h = p->hash & (cap - 1); np[h].key; h = (h + 1) & (cap - 1))
			;
		np[h] = *p;
	}
	free(ix->post);
	ix->post = np;
	ix->postcap = cap;
}

static bool
post_add_cb(const char *name, const char *value, void *arg)
{
	struct { struct tsdb_index *ix; uint32_t id; } *a = arg;
	char buf[TSDB_KEY_MAX];
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	struct posting *p;
	uint32_t hv;

	if (nl + vl > sizeof(buf))
		return true;
	memcpy(buf, name, nl);
	memcpy(buf + nl, value, vl);
	hv = hash_bytes(buf, nl + vl);
	p = post_find(a->ix, buf, nl + vl, hv);
	if (p->key == NULL) {
		if ((a->ix->postused + 1) * 10 > a->ix->postcap * 7) {
			post_grow(a->ix);
			p = post_find(a->ix, buf, nl + vl, hv);
		}
		p->key = xmalloc(nl + vl);
		memcpy(p->key, buf, nl + vl);
		p->len = (uint32_t)(nl + vl);
		p->hash = hv;
		a->ix->postused++;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->ids = xrealloc(p->ids, p->cap * sizeof(*p->ids));
	}
	p->ids[p->n++] = a->id;
	return true;
}

/* Drops the ids of removed series from every posting list: one pass over
 * all of them, done once as many series were removed as live ones remain,
 * so removing n series costs O(n) in all (removing each id from its lists
 * one by one was quadratic: a memmove of the whole list per id). */
static void
post_compact(struct tsdb_index *ix)
{
	for (size_t i = 0; i < ix->postcap; i++) {
		struct posting *p = &ix->post[i];
		uint32_t k = 0;

		if (p->key == NULL)
			continue;
		for (uint32_t j = 0; j < p->n; j++)
			if (ix->slots[p->ids[j]].key != NULL)
				p->ids[k++] = p->ids[j];
		p->n = k;
	}
	ix->stale = 0;
}

uint32_t
index_add(struct tsdb_index *ix, const char *key, size_t len)
{
	struct { struct tsdb_index *ix; uint32_t id; } a = { ix, ix->nslots };
	uint32_t hv = hash_bytes(key, len);
	struct slot *s;
	size_t h;

	if (ix->nslots == ix->capslots) {
		ix->capslots = ix->capslots ? ix->capslots * 2 : 256;
		ix->slots = xrealloc(ix->slots, ix->capslots * sizeof(*ix->slots));
	}
	s = &ix->slots[ix->nslots++];
	s->key = xmalloc(len);
	memcpy(s->key, key, len);
	s->len = (uint32_t)len;
	s->hash = hv;
	ix->live++;
	if ((ix->tabused + 1) * 10 > ix->tabcap * 7)
		tab_grow(ix);
	for (h = hv & (ix->tabcap - 1); ix->tab[h] != TAB_EMPTY && ix->tab[h] != TAB_TOMB;
	     h = (h + 1) & (ix->tabcap - 1))
		;
	if (ix->tab[h] == TAB_EMPTY)
		ix->tabused++;
	ix->tab[h] = a.id + 1;
	index_key_walk(key, len, post_add_cb, &a);
	return a.id;
}

void
index_remove(struct tsdb_index *ix, uint32_t id)
{
	struct slot *s;

	if (id >= ix->nslots || ix->slots[id].key == NULL)
		return;
	s = &ix->slots[id];
	for (size_t h = s->hash & (ix->tabcap - 1);; h = (h + 1) & (ix->tabcap - 1)) {
		if (ix->tab[h] == TAB_EMPTY)
			break;
		if (ix->tab[h] == id + 1) {
			ix->tab[h] = TAB_TOMB;
			break;
		}
	}
	/* postings keep the id until the next compaction; readers skip ids
	 * whose key is gone */
	xfree(&s->key);
	ix->live--;
	if (++ix->stale > ix->live + 1024)
		post_compact(ix);
}

const char *
index_get(const struct tsdb_index *ix, uint32_t id, size_t *len)
{
	if (id >= ix->nslots || ix->slots[id].key == NULL)
		return NULL;
	if (len)
		*len = ix->slots[id].len;
	return ix->slots[id].key;
}

size_t
index_count(const struct tsdb_index *ix)
{
	return ix->live;
}

uint32_t
index_end(const struct tsdb_index *ix)
{
	return ix->nslots;
}

static const struct posting *
post_get(const struct tsdb_index *ix, const char *name, const char *value)
{
	char buf[TSDB_KEY_MAX];
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	const struct posting *p;

	if (nl + vl > sizeof(buf))
		return NULL;
	memcpy(buf, name, nl);
	memcpy(buf + nl, value, vl);
	p = post_find(ix, buf, nl + vl, hash_bytes(buf, nl + vl));
	return p->key ? p : NULL;
}

size_t
index_select(const struct tsdb_index *ix, const char *metric, const struct tsdb_matcher *m,
	     size_t nm, uint32_t **ids)
{
	const struct posting *best = NULL, *p;
	bool any = false;
	uint32_t *out = NULL;
	size_t n = 0, cap = 0;

	*ids = NULL;
	if (metric) {
		if ((best = post_get(ix, "__name__", metric)) == NULL)
			return 0;
		any = true;
	}
	for (size_t i = 0; i < nm; i++) {
		if (m[i].neg || m[i].value == NULL || m[i].value[0] == '\0')
			continue;
		if ((p = post_get(ix, m[i].name, m[i].value)) == NULL)
			return 0;
		if (!any || p->n < best->n)
			best = p;
		any = true;
	}
	if (any) {
		for (uint32_t i = 0; i < best->n; i++) {
			const struct slot *s = &ix->slots[best->ids[i]];
			if (s->key == NULL || !index_key_matches(s->key, s->len, metric, m, nm))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				out = xrealloc(out, cap * sizeof(*out));
			}
			out[n++] = best->ids[i];
		}
	} else {
		for (uint32_t i = 0; i < ix->nslots; i++) {
			const struct slot *s = &ix->slots[i];
			if (s->key == NULL || !index_key_matches(s->key, s->len, metric, m, nm))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				out = xrealloc(out, cap * sizeof(*out));
			}
			out[n++] = i;
		}
	}
	*ids = out;
	return n;
}

size_t
index_names(const struct tsdb_index *ix, char ***out)
{
	static const char pre[] = "__name__";
	char **r = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < ix->postcap; i++) {
		const struct posting *p = &ix->post[i];
		if (p->key == NULL || p->n == 0 || memcmp(p->key, pre, sizeof(pre)) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			r = xrealloc(r, cap * sizeof(*r));
		}
		r[n++] = xstrdup(p->key + sizeof(pre));
	}
	*out = r;
	return n;
}

size_t
index_posting_from(const struct tsdb_index *ix, const char *name, const char *value,
		   uint32_t from, uint32_t *ids, size_t max)
{
	const struct posting *p = post_get(ix, name, value);
	uint32_t lo = 0, hi;
	size_t n = 0;

	if (p == NULL)
		return 0;
	hi = p->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (p->ids[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < p->n && n < max; lo++)
		if (ix->slots[p->ids[lo]].key != NULL)
			ids[n++] = p->ids[lo];
	return n;
}
