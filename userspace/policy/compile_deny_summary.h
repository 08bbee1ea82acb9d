// The deny summary of a compiled rule set's name entries
// (egress_rule_value.flags and v4_deny_octets, abi.h).
//
// Why: a connect to a learned address misses exact_rules and would then
// probe the port-class trie and the rules trie, only so that an explicit
// address deny still wins over a name allow (bpf/lib/names.h). Each name
// entry says where the address deny entries that such a connect would
// probe lie: those of its protocol in its port class and in ANY (for an
// entry of ANY: in every class of its protocol), IPv4 by first octet
// modulo 16, IPv6 as one bit. The program skips the tries where none can
// be, and probes them as before everywhere else (the summary is coarse,
// never wrong: a set bit may be a deny of another address).
//
// Exact deny entries need no summary: the exact probe comes first.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_DENY_SUMMARY_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_DENY_SUMMARY_H_

#include "userspace/policy/compile.h"

namespace egress::policy {

// Sets flags (EGRESS_RULE_F_DENY_SUMMARY, _V6_DENY) and v4_deny_octets of
// every name entry of `compiled` (rules and exact) from its address deny
// entries in the tries; address entries keep zeros. Compile and
// RecompileChanged end with it, so a recompile equals a whole compile.
void SummarizeDenies(CompiledRuleset* compiled);

// The bit of v4_deny_octets that an IPv4 address of first octet `octet`
// falls in (bpf/lib/names.h computes the same).
inline uint16_t DenyOctetBit(uint8_t octet) {
  return static_cast<uint16_t>(1u << (octet % 16));
}

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_DENY_SUMMARY_H_
