// Compiles rules into the entries of the port_classes and rules LPM tries and
// the target flags (bpf/include/egress/abi.h), and evaluates compiled entries
// exactly as the BPF program does, for tests.
//
// Port classes. For each of tcp and udp, every port range of every rule that
// is not the full 0-65535 contributes its boundaries; 0..65535 is split into
// elementary intervals at all of them, and the intervals covered by at least
// one range are numbered 1..N in ascending port order. Each numbered interval
// becomes the minimal set of aligned port prefixes in port_classes. A rule's
// range then maps to the consecutive classes it covers, and a full-range rule
// to EGRESS_PORT_CLASS_ANY.
//
// One trie for allow and deny. The kernel's LPM trie answers with the longest
// matching prefix only, yet any matching deny must beat every allow. The
// compiler makes the longest match the right answer, per (protocol, family):
//   - an allow entry contained in a deny entry of its own class or of ANY
//     (same prefix included) is dropped: the deny covers all of it;
//   - a deny entry of ANY that lies strictly inside a surviving allow entry
//     of a port class is copied into that class, so it is longer there.
// Then probing {class} and, on a miss, {ANY} gives the verdict directly.
// Lookup cost is one port_classes probe plus at most two rule probes,
// independent of the number of rules.
//
// Exact entries. Last, the rules entries of a whole address in a small port
// class move to exact_rules, one key per port (compile_exact.h): the
// program probes that hash before the tries.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "userspace/policy/compile_exact.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

struct CompiledRuleset {
  // The ruleset id every entry is keyed by (0 = nothing compiled).
  uint32_t ruleset = 0;
  // port_classes entries for this ruleset (tcp and udp): those of the
  // classes a rules entry names (compile_exact.h).
  std::vector<std::pair<egress_port_key, egress_port_value>> ports;
  // Every port class with its ports, named or not: not written anywhere,
  // kept for a recompile (compile_changes.h).
  std::vector<compile_internal::ClassSpan> classes;
  // rules entries, value.verdict EGRESS_VERDICT_ALLOW or _DENY. No key
  // appears twice; when rules collide on a key the deny, then the lowest rule
  // id, is kept.
  std::vector<std::pair<egress_rule_key, egress_rule_value>> rules;
  // exact_rules entries: rules entries moved out of the trie, one key per
  // port of their class (compile_exact.h).
  std::vector<std::pair<egress_exact_key, egress_rule_value>> exact;
  // dns_names entries of the rules' names (name_rules.h). Their ports and
  // verdicts are in `rules`, family EGRESS_FAMILY_NAME, keyed by pattern id.
  std::vector<std::pair<egress_dns_name_key, egress_dns_name_value>> names;
  // unix_rules entries (unix_rules.h: CompileUnixRules).
  std::vector<std::pair<egress_unix_key, egress_rule_value>> unix_paths;
  // EGRESS_TF_ALLOW_RAW if an allow rule has raw and no deny rule does (deny
  // wins here too); EGRESS_TF_ALLOW_ICMP if an allow rule has icmp (ICMP
  // destinations are still checked per packet through the rule maps);
  // EGRESS_TF_UNIX_RULES / EGRESS_TF_UNIX_ALLOWLIST as CompileUnixRules;
  // EGRESS_TF_NAME_RULES if a rule has names.
  uint8_t flags = 0;
};

// Compiles `rules` into ruleset id `ruleset`. All padding is zeroed, ports and
// port classes in keys are big-endian, addresses are masked to their prefix,
// and entries come out in a deterministic order (rule order, then port entry,
// then destination). A rule with no destinations and no names gets 0.0.0.0/0
// and ::/0. A name gets the rules entries of family EGRESS_FAMILY_NAME keyed
// by its pattern id (name_rules.h), merged like addresses (deny wins).
// Rule order does not affect the verdicts. At most `exact_limit` exact
// entries are made (0: none; every entry stays in the tries).
//
// Errors:
//   InvalidArgument  ruleset 0 ("ruleset 0 is reserved"); a rule with id 0
//                    ("rule 0: id 0 is reserved for the default action"); a
//                    rule with no ports, lo > hi, or a destination breaking
//                    the Cidr invariant, a unix rule with no or a bad
//                    address, or a name that is not canonical (message
//                    starts "rule <id>: "). Names take tcp and udp ports
//                    only: the icmp of "any" applies to addresses alone.
//   ResourceExhausted  more than 0xfffe port classes for one protocol, or
//                    more entries than one map holds (EGRESS_MAX_PORT_ENTRIES,
//                    EGRESS_MAX_RULE_ENTRIES, EGRESS_MAX_UNIX_RULES,
//                    EGRESS_DNS_MAX_NAME_ENTRIES).
absl::StatusOr<CompiledRuleset> Compile(
    uint32_t ruleset, absl::Span<const Rule> rules,
    size_t exact_limit = EGRESS_MAX_EXACT_PER_SET);

struct Decision {
  uint8_t verdict = EGRESS_VERDICT_DENY;  // EGRESS_VERDICT_ALLOW or _DENY
  uint32_t rule_id = 0;                   // 0 = default deny
};

// What the BPF program decides for an outgoing connection/datagram, given the
// entries of `compiled` (under id `ruleset`) as map contents. Simulates the
// kernel's LPM tries: among entries whose first prefixlen data bits equal the
// query's, the longest wins. Steps: for tcp/udp an exact entry of the
// address and port decides; else look up the port class; probe
// rules with {class}, then on a miss with {ANY}; the entry found gives the
// verdict; no entry = default deny. ICMP/ICMPv6 probe with ANY only and ignore
// the port. `port_host_order` is in host order; `family` is 4 or 6; IPv4
// addresses in the first 4 bytes of `addr`. `family` EGRESS_FAMILY_NAME
// with a pattern id (NamePatternId) in the first 8 bytes of `addr`, the
// rest zero, gives what bpf/lib/names.h finds for one pattern an address
// was learned for (tcp/udp only): the exact entry, else the tries.
Decision Evaluate(const CompiledRuleset& compiled, uint32_t ruleset,
                  uint8_t ip_proto, uint16_t port_host_order, uint8_t family,
                  const std::array<uint8_t, 16>& addr);

// The specification Evaluate must agree with, straight from the rules: deny if
// any deny rule matches (RuleMatches), else allow if any allow rule matches,
// else deny with rule_id 0. rule_id is that of some matching rule. For
// `family` EGRESS_FAMILY_NAME (a pattern id in `addr`, as Evaluate) a rule
// matches when one of its names has that pattern id and one of its tcp/udp
// port entries covers the port.
Decision EvaluateNaive(absl::Span<const Rule> rules, uint8_t ip_proto,
                       uint16_t port_host_order, uint8_t family,
                       const std::array<uint8_t, 16>& addr);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_H_
