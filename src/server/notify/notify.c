/* notify/notify.c - what every channel shares (notify/notify.h): parsing a
 * receiver, routing an event, the retry schedule and the outcome of an
 * attempt (pure), the fingerprint, reading a secret file, one bounded HTTP
 * POST, and the dispatcher to the channel's driver. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "notify/notify.h"
#include "util.h"

static const char *
str_of(const json_t *spec, const char *key)
{
	return json_string_value(json_object_get(spec, key));
}

static bool
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* A match list: absent = any; else a list (<= 100) of strings. */
static int
match_list(const json_t *match, const char *key, const json_t **out, struct herr *err)
{
	const json_t *v = json_object_get(match, key), *x;
	char fp[64];
	size_t i;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	snprintf(fp, sizeof(fp), "match.%s", key);
	if (!json_is_array(v) || json_array_size(v) > 100)
		return herr_field(err, HERR_INVALID, fp, "must be a list of at most 100 strings");
	json_array_foreach(v, i, x)
		if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 200) {
			snprintf(fp, sizeof(fp), "match.%s[%zu]", key, i);
			return herr_field(err, HERR_INVALID, fp, "must be a string of 1-200 characters");
		}
	*out = v;
	return 0;
}

/* A plain address: something@something, no spaces, brackets or controls
 * (it goes into an SMTP command and a header). */
static bool
email_is_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') || strlen(s) > 254)
		return false;
	for (; *s; s++)
		if (iscntrl((unsigned char)*s) || isspace((unsigned char)*s) || strchr("<>,;\"()[]\\", *s))
			return false;
	return true;
}

static int
duration_of(const json_t *spec, const char *key, int64_t dflt, int64_t max_ms, int64_t *ms,
	    struct herr *err)
{
	const char *s = str_of(spec, key);

	*ms = dflt;
	if (json_object_get(spec, key) == NULL)
		return 0;
	if (s == NULL || parse_duration_ms(s, ms) < 0 || *ms < 0 || *ms > max_ms)
		return herr_field(err, HERR_INVALID, key, "must be a duration from 0s to %llds",
				  (long long)(max_ms / 1000));
	return 0;
}

