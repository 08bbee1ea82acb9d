/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Name rules at connect/sendmsg: an address the target learned from a DNS
 * answer (lib/dns_learn.h) is decided by the rules of the names it was
 * learned for.
 *
 * What: names__decide(), run after the address rules.
 * Why here: the order of precedence is one decision and lives in one
 * place:
 *   1. an explicit address deny wins over every name;
 *   2. a name deny refuses the addresses its answers brought, even where an
 *      address rule allows them;
 *   3. a name allow allows exactly the ports/protocols of its rule;
 *   4. otherwise the address decision stands.
 * Cost: one hash lookup when the target has name rules (EGRESS_TF_NAME_RULES)
 * and nothing otherwise; for a bound address, one exact_rules probe per
 * pattern bound (at most EGRESS_DNS_BINDING_SLOTS). A name rule of one host
 * and a few ports is there (userspace/policy/compile_exact.h: family
 * EGRESS_FAMILY_NAME, the pattern id in place of the address, one key per
 * port), so a learned address costs the binding lookup and one hash probe.
 * Only on a miss (a name rule of a port range or of every port) come the
 * tries: the port class, looked up at most once per decision and not at all
 * when rules__decide already did, then at most two rule probes.
 * The address tries, which an exact miss goes on to, are left out for a
 * learned address whose name entry says they hold no deny for it
 * (names__decide_dest): then a name allow costs the exact miss, the
 * binding and the name's probe.
 * Only tcp and udp: name rules take no icmp (compile.cc refuses it).
 */
#ifndef EGRESS_BPF_LIB_NAMES_H_
#define EGRESS_BPF_LIB_NAMES_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/rules.h"

/* The binding of `d` for target `target_id` in the network namespace of
 * cookie `netns` (0 where bindings carry none), or NULL. */
static __always_inline struct egress_dns_binding *
names__binding(__u32 target_id, const struct egress_dest *d, __u64 netns)
{
	struct egress_dns_binding_key k = {
	    .netns_cookie = netns,
	    .target_id = target_id,
	    .family = d->family,
	};

	__builtin_memcpy(k.addr, d->addr32, 16);
	return bpf_map_lookup_elem(&dns_bindings, &k);
}

/* The rule entry of `pattern` for `d`: its exact_rules key, else the rules
 * trie with the port class (*port_class, looked up on the first need when
 * still RULES__CLASS_UNKNOWN), then any port. `ek` and `key` carry
 * everything but the pattern. */
static __always_inline struct egress_rule_value *
names__probe(__u32 ruleset, const struct egress_dest *d, __u64 pattern,
	     struct egress_exact_key *ek, struct egress_rule_key *key,
	     __u16 *port_class)
{
	struct egress_rule_value *v;

	__builtin_memcpy(ek->addr, &pattern, 8);
	v = bpf_map_lookup_elem(&exact_rules, ek);
	if (v)
		return v;
	if (*port_class == RULES__CLASS_UNKNOWN)
		*port_class = rules__port_class(ruleset, d);
	__builtin_memcpy(key->addr, &pattern, 8);
	return rules__probe(key, *port_class);
}

/* The name entry that decides `d` (see the order above) in `dec`'s rule
 * set: the first deny of a pattern `d` was learned for, else the first
 * allow; NULL when the target has no name rules, `d` no live binding in
 * the network namespace of the socket of `ctx` (the program's context:
 * sock_addr or sock_ops), or no rule of its names covers it. A port class
 * looked up here is kept in `dec` for the tries. `now`: the caller's
 * bpf_ktime_get_ns() when it already has one (sock_ops), else 0: read
 * here, and only once a binding is found, from jiffies (clock__now, no
 * helper call where egressd measured the mapping). A helper call is
 * 30-60 ns on a CPU whose returns are mitigated (bench/README.md): a
 * clock read by the helper is not free. */
