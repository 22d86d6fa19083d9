/* yamljson.c - YAML text to a jansson tree through libyaml's event parser,
 * plus a path -> line index. The index is a tree of entries (parent, key or
 * position) in one array with a hash on (parent, component), so its size is
 * linear in the node count however long the paths get. See yamljson.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util.h"
#include "xalloc.h"
#include "yamljson.h"

#define LM_NONE UINT32_MAX

struct lm_entry {
	uint32_t parent;   /* index of the containing node, LM_NONE for the root */
	uint32_t line;     /* 1-based line the value starts on */
	uint32_t key_line; /* 1-based line of the member's key; = line otherwise */
	uint32_t key_off;  /* member name at keys + key_off, LM_NONE for an item */
	uint32_t key_len;  /* bytes */
	uint32_t next;     /* hash chain */
	uint64_t index;    /* position of an item in its sequence */
};

struct linemap {
	struct lm_entry *e;
	size_t n, cap;      /* entries used, allocated */
	char *keys;         /* member names back to back, not NUL-terminated */
	size_t keys_len, keys_cap;
	uint32_t *bucket;   /* heads of hash chains, LM_NONE if empty */
	size_t nbucket;     /* a power of two, 0 until lm_index() */
};

struct yj {
	yaml_parser_t parser;
	const char *text;
	size_t len;
	struct linemap *lm;
	struct herr *err;
};

/* The name of member e; never NULL (keys stays NULL while all are ""). */
static const char *
lm_key(const struct linemap *m, const struct lm_entry *e)
{
	return m->keys != NULL ? m->keys + e->key_off : "";
}

static uint64_t
lm_hash(uint32_t parent, const char *key, size_t klen, uint64_t index)
{
	unsigned char b[13];

	memcpy(b, &parent, 4);
	b[4] = key != NULL;
	memcpy(b + 5, &index, 8);
	return fnv1a(fnv1a(FNV1A_INIT, b, sizeof(b)), key, key != NULL ? klen : 0);
}

/* Appends an entry for a member (key != NULL) or an item; returns its index. */
static uint32_t
lm_add(struct linemap *m, uint32_t parent, const char *key, size_t klen, uint64_t index,
       int line)
{
	struct lm_entry *e;

	/* 1 MiB of YAML cannot hold anywhere near 2^32 nodes or key bytes. */
	BUG_ON(m->n >= LM_NONE - 1 || m->keys_len + klen >= LM_NONE);
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	e = &m->e[m->n];
	e->parent = parent;
	e->line = e->key_line = (uint32_t)line;
	e->key_off = LM_NONE;
	e->key_len = 0;
	e->index = key ? 0 : index;
	e->next = LM_NONE;
	if (key != NULL) {
		e->key_off = (uint32_t)m->keys_len;
		e->key_len = (uint32_t)klen;
	}
	if (key != NULL && klen > 0) {
		if (m->keys_len + klen > m->keys_cap) {
			while (m->keys_len + klen > m->keys_cap)
				m->keys_cap = m->keys_cap ? 2 * m->keys_cap : 1024;
			m->keys = xrealloc(m->keys, m->keys_cap);
		}
		memcpy(m->keys + m->keys_len, key, klen);
		m->keys_len += klen;
	}
	return (uint32_t)m->n++;
}

/* Builds the hash once every entry is in. */
static void
lm_index(struct linemap *m)
{
	m->nbucket = 16;
	while (m->nbucket < 2 * m->n)
		m->nbucket *= 2;
	m->bucket = xmalloc(m->nbucket * sizeof(*m->bucket));
	memset(m->bucket, 0xff, m->nbucket * sizeof(*m->bucket));
	for (size_t i = 0; i < m->n; i++) {
		struct lm_entry *e = &m->e[i];
		const char *key = e->key_off == LM_NONE ? NULL : lm_key(m, e);
		size_t b = lm_hash(e->parent, key, e->key_len, e->index) & (m->nbucket - 1);

		e->next = m->bucket[b];
		m->bucket[b] = (uint32_t)i;
	}
}

