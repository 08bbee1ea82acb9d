/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * UDP connects of audit targets: recorded when a datagram follows, not
 * before.
 *
 * What: udp_connect__hold_slot() (connect4/6: whether this connect's record
 * waits, and where), udp_connect__hold() (connect4/6: keep the record in the
 * socket's storage) and udp_connect__on_send() (skb_egress: the first
 * datagram to that destination sends it).
 * Why: a UDP connect() sends nothing. glibc's getaddrinfo() sorts the
 * addresses a name resolved to (RFC 6724) by connecting a UDP socket to each,
 * port included, and reading its source address with getsockname(). Recorded
 * at connect, each became a destination of the target in learn mode, and
 * `egressctl suggest` proposed rules for traffic that never happened. A
 * connected socket's sends pass no sock_addr hook (only cgroup_skb/egress
 * sees them), so the record waits in the socket's storage (udp_connects,
 * abi.h) for a datagram to the connected destination. The record is the
 * connect's (hook, decision, task), stamped when the datagram goes.
 * Only audit targets: an enforcing target decides at connect (glibc takes a
 * refused connect as an unreachable address), and its records say what it
 * refused. Only instances with packet hooks (a cgroup target's own and the
 * shared set): the root set of user targets and watch instances have none,
 * and keep recording at connect.
 * Cost: enforcing targets pay one compare per packet (skb_egress) and one
 * per connect. An audit target pays, per packet, a read of the socket's
 * state, and for a datagram of a connected UDP socket a look at its header
 * and a socket storage lookup (a pointer read once the held record went
 * out); and a storage per UDP socket it connects.
 */
#ifndef EGRESS_BPF_LIB_UDP_CONNECT_H_
#define EGRESS_BPF_LIB_UDP_CONNECT_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/counters.h"
#include "lib/ratelimit.h"
#include "lib/records.h"

/* No slot: the record goes out at connect, as for any other hook. */
#define UDP_CONNECT_NO_SLOT -1

/*
 * Where target `id` keeps the record of this connect to `d` until the socket
 * sends: the socket's storage (made if need be), and in *slot the target's
 * own slot or else a free one. NULL (and UDP_CONNECT_NO_SLOT) when the
 * record does not wait: not a UDP connect of an audit target of an instance
 * with packet hooks, or no slot left (a third nested target), or no storage.
 */
static __always_inline struct egress_udp_connect *
udp_connect__hold_slot(__u32 id, const struct egress_target_config *cfg,
		       const struct egress_dest *d, struct bpf_sock_addr *ctx,
		       int *slot)
{
	struct egress_udp_connect *m;

	*slot = UDP_CONNECT_NO_SLOT;
	/* Constants after load: the verifier drops the rest for these. */
	if (egress_target_id == EGRESS_TARGET_BY_UID ||
	    egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return NULL;
	if (cfg->mode != EGRESS_MODE_AUDIT || d->proto != IPPROTO_UDP)
		return NULL;
	m = bpf_sk_storage_get(&udp_connects, ctx->sk, 0,
			       BPF_SK_STORAGE_GET_F_CREATE);
	if (!m)
		return NULL;
	if (m->slot[0].owner == (__u16)id)
		*slot = 0;
	else if (m->slot[1].owner == (__u16)id)
		*slot = 1;
	else if (!m->slot[0].owner)
		*slot = 0;
	else if (!m->slot[1].owner)
		*slot = 1;
	else
		return NULL;
	return m;
}

/*
 * Keeps the record of target `id`'s decision `dec` on connect `hook` to `d`
 * in slot `slot` of `m` (udp_connect__hold_slot), for the socket's first
 * datagram to `d`; a connect whose record is not wanted (logging off, an
 * allow at `logging denied`) frees the slot, so that an earlier connect's
 * record cannot go out instead. Every connect takes the destination and the
 * task: a socket connected again forgets where it was connected before.
 */
static __always_inline void
udp_connect__hold(struct egress_udp_connect *m, int slot, __u32 id,
		  const struct egress_target_config *cfg,
		  const struct egress_dest *d, __u8 hook,
		  const struct egress_decision *dec)
{
	struct egress_udp_connect_slot *s = slot ? &m->slot[1] : &m->slot[0];
	__u8 verdict = dec->verdict == EGRESS_VERDICT_ALLOW
			   ? EGRESS_VERDICT_ALLOW
			   : EGRESS_VERDICT_AUDIT;
	__u64 pid_tgid;

	if ((cfg->flags & EGRESS_TF_EVENT_NONE) ||
	    (verdict == EGRESS_VERDICT_ALLOW &&
	     !(cfg->flags & EGRESS_TF_EVENT_ALLOW))) {
		s->owner = 0;
		return;
	}
	__builtin_memcpy(m->addr, d->addr32, 16);
	m->port = d->port;
	m->family = d->family;
	m->hook = hook;
	pid_tgid = bpf_get_current_pid_tgid();
	m->pid = (__u32)pid_tgid;
	m->tgid = pid_tgid >> 32;
	m->uid = (__u32)bpf_get_current_uid_gid();
	m->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(m->comm, sizeof(m->comm));
	s->rule_id = dec->rule_id;
	s->verdict = verdict;
	s->reason = dec->reason;
	s->owner = (__u16)id;
}

/* The held record of slot `s`, for the datagram to `d` going out now. */
static __always_inline void
udp_connect__emit(__u32 id, const struct egress_target_config *cfg,
		  const struct egress_udp_connect *m,
		  const struct egress_udp_connect_slot *s,
		  const struct egress_dest *d)
{
	struct egress_counters *c;
	struct egress_event *e;
	__s64 suppressed;
	__u64 now;

	/* Logging may have been turned off since the connect. */
	if (cfg->flags & EGRESS_TF_EVENT_NONE)
		return;
	c = target__counters(id);
	now = bpf_ktime_get_ns();
	suppressed = limit__admit(id, d, m->hook, s->verdict, now, c);
	if (suppressed < 0)
		return;
	e = event__reserve(id, c, EGRESS_EVENT_INET_BYTES);
	if (!e)
		return;
	event__fill_verdict(e, d, m->hook, s->verdict, s->reason, s->rule_id,
			    now, suppressed);
	e->cgroup_id = m->cgroup_id;
	e->pid = m->pid;
	e->tgid = m->tgid;
	e->uid = m->uid;
	__builtin_memcpy(e->comm, m->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/*
 * The UDP destination of an outgoing packet (its first fragment), in `d`;
 * false for anything else, or headers past the linear data (never so for a
 * datagram of this host: its headers are built in the head).
 */
static __always_inline int udp_connect__packet_dest(struct __sk_buff *skb,
						    struct egress_dest *d)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct udphdr *udp;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP ||
		    (ip->frag_off & bpf_htons(0x1fff)))
			return 0;
		udp = (void *)ip + ip->ihl * 4;
		if ((void *)(udp + 1) > end)
			return 0;
		dest__set4(d, ip->daddr);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		/* A datagram with extension headers (none is needed to send
		 * one) is not looked into. */
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > end)
			return 0;
		dest__set6(d, ip6->daddr.in6_u.u6_addr32[0],
			   ip6->daddr.in6_u.u6_addr32[1],
			   ip6->daddr.in6_u.u6_addr32[2],
			   ip6->daddr.in6_u.u6_addr32[3]);
	} else {
		return 0;
	}
	d->port = udp->dest;
	d->proto = IPPROTO_UDP;
	return 1;
}

