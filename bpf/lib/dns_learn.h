/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Learning names from the target's own DNS traffic, in the kernel, with no
 * userspace in the path (docs/dns.md, "Learning").
 *
 * What:
 *   dns__on_query()  skb_egress: a query a target's socket sends to port 53
 *                    (UDP, or the first message of a TCP segment) is
 *                    remembered in dns_queries, with whether a rule of the
 *                    target allows that resolver;
 *   dns__on_answer() skb_ingress: a message from port 53 to a target's
 *                    socket is parsed (lib/dns.h) and counts only if it
 *                    answers a remembered query of that very socket (same
 *                    server, ports, transaction id and question); then its
 *                    addresses are bound, in dns_bindings, to every name rule
 *                    of the target that matches the question (found in
 *                    dns_names, most specific first), until
 *                    max(TTL, floor).
 * Why here: cgroup_skb/ingress runs when the datagram or segment is
 * delivered to the socket, before the application can read it, so the
 * binding exists before the application can connect to the address; and it
 * runs whether egressd lives or not.
 * Audit learning: a target in audit mode has its queries remembered and its
 * answers checked the same way whatever its rules, and every matched answer
 * with addresses is also reported to egressd (lib/dns_record.h), so that it
 * learns by which name each destination was reached.
 * Every message from port 53 is counted once in egress_dns_counters, by what
 * became of it.
 */
#ifndef EGRESS_BPF_LIB_DNS_LEARN_H_
#define EGRESS_BPF_LIB_DNS_LEARN_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/dns.h"
#include "lib/dns_record.h"
#include "lib/rules.h"

enum { DNS__SLOT_QUERY = 0, DNS__SLOT_ANSWER = 1 };

/* Where a DNS message sits in a packet and who it is between. */
struct dns__frame {
	__u32 server[4]; /* the resolver's address, IPv4 in server[0] */
	__be16 local_port;
	__be16 server_port;
	__u8 family; /* of the packet: EGRESS_FAMILY_IPV4 / _IPV6 */
	__u8 proto;
	__u32 off; /* the DNS message */
	__u32 len;
	/* TCP only: where the segment's payload starts, its sequence number
	 * (host order) and flags. */
	__u32 payload;
	__u32 seq;
	__u8 tcp_flags;
};

#define DNS__TCP_SYN 0x02
#define DNS__TCP_ACK 0x10

struct dns__learn_ctx {
	struct egress_dns_learn *ls;
	struct egress_dns_counters *dc;
	__u64 netns; /* the binding key's netns_cookie */
};

/* Whether a target learns names at all: enforcing or auditing, with name
 * rules. Checked before any packet is parsed. */
static __always_inline int dns__learns(const struct egress_target_config *cfg)
{
	return cfg && cfg->mode != EGRESS_MODE_OFF &&
	       (cfg->flags & EGRESS_TF_NAME_RULES);
}

/* Whether the target's DNS traffic is read: it learns names, or it is in
 * audit mode (its answers are reported to egressd). An enforcing target
 * without name rules pays only this check. */
static __always_inline int dns__watches(const struct egress_target_config *cfg)
{
	return cfg && (cfg->mode == EGRESS_MODE_AUDIT ||
		       (cfg->mode != EGRESS_MODE_OFF &&
			(cfg->flags & EGRESS_TF_NAME_RULES)));
}

/* Which ports of a TCP or UDP packet are 53, the server's side: the
 * destination (a query going out), the source (an answer coming in, or a
 * packet sent as a resolver). */
#define DNS_PORT53_DST 1
#define DNS_PORT53_SRC 2

/* DNS_PORT53_* of the packet, 0 when neither or not TCP or UDP. One read of
 * both ports, direct reads only: this is the filter every packet of a
 * target with name rules passes. */
static __always_inline int dns__port53_sides(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__be16 *ports;
	__u32 l4;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return 0;
		proto = ip->protocol;
		l4 = ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 0;
		proto = ip6->nexthdr;
		l4 = sizeof(*ip6);
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	ports = data + (l4 & 0x7f);
	if ((void *)(ports + 2) > end)
		return 0;
	return (ports[1] == bpf_htons(EGRESS_DNS_PORT) ? DNS_PORT53_DST : 0) |
	       (ports[0] == bpf_htons(EGRESS_DNS_PORT) ? DNS_PORT53_SRC : 0);
}

