/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DNS answer parser: a message in an skb -> struct egress_dns_outcome.
 * The same parse as the C++ reference (userspace/dns/dns_answer.cc), proved
 * equal by tests/privileged/dns_parse_fuzz_test.cc through the kernel;
 * docs/dns.md states it. In order, stopping at the first problem:
 *   the view: the first EGRESS_DNS_MAX_VIEW octets are copied once;
 *   header: 12 octets; QR set; opcode QUERY; TC clear; QDCOUNT 1;
 *   question: the name, type and class readable; class IN; type A or AAAA;
 *   an rcode other than NOERROR ends the parse: a typed answer, no records;
 *   ANCOUNT at most EGRESS_DNS_MAX_ANSWERS;
 *   each answer record, in order: owner name; type, class, TTL and RDLENGTH
 *     readable; RDATA readable; class IN; a CNAME's RDATA is exactly a name
 *     and an A's 4 octets, an AAAA's 16. A record counts when its owner is
 *     the chain's current name (the question's, until a counted CNAME moves
 *     it to its target); a counted record of the question's type adds an
 *     address. Other types are skipped.
 * The authority and additional sections are never read.
 */
#ifndef EGRESS_BPF_LIB_DNS_H_
#define EGRESS_BPF_LIB_DNS_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/dns_abi.h"
#include "lib/dns_name.h"

#define DNS__QR 0x8000
#define DNS__OPCODE 0x7800
#define DNS__TC 0x0200
#define DNS__RCODE 0x000f

/* The name records are matched against: the question's, or the last
 * CNAME target counted. */
static __always_inline const char *dns__current(struct egress_dns_scratch *s)
{
	return s->out.ncnames ? s->out.cname : s->out.qname;
}

static __always_inline void dns__add_addr(struct egress_dns_scratch *s,
					  __u32 rdata, __u32 rdlen, __u32 ttl)
{
	__u32 n = s->out.naddrs;
	struct egress_dns_addr *a;
	int i;

	/* At most one address per answer record, so never full. */
	if (n >= EGRESS_DNS_MAX_ANSWERS)
		return;
	a = &s->out.addrs[n];
	for (i = 0; i < 16; i++)
		a->addr[i] = i < rdlen ? dns__u8(s, rdata + i) : 0;
	a->ttl = ttl > 0x7fffffff ? 0 : ttl;
	s->out.naddrs = n + 1;
}

/* RDATA of a CNAME: exactly one name. Follows it when the owner counts. */
static __always_inline long dns__cname(struct egress_dns_scratch *s,
				       __u32 rdata, __u32 rdlen, int counts)
{
	if (!dns__read_name(s, rdata))
		return 1;
	if (s->end != rdata + rdlen)
		return dns__fail(s, EGRESS_DNS_RDLENGTH);
	if (counts) {
		dns__name_copy(s->out.cname, s->name);
		s->out.ncnames++;
	}
	return 0;
}

static __always_inline long dns__address(struct egress_dns_scratch *s,
					 __u16 type, __u32 rdata, __u32 rdlen,
					 __u32 ttl, int counts)
{
	__u32 want = type == EGRESS_DNS_TYPE_A ? 4 : 16;

	if (rdlen != want)
		return dns__fail(s, EGRESS_DNS_RDLENGTH);
	if (counts && type == s->out.qtype)
		dns__add_addr(s, rdata, rdlen, ttl);
	return 0;
}

static long dns__record(__u32 i, void *ctx)
{
	struct egress_dns_scratch *s = ((struct dns__loop_ctx *)ctx)->s;
	__u32 at, rdata, rdlen, ttl;
	__u16 type;
	int counts;

	if (!dns__read_name(s, s->pos))
		return 1;
	counts = dns__name_eq(s->name, dns__current(s));
	at = s->end;
	if (!dns__readable(s, at, 10))
		return 1;
	type = dns__u16(s, at);
	ttl = ((__u32)dns__u16(s, at + 4) << 16) | dns__u16(s, at + 6);
	rdlen = dns__u16(s, at + 8);
	rdata = at + 10;
	if (!dns__readable(s, rdata, rdlen))
		return 1;
	if (dns__u16(s, at + 2) != EGRESS_DNS_CLASS_IN)
		return dns__fail(s, EGRESS_DNS_RECORD_CLASS);
	s->pos = rdata + rdlen;
	if (type == EGRESS_DNS_TYPE_CNAME)
		return dns__cname(s, rdata, rdlen, counts);
	if (type == EGRESS_DNS_TYPE_A || type == EGRESS_DNS_TYPE_AAAA)
		return dns__address(s, type, rdata, rdlen, ttl, counts);
	return 0;
}

/* Header and question. 1 when the parse stops here (s->out.reason says
 * whether with a problem), as a bpf_loop callback's return would. */
