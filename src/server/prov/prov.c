/* prov.c - the provider dispatcher: every call to a driver goes through here,
 * so logging, timing and fault injection live in one place. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "prov.h"
#include "util.h"

#define PROVIDER(n) extern const struct prov_ops prov_##n##_ops;
#include "providers.def"
#undef PROVIDER

static const struct prov_ops *const prov_table[] = {
#define PROVIDER(n) &prov_##n##_ops,
#include "providers.def"
#undef PROVIDER
};

const struct prov_ops *
prov_find(const char *driver)
{
	for (size_t i = 0; i < sizeof(prov_table) / sizeof(prov_table[0]); i++)
		if (strcmp(prov_table[i]->name, driver) == 0)
			return prov_table[i];
	return NULL;
}

const struct prov_ops *
prov_driver_at(size_t i)
{
	return i < sizeof(prov_table) / sizeof(prov_table[0]) ? prov_table[i] : NULL;
}

size_t
prov_names(char *buf, size_t n)
{
	size_t len = 0;

	if (n > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < sizeof(prov_table) / sizeof(prov_table[0]); i++) {
		int w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s%s",
				 i ? ", " : "", prov_table[i]->name);

		if (w > 0)
			len += (size_t)w;
	}
	return len;
}

int
prov_config_check(const struct prov_ops *ops, const json_t *config, const char *path,
		  struct herr *err)
{
	if (ops->config_check == NULL)
		return 0;
	return ops->config_check(config, path ? path : "", err);
}

/* How many times each named point was reached, for "@N" (first use wins a
 * slot; tests use a handful of names). */
static struct {
	char name[48];
	long hits;
} fp_hits[16];
static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fp_met = PTHREAD_COND_INITIALIZER;
static long fp_waiting, fp_round;   /* the one "wait:N" barrier (tests use one) */

#define FAILPOINT_WAIT_MS 30000

/* "wait:N": blocks until N callers are at the point at once (then all go
 * on, and the next N meet again), at most FAILPOINT_WAIT_MS; says which in
 * the log. Shows calls overlapping without measuring time: serial calls
 * never meet. */
static void
failpoint_barrier(const char *name, long n)
{
	int64_t deadline = mono_ms() + FAILPOINT_WAIT_MS;
	long round;

	pthread_mutex_lock(&fp_lock);
	round = fp_round;
	if (++fp_waiting >= n) {
		fp_waiting = 0;
		fp_round++;
		log_warn("failpoint '%s': %ld callers met", name, n);
		pthread_cond_broadcast(&fp_met);
	}
	while (fp_round == round && mono_ms() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&fp_met, &fp_lock, &ts);
	}
	if (fp_round == round) {
		fp_waiting--;
		log_warn("failpoint '%s': %ld callers did not meet within %d ms", name, n,
			 FAILPOINT_WAIT_MS);
	}
	pthread_mutex_unlock(&fp_lock);
}

static long
failpoint_hit(const char *name)
{
	long n = 0;

	pthread_mutex_lock(&fp_lock);
	for (size_t i = 0; i < sizeof(fp_hits) / sizeof(fp_hits[0]); i++) {
		if (fp_hits[i].name[0] == '\0')
			snprintf(fp_hits[i].name, sizeof(fp_hits[i].name), "%s", name);
		if (strcmp(fp_hits[i].name, name) == 0) {
			n = ++fp_hits[i].hits;
			break;
		}
	}
	pthread_mutex_unlock(&fp_lock);
	return n;
}

int
failpoint(const char *name, struct herr *err)
{
	const char *spec = getenv("HERD_FAILPOINTS");
	size_t n = strlen(name);
	const char *p, *at;
	long from = 1, hit;

	if (spec == NULL)
		return 0;
	for (p = strstr(spec, name); p; p = strstr(p + 1, name)) {
		if ((p != spec && p[-1] != ',') || p[n] != '=')
			continue;
		p += n + 1;
		/* "ACTION@N": only from the Nth time this point is reached */
		at = strchr(p, '@');
		if (at && (strchr(p, ',') == NULL || at < strchr(p, ',')))
			from = strtol(at + 1, NULL, 10);
		hit = failpoint_hit(name);
		if (hit < from)
			return 0;
		if (strncmp(p, "error", 5) == 0)
			return herr_set(err, HERR_UNAVAIL, "failpoint '%s' triggered", name);
		if (strncmp(p, "sleep:", 6) == 0) {
			long ms = str_long_or(p + 6, 0, 3600000, 0);

			log_warn("failpoint '%s': sleeping %ld ms (call %ld)", name, ms, hit);
			sleep_ms(ms);
		}
		if (strncmp(p, "wait:", 5) == 0)
			failpoint_barrier(name, strtol(p + 5, NULL, 10));
		if (strncmp(p, "exit", 4) == 0) {
			log_warn("failpoint '%s': exiting", name);
			_exit(99);
		}
		if (strncmp(p, "hang", 4) == 0) {
			/* a test waits for this line, then kills the server */
			log_warn("failpoint '%s': hanging (call %ld)", name, hit);
			for (;;)
				sleep_ms(1000);
		}
		return 0;
	}
	return 0;
}

