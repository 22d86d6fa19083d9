/* rwout/rwout-post.c - the remote write request (rwout/rwout.h): several
 * compressed WriteRequest bodies POSTed at once through one libcurl multi
 * handle (one transfer per shard), with the spec's headers, the remote's
 * auth (files read at each send, never kept) and its own headers. The
 * answer's body is kept only up to RW_ERROR_MAX (for the log). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "notify/notify.h"
#include "promwire.h"
#include "rwout/rwout.h"
#include "xalloc.h"

struct xfer {
	struct rw_post *p;
	size_t got;
};

static size_t
keep_start(char *data, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = sz * n, cap = sizeof(x->p->answer) - 1;

	if (x->got < cap) {
		size_t k = len < cap - x->got ? len : cap - x->got;

		memcpy(x->p->answer + x->got, data, k);
		x->p->answer[x->got + k] = '\0';
	}
	x->got += len;
	return x->got > (64u << 10) ? 0 : len;   /* a peer cannot make us read more */
}

static struct curl_slist *
headers_of(const struct rw_conf *c, struct herr *err)
{
	struct curl_slist *h = NULL;
	unsigned char secret[RW_SECRET_MAX];
	size_t len;
	char *line;

	h = curl_slist_append(h, "Content-Type: " PROMWIRE_CONTENT_TYPE);
	h = curl_slist_append(h, "Content-Encoding: " PROMWIRE_CONTENT_ENCODING);
	h = curl_slist_append(h, PROMWIRE_VERSION_HEADER ": " PROMWIRE_VERSION);
	h = curl_slist_append(h, "User-Agent: herd-remote-write");
	h = curl_slist_append(h, "Expect:");
	for (int i = 0; i < c->nheaders; i++) {
		line = xasprintf("%s: %s", c->header_names[i], c->header_values[i]);
		h = curl_slist_append(h, line);
		free(line);
	}
	if (c->bearer_token_file) {
		if (notify_secret_read(c->bearer_token_file, "bearer_token_file", secret, sizeof(secret),
				       &len, err) < 0) {
			curl_slist_free_all(h);
			return NULL;
		}
		line = xasprintf("Authorization: Bearer %.*s", (int)len, (const char *)secret);
		sodium_memzero(secret, sizeof(secret));
		h = curl_slist_append(h, line);
		sodium_memzero(line, strlen(line));
		free(line);
	}
	return h;
}

int
rw_post_all(const struct rw_conf *c, struct rw_post *posts, int n, volatile int *stop,
	    struct herr *err)
{
	struct curl_slist *h = headers_of(c, err);
	unsigned char pw[RW_SECRET_MAX];
	char *userpwd = NULL;
	struct xfer *xs;
	CURL **easy;
	CURLM *m;
	int running = 0;
	size_t len;

	if (h == NULL)
		return err->code;
	if (c->password_file) {
		if (notify_secret_read(c->password_file, "basic_auth.password_file", pw, sizeof(pw), &len,
				       err) < 0) {
			curl_slist_free_all(h);
			return err->code;
		}
		userpwd = xasprintf("%s:%.*s", c->username, (int)len, (const char *)pw);
		sodium_memzero(pw, sizeof(pw));
	}
	m = curl_multi_init();
	xs = xcalloc((size_t)n, sizeof(*xs));
	easy = xcalloc((size_t)n, sizeof(*easy));
	for (int i = 0; i < n; i++) {
		CURL *e = curl_easy_init();

		posts[i].status = 0;
		posts[i].rc = HERR_UNAVAIL;
		posts[i].retry_after_s = 0;
		posts[i].answer[0] = '\0';
		xs[i].p = &posts[i];
		easy[i] = e;
		if (e == NULL)
			continue;
		curl_easy_setopt(e, CURLOPT_URL, c->url);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)RW_TIMEOUT_MS);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)RW_TIMEOUT_MS);
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, posts[i].body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)posts[i].len);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_start);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &xs[i]);
		curl_easy_setopt(e, CURLOPT_PRIVATE, &xs[i]);
		if (userpwd) {
			curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
		}
		curl_multi_add_handle(m, e);
	}
	do {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct xfer *x = NULL;
			curl_off_t ra = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			if (msg->data.result == CURLE_OK ||
			    (msg->data.result == CURLE_WRITE_ERROR && x->got > 0)) {
				x->p->rc = 0;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->p->status);
				if (curl_easy_getinfo(msg->easy_handle, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK)
					x->p->retry_after_s = (long)ra;
			} else {
				x->p->rc = msg->data.result == CURLE_OPERATION_TIMEDOUT ? HERR_TIMEOUT
											: HERR_UNAVAIL;
				snprintf(x->p->answer, sizeof(x->p->answer), "%s",
					 curl_easy_strerror(msg->data.result));
			}
		}
		if (running && (stop == NULL || !*stop))
			curl_multi_poll(m, NULL, 0, 200, NULL);
	} while (running && (stop == NULL || !*stop));
	for (int i = 0; i < n; i++)
		if (easy[i]) {
			curl_multi_remove_handle(m, easy[i]);
			curl_easy_cleanup(easy[i]);
		}
	curl_multi_cleanup(m);
	curl_slist_free_all(h);
	if (userpwd) {
		sodium_memzero(userpwd, strlen(userpwd));
		free(userpwd);
	}
	free(easy);
	free(xs);
	return 0;
}
