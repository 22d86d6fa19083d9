/*
 * main.c - the fake QingCloud's process: options, the HTTP server
 * (libmicrohttpd, a thread pool polling with poll()), the checks QingCloud
 * makes before it runs an action (signature, time_stamp, access key), the
 * --fail-rate answers, the call log and --delay-action.
 *
 * The signature is recomputed as QingCloud's signature version 1 defines it
 * (docs: development_docs/api/signature; yunify/qingcloud-sdk-go
 * request/signer.go BuildStringToSignByValues): every parameter but
 * `signature`, sorted by name, each value percent-encoded (unreserved
 * characters kept, space as %20), joined with '&', prefixed with
 * "METHOD\nPATH\n"; HMAC-SHA256 with the secret access key, base64.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "fqc.h"

static struct fqc_config cfg;
static struct world *world;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *call_log;
static uint64_t fail_state;
static volatile sig_atomic_t stopping;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: fake-qingcloud --listen 127.0.0.1:PORT --state-dir DIR --access-key-id ID\n"
		"         --secret-file F [--zone Z]... [--pending-ms N] [--job-ms N] [--cease-ms N]\n"
		"         [--fail-rate PCT] [--fail-actions A,B] [--fail-seed N] [--quota-instances N]\n"
		"         [--time-skew-max-s N] [--instances none|netns] [--name-prefix P]\n"
		"         [--call-log FILE] [--quota-eips N] [--eip-range CIDR]\n"
		"         [--delay-action ACTION:MS]...\n");
}

/* A non-negative integer option, bounded; exits naming the option when not. */
static int64_t
opt_int(const char *name, const char *v, int64_t max)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 0 || n > max) {
		fprintf(stderr, "fake-qingcloud: invalid %s '%s': want 0..%lld\n", name, v,
			(long long)max);
		exit(2);
	}
	return n;
}

/* An IPv4 "a.b.c.d/16..29" option; exits naming the option when not. */
static const char *
opt_cidr(const char *name, const char *v)
{
	char a[32];
	const char *slash = strchr(v, '/');
	struct in_addr in;
	char *end;
	long n = -1;

	if (slash != NULL && (size_t)(slash - v) < sizeof(a)) {
		memcpy(a, v, (size_t)(slash - v));
		a[slash - v] = '\0';
		n = strtol(slash + 1, &end, 10);
		if (*end != '\0' || inet_pton(AF_INET, a, &in) != 1)
			n = -1;
	}
	if (n < 16 || n > 29) {
		fprintf(stderr, "fake-qingcloud: invalid %s '%s': want a.b.c.d/16..29\n", name, v);
		exit(2);
	}
	return v;
}

/* "ACTION:MS" (--delay-action); exits naming the option when not. */
static void
opt_delay(const char *name, const char *v)
{
	const char *colon = strrchr(v, ':');
	char *action;

	if (colon == NULL || colon == v || colon - v > 64) {
		fprintf(stderr, "fake-qingcloud: invalid %s '%s': want ACTION:MS\n", name, v);
		exit(2);
	}
	if (cfg.ndelays == FQC_MAX_DELAYS) {
		fprintf(stderr, "fake-qingcloud: at most %d %s\n", FQC_MAX_DELAYS, name);
		exit(2);
	}
	action = strndup(v, (size_t)(colon - v));
	if (action == NULL)
		exit(1);
	cfg.delays[cfg.ndelays].action = action;
	cfg.delays[cfg.ndelays].ms = opt_int(name, colon + 1, 3600000);
	cfg.ndelays++;
}

static void
read_secret(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "fake-qingcloud: cannot open --secret-file '%s': %s\n", path,
			strerror(errno));
		exit(2);
	}
	n = fread(cfg.secret, 1, sizeof(cfg.secret) - 1, f);
	fclose(f);
	cfg.secret[n] = '\0';
	while (n > 0 &&
	       (cfg.secret[n - 1] == '\n' || cfg.secret[n - 1] == '\r' || cfg.secret[n - 1] == ' '))
		cfg.secret[--n] = '\0';
	if (n == 0) {
		fprintf(stderr, "fake-qingcloud: --secret-file '%s' is empty\n", path);
		exit(2);
	}
}

