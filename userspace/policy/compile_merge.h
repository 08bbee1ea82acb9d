// The parts of the rule compiler (compile.h) that both a whole compile and
// a recompile of a few changed rules (compile_changes.h) use: validation,
// rule keys, and the merge of allow and deny entries (deduplicated there)
// into one trie.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "egress/abi.h"
#include "userspace/policy/rule.h"

namespace egress::policy::compile_internal {

using Entries = std::vector<std::pair<egress_rule_key, egress_rule_value>>;

// Appends the entry of `key` for rule `rule_id` (its verdict is set by
// MergeEntries, which also drops the repeats of a key).
inline void AddEntry(Entries& entries, const egress_rule_key& key,
                     uint32_t rule_id) {
  egress_rule_value v{};
  v.rule_id = rule_id;
  entries.emplace_back(key, v);
}

// InvalidArgument (compile.h's messages) for a rule Compile refuses.
absl::Status ValidateRule(const Rule& rule);

// The rules entry key of one destination of one class.
egress_rule_key RuleKey(uint32_t ruleset, uint8_t proto, uint16_t port_class,
                        const Cidr& dest);

// Merges allow and deny entries (values' verdicts set here) into one trie:
// grouped by (proto, family) and class, with the rules of compile.h. The
// entries of a class depend only on the allow and deny entries of that class
// and on the deny entries of EGRESS_PORT_CLASS_ANY of the same group. A key
// listed more than once on one side is kept once, where it was first
// listed, with the lowest rule id of its listings.
void MergeEntries(Entries& allow, Entries& deny, Entries* out);

}  // namespace egress::policy::compile_internal

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_
