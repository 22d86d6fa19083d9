/* netlink.c - rtnetlink helpers for the local provider, hand-written on
 * libnl-route-3 because no packaged library wraps netns creation and the
 * bridge/veth plumbing around it (and running `ip` costs a fork+exec per
 * step). Each helper is one or two netlink round trips (the *_index ones,
 * given the link's index, one); libnl's -NLE_* codes
 * become -errno values here. See netlink.h. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "netlink.h"

/* libnl error -> -errno, for the codes callers branch on. */
static int
nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0: return 0;
	case NLE_EXIST: return -EEXIST;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND: return -ENODEV;
	case NLE_PERM: return -EPERM;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_INVAL: return -EINVAL;
	case NLE_BUSY: return -EBUSY;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_NOADDR: return -EADDRNOTAVAIL;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	default: return -EIO;
	}
}

int
netlink_open(struct nl_sock **out, struct herr *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	*out = NULL;
	if (sk == NULL)
		return herr_set(err, -ENOMEM, "cannot allocate netlink socket");
	if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		nl_socket_free(sk);
		return herr_set(err, nle_errno(rc), "cannot open netlink socket: %s",
				nl_geterror(rc));
	}
	*out = sk;
	return 0;
}

int
netlink_open_in_netns(int ns_fd, struct nl_sock **out, struct herr *err)
{
	int self, rc;

	*out = NULL;
	/* thread-self: setns(CLONE_NEWNET) moves only the calling thread. */
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return herr_set(err, -errno, "cannot open own network namespace: %s",
				strerror(errno));
	if (setns(ns_fd, CLONE_NEWNET) < 0) {
		rc = -errno;
		close(self);
		return herr_set(err, rc, "cannot enter network namespace: %s", strerror(-rc));
	}
	rc = netlink_open(out, err);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Staying in a host's namespace would misdirect everything this
		 * thread does afterwards: there is no sane way to go on. */
		perror("herd: cannot return to own network namespace");
		abort();
	}
	close(self);
	return rc;
}

void
netlink_close(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
	*sk = NULL;
}

int
netlink_link_index(struct nl_sock *sk, const char *name, int *ifindex, struct herr *err)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, name, &link);

	if (rc < 0)
		return herr_set(err, nle_errno(rc), "cannot find link '%s': %s", name,
				nl_geterror(rc));
	*ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return 0;
}

/* Sets IFF_UP on `link` (as read from the kernel). */
static int
link_up(struct nl_sock *sk, struct rtnl_link *link, struct herr *err)
{
	struct rtnl_link *change;
	int rc;

	if (rtnl_link_get_flags(link) & IFF_UP)
		return 0;
	if ((change = rtnl_link_alloc()) == NULL)
		return herr_set(err, -ENOMEM, "cannot allocate link");
	rtnl_link_set_flags(change, IFF_UP);
	rc = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	if (rc < 0)
		return herr_set(err, nle_errno(rc), "cannot set link '%s' up: %s",
				rtnl_link_get_name(link), nl_geterror(rc));
	return 0;
}

int
netlink_link_set_up_index(struct nl_sock *sk, int ifindex, struct herr *err)
{
	struct rtnl_link *link, *change;
	int rc;

	link = rtnl_link_alloc();
	change = rtnl_link_alloc();
	if (link == NULL || change == NULL) {
		rc = herr_set(err, -ENOMEM, "cannot allocate link");
		goto out;
	}
	rtnl_link_set_ifindex(link, ifindex);
	rtnl_link_set_flags(change, IFF_UP);
	if ((rc = rtnl_link_change(sk, link, change, 0)) < 0)
		rc = herr_set(err, nle_errno(rc), "cannot set link #%d up: %s", ifindex,
			      nl_geterror(rc));
out:
	if (change)
		rtnl_link_put(change);
	if (link)
		rtnl_link_put(link);
	return rc;
}

int
netlink_link_set_up(struct nl_sock *sk, const char *name, struct herr *err)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, name, &link);

	if (rc < 0)
		return herr_set(err, nle_errno(rc), "cannot find link '%s': %s", name,
				nl_geterror(rc));
	rc = link_up(sk, link, err);
	rtnl_link_put(link);
	return rc;
}

