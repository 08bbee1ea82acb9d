/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * egress: per-cgroup outbound connection enforcement.
 *
 * One instance of this object is loaded per cgroup target with
 * egress_target_id (lib/config.h) set, and one with EGRESS_TARGET_BY_UID for
 * all user targets, attached at the cgroup2 root while any exists: it finds
 * the target by the caller's uid and lets other uids through before it
 * reads anything else, and one with EGRESS_TARGET_BY_CGROUP per watched
 * parent cgroup, which finds the target by the caller's child cgroup
 * (lib/config.h). All instances share the pinned maps of maps.h. This
 * file holds the programs: how each hook turns its context into a
 * destination. What a decision means lives in lib/ (see lib/verdict.h for
 * the layering). Every program returns 1 to let the operation through and 0
 * to refuse it (EPERM for the caller).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/counters.h"
#include "lib/dns_learn.h"
#include "lib/peers.h"
#include "lib/records.h"
#include "lib/rules.h"
#include "lib/udp_connect.h"
#include "lib/verdict.h"
#include "lib/unix.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Not exported by the UAPI headers bookworm ships with every libc. */
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif
#ifndef IPV6_2292RTHDR
#define IPV6_2292RTHDR 5
#endif
#ifndef IPV6_RTHDR
#define IPV6_RTHDR 57
#endif
#ifndef IP_OPTIONS
#define IP_OPTIONS 4
#endif
#ifndef IP_FREEBIND
#define IP_FREEBIND 15
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
/* From <sys/socket.h> and <linux/icmp*.h>, which pull in libc headers that a
 * BPF build cannot use. */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define ICMP_ECHO 8
#define ICMPV6_ECHO_REQUEST 128
#define SOL_IP_LEVEL 0
#define SOL_IPV6_LEVEL 41
#define IPOPT_LSRR_TYPE 0x83
#define IPOPT_SSRR_TYPE 0x89
#define IPV6_NEXTHDR_HOP 0
#define IPV6_NEXTHDR_ROUTING 43
#define IPV6_NEXTHDR_FRAGMENT 44
#define IPV6_NEXTHDR_DEST 60

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_dest d = {};
	__u32 ip4, id;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	ip4 = ctx->user_ip4;
	if (!ip4) { /* goes to the bound address (lib/addr.h) */
		ip4 = addr__unspec4(ctx->sk->src_ip4);
		ctx->user_ip4 = ip4;
	}
	dest__set4(&d, ip4);
	d.port = (__be16)ctx->user_port;
	d.proto = dest__proto(ctx->protocol);
	return verdict__connect(id, cfg, &d, EGRESS_HOOK_CONNECT4, ctx, 0);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_dest d = {};
	__u32 a0, a1, a2, a3, id;
	struct bpf_sock *sk;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
	a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
	sk = ctx->sk;
	if (addr__is_mapped(a0, a1, a2)) {
		if (!a3) { /* ::ffff:0.0.0.0 is IPv4 0.0.0.0 */
			a3 = addr__unspec4(sk->src_ip4);
			ctx->user_ip6[3] = a3;
		}
	} else if (!(a0 | a1 | a2 | a3)) {
		/* `::` goes to 127.0.0.1 from a socket bound to a mapped
		 * address, else to ::1 (tcp_v6_connect, ip6_datagram_connect).
		 */
		if (addr__is_mapped(sk->src_ip6[0], sk->src_ip6[1],
				    sk->src_ip6[2])) {
			a2 = bpf_htonl(0x0000ffff);
			a3 = bpf_htonl(0x7f000001);
		} else {
			a3 = bpf_htonl(1);
		}
		ctx->user_ip6[2] = a2;
		ctx->user_ip6[3] = a3;
	}
	dest__set6(&d, a0, a1, a2, a3);
	d.port = (__be16)ctx->user_port;
	d.proto = dest__proto(ctx->protocol);
	return verdict__connect(id, cfg, &d, EGRESS_HOOK_CONNECT6, ctx, 0);
}

/* A datagram whose source, picked per send (IP_PKTINFO's ipi_spec_dst), is
 * not the address its socket is bound to: it would come "from" another
 * address of the host, a local service's, to a socket of the target that
 * would then answer that service as a known peer (lib/peers.h) though no
 * rule allows it. udp_sendmsg starts the source (msg_src_ip4) as the bound
 * one, so without a cmsg the two agree; a zero source lets the route pick
 * one. A socket bound to the wildcard picks its source per datagram as
 * before (a DNS server answers from the address a query came to), and one
 * bound to a multicast group or 255.255.255.255 has no source of its own. */
