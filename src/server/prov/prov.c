/* prov.c - the provider dispatcher: every call to a driver goes through here,
 * so logging, timing and fault injection live in one place. */
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

int
failpoint(const char *name, struct herr *err)
{
	const char *spec = getenv("HERD_FAILPOINTS");
	size_t n = strlen(name);
	const char *p;

	if (spec == NULL)
		return 0;
	for (p = strstr(spec, name); p; p = strstr(p + 1, name)) {
		if ((p != spec && p[-1] != ',') || p[n] != '=')
			continue;
		p += n + 1;
		if (strncmp(p, "error", 5) == 0)
			return herr_set(err, HERR_UNAVAIL, "failpoint '%s' triggered", name);
		if (strncmp(p, "sleep:", 6) == 0)
			sleep_ms(atoll(p + 6));
		if (strncmp(p, "exit", 4) == 0) {
			log_warn("failpoint '%s': exiting", name);
			_exit(99);
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
	CALL(p, net_create, "create network", p, net, err);
}

int
prov_net_delete(struct prov *p, const struct prov_net_spec *net, struct herr *err)
{
	CALL(p, net_delete, "delete network", p, net, err);
}

int
prov_launch(struct prov *p, const struct host_spec *spec, struct prov_instance *out,
	    struct herr *err)
{
	CALL(p, launch, "launch host", p, spec, out, err);
}

int
prov_terminate(struct prov *p, const char *instance_id, const char *host_id, struct herr *err)
{
	CALL(p, terminate, "terminate host", p, instance_id, host_id, err);
}

int
prov_list(struct prov *p, struct prov_instance **out, size_t *n, struct herr *err)
{
	CALL(p, list, "list hosts", p, out, n, err);
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
