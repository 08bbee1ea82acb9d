/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DNS-answer record of audit learning (docs/dns.md, "Audit learning").
 *
 * What: dns__emit_answer(), one egress_dns_answer_event into the events ring
 * buffer: the question, the answer's addresses with their TTLs and the
 * resolver it came from.
 * Why: a target in audit mode has no name rules yet, so nothing is bound;
 * egressd learns which name each address it then reaches was resolved from,
 * and `egressctl suggest` proposes domainNames rules. Only answers matching a
 * query the target sent get here (lib/dns_learn.h), so a forged answer names
 * nothing. Submitted without a wake-up, as every record (lib/records.h).
 */
#ifndef EGRESS_BPF_LIB_DNS_RECORD_H_
#define EGRESS_BPF_LIB_DNS_RECORD_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "maps.h"
#include "lib/config.h"
#include "lib/counters.h"

#define DNS__RECORD_HEAD                                                       \
	__builtin_offsetof(struct egress_dns_answer_event, qname)

/* `server` is the resolver (IPv4 in server[0]); `out` the parsed answer. */
static __always_inline void
dns__emit_answer(const __u32 *server, __be16 server_port, __u8 server_family,
		 __u8 proto, const struct egress_dns_outcome *out)
{
	struct egress_dns_answer_event *e;
	struct egress_counters *c;
	const __u64 *from;
	__u64 *to;
	int i;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c = target__counters(target__own_id());
		if (c)
			__sync_fetch_and_add(&c->events_lost, 1);
		return;
	}
	__builtin_memset(e, 0, DNS__RECORD_HEAD);
	e->ts_ns = bpf_ktime_get_ns();
	e->target_id = target__own_id();
	e->qtype = out->qtype;
	e->naddrs = out->naddrs;
	e->proto = proto;
	__builtin_memcpy(e->server, server, 16);
	e->server_port = server_port;
	e->server_family = server_family;
	e->kind = EGRESS_EVENT_DNS_ANSWER;
	/* Word by word: both sides are 8-byte aligned, and a memcpy this long
	 * would not be inlined. */
	from = (const __u64 *)out->qname;
	to = (__u64 *)e->qname;
#pragma unroll
	for (i = 0; i < EGRESS_DNS_NAME_BYTES / 8; i++)
		to[i] = from[i];
	from = (const __u64 *)out->addrs;
	to = (__u64 *)e->addrs;
#pragma unroll
	for (i = 0; i < (int)(sizeof(e->addrs) / 8); i++)
		to[i] = from[i];
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

#endif /* EGRESS_BPF_LIB_DNS_RECORD_H_ */
