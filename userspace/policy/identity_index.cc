#include "userspace/policy/identity_index.h"

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

uint64_t IdentityHasher::operator()(const Rule& rule) {
  buffer_.clear();
  AppendIdentityKey(rule, buffer_);
  return absl::HashOf(absl::string_view(buffer_));
}

IdentityIndex::IdentityIndex(size_t expected) {
  chains_.reserve(expected);
  entries_.reserve(expected);
}

bool IdentityIndex::Add(uint64_t hash, uint32_t value) {
  const uint32_t at = static_cast<uint32_t>(entries_.size());
  entries_.push_back({value, kNone});
  auto [it, inserted] = chains_.try_emplace(hash, Chain{at, at});
  if (inserted) return true;
  entries_[it->second.last].next = at;
  it->second.last = at;
  return false;
}

}  // namespace egress::policy