#define CALL(p, op, what, ...)                                                     \
	do {                                                                       \
		int64_t t0_ = mono_ms();                                           \
		int rc_;                                                           \
		if ((p)->ops->op == NULL)                                          \
			return herr_set(err, -ENOTSUP, "provider '%s' cannot %s",  \
					(p)->ops->name, what);                     \
		if ((rc_ = failpoint("prov_" #op, err)) < 0)                       \
			return rc_;                                                \
		rc_ = (p)->ops->op(__VA_ARGS__);                                   \
		/* after a call that happened: a crash or a lost answer here */    \
		if (rc_ == 0)                                                      \
			rc_ = failpoint("prov_" #op "_done", err);                 \
		if (rc_ < 0)                                                       \
			log_warn("provider %s/%s: %s failed after %lld ms: %s",    \
				 (p)->ops->name, (p)->account, what,               \
				 (long long)(mono_ms() - t0_), err ? err->msg : ""); \
		else                                                               \
			log_debug("provider %s/%s: %s took %lld ms", (p)->ops->name, \
				  (p)->account, what, (long long)(mono_ms() - t0_)); \
		return rc_;                                                        \
	} while (0)

/* prov_gate_set's check: NULL = every call may go */
static bool (*prov_may_act)(void);

void
prov_gate_set(bool (*may_act)(void))
{
	__atomic_store_n(&prov_may_act, may_act, __ATOMIC_RELEASE);
}

/* Refuses a call that changes something when the gate says no. */
#define GATE(what)                                                                 \
	do {                                                                       \
		bool (*may_)(void) = __atomic_load_n(&prov_may_act, __ATOMIC_ACQUIRE); \
		if (may_ != NULL && !may_())                                       \
			return herr_set(err, HERR_FENCED, "not calling the provider to %s:" \
					" this server does not hold the controller lease", what); \
	} while (0)

int
prov_open(struct prov *p, const struct prov_ops *ops, struct herr *err)
{
	p->ops = ops;
	if (ops->open == NULL)
		return 0;
	return ops->open(p, err);
}

void
prov_close(struct prov *p)
{
	if (p->ops && p->ops->close)
		p->ops->close(p);
	p->priv = NULL;
}

int
prov_net_create(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	GATE("create network");
	CALL(p, net_create, "create network", p, net, err);
}

int
prov_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	GATE("delete network");
	CALL(p, net_delete, "delete network", p, net, err);
}

int
prov_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
	    struct herr *err)
{
	GATE("launch host");
	CALL(p, launch, "launch host", p, spec, out, err);
}

int
prov_terminate(struct prov *p, const char *instance_id, const char *host_id, struct herr *err)
{
	GATE("terminate host");
	CALL(p, terminate, "terminate host", p, instance_id, host_id, err);
}

int
prov_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err)
{
	CALL(p, list, "list hosts", p, out, n, err);
}

int
prov_sweep(struct prov *p, struct prov_sweep *out, struct herr *err)
{
	GATE("sweep hosts");
	CALL(p, sweep, "sweep hosts", p, out, err);
}

int
prov_check(struct prov *p, char *msg, size_t msg_len, struct herr *err)
{
	if (p->ops->check == NULL) {
		snprintf(msg, msg_len, "provider '%s' needs no check", p->ops->name);
		return 0;
	}
	CALL(p, check, "check the account", p, msg, msg_len, err);
}

long
prov_hosts_left(const struct prov_ops *ops, char *why, size_t why_len)
{
	if (why_len > 0)
		why[0] = '\0';
	return ops->hosts_left ? ops->hosts_left(why, why_len) : -1;
}

long
prov_instance_adopt(const struct prov_instance *list, size_t n, const char *host_id)
{
	for (size_t k = 0; k < n; k++) {
		if (strcmp(list[k].host_id, host_id) != 0)
			continue;
		if (strcmp(list[k].state, "running") == 0 || strcmp(list[k].state, "pending") == 0)
			return (long)k;
	}
	return -1;
}

void
prov_net_id(const char *instance, const char *name, char *out, size_t n)
{
	char buf[256], hash[65];

	snprintf(buf, sizeof(buf), "%s/%s", instance, name);
	sha256_hex(buf, strlen(buf), hash);
	snprintf(out, n, "%.8s", hash);
}

int
prov_server_url_check(const char *url, struct herr *err)
{
	const char *p, *host;
	size_t hlen;

	if (url == NULL || *url == '\0')
		return herr_set(err, HERR_INVALID, "is empty");
	if (strlen(url) >= PROV_URL_MAX)
		return herr_set(err, HERR_INVALID, "is longer than %d bytes", PROV_URL_MAX - 1);
	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return herr_set(err, HERR_INVALID, "'%s' is not an http:// or https:// URL", url);
	if (*host == '[') {
		hlen = strspn(host + 1, "0123456789abcdefABCDEF:.");
		if (hlen == 0 || host[1 + hlen] != ']')
			return herr_set(err, HERR_INVALID, "'%s' has no valid [IPv6] address", url);
		p = host + hlen + 2;
	} else {
		hlen = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (hlen == 0)
			return herr_set(err, HERR_INVALID, "'%s' has no host", url);
		p = host + hlen;
	}
	if (*p == ':') {
		size_t d = strspn(p + 1, "0123456789");
		long port = d > 0 && d <= 5 ? strtol(p + 1, NULL, 10) : 0;

		if (port < 1 || port > 65535)
			return herr_set(err, HERR_INVALID, "'%s' has no valid port (1-65535)", url);
		p += 1 + d;
	}
	if (*p != '\0' && *p != '/')
		return herr_set(err, HERR_INVALID, "'%s': unexpected '%c' after the host", url, *p);
	for (; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\"'\\?#@<>`", *p))
			return herr_set(err, HERR_INVALID, "'%s': character '%c' not allowed in the path",
					url, *p > ' ' && *p < 0x7f ? *p : '?');
	return 0;
}