static uint32_t
lm_child(const struct linemap *m, uint32_t parent, const char *key, size_t klen, uint64_t index)
{
	size_t b = lm_hash(parent, key, klen, key ? 0 : index) & (m->nbucket - 1);

	for (uint32_t i = m->bucket[b]; i != LM_NONE; i = m->e[i].next) {
		const struct lm_entry *e = &m->e[i];

		if (e->parent != parent)
			continue;
		if (key == NULL && e->key_off == LM_NONE && e->index == index)
			return i;
		if (key != NULL && e->key_off != LM_NONE && e->key_len == klen &&
		    (klen == 0 || memcmp(lm_key(m, e), key, klen) == 0))
			return i;
	}
	return LM_NONE;
}

/* Writes the JSON path of entry i into out (truncated to n bytes). */
static void
lm_path(const struct linemap *m, uint32_t i, char *out, size_t n)
{
	uint32_t chain[YAMLJSON_MAX_DEPTH + 2];
	size_t depth = 0, len = 0;

	out[0] = '\0';
	for (; i != LM_NONE && depth < sizeof(chain) / sizeof(chain[0]); i = m->e[i].parent)
		chain[depth++] = i;
	/* chain[depth - 1] is the root, which has no component. */
	for (size_t k = depth ? depth - 1 : 0; k-- > 0 && len + 1 < n;) {
		const struct lm_entry *e = &m->e[chain[k]];
		int w;

		if (e->key_off == LM_NONE)
			w = snprintf(out + len, n - len, "[%llu]", (unsigned long long)e->index);
		else
			w = snprintf(out + len, n - len, "%s%.*s", len ? "." : "",
				     (int)e->key_len, lm_key(m, e));
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

static uint32_t
lm_find(const struct linemap *m, const char *path, bool *found)
{
	const char *p = path;
	uint32_t cur = 0;

	*found = false;
	if (m == NULL || m->n == 0 || path == NULL)
		return LM_NONE;
	while (*p != '\0') {
		uint32_t child;

		if (*p == '[') {
			uint64_t idx = 0;
			const char *q = p + 1;

			while (*q >= '0' && *q <= '9' && q - p <= 19)
				idx = idx * 10 + (uint64_t)(*q++ - '0');
			if (q == p + 1 || *q != ']')
				break;
			child = lm_child(m, cur, NULL, 0, idx);
			p = q + 1;
		} else {
			const char *q;

			if (*p == '.')
				p++;
			q = p + strcspn(p, ".[");
			child = lm_child(m, cur, p, (size_t)(q - p), 0);
			p = q;
		}
		if (child == LM_NONE)
			break;
		cur = child;
		*found = true;
	}
	if (path[0] == '\0')
		*found = true;
	return *found ? cur : LM_NONE;
}

int
linemap_line(const struct linemap *m, const char *path)
{
	bool found;
	uint32_t i = lm_find(m, path, &found);

	return found ? (int)m->e[i].key_line : 0;
}

int
linemap_value_line(const struct linemap *m, const char *path)
{
	bool found;
	uint32_t i = lm_find(m, path, &found);

	return found ? (int)m->e[i].line : 0;
}

void
linemap_free(struct linemap *m)
{
	if (m == NULL)
		return;
	free(m->e);
	free(m->keys);
	free(m->bucket);
	free(m);
}

/* Error about the node at entry `at` (LM_NONE: no path). */
static int
yj_fail(struct yj *y, int code, uint32_t at, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int
yj_fail(struct yj *y, int code, uint32_t at, int line, const char *fmt, ...)
{
	char msg[sizeof(y->err->msg)];
	char field[sizeof(y->err->field)] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != LM_NONE)
		lm_path(y->lm, at, field, sizeof(field));
	if (line > 0)
		return herr_field(y->err, code, field, "line %d: %s", line, msg);
	return herr_field(y->err, code, field, "%s", msg);
}

static int
libyaml_fail(struct yj *y)
{
	yaml_parser_t *p = &y->parser;
	const char *problem = p->problem ? p->problem : "cannot parse";
	int line;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		bug_at(__FILE__, __LINE__, "libyaml out of memory");
	case YAML_READER_ERROR:
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < y->len; i++)
			line += y->text[i] == '\n';
		if (p->problem_value != -1)
			return yj_fail(y, HERR_INVALID, LM_NONE, line, "%s (0x%x)", problem,
				       (unsigned)p->problem_value);
		return yj_fail(y, HERR_INVALID, LM_NONE, line, "%s", problem);
	default:
		line = (int)p->problem_mark.line + 1;
		if (p->context != NULL && p->context_mark.line != p->problem_mark.line)
			return yj_fail(y, HERR_INVALID, LM_NONE, line, "%s (%s at line %d)",
				       problem, p->context, (int)p->context_mark.line + 1);
		if (p->context != NULL)
			return yj_fail(y, HERR_INVALID, LM_NONE, line, "%s %s", problem,
				       p->context);
		return yj_fail(y, HERR_INVALID, LM_NONE, line, "%s", problem);
	}
}

