/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The decision glue: mode, counting and reporting around a rule decision.
 *
 * What: verdict__apply() / verdict__apply_to() (any hook: apply the
 * target's mode to a decision, count it, report it) and verdict__connect()
 * (connect/sendmsg: look up the rules, let a known UDP peer through, apply).
 * Why here: the hooks differ in how they build a destination, never in what
 * a decision means; keeping that meaning in one function keeps audit mode,
 * counters and records the same for every hook.
 *
 * Layering (each header includes what it uses):
 *   config.h (.rodata, target config)  addr.h (destinations)
 *   rules.h -> names.h  peers.h  counters.h  ratelimit.h -> records.h
 *   -> udp_connect.h (held records of UDP connects)
 *   verdict.h (this: uses all of the above)  ->  unix.h (AF_UNIX hooks)
 */
#ifndef EGRESS_BPF_LIB_VERDICT_H_
#define EGRESS_BPF_LIB_VERDICT_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/counters.h"
#include "lib/names.h"
#include "lib/peers.h"
#include "lib/records.h"
#include "lib/rules.h"
#include "lib/udp_connect.h"

/*
 * Applies the target's mode to a rule decision, counts it and reports it.
 * has_task: the hook runs in the context of the calling task, so pid, uid and
 * comm can be read (not so for packets). unix_addr: the address of a unix
 * decision, for its record; NULL for every inet hook.
 * Returns 1 to let the operation through, 0 to refuse it with EPERM.
 */
static __always_inline int
verdict__apply_to(__u32 id, const struct egress_target_config *cfg,
		  const struct egress_dest *d, __u8 hook,
		  struct egress_decision *dec, __u8 sock_type, int has_task,
		  const struct egress_unix_key *unix_addr)
{
	struct egress_counters *c = target__counters(id);

	/* A workload that egressd has not classified yet gets its parent's
	 * default, whatever a rule would say (lib/config.h). */
	if (cfg->flags & EGRESS_TF_UNCLASSIFIED) {
		dec->verdict = EGRESS_VERDICT_DENY;
		dec->reason = EGRESS_REASON_UNCLASSIFIED;
		dec->rule_id = 0;
	}
	rule__hit(id, dec->rule_id);
	/* One counter per decision: the totals (allowed, denied, ...) are sums
	 * of by_proto, derived by egressd. */
	if (dec->verdict == EGRESS_VERDICT_ALLOW) {
		counters__verdict(c,
				  dec->reason == EGRESS_REASON_UDP_REPLY
				      ? EGRESS_CTR_REPLIES
				      : EGRESS_CTR_ALLOWED,
				  d->family, d->proto);
		if (cfg->flags & EGRESS_TF_EVENT_ALLOW)
			event__emit(id, d, hook, EGRESS_VERDICT_ALLOW,
				    dec->reason, dec->rule_id, sock_type, c,
				    has_task, cfg->flags, unix_addr);
		return 1;
	}
	if (cfg->mode == EGRESS_MODE_AUDIT) {
		counters__verdict(c, EGRESS_CTR_AUDITED, d->family, d->proto);
		event__emit(id, d, hook, EGRESS_VERDICT_AUDIT, dec->reason,
			    dec->rule_id, sock_type, c, has_task, cfg->flags,
			    unix_addr);
		return 1;
	}
	if (c && dec->reason == EGRESS_REASON_SOCKET_TYPE)
		__sync_fetch_and_add(&c->sockets_denied, 1);
	else if (c && dec->reason == EGRESS_REASON_SOURCE_ROUTE)
		__sync_fetch_and_add(&c->srcroute_denied, 1);
	counters__verdict(c, EGRESS_CTR_DENIED, d->family, d->proto);
	event__emit(id, d, hook, EGRESS_VERDICT_DENY, dec->reason, dec->rule_id,
		    sock_type, c, has_task, cfg->flags, unix_addr);
	return 0;
}

/* verdict__apply_to for every inet hook (no unix address). */
static __always_inline int
verdict__apply(__u32 id, const struct egress_target_config *cfg,
	       const struct egress_dest *d, __u8 hook,
	       struct egress_decision *dec, __u8 sock_type, int has_task)
{
	return verdict__apply_to(id, cfg, d, hook, dec, sock_type, has_task,
				 NULL);
}

/* The whole decision for a connect or sendmsg destination of target `id`
 * (found by target__find, which the hook calls first: the root instance of
 * user targets must let other uids go before it looks at the address).
 * `borrowed_source`: a datagram sent from an address the socket is not
 * bound to (the sendmsg hooks' src__borrowed4/6), refused whatever the
 * rules say; decided here so that the hook inlines one verdict__apply. */
static __always_inline int
verdict__connect(__u32 id, const struct egress_target_config *cfg,
		 struct egress_dest *d, __u8 hook, struct bpf_sock_addr *ctx,
		 int borrowed_source)
{
	struct egress_decision dec = {
	    .verdict = EGRESS_VERDICT_DENY,
	    .reason = EGRESS_REASON_NONLOCAL_SOURCE,
	};

	const struct egress_target_config *applied = cfg;
	struct egress_target_config unrecorded;
	struct egress_udp_connect *held = NULL;
	int slot = UDP_CONNECT_NO_SLOT, ret;

	if (!borrowed_source) {
		names__decide_dest(id, cfg, d, &dec, ctx, 0);
		/* An explicit deny still wins over a reply. */
		if (dec.reason == EGRESS_REASON_NO_MATCH &&
		    peer__known(id, d, ctx)) {
			dec.verdict = EGRESS_VERDICT_ALLOW;
			dec.reason = EGRESS_REASON_UDP_REPLY;
			dec.rule_id = 0;
		}
	}
	/* A UDP connect of an audit target: decided and counted now, its
	 * record held until a datagram follows (lib/udp_connect.h). hook is
	 * a constant at each call site: the sendmsg hooks compile this out. */
	if (hook == EGRESS_HOOK_CONNECT4 || hook == EGRESS_HOOK_CONNECT6)
		held = udp_connect__hold_slot(id, cfg, d, ctx, &slot);
	if (held) {
		unrecorded = *cfg;
		unrecorded.flags |= EGRESS_TF_EVENT_NONE;
		applied = &unrecorded;
	}
	ret = verdict__apply(id, applied, d, hook, &dec, 0, 1);
	if (held)
		udp_connect__hold(held, slot, id, cfg, d, hook, &dec);
	return ret;
}

#endif /* EGRESS_BPF_LIB_VERDICT_H_ */