static void
parse_args(int argc, char **argv)
{
	int i;

	cfg.pending_ms = 2000;
	cfg.job_ms = 1000;
	cfg.cease_ms = 60000;
	cfg.quota_instances = 100;
	cfg.quota_eips = 10;
	cfg.eip_range = "198.19.255.0/24";
	cfg.time_skew_max_s = 900;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--help") == 0) {
			usage();
			exit(0);
		}
		if (v == NULL) {
			fprintf(stderr, "fake-qingcloud: option '%s' needs a value\n", o);
			usage();
			exit(2);
		}
		i++;
		if (strcmp(o, "--listen") == 0)
			cfg.listen = v;
		else if (strcmp(o, "--state-dir") == 0)
			cfg.state_dir = v;
		else if (strcmp(o, "--access-key-id") == 0)
			cfg.access_key_id = v;
		else if (strcmp(o, "--secret-file") == 0)
			read_secret(v);
		else if (strcmp(o, "--zone") == 0) {
			if (cfg.nzones == FQC_MAX_ZONES) {
				fprintf(stderr, "fake-qingcloud: at most %d --zone\n",
					FQC_MAX_ZONES);
				exit(2);
			}
			cfg.zones[cfg.nzones++] = v;
		} else if (strcmp(o, "--pending-ms") == 0)
			cfg.pending_ms = opt_int(o, v, 3600000);
		else if (strcmp(o, "--job-ms") == 0)
			cfg.job_ms = opt_int(o, v, 3600000);
		else if (strcmp(o, "--cease-ms") == 0)
			cfg.cease_ms = opt_int(o, v, 86400000);
		else if (strcmp(o, "--fail-rate") == 0)
			cfg.fail_rate_pct = (unsigned)opt_int(o, v, 100);
		else if (strcmp(o, "--fail-actions") == 0)
			cfg.fail_actions = v;
		else if (strcmp(o, "--fail-seed") == 0)
			cfg.fail_seed = (uint64_t)opt_int(o, v, INT64_MAX);
		else if (strcmp(o, "--quota-instances") == 0)
			cfg.quota_instances = opt_int(o, v, 100000);
		else if (strcmp(o, "--quota-eips") == 0)
			cfg.quota_eips = opt_int(o, v, 100000);
		else if (strcmp(o, "--eip-range") == 0)
			cfg.eip_range = opt_cidr(o, v);
		else if (strcmp(o, "--time-skew-max-s") == 0)
			cfg.time_skew_max_s = opt_int(o, v, INT32_MAX);
		else if (strcmp(o, "--call-log") == 0)
			cfg.call_log = v;
		else if (strcmp(o, "--delay-action") == 0)
			opt_delay(o, v);
		else if (strcmp(o, "--name-prefix") == 0) {
			size_t k, n = strlen(v);

			if (n < 1 || n > 4) {
				fprintf(stderr,
					"fake-qingcloud: --name-prefix '%s': 1 to 4 characters\n",
					v);
				exit(2);
			}
			for (k = 0; k < n; k++)
				if (!((v[k] >= 'a' && v[k] <= 'z') ||
				      (v[k] >= '0' && v[k] <= '9'))) {
					fprintf(stderr,
						"fake-qingcloud: --name-prefix '%s': only a-z0-9\n",
						v);
					exit(2);
				}
			snprintf(cfg.name_prefix, sizeof(cfg.name_prefix), "%s", v);
		} else if (strcmp(o, "--instances") == 0) {
			if (strcmp(v, "netns") == 0)
				cfg.netns = true;
			else if (strcmp(v, "none") != 0) {
				fprintf(stderr,
					"fake-qingcloud: invalid --instances '%s': none or netns\n",
					v);
				exit(2);
			}
		} else {
			fprintf(stderr, "fake-qingcloud: unknown option '%s'\n", o);
			usage();
			exit(2);
		}
	}
	if (cfg.listen == NULL || cfg.state_dir == NULL || cfg.access_key_id == NULL ||
	    cfg.secret[0] == '\0') {
		fprintf(stderr,
			"fake-qingcloud: --listen, --state-dir, --access-key-id and --secret-file are required\n");
		usage();
		exit(2);
	}
	if (cfg.nzones == 0)
		cfg.zones[cfg.nzones++] = "pek3a";
	if (cfg.netns && geteuid() != 0) {
		fprintf(stderr, "fake-qingcloud: --instances netns needs root\n");
		exit(2);
	}
	if (cfg.name_prefix[0] == '\0') {
		/* from the state dir: parallel fakes with distinct dirs never collide */
		char real[PATH_MAX];
		unsigned char h[crypto_generichash_BYTES_MIN];
		const char *p = realpath(cfg.state_dir, real) ? real : cfg.state_dir;

		crypto_generichash(h, sizeof(h), (const unsigned char *)p, strlen(p), NULL, 0);
		snprintf(cfg.name_prefix, sizeof(cfg.name_prefix), "%02x%02x", h[0], h[1]);
	}
}