static int
next_event(struct yj *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev))
		return libyaml_fail(y);
	return 0;
}

static int
ev_line(const yaml_event_t *ev)
{
	return (int)ev->start_mark.line + 1;
}

static bool
text_is(const char *s, size_t n, const char *a, const char *b, const char *c)
{
	return (strlen(a) == n && memcmp(s, a, n) == 0) ||
	       (strlen(b) == n && memcmp(s, b, n) == 0) ||
	       (strlen(c) == n && memcmp(s, c, n) == 0);
}

static size_t
span_digits(const char *s, size_t i, size_t n)
{
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* [-+]?(0|[1-9][0-9]*) */
static bool
looks_int(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

	if (i == n || span_digits(s, i, n) != n)
		return false;
	return s[i] != '0' || n - i == 1;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? with a '.' or exponent */
static bool
looks_real(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0, j;
	bool dot = false, ex = false;

	j = span_digits(s, i, n);
	if (j < n && s[j] == '.') {
		size_t k = span_digits(s, j + 1, n);

		if (j == i && k == j + 1)
			return false;       /* "." alone */
		dot = true;
		j = k;
	} else if (j == i) {
		return false;
	}
	if (j < n && (s[j] == 'e' || s[j] == 'E')) {
		size_t k = j + 1;

		if (k < n && (s[k] == '-' || s[k] == '+'))
			k++;
		j = span_digits(s, k, n);
		if (j == k)
			return false;
		ex = true;
	}
	return j == n && (dot || ex);
}

/* Types a plain scalar; s is NUL-terminated at n (libyaml guarantees it). */
static json_t *
plain_scalar(const char *s, size_t n)
{
	if (n == 0 || text_is(s, n, "~", "null", "Null") || text_is(s, n, "NULL", "", ""))
		return json_null();
	if (text_is(s, n, "true", "True", "TRUE"))
		return json_true();
	if (text_is(s, n, "false", "False", "FALSE"))
		return json_false();
	if (looks_int(s, n)) {
		long long v;

		errno = 0;
		v = strtoll(s, NULL, 10);
		if (errno == 0)
			return json_integer(v);
	} else if (looks_real(s, n)) {
		double v;

		errno = 0;
		v = strtod(s, NULL);
		if (errno == 0 && isfinite(v))
			return json_real(v);
	}
	return json_stringn(s, n);
}

static int
check_props(struct yj *y, uint32_t at, const yaml_event_t *ev, const yaml_char_t *anchor,
	    const yaml_char_t *tag)
{
	if (anchor != NULL)
		return yj_fail(y, HERR_INVALID, at, ev_line(ev),
			       "anchors are not supported ('&%.64s')", (const char *)anchor);
	if (tag != NULL)
		return yj_fail(y, HERR_INVALID, at, ev_line(ev),
			       "tags are not supported ('%.64s')", (const char *)tag);
	return 0;
}

/* Path length of a child of a node whose path is plen bytes long. */
static size_t
child_path_len(size_t plen, size_t klen, bool is_key, uint64_t index)
{
	size_t w = 3;   /* "[" "]" and at least one digit */

	if (is_key)
		return plen + (plen ? 1 : 0) + klen;
	while (index >= 10) {
		index /= 10;
		w++;
	}
	return plen + w;
}

static int node(struct yj *y, yaml_event_t *ev, uint32_t self, int depth, size_t plen,
		json_t **out);

static int
sequence(struct yj *y, uint32_t self, int depth, size_t plen, json_t *arr)
{
	yaml_event_t ev;
	uint64_t i;
	int rc;

	for (i = 0;; i++) {
		json_t *v;
		uint32_t child;
		size_t clen;

		if ((rc = next_event(y, &ev)) < 0)
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		child = lm_add(y->lm, self, NULL, 0, i, ev_line(&ev));
		clen = child_path_len(plen, 0, false, i);
		if (clen > YAMLJSON_MAX_PATH) {
			rc = yj_fail(y, HERR_TOOBIG, self, ev_line(&ev),
				     "path longer than %d bytes", YAMLJSON_MAX_PATH);
			yaml_event_delete(&ev);
			return rc;
		}
		if ((rc = node(y, &ev, child, depth, clen, &v)) < 0)
			return rc;
		json_array_append_new(arr, v);
	}
}

/* Takes the key event *ev (deleting it): records the member, checks the key
 * and returns it NUL-terminated in *key (the caller frees it). */
static int
member_key(struct yj *y, yaml_event_t *ev, uint32_t self, size_t plen, json_t *obj,
	   uint32_t *child, size_t *clen, char **key)
{
	int line = ev_line(ev), rc = 0;
	const char *s;
	size_t n;

	*key = NULL;
	if (ev->type == YAML_ALIAS_EVENT)
		rc = yj_fail(y, HERR_INVALID, self, line, "aliases are not supported");
	else if (ev->type != YAML_SCALAR_EVENT)
		rc = yj_fail(y, HERR_INVALID, self, line, "mapping keys must be scalars");
	else
		rc = check_props(y, self, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
	if (rc < 0) {
		yaml_event_delete(ev);
		return rc;
	}
	s = (const char *)ev->data.scalar.value;
	n = ev->data.scalar.length;
	*child = lm_add(y->lm, self, s, n, 0, line);
	*clen = child_path_len(plen, n, true, 0);
	if (*clen > YAMLJSON_MAX_PATH)
		rc = yj_fail(y, HERR_TOOBIG, self, line, "path longer than %d bytes",
			     YAMLJSON_MAX_PATH);
	else if (memchr(s, '\0', n) != NULL)
		rc = yj_fail(y, HERR_INVALID, self, line, "NUL character in key");
	else if (json_object_getn(obj, s, n) != NULL)
		rc = yj_fail(y, HERR_INVALID, *child, line, "duplicate key '%.64s'", s);
	else
		*key = xstrndup(s, n);
	yaml_event_delete(ev);
	return rc;
}

static int
mapping(struct yj *y, uint32_t self, int depth, size_t plen, json_t *obj)
{
	yaml_event_t ev;
	char *key = NULL;
	int rc;

	for (;;) {
		json_t *v;
		uint32_t child;
		size_t clen;

		if ((rc = next_event(y, &ev)) < 0)
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if ((rc = member_key(y, &ev, self, plen, obj, &child, &clen, &key)) < 0)
			return rc;
		if ((rc = next_event(y, &ev)) < 0)
			goto out_free_key;
		if ((rc = node(y, &ev, child, depth, clen, &v)) < 0)
			goto out_free_key;
		if (json_object_set_new(obj, key, v) < 0) {
			rc = yj_fail(y, HERR_INVALID, child, (int)y->lm->e[child].key_line,
				     "key is not valid UTF-8");
			goto out_free_key;
		}
		xfree(&key);
	}

out_free_key:
	free(key);
	return rc;
}

/* Converts the node starting with *ev (which this deletes) into *out, a new
 * reference. depth is the number of collections around it. */
static int
node(struct yj *y, yaml_event_t *ev, uint32_t self, int depth, size_t plen, json_t **out)
{
	int line = ev_line(ev), rc = 0;
	json_t *v = NULL;

	*out = NULL;
	y->lm->e[self].line = (uint32_t)line;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		rc = yj_fail(y, HERR_INVALID, self, line, "aliases are not supported ('*%.64s')",
			     (const char *)ev->data.alias.anchor);
		break;
	case YAML_SCALAR_EVENT: {
		const char *s = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;

		rc = check_props(y, self, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
		if (rc < 0)
			break;
		if (memchr(s, '\0', n) != NULL) {
			rc = yj_fail(y, HERR_INVALID, self, line, "NUL character in string");
			break;
		}
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			v = plain_scalar(s, n);
		else
			v = json_stringn(s, n);
		if (v == NULL)
			rc = yj_fail(y, HERR_INVALID, self, line, "string is not valid UTF-8");
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool seq = ev->type == YAML_SEQUENCE_START_EVENT;

		if (seq)
			rc = check_props(y, self, ev, ev->data.sequence_start.anchor,
					 ev->data.sequence_start.tag);
		else
			rc = check_props(y, self, ev, ev->data.mapping_start.anchor,
					 ev->data.mapping_start.tag);
		if (rc < 0)
			break;
		if (depth + 1 > YAMLJSON_MAX_DEPTH) {
			rc = yj_fail(y, HERR_TOOBIG, self, line, "nesting deeper than %d",
				     YAMLJSON_MAX_DEPTH);
			break;
		}
		yaml_event_delete(ev);
		v = seq ? json_array() : json_object();
		if (v == NULL)
			bug_at(__FILE__, __LINE__, "jansson out of memory");
		if (seq)
			rc = sequence(y, self, depth + 1, plen, v);
		else
			rc = mapping(y, self, depth + 1, plen, v);
		if (rc < 0) {
			json_decref(v);
			return rc;
		}
		*out = v;
		return 0;
	}
	default:
		rc = yj_fail(y, HERR_INVALID, self, line, "unexpected YAML event %d", ev->type);
		break;
	}
	yaml_event_delete(ev);
	if (rc < 0) {
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* The stream around the one document. */
static int
document(struct yj *y, json_t **out)
{
	yaml_event_t ev;
	int rc;

	*out = NULL;
	if ((rc = next_event(y, &ev)) < 0)
		return rc;
	yaml_event_delete(&ev);     /* STREAM-START */
	if ((rc = next_event(y, &ev)) < 0)
		return rc;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		*out = json_null();
		return 0;
	}
	yaml_event_delete(&ev);     /* DOCUMENT-START */
	if ((rc = next_event(y, &ev)) < 0)
		return rc;
	lm_add(y->lm, LM_NONE, NULL, 0, 0, ev_line(&ev));
	if ((rc = node(y, &ev, 0, 0, 0, out)) < 0)
		return rc;
	if ((rc = next_event(y, &ev)) < 0)
		goto out_put;
	yaml_event_delete(&ev);     /* DOCUMENT-END */
	if ((rc = next_event(y, &ev)) < 0)
		goto out_put;
	if (ev.type != YAML_STREAM_END_EVENT) {
		rc = yj_fail(y, HERR_INVALID, LM_NONE, ev_line(&ev),
			     "only one document is allowed");
		yaml_event_delete(&ev);
		goto out_put;
	}
	yaml_event_delete(&ev);
	return 0;

out_put:
	json_decref(*out);
	*out = NULL;
	return rc;
}

int
yaml_to_json(const char *text, size_t len, json_t **out, struct linemap **lines,
	     struct herr *err)
{
	struct yj y;
	int rc;

	*out = NULL;
	if (lines != NULL)
		*lines = NULL;
	if (len > YAMLJSON_MAX_BYTES)
		return herr_set(err, HERR_TOOBIG, "document larger than %d bytes",
				YAMLJSON_MAX_BYTES);
	memset(&y, 0, sizeof(y));
	y.text = text;
	y.len = len;
	y.err = err;
	y.lm = xcalloc(1, sizeof(*y.lm));
	if (!yaml_parser_initialize(&y.parser))
		bug_at(__FILE__, __LINE__, "libyaml out of memory");
	yaml_parser_set_encoding(&y.parser, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	rc = document(&y, out);
	yaml_parser_delete(&y.parser);
	if (rc < 0 || lines == NULL) {
		linemap_free(y.lm);
		return rc;
	}
	lm_index(y.lm);
	*lines = y.lm;
	return 0;
}
