#include "userspace/policy/compiled_diff.h"

#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace egress::policy {
namespace {

// Every kind of entry a CompiledRuleset holds must be diffed below: a new
// member changes the size and stops the build here.
// (ruleset and padding, four vectors, flags and padding.)
static_assert(sizeof(CompiledRuleset) ==
                  8 + 4 * sizeof(std::vector<std::pair<int, int>>) + 8,
              "CompiledRuleset changed: diff its new entries in DiffCompiled");

template <typename T>
std::string_view Bytes(const T& v) {
  return std::string_view(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename K, typename V>
void DiffEntries(const std::vector<std::pair<K, V>>& from,
                 const std::vector<std::pair<K, V>>& to,
                 std::vector<std::pair<K, V>>* upserts,
                 std::vector<std::pair<K, V>>* deletes) {
  // Key bytes -> value, of the old set. The views point into `from`.
  absl::flat_hash_map<std::string_view, const V*> old;
  old.reserve(from.size());
  for (const auto& [k, v] : from) old.emplace(Bytes(k), &v);
  for (const auto& entry : to) {
    auto it = old.find(Bytes(entry.first));
    if (it == old.end()) {
      upserts->push_back(entry);
      continue;
    }
    if (std::memcmp(it->second, &entry.second, sizeof(V)) != 0) {
      upserts->push_back(entry);
    }
    old.erase(it);  // what is left is gone from `to`
  }
  if (old.empty()) return;
  for (const auto& entry : from) {
    if (old.contains(Bytes(entry.first))) deletes->push_back(entry);
  }
}

}  // namespace

CompiledDiff DiffCompiled(const CompiledRuleset& from,
                          const CompiledRuleset& to) {
  CompiledDiff d;
  d.upserts.ruleset = to.ruleset;
  d.upserts.flags = to.flags;
  d.deletes.ruleset = from.ruleset;
  DiffEntries(from.ports, to.ports, &d.upserts.ports, &d.deletes.ports);
  DiffEntries(from.rules, to.rules, &d.upserts.rules, &d.deletes.rules);
  DiffEntries(from.names, to.names, &d.upserts.names, &d.deletes.names);
  DiffEntries(from.unix_paths, to.unix_paths, &d.upserts.unix_paths,
              &d.deletes.unix_paths);
  return d;
}

}  // namespace egress::policy
