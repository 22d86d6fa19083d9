/* lb.c - the load balancer dispatcher: every call to a driver goes through
 * here, so logging, timing and fault injection (HERD_FAILPOINTS, shared with
 * the providers: "lb_add_backend=error") live in one place. Also turns a
 * stored LB resource into the struct lb_spec drivers read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"
#include "log.h"
#include "prov/prov.h"
#include "util.h"

#define LB_DRIVER(n, prov) extern const struct lb_ops lb_##n##_ops;
#include "lbs.def"
#undef LB_DRIVER

static const struct lb_ops *const lb_table[] = {
#define LB_DRIVER(n, prov) &lb_##n##_ops,
#include "lbs.def"
#undef LB_DRIVER
};

#define LB_NDRIVERS (sizeof(lb_table) / sizeof(lb_table[0]))

const struct lb_ops *
lb_find(const char *driver)
{
	for (size_t i = 0; driver && i < LB_NDRIVERS; i++)
		if (strcmp(lb_table[i]->name, driver) == 0)
			return lb_table[i];
	return NULL;
}

const struct lb_ops *
lb_find_for_provider(const char *provider)
{
	for (size_t i = 0; provider && i < LB_NDRIVERS; i++)
		if (strcmp(lb_table[i]->provider, provider) == 0)
			return lb_table[i];
	return NULL;
}

const struct lb_ops *
lb_driver_at(size_t i)
{
	return i < LB_NDRIVERS ? lb_table[i] : NULL;
}

/* Failures are logged as warnings, except for reads (quiet: they repeat on
 * every pass while a problem lasts, and lb-sync reports it once). */