/* --- requests ------------------------------------------------------------ */

static void
req_add(struct fqc_req *r, const char *key, const char *value, size_t value_len)
{
	if (key == NULL)
		return;
	if (r->nparams == FQC_MAX_PARAMS) {
		r->too_many = true;
		return;
	}
	if (strlen(key) > FQC_MAX_KEY || value_len > FQC_MAX_VALUE) {
		r->too_big = true;
		return;
	}
	r->params[r->nparams].key = strdup(key);
	r->params[r->nparams].value = strndup(value ? value : "", value_len);
	r->nparams++;
}

static void
req_free(struct fqc_req *r)
{
	size_t i;

	for (i = 0; i < r->nparams; i++) {
		free(r->params[i].key);
		free(r->params[i].value);
	}
	free(r);
}

struct conn {
	struct fqc_req *req;
	struct MHD_PostProcessor *pp;
	/* a POST value may arrive in pieces: the one being assembled */
	char *cur_key;
	char *cur_val;
	size_t cur_len;
};

static void
conn_flush(struct conn *c)
{
	if (c->cur_key != NULL)
		req_add(c->req, c->cur_key, c->cur_val, c->cur_len);
	free(c->cur_key);
	free(c->cur_val);
	c->cur_key = NULL;
	c->cur_val = NULL;
	c->cur_len = 0;
}

static enum MHD_Result
post_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
	  const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
	  size_t size)
{
	struct conn *c = cls;

	if (off == 0 || c->cur_key == NULL || strcmp(c->cur_key, key) != 0) {
		conn_flush(c);
		c->cur_key = strdup(key);
	}
	if (c->cur_len + size > FQC_MAX_VALUE) {
		c->req->too_big = true;
		return MHD_NO;
	}
	c->cur_val = realloc(c->cur_val, c->cur_len + size + 1);
	if (c->cur_val == NULL)
		abort();
	memcpy(c->cur_val + c->cur_len, data, size);
	c->cur_len += size;
	c->cur_val[c->cur_len] = '\0';
	return MHD_YES;
}

static enum MHD_Result
get_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	req_add(cls, key, value, value ? strlen(value) : 0);
	return MHD_YES;
}

const char *
fqc_param_get(const struct fqc_req *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].key, key) == 0)
			return r->params[i].value;
	return NULL;
}

/* --- signature ----------------------------------------------------------- */

static int
param_cmp(const void *a, const void *b)
{
	const struct fqc_param *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

/* Appends V percent-encoded as Go's url.QueryEscape with '+' → %20 does. */
static int
enc_append(char *out, size_t cap, size_t *len, const char *v, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			if (*len + 1 >= cap)
				return -1;
			out[(*len)++] = (char)ch;
		} else {
			if (*len + 3 >= cap)
				return -1;
			out[(*len)++] = '%';
			out[(*len)++] = hex[ch >> 4];
			out[(*len)++] = hex[ch & 15];
		}
	}
	out[*len] = '\0';
	return 0;
}

/*
 * The string to sign. Values are trimmed of surrounding white space as the
 * SDK does (strings.TrimSpace) and an empty value contributes its key alone.
 */
