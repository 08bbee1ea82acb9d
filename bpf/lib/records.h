/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Records for egressd: the events ring buffer.
 *
 * What: event__reserve() (a zeroed record stamped with the target, or NULL
 * counted as lost), event__fill_verdict() (a verdict record's decision
 * fields) and event__emit() (one verdict record, rate limited; a unix one
 * with its path).
 * Why here: every record kind (verdicts here, flows in egress.bpf.c) goes
 * through event__reserve(), so a full ring buffer is counted the same way
 * everywhere. Records are submitted with BPF_RB_NO_WAKEUP: egressd drains on
 * a short timer, so a flood costs no reader wake-up per record.
 */
#ifndef EGRESS_BPF_LIB_RECORDS_H_
#define EGRESS_BPF_LIB_RECORDS_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/ratelimit.h"

/* A zeroed record of `size` bytes for target `target_id`
 * (EGRESS_EVENT_INET_BYTES, or sizeof(struct egress_event) for a unix record
 * with its path; a constant at every call site, as bpf_ringbuf_reserve needs),
 * or NULL (counted as lost) when the ring buffer is full. */
static __always_inline struct egress_event *
event__reserve(__u32 target_id, struct egress_counters *c, __u32 size)
{
	struct egress_event *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e) {
		if (c)
			__sync_fetch_and_add(&c->events_lost, 1);
		return NULL;
	}
	__builtin_memset(e, 0, size);
	e->target_id = target_id;
	return e;
}

/* The decision fields of a verdict record made at `now`, `suppressed`
 * (limit__admit) riding on it. */
static __always_inline void event__fill_verdict(struct egress_event *e,
						const struct egress_dest *d,
						__u8 hook, __u8 verdict,
						__u8 reason, __u32 rule_id,
						__u64 now, __s64 suppressed)
{
	e->ts_ns = now;
	e->rule_id = rule_id;
	e->suppressed = (__u32)suppressed;
	__builtin_memcpy(e->addr, d->addr32, 16);
	e->port = d->port;
	e->family = d->family;
	e->proto = d->proto;
	e->hook = hook;
	e->verdict = verdict;
	e->reason = reason;
	e->kind = EGRESS_EVENT_VERDICT;
}

/* One verdict record, unless rate limited. `unix_addr` is NULL for inet
 * records (a literal NULL at those call sites, so the unix branch compiles
 * away there) and the address of a unix decision, carried in the record. */
static __always_inline void
event__emit(__u32 target_id, const struct egress_dest *d, __u8 hook,
	    __u8 verdict, __u8 reason, __u32 rule_id, __u8 sock_type,
	    struct egress_counters *c, int has_task, __u8 flags,
	    const struct egress_unix_key *unix_addr)
{
	struct egress_event *e;
	__s64 suppressed;
	__u64 now;

	if (flags & EGRESS_TF_EVENT_NONE)
		return;
	now = bpf_ktime_get_ns();
	suppressed = limit__admit(target_id, d, hook, verdict, now, c);
	if (suppressed < 0)
		return;
	if (unix_addr) {
		e = event__reserve(target_id, c, sizeof(*e));
		if (!e)
			return;
		e->path_len = unix_addr->len;
		__builtin_memcpy(e->path, unix_addr->path, sizeof(e->path));
	} else {
		e = event__reserve(target_id, c, EGRESS_EVENT_INET_BYTES);
		if (!e)
			return;
	}
	event__fill_verdict(e, d, hook, verdict, reason, rule_id, now,
			    suppressed);
	e->sock_type = sock_type;
	if (has_task) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		e->cgroup_id = bpf_get_current_cgroup_id();
		e->pid = (__u32)pid_tgid;
		e->tgid = pid_tgid >> 32;
		e->uid = (__u32)bpf_get_current_uid_gid();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

#endif /* EGRESS_BPF_LIB_RECORDS_H_ */
