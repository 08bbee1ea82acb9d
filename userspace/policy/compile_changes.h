// Recompiles a rule set after a few of its rules changed (an `allow`, a
// `delete`, an expiry), from the compiled form of the rules before: only the
// trie entries of the port classes the changed rules reach are merged again,
// the rest is taken over under the new ruleset id. One rule added to a
// target of 100,000 costs a scan of the rules, not a compile of all of them.
//
// Why that is the same as a whole compile (compile.h): the entries of port
// class c of a (protocol, family) depend only on the rules with entries in c
// and on the deny rules of every port (class ANY) of that protocol. A change
// the recompile takes touches no deny of every port, keeps every port class
// (the set of distinct tcp/udp port ranges stays), and has no names, unix
// addresses, icmp or raw (so the target flags, the dns_names and unix_rules
// entries and the port_classes entries stay). Every other change, and any
// rule a whole compile would refuse, is left to Compile.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_CHANGES_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_CHANGES_H_

#include <cstdint>
#include <optional>

#include "absl/types/span.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// At most this many rules may differ (by id and content) between `before`
// and `after`; more are compiled whole (which then costs about the same).
inline constexpr size_t kMaxRecompiledRules = 64;

// `compiled` must be Compile(compiled.ruleset, before). Returns entries
// equal to those of Compile(ruleset, after) (the same keys, values and
// flags; entries the change did not reach keep their place, the others take
// the place of the first entry they replace), or nullopt when the change is not
// one this takes (see above): the caller compiles `after` whole then.
// The entries of the reached classes move to exact_rules as Compile moves
// them while the set's exact entries stay within `exact_limit`; those of the
// other classes stay where `compiled` has them.
std::optional<CompiledRuleset> RecompileChanged(
    const CompiledRuleset& compiled, absl::Span<const Rule> before,
    absl::Span<const Rule> after, uint32_t ruleset,
    size_t exact_limit = EGRESS_MAX_EXACT_PER_SET);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_CHANGES_H_
