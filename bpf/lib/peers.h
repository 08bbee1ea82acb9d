/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * UDP peers: who may be answered without a rule.
 *
 * What: peer__record() (recvmsg hooks: a peer sent to a target's UDP socket)
 * and peer__known() (connect/sendmsg: is this destination such a peer of
 * this very socket, seen within EGRESS_PEER_TTL_NS).
 * Why here: a UDP server must be able to reply to clients no rule names;
 * the udp_peers LRU map is the only state that decides it, and the key
 * layout must be built the same way by writer and reader (peer__key). In
 * front of it on the receive path only, the socket's own cache of the
 * peers it recorded this epoch (udp_peer_cache, peer_cache__*) makes a
 * known peer's datagram one socket-storage lookup and a compare.
 * The key holds the socket's cookie (and, before Linux 5.10, its network
 * namespace's cookie, peer__netns_cookie): a process of the target that
 * makes a network namespace of its own can make any address "send" to a
 * socket there, and that must not let another socket, in the host's
 * namespace, answer the made-up peer. The cookies are helper calls, paid
 * on the reply path (a destination no rule matched) and on a recorded
 * datagram the socket's cache (udp_peer_cache) does not spare.
 */
#ifndef EGRESS_BPF_LIB_PEERS_H_
#define EGRESS_BPF_LIB_PEERS_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"

/* The kernel's cookie generator, only to ask whether it exists: it came
 * with Linux 5.10, which made socket cookies unique across network
 * namespaces (before, each namespace counted its own from 1). */
struct gen_cookie {
	__u64 *local_last;
} __attribute__((preserve_access_index));

/* A socket's cookie names it alone where the kernel has gen_cookie (libbpf
 * resolves the test at load): the netns cookie is then 0 in every key,
 * and the helper call is spared. Before 5.10 two sockets in two network
 * namespaces could share a cookie, and the netns cookie tells them apart. */
static __always_inline __u64 peer__netns_cookie(struct bpf_sock_addr *ctx)
{
	if (bpf_core_type_exists(struct gen_cookie))
		return 0;
	return bpf_get_netns_cookie(ctx);
}

static __always_inline void
peer__key(struct egress_peer_key *k, __u32 target_id, struct bpf_sock_addr *ctx,
	  const struct egress_dest *d, __u32 local_port_host)
{
	k->netns_cookie = peer__netns_cookie(ctx);
	k->sock_cookie = bpf_get_socket_cookie(ctx);
	k->target_id = target_id;
	k->family = d->family;
	k->local_port = bpf_htons((__u16)local_port_host);
	k->peer_port = d->port;
	__builtin_memcpy(k->addr, d->addr32, 16);
}

/* True when the peer sent to this socket first (a server reply), while the
 * socket served target `target_id`. */
static __always_inline int peer__known(__u32 target_id,
				       const struct egress_dest *d,
				       struct bpf_sock_addr *ctx)
{
	struct egress_peer_key k = {};
	struct egress_peer_value *v;
	struct bpf_sock *sk = ctx->sk;

	if (!sk || d->proto != IPPROTO_UDP || !sk->src_port)
		return 0;
	peer__key(&k, target_id, ctx, d, sk->src_port);
	v = bpf_map_lookup_elem(&udp_peers, &k);
	/* A peer silent for longer than the TTL is a stranger again. */
	return v && bpf_ktime_get_ns() - v->last_seen_ns < EGRESS_PEER_TTL_NS;
}

/*
 * Inserts a new peer (`k`, seen at `now`) in udp_peers and counts it in its
 * target's counters: every entry made (and only by its maker: NOEXIST lets
 * one of two racing inserts through), and every insert that failed but for
 * that race, so that egressd can tell the entries the LRU evicted from
 * those still there (peer_evictions.h). 0: recorded now (or meanwhile);
 * -1: not recorded. A function of its own, so that the counting stays out
 * of the code of the known peer's path, which never gets here.
 */
static __noinline int peer__insert(struct egress_peer_key *k, __u64 now)
{
	struct egress_peer_value fresh = {.last_seen_ns = now};
	struct egress_counters *c;
	long err;

	/* NOEXIST: a peer recorded meanwhile is recorded all the same. */
	err = bpf_map_update_elem(&udp_peers, k, &fresh, BPF_NOEXIST);
	if (err == -17 /* EEXIST */)
		return 0;
	/* Atomic: two tasks may run this on one CPU (programs are not
	 * preempt-disabled). */
	c = bpf_map_lookup_elem(&counters, &k->target_id);
	if (err) {
		if (c)
			__sync_fetch_and_add(&c->peers_not_recorded, 1);
		return -1;
	}
	if (c)
		__sync_fetch_and_add(&c->peers_recorded, 1);
	return 0;
}

/*
 * Records `d` in udp_peers for the socket of `ctx` and target `id`: a known
 * peer's timestamp is rewritten in place, and only once it is
 * EGRESS_PEER_REFRESH_NS old (the TTL is 300 s; a second of slack is
 * nothing to it, and one store a second per peer keeps the entry's cache
 * line from bouncing between CPUs that read it). Only a new peer takes an
 * LRU node (bucket and LRU locks, a free-list pop, maybe an eviction;
 * peer__insert). The lookup also marks the entry referenced, so the LRU
 * evicts peers that went quiet before the ones a server is talking to.
 * 1: the peer was known; 0: recorded now; -1: not recorded.
 */
static __always_inline int peer__remember(__u32 id, struct egress_dest *d,
					  struct bpf_sock_addr *ctx,
					  __u32 local_port_host)
{
	struct egress_peer_key k = {};
	struct egress_peer_value *v;
	__u64 now;

	peer__key(&k, id, ctx, d, local_port_host);
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&udp_peers, &k);
	if (v) {
		if (now - v->last_seen_ns >= EGRESS_PEER_REFRESH_NS)
			v->last_seen_ns = now;
		return 1;
	}
	return peer__insert(&k, now);
}