/* Reads the IP and TCP/UDP headers into f. 0 when the packet carries no
 * DNS message we read: a fragment, IPv6 extension headers, a TCP segment
 * without payload (but for a SYN-ACK on ingress: 1, f->tcp_flags says it,
 * dns__stream_at_message needs it). Over TCP the message is the first one
 * of the segment, after its two-octet length; whether a message starts
 * there at all is dns__stream_at_message's to say. */
static __always_inline int dns__frame(struct __sk_buff *skb, int ingress,
				      struct dns__frame *f)
{
	__be16 ports[2];
	__u32 l4;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		if (ip.frag_off & bpf_htons(0x3fff))
			return 0;
		f->family = EGRESS_FAMILY_IPV4;
		f->proto = ip.protocol;
		f->server[0] = ingress ? ip.saddr : ip.daddr;
		l4 = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		f->family = EGRESS_FAMILY_IPV6;
		f->proto = ip6.nexthdr;
		__builtin_memcpy(f->server, ingress ? &ip6.saddr : &ip6.daddr,
				 16);
		l4 = sizeof(ip6);
	} else {
		return 0;
	}
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
		return 0;
	f->local_port = ingress ? ports[1] : ports[0];
	f->server_port = ingress ? ports[0] : ports[1];
	if (f->proto == IPPROTO_UDP) {
		f->off = l4 + 8;
		if (f->off > skb->len)
			return 0;
		f->len = skb->len - f->off;
		return 1;
	}
	if (f->proto == IPPROTO_TCP) {
		__u8 hdr[14]; /* up to the flags */
		__be32 seq;
		__be16 mlen;

		if (bpf_skb_load_bytes(skb, l4, hdr, sizeof(hdr)))
			return 0;
		__builtin_memcpy(&seq, &hdr[4], 4);
		f->seq = bpf_ntohl(seq);
		f->tcp_flags = hdr[13];
		f->off = l4 + (hdr[12] >> 4) * 4;
		f->payload = f->off;
		if (ingress && (f->tcp_flags & DNS__TCP_SYN))
			return 1;
		if (bpf_skb_load_bytes(skb, f->off, &mlen, 2))
			return 0; /* no payload: a SYN, an ACK, a FIN */
		f->off += 2;
		/* A message longer than the segment reads as truncated. */
		f->len = bpf_ntohs(mlen);
		return 1;
	}
	return 0;
}

static __always_inline struct egress_dns_learn *dns__scratch(__u32 slot)
{
	return bpf_map_lookup_elem(&dns_scratch, &slot);
}

static __always_inline struct egress_dns_counters *dns__counters(void)
{
	__u32 id = target__own_id();

	return bpf_map_lookup_elem(&dns_counters, &id);
}

#define dns__count(dc, field) __sync_fetch_and_add(&(dc)->field, 1)

/* Message starts walked per segment: a segment holding more leaves the rest
 * of its stream unread (a resolver writes one answer at a time). */
#define DNS__STREAM_WALK 8

/*
 * Over TCP, whether segment `f` of the resolver's byte stream starts a DNS
 * message: 1 when its two-octet length starts the segment (as dns__frame
 * read it), 2 when the message itself does, its length having ended the
 * segment before (f->off and f->len are set to it), 0 for a segment without
 * data (the SYN-ACK, which fixes the stream's offsets), -1 for data that
 * must not be parsed (counted as ignored_stream). Offsets count from the
 * resolver's initial sequence number, seen in its SYN-ACK (never from the
 * socket's live state, which its owner changes meanwhile). Each message
 * that starts in the segment moves the next start past its length; every
 * value stored in `next` is such a start or the walk stops (`synced` 0, for
 * good): a length split between two segments, more starts than
 * DNS__STREAM_WALK, a SYN-ACK of another sequence. Segments out of order or
 * repeated only miss, never misread: a message not at the start of the
 * segment that carries it is never parsed (the second of two answers in one
 * segment: docs/dns.md).
 */
static __always_inline int dns__stream_at_message(struct __sk_buff *skb,
						  struct dns__frame *f)
{
	struct egress_dns_stream *st;
	struct bpf_sock *sk = skb->sk;
	__u32 off, seglen, next, rel, len;
	__be16 mlen;
	int i, at;

