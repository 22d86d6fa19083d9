/* notify/notify-email.c - the email channel: one plain-text message per
 * notification, sent with libcurl's SMTP (smtp:// with STARTTLS when the
 * server offers it, smtps:// for TLS from the start; optional login with a
 * password read from a file at each send). The message is made here
 * (notify_email_message, pure): header values come from events, so every
 * control character is replaced, and libcurl dot-stuffs the body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "buf.h"
#include "notify/notify.h"
#include "util.h"

/* s with every control character (CR, LF, ...) as a space, at most max bytes. */
static void
add_clean(struct buf *b, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		char c = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];

		buf_add(b, &c, 1);
	}
}

static const char *
str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

char *
notify_email_message(const struct receiver *r, const json_t *events, int64_t now_ms)
{
	const json_t *first = json_array_get(events, 0), *ev;
	size_t i, firing = 0, n = json_array_size(events);
	char date[64], t[40], fp[17];
	time_t secs = (time_t)(now_ms / 1000);
	struct buf b;
	struct tm tm;

	buf_init(&b, 1 << 20);   /* NOTIFY_BATCH_MAX events of bounded fields fit */
	json_array_foreach(events, i, ev)
		if (strcmp(str_of(ev, "state"), "firing") == 0)
			firing++;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_addf(&b, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, r->from);
	for (int k = 0; k < r->nto; k++)
		buf_addf(&b, "%s<%s>", k ? ", " : "", r->to[k]);
	buf_addf(&b, "\r\nMessage-ID: <herd-%s-%lld-%lld@herd>\r\nSubject: [herd] ",
		 r->name, (long long)json_integer_value(json_object_get(first, "id")),
		 (long long)json_integer_value(json_object_get(json_array_get(events, n - 1), "id")));
	buf_addf(&b, "%s ", firing ? "FIRING" : "RESOLVED");
	add_clean(&b, str_of(first, "rule"), 100);
	if (*str_of(first, "cluster")) {
		buf_addf(&b, " ");
		add_clean(&b, str_of(first, "cluster"), 100);
		if (*str_of(first, "group")) {
			buf_addf(&b, "/");
			add_clean(&b, str_of(first, "group"), 100);
		}
	}
	if (n == 1) {
		buf_addf(&b, ": ");
		add_clean(&b, str_of(first, "summary"), 200);
	} else {
		buf_addf(&b, " (%zu)", n);
	}
	buf_addf(&b, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Transfer-Encoding: 8bit\r\n\r\n");
	json_array_foreach(events, i, ev) {
		notify_fingerprint(ev, fp);
		buf_addf(&b, "[%s] ", strcmp(str_of(ev, "state"), "firing") == 0 ? "FIRING" : "RESOLVED");
		add_clean(&b, str_of(ev, "summary"), 2000);
		buf_addf(&b, "\r\n  rule: ");
		add_clean(&b, str_of(ev, "rule"), 200);
		buf_addf(&b, "  severity: %s", str_of(ev, "severity"));
		if (*str_of(ev, "key")) {
			buf_addf(&b, "  key: ");
			add_clean(&b, str_of(ev, "key"), 200);
		}
		buf_addf(&b, "\r\n  at: %s", fmt_time(json_integer_value(json_object_get(ev, "ts_ms")), t, sizeof(t)));
		buf_addf(&b, "  since: %s", fmt_time(json_integer_value(json_object_get(ev, "started_ms")), t, sizeof(t)));
		buf_addf(&b, "\r\n  event: %lld  fingerprint: %s%s\r\n\r\n",
			 (long long)json_integer_value(json_object_get(ev, "id")), fp,
			 json_is_true(json_object_get(ev, "repeat")) ? "  (reminder)" : "");
	}
	return buf_steal(&b);
}

struct upload {
	const char *p;
	size_t left;
};

static size_t
upload_read(char *out, size_t sz, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t k = sz * n < u->left ? sz * n : u->left;

	memcpy(out, u->p, k);
	u->p += k;
	u->left -= k;
	return k;
}

int
notify_email_send(const struct receiver *r, const json_t *events, long *status, struct herr *err)
{
	char *msg = notify_email_message(r, events, now_ms()), from[300];
	unsigned char pw[NOTIFY_SECRET_MAX + 1];
	struct upload u = { msg, strlen(msg) };
	struct curl_slist *rcpt = NULL;
	size_t pw_len = 0;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	*status = 0;
	if (r->password_file &&
	    (rc = notify_secret_read(r->password_file, "password_file", pw, sizeof(pw) - 1, &pw_len,
				     err)) < 0) {
		free(msg);
		return rc;
	}
	pw[pw_len] = '\0';
	c = curl_easy_init();
	if (c == NULL) {
		rc = herr_set(err, HERR_UNAVAIL, "cannot start a libcurl handle");
		goto out;
	}
	snprintf(from, sizeof(from), "<%s>", r->from);
	for (int k = 0; k < r->nto; k++) {
		char to[300];

		snprintf(to, sizeof(to), "<%s>", r->to[k]);
		rcpt = curl_slist_append(rcpt, to);
	}
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, notify_xferinfo);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_INFILESIZE, (long)strlen(msg));
	if (r->user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, (const char *)pw);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK && *status < 400) {
		/* no SMTP refusal: the server was not reached, or went away */
		rc = herr_set(err, cc == CURLE_OPERATION_TIMEDOUT ? HERR_TIMEOUT : HERR_UNAVAIL,
			      "smtp %s: %s", r->url, curl_easy_strerror(cc));
	} else if (cc != CURLE_OK) {
		herr_set(err, HERR_INVALID, "smtp %s: %s (reply %ld)", r->url, curl_easy_strerror(cc),
			 *status);
	}
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
out:
	sodium_memzero(pw, sizeof(pw));
	free(msg);
	return rc;
}