static __always_inline int src__borrowed4(struct bpf_sock_addr *ctx)
{
	__u32 bound = ctx->sk->src_ip4, src = ctx->msg_src_ip4;

	if (!bound || src == bound)
		return 0;
	if (!src && ((bpf_ntohl(bound) >> 28) == 0xe || bound == 0xffffffff))
		return 0;
	return 1;
}

/* As src__borrowed4, for IPV6_PKTINFO's ipi6_addr (msg_src_ip6 starts as
 * the bound address; `::` only when the socket has none of its own). */
static __always_inline int src__borrowed6(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 b0 = sk->src_ip6[0], b1 = sk->src_ip6[1];
	__u32 b2 = sk->src_ip6[2], b3 = sk->src_ip6[3];
	__u32 s0 = ctx->msg_src_ip6[0], s1 = ctx->msg_src_ip6[1];
	__u32 s2 = ctx->msg_src_ip6[2], s3 = ctx->msg_src_ip6[3];

	if (!(b0 | b1 | b2 | b3) || !(s0 | s1 | s2 | s3))
		return 0;
	return ((b0 ^ s0) | (b1 ^ s1) | (b2 ^ s2) | (b3 ^ s3)) != 0;
}

/* sendmsg4 also sees AF_UNSPEC destinations (treated as IPv4 by UDP), AF_INET
 * destinations of AF_INET6 sockets and IPv4-mapped destinations of sendto():
 * user_ip4 holds the address in every case. msg_src_ip4 is the source the
 * kernel will use: an IP_PKTINFO source, else the bound address. */
SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_dest d = {};
	__u32 ip4, id;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	if (!ctx->user_port) {
		/* No address: the send of a connected socket that carries an
		 * IP-level cmsg (IP_TOS, IP_PKTINFO, ...), which makes
		 * udp_sendmsg run this hook with a zeroed one (a sendto() to
		 * port 0 is refused before it). The datagram goes to the
		 * connected peer: decide that. One decision below for both
		 * (verdict__connect is inlined: twice would double the
		 * program). */
		dest__set4(&d, ctx->sk->dst_ip4);
		d.port = (__be16)ctx->sk->dst_port;
	} else {
		ip4 = ctx->user_ip4;
		if (!ip4) { /* goes to the source address (lib/addr.h) */
			ip4 = ctx->msg_src_ip4;
			if (!ip4)
				ip4 = ctx->sk->src_ip4;
			ip4 = addr__unspec4(ip4);
			ctx->user_ip4 = ip4;
		}
		dest__set4(&d, ip4);
		d.port = (__be16)ctx->user_port;
	}
	d.proto = dest__proto(ctx->protocol);
	return verdict__connect(id, cfg, &d, EGRESS_HOOK_SENDMSG4, ctx,
				src__borrowed4(ctx));
}

/* IPv4-mapped destinations never get here (udpv6_sendmsg hands them, and
 * `::` from a socket bound to a mapped address, to sendmsg4). */
SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_dest d = {};
	__u32 a0, a1, a2, a3, id;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	if (!ctx->user_port) {
		/* No address: a connected socket's send with a cmsg
		 * (IPV6_TCLASS, IPV6_PKTINFO, ...), as in sendmsg4. */
		struct bpf_sock *sk = ctx->sk;

		dest__set6(&d, sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2],
			   sk->dst_ip6[3]);
		d.port = (__be16)sk->dst_port;
	} else {
		a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
		a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
		if (!(a0 | a1 | a2 | a3)) { /* `::` goes to ::1 */
			a3 = bpf_htonl(1);
			ctx->user_ip6[3] = a3;
		}
		dest__set6(&d, a0, a1, a2, a3);
		d.port = (__be16)ctx->user_port;
	}
	d.proto = dest__proto(ctx->protocol);
	return verdict__connect(id, cfg, &d, EGRESS_HOOK_SENDMSG6, ctx,
				src__borrowed6(ctx));
}

/* recvmsg hooks see the sender of each datagram a target's UDP socket reads:
 * that peer may be answered from the same socket. Must return 1. */
SEC("cgroup/recvmsg4")
int egress_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct egress_dest d = {};

	dest__set4(&d, ctx->user_ip4);
	d.port = (__be16)ctx->user_port;
	d.proto = IPPROTO_UDP;
	peer__record(&d, ctx);
	return 1;
}

SEC("cgroup/recvmsg6")
int egress_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct egress_dest d = {};

	dest__set6(&d, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2],
		   ctx->user_ip6[3]);
	d.port = (__be16)ctx->user_port;
	d.proto = IPPROTO_UDP;
	peer__record(&d, ctx);
	return 1;
}