	if (!sk)
		return -1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return -1;
	st = bpf_sk_storage_get(&dns_streams, sk, 0,
				BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return -1;
	if (f->tcp_flags & DNS__TCP_SYN) {
		if (!(f->tcp_flags & DNS__TCP_ACK))
			return 0;
		if (!st->synced && !st->next) {
			st->isn = f->seq;
			st->synced = 1;
		} else if (st->isn != f->seq) {
			st->synced = 0; /* not the stream we counted */
		}
		return 0;
	}
	if (f->payload >= skb->len)
		return 0;
	if (!st->synced)
		return -1;
	seglen = skb->len - f->payload;
	off = f->seq - st->isn - 1;
	/* One read of `next` per step: another CPU may move it meanwhile, and
	 * what is stored must be a start plus its own message's length. */
	next = *(volatile __u32 *)&st->next;
	at = next == off ? 1 : 0;
	if (!at && st->body && st->body == off) {
		at = 2;
		f->off = f->payload;
		f->len = st->body_len;
	}
	for (i = 0; i < DNS__STREAM_WALK; i++) {
		rel = next - off; /* wraps huge when `next` lies before */
		if (rel >= seglen)
			break;
		if (seglen - rel < 2 ||
		    bpf_skb_load_bytes(skb, f->payload + rel, &mlen, 2)) {
			st->synced = 0;
			return -1;
		}
		len = bpf_ntohs(mlen);
		if (seglen - rel == 2) {
			/* The length alone ends the segment: its message
			 * starts the next one. */
			st->body_len = (__u16)len;
			st->body = next + 2;
		}
		next += 2 + len;
		st->next = next;
	}
	/* More starts in this segment than walked: where the next one is, is
	 * not known. */
	if (i == DNS__STREAM_WALK && next - off < seglen)
		st->synced = 0;
	/* A segment of a length alone has no message to read (its message
	 * comes as 2 in the next one). */
	if (at == 1 && seglen == 2)
		return 0;
	return at ? at : -1;
}

static __always_inline void dns__query_key(struct egress_dns_query_key *k,
					   const struct dns__frame *f,
					   __u64 cookie, __u16 id)
{
	k->sock_cookie = cookie;
	k->target_id = target__own_id();
	k->id = id;
	k->local_port = f->local_port;
	k->server_port = f->server_port;
	k->family = f->family;
	k->proto = f->proto;
	__builtin_memcpy(k->server, f->server, 16);
}

/* Whether the target's share of dns_queries admits one more query now
 * (EGRESS_DNS_QUERIES_PER_WINDOW); counts the query over it. The share is a
 * word of the target's own counters, updated without a lock: CPUs racing at
 * a window's start may each open it (a few queries admitted too many),
 * never a count that blocks a later window. */
static __always_inline int dns__query_admitted(struct egress_dns_counters *dc,
					       __u64 now)
{
	__u32 window = (__u32)(now >> EGRESS_DNS_QUERY_WINDOW_SHIFT);

	if ((__u32)(dc->query_window >> 32) != window) {
		__sync_lock_test_and_set(&dc->query_window,
					 (__u64)window << 32 | 1);
		return 1;
	}
	if ((__u32)__sync_fetch_and_add(&dc->query_window, 1) <
	    EGRESS_DNS_QUERIES_PER_WINDOW)
		return 1;
	dns__count(dc, queries_over_rate);
	return 0;
}

/* skb_egress: remembers a query of the target to port 53 (the caller
 * checked dns__watches()). */
static __always_inline void
dns__on_query(struct __sk_buff *skb, const struct egress_target_config *cfg)
{
	struct egress_dns_query_key k = {};
	struct egress_dns_counters *dc;
	struct egress_dns_learn *ls;
	struct egress_decision dec;
	struct egress_dest d = {};
	struct dns__frame f = {};
	__u64 cookie;

	cookie = bpf_get_socket_cookie(skb);
	ls = dns__scratch(DNS__SLOT_QUERY);
	dc = dns__counters();
	if (!cookie || !ls || !dc || !dns__frame(skb, 0, &f))
		return;
	if (!dns__parse_query(skb, f.off, f.len, &ls->parse))
		return;
	d.family = f.family;
	__builtin_memcpy(d.addr32, f.server, 16);
	d.port = f.server_port;
	d.proto = f.proto;
	ls->query.sent_ns = bpf_ktime_get_ns();
	if (!dns__query_admitted(dc, ls->query.sent_ns))
		return;
	rules__decide(cfg->ruleset, &d, &dec);
	ls->query.qtype = ls->parse.out.qtype;
	ls->query.resolver_allowed = dec.verdict == EGRESS_VERDICT_ALLOW;
	dns__name_copy(ls->query.qname, ls->parse.name);
	dns__query_key(&k, &f, cookie, ls->parse.out.id);
	if (!bpf_map_update_elem(&dns_queries, &k, &ls->query, BPF_ANY))
		dns__count(dc, queries);
}

/* The loop index as the verifier must see it: bounded by a check on the very
 * register used (clang would otherwise check a copy). */
static __always_inline __u64 dns__index(__u32 i)
{
	__u64 k = i; /* 64 bits: the register indexed with is the one checked */

	asm volatile("" : "+r"(k));
	return k;
}

static long dns__strlen_step(__u32 i, void *ctx)
{
	struct egress_dns_learn *ls = ((struct dns__learn_ctx *)ctx)->ls;
	__u64 k = dns__index(i);

	if (k >= EGRESS_DNS_NAME_BYTES || !ls->parse.out.qname[k]) {
		ls->qlen = (__u32)k;
		return 1;
	}
	return 0;
}

/* name_key.name = the question's name backwards, NUL after it. Run for
 * those qlen + 1 bytes only: an LPM lookup compares no bit past its key's
 * prefixlen, so what an earlier answer left further on is never read (and
 * each step is a call: all 252 bytes cost more than the rest of a lookup). */
static long dns__reverse_step(__u32 i, void *ctx)
{
	struct egress_dns_learn *ls = ((struct dns__learn_ctx *)ctx)->ls;
	__u64 n = ls->qlen, k = dns__index(i);

	if (k >= EGRESS_DNS_RULE_NAME_BYTES)
		return 1;
	ls->name_key.name[k] =
	    k < n
		? ls->parse.out.qname[(n - 1 - k) & (EGRESS_DNS_NAME_BYTES - 1)]
		: 0;
	return 0;
}

/* Fills ls->patterns with the name rules of `ruleset` matching the
 * question: the longest match of the reversed name in dns_names, then the
 * longest shorter than that, and so on (exact, then wildcards from the most
 * specific). */
static __always_inline void dns__match_names(struct dns__learn_ctx *lc,
					     __u32 ruleset)
{
	struct egress_dns_learn *ls = lc->ls;
	struct egress_dns_name_value *v;
	__u32 bytes;
	int i;

	ls->npatterns = 0;
	ls->qlen = 0;
	bpf_loop(EGRESS_DNS_NAME_BYTES, dns__strlen_step, lc, 0);
	if (!ls->qlen)
		return;
	bytes = ls->qlen + 1;
	if (bytes > EGRESS_DNS_RULE_NAME_BYTES)
		bytes = EGRESS_DNS_RULE_NAME_BYTES;
	bpf_loop(bytes, dns__reverse_step, lc, 0);
	ls->name_key.ruleset = ruleset;
	ls->name_key.prefixlen = EGRESS_DNS_NAME_KEY_FIXED_BITS + bytes * 8;
#pragma unroll
	for (i = 0; i < EGRESS_DNS_MAX_MATCHES; i++) {
		v = bpf_map_lookup_elem(&dns_names, &ls->name_key);
		if (!v)
			return;
		ls->patterns[i] = v->pattern;
		ls->npatterns = i + 1;
		if (v->prefixlen <= EGRESS_DNS_NAME_KEY_FIXED_BITS + 8)
			return;
		ls->name_key.prefixlen = v->prefixlen - 1;
	}
}

/* Binds `pattern` in b until `expires`: renews its slot, or takes a free or
 * expired one; counts a refusal when all are held by other live patterns. */
static __always_inline void dns__bind_slot(struct egress_dns_binding *b,
					   __u64 pattern, __u64 expires,
					   __u64 now,
					   struct egress_dns_counters *dc)
{
	int k;

#pragma unroll
	for (k = 0; k < EGRESS_DNS_BINDING_SLOTS; k++) {
		if (b->slot[k].pattern == pattern) {
			if (b->slot[k].expires_ns < expires)
				b->slot[k].expires_ns = expires;
			dns__count(dc, bindings);
			return;
		}
	}
#pragma unroll
	for (k = 0; k < EGRESS_DNS_BINDING_SLOTS; k++) {
		if (!b->slot[k].pattern || b->slot[k].expires_ns <= now) {
			/* Expiry first: a reader never sees the new pattern
			 * with the old slot's (past) expiry as live. */
			b->slot[k].expires_ns = expires;
			b->slot[k].pattern = pattern;
			dns__count(dc, bindings);
			return;
		}
	}
	dns__count(dc, full);
}

/* True when every slot of b expired EGRESS_DNS_DEAD_NS ago or more: no
 * in-place write may touch it any more (dns_abi.h, "Sweeping"). */
static __always_inline int dns__dead(const struct egress_dns_binding *b,
				     __u64 now)
{
	int k;

#pragma unroll
	for (k = 0; k < EGRESS_DNS_BINDING_SLOTS; k++) {
		if (b->slot[k].pattern &&
		    b->slot[k].expires_ns + EGRESS_DNS_DEAD_NS > now)
			return 0;
	}
	return 1;
}

/* Binds address i of the answer to every pattern found. */
static long dns__bind_step(__u32 i, void *ctx)
{
	struct dns__learn_ctx *lc = ctx;
	struct egress_dns_learn *ls = lc->ls;
	struct egress_dns_counters *dc = lc->dc;
	struct egress_dns_binding_key k = {};
	struct egress_dns_binding *b;
	struct egress_dns_addr *a;
	struct egress_dest d = {};
	__u32 w[4];
	__u64 ttl_ns, expires;
	__u32 n = ls->npatterns;
	__u64 at = dns__index(i);
	int j;

	if (at >= EGRESS_DNS_MAX_ANSWERS)
		return 1;
	a = &ls->parse.out.addrs[at];
	/* Keyed as a connect decides it: an IPv4-mapped AAAA address as the
	 * IPv4 address it is (lib/addr.h), or no connect would ever match. */
	__builtin_memcpy(w, a->addr, 16);
	if (ls->family == EGRESS_FAMILY_IPV6)
		dest__set6(&d, w[0], w[1], w[2], w[3]);
	else
		dest__set4(&d, w[0]);
	k.netns_cookie = lc->netns;
	k.target_id = target__own_id();
	k.family = d.family;
	__builtin_memcpy(k.addr, d.addr32, 16);
	ttl_ns = (__u64)a->ttl * 1000000000ULL;
	if (ttl_ns < ls->floor_ns)
		ttl_ns = ls->floor_ns;
	expires = ls->now_ns + ttl_ns;
	b = bpf_map_lookup_elem(&dns_bindings, &k);
	if (!b || dns__dead(b, ls->now_ns)) {
		struct egress_dns_binding nb = {};

#pragma unroll
		for (j = 0; j < EGRESS_DNS_MAX_MATCHES; j++) {
			if (j < n) {
				nb.slot[j].pattern = ls->patterns[j];
				nb.slot[j].expires_ns = expires;
			}
		}
		/* A dead entry is replaced whole, in one update, never written
		 * in place: egressd may be deleting it (the sweep). */
		if (!bpf_map_update_elem(&dns_bindings, &k, &nb,
					 b ? BPF_ANY : BPF_NOEXIST)) {
			__sync_fetch_and_add(&dc->bindings, n);
			return 0;
		}
		/* Full, or another CPU bound it meanwhile. */
		b = bpf_map_lookup_elem(&dns_bindings, &k);
		if (!b || dns__dead(b, ls->now_ns)) {
			__sync_fetch_and_add(&dc->full, n);
			return 0;
		}
	}
#pragma unroll
	for (j = 0; j < EGRESS_DNS_MAX_MATCHES; j++) {
		if (j < n)
			dns__bind_slot(b, ls->patterns[j], expires, ls->now_ns,
				       dc);
	}
	return 0;
}

/* skb_ingress: learns from an answer to a remembered query (the caller
 * checked dns__watches()). */
static __always_inline void
dns__on_answer(struct __sk_buff *skb, const struct egress_target_config *cfg)
{
	struct egress_dns_query_key k = {};
	struct dns__learn_ctx lc = {};
	struct egress_dns_query *q;
	struct egress_dns_scratch *s;
	struct dns__frame f = {};
	__u64 cookie;
	__u8 allowed;

	cookie = bpf_get_socket_cookie(skb);
	lc.ls = dns__scratch(DNS__SLOT_ANSWER);
	lc.dc = dns__counters();
	if (!cookie || !lc.ls || !lc.dc || !dns__frame(skb, 1, &f))
		return;
	if (f.proto == IPPROTO_TCP) {
		/* 2: f now points at the message body (see there). */
		int at = dns__stream_at_message(skb, &f);

		if (at < 0)
			dns__count(lc.dc, ignored_stream);
		if (at <= 0)
			return;
	}
	s = &lc.ls->parse;
	dns__count(lc.dc, answers);
	dns__parse(skb, f.off, f.len, s);
	if (s->out.reason != EGRESS_DNS_OK) {
		dns__count(lc.dc, ignored_malformed);
		if (s->out.reason < EGRESS_DNS_REASON_COUNT)
			__sync_fetch_and_add(&lc.dc->by_reason[s->out.reason],
					     1);
		return;
	}
	dns__query_key(&k, &f, cookie, s->out.id);
	q = bpf_map_lookup_elem(&dns_queries, &k);
	if (!q || q->qtype != s->out.qtype ||
	    !dns__name_eq(q->qname, s->out.qname)) {
		dns__count(lc.dc, ignored_no_query);
		return;
	}
	allowed = q->resolver_allowed;
	/* Answered: a second answer to the same query opens nothing more. */
	bpf_map_delete_elem(&dns_queries, &k);
	/* Audit: reported whatever the rules (the resolver too is learned). */
	if (cfg->mode == EGRESS_MODE_AUDIT && s->out.naddrs)
		dns__emit_answer(f.server, f.server_port, f.family, f.proto,
				 &s->out);
	if (!allowed) {
		dns__count(lc.dc, ignored_resolver);
		return;
	}
	dns__count(lc.dc, answers_matched);
	if (!s->out.naddrs) {
		dns__count(lc.dc, answers_empty);
		return;
	}
	if (cfg->flags & EGRESS_TF_NAME_RULES)
		dns__match_names(&lc, cfg->ruleset);
	else
		lc.ls->npatterns = 0;
	if (!lc.ls->npatterns) {
		dns__count(lc.dc, ignored_no_rule);
		return;
	}
	lc.ls->family = s->out.qtype == EGRESS_DNS_TYPE_A ? EGRESS_FAMILY_IPV4
							  : EGRESS_FAMILY_IPV6;
	lc.ls->now_ns = bpf_ktime_get_ns();
	/* The namespace of the socket the answer reached: the binding opens
	 * connects from there only (dns_abi.h, egress_dns_binding_key). */
	lc.netns = egress_netns_cookies ? bpf_get_netns_cookie(skb) : 0;
	lc.ls->floor_ns =
	    (__u64)(cfg->dns_ttl_floor ? cfg->dns_ttl_floor
				       : EGRESS_DNS_TTL_FLOOR_DEFAULT) *
	    1000000000ULL;
	bpf_loop(s->out.naddrs, dns__bind_step, &lc, 0);
}

/* Every network namespace's loopback device has this index. */
#define DNS__LOOPBACK_IFINDEX 1

/*
 * skb_egress, for a target that learns names (dns__learns): whether the
 * packet is delivered on this host (it leaves by a loopback device: to any
 * address of the host, or of a namespace's own) from port 53 of an address
 * the target may query as its resolver (a rule allows that address and
 * port, on that protocol). Such a packet could answer the target's own
 * queries: a socket of the target that takes a running loopback resolver's
 * address as its source (IP_PKTINFO, or a bind while the resolver is down),
 * or a resolver the target runs itself, could name any address. `d` is set
 * to that resolver. The answer path cannot tell who sent a datagram; the
 * sender's own hook can. Packets to other hosts are not looked at: a
 * resolver in the target still answers its clients elsewhere.
 */
static __always_inline int
dns__resolver_source(struct __sk_buff *skb,
		     const struct egress_target_config *cfg,
		     struct egress_dest *d)
{
	struct egress_decision dec;

	if (skb->ifindex != DNS__LOOPBACK_IFINDEX)
		return 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		dest__set4(d, ip.saddr);
		d->proto = ip.protocol;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u32 a[4];

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		__builtin_memcpy(a, &ip6.saddr, 16);
		dest__set6(d, a[0], a[1], a[2], a[3]);
		d->proto = ip6.nexthdr;
	} else {
		return 0;
	}
	if (d->proto != IPPROTO_UDP && d->proto != IPPROTO_TCP)
		return 0;
	d->port = bpf_htons(EGRESS_DNS_PORT);
	rules__decide(cfg->ruleset, d, &dec);
	return dec.verdict == EGRESS_VERDICT_ALLOW;
}

#endif /* EGRESS_BPF_LIB_DNS_LEARN_H_ */
