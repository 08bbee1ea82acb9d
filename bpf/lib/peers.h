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
 * front of it on the receive path only, a filter of the peers each socket
 * found there this epoch (udp_peer_filter, peer_filter__*) makes a known
 * peer's datagram a hash and one cache line.
 * The key holds the socket's cookie (and, before Linux 5.10, its network
 * namespace's cookie, peer__netns_cookie): a process of the target that
 * makes a network namespace of its own can make any address "send" to a
 * socket there, and that must not let another socket, in the host's
 * namespace, answer the made-up peer. The cookies are helper calls, paid
 * on the reply path (a destination no rule matched) and on every recorded
 * datagram (the socket's cookie is in the filter's hash too).
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

/* The udp_peers key of peer `d` of the socket of `ctx` (whose
 * bpf_get_socket_cookie() is `sock_cookie`). */
static __always_inline void
peer__key(struct egress_peer_key *k, __u32 target_id, struct bpf_sock_addr *ctx,
	  __u64 sock_cookie, const struct egress_dest *d, __u32 local_port_host)
{
	k->netns_cookie = peer__netns_cookie(ctx);
	k->sock_cookie = sock_cookie;
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
	peer__key(&k, target_id, ctx, bpf_get_socket_cookie(ctx), d,
		  sk->src_port);
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
					  __u64 sock_cookie,
					  __u32 local_port_host)
{
	struct egress_peer_key k = {};
	struct egress_peer_value *v;
	__u64 now;

	peer__key(&k, id, ctx, sock_cookie, d, local_port_host);
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&udp_peers, &k);
	if (v) {
		if (now - v->last_seen_ns >= EGRESS_PEER_REFRESH_NS)
			v->last_seen_ns = now;
		return 1;
	}
	return peer__insert(&k, now);
}

/* An epoch of udp_peer_filter is jiffies >> this: 8.2 s at HZ=250, 2.0 s
 * at HZ=1000, 20.5 s at HZ=100. A peer in the filter goes to udp_peers at
 * its first datagram of every epoch, so its last_seen_ns trails its last
 * datagram by at most EGRESS_PEER_REFRESH_NS plus an epoch, far inside
 * EGRESS_PEER_TTL_NS (300 s); long enough that a server's peers that send
 * every few seconds stay in the filter from one datagram to the next. */
#define EGRESS_PEER_FILTER_EPOCH_SHIFT 11

/* One word into the hash: a multiply and a shift, so that every word
 * enters through the state mixed by the words before it (a datagram
 * crafted to collide with another peer's must know the socket's cookie,
 * which goes in first). */
static __always_inline __u64 peer_filter__step(__u64 h, __u64 word)
{
	h = (h ^ word) * 0x9E3779B97F4A7C15ULL;
	return h ^ (h >> 29);
}

/* The hash of what a way of udp_peer_filter stands for (abi.h): the socket
 * (and its network namespace where cookies are counted per namespace),
 * target, peer generation, local port, peer and epoch; the finalizer of
 * MurmurHash3 spreads the last words over the set bits (the top ones). */
static __always_inline __u64 peer_filter__hash(
    __u64 sock_cookie, struct bpf_sock_addr *ctx, __u32 id, __u32 peer_gen,
    __u32 local_port_host, const struct egress_dest *d, __u64 epoch)
{
	__u64 h;

	h = peer_filter__step(0x6A09E667F3BCC909ULL, sock_cookie);
	h = peer_filter__step(h, peer__netns_cookie(ctx));
	h = peer_filter__step(h, (__u64)id << 32 | peer_gen);
	h = peer_filter__step(h, epoch << 40 | (__u64)d->family << 32 |
				     local_port_host << 16 | d->port);
	h = peer_filter__step(h, (__u64)d->addr32[0] << 32 | d->addr32[1]);
	h = peer_filter__step(h, (__u64)d->addr32[2] << 32 | d->addr32[3]);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* The way of hash `h` in `epoch`: never 0 (an empty way). */
static __always_inline __u64 peer_filter__way(__u64 h, __u64 epoch)
{
	return 1ULL << 63 | (h & EGRESS_PEER_FILTER_PRINT_MASK) << 8 |
	       (epoch & 0xff);
}

/* A way that holds nothing of this epoch: empty, or an older epoch's. */
static __always_inline int peer_filter__stale(__u64 way, __u64 epoch)
{
	return !(way >> 63) || (way & 0xff) != (epoch & 0xff);
}

/*
 * Remembers that `d` sent to the socket of `ctx` (an enforced target only:
 * a target switched off records nothing). Runs on every datagram a target's
 * UDP socket reads with its source address, so the steady state (a peer
 * already known) must cost next to nothing: udp_peer_filter (abi.h) says
 * whether this socket's peer was found or recorded in udp_peers in this
 * epoch, for this target, generation of its peers (peer_gens) and local
 * port; only a peer it does not hold goes to udp_peers (peer__remember). A
 * peer enters the filter only once udp_peers holds it, and the reply path
 * reads udp_peers alone, so the filter can spare a refresh but never record
 * or answer anyone. (A socket that reads one answer per peer, a DNS
 * client's, fills a way it never uses: one store into a cache line just
 * read, and one way of 262,144, free again the next epoch.) A new peer
 * misses it (but for a fingerprint shared with another peer of its set in
 * this epoch, abi.h). Entries egressd deletes with a removed target are
 * covered by the peer generation it adds after. What the filter can delay:
 * a peer whose udp_peers entry the LRU evicted (a flood of peers past
 * EGRESS_MAX_PEERS) is recorded again at its first datagram of the next
 * epoch, not at once.
 */
static __always_inline void peer__record(struct egress_dest *d,
					 struct bpf_sock_addr *ctx)
{
	struct egress_target_config *cfg;
	struct egress_peer_filter_set *s;
	struct bpf_sock *sk = ctx->sk;
	__u32 id, peer_gen, *pg, i, set;
	__u64 epoch, cookie, h, way;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF || !sk || !sk->src_port)
		return;
	pg = bpf_map_lookup_elem(&peer_gens, &id);
	peer_gen = pg ? *pg : 0;
	epoch = bpf_jiffies64() >> EGRESS_PEER_FILTER_EPOCH_SHIFT;
	cookie = bpf_get_socket_cookie(ctx);
	h = peer_filter__hash(cookie, ctx, id, peer_gen, sk->src_port, d,
			      epoch);
	way = peer_filter__way(h, epoch);
	set = (__u32)(h >> (64 - EGRESS_PEER_FILTER_SET_BITS));
	s = bpf_map_lookup_elem(&udp_peer_filter, &set);
	if (s) {
#pragma unroll
		for (i = 0; i < EGRESS_PEER_FILTER_WAYS; i++) {
			if (s->way[i] == way)
				return;
		}
	}
	/* Then a stale way, else the one the hash picks. Each way takes it
	 * and returns, or passes on: a way picked into a variable in the loop
	 * above made the verifier walk peer__remember once per value (a
	 * program set's load took 0.9 s longer). */
	if (peer__remember(id, d, ctx, cookie, sk->src_port) < 0 || !s)
		return;
#pragma unroll
	for (i = 0; i < EGRESS_PEER_FILTER_WAYS; i++) {
		if (peer_filter__stale(s->way[i], epoch)) {
			s->way[i] = way;
			return;
		}
	}
	s->way[(h >> 8) & (EGRESS_PEER_FILTER_WAYS - 1)] = way;
}

#endif /* EGRESS_BPF_LIB_PEERS_H_ */