/*
 * Only socket kinds whose every destination passes a hook we decide on may be
 * created: TCP (and MPTCP) streams and UDP datagrams. Raw sockets pass no
 * sock_addr hook at all and an unconnected ping socket passes none on
 * sendto(): both need an explicit allow. Every other inet protocol (UDP-Lite,
 * whose connect() runs no hook; SCTP; anything new) is refused: a policy
 * cannot name them, so they could only be a way around it.
 */
SEC("cgroup/sock_create")
int egress_sock_create(struct bpf_sock *ctx)
{
	struct egress_target_config *cfg;
	struct egress_decision dec = {
	    .verdict = EGRESS_VERDICT_DENY,
	    .reason = EGRESS_REASON_SOCKET_TYPE,
	};
	struct egress_dest d = {};
	__u32 type = ctx->type, proto = ctx->protocol, id;

	/* The common kinds first, before any map lookup. */
	if (type == SOCK_STREAM &&
	    (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP || proto == 0))
		return 1;
	if (type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == 0))
		return 1;
	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 1;
	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	if (type == SOCK_RAW && (cfg->flags & EGRESS_TF_ALLOW_RAW))
		return 1;
	if (type == SOCK_DGRAM &&
	    (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) &&
	    (cfg->flags & EGRESS_TF_ALLOW_ICMP))
		return 1;
	d.family =
	    ctx->family == AF_INET ? EGRESS_FAMILY_IPV4 : EGRESS_FAMILY_IPV6;
	d.proto = dest__proto(proto);
	return verdict__apply(id, cfg, &d, EGRESS_HOOK_SOCK_CREATE, &dec,
			      (__u8)type, 1);
}

/*
 * True when an IPv4 options block of optlen bytes at p carries a loose or
 * strict source route. Reads no further than optlen (the header length says
 * where the options end: past them is the TCP/UDP header) nor than end.
 * Looks at up to 8 options (a no-op counts as one) and answers true when
 * options remain past that: a block too long to read is refused rather than
 * trusted. The fixed, unrolled count keeps the verifier's state count small;
 * a loop walking all 40 bytes by option length exceeded its instruction
 * limit.
 */
static __always_inline int ipopt__has_source_route(__u8 *p, __u8 *end,
						   __u32 optlen)
{
	__u32 off = 0;
	int i;

	if (optlen > 40)
		optlen = 40;
#pragma unroll
	for (i = 0; i < 8; i++) {
		__u8 type, len;

		if (off >= optlen || p + 1 > end)
			return 0;
		type = *p;
		if (type == 0) /* end of list */
			return 0;
		if (type == IPOPT_LSRR_TYPE || type == IPOPT_SSRR_TYPE)
			return 1;
		if (type == 1) { /* no-op */
			p++;
			off++;
			continue;
		}
		if (off + 2 > optlen || p + 2 > end)
			return 0;
		len = p[1];
		if (len < 2 || len > optlen - off)
			return 1; /* malformed: the kernel rejects it anyway */
		p += len;
		off += len;
	}
	return off < optlen;
}

/*
 * True when a setsockopt() turns on a source address the host does not own
 * for a datagram socket: IPV6_FREEBIND or IP_FREEBIND on an IPv6 one (IPv6
 * then lets it bind to, and send from, any address, and loopback delivers
 * that to the host's own sockets), IP_TRANSPARENT or IPV6_TRANSPARENT on
 * any (it needs CAP_NET_RAW or CAP_NET_ADMIN). Such a datagram poses as a
 * peer of another socket of the target: a "reply" to any address
 * (lib/peers.h) or a DNS answer from the resolver (lib/dns_learn.h). A
 * value of 0 (turning it off) passes; one the program cannot read is
 * refused. TCP is left alone: a connection from such an address gets no
 * further than its SYN-ACK, sent to a host that never asked for it.
 */
static __always_inline int sockopt__nonlocal_source(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	__u8 *v = ctx->optval;
	int freebind, transparent, n;

	if (ctx->level == SOL_IP_LEVEL) {
		freebind = ctx->optname == IP_FREEBIND;
		transparent = ctx->optname == IP_TRANSPARENT;
	} else if (ctx->level == SOL_IPV6_LEVEL) {
		freebind = ctx->optname == IPV6_FREEBIND;
		transparent = ctx->optname == IPV6_TRANSPARENT;
	} else {
		return 0;
	}
	if (!(freebind || transparent) || !sk || sk->type != SOCK_DGRAM)
		return 0;
	if (freebind && sk->family != AF_INET6)
		return 0;
	/* The kernel reads an int, or a byte when optlen is 1 to 3. */
	n = ctx->optlen < 4 ? ctx->optlen : 4;
	if (n <= 0)
		return 0; /* refused by the kernel: EINVAL */
	if ((void *)(v + 4) <= ctx->optval_end)
		return v[0] | (n > 1 ? v[1] : 0) | (n > 2 ? v[2] : 0) |
		       (n > 3 ? v[3] : 0);
	if ((void *)(v + 1) <= ctx->optval_end && n == 1)
		return v[0];
	return 1;
}

