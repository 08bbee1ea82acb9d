/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Rule lookup, counters and verdict records. */
#ifndef EGRESS_BPF_LIB_VERDICT_H_
#define EGRESS_BPF_LIB_VERDICT_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"

/* Set by egressd between open and load: the target this instance enforces. */
const volatile __u32 egress_target_id = 0;

struct egress_decision {
	__u32 rule_id;
	__u8 verdict; /* EGRESS_VERDICT_ALLOW or _DENY before the mode is
			 applied */
	__u8 reason;
};

static __always_inline struct egress_target_config *target__config(void)
{
	__u32 id = egress_target_id;

	return bpf_map_lookup_elem(&targets, &id);
}

static __always_inline struct egress_counters *target__counters(void)
{
	__u32 id = egress_target_id;

	return bpf_map_lookup_elem(&counters, &id);
}

static __always_inline void rules__decide(__u32 ruleset,
					  const struct egress_dest *d,
					  struct egress_decision *out)
{
	struct egress_rule_key key = {};
	struct egress_rule_value *v;
	__u16 port_class = 0;

	out->verdict = EGRESS_VERDICT_DENY;
	out->reason = EGRESS_REASON_NO_MATCH;
	out->rule_id = 0;
	if (!ruleset)
		return;

	if (d->proto == IPPROTO_TCP || d->proto == IPPROTO_UDP) {
		struct egress_port_key pk = {
		    .prefixlen = EGRESS_PORT_KEY_FIXED_BITS + 16,
		    .ruleset = ruleset,
		    .proto = d->proto,
		    .port = d->port,
		};
		struct egress_port_value *pv =
		    bpf_map_lookup_elem(&port_classes, &pk);

		if (pv)
			port_class = pv->port_class;
	}

	key.prefixlen = EGRESS_RULE_KEY_FIXED_BITS +
			(d->family == EGRESS_FAMILY_IPV4 ? 32 : 128);
	key.ruleset = ruleset;
	key.proto = d->proto;
	key.family = d->family;
	__builtin_memcpy(key.addr, d->addr32, 16);

	/* The port's own class first, then the any-port class: two lookups at
	 * most, whatever the number of rules. */
	v = NULL;
	if (port_class) {
		key.port_class = bpf_htons(port_class);
		v = bpf_map_lookup_elem(&rules, &key);
	}
	if (!v) {
		key.port_class = bpf_htons(EGRESS_PORT_CLASS_ANY);
		v = bpf_map_lookup_elem(&rules, &key);
	}
	if (!v)
		return;
	out->rule_id = v->rule_id;
	if (v->verdict == EGRESS_VERDICT_ALLOW) {
		out->verdict = EGRESS_VERDICT_ALLOW;
		out->reason = EGRESS_REASON_MATCH_ALLOW;
	} else {
		out->reason = EGRESS_REASON_MATCH_DENY;
	}
}

static __always_inline void peer__key(struct egress_peer_key *k,
				      const struct egress_dest *d,
				      __u32 local_port_host)
{
	k->target_id = egress_target_id;
	k->family = d->family;
	k->local_port = bpf_htons((__u16)local_port_host);
	k->peer_port = d->port;
	__builtin_memcpy(k->addr, d->addr32, 16);
}

/* True when the peer sent to this local UDP port first (a server reply). */
static __always_inline int peer__known(const struct egress_dest *d,
				       struct bpf_sock *sk)
{
	struct egress_peer_key k = {};
	struct egress_peer_value *v;

	if (!sk || d->proto != IPPROTO_UDP || !sk->src_port)
		return 0;
	peer__key(&k, d, sk->src_port);
	v = bpf_map_lookup_elem(&udp_peers, &k);
	/* A peer silent for longer than the TTL is a stranger again. */
	return v && bpf_ktime_get_ns() - v->last_seen_ns < EGRESS_PEER_TTL_NS;
}

static __always_inline __u32 counters__proto_index(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return EGRESS_CTR_TCP;
	if (proto == IPPROTO_UDP)
		return EGRESS_CTR_UDP;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return EGRESS_CTR_ICMP;
	return EGRESS_CTR_OTHER;
}

static __always_inline void counters__verdict(struct egress_counters *c,
					      __u32 kind, __u8 proto)
{
	__u32 p = counters__proto_index(proto);

	if (!c || kind >= EGRESS_CTR_KINDS || p >= EGRESS_CTR_PROTOS)
		return;
	__sync_fetch_and_add(&c->by_proto[kind][p], 1);
}

