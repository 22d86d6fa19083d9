/* ipmap.c - a network's addresses in use (see ipmap.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipmap.h"
#include "xalloc.h"

void
ipmap_init(struct ipmap *m, const char *net, uint32_t base, uint32_t mask)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->net, sizeof(m->net), "%s", net);
	m->base = base & mask;
	m->mask = mask;
	m->size = ~mask + 1;   /* 0 for a /0: nothing to hand out */
	m->low = 2;            /* past the network address and the gateway */
	m->bits = xcalloc(m->size / 8 + 1, 1);
}

static int
used(const struct ipmap *m, uint32_t off)
{
	return m->bits[off / 8] >> (off % 8) & 1;
}

void
ipmap_mark(struct ipmap *m, const char *ip)
{
	struct in_addr a;
	uint32_t h;

	if (ip == NULL || inet_pton(AF_INET, ip, &a) != 1)
		return;
	h = ntohl(a.s_addr);
	if ((h & m->mask) != m->base || h - m->base >= m->size)
		return;
	m->bits[(h - m->base) / 8] |= (unsigned char)(1u << ((h - m->base) % 8));
}

int
ipmap_take(struct ipmap *m, char *out, size_t n)
{
	/* low only grows: taking is O(1) amortised over a pass */
	for (; m->size > 0 && m->low + 1 < m->size; m->low++) {
		if (!used(m, m->low)) {
			struct in_addr a = { htonl(m->base + m->low) };

			m->bits[m->low / 8] |= (unsigned char)(1u << (m->low % 8));
			inet_ntop(AF_INET, &a, out, (socklen_t)n);
			m->low++;
			return 0;
		}
	}
	return -1;
}

void
ipmap_free(struct ipmap *m)
{
	free(m->bits);
	m->bits = NULL;
}
