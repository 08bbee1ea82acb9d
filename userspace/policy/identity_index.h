// Rules found by identity (rule_compare.h: RuleIdentity) among many, with
// no string kept per rule: each identity's key (AppendIdentityKey) is
// written into one reused buffer and hashed to 64 bits, and a hit is checked
// against the rule itself (SameRule), so two identities that share a hash are
// still told apart. A diff of two lists of 100,000 rules (apply_plan.cc) kept
// 200,000 identity strings in hash maps: a tenth of a replacing apply's CPU.
#ifndef EGRESS_USERSPACE_POLICY_IDENTITY_INDEX_H_
#define EGRESS_USERSPACE_POLICY_IDENTITY_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_compare.h"

namespace egress::policy {

// Hashes of rule identities: equal identities, equal hashes.
class IdentityHasher {
 public:
  uint64_t operator()(const Rule& rule);

 private:
  std::string buffer_;  // its room kept from rule to rule
};

// Values (a caller's indices of rules) by the identity of their rule.
class IdentityIndex {
 public:
  explicit IdentityIndex(size_t expected);

  // Adds `value`, whose rule's identity hashes to `hash`, after every value
  // added before it. True when no value was added under `hash` before: then
  // no rule before it has its identity, and Find of it gives `value`.
  bool Add(uint64_t hash, uint32_t value);

  // Find(hash, rule, rule_of), then, if nullopt, Add(hash, value), with
  // one probe of the hash map (a plan of 100,000 rules did both for each).
  // rule_of(value) is not called here: `value`'s rule may be placed later.
  template <typename RuleOf>
  std::optional<uint32_t> FindOrAdd(uint64_t hash, const Rule& rule,
                                    const RuleOf& rule_of, uint32_t value) {
    const uint32_t at = static_cast<uint32_t>(entries_.size());
    auto [it, inserted] = chains_.try_emplace(hash, Chain{at, at});
    if (!inserted) {
      for (uint32_t e = it->second.first; e != kNone; e = entries_[e].next) {
        if (SameRule(rule, rule_of(entries_[e].value))) {
          return entries_[e].value;
        }
      }
      entries_[it->second.last].next = at;
      it->second.last = at;
    }
    entries_.push_back({value, kNone});
    return std::nullopt;
  }

  // The first value added whose rule has `rule`'s identity (`hash` is
  // IdentityHasher's of `rule`), nullopt if none. `rule_of(value)` is the
  // rule a value was added for.
  template <typename RuleOf>
  std::optional<uint32_t> Find(uint64_t hash, const Rule& rule,
                               const RuleOf& rule_of) const {
    auto it = chains_.find(hash);
    if (it == chains_.end()) return std::nullopt;
    for (uint32_t at = it->second.first; at != kNone; at = entries_[at].next) {
      const uint32_t value = entries_[at].value;
      if (SameRule(rule, rule_of(value))) return value;
    }
    return std::nullopt;
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct Entry {
    uint32_t value;
    uint32_t next;  // the next entry of the same hash, kNone at the end
  };
  // The entries of one hash: nearly always one (a rule listed twice, or
  // two identities sharing a hash, make more).
  struct Chain {
    uint32_t first;
    uint32_t last;  // where the next one is linked
  };
  absl::flat_hash_map<uint64_t, Chain> chains_;
  std::vector<Entry> entries_;
};

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_IDENTITY_INDEX_H_
