/* push-json.c - the JSON of the push: the agent config from the server
 * (parsed with jansson: control plane, rare) and each batch (written by
 * hand into a fixed buffer: once per cycle, so no allocation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/push.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

static int
push_config_ms(const json_t *v, const char *field, int64_t min_ms, int64_t max_ms, int64_t *ms,
	       struct herr *err)
{
	double s;

	if (!json_is_number(v))
		return herr_field(err, HERR_INVALID, field, "'%s' must be a number of seconds", field);
	s = json_number_value(v);
	if (!(s * 1000 >= (double)min_ms && s * 1000 <= (double)max_ms))
		return herr_field(err, HERR_INVALID, field, "'%s' must be between %g and %g",
				  field, (double)min_ms / 1000, (double)max_ms / 1000);
	*ms = (int64_t)llround(s * 1000);
	return 0;
}

/* Label names the server sets itself, or that the agent sets on monitor
 * series, or that it refuses. */
static bool
push_label_reserved(const char *k)
{
	return strcmp(k, "host") == 0 || strcmp(k, "group") == 0 || strcmp(k, "cluster") == 0 ||
	       strcmp(k, "monitor") == 0 || strcmp(k, "scope") == 0 || strncmp(k, "__", 2) == 0;
}

static bool
push_label_name_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n >= MON_NAME_MAX || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

/* A monitor's "labels": {"k": "v"}, at most MON_MAX_LABELS; a label the
 * server would refuse (and with it the whole push) is skipped, warned. */
static void
push_config_labels(const json_t *labels, const char *monitor, struct mon_labels *out)
{
	const char *k;
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (labels == NULL || json_is_null(labels))
		return;
	if (!json_is_object(labels)) {
		log_warn("monitor '%s': labels are not an object (ignored)", monitor);
		return;
	}
	json_object_foreach((json_t *)labels, k, v) {
		const char *s = json_string_value(v);

		if (out->n >= MON_MAX_LABELS) {
			log_warn("monitor '%s': more than %d labels (the rest ignored)", monitor,
				 MON_MAX_LABELS);
			return;
		}
		if (!push_label_name_ok(k) || push_label_reserved(k) || s == NULL ||
		    strlen(s) >= MON_LABEL_MAX) {
			log_warn("monitor '%s': label '%.64s' ignored: want a name [A-Za-z_][A-Za-z0-9_]* "
				 "other than host, group, cluster, monitor, scope, and a string value "
				 "of at most %d bytes", monitor, k, MON_LABEL_MAX - 1);
			continue;
		}
		snprintf(out->key[out->n], sizeof(out->key[0]), "%s", k);
		snprintf(out->val[out->n], sizeof(out->val[0]), "%s", s);
		out->n++;
	}
}

static int
push_config_monitor(const json_t *m, size_t i, struct mon_spec *spec, struct herr *err)
{
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *cmd = json_string_value(json_object_get(m, "command"));
	const json_t *v;
	char field[64];

	memset(spec, 0, sizeof(*spec));
	snprintf(field, sizeof(field), "monitors[%zu].name", i);
	if (name == NULL || !script_name_is_valid(name) || strlen(name) >= sizeof(spec->name))
		return herr_field(err, HERR_INVALID, field, "invalid monitor name");
	snprintf(field, sizeof(field), "monitors[%zu].command", i);
	if (cmd == NULL || cmd[0] == '\0')
		return herr_field(err, HERR_INVALID, field, "monitor '%s' has no command", name);
	snprintf(spec->name, sizeof(spec->name), "%s", name);
	spec->interval_ms = 5000;
	spec->timeout_ms = 3000;
	snprintf(field, sizeof(field), "monitors[%zu].interval_s", i);
	v = json_object_get(m, "interval_s");
	if (v && push_config_ms(v, field, 100, 86400000, &spec->interval_ms, err) < 0)
		return err->code;
	snprintf(field, sizeof(field), "monitors[%zu].timeout_s", i);
	v = json_object_get(m, "timeout_s");
	if (v && push_config_ms(v, field, 100, 3600000, &spec->timeout_ms, err) < 0)
		return err->code;
	push_config_labels(json_object_get(m, "labels"), name, &spec->labels);
	spec->command = xstrdup(cmd);
	return 0;
}