/* Refuses the socket options that would send packets somewhere the
 * connect/sendmsg hooks did not check: source routes (a first hop other
 * than the destination) and source addresses the host does not own
 * (sockopt__nonlocal_source). */
SEC("cgroup/setsockopt")
int egress_setsockopt(struct bpf_sockopt *ctx)
{
	struct egress_target_config *cfg;
	struct egress_decision dec = {
	    .verdict = EGRESS_VERDICT_DENY,
	    .reason = EGRESS_REASON_SOURCE_ROUTE,
	};
	struct egress_dest d = {};
	int refuse = 0;
	__u32 id;

	if (ctx->level == SOL_IPV6_LEVEL) {
		refuse = ctx->optname == IPV6_RTHDR ||
			 ctx->optname == IPV6_2292RTHDR ||
			 ctx->optname == IPV6_2292PKTOPTIONS;
		d.family = EGRESS_FAMILY_IPV6;
	} else if (ctx->level == SOL_IP_LEVEL && ctx->optname == IP_OPTIONS) {
		refuse =
		    ipopt__has_source_route(ctx->optval, ctx->optval_end,
					    ctx->optlen < 0 ? 0 : ctx->optlen);
		d.family = EGRESS_FAMILY_IPV4;
	}
	if (!refuse && sockopt__nonlocal_source(ctx)) {
		refuse = 1;
		dec.reason = EGRESS_REASON_NONLOCAL_SOURCE;
		d.family = ctx->sk && ctx->sk->family == AF_INET6
			       ? EGRESS_FAMILY_IPV6
			       : EGRESS_FAMILY_IPV4;
	}
	if (!refuse)
		return 1;
	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	return verdict__apply(id, cfg, &d, EGRESS_HOOK_SETSOCKOPT, &dec, 0, 1);
}

/* Checks an ICMP echo request of a ping socket against the icmp rules:
 * unconnected ping sendto() passes no sendmsg hook. */
static __always_inline int skb__icmp_allowed(__u32 id,
					     struct egress_target_config *cfg,
					     struct egress_dest *d)
{
	struct egress_decision dec;

	rules__decide(cfg->ruleset, d, &dec);
	return verdict__apply(id, cfg, d, EGRESS_HOOK_SKB_EGRESS, &dec,
			      SOCK_DGRAM, 0);
}

/* A packet refused at egress for `reason`, with a record; in audit mode
 * recorded and let through: a source-routed packet, or one sent from port 53
 * of a resolver the target may query (dns__resolver_source). */
static __always_inline int skb__drop(__u32 id, struct egress_target_config *cfg,
				     struct egress_dest *d, __u8 reason)
{
	struct egress_decision dec = {
	    .verdict = EGRESS_VERDICT_DENY,
	    .reason = reason,
	};

	return verdict__apply(id, cfg, d, EGRESS_HOOK_SKB_EGRESS, &dec, 0, 0);
}

/* The target of a packet: a cgroup target's own, or, for the root instance
 * of user targets, the one of the socket's owner (packets may go out in no
 * task's context, so not the current task's uid: the uid the socket was
 * created with). */