int
netlink_bridge_ensure(struct nl_sock *sk, const char *name, struct herr *err)
{
	struct nl_addr *lladdr = NULL;
	struct rtnl_link *link = NULL;
	const char *type;
	int rc;

	rc = rtnl_link_get_kernel(sk, 0, name, &link);
	if (rc == 0) {
		type = rtnl_link_get_type(link);
		if (type == NULL || strcmp(type, "bridge") != 0)
			rc = herr_set(err, -EEXIST, "link '%s' exists and is not a bridge", name);
		else
			rc = link_up(sk, link, err);
		rtnl_link_put(link);
		return rc;
	}
	if (nle_errno(rc) != -ENODEV)
		return herr_set(err, nle_errno(rc), "cannot look up bridge '%s': %s", name,
				nl_geterror(rc));
	if ((link = rtnl_link_alloc()) == NULL)
		return herr_set(err, -ENOMEM, "cannot allocate link");
	rtnl_link_set_name(link, name);
	rtnl_link_set_flags(link, IFF_UP);
	/* A fixed MAC: a bridge without one takes the lowest MAC of its ports
	 * and changes it when a host's veth joins, and hosts that cached the
	 * gateway's old MAC then lose packets until their ARP entry expires. */
	{
		unsigned char mac[6] = { 0x02, 0x68, 0x64, 0, 0, 0 };
		unsigned h = 2166136261u;
		for (const char *c = name; *c; c++)
			h = (h ^ (unsigned char)*c) * 16777619u;
		mac[3] = (unsigned char)(h >> 16);
		mac[4] = (unsigned char)(h >> 8);
		mac[5] = (unsigned char)h;
		if ((lladdr = nl_addr_build(AF_LLC, mac, sizeof(mac))) != NULL)
			rtnl_link_set_addr(link, lladdr);
	}
	if ((rc = rtnl_link_set_type(link, "bridge")) == 0)
		rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	nl_addr_put(lladdr);
	/* made meanwhile by another thread (two launches at once): its own
	 * creation set it up; one that is not a bridge is found next time */
	if (rc < 0 && nle_errno(rc) == -EEXIST)
		return 0;
	if (rc < 0)
		return herr_set(err, nle_errno(rc), "cannot create bridge '%s': %s", name,
				nl_geterror(rc));
	return 0;
}

int
netlink_addr_add(struct nl_sock *sk, const char *name, const char *ip, int prefix_len,
		 struct herr *err)
{
	int ifindex = 0, rc;

	if ((rc = netlink_link_index(sk, name, &ifindex, err)) < 0)
		return rc;
	return netlink_addr_add_index(sk, ifindex, ip, prefix_len, err);
}

int
netlink_addr_add_index(struct nl_sock *sk, int ifindex, const char *ip, int prefix_len,
		       struct herr *err)
{
	struct rtnl_addr *addr = NULL;
	struct nl_addr *local = NULL;
	char text[64];
	int rc;

	snprintf(text, sizeof(text), "%s/%d", ip, prefix_len);
	if ((rc = nl_addr_parse(text, AF_INET, &local)) < 0)
		return herr_set(err, -EINVAL, "invalid address '%s': %s", text, nl_geterror(rc));
	if ((addr = rtnl_addr_alloc()) == NULL) {
		nl_addr_put(local);
		return herr_set(err, -ENOMEM, "cannot allocate address");
	}
	rtnl_addr_set_ifindex(addr, ifindex);
	rc = rtnl_addr_set_local(addr, local);
	if (rc == 0) {
		rtnl_addr_set_prefixlen(addr, prefix_len);
		rc = rtnl_addr_add(sk, addr, 0);
	}
	rtnl_addr_put(addr);
	nl_addr_put(local);
	if (rc < 0 && nle_errno(rc) != -EEXIST)
		return herr_set(err, nle_errno(rc), "cannot add address '%s' to link #%d: %s",
				text, ifindex, nl_geterror(rc));
	return 0;
}

int
netlink_veth_create(struct nl_sock *sk, const char *name, int master_ifindex,
		    const char *peer, int peer_ns_fd, struct herr *err)
{
	struct rtnl_link *link, *other;
	int rc;

	if ((link = rtnl_link_veth_alloc()) == NULL)
		return herr_set(err, -ENOMEM, "cannot allocate veth");
	rtnl_link_set_name(link, name);
	rtnl_link_set_flags(link, IFF_UP);
	if (master_ifindex > 0)
		rtnl_link_set_master(link, master_ifindex);
	other = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(other, peer);
	/* Not IFF_UP here: the kernel opens the peer before pairing the two
	 * ends, and a veth opened unpaired fails with ENOTCONN. */
	if (peer_ns_fd >= 0)
		rtnl_link_set_ns_fd(other, peer_ns_fd);
	rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(other);
	rtnl_link_veth_release(link);
	if (rc < 0)
		return herr_set(err, nle_errno(rc),
				"cannot create veth '%s' (peer '%s') on bridge #%d: %s", name, peer,
				master_ifindex, nl_geterror(rc));
	return 0;
}