static char *
string_to_sign(const struct fqc_req *r, const char *method, const char *path)
{
	const struct fqc_param *sorted[FQC_MAX_PARAMS];
	size_t n = 0, i, len = 0, cap = 3 * FQC_MAX_BODY + 1024;
	char *out = malloc(cap);

	if (out == NULL)
		abort();
	for (i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].key, "signature") != 0)
			sorted[n++] = &r->params[i];
	qsort(sorted, n, sizeof(sorted[0]), param_cmp);
	len = (size_t)snprintf(out, cap, "%s\n%s\n", method, path);
	for (i = 0; i < n; i++) {
		const char *v = sorted[i]->value;
		size_t vl;

		while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
			v++;
		vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\n' ||
				  v[vl - 1] == '\r'))
			vl--;
		if (len + strlen(sorted[i]->key) + 2 >= cap)
			goto out_toobig;
		if (i > 0)
			out[len++] = '&';
		memcpy(out + len, sorted[i]->key, strlen(sorted[i]->key));
		len += strlen(sorted[i]->key);
		out[len] = '\0';
		if (vl > 0) {
			out[len++] = '=';
			if (enc_append(out, cap, &len, v, vl) != 0)
				goto out_toobig;
		}
	}
	return out;
out_toobig:
	free(out);
	return NULL;
}

static bool
signature_ok(const struct fqc_req *r, const char *method, const char *path, const char *given)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(sizeof(mac), sodium_base64_VARIANT_ORIGINAL)];
	crypto_auth_hmacsha256_state st;
	char *sts = string_to_sign(r, method, path);
	char fixed[128];
	size_t i;

	if (sts == NULL)
		return false;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)cfg.secret, strlen(cfg.secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)sts, strlen(sts));
	crypto_auth_hmacsha256_final(&st, mac);
	free(sts);
	sodium_bin2base64(b64, sizeof(b64), mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
	/* a '+' sent unescaped in a query string arrives as a space */
	snprintf(fixed, sizeof(fixed), "%s", given);
	for (i = 0; fixed[i] != '\0'; i++)
		if (fixed[i] == ' ')
			fixed[i] = '+';
	return strlen(fixed) == strlen(b64) && sodium_memcmp(fixed, b64, strlen(b64)) == 0;
}

/* Parses QingCloud's ISO 8601 time_stamp, "2013-08-27T14:30:10Z". */
static bool
parse_time_stamp(const char *s, int64_t *out_s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.') /* fractional seconds */
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (strcmp(end, "Z") != 0)
		return false;
	*out_s = (int64_t)timegm(&tm);
	return true;
}

/*
 * The checks QingCloud makes before the action. Returns 0 or a ret_code
 * with MSG filled.
 */
static int
authenticate(const struct fqc_req *r, const char *method, const char *path, int64_t now, char *msg,
	     size_t msglen)
{
	static const char *required[] = { "action",           "access_key_id",     "signature",
					  "signature_method", "signature_version", "time_stamp" };
	const char *v;
	int64_t ts;
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (fqc_param_get(r, required[i]) == NULL) {
			snprintf(msg, msglen,
				 "MissingParameter, the request parameter [%s] is required",
				 required[i]);
			return FQC_ERR_PARAM;
		}
	if (strcmp(fqc_param_get(r, "signature_version"), "1") != 0) {
		snprintf(msg, msglen, "InvalidParameterValue, [signature_version] should be 1");
		return FQC_ERR_PARAM;
	}
	if (strcmp(fqc_param_get(r, "signature_method"), "HmacSHA256") != 0 &&
	    strcmp(fqc_param_get(r, "signature_method"), "HmacSHA1") != 0) {
		snprintf(msg, msglen,
			 "InvalidParameterValue, [signature_method] should be HmacSHA256");
		return FQC_ERR_PARAM;
	}
	if (strcmp(fqc_param_get(r, "signature_method"), "HmacSHA1") == 0) {
		snprintf(msg, msglen, "InvalidParameterValue, the fake only verifies HmacSHA256");
		return FQC_ERR_PARAM;
	}
	if (!parse_time_stamp(fqc_param_get(r, "time_stamp"), &ts)) {
		snprintf(msg, msglen, "InvalidParameterValue, [time_stamp] should be ISO 8601 UTC");
		return FQC_ERR_PARAM;
	}
	if (ts > now / 1000 + cfg.time_skew_max_s || ts < now / 1000 - cfg.time_skew_max_s) {
		snprintf(msg, msglen, "RequestExpired, the request time_stamp [%s] has expired",
			 fqc_param_get(r, "time_stamp"));
		return FQC_ERR_EXPIRED;
	}
	v = fqc_param_get(r, "access_key_id");
	if (strcmp(v, cfg.access_key_id) != 0) {
		snprintf(msg, msglen, "AuthFailure, access key [%.64s] does not exist", v);
		return FQC_ERR_AUTH;
	}
	if (!signature_ok(r, method, path, fqc_param_get(r, "signature"))) {
		snprintf(msg, msglen, "AuthFailure, the signature does not match");
		return FQC_ERR_AUTH;
	}
	return 0;
}

