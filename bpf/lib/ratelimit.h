/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record rate limit: how many records a destination may cause.
 *
 * What: limit__admit(), per (target, destination, verdict, hook), over the
 * event_limits set-associative table.
 * Why here: a flood of denials to one destination must not flood the ring
 * buffer or egressd, yet the counters (counters.h) stay exact; records.h
 * asks this header before reserving a record, and the suppressed count it
 * returns travels on the next record that is let through.
 */
#ifndef EGRESS_BPF_LIB_RATELIMIT_H_
#define EGRESS_BPF_LIB_RATELIMIT_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"

/* Nonzero unless slot `s` holds the key `w` (6 words). */
static __always_inline __u32 limit__differs(const struct egress_limit_slot *s,
					    const __u32 *w)
{
	const __u32 *sw = (const __u32 *)&s->key;
	__u32 diff = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(s->key) / 4); i++)
		diff |= sw[i] ^ w[i];
	return diff;
}

/*
 * The per (target, destination, verdict, hook) rate limit. Returns -1 when
 * the record must be held back (and counts it), else the number of records
 * held back since the last one for this key, to be reported in this one.
 *
 * The keys live in a 2-way set-associative table (event_limits, an array of
 * one-cache-line sets): the key's hash picks a set, and a key found in
 * neither way takes over the way with the older window. That is one inlined
 * array index and one cache line instead of an LRU hash insert (bucket
 * lock, LRU list lock, free-list pop) for every new destination, which made
 * an admitted record cost more than the denied connect itself. A key that
 * loses its slot loses its pending count, as it did when the LRU evicted
 * it: events_suppressed counted each held-back record already, so records +
 * events_suppressed + events_lost still equals the decisions.
 * Slots are shared by all CPUs without a lock: two CPUs racing on one slot
 * can let a record too many through or hold one too many back, and a torn
 * key read as a miss starts a new window; never a count lost from the
 * counters, which are incremented on every path.
 * The window clock is 32 bits of ns >> 20: it wraps after 52 days, so a key
 * silent for a multiple of that may find its old window still open. Racing
 * increments past 7 emitted would carry into the window start: at worst a
 * window restarted early.
 */
static __always_inline __s64 limit__admit(__u32 target_id,
					  const struct egress_dest *d,
					  __u8 hook, __u8 verdict, __u64 now,
					  struct egress_counters *c)
{
	struct egress_limit_key k = {};
	struct egress_limit_set *set;
	struct egress_limit_slot *s;
	const __u32 *w = (const __u32 *)&k;
	__u32 now_w = (__u32)(now >> EGRESS_EVENT_WINDOW_SHIFT);
	__u64 h = 0, state, fresh;
	__u32 idx;
	int i;

	k.target_id = (__u16)target_id;
	k.family = d->family;
	k.proto = d->proto;
	k.port = d->port;
	k.verdict = verdict;
	k.hook = hook;
	__builtin_memcpy(k.addr, d->addr32, 16);
#pragma unroll
	for (i = 0; i < (int)(sizeof(k) / 4); i++)
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
	idx = (__u32)(h >> 32) &
	      (EGRESS_MAX_EVENT_LIMITS / EGRESS_EVENT_LIMIT_WAYS - 1);
	set = bpf_map_lookup_elem(&event_limits, &idx);
	if (!set) /* never: idx is masked below max_entries */
		return 0;
	/* A new window: this record is its first. */
	fresh = (__u64)now_w << EGRESS_LIMIT_WINDOW_SHIFT |
		1ULL << EGRESS_LIMIT_EMITTED_SHIFT;
	if (!limit__differs(&set->way[0], w)) {
		s = &set->way[0];
	} else if (!limit__differs(&set->way[1], w)) {
		s = &set->way[1];
	} else {
		/* Take the way with the older window over: the previous key's
		 * pending count is dropped (events_suppressed has it). */
		__u32 age0 = now_w - (__u32)(set->way[0].state >>
					     EGRESS_LIMIT_WINDOW_SHIFT);
		__u32 age1 = now_w - (__u32)(set->way[1].state >>
					     EGRESS_LIMIT_WINDOW_SHIFT);

		s = age0 >= age1 ? &set->way[0] : &set->way[1];
		__builtin_memcpy(&s->key, &k, sizeof(k));
		s->state = fresh;
		return 0;
	}
	state = s->state;
	if (now_w - (__u32)(state >> EGRESS_LIMIT_WINDOW_SHIFT) >=
	    EGRESS_EVENT_WINDOW_UNITS) {
		/* Exchange, so a concurrent increment is never lost. */
		state = __sync_lock_test_and_set(&s->state, fresh);
		return (__s64)(state & EGRESS_LIMIT_SUPPRESSED_MASK);
	}
	if (((state >> EGRESS_LIMIT_EMITTED_SHIFT) & 7) <
	    EGRESS_EVENTS_PER_WINDOW) {
		__sync_fetch_and_add(&s->state,
				     1ULL << EGRESS_LIMIT_EMITTED_SHIFT);
		return 0;
	}
	__sync_fetch_and_add(&s->state, 1);
	if (c)
		__sync_fetch_and_add(&c->events_suppressed, 1);
	return -1;
}

#endif /* EGRESS_BPF_LIB_RATELIMIT_H_ */