int
netlink_route_default(struct nl_sock *sk, const char *name, const char *gw, struct herr *err)
{
	int ifindex = 0, rc;

	if ((rc = netlink_link_index(sk, name, &ifindex, err)) < 0)
		return rc;
	return netlink_route_default_index(sk, ifindex, gw, err);
}

int
netlink_route_default_index(struct nl_sock *sk, int ifindex, const char *gw,
			    struct herr *err)
{
	struct rtnl_route *route = NULL;
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *dst = NULL, *via = NULL;
	int rc;

	if ((rc = nl_addr_parse(gw, AF_INET, &via)) < 0)
		return herr_set(err, -EINVAL, "invalid gateway '%s': %s", gw, nl_geterror(rc));
	if ((rc = nl_addr_parse("0.0.0.0/0", AF_INET, &dst)) < 0) {
		rc = herr_set(err, -EINVAL, "cannot parse default route: %s", nl_geterror(rc));
		goto out_put_addrs;
	}
	route = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	if (route == NULL || nh == NULL) {
		rc = herr_set(err, -ENOMEM, "cannot allocate route");
		goto out_put_route;
	}
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	rtnl_route_set_protocol(route, RTPROT_BOOT);
	rtnl_route_set_type(route, RTN_UNICAST);
	if ((rc = rtnl_route_set_dst(route, dst)) < 0) {
		rc = herr_set(err, -EINVAL, "cannot set route destination: %s", nl_geterror(rc));
		goto out_put_route;
	}
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(route, nh);
	nh = NULL; /* owned by the route now */
	rc = rtnl_route_add(sk, route, NLM_F_REPLACE);
	if (rc < 0)
		rc = herr_set(err, nle_errno(rc), "cannot add default route via '%s' on link #%d: %s",
			      gw, ifindex, nl_geterror(rc));
out_put_route:
	if (nh)
		rtnl_route_nh_free(nh);
	if (route)
		rtnl_route_put(route);
out_put_addrs:
	nl_addr_put(dst);
	nl_addr_put(via);
	return rc;
}

int
netlink_link_delete(struct nl_sock *sk, const char *name, struct herr *err)
{
	struct rtnl_link *link;
	int rc;

	if ((link = rtnl_link_alloc()) == NULL)
		return herr_set(err, -ENOMEM, "cannot allocate link");
	rtnl_link_set_name(link, name);
	rc = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	if (rc < 0 && nle_errno(rc) != -ENODEV)
		return herr_set(err, nle_errno(rc), "cannot delete link '%s': %s", name,
				nl_geterror(rc));
	return 0;
}

int
netlink_link_master(struct nl_sock *sk, const char *name, char *master, size_t n,
		    struct herr *err)
{
	struct rtnl_link *link = NULL, *m = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, name, &link), mi;

	if (n > 0)
		master[0] = '\0';
	if (rc < 0)
		return herr_set(err, nle_errno(rc), "cannot find link '%s': %s", name,
				nl_geterror(rc));
	mi = rtnl_link_get_master(link);
	rtnl_link_put(link);
	if (mi <= 0)
		return 0;
	if ((rc = rtnl_link_get_kernel(sk, mi, NULL, &m)) < 0)
		return herr_set(err, nle_errno(rc), "cannot find the master of link '%s': %s",
				name, nl_geterror(rc));
	snprintf(master, n, "%s", rtnl_link_get_name(m) ? rtnl_link_get_name(m) : "");
	rtnl_link_put(m);
	return 0;
}

_Static_assert((int)NETLINK_OPER_UNKNOWN == (int)IF_OPER_UNKNOWN && (int)NETLINK_OPER_UP == (int)IF_OPER_UP,
	       "netlink.h's operstates are the kernel's");

int
netlink_link_oper(struct nl_sock *sk, int ifindex, const char *name, int *operstate,
		  bool *lower_up, struct herr *err)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, name ? 0 : ifindex, name, &link);

	if (rc < 0) {
		if (name)
			return herr_set(err, nle_errno(rc), "cannot find link '%s': %s", name,
					nl_geterror(rc));
		return herr_set(err, nle_errno(rc), "cannot find link #%d: %s", ifindex,
				nl_geterror(rc));
	}
	*operstate = rtnl_link_get_operstate(link);
	*lower_up = (rtnl_link_get_flags(link) & IFF_LOWER_UP) != 0;
	rtnl_link_put(link);
	return 0;
}