int
receiver_parse(const char *name, const json_t *spec, struct receiver *r, struct herr *err)
{
	const char *type = str_of(spec, "type");
	const json_t *match = json_object_get(spec, "match"), *to, *x;
	static const char *const sev[] = { "critical", "warning", "info" };
	size_t i;

	memset(r, 0, sizeof(*r));
	r->name = name;
	if (type == NULL)
		return herr_field(err, HERR_INVALID, "type", "is required: webhook, email or alertmanager");
	if (strcmp(type, "webhook") == 0)
		r->type = NOTIFY_WEBHOOK;
	else if (strcmp(type, "email") == 0)
		r->type = NOTIFY_EMAIL;
	else if (strcmp(type, "alertmanager") == 0)
		r->type = NOTIFY_ALERTMANAGER;
	else
		return herr_field(err, HERR_INVALID, "type",
				  "unknown receiver type '%s' (webhook, email or alertmanager)", type);
	r->url = str_of(spec, "url");
	if (r->url == NULL)
		return herr_field(err, HERR_INVALID, "url", "is required for a %s receiver", type);
	for (const char *p = r->url; *p; p++)
		if (iscntrl((unsigned char)*p) || *p == ' ')
			return herr_field(err, HERR_INVALID, "url", "must not contain spaces or control characters");
	if (r->type == NOTIFY_EMAIL ? !has_prefix(r->url, "smtp://") && !has_prefix(r->url, "smtps://")
				    : !has_prefix(r->url, "http://") && !has_prefix(r->url, "https://"))
		return herr_field(err, HERR_INVALID, "url", "a %s receiver's url starts with %s", type,
				  r->type == NOTIFY_EMAIL ? "smtp:// or smtps://" : "http:// or https://");
	r->secret_file = str_of(spec, "secret_file");
	r->from = str_of(spec, "from");
	r->user = str_of(spec, "user");
	r->password_file = str_of(spec, "password_file");
	if (r->secret_file && r->type != NOTIFY_WEBHOOK)
		return herr_field(err, HERR_INVALID, "secret_file", "only a webhook receiver has a secret_file");
	if (r->secret_file && r->secret_file[0] != '/')
		return herr_field(err, HERR_INVALID, "secret_file", "must be an absolute path");
	if (r->type != NOTIFY_EMAIL) {
		static const char *const email_only[] = { "from", "to", "user", "password_file" };

		for (i = 0; i < sizeof(email_only) / sizeof(email_only[0]); i++)
			if (json_object_get(spec, email_only[i]))
				return herr_field(err, HERR_INVALID, email_only[i],
						  "only an email receiver has '%s'", email_only[i]);
	} else {
		if (r->from == NULL || !email_is_valid(r->from))
			return herr_field(err, HERR_INVALID, "from",
					  "an email receiver needs a from address like herd@example.org");
		to = json_object_get(spec, "to");
		if (!json_is_array(to) || json_array_size(to) == 0 || json_array_size(to) > NOTIFY_TO_MAX)
			return herr_field(err, HERR_INVALID, "to", "must be a list of 1-%d addresses",
					  NOTIFY_TO_MAX);
		json_array_foreach(to, i, x) {
			if (!json_is_string(x) || !email_is_valid(json_string_value(x))) {
				char fp[32];

				snprintf(fp, sizeof(fp), "to[%zu]", i);
				return herr_field(err, HERR_INVALID, fp, "must be an address like ops@example.org");
			}
			r->to[r->nto++] = json_string_value(x);
		}
		if (r->password_file && r->password_file[0] != '/')
			return herr_field(err, HERR_INVALID, "password_file", "must be an absolute path");
		if (r->password_file && r->user == NULL)
			return herr_field(err, HERR_INVALID, "user", "is required with a password_file");
		if (r->user && strpbrk(r->user, "\r\n"))
			return herr_field(err, HERR_INVALID, "user", "must be one line");
	}
	if (match && !json_is_object(match))
		return herr_field(err, HERR_INVALID, "match", "must be a mapping");
	if (match) {
		const char *key;
		json_t *v;

		json_object_foreach((json_t *)match, key, v)
			if (strcmp(key, "severities") && strcmp(key, "rules") && strcmp(key, "clusters") &&
			    strcmp(key, "groups"))
				return herr_field(err, HERR_INVALID, "match",
						  "unknown key '%s' (severities, rules, clusters, groups)", key);
		if (match_list(match, "severities", &r->severities, err) < 0 ||
		    match_list(match, "rules", &r->rules, err) < 0 ||
		    match_list(match, "clusters", &r->clusters, err) < 0 ||
		    match_list(match, "groups", &r->groups, err) < 0)
			return err->code;
		json_array_foreach(r->severities, i, x) {
			size_t k;

			for (k = 0; k < 3; k++)
				if (strcmp(json_string_value(x), sev[k]) == 0)
					break;
			if (k == 3) {
				char fp[48];

				snprintf(fp, sizeof(fp), "match.severities[%zu]", i);
				return herr_field(err, HERR_INVALID, fp,
						  "unknown severity '%s' (critical, warning or info)",
						  json_string_value(x));
			}
		}
	}
	if (duration_of(spec, "group_wait", NOTIFY_GROUP_WAIT_MS, 3600000, &r->group_wait_ms, err) < 0 ||
	    duration_of(spec, "timeout", NOTIFY_TIMEOUT_MS, 60000, &r->timeout_ms, err) < 0)
		return err->code;
	if (r->timeout_ms < 1000)
		return herr_field(err, HERR_INVALID, "timeout", "must be at least 1s");
	return 0;
}

static bool
list_has(const json_t *list, const char *v)
{
	const json_t *x;
	size_t i;

	json_array_foreach(list, i, x)
		if (strcmp(json_string_value(x), v) == 0)
			return true;
	return false;
}

bool
receiver_match(const struct receiver *r, const json_t *ev)
{
	const char *cl = str_of(ev, "cluster"), *gr = str_of(ev, "group");
	char both[200];

	cl = cl ? cl : "";
	gr = gr ? gr : "";
	if (r->severities && !list_has(r->severities, str_of(ev, "severity") ? str_of(ev, "severity") : ""))
		return false;
	if (r->rules && !list_has(r->rules, str_of(ev, "rule") ? str_of(ev, "rule") : ""))
		return false;
	if (r->clusters && !list_has(r->clusters, cl))
		return false;
	snprintf(both, sizeof(both), "%s/%s", cl, gr);
	if (r->groups && !list_has(r->groups, gr) && !list_has(r->groups, both))
		return false;
	return true;
}

int64_t
notify_backoff_ms(int failures, double jitter)
{
	int64_t d = NOTIFY_BACKOFF_FIRST_MS;

	for (int i = 1; i < failures && d < NOTIFY_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > NOTIFY_BACKOFF_MAX_MS)
		d = NOTIFY_BACKOFF_MAX_MS;
	if (jitter < 0 || jitter >= 1)
		jitter = 0;
	return d / 2 + (int64_t)((double)(d / 2) * jitter);
}

