/* rwout/rwout.c - the pure parts of remote_write out (rwout/rwout.h):
 * parsing a remote, relabelling, records, the retry schedule, the outcome
 * of an attempt and the shard count. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rwout/rwout.h"
#include "util.h"
#include "xalloc.h"

static const char *
str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Headers the remote write spec (and Prometheus) reserve for itself. */
static const char *const reserved_headers[] = {
	"Authorization", "Host", "Content-Encoding", "Content-Length", "Content-Type",
	"User-Agent", "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Www-Authenticate", "Accept-Encoding", "Transfer-Encoding", "Expect",
	"X-Prometheus-Remote-Write-Version", "X-Prometheus-Remote-Read-Version",
	"X-Prometheus-Scrape-Timeout-Seconds", NULL,
};

static bool
header_name_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static bool
text_ok(const char *s, size_t max)
{
	if (strlen(s) > max)
		return false;
	for (; *s; s++)
		if (iscntrl((unsigned char)*s))
			return false;
	return true;
}

static bool
label_name_ok(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_') || strlen(s) >= 128)
		return false;
	for (s++; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static int
absolute_file(const char *s, const char *field, struct herr *err)
{
	if (s && (s[0] != '/' || !text_ok(s, 1024)))
		return herr_field(err, HERR_INVALID, field, "must be an absolute path");
	return 0;
}

static int
duration_of(const json_t *q, const char *key, int64_t dflt, int64_t min_ms, int64_t max_ms,
	    int64_t *ms, struct herr *err)
{
	const json_t *v = json_object_get(q, key);
	char fp[64];

	*ms = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	snprintf(fp, sizeof(fp), "queue.%s", key);
	if (!json_is_string(v) || parse_duration_ms(json_string_value(v), ms) < 0 || *ms < min_ms ||
	    *ms > max_ms)
		return herr_field(err, HERR_INVALID, fp, "must be a duration from %lldms to %llds",
				  (long long)min_ms, (long long)(max_ms / 1000));
	return 0;
}

static int
int_of(const json_t *q, const char *key, long long dflt, long long min, long long max,
       long long *out, struct herr *err)
{
	const json_t *v = json_object_get(q, key);
	char fp[64];

	*out = dflt;
	if (v == NULL || json_is_null(v))
		return 0;
	snprintf(fp, sizeof(fp), "queue.%s", key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return herr_field(err, HERR_INVALID, fp, "must be an integer from %lld to %lld", min, max);
	*out = json_integer_value(v);
	return 0;
}

/* max_bytes: an integer, or "N" with a KiB/MiB/GiB suffix. */
static int
bytes_of(const json_t *q, uint64_t *out, struct herr *err)
{
	const json_t *v = json_object_get(q, "max_bytes");
	const uint64_t min = 1ull << 20, max = 1ull << 40;
	unsigned long long n;
	char unit[8] = "";

	*out = RW_DEFAULT_MAX_BYTES;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v) && sscanf(json_string_value(v), "%llu%7s", &n, unit) >= 1) {
		uint64_t m = unit[0] == '\0' ? 1 : strcmp(unit, "KiB") == 0 ? 1ull << 10 :
			     strcmp(unit, "MiB") == 0 ? 1ull << 20 : strcmp(unit, "GiB") == 0 ? 1ull << 30 : 0;

		if (m == 0 || n > max)
			goto bad;
		*out = n * m;
	} else {
		goto bad;
	}
	if (*out >= min && *out <= max)
		return 0;
bad:
	return herr_field(err, HERR_INVALID, "queue.max_bytes",
			  "must be a size from 1MiB to 1024GiB (bytes, or with KiB, MiB or GiB)");
}

static int
rule_parse(const json_t *r, size_t i, struct rw_rule *rule, struct herr *err)
{
	static const char *const actions[] = { "replace", "keep", "drop", "labeldrop", "labelkeep" };
	static const char *const known[] = { "action", "source_labels", "separator", "regex",
					     "target_label", "replacement", NULL };
	const char *action = str_of(r, "action"), *regex = str_of(r, "regex"), *key;
	const json_t *src = json_object_get(r, "source_labels"), *x, *v;
	char fp[64], *anchored;
	size_t k;
	int rc;

	memset(rule, 0, sizeof(*rule));
	if (!json_is_object(r)) {
		snprintf(fp, sizeof(fp), "relabel[%zu]", i);
		return herr_field(err, HERR_INVALID, fp, "must be a mapping");
	}
	json_object_foreach((json_t *)r, key, v) {
		for (k = 0; known[k] && strcmp(known[k], key) != 0; k++)
			;
		if (known[k] == NULL) {
			snprintf(fp, sizeof(fp), "relabel[%zu].%s", i, key);
			return herr_field(err, HERR_INVALID, fp,
					  "unknown field (action, source_labels, separator, regex, target_label, replacement)");
		}
		if (strcmp(key, "source_labels") != 0 && !json_is_string(v)) {
			snprintf(fp, sizeof(fp), "relabel[%zu].%s", i, key);
			return herr_field(err, HERR_INVALID, fp, "must be a string");
		}
	}
	rule->action = RW_A_REPLACE;
	if (action) {
		for (k = 0; k < 5 && strcmp(actions[k], action) != 0; k++)
			;
		if (k == 5) {
			snprintf(fp, sizeof(fp), "relabel[%zu].action", i);
			return herr_field(err, HERR_INVALID, fp,
					  "unknown action '%.40s' (replace, keep, drop, labeldrop or labelkeep)", action);
		}
		rule->action = (enum rw_action)k;
	}
	if (src && !json_is_null(src)) {
		snprintf(fp, sizeof(fp), "relabel[%zu].source_labels", i);
		if (!json_is_array(src) || json_array_size(src) > 8)
			return herr_field(err, HERR_INVALID, fp, "must be a list of at most 8 label names");
		json_array_foreach(src, k, x) {
			if (!json_is_string(x) || !label_name_ok(json_string_value(x))) {
				snprintf(fp, sizeof(fp), "relabel[%zu].source_labels[%zu]", i, k);
				return herr_field(err, HERR_INVALID, fp, "must be a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
			}
			rule->source[rule->nsource++] = json_string_value(x);
		}
	}
	rule->separator = str_of(r, "separator") ? str_of(r, "separator") : ";";
	rule->replacement = str_of(r, "replacement") ? str_of(r, "replacement") : "$1";
	rule->target = str_of(r, "target_label");
	snprintf(fp, sizeof(fp), "relabel[%zu].target_label", i);
	if (rule->action == RW_A_REPLACE && rule->target == NULL)
		return herr_field(err, HERR_INVALID, fp, "is required for action replace");
	if (rule->target && (rule->action != RW_A_REPLACE || !label_name_ok(rule->target)))
		return herr_field(err, HERR_INVALID, fp, rule->action != RW_A_REPLACE
				  ? "only a replace rule has a target_label"
				  : "must be a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
	snprintf(fp, sizeof(fp), "relabel[%zu].source_labels", i);
	if ((rule->action == RW_A_KEEP || rule->action == RW_A_DROP) && rule->nsource == 0)
		return herr_field(err, HERR_INVALID, fp, "is required for action %s", actions[rule->action]);
	if ((rule->action == RW_A_LABELDROP || rule->action == RW_A_LABELKEEP) && rule->nsource)
		return herr_field(err, HERR_INVALID, fp, "a %s rule matches label names: no source_labels",
				  actions[rule->action]);
	snprintf(fp, sizeof(fp), "relabel[%zu].regex", i);
	if ((rule->action == RW_A_LABELDROP || rule->action == RW_A_LABELKEEP) && regex == NULL)
		return herr_field(err, HERR_INVALID, fp, "is required for action %s", actions[rule->action]);
	if (regex && strlen(regex) > 1024)
		return herr_field(err, HERR_INVALID, fp, "is over 1024 bytes");
	/* anchored at both ends, as Prometheus does (its "^(?:re)$"; POSIX has
	 * no (?:, so the anchoring's group is group 1 and expand() skips it) */
	anchored = xasprintf("^(%s)$", regex ? regex : "(.*)");
	rc = regcomp(&rule->re, anchored, REG_EXTENDED);
	free(anchored);
	if (rc != 0) {
		char why[128];

		regerror(rc, &rule->re, why, sizeof(why));
		return herr_field(err, HERR_INVALID, fp, "not a POSIX extended regex: %s", why);
	}
	rule->compiled = true;
	return 0;
}

int
rw_parse(const char *name, const json_t *spec, struct rw_conf *c, struct herr *err)
{
	const json_t *ba = json_object_get(spec, "basic_auth"), *hd = json_object_get(spec, "headers");
	const json_t *rl = json_object_get(spec, "relabel"), *q = json_object_get(spec, "queue"), *v, *x;
	const char *key;
	long long n;
	size_t i;
	int rc;

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->url = str_of(spec, "url");
	if (c->url == NULL)
		return herr_field(err, HERR_INVALID, "url", "is required");
	if ((!has_prefix(c->url, "http://") && !has_prefix(c->url, "https://")) ||
	    !text_ok(c->url, 1024) || strchr(c->url, ' '))
		return herr_field(err, HERR_INVALID, "url",
				  "must be an http:// or https:// URL without spaces or control characters");
	c->bearer_token_file = str_of(spec, "bearer_token_file");
	if ((rc = absolute_file(c->bearer_token_file, "bearer_token_file", err)) < 0)
		return rc;
	if (ba && !json_is_null(ba)) {
		if (!json_is_object(ba))
			return herr_field(err, HERR_INVALID, "basic_auth", "must be a mapping {username, password_file}");
		json_object_foreach((json_t *)ba, key, v)
			if (strcmp(key, "username") != 0 && strcmp(key, "password_file") != 0)
				return herr_field(err, HERR_INVALID, "basic_auth",
						  "unknown field '%.40s' (username, password_file)", key);
		c->username = str_of(ba, "username");
		c->password_file = str_of(ba, "password_file");
		if (c->username == NULL || !text_ok(c->username, 256) || strchr(c->username, ':'))
			return herr_field(err, HERR_INVALID, "basic_auth.username",
					  "is required: up to 256 characters, no ':' or control characters");
		if (c->password_file == NULL)
			return herr_field(err, HERR_INVALID, "basic_auth.password_file", "is required");
		if ((rc = absolute_file(c->password_file, "basic_auth.password_file", err)) < 0)
			return rc;
		if (c->bearer_token_file)
			return herr_field(err, HERR_INVALID, "basic_auth",
					  "give bearer_token_file or basic_auth, not both");
	}
	if (hd && !json_is_null(hd)) {
		if (!json_is_object(hd) || json_object_size(hd) > RW_HEADERS_MAX)
			return herr_field(err, HERR_INVALID, "headers", "must be a mapping of at most %d headers",
					  RW_HEADERS_MAX);
		json_object_foreach((json_t *)hd, key, v) {
			char fp[160];

			snprintf(fp, sizeof(fp), "headers.%.100s", key);
			if (!header_name_ok(key))
				return herr_field(err, HERR_INVALID, fp, "not a header name (letters, digits, '-')");
			for (i = 0; reserved_headers[i]; i++)
				if (strcasecmp(reserved_headers[i], key) == 0)
					return herr_field(err, HERR_INVALID, fp,
							  "is reserved by the remote write protocol");
			if (!json_is_string(v) || !text_ok(json_string_value(v), 1024))
				return herr_field(err, HERR_INVALID, fp,
						  "must be a string of at most 1024 characters without control characters");
			c->header_names[c->nheaders] = key;
			c->header_values[c->nheaders++] = json_string_value(v);
		}
	}
	if (rl && !json_is_null(rl)) {
		if (!json_is_array(rl) || json_array_size(rl) > RW_RELABEL_MAX)
			return herr_field(err, HERR_INVALID, "relabel", "must be a list of at most %d rules",
					  RW_RELABEL_MAX);
		json_array_foreach(rl, i, x) {
			rc = rule_parse(x, i, &c->rules[c->nrules], err);
			if (c->rules[c->nrules].compiled)
				c->nrules++;
			if (rc < 0) {
				rw_conf_release(c);
				return rc;
			}
		}
	}
	if (q && !json_is_null(q)) {
		static const char *const known[] = { "max_bytes", "max_samples_per_send",
						     "batch_send_deadline", "min_backoff", "max_backoff",
						     "max_shards", NULL };

		if (!json_is_object(q))
			rc = herr_field(err, HERR_INVALID, "queue", "must be a mapping");
		else
			json_object_foreach((json_t *)q, key, v) {
				for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
					;
				if (known[i] == NULL) {
					char fp[160];

					snprintf(fp, sizeof(fp), "queue.%.100s", key);
					rc = herr_field(err, HERR_INVALID, fp,
							"unknown field (max_bytes, max_samples_per_send, batch_send_deadline, min_backoff, max_backoff, max_shards)");
					break;
				}
			}
		if (rc < 0) {
			rw_conf_release(c);
			return rc;
		}
	}
	if ((rc = bytes_of(q, &c->max_bytes, err)) < 0 ||
	    (rc = int_of(q, "max_samples_per_send", RW_DEFAULT_SAMPLES_PER_SEND, 1, 100000, &n, err)) < 0 ||
	    (c->max_samples_per_send = (int)n, 0) ||
	    (rc = int_of(q, "max_shards", RW_DEFAULT_MAX_SHARDS, 1, 64, &n, err)) < 0 ||
	    (c->max_shards = (int)n, 0) ||
	    (rc = duration_of(q, "batch_send_deadline", RW_DEFAULT_DEADLINE_MS, 10, 600000,
			      &c->batch_send_deadline_ms, err)) < 0 ||
	    (rc = duration_of(q, "min_backoff", RW_DEFAULT_MIN_BACKOFF_MS, 1, 600000, &c->min_backoff_ms,
			      err)) < 0 ||
	    (rc = duration_of(q, "max_backoff", RW_DEFAULT_MAX_BACKOFF_MS, 1, 3600000,
			      &c->max_backoff_ms, err)) < 0) {
		rw_conf_release(c);
		return rc;
	}
	if (c->max_backoff_ms < c->min_backoff_ms) {
		rw_conf_release(c);
		return herr_field(err, HERR_INVALID, "queue.max_backoff", "must not be below min_backoff");
	}
	return 0;
}

void
rw_conf_release(struct rw_conf *c)
{
	for (int i = 0; i < c->nrules; i++)
		if (c->rules[i].compiled)
			regfree(&c->rules[i].re);
	c->nrules = 0;
}

/* --- relabelling --- */

static int
label_find(const struct rw_labels *ls, const char *name)
{
	for (int i = 0; i < ls->n; i++)
		if (strcmp(ls->name[i], name) == 0)
			return i;
	return -1;
}

static void
label_del(struct rw_labels *ls, int i)
{
	memmove(&ls->name[i], &ls->name[i + 1], sizeof(ls->name[0]) * (size_t)(ls->n - i - 1));
	memmove(&ls->value[i], &ls->value[i + 1], sizeof(ls->value[0]) * (size_t)(ls->n - i - 1));
	ls->n--;
}

bool
rw_labels_set(struct rw_labels *ls, const char *name, const char *value)
{
	int i = label_find(ls, name);
	size_t vl = strlen(value);

	if (*value == '\0') {
		if (i >= 0)
			label_del(ls, i);
		return true;
	}
	if (strlen(name) >= sizeof(ls->name[0]) || vl > RW_LABEL_MAX ||
	    ls->vused + vl + 1 > sizeof(ls->vbuf))
		return false;
	if (i < 0) {
		if (ls->n == RW_LABELS_MAX)
			return false;
		i = ls->n++;
		snprintf(ls->name[i], sizeof(ls->name[i]), "%s", name);
	}
	ls->value[i] = ls->vbuf + ls->vused;
	memcpy(ls->value[i], value, vl + 1);
	ls->vused += vl + 1;
	return true;
}

/* Expands replacement with $N / ${N} from the match of src (m: 11 groups,
 * the first the anchoring's) into out. */
static void
expand(const char *repl, const char *src, const regmatch_t *m, char *out, size_t outsz)
{
	size_t o = 0;

	for (const char *p = repl; *p && o + 1 < outsz;) {
		int g = -1;

		if (p[0] == '$' && isdigit((unsigned char)p[1])) {
			g = p[1] - '0';
			p += 2;
		} else if (p[0] == '$' && p[1] == '{' && isdigit((unsigned char)p[2]) && p[3] == '}') {
			g = p[2] - '0';
			p += 4;
		} else {
			out[o++] = *p++;
			continue;
		}
		if (g > 0)
			g++;    /* the anchoring's own group is 1: the rule's $1 is 2 */
		if (m[g].rm_so >= 0)
			for (regoff_t k = m[g].rm_so; k < m[g].rm_eo && o + 1 < outsz; k++)
				out[o++] = src[k];
	}
	out[o] = '\0';
}

static void
labels_sort(struct rw_labels *ls)
{
	/* insertion sort: few labels, names and values move together */
	for (int i = 1; i < ls->n; i++)
		for (int j = i; j > 0 && strcmp(ls->name[j - 1], ls->name[j]) > 0; j--) {
			char tn[sizeof(ls->name[0])], *tv = ls->value[j];

			memcpy(tn, ls->name[j], sizeof(tn));
			memcpy(ls->name[j], ls->name[j - 1], sizeof(tn));
			memcpy(ls->name[j - 1], tn, sizeof(tn));
			ls->value[j] = ls->value[j - 1];
			ls->value[j - 1] = tv;
		}
}

bool
rw_relabel(const struct rw_conf *c, struct rw_labels *ls)
{
	char src[RW_LABEL_MAX * 2], res[RW_LABEL_MAX + 1];
	regmatch_t m[11];

	for (int r = 0; r < c->nrules; r++) {
		const struct rw_rule *rule = &c->rules[r];
		size_t o = 0;
		bool hit;

		if (rule->action == RW_A_LABELDROP || rule->action == RW_A_LABELKEEP) {
			for (int i = 0; i < ls->n;) {
				hit = regexec(&rule->re, ls->name[i], 0, NULL, 0) == 0;
				if (hit == (rule->action == RW_A_LABELDROP))
					label_del(ls, i);
				else
					i++;
			}
			continue;
		}
		src[0] = '\0';
		for (int i = 0; i < rule->nsource; i++) {
			int k = label_find(ls, rule->source[i]);
			const char *v = k >= 0 ? ls->value[k] : "";

			o += (size_t)snprintf(src + o, o < sizeof(src) ? sizeof(src) - o : 0, "%s%s",
					      i ? rule->separator : "", v);
			if (o >= sizeof(src))
				o = sizeof(src) - 1;
		}
		hit = regexec(&rule->re, src, 11, m, 0) == 0;
		switch (rule->action) {
		case RW_A_KEEP:
			if (!hit)
				return false;
			break;
		case RW_A_DROP:
			if (hit)
				return false;
			break;
		case RW_A_REPLACE:
			if (!hit)
				break;
			expand(rule->replacement, src, m, res, sizeof(res));
			if (!rw_labels_set(ls, rule->target, res))
				return false;
			break;
		default:
			break;
		}
	}
	if (label_find(ls, "__name__") < 0)
		return false;
	labels_sort(ls);
	return true;
}

/* --- records --- */

size_t
rw_record_put(char *out, int64_t ts_ms, double value, const char *const *names,
	      const char *const *values, int n)
{
	size_t o = 22;
	uint32_t len;
	uint16_t l16 = (uint16_t)n;

	if (n > RW_LABELS_MAX)
		return 0;
	memcpy(out + 4, &ts_ms, 8);
	memcpy(out + 12, &value, 8);
	memcpy(out + 20, &l16, 2);
	for (int i = 0; i < 2 * n; i++) {
		const char *str = i % 2 ? values[i / 2] : names[i / 2];
		size_t sl = strlen(str);

		if (sl > RW_LABEL_MAX)
			return 0;
		l16 = (uint16_t)sl;
		memcpy(out + o, &l16, 2);
		memcpy(out + o + 2, str, sl + 1);
		o += 3 + sl;
	}
	len = (uint32_t)(o - 4);
	memcpy(out, &len, 4);
	return o;
}

int
rw_record_labels(const char *p, size_t len, struct pw_label *out, int max)
{
	uint16_t n, l16;
	size_t o = 22;

	if (len < 22)
		return -1;
	memcpy(&n, p + 20, 2);
	if (n > max || n > RW_LABELS_MAX)
		return -1;
	for (int i = 0; i < 2 * n; i++) {
		if (o + 2 > len)
			return -1;
		memcpy(&l16, p + o, 2);
		if (l16 > RW_LABEL_MAX || o + 3 + l16 > len || p[o + 2 + l16] != '\0')
			return -1;
		if (i % 2)
			out[i / 2].value = p + o + 2;
		else
			out[i / 2].name = p + o + 2;
		o += 3 + l16;
	}
	return o == len ? n : -1;
}

size_t
rw_record_get(const char *p, size_t avail, int64_t *ts_ms, double *value, struct rw_labels *ls)
{
	struct pw_label l[RW_LABELS_MAX];
	uint32_t len;
	int n;

	if (avail < 22)
		return 0;
	memcpy(&len, p, 4);
	if (len < 18 || len > RW_RECORD_MAX || (size_t)len + 4 > avail)
		return 0;
	if ((n = rw_record_labels(p, (size_t)len + 4, l, RW_LABELS_MAX)) < 0)
		return 0;
	memcpy(ts_ms, p + 4, 8);
	memcpy(value, p + 12, 8);
	if (ls) {
		ls->n = 0;
		ls->vused = 0;
		for (int i = 0; i < n; i++)
			if (!rw_labels_set(ls, l[i].name, l[i].value))
				return 0;
	}
	return (size_t)len + 4;
}

uint64_t
rw_record_hash(const char *p, size_t len)
{
	/* the labels: everything after length, ts and value */
	return len > 20 ? fnv1a(1469598103934665603ull, p + 20, len - 20) : 0;
}

/* --- decisions --- */

int64_t
rw_backoff_ms(int failures, int64_t min_ms, int64_t max_ms, double jitter)
{
	int64_t d = min_ms;

	for (int i = 1; i < failures && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + (int64_t)((double)(d - d / 2) * jitter);
}

enum rw_outcome
rw_classify(int rc, long status)
{
	if (rc < 0 || status == 0)
		return RW_RETRY;
	if (status >= 200 && status < 300)
		return RW_OK;
	if (status == 429 || status >= 500)
		return RW_RETRY;
	return RW_DROP;
}

int
rw_shards_decide(size_t waiting_segments, int max_shards)
{
	if (max_shards < 1)
		return 1;
	return waiting_segments >= (size_t)max_shards ? max_shards : 1 + (int)waiting_segments;
}