/* True if a/alen and b/blen (host order) share an address. */
static bool
prefix_overlap(uint32_t a, int alen, uint32_t b, int blen)
{
	int len = alen < blen ? alen : blen;
	uint32_t mask = len <= 0 ? 0 : len >= 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1);

	return (a & mask) == (b & mask);
}

/* The IPv4 address of nl_addr a in host order; false if it is not one. */
static bool
nl_ipv4(const struct nl_addr *a, uint32_t *out)
{
	uint32_t v;

	if (a == NULL || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4)
		return false;
	memcpy(&v, nl_addr_get_binary_addr(a), 4);
	*out = ntohl(v);
	return true;
}

static void
link_name(struct nl_sock *sk, int ifindex, char *out, size_t n)
{
	struct rtnl_link *link = NULL;

	snprintf(out, n, "#%d", ifindex);
	if (ifindex > 0 && rtnl_link_get_kernel(sk, ifindex, NULL, &link) == 0) {
		if (rtnl_link_get_name(link))
			snprintf(out, n, "%s", rtnl_link_get_name(link));
		rtnl_link_put(link);
	}
}

int
netlink_overlap_find(struct nl_sock *sk, const char *ip, int prefix_len, char *what, size_t n,
		     struct herr *err)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	struct in_addr in;
	uint32_t net, a;
	char text[INET_ADDRSTRLEN], dev[IFNAMSIZ + 8];
	int rc, found = 0;

	if (inet_pton(AF_INET, ip, &in) != 1 || prefix_len < 0 || prefix_len > 32)
		return herr_set(err, HERR_INVALID, "invalid network '%s/%d'", ip, prefix_len);
	net = ntohl(in.s_addr);
	if ((rc = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache)) < 0)
		return herr_set(err, nle_errno(rc), "cannot list routes: %s", nl_geterror(rc));
	for (o = nl_cache_get_first(cache); o != NULL && !found; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		uint8_t type = rtnl_route_get_type(r);
		int plen;

		if (type == RTN_LOCAL || type == RTN_BROADCAST || type == RTN_ANYCAST ||
		    type == RTN_MULTICAST || !nl_ipv4(dst, &a))
			continue;
		plen = (int)nl_addr_get_prefixlen(dst);
		if (plen == 0 || !prefix_overlap(net, prefix_len, a, plen))
			continue;
		in.s_addr = htonl(a);
		inet_ntop(AF_INET, &in, text, sizeof(text));
		dev[0] = '\0';
		if (rtnl_route_get_nnexthops(r) > 0)
			link_name(sk, rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0)), dev,
				  sizeof(dev));
		snprintf(what, n, "route %s/%d%s%s", text, plen, dev[0] ? " dev " : "", dev);
		found = 1;
	}
	nl_cache_free(cache);
	if (found)
		return 1;
	if ((rc = rtnl_addr_alloc_cache(sk, &cache)) < 0)
		return herr_set(err, nle_errno(rc), "cannot list addresses: %s", nl_geterror(rc));
	for (o = nl_cache_get_first(cache); o != NULL && !found; o = nl_cache_get_next(o)) {
		struct rtnl_addr *ad = (struct rtnl_addr *)o;
		int plen = rtnl_addr_get_prefixlen(ad);

		if (rtnl_addr_get_family(ad) != AF_INET || !nl_ipv4(rtnl_addr_get_local(ad), &a) ||
		    !prefix_overlap(net, prefix_len, a, plen))
			continue;
		in.s_addr = htonl(a);
		inet_ntop(AF_INET, &in, text, sizeof(text));
		link_name(sk, rtnl_addr_get_ifindex(ad), dev, sizeof(dev));
		snprintf(what, n, "address %s/%d on dev %s", text, plen, dev);
		found = 1;
	}
	nl_cache_free(cache);
	return found;
}

int
netlink_link_ports(struct nl_sock *sk, const char *name, struct herr *err)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	int ifindex, rc, ports = 0;

	if ((rc = netlink_link_index(sk, name, &ifindex, err)) < 0)
		return rc;
	if ((rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0)
		return herr_set(err, nle_errno(rc), "cannot list links: %s", nl_geterror(rc));
	for (o = nl_cache_get_first(cache); o != NULL; o = nl_cache_get_next(o))
		if (rtnl_link_get_master((struct rtnl_link *)o) == ifindex)
			ports++;
	nl_cache_free(cache);
	return ports;
}