static __always_inline struct egress_target_config *
skb__target(struct __sk_buff *skb, __u32 *id)
{
	if (egress_target_id == EGRESS_TARGET_BY_UID)
		return target__of_uid(bpf_get_socket_uid(skb), id);
	/* A watch instance has no packet hooks attached (WatchHooks). */
	if (egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return NULL;
	return target__find(id);
}

/*
 * Backstop on every packet a target's sockets send. Costs a config lookup and
 * a look at the IP header: drops source-routed packets (options can also come
 * as a cmsg, past setsockopt) and checks ping echo requests. In audit mode it
 * also sends the record a UDP connect held for its first datagram. Returns
 * 1 to pass the packet, 0 to drop it.
 */
SEC("cgroup_skb/egress")
int egress_skb_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct egress_target_config *cfg;
	struct bpf_sock *sk;
	struct egress_dest d = {};
	__u32 id;

	/* A DNS query to port 53: remembered for its answer (lib/dns_learn.h).
	 * It never changes what happens to the packet. The config (an array,
	 * an inlined index) is read first, so enforcing targets without name
	 * rules never parse a header here (audit targets do: audit learning). A
	 * cgroup target's only: the root instance of user targets has no packet
	 * hooks attached. */
	cfg = skb__target(skb, &id);
	if (egress_target_id != EGRESS_TARGET_BY_UID &&
	    egress_target_id != EGRESS_TARGET_BY_CGROUP && dns__watches(cfg)) {
		int sides = dns__port53_sides(skb);

		if (sides & DNS_PORT53_DST)
			dns__on_query(skb, cfg);
		else if ((sides & DNS_PORT53_SRC) && dns__learns(cfg)) {
			struct egress_dest rd = {};

			if (dns__resolver_source(skb, cfg, &rd)) {
				struct egress_dns_counters *dc =
				    dns__counters();

				if (dc)
					dns__count(dc, resolver_source);
				return skb__drop(id, cfg, &rd,
						 EGRESS_REASON_RESOLVER_SOURCE);
			}
		}
	}
	/* The record a UDP connect of an audit target held for its first
	 * datagram (lib/udp_connect.h); one compare for other modes. */
	if (cfg && cfg->mode == EGRESS_MODE_AUDIT)
		udp_connect__on_send(skb, id, cfg);
	/* Fast path, before any lookup: IPv4 without options and not ICMP,
	 * IPv6 going straight to TCP or UDP. That is nearly every packet. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return 1;
		if (ip->ihl == 5 && ip->protocol != IPPROTO_ICMP)
			return 1;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 1;
		if (ip6->nexthdr == IPPROTO_TCP || ip6->nexthdr == IPPROTO_UDP)
			return 1;
	} else {
		return 1;
	}
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return 1;
		if (ip->ihl > 5) {
			dest__set4(&d, ip->daddr);
			d.proto = ip->protocol;
			if (ipopt__has_source_route((__u8 *)(ip + 1), end,
						    ip->ihl * 4 - 20))
				return skb__drop(id, cfg, &d,
						 EGRESS_REASON_SOURCE_ROUTE);
		}
		if (ip->protocol == IPPROTO_ICMP && sk &&
		    sk->type == SOCK_DGRAM) {
			__u8 *icmp_type = (void *)ip + ip->ihl * 4;

			if ((void *)(icmp_type + 1) > end)
				return 1;
			if (*icmp_type != ICMP_ECHO)
				return 1;
			dest__set4(&d, ip->daddr);
			d.proto = IPPROTO_ICMP;
			return skb__icmp_allowed(id, cfg, &d);
		}
		return 1;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		__u8 nexthdr;
		__u8 *p;
		int i;

		if ((void *)(ip6 + 1) > end)
			return 1;
		nexthdr = ip6->nexthdr;
		p = (__u8 *)(ip6 + 1);
		/* Walk at most 4 extension headers looking for a routing one.
		 */
		for (i = 0; i < 4; i++) {
			if (nexthdr == IPV6_NEXTHDR_ROUTING) {
				dest__set6(&d, ip6->daddr.in6_u.u6_addr32[0],
					   ip6->daddr.in6_u.u6_addr32[1],
					   ip6->daddr.in6_u.u6_addr32[2],
					   ip6->daddr.in6_u.u6_addr32[3]);
				return skb__drop(id, cfg, &d,
						 EGRESS_REASON_SOURCE_ROUTE);
			}
			if (nexthdr != IPV6_NEXTHDR_HOP &&
			    nexthdr != IPV6_NEXTHDR_DEST &&
			    nexthdr != IPV6_NEXTHDR_FRAGMENT)
				break;
			if (p + 8 > (__u8 *)end)
				return 1;
			if (nexthdr == IPV6_NEXTHDR_FRAGMENT) {
				nexthdr = p[0];
				p += 8;
			} else {
				nexthdr = p[0];
				p += (p[1] + 1) * 8;
			}
		}
		if (nexthdr == IPPROTO_ICMPV6 && sk && sk->type == SOCK_DGRAM) {
			if (p + 1 > (__u8 *)end)
				return 1;
			if (*p != ICMPV6_ECHO_REQUEST)
				return 1;
			dest__set6(&d, ip6->daddr.in6_u.u6_addr32[0],
				   ip6->daddr.in6_u.u6_addr32[1],
				   ip6->daddr.in6_u.u6_addr32[2],
				   ip6->daddr.in6_u.u6_addr32[3]);
			d.proto = IPPROTO_ICMPV6;
			return skb__icmp_allowed(id, cfg, &d);
		}
	}
	return 1;
}

/*
 * Answers from port 53 reaching a target's sockets, before the application
 * can read them: learns the names they answer (lib/dns_learn.h). Every
 * packet passes: learning never drops anything.
 */
