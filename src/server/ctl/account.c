/* ctl/account.c - what the controller does for an account on request:
 * `herd account check` (POST /v1/accounts/:name/check) opens the account's
 * driver on a struct prov of its own (never the controller's, which its
 * thread owns) and asks it whether the account works (prov_check). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "model/kind.h"
#include "model/res.h"
#include "prov/prov.h"

int
ctl_account_check(struct server *s, const char *name, json_t **out, struct herr *err)
{
	struct prov p;
	struct res r = { 0 };
	const struct prov_ops *ops;
	const char *driver;
	struct herr e = HERR_INIT;
	char msg[512] = "";
	int rc;

	*out = NULL;
	if ((rc = res_get(s->store, &kind_account, "", name, &r, err)) < 0)
		return rc;
	driver = json_string_value(json_object_get(r.spec, "driver"));
	if ((ops = prov_find(driver ? driver : "")) == NULL) {
		rc = herr_set(err, -ENOTSUP,
			      "driver '%s' of account '%s' is not built into this herd",
			      driver ? driver : "", name);
		goto out;
	}
	memset(&p, 0, sizeof(p));
	snprintf(p.account, sizeof(p.account), "%s", name);
	snprintf(p.instance, sizeof(p.instance), "%s", s->instance);
	snprintf(p.data_dir, sizeof(p.data_dir), "%s", s->data_dir);
	p.config = r.spec;
	/* the provider's refusal is the answer, not a failure of the request:
	 * QingCloud's 1200 must not reach the client as herd's own 401 */
	if ((rc = prov_open(&p, ops, &e)) == 0) {
		rc = prov_check(&p, msg, sizeof(msg), &e);
		prov_close(&p);
	}
	*out = json_pack("{s:s, s:s, s:b, s:s}", "account", name, "driver", ops->name, "ok",
			 rc == 0, "message", rc == 0 ? msg : e.msg);
	if (*out == NULL) {
		rc = herr_set(err, HERR_UNAVAIL, "the provider's answer is not valid UTF-8");
		goto out;
	}
	if (rc < 0) {
		json_object_set_new(*out, "code", json_string(herr_word(rc)));
		if (e.field[0])
			json_object_set_new(*out, "field", json_string(e.field));
	}
	rc = 0;
out:
	res_release(&r);
	return rc;
}