/* --- the call log and --fail-rate ---------------------------------------- */

static void
log_call(const struct fqc_req *r, const char *user_agent, int64_t t_ms, int ret_code)
{
	json_t *line, *params;
	char ua[201];
	size_t i, n = 0;
	char *s;

	if (call_log == NULL)
		return;
	params = json_object();
	for (i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].key, "login_passwd") == 0) /* a secret: never logged */
			json_object_set_new(params, r->params[i].key, json_string("<redacted>"));
		else if (strcmp(r->params[i].key, "signature") != 0)
			json_object_set_new(params, r->params[i].key,
					    json_string_nocheck(r->params[i].value));
	/* the client's User-Agent, as a cloud's request log has it: printable
	 * ASCII, at most 200 bytes */
	for (i = 0; user_agent != NULL && user_agent[i] && n < sizeof(ua) - 1; i++)
		ua[n++] = user_agent[i] >= 0x20 && user_agent[i] < 0x7f ? user_agent[i] : '?';
	ua[n] = '\0';
	line = json_pack("{s:I, s:s, s:o, s:i, s:s}", "time_ms", (json_int_t)t_ms, "action",
			 fqc_param_get(r, "action"), "params", params, "ret_code", ret_code,
			 "user_agent", ua);
	s = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
	pthread_mutex_lock(&log_lock);
	if (s != NULL) {
		fputs(s, call_log);
		fputc('\n', call_log);
		fflush(call_log);
	}
	pthread_mutex_unlock(&log_lock);
	free(s);
	json_decref(line);
}