/*
 * A packet of target `id` (in audit mode) going out: when it is a datagram
 * of a UDP socket whose connect's record target `id` holds, and goes to the
 * connected destination, the record goes out and the slot is freed (the
 * storage too once no target holds one). A datagram sent elsewhere
 * (sendto() of an address, after a disconnect) sends nothing held: its own
 * sendmsg4/6 record names it.
 */
static __always_inline void
udp_connect__on_send(struct __sk_buff *skb, __u32 id,
		     const struct egress_target_config *cfg)
{
	struct egress_udp_connect_slot *s;
	struct egress_udp_connect *m;
	struct egress_dest d = {};
	struct bpf_sock *sk;
	__u32 *held;

	if (egress_target_id == EGRESS_TARGET_BY_UID ||
	    egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return;
	sk = skb->sk;
	if (!sk)
		return;
	/* Only a connected socket has a record to send: a UDP socket is
	 * TCP_ESTABLISHED from connect() until a disconnect (a TCP packet's
	 * socket may be too: the header says which). Both are read without a
	 * helper call, so an unconnected socket's sendto() and every TCP
	 * packet cost no storage lookup (egress_bench --mode=audit). After a
	 * disconnect, a sendto() is recorded by sendmsg4/6 as any other. */
	if (sk->state != BPF_TCP_ESTABLISHED)
		return;
	if (!udp_connect__packet_dest(skb, &d))
		return;
	/* The socket's storage takes a sock_common: it finds none on a
	 * request or timewait socket, so no bpf_sk_fullsock() call first. */
	m = bpf_sk_storage_get(&udp_connects, sk, 0, 0);
	if (!m)
		return;
	if (m->slot[0].owner == (__u16)id)
		s = &m->slot[0];
	else if (m->slot[1].owner == (__u16)id)
		s = &m->slot[1];
	else
		return;
	held = (__u32 *)m->addr;
	if (d.family != m->family || d.port != m->port ||
	    d.addr32[0] != held[0] || d.addr32[1] != held[1] ||
	    d.addr32[2] != held[2] || d.addr32[3] != held[3])
		return;
	udp_connect__emit(id, cfg, m, s, &d);
	s->owner = 0;
	if (!m->slot[0].owner && !m->slot[1].owner)
		bpf_sk_storage_delete(&udp_connects, sk);
}

#endif /* EGRESS_BPF_LIB_UDP_CONNECT_H_ */