static int
fwd_port(const json_t *v, int dflt, int *out)
{
	if (v == NULL && dflt > 0) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		return -1;
	*out = (int)json_integer_value(v);
	return 0;
}

int
prov_forwards_from_json(const json_t *list, const char *cidr, struct prov_forward *out, size_t *n,
			struct herr *err)
{
	uint32_t base = 0, mask, a;
	struct in_addr in;
	int prefix = 32;
	const char *key;
	json_t *f, *v;
	size_t i;

	*n = 0;
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return herr_field(err, HERR_INVALID, "port_forwards",
				  "must be a list of {port, to, to_port, protocol}");
	if (json_array_size(list) > PROV_FORWARDS_MAX)
		return herr_field(err, HERR_INVALID, "port_forwards", "must have at most %d items",
				  PROV_FORWARDS_MAX);
	if (cidr && net_cidr_parse(cidr, &base, &prefix, err) < 0)
		return herr_field(err, HERR_INVALID, "cidr", "is not a valid network");
	mask = prefix > 0 ? 0xffffffffu << (32 - prefix) : 0;
	json_array_foreach(list, i, f) {
		struct prov_forward *o = &out[i];
		const char *to, *proto;
		char fp[64];

		memset(o, 0, sizeof(*o));
		snprintf(fp, sizeof(fp), "port_forwards[%zu]", i);
		if (!json_is_object(f))
			return herr_field(err, HERR_INVALID, fp,
					  "must be a mapping {port, to, to_port, protocol}");
		json_object_foreach(f, key, v) {
			if (strcmp(key, "port") && strcmp(key, "to") && strcmp(key, "to_port") &&
			    strcmp(key, "protocol")) {
				snprintf(fp, sizeof(fp), "port_forwards[%zu].%.20s", i, key);
				return herr_field(
					err, HERR_INVALID, fp,
					"unknown field: a port forward takes port, to, to_port, protocol");
			}
		}
		snprintf(fp, sizeof(fp), "port_forwards[%zu].port", i);
		if (fwd_port(json_object_get(f, "port"), 0, &o->port) < 0)
			return herr_field(err, HERR_INVALID, fp, "must be a port 1-65535");
		snprintf(fp, sizeof(fp), "port_forwards[%zu].to_port", i);
		if (fwd_port(json_object_get(f, "to_port"), o->port, &o->to_port) < 0)
			return herr_field(err, HERR_INVALID, fp, "must be a port 1-65535");
		snprintf(fp, sizeof(fp), "port_forwards[%zu].to", i);
		to = json_string_value(json_object_get(f, "to"));
		if (to == NULL || strlen(to) >= sizeof(o->to) || inet_pton(AF_INET, to, &in) != 1)
			return herr_field(
				err, HERR_INVALID, fp,
				"must be a private IPv4 address inside the network, like 198.18.10.5");
		a = ntohl(in.s_addr);
		if (cidr &&
		    ((a & mask) != base || a == base || a == (base | ~mask) || a == base + 1))
			return herr_field(err, HERR_INVALID, fp,
					  "'%s' is not a host address of the network's cidr %s", to,
					  cidr);
		snprintf(o->to, sizeof(o->to), "%s", to);
		snprintf(fp, sizeof(fp), "port_forwards[%zu].protocol", i);
		v = json_object_get(f, "protocol");
		proto = v ? json_string_value(v) : "tcp";
		if (proto == NULL || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0))
			return herr_field(err, HERR_INVALID, fp, "must be tcp or udp");
		snprintf(o->protocol, sizeof(o->protocol), "%s", proto);
		for (size_t k = 0; k < i; k++)
			if (out[k].port == o->port && strcmp(out[k].protocol, o->protocol) == 0) {
				snprintf(fp, sizeof(fp), "port_forwards[%zu].port", i);
				return herr_field(err, HERR_INVALID, fp,
						  "%d/%s is already forwarded by port_forwards[%zu]",
						  o->port, o->protocol, k);
			}
	}
	*n = json_array_size(list);
	return 0;
}
