#include "userspace/daemon/state_write.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "userspace/policy/rule_compare.h"

namespace egress {

RulesDelta DiffRules(const std::vector<policy::Rule>& before,
                     const std::vector<policy::Rule>& after) {
  RulesDelta delta;
  // Rules a change did not reach keep their ids and places: the common head
  // and tail (by id) are compared in place, only what lies between is
  // hashed.
  const size_t n = before.size(), m = after.size();
  const auto [head, tail] = policy::CommonEndsById(before, after);
  auto compare_in_place = [&](size_t i, size_t j) {
    if (!(before[i] == after[j])) delta.put.push_back(after[j].id);
  };
  for (size_t i = 0; i < head; ++i) compare_in_place(i, i);
  absl::flat_hash_map<uint32_t, size_t> index;  // id -> place in `before`
  index.reserve(n - head - tail);
  for (size_t i = head; i < n - tail; ++i) index.emplace(before[i].id, i);
  size_t last = 0;
  bool first = true;
  absl::flat_hash_set<uint32_t> kept;
  for (size_t j = head; j < m - tail; ++j) {
    const policy::Rule& r = after[j];
    auto it = index.find(r.id);
    if (it == index.end()) {
      delta.put.push_back(r.id);
      continue;
    }
    if (!first && it->second <= last) return RulesDelta{};  // reordered
    first = false;
    last = it->second;
    kept.insert(r.id);
    if (!(before[it->second] == r)) delta.put.push_back(r.id);
  }
  for (size_t k = tail; k > 0; --k) compare_in_place(n - k, m - k);
  for (size_t i = head; i < n - tail; ++i) {
    if (!kept.contains(before[i].id)) delta.removed.push_back(before[i].id);
  }
  // Rewriting a few rules in place is the point; most of them is a rewrite.
  if (delta.put.size() > 64 && delta.put.size() * 2 > m) {
    return RulesDelta{};
  }
  delta.all = false;
  return delta;
}

void ApplyStateWrite(const StateWrite& write, DaemonState* state) {
  state->next_ruleset = write.next_ruleset;
  for (const TargetWrite& w : write.targets) {
    if (w.target == nullptr) {
      state->targets.erase(w.name);
      continue;
    }
    // As the store does: of the rules only those the write carries change;
    // a rule it neither carries nor had stored is not there.
    auto old = state->targets.find(w.name);
    absl::flat_hash_map<uint32_t, const policy::Rule*> stored;
    if (old != state->targets.end()) {
      for (const policy::Rule& r : old->second.rules) stored[r.id] = &r;
    }
    TargetState next = *w.target;
    if (w.rules && w.rules->appended_after) {
      // The stored rules, then the write's.
      next.rules.clear();
      if (old != state->targets.end()) next.rules = old->second.rules;
      next.rules.insert(next.rules.end(), w.target->rules.begin(),
                        w.target->rules.end());
    } else if (!w.rules || !w.rules->all) {
      absl::flat_hash_set<uint32_t> put;
      if (w.rules) put.insert(w.rules->put.begin(), w.rules->put.end());
      next.rules.clear();
      for (const policy::Rule& r : w.target->rules) {
        auto it = stored.find(r.id);
        if (put.contains(r.id)) {
          next.rules.push_back(r);
        } else if (it != stored.end()) {
          next.rules.push_back(*it->second);
        }
      }
    }
    state->targets[w.name] = std::move(next);
  }
}

}  // namespace egress