static __always_inline struct egress_rule_value *
names__find(__u32 target_id, const struct egress_target_config *cfg,
	    const struct egress_dest *d, struct egress_decision *dec, void *ctx,
	    __u64 now)
{
	struct egress_exact_key ek = {};
	struct egress_rule_key key = {};
	struct egress_dns_binding *b;
	struct egress_rule_value *v, *allow = NULL;
	int i;

	if (!(cfg->flags & EGRESS_TF_NAME_RULES) || !dec->ruleset)
		return NULL;
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return NULL;
	b = names__binding(
	    target_id, d, egress_netns_cookies ? bpf_get_netns_cookie(ctx) : 0);
	if (!b)
		return NULL;
	if (!now)
		now = clock__now();
	ek.ruleset = dec->ruleset;
	ek.proto = d->proto;
	ek.family = EGRESS_FAMILY_NAME;
	ek.port = d->port;
	key.prefixlen = EGRESS_RULE_KEY_FIXED_BITS + 128;
	key.ruleset = dec->ruleset;
	key.proto = d->proto;
	key.family = EGRESS_FAMILY_NAME;
#pragma unroll
	for (i = 0; i < EGRESS_DNS_BINDING_SLOTS; i++) {
		__u64 pattern = b->slot[i].pattern;

		if (!pattern || b->slot[i].expires_ns <= now)
			continue;
		v = names__probe(dec->ruleset, d, pattern, &ek, &key,
				 &dec->port_class);
		if (!v)
			continue;
		if (v->verdict != EGRESS_VERDICT_ALLOW)
			return v;
		if (!allow)
			allow = v;
	}
	return allow;
}

/* Whether the address entries of the tries may deny `d`, by the summary
 * egressd wrote into the name entry `v` of the same rule set
 * (egress_rule_value.flags, compile_deny_summary.h): 1 unless it says no
 * deny entry lies in `d`'s first octet (IPv4) or none is IPv6. No helper
 * call: two loads from the value the name probe returned. */
static __always_inline int
names__tries_may_deny(const struct egress_rule_value *v,
		      const struct egress_dest *d)
{
	if (!(v->flags & EGRESS_RULE_F_DENY_SUMMARY))
		return 1;
	if (d->family != EGRESS_FAMILY_IPV4)
		return (v->flags & EGRESS_RULE_F_V6_DENY) != 0;
	return (v->v4_deny_octets >> (((const __u8 *)d->addr32)[0] % 16)) & 1;
}

/* Refines the address decision `dec` of `d` (rules__decide's, whose rule
 * set it goes on with) with the names `d` was learned for: an address
 * deny stands; a name deny refuses; a name allow allows what the
 * addresses did not. */
static __always_inline void
names__decide(__u32 target_id, const struct egress_target_config *cfg,
	      const struct egress_dest *d, struct egress_decision *dec,
	      void *ctx, __u64 now)
{
	struct egress_rule_value *v;

	if (dec->reason == EGRESS_REASON_MATCH_DENY)
		return;
	v = names__find(target_id, cfg, d, dec, ctx, now);
	if (v && (v->verdict != EGRESS_VERDICT_ALLOW ||
		  dec->verdict != EGRESS_VERDICT_ALLOW))
		rules__set(dec, v);
}

/* The whole decision of `d` for a connect, sendmsg or an established flow
 * of target `target_id`: the address rules (rules__decide) refined by the
 * names (names__decide), with the tries left out where they cannot
 * matter. After an exact miss, a learned address's name entry comes
 * first; when its deny summary says the tries hold no address deny for
 * `d`, they could only allow it, and the name entry decides alone (its
 * rule is the one credited, also where an address allow covers `d` too).
 * That saves the port-class and rules trie lookups (~75 ns per decision
 * at 100,000 rules, bench/README.md) on the path of every connection to
 * a name. `now`: as names__find. */
static __always_inline void
names__decide_dest(__u32 target_id, const struct egress_target_config *cfg,
		   const struct egress_dest *d, struct egress_decision *dec,
		   void *ctx, __u64 now)
{
	struct egress_rule_value *v;

	if (rules__decide_exact(cfg->ruleset, d, dec)) {
		names__decide(target_id, cfg, d, dec, ctx, now);
		return;
	}
	v = names__find(target_id, cfg, d, dec, ctx, now);
	if (!v || names__tries_may_deny(v, d)) {
		rules__decide_tries(d, dec);
		/* An explicit address deny wins over every name. */
		if (!v || dec->reason == EGRESS_REASON_MATCH_DENY)
			return;
	}
	if (v->verdict != EGRESS_VERDICT_ALLOW ||
	    dec->verdict != EGRESS_VERDICT_ALLOW)
		rules__set(dec, v);
}

#endif /* EGRESS_BPF_LIB_NAMES_H_ */