/* One of the config's thresholds: {"metric","op","value"}, op one of
 * > >= < <=, value finite. */
static int
push_config_threshold(const json_t *t, size_t i, struct push_threshold *out, struct herr *err)
{
	const char *metric = json_string_value(json_object_get(t, "metric"));
	const char *op = json_string_value(json_object_get(t, "op"));
	const json_t *v = json_object_get(t, "value");
	static const enum expr_op ops[] = { OP_GT, OP_GE, OP_LT, OP_LE };
	char field[64];
	size_t k;

	snprintf(field, sizeof(field), "thresholds[%zu].metric", i);
	if (metric == NULL || metric[0] == '\0' || strlen(metric) >= sizeof(out->metric))
		return herr_field(err, HERR_INVALID, field, "must be a metric name");
	snprintf(field, sizeof(field), "thresholds[%zu].op", i);
	for (k = 0; op && k < sizeof(ops) / sizeof(ops[0]); k++)
		if (strcmp(op, expr_op_name(ops[k])) == 0)
			break;
	if (op == NULL || k == sizeof(ops) / sizeof(ops[0]))
		return herr_field(err, HERR_INVALID, field, "must be >, >=, < or <=");
	snprintf(field, sizeof(field), "thresholds[%zu].value", i);
	if (!json_is_number(v) || !isfinite(json_number_value(v)))
		return herr_field(err, HERR_INVALID, field, "must be a finite number");
	snprintf(out->metric, sizeof(out->metric), "%s", metric);
	out->op = ops[k];
	out->value = json_number_value(v);
	return 0;
}

int
push_config_parse(const json_t *j, struct push_config *c, struct herr *err)
{
	const json_t *v, *mons, *m, *thrs;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->interval_ms = PUSH_INTERVAL_MS;
	if (!json_is_object(j))
		return herr_set(err, HERR_INVALID, "config is not a JSON object");
	v = json_object_get(j, "version");
	if (!json_is_integer(v))
		return herr_field(err, HERR_INVALID, "version", "'version' must be an integer");
	c->version = json_integer_value(v);
	v = json_object_get(j, "push_interval_s");
	if (v && push_config_ms(v, "push_interval_s", 1000, 3600000, &c->interval_ms, err) < 0)
		return err->code;
	mons = json_object_get(j, "monitors");
	if (mons && !json_is_array(mons))
		return herr_field(err, HERR_INVALID, "monitors", "'monitors' must be an array");
	json_array_foreach(mons, i, m) {
		struct herr e = HERR_INIT;

		if (c->nmon >= MON_MAX) {
			log_warn("config %lld lists %zu monitors: only the first %d run",
				 (long long)c->version, json_array_size(mons), MON_MAX);
			break;
		}
		if (push_config_monitor(m, i, &c->mon[c->nmon], &e) < 0) {
			log_warn("config %lld: %s: %s (monitor skipped)", (long long)c->version,
				 e.field, e.msg);
			continue;
		}
		c->nmon++;
	}
	thrs = json_object_get(j, "thresholds");
	if (thrs && !json_is_array(thrs))
		return herr_field(err, HERR_INVALID, "thresholds", "'thresholds' must be an array");
	json_array_foreach(thrs, i, m) {
		struct herr e = HERR_INIT;

		if (c->nthr >= PUSH_MAX_THRESHOLDS) {
			log_warn("config %lld lists %zu thresholds: only the first %d are watched",
				 (long long)c->version, json_array_size(thrs), PUSH_MAX_THRESHOLDS);
			break;
		}
		if (push_config_threshold(m, i, &c->thr[c->nthr], &e) < 0) {
			log_warn("config %lld: %s: %s (threshold skipped)", (long long)c->version,
				 e.field, e.msg);
			continue;
		}
		c->nthr++;
	}
	/* the formats the server takes pushes in: anything but an array of
	 * them is an older server's (or a broken) offer, so JSON only */
	v = json_object_get(j, "push_formats");
	json_array_foreach(v, i, m)
		if (json_is_string(m) && strcmp(json_string_value(m), "protobuf") == 0)
			c->protobuf = true;
	return 0;
}