#define CALL_(l, op, what, quiet, ...)                                                \
	do {                                                                          \
		int64_t t0_ = mono_ms();                                              \
		int rc_;                                                              \
		if ((l)->ops->op == NULL)                                             \
			return herr_set(err, -ENOTSUP, "load balancer driver '%s' cannot %s", \
					(l)->ops->name, what);                        \
		if ((rc_ = failpoint("lb_" #op, err)) < 0)                            \
			return rc_;                                                   \
		rc_ = (l)->ops->op(__VA_ARGS__);                                      \
		if (rc_ < 0)                                                          \
			log_msg(quiet ? LOG_DEBUG : LOG_WARN, "lb %s: %s failed after %lld ms: %s", \
				(l)->ops->name, what, (long long)(mono_ms() - t0_),   \
				err ? err->msg : "");                                 \
		else                                                                  \
			log_debug("lb %s: %s took %lld ms", (l)->ops->name, what,     \
				  (long long)(mono_ms() - t0_));                      \
		return rc_;                                                           \
	} while (0)
#define CALL(l, op, what, ...) CALL_(l, op, what, false, __VA_ARGS__)
#define CALL_QUIET(l, op, what, ...) CALL_(l, op, what, true, __VA_ARGS__)

/* lb_gate_set's check: NULL = every call may go */
static bool (*lb_may_act)(void);

void
lb_gate_set(bool (*may_act)(void))
{
	__atomic_store_n(&lb_may_act, may_act, __ATOMIC_RELEASE);
}

/* Refuses a call that changes something when the gate says no. */
#define GATE(what)                                                                 \
	do {                                                                       \
		bool (*may_)(void) = __atomic_load_n(&lb_may_act, __ATOMIC_ACQUIRE); \
		if (may_ != NULL && !may_())                                       \
			return herr_set(err, HERR_FENCED, "not calling the load balancer to %s:" \
					" this server does not hold the controller lease", what); \
	} while (0)

int
lb_open(struct lb *l, const struct lb_ops *ops, struct herr *err)
{
	l->ops = ops;
	if (ops->open == NULL)
		return 0;
	return ops->open(l, err);
}

void
lb_close(struct lb *l)
{
	if (l->ops && l->ops->close)
		l->ops->close(l);
	l->priv = NULL;
}

int
lb_ensure(struct lb *l, const struct lb_spec *spec, struct herr *err)
{
	GATE("ensure a load balancer");
	CALL(l, ensure, "ensure a load balancer", l, spec, err);
}

int
lb_destroy(struct lb *l, const char *lb, struct herr *err)
{
	GATE("destroy a load balancer");
	CALL(l, destroy, "destroy a load balancer", l, lb, err);
}

int
lb_list(struct lb *l, char (**names)[64], size_t *n, struct herr *err)
{
	CALL_QUIET(l, list, "list load balancers", l, names, n, err);
}

int
lb_add_backend(struct lb *l, const char *lb, const struct lb_member *m, struct herr *err)
{
	GATE("add a backend");
	CALL(l, add_backend, "add a backend", l, lb, m, err);
}

int
lb_drain_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	GATE("drain a backend");
	CALL(l, drain_backend, "drain a backend", l, lb, member, err);
}

int
lb_remove_backend(struct lb *l, const char *lb, const char *member, struct herr *err)
{
	GATE("remove a backend");
	CALL(l, remove_backend, "remove a backend", l, lb, member, err);
}

int
lb_apply(struct lb *l, struct herr *err)
{
	GATE("apply");
	CALL(l, apply, "apply", l, err);
}

int
lb_list_backends(struct lb *l, const char *lb, struct lb_backend **out, size_t *n,
		 struct herr *err)
{
	CALL_QUIET(l, list_backends, "list backends", l, lb, out, n, err);
}

int
lb_health(struct lb *l, struct lb_health *out, struct herr *err)
{
	CALL_QUIET(l, health, "check health", l, out, err);
}

int
lb_teardown(struct lb *l, struct herr *err)
{
	if (l->ops->teardown == NULL)
		return 0;
	CALL(l, teardown, "tear down", l, err);
}

int
lb_address(struct lb *l, const char *lb, char *out, size_t n, struct herr *err)
{
	if (n > 0)
		out[0] = '\0';
	if (l->ops->address == NULL)
		return 0;
	CALL_QUIET(l, address, "read an address", l, lb, out, n, err);
}

const char *
lb_intent_name(enum lb_intent i)
{
	switch (i) {
	case LBI_JOINING: return "joining";
	case LBI_ACTIVE: return "active";
	case LBI_DRAINING: return "draining";
	}
	return "?";
}

const char *
lb_bstate_name(enum lb_bstate s)
{
	switch (s) {
	case LBB_UP: return "up";
	case LBB_DOWN: return "down";
	case LBB_DRAIN: return "drain";
	case LBB_MAINT: return "maint";
	}
	return "?";
}

bool
lb_health_path_valid(const char *p)
{
	if (p == NULL || p[0] != '/' || strlen(p) >= sizeof(((struct lb_check *)0)->path))
		return false;
	for (; *p; p++)
		if (*p <= ' ' || *p >= 127 || *p == '"' || *p == '\'' || *p == '\\' || *p == '#')
			return false;
	return true;
}

/* A duration field of an LB spec: absent -> dflt; otherwise it must parse
 * and lie in [min_ms, max_ms]. */
static int
lb_duration(const json_t *o, const char *key, const char *field, int64_t dflt, int64_t min_ms,
	    int64_t max_ms, int64_t *out, struct herr *err)
{
	const json_t *j = json_object_get(o, key);
	char lo[32], hi[32];

	*out = dflt;
	if (j == NULL || json_is_null(j))
		return 0;
	if (!json_is_string(j) || parse_duration_ms(json_string_value(j), out) < 0)
		return herr_field(err, HERR_INVALID, field,
				  "must be a duration like '500ms', '2s' or '1m30s'");
	if (*out < min_ms || *out > max_ms)
		return herr_field(err, HERR_INVALID, field, "must be between %s and %s",
				  fmt_duration(min_ms, lo, sizeof(lo)), fmt_duration(max_ms, hi, sizeof(hi)));
	return 0;
}

/* "auto", or "eip-" then 1 to 24 lowercase letters and digits. */
static bool
eip_valid(const char *v)
{
	size_t n;

	if (strcmp(v, "auto") == 0)
		return true;
	if (strncmp(v, "eip-", 4) != 0 || (n = strlen(v + 4)) == 0 || n > 24)
		return false;
	for (v += 4; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9')))
			return false;
	return true;
}

int
lb_spec_from_json(const char *name, const json_t *j, struct lb_spec *spec, struct herr *err)
{
	const json_t *hc = json_object_get(j, "health_check");
	const char *v;

	memset(spec, 0, sizeof(*spec));
	if (!name_is_valid(name) || strlen(name) >= sizeof(spec->name))
		return herr_field(err, HERR_INVALID, "name", "invalid load balancer name '%s'", name);
	snprintf(spec->name, sizeof(spec->name), "%s", name);
	v = json_string_value(json_object_get(j, "listen"));
	if (!ipv4_port_valid(v) || strlen(v) >= sizeof(spec->listen))
		return herr_field(err, HERR_INVALID, "listen", "invalid listen address '%s'", v ? v : "");
	snprintf(spec->listen, sizeof(spec->listen), "%s", v);
	spec->backend_port = (int)json_integer_value(json_object_get(j, "backend_port"));
	if (spec->backend_port < 1 || spec->backend_port > 65535)
		return herr_field(err, HERR_INVALID, "backend_port", "must be between 1 and 65535");
	v = json_string_value(json_object_get(j, "mode"));
	snprintf(spec->mode, sizeof(spec->mode), "%s", v ? v : "tcp");
	if (strcmp(spec->mode, "tcp") != 0 && strcmp(spec->mode, "http") != 0)
		return herr_field(err, HERR_INVALID, "mode", "'%s' is not tcp or http", spec->mode);
	v = json_string_value(json_object_get(j, "algorithm"));
	snprintf(spec->algorithm, sizeof(spec->algorithm), "%s", v ? v : "roundrobin");
	if (strcmp(spec->algorithm, "roundrobin") != 0 && strcmp(spec->algorithm, "leastconn") != 0 &&
	    strcmp(spec->algorithm, "source") != 0)
		return herr_field(err, HERR_INVALID, "algorithm", "'%s' is not roundrobin, leastconn or source",
				  spec->algorithm);
	v = json_string_value(json_object_get(hc, "type"));
	if (v == NULL)
		v = json_object_get(hc, "path") ? "http" : "tcp";
	snprintf(spec->check.type, sizeof(spec->check.type), "%s", v);
	if (strcmp(v, "http") == 0) {
		v = json_string_value(json_object_get(hc, "path"));
		snprintf(spec->check.path, sizeof(spec->check.path), "%s", v ? v : "/");
		if (!lb_health_path_valid(spec->check.path))
			return herr_field(err, HERR_INVALID, "health_check.path",
					  "must start with '/' and hold no spaces, quotes or '#'");
		spec->check.expect = (int)json_integer_value(json_object_get(hc, "expect"));
		if (spec->check.expect != 0 && (spec->check.expect < 100 || spec->check.expect > 599))
			return herr_field(err, HERR_INVALID, "health_check.expect", "must be an HTTP status");
	} else if (strcmp(v, "tcp") != 0) {
		return herr_field(err, HERR_INVALID, "health_check.type", "'%s' is not tcp or http", v);
	}
	if (lb_duration(hc, "interval", "health_check.interval", LB_DEFAULT_CHECK_MS, LB_MIN_CHECK_MS,
			LB_MAX_CHECK_MS, &spec->check.interval_ms, err) < 0 ||
	    lb_duration(j, "drain_timeout", "drain_timeout", LB_DEFAULT_DRAIN_MS, 0, LB_MAX_DRAIN_MS,
			&spec->drain_timeout_ms, err) < 0)
		return err->code;
	v = json_string_value(json_object_get(j, "network"));
	snprintf(spec->network, sizeof(spec->network), "%s", v ? v : "");
	if ((v = json_string_value(json_object_get(j, "eip"))) != NULL && !eip_valid(v))
		return herr_field(err, HERR_INVALID, "eip",
				  "'%s' is not \"auto\" or an EIP id (eip-...)", v);
	snprintf(spec->eip, sizeof(spec->eip), "%s", v ? v : "");
	return 0;
}
