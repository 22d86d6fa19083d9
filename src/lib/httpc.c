/* httpc.c - JSON over HTTP with libcurl; see httpc.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <curl/curl.h>

#include "buf.h"
#include "httpc.h"
#include "tlsfp.h"
#include "xalloc.h"

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;

static void
httpc_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
httpc_init(struct httpc *c, const char *base, const char *token)
{
	size_t n;

	pthread_once(&httpc_once, httpc_global_init);
	memset(c, 0, sizeof(*c));
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (token && *token)
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", token);
	c->verify_host = true;
	c->curl = curl_easy_init();
	BUG_ON(c->curl == NULL);
}

void
httpc_release(struct httpc *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	free(c->ca_pem);
	c->ca_pem = NULL;
}

void
httpc_trust_cafile(struct httpc *c, const char *path)
{
	snprintf(c->cafile, sizeof(c->cafile), "%s", path ? path : "");
}

void
httpc_trust_ca_pem(struct httpc *c, const char *pem, size_t len, bool verify_host)
{
	free(c->ca_pem);
	c->ca_pem = xmalloc(len + 1);
	memcpy(c->ca_pem, pem, len);
	c->ca_pem[len] = '\0';
	c->verify_host = verify_host;
}

void
httpc_insecure(struct httpc *c)
{
	c->insecure = true;
}

/* The TLS options of c on its curl handle (after curl_easy_reset). */
static void
httpc_tls_setopt(struct httpc *c)
{
	if (c->insecure) {
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
		return;
	}
	if (c->ca_pem) {
		struct curl_blob blob = { c->ca_pem, strlen(c->ca_pem), CURL_BLOB_COPY };

		curl_easy_setopt(c->curl, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	} else if (c->cafile[0]) {
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cafile);
		curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, c->verify_host ? 2L : 0L);
}

#define CA_PEM_MAX 65536   /* GET /v1/tls/ca: one certificate, ~800 bytes */

struct sink {
	struct buf b;
	int (*cb)(const char *data, size_t n, void *arg);
	void *arg;
	int stopped;
};

static size_t
httpc_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;

	if (s->cb) {
		if (s->cb(data, n, s->arg) != 0) {
			s->stopped = 1;
			return 0;
		}
		return n;
	}
	if (buf_add(&s->b, data, n) < 0)
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return n;
}

