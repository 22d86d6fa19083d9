/* col-net.c - per interface rx/tx bytes/s and errors/s from the deltas of
 * /proc/net/dev. The file shows the agent's own network namespace, so in a
 * local host these are the host's own eth0 and lo: scope="host". */
#include <string.h>
#include <unistd.h>

#include "agent/col.h"
#include "herr.h"
#include "log.h"

static int net_fd = -1;
static char net_text[16384];
static struct col_net_dev net_a[COL_NET_MAX], net_b[COL_NET_MAX];
static struct col_net_dev *net_prev = net_a, *net_cur = net_b;
static int net_nprev = -1;          /* -1: no sample yet */
static int64_t net_prev_ms;
static bool net_capped_logged;

int
col_net_parse(const char *text, struct col_net_dev *out, size_t max)
{
	const char *line = text;
	size_t n = 0;
	bool any = false;

	while (line && *line) {
		const char *name = line, *nl = strchr(line, '\n'), *colon, *p;
		uint64_t f[16];
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		int i;

		colon = memchr(line, ':', len);
		line = nl ? nl + 1 : NULL;
		if (colon == NULL)
			continue;   /* the two header lines */
		while (*name == ' ')
			name++;
		len = (size_t)(colon - name);
		if (len == 0 || len >= COL_IFACE_MAX)
			continue;
		p = colon + 1;
		for (i = 0; i < 16; i++)
			if (!col_parse_u64(&p, &f[i]))
				break;
		if (i < 11)
			continue;
		any = true;
		if (n >= max)
			continue;   /* the first max are kept */
		memcpy(out[n].iface, name, len);
		out[n].iface[len] = '\0';
		out[n].rx_bytes = f[0];
		out[n].rx_errors = f[2];
		out[n].tx_bytes = f[8];
		out[n].tx_errors = f[10];
		n++;
	}
	return any ? (int)n : HERR_INVALID;
}

static const struct col_net_dev *
net_find_prev(const struct col_net_dev *d, int idx)
{
	/* interfaces rarely come and go: the same slot is almost always it */
	if (idx < net_nprev && strcmp(net_prev[idx].iface, d->iface) == 0)
		return &net_prev[idx];
	for (int i = 0; i < net_nprev; i++)
		if (strcmp(net_prev[i].iface, d->iface) == 0)
			return &net_prev[i];
	return NULL;
}

static int
net_sample(struct col_net_dev *into)
{
	if (col_read(net_fd, net_text, sizeof(net_text)) < 0)
		return -1;
	return col_net_parse(net_text, into, COL_NET_MAX);
}

static int
net_init(int64_t mono_ms)
{
	net_fd = col_open("/proc/net/dev");
	if (net_fd < 0)
		return net_fd;
	net_nprev = net_sample(net_prev);
	net_prev_ms = mono_ms;
	return 0;
}

static void
net_collect(struct col_batch *b, int64_t mono_ms)
{
	int n = net_sample(net_cur);
	int64_t dt = mono_ms - net_prev_ms;
	struct col_net_dev *t;

	if (n < 0)
		return;
	if (n == COL_NET_MAX && !net_capped_logged) {
		log_warn("%d or more network interfaces: only the first %d are reported",
			 COL_NET_MAX, COL_NET_MAX);
		net_capped_logged = true;
	}
	for (int i = 0; i < n && net_nprev >= 0; i++) {
		const struct col_net_dev *d = &net_cur[i], *p = net_find_prev(d, i);
		double rx, tx, rxe, txe;

		if (p == NULL)
			continue;   /* new interface: a rate next cycle */
		rx = col_rate(p->rx_bytes, d->rx_bytes, dt);
		tx = col_rate(p->tx_bytes, d->tx_bytes, dt);
		rxe = col_rate(p->rx_errors, d->rx_errors, dt);
		txe = col_rate(p->tx_errors, d->tx_errors, dt);
		if (rx < 0 || tx < 0 || rxe < 0 || txe < 0)
			continue;   /* counters reset: the interface was re-created */
		col_add(b, "net_rx_bytes_per_s", col_round(rx, 0), "scope", "host", "iface", d->iface);
		col_add(b, "net_tx_bytes_per_s", col_round(tx, 0), "scope", "host", "iface", d->iface);
		col_add(b, "net_rx_errors_per_s", col_round(rxe, 2), "scope", "host", "iface",
			d->iface);
		col_add(b, "net_tx_errors_per_s", col_round(txe, 2), "scope", "host", "iface",
			d->iface);
	}
	/* the labels point into net_cur: it stays untouched until the next cycle */
	t = net_prev;
	net_prev = net_cur;
	net_cur = t;
	net_nprev = n;
	net_prev_ms = mono_ms;
}

static void
net_release(void)
{
	if (net_fd >= 0)
		close(net_fd);
	net_fd = -1;
	net_nprev = -1;
}

const struct col_ops col_net_ops = {
	.name = "net",
	.init = net_init,
	.collect = net_collect,
	.release = net_release,
};