void
push_config_release(struct push_config *c)
{
	mon_specs_release(c->mon, c->nmon);
	c->nmon = 0;
}

/* The encoder */

struct enc {
	char *p;
	size_t len, cap;            /* cap excludes the final NUL */
	bool full;
};

static void
enc_raw(struct enc *e, const char *s, size_t n)
{
	if (e->full || e->len + n > e->cap) {
		e->full = true;
		return;
	}
	memcpy(e->p + e->len, s, n);
	e->len += n;
}

#define enc_lit(e, s) enc_raw(e, s, sizeof(s) - 1)

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
enc_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string; invalid UTF-8 becomes '?'. */
static void
enc_str(struct enc *e, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);

	enc_lit(e, "\"");
	for (size_t i = 0; i < n && !e->full;) {
		size_t run = i, k;

		/* copy plain runs at once */
		while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			enc_raw(e, s + i, run - i);
			i = run;
			continue;
		}
		if (u[i] == '"' || u[i] == '\\') {
			char esc[2] = { '\\', (char)u[i] };

			enc_raw(e, esc, 2);
			i++;
		} else if (u[i] < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 15] };

			enc_raw(e, esc, 6);
			i++;
		} else if ((k = enc_utf8_len(u + i, n - i)) > 0) {
			enc_raw(e, s + i, k);
			i += k;
		} else {
			enc_lit(e, "?");
			i++;
		}
	}
	enc_lit(e, "\"");
}

/* The digits of u, right-aligned, ending at end; returns where they begin. */
static char *
num_digits(char *end, uint64_t u)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return end;
}

/* k / 100 (0 < k < 1e15, not a multiple of 100): the integer part, '.' and
 * one or two decimals without a trailing zero, as "%.15g" writes a double
 * that is the nearest to k / 100. */
static size_t
num_hundredths(char *out, bool neg, uint64_t k)
{
	char tmp[32], *end = tmp + sizeof(tmp), *q;
	unsigned frac = (unsigned)(k % 100);

	q = end;
	if (frac % 10) {
		*--q = (char)('0' + frac % 10);
		*--q = (char)('0' + frac / 10);
	} else {
		*--q = (char)('0' + frac / 10);
	}
	*--q = '.';
	q = num_digits(q, k / 100);
	if (neg)
		*--q = '-';
	memcpy(out, q, (size_t)(end - q));
	return (size_t)(end - q);
}

size_t
push_num_format(double v, char *out)
{
	double a = fabs(v);
	int n;

	if (v == 0) {
		out[0] = '0';
		return 1;
	}
	if (v == floor(v) && a < 1e15) {
		char tmp[24], *end = tmp + sizeof(tmp), *q = num_digits(end, (uint64_t)a);

		if (v < 0)
			*--q = '-';
		memcpy(out, q, (size_t)(end - q));
		return (size_t)(end - q);
	}
	/* two decimals: a is the double nearest to k/100, which has <= 15
	 * significant digits below 1e13, so "%.15g" writes k/100 exactly (no
	 * exponent either: 0.01 <= a < 1e13) and it reads back as a */
	if (a < 1e13) {
		uint64_t k = (uint64_t)llround(a * 100);

		if ((double)k / 100.0 == a)
			return num_hundredths(out, v < 0, k);
	}
	n = snprintf(out, 32, "%.15g", v);
	if (strtod(out, NULL) != v)
		n = snprintf(out, 32, "%.17g", v);
	return (size_t)n;
}

static void
enc_num(struct enc *e, double v)
{
	char tmp[32];

	enc_raw(e, tmp, push_num_format(v, tmp));
}

