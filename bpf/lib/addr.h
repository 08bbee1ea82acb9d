/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Destination addresses as the hooks see them, normalised for rule lookup. */
#ifndef EGRESS_BPF_LIB_ADDR_H_
#define EGRESS_BPF_LIB_ADDR_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* A destination in lookup form: IPv4 in addr32[0], the rest zero. */
struct egress_dest {
	__u32 addr32[4];
	__be16 port;
	__u8 family;
	__u8 proto;
};

/* MPTCP sockets are TCP as far as rules go. */
static __always_inline __u8 dest__proto(__u32 sk_protocol)
{
	if (sk_protocol == IPPROTO_MPTCP)
		return IPPROTO_TCP;
	return sk_protocol > 255 ? 255 : (__u8)sk_protocol;
}

static __always_inline void dest__set4(struct egress_dest *d, __u32 ip4_be)
{
	d->family = EGRESS_FAMILY_IPV4;
	d->addr32[0] = ip4_be;
	d->addr32[1] = 0;
	d->addr32[2] = 0;
	d->addr32[3] = 0;
}

static __always_inline int addr__is_mapped(__u32 a0, __u32 a1, __u32 a2)
{
	return a0 == 0 && a1 == 0 && a2 == bpf_htonl(0x0000ffff);
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is matched against IPv4 rules, so that a
 * dual-stack socket can neither miss an allow nor bypass a deny. */
static __always_inline void dest__set6(struct egress_dest *d, __u32 a0,
				       __u32 a1, __u32 a2, __u32 a3)
{
	if (addr__is_mapped(a0, a1, a2)) {
		dest__set4(d, a3);
		return;
	}
	d->family = EGRESS_FAMILY_IPV6;
	d->addr32[0] = a0;
	d->addr32[1] = a1;
	d->addr32[2] = a2;
	d->addr32[3] = a3;
}

/*
 * Unspecified destinations are not loopback. The kernel sends 0.0.0.0 to
 * the source address of the send (the bound address, or an IP_PKTINFO
 * source) and to 127.0.0.1 only when there is none; it sends `::` to ::1,
 * or to IPv4 127.0.0.1 from a socket bound to an IPv4-mapped address. The
 * connect and sendmsg hooks decide such a destination as that address and
 * write it back into the context, so that what is checked is what is
 * reached even where the kernel would have picked another source (a bound
 * device, a pktinfo interface). Costs nothing unless the address is zero.
 */
static __always_inline __u32 addr__unspec4(__u32 src_be)
{
	return src_be ? src_be : bpf_htonl(0x7f000001);
}

#endif /* EGRESS_BPF_LIB_ADDR_H_ */
