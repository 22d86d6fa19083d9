/* qc.c - QingCloud IaaS API client: signing (signature version 1,
 * HmacSHA256), flattening parameters, GET/POST with libcurl, ret_code
 * mapping, retries with backoff and jitter, and waiting on jobs. See qc.h. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "buf.h"
#include "log.h"
#include "qc.h"
#include "util.h"
#include "xalloc.h"

#define QC_NAME_MAX_BYTES 256
#define QC_JOB_POLL_MIN_MS 500
#define QC_JOB_POLL_CAP_MS 10000

/* ---- pure parts ---- */

int64_t
qc_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint32_t random_u32)
{
	int64_t ceil_ms;

	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	if (attempt < 0)
		attempt = 0;
	ceil_ms = base_ms;
	/* doubling stops at the cap, so no shift can overflow */
	for (int i = 0; i < attempt && ceil_ms < cap_ms; i++)
		ceil_ms = ceil_ms > INT64_MAX / 2 ? INT64_MAX : ceil_ms * 2;
	if (ceil_ms > cap_ms)
		ceil_ms = cap_ms;
	/* at most 2^32-2 ms (49 days), so the product below fits 64 bits */
	if (ceil_ms > (int64_t)UINT32_MAX - 1)
		ceil_ms = (int64_t)UINT32_MAX - 1;
	/* full jitter (uniform in [0, ceil]): scaling a 32-bit draw instead of
	 * taking it modulo keeps the pick without bias */
	return (int64_t)(((uint64_t)random_u32 * (uint64_t)(ceil_ms + 1)) >> 32);
}

const char *
qc_time_stamp(int64_t ts_ms, char out[QC_TIME_STAMP_LEN])
{
	time_t t = (time_t)(ts_ms / 1000);
	struct tm tm;

	/* the Go SDK's "ISO 8601" layout, "2006-01-02T15:04:05Z": UTC, whole
	 * seconds (yunify/qingcloud-sdk-go utils/time.go) */
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, QC_TIME_STAMP_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, QC_TIME_STAMP_LEN, "1970-01-01T00:00:00Z");
	return out;
}

