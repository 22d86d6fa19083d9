/* index.h - the metric store's series index: a series is a metric name plus
 * labels, kept as one canonical key (name, then label pairs sorted by name,
 * NUL-separated), looked up by hash; postings (label pair -> series ids)
 * answer "every series of group G" without a scan. Plain functions, no
 * locking: tsdb.c holds its lock around them. */
#ifndef HERD_TSDB_INDEX_H
#define HERD_TSDB_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herr.h"
#include "tsdb.h"

#define INDEX_NONE UINT32_MAX
#define TSDB_KEY_MAX 8192   /* longest canonical key, bytes: more than any valid series needs */

struct tsdb_index;

struct tsdb_index *index_new(void);
void index_free(struct tsdb_index *ix);

/* Builds the canonical key of metric + labels into out (cap bytes): the
 * labels are sorted by name; duplicate or empty names, empty metric names
 * and keys past cap are HERR_INVALID. Returns the key's length or the
 * error. Metric and label text is not otherwise validated here. */
int index_key(const char *metric, const struct tsdb_label *l, size_t n, char *out, size_t cap,
	      struct herr *err);
/* Walks a key: calls fn(name, value) for each label; the metric comes
 * first with name "__name__". Stops when fn returns false. */
void index_key_walk(const char *key, size_t len,
		    bool (*fn)(const char *name, const char *value, void *arg), void *arg);
/* Splits a key into metric and labels (pointers into key, up to max
 * labels); returns the number of labels. */
size_t index_key_split(const char *key, size_t len, const char **metric,
		       struct tsdb_label *l, size_t max);

/* The id of the series with this key, or INDEX_NONE. */
uint32_t index_find(const struct tsdb_index *ix, const char *key, size_t len);
/* Adds a series (key copied); returns its new id. The key must not be
 * present. */
uint32_t index_add(struct tsdb_index *ix, const char *key, size_t len);
/* Removes a series; its id is never reused. */
void index_remove(struct tsdb_index *ix, uint32_t id);
/* The key of a live id (NULL for removed or unknown ids). */
const char *index_get(const struct tsdb_index *ix, uint32_t id, size_t *len);
size_t index_count(const struct tsdb_index *ix);   /* live series */
uint32_t index_end(const struct tsdb_index *ix);    /* one past the largest id */

/* The value of label name in key, or "" when absent (O(labels)). */
const char *index_key_label(const char *key, size_t len, const char *name);
/* Whether a key matches metric (NULL = any) and every matcher. */
bool index_key_matches(const char *key, size_t len, const char *metric,
		       const struct tsdb_matcher *m, size_t nm);
/* The ids of live series matching metric (NULL = any) and matchers, in
 * increasing order, in *ids (owned). Returns their count. */
size_t index_select(const struct tsdb_index *ix, const char *metric,
		    const struct tsdb_matcher *m, size_t nm, uint32_t **ids);
/* Copies of the metric names with series (possibly some just removed):
 * *out owned, each name and the array (free()). Returns their count. */
size_t index_names(const struct tsdb_index *ix, char ***out);
/* Up to max live ids >= from of the posting name=value, in increasing
 * order, into ids. Returns how many. */
size_t index_posting_from(const struct tsdb_index *ix, const char *name, const char *value,
			  uint32_t from, uint32_t *ids, size_t max);

#endif