/* The way of a peer in the socket's cache: an IPv4 peer as one u64 (never
 * 0), and the set it belongs to, by a multiplicative hash. */
static __always_inline __u64 peer_cache__ident4(const struct egress_dest *d)
{
	return (__u64)d->addr32[0] | (__u64)d->port << 32 | 1ULL << 48;
}

static __always_inline __u32 peer_cache__set(__u64 x, __u32 sets)
{
	__u32 h = (__u32)((x * 0x9E3779B97F4A7C15ULL) >> 32);

	return (__u32)(((__u64)h * sets) >> 32);
}

static __always_inline __u64 peer_cache__fold6(const struct egress_dest *d)
{
	return ((__u64)(d->addr32[0] ^ d->addr32[2]) << 32 |
		(d->addr32[1] ^ d->addr32[3])) ^
	       d->port;
}

static __always_inline int peer_cache__same6(const struct egress_peer6 *p,
					     const struct egress_dest *d)
{
	const __u32 *a = (const __u32 *)p->addr;

	return p->used && p->port == d->port && a[0] == d->addr32[0] &&
	       a[1] == d->addr32[1] && a[2] == d->addr32[2] &&
	       a[3] == d->addr32[3];
}

/* True when the cache (of the current generation) holds `d`. */
static __always_inline int peer_cache__has(struct egress_peer_cache *c,
					   const struct egress_dest *d)
{
	__u32 i;

	if (d->family == EGRESS_FAMILY_IPV4) {
		__u64 ident = peer_cache__ident4(d);
		struct egress_peer_set4 *s;

		i = peer_cache__set(ident, EGRESS_PEER_CACHE_SETS4);
		if (i >= EGRESS_PEER_CACHE_SETS4)
			return 0;
		s = &c->v4[i];
		if (s->gen != c->gen)
			return 0;
#pragma unroll
		for (i = 0; i < EGRESS_PEER_CACHE_WAYS4; i++) {
			if (s->peer[i] == ident)
				return 1;
		}
		return 0;
	}
	{
		struct egress_peer_set6 *s;

		i = peer_cache__set(peer_cache__fold6(d),
				    EGRESS_PEER_CACHE_SETS6);
		if (i >= EGRESS_PEER_CACHE_SETS6)
			return 0;
		s = &c->v6[i];
		if (s->gen != c->gen)
			return 0;
		return peer_cache__same6(&s->peer[0], d) ||
		       peer_cache__same6(&s->peer[1], d);
	}
}

/* Puts `d` (just found or recorded in udp_peers) into an empty way of its
 * set; a full set keeps the peers it has (they stay cached for the epoch;
 * `d` goes to udp_peers on each datagram). */
