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

/* Refines the address decision `dec` of `d` (rules__decide's, whose rule
 * set it goes on with) with the names `d` was learned for (see the order
 * above), in the network namespace of the socket of `ctx` (the program's
 * context: sock_addr or sock_ops). `now`: the caller's bpf_ktime_get_ns()
 * when it already has one (sock_ops), else 0: read here, and only once a
 * binding is found. A helper call is 30-60 ns on a CPU whose returns are
 * mitigated (bench/README.md): a second clock read is not free. */
static __always_inline void
names__decide(__u32 target_id, const struct egress_target_config *cfg,
	      const struct egress_dest *d, struct egress_decision *dec,
	      void *ctx, __u64 now)
{
	struct egress_exact_key ek = {};
	struct egress_rule_key key = {};
	struct egress_dns_binding *b;
	struct egress_rule_value *v, *allow = NULL;
	__u16 port_class = dec->port_class;
	int i;

	if (!(cfg->flags & EGRESS_TF_NAME_RULES) || !dec->ruleset)
		return;
	if (dec->reason == EGRESS_REASON_MATCH_DENY)
		return;
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return;
	b = names__binding(
	    target_id, d, egress_netns_cookies ? bpf_get_netns_cookie(ctx) : 0);
	if (!b)
		return;
	if (!now)
		now = bpf_ktime_get_ns();
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
				 &port_class);
		if (!v)
			continue;
		if (v->verdict != EGRESS_VERDICT_ALLOW) {
			rules__set(dec, v);
			return;
		}
		if (!allow)
			allow = v;
	}
	if (allow && dec->verdict != EGRESS_VERDICT_ALLOW)
		rules__set(dec, allow);
}

#endif /* EGRESS_BPF_LIB_NAMES_H_ */
