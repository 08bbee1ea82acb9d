// The parts of the rule compiler (compile.h) that both a whole compile and
// a recompile of a few changed rules (compile_changes.h) use: validation,
// rule keys, the deduplication of entries before the merge, and the merge of
// allow and deny entries into one trie.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "egress/abi.h"
#include "userspace/policy/rule.h"

namespace egress::policy::compile_internal {

using Entries = std::vector<std::pair<egress_rule_key, egress_rule_value>>;

using RuleKeyBytes = std::array<uint8_t, sizeof(egress_rule_key)>;

// Allow or deny entries before the merge, deduplicated on the whole key.
class RuleMap {
 public:
  explicit RuleMap(
      std::vector<std::pair<egress_rule_key, egress_rule_value>>* out)
      : out_(out) {}

  void Add(const egress_rule_key& key, uint32_t rule_id) {
    RuleKeyBytes bytes;
    std::memcpy(bytes.data(), &key, sizeof(key));
    const auto [it, inserted] = index_.try_emplace(bytes, out_->size());
    if (inserted) {
      egress_rule_value v{};
      v.rule_id = rule_id;
      out_->emplace_back(key, v);
    } else if (rule_id < (*out_)[it->second].second.rule_id) {
      (*out_)[it->second].second.rule_id = rule_id;
    }
  }

 private:
  std::vector<std::pair<egress_rule_key, egress_rule_value>>* out_;
  absl::flat_hash_map<RuleKeyBytes, size_t> index_;
};

// InvalidArgument (compile.h's messages) for a rule Compile refuses.
absl::Status ValidateRule(const Rule& rule);

// The rules entry key of one destination of one class.
egress_rule_key RuleKey(uint32_t ruleset, uint8_t proto, uint16_t port_class,
                        const Cidr& dest);

// Merges allow and deny entries (values' verdicts set here) into one trie:
// grouped by (proto, family) and class, with the rules of compile.h. The
// entries of a class depend only on the allow and deny entries of that class
// and on the deny entries of EGRESS_PORT_CLASS_ANY of the same group.
void MergeEntries(Entries& allow, Entries& deny, Entries* out);

}  // namespace egress::policy::compile_internal

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_MERGE_H_
