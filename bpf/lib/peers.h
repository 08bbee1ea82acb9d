/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * UDP peers: who may be answered without a rule.
 *
 * What: peer__record() (recvmsg hooks: a peer sent to a target's UDP socket)
 * and peer__known() (connect/sendmsg: is this destination such a peer of
 * this very socket, seen within EGRESS_PEER_TTL_NS).
 * Why here: a UDP server must be able to reply to clients no rule names;
 * the udp_peers LRU map is the only state the hooks write for that, and the
 * key layout must be built the same way by writer and reader (peer__key).
 * The key holds the socket's cookie and its network namespace's cookie: a
 * process of the target that makes a network namespace of its own can make
 * any address "send" to a socket there, and that must not let another
 * socket, in the host's namespace, answer the made-up peer. Both cookies
 * are helper calls, paid on every recorded datagram and on the reply path
 * only (a destination no rule matched).
 */
#ifndef EGRESS_BPF_LIB_PEERS_H_
#define EGRESS_BPF_LIB_PEERS_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"

static __always_inline void
peer__key(struct egress_peer_key *k, __u32 target_id, struct bpf_sock_addr *ctx,
	  const struct egress_dest *d, __u32 local_port_host)
{
	k->netns_cookie = bpf_get_netns_cookie(ctx);
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
 * Remembers that `d` sent to the socket of `ctx` (an enforced target only:
 * a target switched off records nothing). Runs on every datagram a target's
 * UDP socket reads with its source address, so the steady state (a peer
 * already known) must cost no more than a lookup: a known peer's timestamp
 * is rewritten in place, and only once it is EGRESS_PEER_REFRESH_NS old
 * (the TTL is 300 s; a second of slack is nothing to it, and one store a
 * second per peer keeps the entry's cache line from bouncing between CPUs
 * that read it). Only a new peer takes an LRU node (bucket and LRU locks, a
 * free-list pop, maybe an eviction); updating every time took one per
 * datagram. The lookup also marks the entry referenced, so the LRU evicts
 * peers that went quiet before the ones a server is talking to.
 */
static __always_inline void peer__record(struct egress_dest *d,
					 struct bpf_sock_addr *ctx)
{
	struct egress_peer_value fresh, *v;
	struct egress_peer_key k = {};
	struct bpf_sock *sk = ctx->sk;
	struct egress_target_config *cfg;
	__u64 now;
	__u32 id;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF || !sk || !sk->src_port)
		return;
	peer__key(&k, id, ctx, d, sk->src_port);
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&udp_peers, &k);
	if (v) {
		if (now - v->last_seen_ns >= EGRESS_PEER_REFRESH_NS)
			v->last_seen_ns = now;
		return;
	}
	fresh.last_seen_ns = now;
	/* NOEXIST: another CPU recording the same new peer wins, same time. */
	bpf_map_update_elem(&udp_peers, &k, &fresh, BPF_NOEXIST);
}

#endif /* EGRESS_BPF_LIB_PEERS_H_ */