/* One request; body (len bytes, of type ctype) may be NULL. */
static int
httpc_perform(struct httpc *c, const char *method, const char *path, const char *ctype,
	      const void *body, size_t len, struct sink *s, long *status, struct herr *err)
{
	struct curl_slist *hdrs = NULL;
	char url[2048], ct[160];
	CURLcode rc;

	if (body && !httpc_ctype_is_valid(ctype))
		return herr_set(err, HERR_INVALID, "bad content type for the request body");
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url))
		return herr_set(err, HERR_INVALID, "url too long");
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms ? c->timeout_ms : 30000L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, httpc_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	httpc_tls_setopt(c);
	if (c->auth[0])
		hdrs = curl_slist_append(hdrs, c->auth);
	if (body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hdrs = curl_slist_append(hdrs, ct);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_WRITE_ERROR && s->stopped)
		rc = CURLE_OK;
	if (rc == CURLE_WRITE_ERROR)
		return herr_set(err, HERR_TOOBIG, "response from %s is too large", c->base);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return herr_set(err, HERR_TIMEOUT, "no answer from %s in time", c->base);
	if (rc == CURLE_PEER_FAILED_VERIFICATION)
		return herr_set(err, HERR_FORBIDDEN, "the TLS certificate of %s is not trusted: %s",
				c->base, curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		return herr_set(err, HERR_UNAVAIL, "cannot reach herd server at %s: %s", c->base,
				curl_easy_strerror(rc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int
httpc_json_text(struct httpc *c, const char *method, const char *path, const char *body,
		long *status, json_t **resp, struct herr *err)
{
	struct sink s = { 0 };
	int rc;

	*resp = NULL;
	buf_init(&s.b, c->max_response ? c->max_response : 16u << 20);
	rc = httpc_perform(c, method, path, "application/json", body, body ? strlen(body) : 0, &s,
			   status, err);
	if (rc == 0 && s.b.len > 0)
		*resp = json_loadb(s.b.p, s.b.len, 0, NULL);
	buf_release(&s.b);
	return rc;
}

int
httpc_text(struct httpc *c, const char *method, const char *path, const char *body,
	   long *status, struct buf *resp, struct herr *err)
{
	return httpc_send(c, method, path, "application/json", body, body ? strlen(body) : 0,
			  status, resp, err);
}

int
httpc_send(struct httpc *c, const char *method, const char *path, const char *ctype,
	   const void *body, size_t len, long *status, struct buf *resp, struct herr *err)
{
	struct sink s = { 0 };
	int rc;

	s.b = *resp;
	rc = httpc_perform(c, method, path, ctype, body, len, &s, status, err);
	*resp = s.b;
	return rc;
}

int
httpc_stream(struct httpc *c, const char *path, int (*cb)(const char *data, size_t n, void *arg),
	     void *arg, long *status, struct herr *err)
{
	struct sink s = { 0 };
	long saved = c->timeout_ms;
	int rc;

	s.cb = cb;
	s.arg = arg;
	c->timeout_ms = 24L * 3600 * 1000;
	rc = httpc_perform(c, "GET", path, NULL, NULL, 0, &s, status, err);
	c->timeout_ms = saved;
	return rc;
}

int
httpc_pin_ca(struct httpc *c, const char *fingerprint, struct herr *err)
{
	unsigned char want[TLSFP_LEN], got[TLSFP_LEN];
	char wanthex[TLSFP_HEX], gothex[TLSFP_HEX];
	struct sink s = { 0 };
	bool insecure = c->insecure;
	long status = 0;
	int rc;

	if (tlsfp_parse(fingerprint, want) < 0)
		return herr_field(err, HERR_INVALID, "ca_sha256",
				  "invalid CA fingerprint '%s': want 64 hex digits", fingerprint);
	tlsfp_hex(want, wanthex);
	/* unverified on purpose: what comes back is trusted only if its
	 * hash is the one we were given */
	buf_init(&s.b, CA_PEM_MAX);
	c->insecure = true;
	rc = httpc_perform(c, "GET", "/v1/tls/ca", NULL, NULL, 0, &s, &status, err);
	c->insecure = insecure;
	if (rc < 0)
		goto out;
	if (status != 200) {
		rc = herr_set(err, status >= 500 ? HERR_UNAVAIL : HERR_FORBIDDEN,
			      "%s/v1/tls/ca answered HTTP %ld: the server has no CA of its own, want "
			      "one with fingerprint %s", c->base, status, wanthex);
		goto out;
	}
	if (tlsfp_of_pem(s.b.p, s.b.len, got) < 0) {
		rc = herr_set(err, HERR_FORBIDDEN, "%s/v1/tls/ca sent no PEM certificate, want "
			      "one with fingerprint %s", c->base, wanthex);
		goto out;
	}
	tlsfp_hex(got, gothex);
	if (memcmp(want, got, TLSFP_LEN) != 0) {
		rc = herr_set(err, HERR_FORBIDDEN, "the server's CA has fingerprint %s, want %s: "
			      "refusing to talk to it", gothex, wanthex);
		goto out;
	}
	httpc_trust_ca_pem(c, s.b.p, s.b.len, false);
out:
	buf_release(&s.b);
	return rc;
}

char *
httpc_escape(const char *s)
{
	size_t n = strlen(s);
	char *e, *out;

	/* curl's escaping keeps exactly RFC 3986's unreserved characters; its
	 * result is curl_free()'d, ours free()'d like every other owned string */
	BUG_ON(n > INT_MAX);
	e = curl_easy_escape(NULL, s, (int)n);
	if (e == NULL)
		bug_at(__FILE__, __LINE__, "curl_easy_escape: out of memory");
	out = xstrdup(e);
	curl_free(e);
	return out;
}