/* xorshift64*: deterministic for a given --fail-seed and call order. */
static bool
should_fail(const char *action)
{
	uint64_t x;
	bool fail;

	if (cfg.fail_rate_pct == 0)
		return false;
	if (cfg.fail_actions != NULL) {
		/* a comma-separated list of whole action names */
		size_t n = strlen(action);
		const char *p;

		for (p = strstr(cfg.fail_actions, action); p; p = strstr(p + 1, action))
			if ((p == cfg.fail_actions || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
				break;
		if (p == NULL)
			return false;
	}
	pthread_mutex_lock(&log_lock);
	x = fail_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	fail_state = x;
	fail = (x * 2685821657736338717ULL) % 100 < cfg.fail_rate_pct;
	pthread_mutex_unlock(&log_lock);
	return fail;
}

/* --delay-action: holds the answer to ACTION (the call already ran and is
 * logged) for its delay, in steps so a SIGTERM is not kept waiting. */
static void
delay_answer(const char *action)
{
	int64_t until = -1;

	for (size_t i = 0; action != NULL && i < cfg.ndelays; i++)
		if (strcmp(cfg.delays[i].action, action) == 0)
			until = now_ms() + cfg.delays[i].ms;
	while (until >= 0 && !stopping && now_ms() < until) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
}

/* --- HTTP ---------------------------------------------------------------- */

static enum MHD_Result
respond(struct MHD_Connection *con, unsigned status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *res;
	enum MHD_Result ret;

	res = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(res, "Content-Type", "application/json");
	ret = MHD_queue_response(con, status, res);
	MHD_destroy_response(res);
	return ret;
}

static json_t *
error_body(const char *action, int code, const char *msg)
{
	char a[160];

	snprintf(a, sizeof(a), "%.140sResponse", action ? action : "");
	return json_pack("{s:s, s:i, s:s}", "action", a, "ret_code", code, "message", msg);
}

static void
handle(struct MHD_Connection *con, const char *method, const char *url, struct fqc_req *r,
       unsigned *status, json_t **body)
{
	char msg[512];
	int64_t t = now_ms();
	const char *action;
	int code;

	*status = MHD_HTTP_OK;
	if (r->too_big || r->too_many) {
		*status = MHD_HTTP_CONTENT_TOO_LARGE;
		*body = error_body(
			NULL, FQC_ERR_PARAM,
			"InvalidRequest, the request has too many or too large parameters");
		return;
	}
	code = authenticate(r, method, url, t, msg, sizeof(msg));
	action = fqc_param_get(r, "action");
	if (code != 0) {
		*body = error_body(action, code, msg);
		return;
	}
	if (should_fail(action)) {
		code = FQC_ERR_BUSY;
		*body = error_body(action, code,
				   "ServerBusy, the server is busy, please retry later");
	} else {
		*body = json_object();
		code = world_call(world, r, t, *body);
	}
	log_call(r, MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT), t,
		 code);
	delay_answer(action);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct conn *c = *con_cls;
	unsigned status;
	json_t *body;
	enum MHD_Result ret;

	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return MHD_NO;
		c->req = calloc(1, sizeof(*c->req));
		if (c->req == NULL) {
			free(c);
			return MHD_NO;
		}
		*con_cls = c;
		if (strcmp(method, "POST") == 0)
			c->pp = MHD_create_post_processor(con, 16 * 1024, post_iter, c);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		c->req->body_bytes += *upload_data_size;
		if (c->req->body_bytes > FQC_MAX_BODY)
			c->req->too_big = true;
		else if (c->pp != NULL)
			MHD_post_process(c->pp, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	conn_flush(c);
	if (strncmp(url, "/iaas", 5) != 0) {
		body = error_body(NULL, FQC_ERR_PARAM, "InvalidRequest, no such path");
		ret = respond(con, MHD_HTTP_NOT_FOUND, body);
		json_decref(body);
		return ret;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
		body = error_body(NULL, FQC_ERR_PARAM, "InvalidRequest, GET or POST only");
		ret = respond(con, MHD_HTTP_METHOD_NOT_ALLOWED, body);
		json_decref(body);
		return ret;
	}
	MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, get_iter, c->req);
	handle(con, method, url, c->req, &status, &body);
	ret = respond(con, status, body);
	json_decref(body);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;

	if (c == NULL)
		return;
	if (c->pp != NULL)
		MHD_destroy_post_processor(c->pp);
	free(c->cur_key);
	free(c->cur_val);
	req_free(c->req);
	free(c);
	*con_cls = NULL;
}

static void *
ticker(void *arg)
{
	while (!stopping) {
		world_tick(world, now_ms());
		usleep(50 * 1000);
	}
	return NULL;
}

static void
parse_listen(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		goto bad;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		goto bad;
	sa->sin_port = htons((uint16_t)port);
	return;
bad:
	fprintf(stderr, "fake-qingcloud: invalid --listen '%s': want IPv4:PORT\n", s);
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	pthread_t tick;
	sigset_t set;
	char err[512];
	int sig;

	if (sodium_init() < 0)
		return 1;
	parse_args(argc, argv);
	parse_listen(cfg.listen, &sa);
	fail_state = cfg.fail_seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
	if (fail_state == 0)
		fail_state = 1;
	if (mkdir(cfg.state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "fake-qingcloud: cannot create --state-dir '%s': %s\n",
			cfg.state_dir, strerror(errno));
		return 2;
	}
	if (cfg.call_log != NULL && (call_log = fopen(cfg.call_log, "a")) == NULL) {
		fprintf(stderr, "fake-qingcloud: cannot open --call-log '%s': %s\n", cfg.call_log,
			strerror(errno));
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* an instance's init outlives the short-lived parent that forked it: adopt it */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	world = world_new(&cfg, err, sizeof(err));
	if (world == NULL) {
		fprintf(stderr, "fake-qingcloud: %s\n", err);
		return 2;
	}
	d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			     on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE, 4U, MHD_OPTION_NOTIFY_COMPLETED,
			     on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30U,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
			     MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "fake-qingcloud: cannot listen on '%s'\n", cfg.listen);
		world_shutdown(world);
		return 1;
	}
	pthread_create(&tick, NULL, ticker, NULL);
	fprintf(stderr, "fake-qingcloud: listening on %s, names prefixed fq%s\n", cfg.listen,
		cfg.name_prefix);
	sigwait(&set, &sig);
	stopping = 1;
	MHD_stop_daemon(d);
	pthread_join(tick, NULL);
	world_shutdown(world);
	world_free(world);
	if (call_log != NULL)
		fclose(call_log);
	return 0;
}
