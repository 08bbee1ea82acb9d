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
// (ruleset and padding, six vectors, flags and padding; `classes` is in
// no map, so it has nothing to diff.)
static_assert(sizeof(CompiledRuleset) ==
                  8 + 6 * sizeof(std::vector<std::pair<int, int>>) + 8,
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
  // Entries equal in place at the head and the tail (a set recompiled from
  // the other keeps most entries where they were) need nothing; a key is
  // in a set once, so what lies between holds every other key of both.
  auto same = [](const std::pair<K, V>& a, const std::pair<K, V>& b) {
    return std::memcmp(&a.first, &b.first, sizeof(K)) == 0 &&
           std::memcmp(&a.second, &b.second, sizeof(V)) == 0;
  };
  const size_t n = from.size(), m = to.size();
  size_t head = 0, tail = 0;
  while (head < n && head < m && same(from[head], to[head])) ++head;
  while (tail < n - head && tail < m - head &&
         same(from[n - 1 - tail], to[m - 1 - tail])) {
    ++tail;
  }
  // Key bytes -> value, of the old set's middle. The views point into
  // `from`.
  absl::flat_hash_map<std::string_view, const V*> old;
  old.reserve(n - head - tail);
  for (size_t i = head; i < n - tail; ++i) {
    old.emplace(Bytes(from[i].first), &from[i].second);
  }
  for (size_t j = head; j < m - tail; ++j) {
    const auto& entry = to[j];
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
  for (size_t i = head; i < n - tail; ++i) {
    if (old.contains(Bytes(from[i].first))) deletes->push_back(from[i]);
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
  DiffEntries(from.exact, to.exact, &d.upserts.exact, &d.deletes.exact);
  DiffEntries(from.names, to.names, &d.upserts.names, &d.deletes.names);
  DiffEntries(from.unix_paths, to.unix_paths, &d.upserts.unix_paths,
              &d.deletes.unix_paths);
  return d;
}

}  // namespace egress::policy