static void
enc_i64(struct enc *e, int64_t v)
{
	char tmp[24], *end = tmp + sizeof(tmp), *q;

	q = num_digits(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
	if (v < 0)
		*--q = '-';
	enc_raw(e, q, (size_t)(end - q));
}

size_t
push_encode_batch(const struct col_batch *b, const struct mon_snapshot *snap, char *out,
		  size_t outsz, size_t *cut)
{
	struct enc e = { .p = out, .cap = outsz > 3 ? outsz - 3 : 0 }; /* room for "]}" + NUL */
	bool first = true;

	*cut = 0;
	enc_lit(&e, "{\"ts_ms\":");
	enc_i64(&e, b->ts_ms);
	/* monitor states before the series, so that a cut only ever drops series */
	enc_lit(&e, ",\"monitors\":[");
	for (size_t i = 0; snap && i < snap->n; i++) {
		const struct mon_result *r = &snap->m[i].r;

		if (r->state == MON_PENDING)
			continue;
		if (!first)
			enc_lit(&e, ",");
		first = false;
		enc_lit(&e, "{\"name\":");
		enc_str(&e, snap->m[i].name);
		enc_lit(&e, ",\"state\":");
		enc_str(&e, mon_state_name(r->state));
		if (r->state != MON_OK) {
			enc_lit(&e, ",\"error\":");
			enc_str(&e, r->error);
		}
		enc_lit(&e, "}");
	}
	enc_lit(&e, "],\"series\":[");
	if (e.full)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct col_series *s = &b->series[i];
		size_t mark = e.len;

		if (i > 0)
			enc_lit(&e, ",");
		enc_lit(&e, "{\"name\":");
		enc_str(&e, s->name);
		if (s->label_key[0]) {
			enc_lit(&e, ",\"labels\":{");
			for (int k = 0; k < COL_MAX_LABELS && s->label_key[k]; k++) {
				if (k > 0)
					enc_lit(&e, ",");
				enc_str(&e, s->label_key[k]);
				enc_lit(&e, ":");
				enc_str(&e, s->label_val[k] ? s->label_val[k] : "");
			}
			enc_lit(&e, "}");
		}
		enc_lit(&e, ",\"value\":");
		enc_num(&e, s->value);
		enc_lit(&e, "}");
		if (e.full) {
			e.len = mark;
			e.full = false;
			*cut = b->n - i;
			break;
		}
	}
	/* the reserve holds these */
	memcpy(out + e.len, "]}", 3);
	return e.len + 2;
}


/* Matches lit at *p, then an integer of at most 18 digits (no overflow) into
 * *out (neg: a '-' allowed). Advances *p on success. */
static bool
answer_field(const char **p, const char *end, const char *lit, bool neg, json_int_t *out)
{
	const char *s = *p;
	size_t n = strlen(lit);
	json_int_t v = 0;
	bool minus = false;
	int digits = 0;

	if ((size_t)(end - s) < n || memcmp(s, lit, n) != 0)
		return false;
	s += n;
	if (neg && s < end && *s == '-') {
		minus = true;
		s++;
	}
	/* JSON: no leading zeros */
	if (s < end && *s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
		return false;
	for (; s < end && *s >= '0' && *s <= '9' && digits < 19; s++, digits++)
		v = v * 10 + (*s - '0');
	if (digits == 0 || digits > 18)
		return false;
	*out = minus ? -v : v;
	*p = s;
	return true;
}

bool
push_answer_error_field(const char *text, size_t len, char *out, size_t outsz)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	const char *f = NULL;
	bool ok;

	ok = j && json_unpack(j, "{s:{s:s}}", "error", "field", &f) == 0 &&
	     (size_t)snprintf(out, outsz, "%s", f) < outsz;
	json_decref(j);
	return ok;
}

int
push_answer_config_version(const char *text, size_t len, json_int_t *v)
{
	const char *p = text, *end = text + len;
	json_int_t version, n;
	json_t *j, *jv;
	int found = 0;

	if (answer_field(&p, end, "{\"config_version\":", true, &version) &&
	    answer_field(&p, end, ",\"accepted\":", false, &n) &&
	    answer_field(&p, end, ",\"rejected\":", false, &n) && p < end && *p++ == '}') {
		while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
			p++;
		if (p == end) {
			*v = version;
			return 1;
		}
	}
	j = json_loadb(text, len, 0, NULL);
	jv = json_object_get(j, "config_version");
	if (json_is_integer(jv)) {
		*v = json_integer_value(jv);
		found = 1;
	}
	json_decref(j);
	return found;
}
