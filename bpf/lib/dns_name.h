/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading a DNS name out of the message copy in struct egress_dns_scratch:
 * one octet per bpf_loop step, so the verifier checks the step once however
 * long the name. The checks, in the order docs/dns.md states them (the C++
 * reference, userspace/dns/dns_name_reader.cc, makes the same ones in the
 * same order; the differential test holds them equal):
 *   length octet: readable, else TRUNCATED / TOO_LONG;
 *   11xxxxxx: a pointer. Its second octet readable; the target before the
 *     pointer (else POINTER_FORWARD) and before the run of labels that holds
 *     the pointer (else POINTER_LOOP), so targets strictly decrease and no
 *     name can loop; at most EGRESS_DNS_MAX_POINTERS of them;
 *   01xxxxxx, 10xxxxxx: LABEL_TOO_LONG (64..191);
 *   0: the root, the name ends;
 *   1..63: the name with this label and the root fits in 255 octets (else
 *     NAME_TOO_LONG), the label lies in the message (else TRUNCATED /
 *     TOO_LONG), then each character is a letter (folded to lower case), a
 *     digit, '-' or '_' (else NAME_CHAR).
 */
#ifndef EGRESS_BPF_LIB_DNS_NAME_H_
#define EGRESS_BPF_LIB_DNS_NAME_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/dns_abi.h"

#define DNS__MASK (EGRESS_DNS_MAX_VIEW - 1)
#define DNS__NAME_MASK (EGRESS_DNS_NAME_BYTES - 1)
#define DNS__NAME_WORDS (EGRESS_DNS_NAME_BYTES / 8)
/* Octets of the longest name, the pointers allowed, and one step more for
 * the pointer that is refused. */
#define DNS__NAME_STEPS (EGRESS_DNS_MAX_WIRE_NAME + EGRESS_DNS_MAX_POINTERS + 1)

/* bpf_loop takes its context on the stack: the scratch pointer rides in it. */
struct dns__loop_ctx {
	struct egress_dns_scratch *s;
};

static __always_inline long dns__fail(struct egress_dns_scratch *s, __u8 reason)
{
	s->out.reason = reason;
	return 1;
}

/* True when octets [at, at + n) are in the view. Otherwise records why not:
 * past the message's end is TRUNCATED, past only the view TOO_LONG. */
static __always_inline int dns__readable(struct egress_dns_scratch *s, __u32 at,
					 __u32 n)
{
	__u32 end = at + n;

	if (end <= s->view)
		return 1;
	dns__fail(s, end > s->len ? EGRESS_DNS_TRUNCATED : EGRESS_DNS_TOO_LONG);
	return 0;
}

static __always_inline __u8 dns__u8(struct egress_dns_scratch *s, __u32 at)
{
	return s->msg[at & DNS__MASK];
}

static __always_inline __u16 dns__u16(struct egress_dns_scratch *s, __u32 at)
{
	return ((__u16)dns__u8(s, at) << 8) | dns__u8(s, at + 1);
}

/* The character as stored in a name, or 0 when a name may not hold it. */
static __always_inline char dns__fold(__u8 c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	    c == '_')
		return c;
	return 0;
}

static __always_inline long dns__pointer(struct egress_dns_scratch *s, __u32 at,
					 __u8 first)
{
	__u32 target;

	if (!dns__readable(s, at, 2))
		return 1;
	target = ((__u32)(first & 0x3f) << 8) | dns__u8(s, at + 1);
	if (target >= at)
		return dns__fail(s, EGRESS_DNS_POINTER_FORWARD);
	if (target >= s->run)
		return dns__fail(s, EGRESS_DNS_POINTER_LOOP);
	if (s->jumps >= EGRESS_DNS_MAX_POINTERS)
		return dns__fail(s, EGRESS_DNS_TOO_MANY_POINTERS);
	s->jumps++;
	if (!s->end)
		s->end = at + 2;
	s->npos = target;
	s->run = target;
	return 0;
}

/* One character of the current label. Its bounds were checked with its
 * length octet. */
static __always_inline long dns__label_char(struct egress_dns_scratch *s)
{
	char c = dns__fold(dns__u8(s, s->npos));

	if (!c)
		return dns__fail(s, EGRESS_DNS_NAME_CHAR);
	s->name[s->tlen & DNS__NAME_MASK] = c;
	s->tlen++;
	s->npos++;
	s->left--;
	return 0;
}

static long dns__name_step(__u32 i, void *ctx)
{
	struct egress_dns_scratch *s = ((struct dns__loop_ctx *)ctx)->s;
	__u32 at = s->npos;
	__u8 len;

	if (s->left)
		return dns__label_char(s);
	if (!dns__readable(s, at, 1))
		return 1;
	len = dns__u8(s, at);
	if ((len & 0xc0) == 0xc0)
		return dns__pointer(s, at, len);
	if (len & 0xc0)
		return dns__fail(s, EGRESS_DNS_LABEL_TOO_LONG);
	if (!len) {
		s->wire++;
		if (!s->end)
			s->end = at + 1;
		s->done = 1;
		return 1;
	}
	if (s->wire + len + 2 > EGRESS_DNS_MAX_WIRE_NAME)
		return dns__fail(s, EGRESS_DNS_NAME_TOO_LONG);
	if (!dns__readable(s, at + 1, len))
		return 1;
	s->wire += len + 1;
	if (s->tlen)
		s->name[s->tlen++ & DNS__NAME_MASK] = '.';
	s->left = len;
	s->npos = at + 1;
	return 0;
}

/* Reads the name written at `at` into s->name (text form, zero-padded) and
 * s->end (the octet after it where it was written). 1 on success; 0 with
 * s->out.reason set otherwise. */
static __always_inline int dns__read_name(struct egress_dns_scratch *s,
					  __u32 at)
{
	struct dns__loop_ctx lc = {.s = s};
	__u64 *w = (__u64 *)s->name;
	int i;

	for (i = 0; i < DNS__NAME_WORDS; i++)
		w[i] = 0;
	s->npos = at;
	s->run = at;
	s->end = 0;
	s->wire = 0;
	s->tlen = 0;
	s->left = 0;
	s->jumps = 0;
	s->done = 0;
	bpf_loop(DNS__NAME_STEPS, dns__name_step, &lc, 0);
	if (s->out.reason != EGRESS_DNS_OK)
		return 0;
	/* Unreachable: every step reads an octet of a name of at most 255 or
	 * follows one of the pointers allowed. */
	if (!s->done) {
		dns__fail(s, EGRESS_DNS_NAME_TOO_LONG);
		return 0;
	}
	return 1;
}

static __always_inline int dns__name_eq(const char *a, const char *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	int i;

	for (i = 0; i < DNS__NAME_WORDS; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static __always_inline void dns__name_copy(char *to, const char *from)
{
	const __u64 *y = (const __u64 *)from;
	__u64 *x = (__u64 *)to;
	int i;

	for (i = 0; i < DNS__NAME_WORDS; i++)
		x[i] = y[i];
}

#endif /* EGRESS_BPF_LIB_DNS_NAME_H_ */