SEC("cgroup_skb/ingress")
int egress_skb_ingress(struct __sk_buff *skb)
{
	struct egress_target_config *cfg;
	__u32 id;

	/* A cgroup target's only (see egress_skb_egress). */
	if (egress_target_id == EGRESS_TARGET_BY_UID ||
	    egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return 1;
	cfg = target__find(&id);
	if (dns__watches(cfg) && (dns__port53_sides(skb) & DNS_PORT53_SRC))
		dns__on_answer(skb, cfg);
	return 1;
}

/* The remote end of a sock_ops socket, as a destination. */
static __always_inline void flow__remote(struct bpf_sock_ops *ctx,
					 struct egress_dest *d)
{
	if (ctx->family == AF_INET)
		dest__set4(d, ctx->remote_ip4);
	else
		dest__set6(d, ctx->remote_ip6[0], ctx->remote_ip6[1],
			   ctx->remote_ip6[2], ctx->remote_ip6[3]);
	d->port = (__be16)(ctx->remote_port >> 16);
	d->proto = IPPROTO_TCP;
}

/*
 * Whether a flow gets records, decided once when it is established: not at
 * `logging off`, and at most EGRESS_EVENTS_PER_WINDOW flows per window per
 * (target, peer address, port, verdict) through the verdict records' rate
 * limit (lib/ratelimit.h, hook EGRESS_HOOK_SOCK_OPS). The port is the
 * remote one for an outbound flow and the local (listening) one for an
 * inbound flow, so that the clients of a server share one key per address
 * instead of one per ephemeral port. Returns -1 for no records, else the
 * flows of the key held back before this one. A held-back flow gets neither
 * record: established and closed always come in pairs.
 */
static __always_inline __s64 flow__admit(struct bpf_sock_ops *ctx,
					 const struct egress_flow *f,
					 struct egress_dest *d, __u64 now,
					 __u32 id,
					 const struct egress_target_config *cfg,
					 struct egress_counters *c)
{
	if (cfg->flags & EGRESS_TF_EVENT_NONE)
		return -1;
	if (f->direction == EGRESS_DIR_INBOUND)
		d->port = bpf_htons((__u16)ctx->local_port);
	return limit__admit(id, d, EGRESS_HOOK_SOCK_OPS, f->verdict, now, c);
}

/* Emits a flow record for a TCP socket of a target whose flow was admitted
 * (flow__admit); `suppressed` rides on established records. */
static __always_inline void flow__emit(struct bpf_sock_ops *ctx, __u8 kind,
				       const struct egress_flow *f, __u64 now,
				       __u32 id, struct egress_counters *c,
				       __u32 suppressed, __u64 sent,
				       __u64 received)
{
	struct egress_event *e;

	e = event__reserve(id, c, EGRESS_EVENT_INET_BYTES);
	if (!e)
		return;
	e->ts_ns = now;
	e->rule_id = f->rule_id;
	e->suppressed = suppressed;
	e->reason =
	    f->rule_id ? EGRESS_REASON_MATCH_ALLOW : EGRESS_REASON_NO_MATCH;
	e->verdict = f->verdict;
	e->direction = f->direction;
	e->kind = kind;
	e->hook = EGRESS_HOOK_SOCK_OPS;
	e->proto = IPPROTO_TCP;
	e->port = (__be16)(ctx->remote_port >> 16);
	e->local_port = (__u16)ctx->local_port;
	e->cookie = bpf_get_socket_cookie(ctx);
	e->srtt_us = ctx->srtt_us >> 3;
	e->bytes_sent = sent;
	e->bytes_received = received;
	if (kind == EGRESS_EVENT_FLOW_CLOSED)
		e->duration_ns = now - f->start_ns;
	if (ctx->family == AF_INET) {
		e->family = EGRESS_FAMILY_IPV4;
		__builtin_memcpy(e->addr, &ctx->remote_ip4, 4);
	} else {
		struct egress_dest d = {};

		dest__set6(&d, ctx->remote_ip6[0], ctx->remote_ip6[1],
			   ctx->remote_ip6[2], ctx->remote_ip6[3]);
		e->family = d.family;
		__builtin_memcpy(e->addr, d.addr32, 16);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* Marks an inbound flow's socket for its close (flow__bytes) without
 * per-flow state: the retransmission-timeout callback, which fires only
 * when a retransmission timer expires and returns at the first compare. */
#define FLOW_INBOUND_MARK BPF_SOCK_OPS_RTO_CB_FLAG

/*
 * The payload bytes of a flow at its close, from the socket's totals and the
 * state it left for CLOSE, with no per-flow state: every flow's counts are
 * exact whether it has records or not. bytes_acked counts our FIN once
 * acked and, on an outbound flow only, our SYN (an accepted socket is born
 * with its SYN-ACK acked: snd_una starts past it); bytes_received counts the
 * peer's FIN but not its SYN (rcv_nxt starts past it). Data carried by a SYN
 * (TCP Fast Open) is payload and counts. An inbound flow is told by
 * FLOW_INBOUND_MARK among the socket's callback flags.
 * old_state says which FINs went by: the states before CLOSE are a path
 * (FIN_WAIT1 -> FIN_WAIT2 / CLOSING, CLOSE_WAIT -> LAST_ACK), and
 * FIN_WAIT2 -> CLOSE is the peer's FIN arriving (time wait).
 */
static __always_inline void flow__bytes(struct bpf_sock_ops *ctx,
					__u32 old_state, __u64 *sent,
					__u64 *received)
{
	int fin_sent =
	    old_state == BPF_TCP_FIN_WAIT1 || old_state == BPF_TCP_FIN_WAIT2 ||
	    old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_LAST_ACK;
	int fin_received =
	    old_state == BPF_TCP_FIN_WAIT2 || old_state == BPF_TCP_CLOSING ||
	    old_state == BPF_TCP_LAST_ACK || old_state == BPF_TCP_CLOSE_WAIT;
	__u64 acked = ctx->bytes_acked, rcvd = ctx->bytes_received;

	/* An outbound flow's SYN; then the FIN when the peer acked it. */
	if (!(ctx->bpf_sock_ops_cb_flags & FLOW_INBOUND_MARK) && acked)
		acked--;
	if (fin_sent && ctx->snd_una == ctx->snd_nxt && acked)
		acked--;
	if (fin_received && rcvd)
		rcvd--;
	*sent = acked;
	*received = rcvd;
}

/* The close of a flow's socket (the only state callback asked for, and only
 * on flows: see egress_sock_ops): counts the flow and its bytes and, for a
 * flow with records, emits its closed record. */
static __always_inline int flow__on_state(struct bpf_sock_ops *ctx,
					  struct bpf_sock *sk)
{
	__u32 old_state = ctx->args[0], id;
	struct egress_counters *c;
	struct egress_flow *f;
	__u64 sent, received;

	/* The other states (FIN_WAIT1, CLOSE_WAIT, ...) cost one compare. */
	if (ctx->args[1] != BPF_TCP_CLOSE)
		return 1;
	flow__bytes(ctx, old_state, &sent, &received);
	/* Counted whatever the logging level, under the target the flow
	 * started in. */
	id = target__own_id();
	c = target__counters(id);
	if (c) {
		__sync_fetch_and_add(&c->flows_closed, 1);
		__sync_fetch_and_add(&c->flow_bytes_sent, sent);
		__sync_fetch_and_add(&c->flow_bytes_received, received);
	}
	/* Only a flow with records has storage (egress_sock_ops); `recorded`
	 * also guards the storage of an older program, which every flow had.
	 * Each target closes its own slot (struct egress_flow): a nested
	 * target's program sees the same close. */
	f = bpf_sk_storage_get(&flows, sk, 0, 0);
	if (!f)
		return 1;
	if (f->recorded && (f->owner == (__u16)id || f->owner == 0)) {
		flow__emit(ctx, EGRESS_EVENT_FLOW_CLOSED, f, bpf_ktime_get_ns(),
			   id, c, 0, sent, received);
		f->recorded = 0;
	} else if (f->owner != 0 && f->recorded1 && f->owner1 == (__u16)id) {
		struct egress_flow one = {
		    .start_ns = f->start_ns1,
		    .rule_id = f->rule_id1,
		    .verdict = f->verdict1,
		    .direction = f->direction,
		};

		flow__emit(ctx, EGRESS_EVENT_FLOW_CLOSED, &one,
			   bpf_ktime_get_ns(), id, c, 0, sent, received);
		f->recorded1 = 0;
	}
	/* The last target to close frees it (else the socket's end does). */
	if (!f->recorded && (f->owner == 0 || !f->recorded1))
		bpf_sk_storage_delete(&flows, sk);
	return 1;
}

/*
 * Keeps a flow with records in a slot of its socket's storage (struct
 * egress_flow) for target `id`: slot 0 when free, else slot 1 (a second,
 * nested target). False when both are taken (a third nested target): that
 * target's flow then gets no records at all, so that established and
 * closed still come in pairs.
 */
static __always_inline int flow__keep(struct egress_flow *f,
				      const struct egress_flow *flow, __u32 id)
{
	if (!f->recorded) {
		*f = *flow;
		f->owner = (__u16)id;
		f->recorded = 1;
		return 1;
	}
	if (f->owner == 0 || f->recorded1)
		return 0;
	f->start_ns1 = flow->start_ns;
	f->rule_id1 = flow->rule_id;
	f->verdict1 = flow->verdict;
	f->owner1 = (__u16)id;
	f->recorded1 = 1;
	return 1;
}

/*
 * The life of a target's TCP connections: established (active = the target
 * connected, passive = it accepted) and closed, with bytes and RTT, so each
 * connection becomes a flow record. An active connection that no rule
 * allows (connected before enforcement, or passed in) is "unexplained".
 *
 * Cost: the kernel calls this program for a few ops of every socket of the
 * cgroup whatever it asks for (TCP_CONNECT, TIMEOUT_INIT, RWND_INIT,
 * NEEDS_ECN, ...): those return at the first compare. The only callbacks
 * asked for are state changes (BPF_SOCK_OPS_STATE_CB_FLAG, to see the
 * close), and only on sockets that became flows, plus the RTO callback as
 * the mark of an inbound flow (FLOW_INBOUND_MARK); no RTT, retransmit or
 * header-option callbacks. Only the close does any work. A flow's socket
 * storage exists only when it has records (at most
 * EGRESS_EVENTS_PER_WINDOW per key and window, flow__admit): counting a
 * flow needs none (flow__bytes), and creating and freeing it was the
 * largest cost of a connection.
 */
SEC("sockops")
int egress_sock_ops(struct bpf_sock_ops *ctx)
{
	struct egress_target_config *cfg;
	struct egress_counters *c;
	struct egress_flow flow = {}, *f;
	struct egress_dest d = {};
	struct bpf_sock *sk;
	__u32 op = ctx->op, id;
	__s64 suppressed;
	__u64 now;

	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	/* Flows are a cgroup target's: the root instance of user targets is
	 * never attached to this hook (callbacks run in no task's context),
	 * nor is a watch instance. */
	if (egress_target_id == EGRESS_TARGET_BY_UID ||
	    egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	/* State callbacks come only for flows (established under an enforced
	 * target, below): the close needs no config lookup. */
	if (op == BPF_SOCK_OPS_STATE_CB)
		return flow__on_state(ctx, sk);
	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	c = target__counters(id);
	now = bpf_ktime_get_ns();
	flow.start_ns = now;
	flow.verdict = EGRESS_VERDICT_ALLOW;
	flow.direction = EGRESS_DIR_INBOUND;
	flow__remote(ctx, &d);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		struct egress_decision dec;

		flow.direction = EGRESS_DIR_OUTBOUND;
		names__decide_dest(id, cfg, &d, &dec, ctx, now);
		flow.rule_id = dec.rule_id;
		if (dec.verdict != EGRESS_VERDICT_ALLOW) {
			flow.verdict = EGRESS_VERDICT_UNEXPLAINED;
			if (c)
				__sync_fetch_and_add(&c->flows_unexplained, 1);
		}
	}
	if (c)
		__sync_fetch_and_add(&c->flows_opened, 1);
	/* Ask for state changes, to see the close: every flow's, records or
	 * not, so flows_closed and the flow bytes are exact. */
	bpf_sock_ops_cb_flags_set(
	    ctx,
	    ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG |
		(flow.direction == EGRESS_DIR_INBOUND ? FLOW_INBOUND_MARK : 0));
	suppressed = flow__admit(ctx, &flow, &d, now, id, cfg, c);
	if (suppressed < 0)
		return 1;
	/* Storage only for a flow with records: what its closed record needs
	 * (start, rule, verdict, direction). Without it, no record at all, so
	 * established and closed still come in pairs. */
	f = bpf_sk_storage_get(&flows, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!f || !flow__keep(f, &flow, id))
		return 1;
	flow__emit(ctx, EGRESS_EVENT_FLOW_ESTABLISHED, &flow, now, id, c,
		   (__u32)suppressed, 0, 0);
	return 1;
}

/*
 * ---- AF_UNIX hooks (Linux 6.7+) ----
 * connect() (stream, seqpacket, and datagram default peers) and sendto() /
 * sendmsg() with an address on a datagram socket. lib/unix.h holds the
 * decision. libbpf 1.1 does not know these section names: the loader sets
 * the program type and the attach types (EGRESS_ATTACH_CGROUP_UNIX_*)
 * itself, and leaves the programs out where the kernel lacks the hooks.
 */
SEC("cgroup/connect_unix")
int egress_connect_unix(struct bpf_sock_addr *ctx)
{
	return unix__decide(ctx, EGRESS_HOOK_CONNECT_UNIX);
}

SEC("cgroup/sendmsg_unix")
int egress_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return unix__decide(ctx, EGRESS_HOOK_SENDMSG_UNIX);
}
