/* sweep.c - herd server --teardown when the store cannot be opened (a
 * failed migration, a corrupt or newer herd.db, an unreachable database):
 * each provider driver that can find this data dir's hosts and networks on
 * its own (prov_ops.sweep: the local one) removes them; the others' (a
 * cloud's: its accounts and regions are in the store) cannot be found, and
 * the report says so rather than claiming them done. See ctl.h. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "prov/prov.h"
#include "server.h"

/* Appends a line to buf (len bytes, *off used so far), cut to fit. */
static void
report_line(char *buf, size_t len, size_t *off, const char *line)
{
	int w;

	if (*off + 1 >= len)
		return;
	w = snprintf(buf + *off, len - *off, "%s\n", line);
	*off += w > 0 ? (size_t)w : 0;
	if (*off >= len)
		*off = len - 1;
}

int
ctl_sweep_report(const struct ctl_sweep *r, size_t n, char *buf, size_t len)
{
	size_t off = 0;
	int rc = 0;
	bool unlooked = false;

	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char line[1024];

		if (!r[i].can) {
			unlooked = true;
			snprintf(line, sizeof(line),
				 "provider '%s': its hosts and networks cannot be found without the store"
				 " (which accounts and regions they are in is kept there): none was looked"
				 " for or removed, any this data dir made are still there", r[i].driver);
		} else if (r[i].rc < 0 || r[i].got.hosts_left || r[i].got.networks_left) {
			snprintf(line, sizeof(line),
				 "provider '%s': removed %u host(s) and %u network(s); could not remove"
				 " %u host(s) and %u network(s): %s", r[i].driver, r[i].got.hosts,
				 r[i].got.networks, r[i].got.hosts_left, r[i].got.networks_left,
				 r[i].msg);
			rc = 1;
		} else
			snprintf(line, sizeof(line), "provider '%s': removed %u host(s) and %u network(s)",
				 r[i].driver, r[i].got.hosts, r[i].got.networks);
		report_line(buf, len, &off, line);
	}
	/* unknown is not done: a driver that could not look leaves the
	 * teardown unconfirmed (3), below a failure to remove (1) */
	return rc ? rc : unlooked ? 3 : 0;
}

size_t
ctl_teardown_sweep(struct server *s, struct ctl_sweep *out, size_t max)
{
	const struct prov_ops *ops;
	size_t n = 0;

	for (size_t i = 0; (ops = prov_driver_at(i)) != NULL && n < max; i++) {
		struct ctl_sweep *r = &out[n++];
		struct herr e = HERR_INIT;
		struct prov p;

		memset(r, 0, sizeof(*r));
		snprintf(r->driver, sizeof(r->driver), "%s", ops->name);
		if (ops->sweep == NULL)
			continue;
		r->can = true;
		memset(&p, 0, sizeof(p));
		snprintf(p.instance, sizeof(p.instance), "%s", s->instance);
		snprintf(p.data_dir, sizeof(p.data_dir), "%s", s->data_dir);
		if (prov_open(&p, ops, &e) == 0)
			prov_sweep(&p, &r->got, &e);
		prov_close(&p);
		r->rc = e.code;
		snprintf(r->msg, sizeof(r->msg), "%s", e.msg);
	}
	return n;
}