char *
qc_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out, *o;

	BUG_ON(n > (SIZE_MAX - 1) / 3);
	out = o = xmalloc(3 * n + 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* RFC 3986 unreserved bytes stay; everything else, space
		 * included, is %XX in upper case: Go's url.QueryEscape with
		 * '+' turned into "%20" (request/signer.go), Python's
		 * quote(safe='-_~') (qingcloud/conn/auth.py) */
		if (isalnum(*p) && *p < 0x80) {
			*o++ = (char)*p;
		} else if (*p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int
flat_scalar(const char *name, const json_t *v, json_t *flat, struct herr *err)
{
	char num[32];

	if (json_is_string(v)) {
		json_object_set_new(flat, name, json_string(json_string_value(v)));
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		json_object_set_new(flat, name, json_string(num));
		return 0;
	}
	if (json_is_boolean(v)) {
		/* QingCloud's flags are integers 0/1 (verbose, count, ...) */
		json_object_set_new(flat, name, json_string(json_is_true(v) ? "1" : "0"));
		return 0;
	}
	return herr_field(err, HERR_INVALID, name, "parameter '%s' must be a string or an integer",
			  name);
}

/* Inside an array of objects, an array of scalars is one comma-joined value,
 * as the Go SDK's builder sends []*string fields of nested structs. */
static int
flat_joined(const char *name, const json_t *arr, json_t *flat, struct herr *err)
{
	struct buf b;
	size_t i;
	json_t *v;
	int rc = 0;

	buf_init(&b, QC_QUERY_MAX_BYTES);
	json_array_foreach(arr, i, v) {
		json_t *one = json_object();

		rc = flat_scalar(name, v, one, err);
		if (rc == 0 && ((i > 0 && buf_adds(&b, ",") < 0) ||
				buf_adds(&b, json_string_value(json_object_get(one, name))) < 0))
			rc = herr_field(err, HERR_TOOBIG, name, "parameter '%s' is too long", name);
		json_decref(one);
		if (rc < 0)
			goto out;
	}
	json_object_set_new(flat, name, json_string(b.p ? b.p : ""));
out:
	buf_release(&b);
	return rc;
}

static int
flat_value(const char *name, const json_t *v, json_t *flat, int depth, struct herr *err)
{
	char sub[QC_NAME_MAX_BYTES];
	const char *key;
	json_t *e;
	size_t i;
	int rc;

	if (!json_is_array(v) && !json_is_object(v))
		return flat_scalar(name, v, flat, err);
	/* what the Go SDK's builder sends: a list of scalars, or a list of
	 * objects whose values are scalars or lists of scalars */
	if ((json_is_array(v) && depth > 0) || (json_is_object(v) && depth != 1))
		return herr_field(
			err, HERR_INVALID, name,
			"parameter '%s' must be a scalar, a list of scalars or a list of objects",
			name);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e) {
			if (snprintf(sub, sizeof(sub), "%s.%s", name, key) >= (int)sizeof(sub))
				return herr_field(err, HERR_INVALID, name,
						  "parameter name '%s' is too long", name);
			rc = json_is_array(e) ? flat_joined(sub, e, flat, err)
					      : flat_scalar(sub, e, flat, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	json_array_foreach(v, i, e) {
		/* name.1, name.2, ...: 1-based (the docs' "vxnets.1") */
		if (snprintf(sub, sizeof(sub), "%s.%zu", name, i + 1) >= (int)sizeof(sub))
			return herr_field(err, HERR_INVALID, name,
					  "parameter name '%s' is too long", name);
		rc = flat_value(sub, e, flat, depth + 1, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
qc_flatten(const json_t *params, json_t *flat, struct herr *err)
{
	const char *key;
	json_t *v;
	int rc;

	if (params == NULL)
		return 0;
	if (!json_is_object(params))
		return herr_set(err, HERR_INVALID, "parameters must be a JSON object");
	json_object_foreach((json_t *)params, key, v) {
		if (key[0] == '\0' || strlen(key) >= QC_NAME_MAX_BYTES / 2)
			return herr_field(err, HERR_INVALID, key,
					  "parameter name '%s' is empty or too long", key);
		rc = flat_value(key, v, flat, 0, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void
qc_add_common(json_t *flat, const char *action, const char *zone, const char *access_key_id,
	      int64_t now_ms)
{
	char ts[QC_TIME_STAMP_LEN];

	json_object_set_new(flat, "action", json_string(action));
	/* an explicit zone parameter wins, as the Python SDK's setdefault */
	if (zone && *zone && json_object_get(flat, "zone") == NULL)
		json_object_set_new(flat, "zone", json_string(zone));
	json_object_set_new(flat, "access_key_id", json_string(access_key_id));
	json_object_set_new(flat, "time_stamp", json_string(qc_time_stamp(now_ms, ts)));
	json_object_set_new(flat, "version", json_string("1"));
	json_object_set_new(flat, "signature_method", json_string("HmacSHA256"));
	json_object_set_new(flat, "signature_version", json_string("1"));
}

static int
key_cmp(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: byte order, like Go's sort.Strings */
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
qc_canonical_query(const json_t *flat, struct herr *err)
{
	size_t n = json_object_size(flat), i = 0;
	const char **keys;
	const char *key;
	struct buf b;
	json_t *v;
	char *out = NULL;

	keys = xcalloc(n ? n : 1, sizeof(*keys));
	json_object_foreach((json_t *)flat, key, v) {
		if (!json_is_string(v)) {
			herr_field(err, HERR_INVALID, key, "parameter '%s' is not a string", key);
			free(keys);
			return NULL;
		}
		keys[i++] = key;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	buf_init(&b, QC_QUERY_MAX_BYTES);
	for (i = 0; i < n; i++) {
		char *ek = qc_escape(keys[i]);
		char *ev = qc_escape(json_string_value(json_object_get(flat, keys[i])));
		int rc = buf_addf(&b, "%s%s=%s", i ? "&" : "", ek, ev);

		free(ek);
		free(ev);
		if (rc < 0) {
			herr_set(err, HERR_TOOBIG, "request parameters are over %zu bytes",
				 QC_QUERY_MAX_BYTES);
			goto out;
		}
	}
	out = b.p ? buf_steal(&b) : xstrdup("");
out:
	buf_release(&b);
	free(keys);
	return out;
}

void
qc_sign(const char *method, const char *path, const char *canonical_query,
	const unsigned char *secret, size_t secret_len, char out[QC_SIGNATURE_LEN])
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	/* HMAC over METHOD "\n" PATH "\n" QUERY, streamed: no copy of the
	 * string to sign is made */
	crypto_auth_hmacsha256_init(&st, secret, secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)method, strlen(method));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)path, strlen(path));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)canonical_query,
				      strlen(canonical_query));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2base64(out, QC_SIGNATURE_LEN, mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(&st, sizeof(st));
}

int
qc_endpoint_path(const char *endpoint, char *out, size_t outsz, struct herr *err)
{
	const char *host, *slash;

	if (strncmp(endpoint, "https://", 8) == 0)
		host = endpoint + 8;
	else if (strncmp(endpoint, "http://", 7) == 0)
		host = endpoint + 7;
	else
		return herr_field(err, HERR_INVALID, "endpoint",
				  "endpoint '%s' must start with https:// or http://", endpoint);
	for (const unsigned char *p = (const unsigned char *)endpoint; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return herr_field(err, HERR_INVALID, "endpoint",
					  "endpoint '%s' must have no space, query or fragment",
					  endpoint);
	slash = strchr(host, '/');
	if (slash == host || *host == '\0')
		return herr_field(err, HERR_INVALID, "endpoint", "endpoint '%s' has no host",
				  endpoint);
	if (snprintf(out, outsz, "%s", slash ? slash : "/") >= (int)outsz)
		return herr_field(err, HERR_INVALID, "endpoint", "endpoint '%s' is too long",
				  endpoint);
	return 0;
}

/* yunify/qingcloud-docs content/development_docs/api/error_code.md */
static const struct {
	int ret_code;
	int herr;
	const char *words;
} qc_codes[] = {
	{ 0, 0, "ok" },
	{ 1100, HERR_INVALID, "bad parameters" },
	{ 1101, HERR_INVALID, "no such action or bad parameter value" },
	{ 1200, HERR_AUTH, "access key or signature rejected" },
	{ 1300, HERR_AUTH, "request expired: check this server's clock" },
	{ 1400, HERR_FORBIDDEN, "permission denied" },
	{ 2100, HERR_NOTFOUND, "resource not found" },
	{ 2110, HERR_CONFLICT, "resource already exists" },
	{ 2400, HERR_FORBIDDEN, "balance not enough" },
	{ 2500, QC_ERR_QUOTA, "quota exceeded" },
	{ 5000, HERR_UNAVAIL, "internal error" },
	{ 5100, HERR_UNAVAIL, "server busy" },
	{ 5200, HERR_UNAVAIL, "not enough resources in the zone" },
	{ 5300, HERR_UNAVAIL, "service being updated" },
};

int
qc_ret_code_map(int ret_code, const char **words)
{
	for (size_t i = 0; i < sizeof(qc_codes) / sizeof(qc_codes[0]); i++)
		if (qc_codes[i].ret_code == ret_code) {
			*words = qc_codes[i].words;
			return qc_codes[i].herr;
		}
	*words = "error";
	return HERR_UNAVAIL;
}

bool
qc_ret_code_retryable(int ret_code)
{
	return ret_code == 5000 || ret_code == 5100;
}

int
qc_job_state_parse(const json_t *resp, const char *job_id, enum qc_job_state *state,
		   char *state_word, size_t state_word_len, struct herr *err)
{
	const json_t *set = json_object_get(resp, "job_set"), *j;
	const char *status;
	size_t i;

	if (!json_is_array(set))
		return herr_set(err, HERR_INVALID, "DescribeJobs answer has no job_set");
	json_array_foreach(set, i, j) {
		const char *id = json_string_value(json_object_get(j, "job_id"));

		if (id == NULL || strcmp(id, job_id) != 0)
			continue;
		status = json_string_value(json_object_get(j, "status"));
		if (status == NULL)
			return herr_set(err, HERR_INVALID, "job '%s' has no status", job_id);
		if (state_word && state_word_len)
			snprintf(state_word, state_word_len, "%s", status);
		/* pending, working, failed, successful (api/command_list/job/
		 * describe_jobs.md); the Python SDK's wait_job treats every word
		 * but pending and working as final, and its tests use "done
		 * with failure": any other final word is a failure */
		if (strcmp(status, "pending") == 0)
			*state = QC_JOB_PENDING;
		else if (strcmp(status, "working") == 0)
			*state = QC_JOB_WORKING;
		else if (strcmp(status, "successful") == 0)
			*state = QC_JOB_SUCCESSFUL;
		else
			*state = QC_JOB_FAILED;
		return 0;
	}
	return herr_set(err, HERR_NOTFOUND, "job '%s' not found", job_id);
}

/* ---- I/O ---- */

static int
action_is_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) || (unsigned char)s[n] >= 0x80)
			return 0;
	return n > 0 && n <= 64;
}

int
qc_client_init(struct qc_client *c, const char *endpoint, const char *zone,
	       const char *access_key_id, const char *secret_file, struct herr *err)
{
	char path[512];
	int rc;

	memset(c, 0, sizeof(*c));
	if (endpoint == NULL || *endpoint == '\0')
		endpoint = QC_ENDPOINT_DEFAULT;
	rc = qc_endpoint_path(endpoint, path, sizeof(path), err);
	if (rc < 0)
		return rc;
	if (snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint) >= (int)sizeof(c->endpoint))
		return herr_field(err, HERR_INVALID, "endpoint", "endpoint is too long");
	/* zone ids are lower case ("pek3a"); it can be empty for calls that
	 * take none (DescribeZones) */
	for (const char *p = zone ? zone : ""; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return herr_field(err, HERR_INVALID, "zone",
					  "zone '%s' must be lower-case letters, digits and '-'",
					  zone);
	if (snprintf(c->zone, sizeof(c->zone), "%s", zone ? zone : "") >= (int)sizeof(c->zone))
		return herr_field(err, HERR_INVALID, "zone", "zone is too long");
	if (access_key_id == NULL || *access_key_id == '\0' ||
	    snprintf(c->access_key_id, sizeof(c->access_key_id), "%s", access_key_id) >=
		    (int)sizeof(c->access_key_id))
		return herr_field(err, HERR_INVALID, "access_key_id",
				  "access_key_id must be 1-%zu characters",
				  sizeof(c->access_key_id) - 1);
	for (const char *p = access_key_id; *p; p++)
		if (!isgraph((unsigned char)*p))
			return herr_field(err, HERR_INVALID, "access_key_id",
					  "access_key_id must have no space or control character");
	if (secret_file == NULL || secret_file[0] != '/' ||
	    snprintf(c->secret_file, sizeof(c->secret_file), "%s", secret_file) >=
		    (int)sizeof(c->secret_file))
		return herr_field(err, HERR_INVALID, "secret_file",
				  "secret_file must be an absolute path");
	c->timeout_ms = 30000;
	c->connect_timeout_ms = 5000;
	c->max_attempts = 4;
	c->backoff_base_ms = 500;
	c->backoff_cap_ms = 10000;
	c->last.ret_code = -1;
	if (sodium_init() < 0)
		return herr_set(err, HERR_UNAVAIL, "libsodium cannot initialize");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c->curl = curl_easy_init();
	BUG_ON(c->curl == NULL);
	return 0;
}

void
qc_client_release(struct qc_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

/* Reads the secret access key into out (wiped by the caller). */
static int
secret_read(const char *path, unsigned char *out, size_t outsz, size_t *len, struct herr *err)
{
	struct stat st;
	size_t n = 0, start = 0;
	ssize_t r;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return herr_field(err, errno == ENOENT ? HERR_NOTFOUND : HERR_FORBIDDEN,
				  "secret_file", "cannot open secret file '%s': %s", path,
				  strerror(errno));
	/* fstat on the open file: the mode checked is that of what is read */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = herr_field(err, HERR_INVALID, "secret_file",
				"secret file '%s' is not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = herr_field(
			err, HERR_FORBIDDEN, "secret_file",
			"secret file '%s' is open to group or others (mode %04o): chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	while (n < outsz && (r = read(fd, out + n, outsz - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = herr_field(err, HERR_FORBIDDEN, "secret_file",
					"cannot read secret file '%s': %s", path, strerror(errno));
			goto out_close;
		}
		n += (size_t)r;
	}
	if (n == outsz) {
		rc = herr_field(err, HERR_TOOBIG, "secret_file",
				"secret file '%s' is over %d bytes", path, QC_SECRET_MAX_BYTES);
		goto out_close;
	}
	/* `echo KEY > file` leaves a newline: white space around the key is
	 * not part of it */
	while (n > 0 && isspace(out[n - 1]))
		n--;
	while (start < n && isspace(out[start]))
		start++;
	memmove(out, out + start, n - start);
	n -= start;
	if (n == 0)
		rc = herr_field(err, HERR_INVALID, "secret_file", "secret file '%s' is empty",
				path);
	*len = n;
out_close:
	close(fd);
	return rc;
}

static size_t
qc_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (buf_add(b, data, n) < 0)
		return 0; /* CURLE_WRITE_ERROR: over QC_RESPONSE_MAX_BYTES */
	return n;
}

/* One HTTP exchange. *sent says whether any request byte left this host:
 * if not, resending cannot duplicate anything. */
static int
qc_perform(struct qc_client *c, bool post, const char *query, struct buf *body, bool *sent,
	   long *status, struct herr *err)
{
	struct curl_slist *hdrs = NULL;
	char noproxy[512];
	const char *env_np = getenv("NO_PROXY") ? getenv("NO_PROXY") : getenv("no_proxy");
	long req_bytes = 0;
	char *url;
	CURLcode rc;

	*sent = false;
	*status = 0;
	url = post ? xstrdup(c->endpoint) : xasprintf("%s?%s", c->endpoint, query);
	/* proxies from the environment are honoured (a server may reach the
	 * cloud through one), never for loopback (private deployments, tests) */
	snprintf(noproxy, sizeof(noproxy), "%s%slocalhost,127.0.0.1,::1", env_np ? env_np : "",
		 env_np && *env_np ? "," : "");
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, noproxy);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 30000L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 5000L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, c->user_agent[0] ? c->user_agent : "herd");
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, qc_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, body);
	if (post) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, query);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(query));
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	free(url); /* holds the signature: never logged */
	if (curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &req_bytes) != CURLE_OK ||
	    req_bytes > 0)
		*sent = true;
	if (rc == CURLE_WRITE_ERROR)
		return herr_set(err, HERR_TOOBIG, "QingCloud's answer is over %zu bytes",
				QC_RESPONSE_MAX_BYTES);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return herr_set(err, HERR_TIMEOUT, "no answer from %s in time", c->endpoint);
	if (rc != CURLE_OK)
		return herr_set(err, HERR_UNAVAIL, "cannot reach %s: %s", c->endpoint,
				curl_easy_strerror(rc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* Builds the signed query for one attempt (time_stamp now). */
static int
qc_signed_query(struct qc_client *c, json_t *flat, const char *action, const char *method,
		const char *path, char **out, struct herr *err)
{
	unsigned char secret[QC_SECRET_MAX_BYTES + 1];
	char sig[QC_SIGNATURE_LEN];
	size_t secret_len = 0;
	char *query, *esig;
	int rc;

	*out = NULL;
	qc_add_common(flat, action, c->zone, c->access_key_id, now_ms());
	query = qc_canonical_query(flat, err);
	if (query == NULL)
		return err->code;
	rc = secret_read(c->secret_file, secret, sizeof(secret), &secret_len, err);
	if (rc == 0)
		qc_sign(method, path, query, secret, secret_len, sig);
	sodium_memzero(secret, sizeof(secret));
	if (rc < 0) {
		free(query);
		return rc;
	}
	/* the signature goes last, itself URL-encoded ('+', '/', '=') */
	esig = qc_escape(sig);
	*out = xasprintf("%s&signature=%s", query, esig);
	free(esig);
	free(query);
	return 0;
}

int
qc_call(struct qc_client *c, const char *action, const json_t *params, unsigned flags,
	json_t **resp, struct herr *err)
{
	bool post = flags & QC_POST, idem = flags & QC_IDEMPOTENT;
	int max_attempts = c->max_attempts > 0 ? c->max_attempts : 4;
	char path[512];
	json_t *flat;
	int rc;

	*resp = NULL;
	memset(&c->last, 0, sizeof(c->last));
	c->last.ret_code = -1;
	if (action == NULL || !action_is_valid(action))
		return herr_field(err, HERR_INVALID, "action", "invalid QingCloud action '%s'",
				  action ? action : "");
	rc = qc_endpoint_path(c->endpoint, path, sizeof(path), err);
	if (rc < 0)
		return rc;
	flat = json_object();
	rc = qc_flatten(params, flat, err);
	if (rc < 0)
		goto out;
	for (int attempt = 0;; attempt++) {
		struct buf body;
		json_t *ans = NULL;
		const char *words;
		int64_t delay;
		bool sent = false;
		long status = 0;
		char *query;

		rc = qc_signed_query(c, flat, action, post ? "POST" : "GET", path, &query, err);
		if (rc < 0)
			goto out;
		buf_init(&body, QC_RESPONSE_MAX_BYTES);
		rc = qc_perform(c, post, query, &body, &sent, &status, err);
		free(query);
		c->last.attempts++;
		if (rc == 0 && status != 200) {
			/* QingCloud answers errors with 200 and a ret_code; a 5xx is
			 * a proxy or balancer in front of it: transient */
			rc = herr_set(err, status >= 500 ? HERR_UNAVAIL : HERR_INVALID,
				      "QingCloud %s answered HTTP %ld", action, status);
			if (status < 500) {
				buf_release(&body);
				goto out;
			}
		} else if (rc == 0) {
			json_t *code;

			ans = json_loadb(body.p ? body.p : "", body.len, 0, NULL);
			code = json_object_get(ans, "ret_code");
			if (!json_is_object(ans) || !json_is_integer(code)) {
				rc = herr_set(err, HERR_UNAVAIL,
					      "QingCloud %s: answer is not JSON with a ret_code",
					      action);
				json_decref(ans);
				buf_release(&body);
				goto out;
			}
			c->last.ret_code = (int)json_integer_value(code);
			snprintf(c->last.message, sizeof(c->last.message), "%s",
				 json_string_value(json_object_get(ans, "message"))
					 ? json_string_value(json_object_get(ans, "message"))
					 : "");
			if (c->last.ret_code == 0) {
				*resp = ans;
				buf_release(&body);
				goto out;
			}
			rc = qc_ret_code_map(c->last.ret_code, &words);
			herr_set(err, rc, "QingCloud %d: %s: %s", c->last.ret_code, words,
				 c->last.message[0] ? c->last.message : "(no message)");
			json_decref(ans);
			if (!qc_ret_code_retryable(c->last.ret_code)) {
				buf_release(&body);
				goto out;
			}
		} else if (rc == HERR_TOOBIG) {
			buf_release(&body);
			goto out;
		}
		buf_release(&body);
		/* transient: a transport error, an HTTP 5xx, 5000 or 5100 */
		if (sent && !idem) {
			char msg[sizeof(err->msg)];

			/* err->msg is an argument: copy it first (no overlapping snprintf) */
			snprintf(msg, sizeof(msg), "%s", err->msg);
			c->last.outcome_unknown = true;
			rc = herr_set(
				err, HERR_UNAVAIL,
				"%s: outcome unknown (%.300s): look for what it makes before sending it again",
				action, msg);
			goto out;
		}
		if (attempt + 1 >= max_attempts) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			herr_set(err, rc, "%s (%d attempts)", msg, attempt + 1);
			goto out;
		}
		delay = qc_backoff_ms(attempt, c->backoff_base_ms, c->backoff_cap_ms,
				      randombytes_random());
		log_info("qingcloud %s: %s; retrying in %" PRId64 " ms", action, err->msg, delay);
		sleep_ms(delay);
	}
out:
	json_decref(flat);
	if (rc < 0)
		log_debug("qingcloud %s failed: %s", action, err->msg);
	return rc;
}

int
qc_job_wait(struct qc_client *c, const char *job_id, int64_t deadline_ms, enum qc_job_state *state,
	    char *state_word, size_t state_word_len, struct herr *err)
{
	char word[32] = "unknown";
	json_t *params;
	int rc;

	params = json_pack("{s:[s], s:i}", "jobs", job_id, "verbose", 0);
	for (int poll = 0;; poll++) {
		json_t *resp = NULL;
		int64_t now, delay;

		rc = qc_call(c, "DescribeJobs", params, QC_IDEMPOTENT, &resp, err);
		if (rc == 0) {
			rc = qc_job_state_parse(resp, job_id, state, word, sizeof(word), err);
			json_decref(resp);
			if (rc < 0)
				goto out;
			if (*state == QC_JOB_SUCCESSFUL || *state == QC_JOB_FAILED)
				goto out;
		} else if (rc != HERR_UNAVAIL && rc != HERR_TIMEOUT) {
			goto out; /* 1xxx, 2xxx: polling again cannot help */
		}
		now = now_ms();
		if (now >= deadline_ms) {
			rc = herr_set(err, HERR_TIMEOUT, "job '%s' still %s at the deadline",
				      job_id, word);
			goto out;
		}
		/* at least QC_JOB_POLL_MIN_MS apart: never a hot loop */
		delay = QC_JOB_POLL_MIN_MS + qc_backoff_ms(poll, QC_JOB_POLL_MIN_MS,
							   QC_JOB_POLL_CAP_MS - QC_JOB_POLL_MIN_MS,
							   randombytes_random());
		if (delay > deadline_ms - now)
			delay = deadline_ms - now;
		sleep_ms(delay);
	}
out:
	if (state_word && state_word_len)
		snprintf(state_word, state_word_len, "%s", word);
	json_decref(params);
	return rc;
}

int
qc_job_done(struct qc_client *c, const json_t *resp, int64_t deadline_ms, const char *what,
	    struct herr *err)
{
	const char *job = json_string_value(json_object_get(resp, "job_id"));
	enum qc_job_state st;
	char word[32];
	int rc;

	if (job == NULL)
		return 0;
	if ((rc = qc_job_wait(c, job, deadline_ms, &st, word, sizeof(word), err)) < 0)
		return rc;
	if (st != QC_JOB_SUCCESSFUL)
		return herr_set(err, HERR_UNAVAIL, "QingCloud job %s (%s) ended '%s'", job, what,
				word);
	return 0;
}