static __always_inline void peer_cache__add(struct egress_peer_cache *c,
					    const struct egress_dest *d)
{
	__u32 i, gen = c->gen;

	if (d->family == EGRESS_FAMILY_IPV4) {
		__u64 ident = peer_cache__ident4(d);
		struct egress_peer_set4 *s;

		i = peer_cache__set(ident, EGRESS_PEER_CACHE_SETS4);
		if (i >= EGRESS_PEER_CACHE_SETS4)
			return;
		s = &c->v4[i];
		if (s->gen != gen) {
			__builtin_memset(s->peer, 0, sizeof(s->peer));
			s->gen = gen;
		}
#pragma unroll
		for (i = 0; i < EGRESS_PEER_CACHE_WAYS4; i++) {
			if (!s->peer[i]) {
				s->peer[i] = ident;
				return;
			}
		}
		return;
	}
	{
		struct egress_peer_set6 *s;
		struct egress_peer6 *p;

		i = peer_cache__set(peer_cache__fold6(d),
				    EGRESS_PEER_CACHE_SETS6);
		if (i >= EGRESS_PEER_CACHE_SETS6)
			return;
		s = &c->v6[i];
		if (s->gen != gen) {
			s->peer[0].used = 0;
			s->peer[1].used = 0;
			s->gen = gen;
		}
		p = &s->peer[0];
		if (p->used) {
			p = &s->peer[1];
			if (p->used)
				return;
		}
		__builtin_memcpy(p->addr, d->addr32, 16);
		p->port = d->port;
		p->used = 1;
	}
}

/*
 * Remembers that `d` sent to the socket of `ctx` (an enforced target only:
 * a target switched off records nothing). Runs on every datagram a target's
 * UDP socket reads with its source address, so the steady state (a peer
 * already known) must cost next to nothing: the socket's cache
 * (udp_peer_cache, abi.h) says whether this socket recorded the peer in
 * udp_peers in this epoch, for this target, generation of its peers
 * (peer_gens) and local port; only a
 * peer it does not hold goes to udp_peers (peer__remember), and is cached
 * once udp_peers has it. A peer is cached only after udp_peers holds it,
 * and the reply path reads udp_peers alone, so the cache can spare a
 * refresh but never record or answer anyone. A new peer always misses it.
 * Entries egressd deletes with a removed target are covered by the peer
 * generation it adds after. What the cache can delay: a cached peer whose
 * udp_peers entry the LRU evicted (a flood of peers past EGRESS_MAX_PEERS)
 * is recorded again at its first datagram of the next epoch, not at once.
 */
static __always_inline void peer__record(struct egress_dest *d,
					 struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_peer_cache *c;
	struct bpf_sock *sk = ctx->sk;
	__u32 id, peer_gen, *pg;
	__be16 local_port;
	__u64 epoch;
	int valid, known;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF || !sk || !sk->src_port)
		return;
	pg = bpf_map_lookup_elem(&peer_gens, &id);
	peer_gen = pg ? *pg : 0;
	local_port = bpf_htons((__u16)sk->src_port);
	epoch = bpf_jiffies64() >> EGRESS_PEER_CACHE_EPOCH_SHIFT;
	c = bpf_sk_storage_get(&udp_peer_cache, sk, 0, 0);
	valid = c && c->epoch == epoch && c->target_id == id &&
		c->peer_gen == peer_gen && c->local_port == local_port;
	if (valid && peer_cache__has(c, d))
		return;
	known = peer__remember(id, d, ctx, sk->src_port);
	if (known < 0)
		return;
	if (!c) {
		/* A socket's first datagram from a peer makes no cache: a
		 * client that reads one answer per peer never needs one. */
		if (!known)
			return;
		c = bpf_sk_storage_get(&udp_peer_cache, sk, 0,
				       BPF_SK_STORAGE_GET_F_CREATE);
		if (!c)
			return;
		valid = 0;
	}
	if (!valid) {
		c->epoch = epoch;
		c->target_id = id;
		c->peer_gen = peer_gen;
		c->local_port = local_port;
		c->gen++;
	}
	peer_cache__add(c, d);
}

#endif /* EGRESS_BPF_LIB_PEERS_H_ */