static __always_inline long dns__head(struct egress_dns_scratch *s)
{
	__u16 flags = dns__u16(s, 2), qtype;
	__u32 at;

	s->out.id = dns__u16(s, 0);
	s->out.flags = flags;
	s->out.rcode = flags & DNS__RCODE;
	if (!(flags & DNS__QR))
		return dns__fail(s, EGRESS_DNS_NOT_RESPONSE);
	if (flags & DNS__OPCODE)
		return dns__fail(s, EGRESS_DNS_OPCODE);
	if (flags & DNS__TC)
		return dns__fail(s, EGRESS_DNS_TC);
	if (dns__u16(s, 4) != 1)
		return dns__fail(s, EGRESS_DNS_QDCOUNT);
	if (!dns__read_name(s, EGRESS_DNS_HEADER_BYTES))
		return 1;
	dns__name_copy(s->out.qname, s->name);
	at = s->end;
	if (!dns__readable(s, at, 4))
		return 1;
	qtype = dns__u16(s, at);
	if (dns__u16(s, at + 2) != EGRESS_DNS_CLASS_IN)
		return dns__fail(s, EGRESS_DNS_QCLASS);
	if (qtype != EGRESS_DNS_TYPE_A && qtype != EGRESS_DNS_TYPE_AAAA)
		return dns__fail(s, EGRESS_DNS_QTYPE);
	s->out.qtype = qtype;
	s->pos = at + 4;
	/* Another rcode: the answer is the question alone. */
	return s->out.rcode != 0;
}

/* Resets the outcome and copies the view of the `len` octets at `off`.
 * 1 when the header is readable and copied; 0 with s->out.reason set. */
static __always_inline int dns__load(struct __sk_buff *skb, __u32 off,
				     __u32 len, struct egress_dns_scratch *s)
{
	/* 64 bits wide, so that the bounds checked are the register passed. */
	__u64 view = len < EGRESS_DNS_MAX_VIEW ? len : EGRESS_DNS_MAX_VIEW;

	__builtin_memset(&s->out, 0, 16);
	s->out.qname[0] = 0;
	s->out.cname[0] = 0;
	s->len = len;
	s->view = view;
	if (!dns__readable(s, 0, EGRESS_DNS_HEADER_BYTES))
		return 0;
	/* Keeps clang from checking a copy and passing the unchecked value. */
	asm volatile("" : "+r"(view));
	if (view < EGRESS_DNS_HEADER_BYTES || view > EGRESS_DNS_MAX_VIEW ||
	    bpf_skb_load_bytes(skb, off, s->msg, view)) {
		dns__fail(s, EGRESS_DNS_TRUNCATED);
		return 0;
	}
	return 1;
}

/* Parses the DNS message of `len` octets at `off` in the skb into s->out.
 * The caller owns s (a map value; see struct egress_dns_scratch). */
static __always_inline void dns__parse(struct __sk_buff *skb, __u32 off,
				       __u32 len, struct egress_dns_scratch *s)
{
	struct dns__loop_ctx lc = {.s = s};
	__u16 ancount;

	if (!dns__load(skb, off, len, s))
		return;
	if (dns__head(s))
		return;
	ancount = dns__u16(s, 6);
	if (ancount > EGRESS_DNS_MAX_ANSWERS) {
		dns__fail(s, EGRESS_DNS_TOO_MANY_ANSWERS);
		return;
	}
	bpf_loop(ancount, dns__record, &lc, 0);
}

/* Reads the question of a query (QR clear, opcode QUERY, one question of
 * class IN and type A or AAAA) into s->name and s->out.qtype, with the
 * transaction id in s->out.id. 1 when the message is such a query. The
 * product remembers it so that only the answer to it counts
 * (lib/dns_learn.h); other queries are not remembered. */
static __always_inline int dns__parse_query(struct __sk_buff *skb, __u32 off,
					    __u32 len,
					    struct egress_dns_scratch *s)
{
	__u16 flags, qtype;
	__u32 at;

	if (!dns__load(skb, off, len, s))
		return 0;
	flags = dns__u16(s, 2);
	s->out.id = dns__u16(s, 0);
	if ((flags & (DNS__QR | DNS__OPCODE)) || dns__u16(s, 4) != 1)
		return 0;
	if (!dns__read_name(s, EGRESS_DNS_HEADER_BYTES))
		return 0;
	at = s->end;
	if (!dns__readable(s, at, 4))
		return 0;
	qtype = dns__u16(s, at);
	if (dns__u16(s, at + 2) != EGRESS_DNS_CLASS_IN ||
	    (qtype != EGRESS_DNS_TYPE_A && qtype != EGRESS_DNS_TYPE_AAAA))
		return 0;
	s->out.qtype = qtype;
	return 1;
}

#endif /* EGRESS_BPF_LIB_DNS_H_ */
