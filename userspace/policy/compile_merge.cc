#include "userspace/policy/compile_merge.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "userspace/policy/name_rules.h"

namespace egress::policy::compile_internal {
namespace {

// A rule entry's prefix, without the class: what containment is about.
struct Prefix {
  std::array<uint8_t, 16> addr;
  uint32_t len;  // address bits
  bool operator==(const Prefix&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Prefix& p) {
    return H::combine(std::move(h), p.addr, p.len);
  }
};

Prefix PrefixOf(const egress_rule_key& k) {
  Prefix p;
  std::memcpy(p.addr.data(), k.addr, 16);
  p.len = k.prefixlen - EGRESS_RULE_KEY_FIXED_BITS;
  return p;
}

Prefix Truncate(const Prefix& p, uint32_t len) {
  return {MaskedAddress(p.addr, static_cast<int>(len)), len};
}

// Deny prefixes of one scope, for "is P inside some deny?" in O(#lengths).
class DenySet {
 public:
  void Add(const Prefix& p) {
    set_.insert(p);
    lengths_.insert(p.len);
  }
  bool Covers(const Prefix& p) const {
    for (uint32_t len : lengths_) {
      if (len > p.len) break;
      if (set_.contains(Truncate(p, len))) return true;
    }
    return false;
  }

 private:
  absl::flat_hash_set<Prefix> set_;
  std::set<uint32_t> lengths_;
};

// Rule entries grouped by what a single probe can see: (proto, family).
struct Group {
  // class -> entries; EGRESS_PORT_CLASS_ANY included.
  std::map<uint16_t, std::vector<std::pair<egress_rule_key, egress_rule_value>>>
      allow, deny;
};

// The merge described in compile.h, one group at a time.
void MergeGroup(
    Group& g, std::vector<std::pair<egress_rule_key, egress_rule_value>>* out) {
  static const std::vector<std::pair<egress_rule_key, egress_rule_value>>
      kNoDeny;
  auto any_it = g.deny.find(EGRESS_PORT_CLASS_ANY);
  const auto& any_deny = any_it == g.deny.end() ? kNoDeny : any_it->second;
  DenySet any_set;
  for (const auto& [k, v] : any_deny) any_set.Add(PrefixOf(k));
  // ANY denies sorted by address, for "which denies lie inside P?".
  std::vector<
      std::pair<Prefix, const std::pair<egress_rule_key, egress_rule_value>*>>
      any_sorted;
  for (const auto& e : any_deny) any_sorted.emplace_back(PrefixOf(e.first), &e);
  std::sort(
      any_sorted.begin(), any_sorted.end(),
      [](const auto& a, const auto& b) { return a.first.addr < b.first.addr; });

  // Every class of either side, in order; looked up, never inserted (an
  // allow-list of 100,000 single ports has as many classes).
  using EntryList = std::vector<std::pair<egress_rule_key, egress_rule_value>>;
  static const EntryList kNone;
  auto of = [](const std::map<uint16_t, EntryList>& side, uint16_t c) {
    auto it = side.find(c);
    return it == side.end() ? &kNone : &it->second;
  };
  std::vector<uint16_t> classes;
  classes.reserve(g.allow.size() + g.deny.size());
  for (const auto& [c, v] : g.allow) classes.push_back(c);
  for (const auto& [c, v] : g.deny) classes.push_back(c);
  std::inplace_merge(classes.begin(), classes.begin() + g.allow.size(),
                     classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  for (uint16_t c : classes) {
    const EntryList& denies = *of(g.deny, c);
    DenySet class_set;
    for (const auto& [k, v] : denies) class_set.Add(PrefixOf(k));
    for (const auto& e : denies) out->push_back(e);
    for (const auto& [k, v] : *of(g.allow, c)) {
      const Prefix p = PrefixOf(k);
      if (class_set.Covers(p) || any_set.Covers(p)) continue;  // deny wins
      out->emplace_back(k, v);
      if (c == EGRESS_PORT_CLASS_ANY) continue;
      // ANY denies strictly inside this allow must be longer here too.
      Prefix hi = p;
      for (uint32_t bit = p.len; bit < 128; ++bit) {
        hi.addr[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
      }
      auto it = std::lower_bound(
          any_sorted.begin(), any_sorted.end(), p.addr,
          [](const auto& a, const std::array<uint8_t, 16>& addr) {
            return a.first.addr < addr;
          });
      for (; it != any_sorted.end() && it->first.addr <= hi.addr; ++it) {
        if (it->first.len <= p.len) continue;
        egress_rule_key dk = it->second->first;
        dk.port_class = k.port_class;
        if (class_set.Covers(it->first)) continue;  // already denied here
        class_set.Add(it->first);
        out->emplace_back(dk, it->second->second);
      }
    }
  }
}

}  // namespace

absl::Status ValidateRule(const Rule& rule) {
  if (rule.id == 0) {
    return absl::InvalidArgumentError(
        "rule 0: id 0 is reserved for the default action");
  }
  if (rule.ports.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule ", rule.id, ": no ports"));
  }
  for (const PortProto& pp : rule.ports) {
    if (pp.lo > pp.hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule ", rule.id, ": port range ", pp.lo, "-", pp.hi,
                       " has its low end above its high end"));
    }
  }
  // Names compile to tcp and udp entries only; with no such port the rule
  // would keep just its icmp flag, allowing ping sockets to every address.
  if (rule.NamesWithoutTcpOrUdp()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rule ", rule.id, ": a name takes tcp and udp ports, not ",
        rule.spec.empty() ? "icmp" : rule.spec, ": '", rule.names[0], "'"));
  }
  for (const std::string& name : rule.names) {
    absl::StatusOr<std::string> canonical = CanonicalRuleName(name);
    if (!canonical.ok() || *canonical != name) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule ", rule.id, ": bad name '", name, "'"));
    }
  }
  for (const Cidr& c : rule.destinations) {
    if (!c.Valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rule ", rule.id, ": bad destination (family ", c.family,
          ", prefix length ", c.prefix_len,
          "): host bits set, bad prefix length or bad IPv4 layout"));
    }
  }
  return absl::OkStatus();
}

egress_rule_key RuleKey(uint32_t ruleset, uint8_t proto, uint16_t port_class,
                        const Cidr& dest) {
  egress_rule_key k{};
  k.prefixlen = EGRESS_RULE_KEY_FIXED_BITS + dest.prefix_len;
  k.ruleset = ruleset;
  k.proto = proto;
  k.family = dest.family == 4 ? EGRESS_FAMILY_IPV4 : EGRESS_FAMILY_IPV6;
  k.port_class = htons(port_class);
  std::memcpy(k.addr, dest.addr.data(), sizeof(k.addr));
  return k;
}

// Merges allow and deny entries into one trie: grouped by (proto, family)
// and class, with MergeGroup's rules.
void MergeEntries(Entries& allow, Entries& deny, Entries* out) {
  std::map<std::pair<uint8_t, uint8_t>, Group> groups;
  for (auto& [k, v] : allow) {
    v.verdict = EGRESS_VERDICT_ALLOW;
    groups[{k.proto, k.family}].allow[ntohs(k.port_class)].emplace_back(k, v);
  }
  for (auto& [k, v] : deny) {
    v.verdict = EGRESS_VERDICT_DENY;
    groups[{k.proto, k.family}].deny[ntohs(k.port_class)].emplace_back(k, v);
  }
  for (auto& [key, g] : groups) MergeGroup(g, out);
}

}  // namespace egress::policy::compile_internal
