/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rule lookup: a destination and a ruleset give a decision.
 *
 * What: struct egress_decision and rules__decide().
 * Why here: the lookup is the one place that knows how userspace compiled a
 * ruleset (port_classes, then rules by port class and by the any-port class;
 * see compile.h). It is pure: no counting, no records, no mode; verdict.h
 * applies those. Cost is bounded whatever the number of rules: one probe
 * of exact_rules, then at most one port-trie lookup and two rule-trie
 * lookups.
 */
#ifndef EGRESS_BPF_LIB_RULES_H_
#define EGRESS_BPF_LIB_RULES_H_

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"

/* egress_decision.port_class before rules__decide looked the port up: no
 * port's own class (those are 1..0xfffe, 0 when none covers the port). */
#define RULES__CLASS_UNKNOWN EGRESS_PORT_CLASS_ANY

struct egress_decision {
	__u32 rule_id;
	__u8 verdict; /* EGRESS_VERDICT_ALLOW or _DENY before the mode is
			 applied */
	__u8 reason;
	/* Set by rules__decide, for names.h to go on with the same rule set
	 * (a switch may flip the target's between two reads of it): the
	 * destination's port class in `ruleset` if it looked it up, else
	 * RULES__CLASS_UNKNOWN (names.h then looks it up once if needed). */
	__u16 port_class;
	__u32 ruleset;
};

/* The port class of `d`'s port in `ruleset` (0: no ranged rule covers it). */
static __always_inline __u16 rules__port_class(__u32 ruleset,
					       const struct egress_dest *d)
{
	struct egress_port_key pk = {
	    .prefixlen = EGRESS_PORT_KEY_FIXED_BITS + 16,
	    .ruleset = ruleset,
	    .proto = d->proto,
	    .port = d->port,
	};
	struct egress_port_value *pv;

	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return 0;
	pv = bpf_map_lookup_elem(&port_classes, &pk);
	return pv ? pv->port_class : 0;
}

/* The port's own class first, then the any-port class: two lookups at
 * most, whatever the number of rules. */
static __always_inline struct egress_rule_value *
rules__probe(struct egress_rule_key *key, __u16 port_class)
{
	struct egress_rule_value *v = NULL;

	if (port_class) {
		key->port_class = bpf_htons(port_class);
		v = bpf_map_lookup_elem(&rules, key);
	}
	if (!v) {
		key->port_class = bpf_htons(EGRESS_PORT_CLASS_ANY);
		v = bpf_map_lookup_elem(&rules, key);
	}
	return v;
}

static __always_inline void rules__set(struct egress_decision *out,
				       const struct egress_rule_value *v)
{
	out->rule_id = v->rule_id;
	if (v->verdict == EGRESS_VERDICT_ALLOW) {
		out->verdict = EGRESS_VERDICT_ALLOW;
		out->reason = EGRESS_REASON_MATCH_ALLOW;
	} else {
		out->verdict = EGRESS_VERDICT_DENY;
		out->reason = EGRESS_REASON_MATCH_DENY;
	}
}

/* The first step of rules__decide: starts `out` (deny, NO_MATCH, against
 * `ruleset`) and probes exact_rules for a tcp/udp `d`. 1: the hit decided
 * `out`; 0: the tries must (rules__decide_tries), unless lib/names.h can
 * tell they hold no deny for a learned address. */
static __always_inline int rules__decide_exact(__u32 ruleset,
					       const struct egress_dest *d,
					       struct egress_decision *out)
{
	struct egress_rule_value *v;

	out->verdict = EGRESS_VERDICT_DENY;
	out->reason = EGRESS_REASON_NO_MATCH;
	out->rule_id = 0;
	out->port_class = RULES__CLASS_UNKNOWN;
	out->ruleset = ruleset;
	if (!ruleset)
		return 1;
	if (d->proto == IPPROTO_TCP || d->proto == IPPROTO_UDP) {
		struct egress_exact_key ek = {
		    .ruleset = ruleset,
		    .proto = d->proto,
		    .family = d->family,
		    .port = d->port,
		};

		__builtin_memcpy(ek.addr, d->addr32, 16);
		v = bpf_map_lookup_elem(&exact_rules, &ek);
		if (v) {
			rules__set(out, v);
			return 1;
		}
	}
	return 0;
}

/* The tries after an exact miss: the port class (unless `out` has it
 * already), then the rules trie. */
static __always_inline void rules__decide_tries(const struct egress_dest *d,
						struct egress_decision *out)
{
	struct egress_rule_key key = {};
	struct egress_rule_value *v;

	key.prefixlen = EGRESS_RULE_KEY_FIXED_BITS +
			(d->family == EGRESS_FAMILY_IPV4 ? 32 : 128);
	key.ruleset = out->ruleset;
	key.proto = d->proto;
	key.family = d->family;
	__builtin_memcpy(key.addr, d->addr32, 16);
	if (out->port_class == RULES__CLASS_UNKNOWN)
		out->port_class = rules__port_class(out->ruleset, d);
	v = rules__probe(&key, out->port_class);
	if (v)
		rules__set(out, v);
}

/* Decides `d` against `ruleset` (0: no rules, so deny with NO_MATCH). */
static __always_inline void rules__decide(__u32 ruleset,
					  const struct egress_dest *d,
					  struct egress_decision *out)
{
	if (!rules__decide_exact(ruleset, d, out))
		rules__decide_tries(d, out);
}

#endif /* EGRESS_BPF_LIB_RULES_H_ */
