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
	/* connect(0.0.0.0) reaches 127.0.0.1: match it as the address it goes
	 * to. */
	d->addr32[0] = ip4_be ? ip4_be : bpf_htonl(0x7f000001);
	d->addr32[1] = 0;
	d->addr32[2] = 0;
	d->addr32[3] = 0;
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is matched against IPv4 rules, so that a
 * dual-stack socket can neither miss an allow nor bypass a deny. */
static __always_inline void dest__set6(struct egress_dest *d, __u32 a0,
				       __u32 a1, __u32 a2, __u32 a3)
{
	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0x0000ffff)) {
		dest__set4(d, a3);
		return;
	}
	d->family = EGRESS_FAMILY_IPV6;
	if ((a0 | a1 | a2 | a3) == 0)
		a3 = bpf_htonl(1); /* connect(::) reaches ::1 */
	d->addr32[0] = a0;
	d->addr32[1] = a1;
	d->addr32[2] = a2;
	d->addr32[3] = a3;
}

#endif /* EGRESS_BPF_LIB_ADDR_H_ */
