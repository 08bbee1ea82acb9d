/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Exact counts: per-target verdict counters and per-rule hits.
 *
 * What: target__counters() (this CPU's counters of the target),
 * counters__verdict() (one decision, by kind and protocol) and rule__hit().
 * Why here: counters are the numbers egressd reports and that must stay
 * exact when records are rate limited or the ring buffer is full, so they
 * are kept apart from records.h and bumped on every path. egressd sums them
 * over CPUs and derives the totals (SharedMaps::Counters).
 */
#ifndef EGRESS_BPF_LIB_COUNTERS_H_
#define EGRESS_BPF_LIB_COUNTERS_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/config.h"

/* This CPU's counters of the target; NULL never expected (array map). */
static __always_inline struct egress_counters *target__counters(__u32 id)
{
	return bpf_map_lookup_elem(&counters, &id);
}

static __always_inline __u32 counters__proto_index(__u8 family, __u8 proto)
{
	if (family == EGRESS_FAMILY_UNIX)
		return EGRESS_CTR_UNIX;
	if (proto == IPPROTO_TCP)
		return EGRESS_CTR_TCP;
	if (proto == IPPROTO_UDP)
		return EGRESS_CTR_UDP;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return EGRESS_CTR_ICMP;
	return EGRESS_CTR_OTHER;
}

/* Counts one decision of `kind` (EGRESS_CTR_ALLOWED, ...) for `proto` of
 * `family` (every unix decision counts under EGRESS_CTR_UNIX). */
static __always_inline void counters__verdict(struct egress_counters *c,
					      __u32 kind, __u8 family,
					      __u8 proto)
{
	__u32 p = counters__proto_index(family, proto);

	if (!c || kind >= EGRESS_CTR_KINDS || p >= EGRESS_CTR_PROTOS)
		return;
	__sync_fetch_and_add(&c->by_proto[kind][p], 1);
}

/* Counts one decision of target `target_id` by rule `rule_id` (0: the
 * default action); when rule_hits has no room for a new key, counts it in
 * the target's rule_hits_not_counted instead. */
static __always_inline void rule__hit(__u32 target_id, __u32 rule_id)
{
	struct egress_rule_hit_key k = {
	    .target_id = target_id,
	    .rule_id = rule_id,
	};
	struct egress_counters *c;
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&rule_hits, &k);
	if (!v) {
		if (!bpf_map_update_elem(&rule_hits, &k, &one, BPF_NOEXIST))
			return;
		/* Another CPU made the key meanwhile: count on it. */
		v = bpf_map_lookup_elem(&rule_hits, &k);
	}
	if (v) {
		/* Atomic: a packet hook in softirq may interrupt a task's hook
		 * on this CPU and count the same rule. */
		__sync_fetch_and_add(v, 1);
		return;
	}
	/* The map is full: counted as not counted, so that egressd can say so
	 * (egressd deletes the keys of rules that are gone, so only live
	 * rules fill it). */
	c = target__counters(target_id);
	if (c)
		__sync_fetch_and_add(&c->rule_hits_not_counted, 1);
}

#endif /* EGRESS_BPF_LIB_COUNTERS_H_ */
