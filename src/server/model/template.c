/* model/template.c - the typed template (model/template.h), loaded from
 * its stored spec with json_unpack; the kind itself (fields, checks) is in
 * kind-template.c. */
#include <stdio.h>
#include <string.h>

#include "model/res.h"
#include "model/spec-read.h"
#include "model/template.h"

static const char *const template_types[] = {
	"account:s", "network:s", "load_balancer:s", "init:o", "image:s", "instance_type:s",
	"keypair:s", "security_group:s", "cpu:I", "memory:I", "limit_memory_mb:I",
	"limit_cpu_pct:I", "init_timeout:s", NULL,
};

int
template_from_spec(const char *name, const json_t *spec, struct template_spec *out,
		   struct herr *err)
{
	const char *acct = NULL, *net = NULL, *lb = NULL, *image = NULL, *itype = NULL;
	const char *keypair = NULL, *sg = NULL, *init_timeout = NULL;
	json_int_t cpu = 0, memory = 0, lim_mem = 0, lim_cpu = 0;
	json_t *init = NULL, *x;
	char what[100];
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "template '%s'", name ? name : "");
	if ((rc = spec_read_str(what, "name", name, out->name, sizeof(out->name), err)) < 0)
		return rc;
	if (json_unpack((json_t *)spec,
			"{s?s, s?s, s?s, s?o, s?s, s?s, s?s, s?s, s?I, s?I, s?I, s?I, s?s}",
			"account", &acct, "network", &net, "load_balancer", &lb, "init", &init,
			"image", &image, "instance_type", &itype, "keypair", &keypair,
			"security_group", &sg, "cpu", &cpu, "memory", &memory, "limit_memory_mb",
			&lim_mem, "limit_cpu_pct", &lim_cpu, "init_timeout", &init_timeout) < 0)
		return spec_read_fail(spec, what, template_types, err);
	out->cpu = spec_read_clamp(cpu);
	out->memory_mb = memory < 0 ? 0 : memory;
	out->limit_memory_mb = lim_mem < 0 ? 0 : lim_mem;
	out->limit_cpu_pct = spec_read_clamp(lim_cpu);
	if ((rc = spec_read_str(what, "account", acct, out->account, sizeof(out->account), err)) < 0 ||
	    (rc = spec_read_str(what, "network", net, out->network, sizeof(out->network), err)) < 0 ||
	    (rc = spec_read_str(what, "load_balancer", lb, out->load_balancer,
				sizeof(out->load_balancer), err)) < 0 ||
	    (rc = spec_read_str(what, "image", image, out->image, sizeof(out->image), err)) < 0 ||
	    (rc = spec_read_str(what, "instance_type", itype, out->instance_type,
				sizeof(out->instance_type), err)) < 0 ||
	    (rc = spec_read_str(what, "keypair", keypair, out->keypair, sizeof(out->keypair),
				err)) < 0 ||
	    (rc = spec_read_str(what, "security_group", sg, out->security_group,
				sizeof(out->security_group), err)) < 0 ||
	    (rc = spec_read_duration(what, "init_timeout", init_timeout, 0, &out->init_timeout_ms,
				     err)) < 0)
		return rc;
	if (init == NULL)
		return 0;
	if (!json_is_array(init))
		return herr_field(err, HERR_STORE, "init", "%s: stored 'init' is not a list", what);
	if (json_array_size(init) > TEMPLATE_INIT_MAX)
		return herr_field(err, HERR_STORE, "init", "%s: stored 'init' has %zu names (at most %d)",
				  what, json_array_size(init), TEMPLATE_INIT_MAX);
	json_array_foreach(init, i, x) {
		char f[32];

		snprintf(f, sizeof(f), "init[%zu]", i);
		if (!json_is_string(x))
			return herr_field(err, HERR_STORE, f, "%s: stored '%s' is not a string", what, f);
		if ((rc = spec_read_str(what, f, json_string_value(x), out->init[i],
					sizeof(out->init[i]), err)) < 0)
			return rc;
		out->ninit = (int)i + 1;
	}
	return 0;
}

int
template_get(struct store *st, const char *name, struct template_spec *out, struct herr *err)
{
	struct res r;
	int rc;

	if ((rc = res_get(st, &kind_template, "", name, &r, err)) < 0)
		return rc;
	rc = template_from_spec(r.name, r.spec, out, err);
	res_release(&r);
	return rc;
}