enum notify_outcome
notify_classify(int rc, long status, bool smtp)
{
	if (rc < 0)
		return NOTIFY_RETRY;
	if (smtp)   /* SMTP: 2xx done, 4xx transient, 5xx permanent */
		return status >= 200 && status < 400 ? NOTIFY_OK
		       : status >= 500 && status < 600 ? NOTIFY_DROP : NOTIFY_RETRY;
	if (status >= 200 && status < 300)
		return NOTIFY_OK;
	if (status == 408 || status == 429 || status >= 500 || status < 200)
		return NOTIFY_RETRY;
	return NOTIFY_DROP;
}

void
notify_fingerprint(const json_t *ev, char out[17])
{
	char hex[65], *id;
	const char *f[4] = { str_of(ev, "rule"), str_of(ev, "cluster"), str_of(ev, "group"),
			     str_of(ev, "key") };
	size_t n = 0, len = 4;

	for (int i = 0; i < 4; i++)
		len += strlen(f[i] ? f[i] : "");
	id = calloc(1, len);
	/* NUL-separated: "a","bc" and "ab","c" differ */
	for (int i = 0; i < 4; i++) {
		size_t l = strlen(f[i] ? f[i] : "");

		memcpy(id + n, f[i] ? f[i] : "", l);
		n += l + 1;
	}
	sha256_hex(id, len, hex);
	free(id);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

int
notify_secret_read(const char *path, const char *field, unsigned char *out, size_t outsz,
		   size_t *len, struct herr *err)
{
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd, rc = 0;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return herr_field(err, HERR_INVALID, field, "cannot open '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = herr_field(err, HERR_INVALID, field, "'%s' is not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = herr_field(err, HERR_FORBIDDEN, field,
				"'%s' is open to group or others (mode %04o): chmod 600 it", path,
				(unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	while (n < outsz && (r = read(fd, out + n, outsz - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = herr_field(err, HERR_INVALID, field, "cannot read '%s': %s", path,
					strerror(errno));
			goto out_close;
		}
		n += (size_t)r;
	}
	if (n == outsz) {
		rc = herr_field(err, HERR_TOOBIG, field, "'%s' is over %zu bytes", path, outsz - 1);
		goto out_close;
	}
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	if (n == 0)
		rc = herr_field(err, HERR_INVALID, field, "'%s' is empty", path);
	*len = n;
out_close:
	close(fd);
	return rc;
}

static int abort_sends;

void
notify_abort_sends(void)
{
	__atomic_store_n(&abort_sends, 1, __ATOMIC_RELEASE);
}

int
notify_xferinfo(void *arg, long long dltotal, long long dlnow, long long ultotal, long long ulnow)
{
	return __atomic_load_n(&abort_sends, __ATOMIC_ACQUIRE);
}

/* Reads the answer, keeps nothing past NOTIFY_RESPONSE_MAX (aborts). */
static size_t
drop_body(char *p, size_t sz, size_t n, void *arg)
{
	size_t *got = arg;

	*got += sz * n;
	return *got > NOTIFY_RESPONSE_MAX ? 0 : sz * n;
}

int
notify_http_post(const char *url, const char *const *headers, const char *body, size_t body_len,
		 int64_t timeout_ms, long *status, struct herr *err)
{
	struct curl_slist *h = NULL;
	size_t got = 0;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	*status = 0;
	c = curl_easy_init();
	if (c == NULL)
		return herr_set(err, HERR_UNAVAIL, "cannot start a libcurl handle");
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "User-Agent: herd-notify");
	for (; headers && *headers; headers++)
		h = curl_slist_append(h, *headers);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, notify_xferinfo);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && got > NOTIFY_RESPONSE_MAX))
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	else
		rc = herr_set(err, cc == CURLE_OPERATION_TIMEDOUT ? HERR_TIMEOUT : HERR_UNAVAIL,
			      "POST %s: %s", url, curl_easy_strerror(cc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

int
notify_send(const struct receiver *r, const json_t *events, long *status, struct herr *err)
{
	switch (r->type) {
	case NOTIFY_WEBHOOK:
		return notify_webhook_send(r, events, status, err);
	case NOTIFY_EMAIL:
		return notify_email_send(r, events, status, err);
	case NOTIFY_ALERTMANAGER:
		return notify_am_send(r, events, status, err);
	}
	return herr_set(err, HERR_INVALID, "unknown receiver type");
}
