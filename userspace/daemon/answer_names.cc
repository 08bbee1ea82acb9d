#include "userspace/daemon/answer_names.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/policy/rule.h"

namespace egress {
namespace {

// The kernel's parser writes names this way (lib/dns.h); anything else is
// not ours to put in a policy.
bool IsAnswerName(absl::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

}  // namespace

std::string AnswerNames::Key(uint8_t family,
                             const std::array<uint8_t, 16>& addr) {
  std::array<uint8_t, 16> a = addr;
  if (family == 6 && policy::IsV4Mapped(a)) {
    family = 4;
    std::copy(addr.begin() + 12, addr.end(), a.begin());
  }
  if (family == 4) std::fill(a.begin() + 4, a.end(), 0);
  std::string k(1, static_cast<char>(family));
  k.append(reinterpret_cast<const char*>(a.data()), a.size());
  return k;
}

void AnswerNames::Remember(const std::string& target,
                           const egress_dns_answer_event& answer,
                           int64_t answer_ns, uint32_t ttl_floor_s) {
  uint8_t family = 0;
  if (answer.qtype == EGRESS_DNS_TYPE_A) family = 4;
  if (answer.qtype == EGRESS_DNS_TYPE_AAAA) family = 6;
  const std::string name(answer.qname,
                         strnlen(answer.qname, sizeof(answer.qname)));
  if (family == 0 || !IsAnswerName(name) || max_per_target_ == 0) return;
  Table& t = targets_[target];
  const size_t n = std::min<size_t>(answer.naddrs, EGRESS_DNS_MAX_ANSWERS);
  for (size_t i = 0; i < n; ++i) {
    std::array<uint8_t, 16> addr;
    std::memcpy(addr.data(), answer.addrs[i].addr, 16);
    const std::string key = Key(family, addr);
    auto [it, fresh] = t.names.try_emplace(key);
    std::vector<Bound>& names = it->second;
    // As the kernel binds it (dns_learn.h): max(TTL, floor) from now.
    const int64_t lifetime_ns =
        int64_t{std::max(answer.addrs[i].ttl, ttl_floor_s)} * 1'000'000'000;
    int64_t expires_ns = answer_ns + lifetime_ns;
    auto same = std::find_if(names.begin(), names.end(),
                             [&](const Bound& b) { return b.name == name; });
    if (same != names.end()) {
      // A shorter TTL in a later answer does not cut a binding short.
      expires_ns = std::max(expires_ns, same->expires_ns);
      names.erase(same);
    }
    names.push_back({name, expires_ns});
    if (names.size() > kMaxNamesPerAddress) names.erase(names.begin());
    t.changed.insert(key);
    if (!fresh) continue;
    t.order.push_back(key);
    while (t.names.size() > max_per_target_) {
      t.names.erase(t.order.front());
      t.changed.erase(t.order.front());
      t.order.pop_front();
    }
  }
}

std::string AnswerNames::NameOf(const std::string& target, uint8_t family,
                                const std::array<uint8_t, 16>& addr,
                                int64_t at_ns) const {
  auto t = targets_.find(target);
  if (t == targets_.end()) return "";
  auto it = t->second.names.find(Key(family, addr));
  if (it == t->second.names.end()) return "";
  std::vector<std::string> sorted;
  for (const Bound& b : it->second) {
    if (at_ns <= b.expires_ns) sorted.push_back(b.name);
  }
  std::sort(sorted.begin(), sorted.end());
  return absl::StrJoin(sorted, ",");
}

void AnswerNames::Forget(const std::string& target) { targets_.erase(target); }

absl::flat_hash_map<std::string, std::vector<AnswerNames::Kept>>
AnswerNames::TakeChanged() {
  absl::flat_hash_map<std::string, std::vector<Kept>> out;
  for (auto& [target, t] : targets_) {
    for (const std::string& key : t.changed) {
      auto it = t.names.find(key);
      if (it == t.names.end()) continue;
      std::vector<std::string> names;
      for (const Bound& b : it->second) {
        names.push_back(absl::StrCat(b.name, "@", b.expires_ns));
      }
      out[target].push_back(
          {absl::BytesToHexString(key), absl::StrJoin(names, ",")});
    }
    t.changed.clear();
  }
  return out;
}

void AnswerNames::Restore(const std::string& target, const Kept& kept) {
  // family and 16 address bytes, in hex
  if (kept.key.size() != 34 || max_per_target_ == 0 ||
      !std::all_of(kept.key.begin(), kept.key.end(), absl::ascii_isxdigit)) {
    return;
  }
  const std::string key = absl::HexStringToBytes(kept.key);
  std::vector<Bound> names;
  for (absl::string_view entry : absl::StrSplit(kept.names, ',')) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(entry, absl::MaxSplits('@', 1));
    int64_t expires_ns = 0;
    if (IsAnswerName(parts.first) &&
        absl::SimpleAtoi(parts.second, &expires_ns) &&
        names.size() < kMaxNamesPerAddress) {
      names.push_back({std::string(parts.first), expires_ns});
    }
  }
  if (names.empty()) return;
  Table& t = targets_[target];
  auto [it, fresh] = t.names.insert_or_assign(key, std::move(names));
  if (!fresh) return;
  t.order.push_back(key);
  while (t.names.size() > max_per_target_) {
    t.names.erase(t.order.front());
    t.order.pop_front();
  }
}

size_t AnswerNames::size(const std::string& target) const {
  auto t = targets_.find(target);
  return t == targets_.end() ? 0 : t->second.names.size();
}

}  // namespace egress
