/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The held-back record sweep. The rate limit (lib/ratelimit.h) counts the
 * records it holds back in the slot of their destination and reports the
 * count on the next record for that destination; a destination never tried
 * again would keep its count forever. egressd runs this program with
 * BPF_PROG_TEST_RUN about every 0.5 s (kernel/limit_sweeper.cc): for each
 * slot with a count whose window has passed, it reserves a summary record
 * (EGRESS_EVENT_HELD_BACK), takes the count with one compare-and-exchange
 * (window and emitted count kept) and submits the record; when the
 * exchange loses a race against a hook (a new decision, a new window) the
 * record is discarded and the count stays for that decision or the next
 * sweep. So every held-back decision is reported exactly once: on a
 * record of its destination or on one summary.
 * Loaded against the pinned maps (pin_root_path), never attached.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The loop's state, on the stack: the verifier lets the callback write
 * the context only at fixed offsets, so the results are copied to `args`
 * once at the end. */
struct sweep_ctx {
	__u32 first_set;
	__u32 now_w;
	__u32 records;
	__u32 reported;
	__u32 raced;
	__u32 ring_full;
};

/* Summarizes the slot's pending count. Returns 1 to stop (ring full). */
static __always_inline int sweep_slot(struct egress_limit_slot *s,
				      struct sweep_ctx *c)
{
	struct egress_event *e;
	__u64 state = *(volatile __u64 *)&s->state;
	__u64 pending = state & EGRESS_LIMIT_SUPPRESSED_MASK;

	if (pending == 0)
		return 0;
	/* While the window runs, the count may still grow; its next record
	 * or this sweep after the window reports it. */
	if (c->now_w - (__u32)(state >> EGRESS_LIMIT_WINDOW_SHIFT) <
	    EGRESS_EVENT_WINDOW_UNITS)
		return 0;
	e = bpf_ringbuf_reserve(&events, EGRESS_EVENT_INET_BYTES, 0);
	if (!e) {
		c->ring_full = 1;
		return 1;
	}
	__builtin_memset(e, 0, EGRESS_EVENT_INET_BYTES);
	e->ts_ns = bpf_ktime_get_ns();
	e->target_id = s->key.target_id;
	e->family = s->key.family;
	e->proto = s->key.proto;
	e->port = s->key.port;
	e->verdict = s->key.verdict;
	e->hook = s->key.hook;
	__builtin_memcpy(e->addr, s->key.addr, 16);
	e->reason = EGRESS_REASON_RATE_LIMITED;
	e->kind = EGRESS_EVENT_HELD_BACK;
	e->suppressed = (__u32)pending;
	/* Taken only if nothing changed since the read: then the key read
	 * above is the one the count belongs to (a slot taken over gets a new
	 * state), and no hook took or added to the count meanwhile. */
	if (__sync_val_compare_and_swap(
		&s->state, state, state & ~EGRESS_LIMIT_SUPPRESSED_MASK) !=
	    state) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		c->raced++;
		return 0;
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	c->records++;
	c->reported += (__u32)pending;
	return 0;
}

static long sweep_set(__u32 i, void *data)
{
	struct sweep_ctx *c = data;
	__u32 idx = c->first_set + i;
	struct egress_limit_set *set = bpf_map_lookup_elem(&event_limits, &idx);

	if (!set)
		return 1; /* past the last set */
	if (sweep_slot(&set->way[0], c))
		return 1;
	return sweep_slot(&set->way[1], c);
}

SEC("syscall")
int sweep_held_back(struct egress_sweep_args *args)
{
	struct sweep_ctx c = {
	    .first_set = args->first_set,
	    .now_w = (__u32)(bpf_ktime_get_ns() >> EGRESS_EVENT_WINDOW_SHIFT),
	};
	__u32 sets = args->sets;

	if (sets > EGRESS_MAX_EVENT_LIMITS / EGRESS_EVENT_LIMIT_WAYS)
		sets = EGRESS_MAX_EVENT_LIMITS / EGRESS_EVENT_LIMIT_WAYS;
	bpf_loop(sets, sweep_set, &c, 0);
	args->records = c.records;
	args->reported = c.reported;
	args->raced = c.raced;
	args->ring_full = c.ring_full;
	return 0;
}
