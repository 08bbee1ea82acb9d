/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A TCP connect's decision, handed from connect4/6 to sock_ops.
 *
 * What: flow__note_allowed() (connect4/6: keep the rule that allowed this
 * TCP socket's connect with the socket, or forget an earlier one).
 * Why here: sock_ops needs the rule of every outbound flow it records and
 * counts (and "unexplained" for one no rule allows). Deciding again when the
 * connection is established cost a second rule lookup per connection (a
 * port-class and up to two rule-trie probes, ~0.5 us at 100,000 rules) for
 * an answer connect4 had just found. The flow storage is created here
 * instead of in sock_ops (the same one allocation per connection), with the
 * rule and `decided` set; sock_ops decides only for a socket that comes
 * without it (connected before enforcement, in audit mode against the
 * rules, or through a hook of another instance).
 * Only a cgroup target's instance writes it: the root instance of user
 * targets has no sock_ops program to read it.
 */
#ifndef EGRESS_BPF_LIB_FLOWS_H_
#define EGRESS_BPF_LIB_FLOWS_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/rules.h"

static __always_inline void
flow__note_allowed(struct bpf_sock_addr *ctx, const struct egress_dest *d,
		   const struct egress_decision *dec)
{
	int allowed = dec->verdict == EGRESS_VERDICT_ALLOW;
	struct egress_flow *f;
	struct bpf_sock *sk;

	if (egress_target_id == EGRESS_TARGET_BY_UID)
		return;
	if (d->proto != IPPROTO_TCP)
		return;
	sk = ctx->sk;
	if (!sk)
		return;
	/* A refused (or only audited) connect creates nothing, but clears what
	 * an earlier connect of the same socket left: a TCP socket may connect
	 * again after a failed attempt, and the flow must not take that
	 * attempt's rule. */
	f = bpf_sk_storage_get(&flows, sk, 0,
			       allowed ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!f)
		return;
	f->rule_id = allowed ? dec->rule_id : 0;
	f->decided = allowed;
}

#endif /* EGRESS_BPF_LIB_FLOWS_H_ */