static __always_inline void rule__hit(__u32 rule_id)
{
	struct egress_rule_hit_key k = {
	    .target_id = egress_target_id,
	    .rule_id = rule_id,
	};
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&rule_hits, &k);
	if (v) {
		/* Atomic: a packet hook in softirq may interrupt a task's hook
		 * on this CPU and count the same rule. */
		__sync_fetch_and_add(v, 1);
		return;
	}
	bpf_map_update_elem(&rule_hits, &k, &one, BPF_NOEXIST);
}

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
 * silent for a multiple of that may find its old window still open Racing
 * increments past 7 emitted would carry into the window start: at worst a
 * window restarted early.
 */
static __always_inline __s64 limit__admit(const struct egress_dest *d,
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

	k.target_id = (__u16)egress_target_id;
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

/* A zeroed record for this target, or NULL (counted as lost) when the ring
 * buffer is full. */
static __always_inline struct egress_event *
event__reserve(struct egress_counters *c)
{
	struct egress_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		if (c)
			__sync_fetch_and_add(&c->events_lost, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->target_id = egress_target_id;
	return e;
}

static __always_inline void event__emit(const struct egress_dest *d, __u8 hook,
					__u8 verdict, __u8 reason,
					__u32 rule_id, __u8 sock_type,
					struct egress_counters *c, int has_task,
					__u8 flags)
{
	struct egress_event *e;
	__s64 suppressed;
	__u64 now;

	if (flags & EGRESS_TF_EVENT_NONE)
		return;
	now = bpf_ktime_get_ns();
	suppressed = limit__admit(d, hook, verdict, now, c);
	if (suppressed < 0)
		return;
	e = event__reserve(c);
	if (!e)
		return;
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
	e->sock_type = sock_type;
	e->kind = EGRESS_EVENT_VERDICT;
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

/*
 * Applies the target's mode to a rule decision, counts it and reports it.
 * has_task: the hook runs in the context of the calling task, so pid, uid and
 * comm can be read (not so for packets).
 * Returns 1 to let the operation through, 0 to refuse it with EPERM.
 */
static __always_inline int
verdict__apply(const struct egress_target_config *cfg,
	       const struct egress_dest *d, __u8 hook,
	       struct egress_decision *dec, __u8 sock_type, int has_task)
{
	struct egress_counters *c = target__counters();

	rule__hit(dec->rule_id);
	/* One counter per decision: the totals (allowed, denied, ...) are sums
	 * of by_proto, derived by egressd. */
	if (dec->verdict == EGRESS_VERDICT_ALLOW) {
		counters__verdict(c,
				  dec->reason == EGRESS_REASON_UDP_REPLY
				      ? EGRESS_CTR_REPLIES
				      : EGRESS_CTR_ALLOWED,
				  d->proto);
		if (cfg->flags & EGRESS_TF_EVENT_ALLOW)
			event__emit(d, hook, EGRESS_VERDICT_ALLOW, dec->reason,
				    dec->rule_id, sock_type, c, has_task,
				    cfg->flags);
		return 1;
	}
	if (cfg->mode == EGRESS_MODE_AUDIT) {
		counters__verdict(c, EGRESS_CTR_AUDITED, d->proto);
		event__emit(d, hook, EGRESS_VERDICT_AUDIT, dec->reason,
			    dec->rule_id, sock_type, c, has_task, cfg->flags);
		return 1;
	}
	if (c && dec->reason == EGRESS_REASON_SOCKET_TYPE)
		__sync_fetch_and_add(&c->sockets_denied, 1);
	else if (c && dec->reason == EGRESS_REASON_SOURCE_ROUTE)
		__sync_fetch_and_add(&c->srcroute_denied, 1);
	counters__verdict(c, EGRESS_CTR_DENIED, d->proto);
	event__emit(d, hook, EGRESS_VERDICT_DENY, dec->reason, dec->rule_id,
		    sock_type, c, has_task, cfg->flags);
	return 0;
}

/* The whole decision for a connect or sendmsg destination. */
static __always_inline int verdict__connect(struct egress_dest *d, __u8 hook,
					    struct bpf_sock *sk)
{
	struct egress_target_config *cfg = target__config();
	struct egress_decision dec;

	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	rules__decide(cfg->ruleset, d, &dec);
	/* An explicit deny still wins over a reply. */
	if (dec.reason == EGRESS_REASON_NO_MATCH && peer__known(d, sk)) {
		dec.verdict = EGRESS_VERDICT_ALLOW;
		dec.reason = EGRESS_REASON_UDP_REPLY;
		dec.rule_id = 0;
	}
	return verdict__apply(cfg, d, hook, &dec, 0, 1);
}

#endif /* EGRESS_BPF_LIB_VERDICT_H_ */
