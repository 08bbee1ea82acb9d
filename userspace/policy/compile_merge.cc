#include "userspace/policy/compile_merge.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
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

using Entry = std::pair<egress_rule_key, egress_rule_value>;

// Where an entry's key sorts: by (proto, family), the group a single probe
// can see, then by class (host order), as the merge walks them.
uint32_t GroupClass(const egress_rule_key& k) {
  return uint32_t{k.proto} << 24 | uint32_t{k.family} << 16 |
         ntohs(k.port_class);
}

// `order` (GroupClass << 32 | index in the side) sorted by GroupClass,
// indices ascending within one: a radix sort, as the std::map of a class
// per port of an allow-list of 100,000 ports cost a third of the compile.
void SortByGroupClass(std::vector<uint64_t>& order) {
  std::vector<uint64_t> tmp(order.size());
  for (int shift = 32; shift < 64; shift += 8) {
    size_t start[257] = {};
    for (uint64_t x : order) ++start[((x >> shift) & 0xff) + 1];
    // A digit all entries share (most of the 32 bits, in most policies)
    // moves nothing.
    if (start[((order[0] >> shift) & 0xff) + 1] == order.size()) continue;
    for (int d = 0; d < 256; ++d) start[d + 1] += start[d];
    for (uint64_t x : order) tmp[start[(x >> shift) & 0xff]++] = x;
    order.swap(tmp);
  }
}

// One side's entries, verdicts set, sorted by GroupClass (in their order
// within one), each key once: where it was first listed, with the lowest
// rule id of its listings.
std::vector<Entry> Sorted(const Entries& side, uint8_t verdict) {
  std::vector<Entry> out;
  if (side.empty()) return out;
  std::vector<uint64_t> order;
  order.reserve(side.size());
  for (size_t i = 0; i < side.size(); ++i) {
    order.push_back(uint64_t{GroupClass(side[i].first)} << 32 | i);
  }
  SortByGroupClass(order);
  out.reserve(side.size());
  // Equal keys share a GroupClass: only a run of more than one is searched
  // for repeats (an allow-list of single ports has none).
  absl::flat_hash_map<std::array<uint8_t, sizeof(egress_rule_key)>, size_t>
      first;
  for (size_t at = 0; at < order.size();) {
    size_t end = at + 1;
    while (end < order.size() && order[end] >> 32 == order[at] >> 32) ++end;
    if (!first.empty()) first.clear();
    for (size_t j = at; j < end; ++j) {
      const Entry& e = side[static_cast<uint32_t>(order[j])];
      if (end - at > 1) {
        std::array<uint8_t, sizeof(egress_rule_key)> bytes;
        std::memcpy(bytes.data(), &e.first, sizeof(e.first));
        const auto [it, inserted] = first.try_emplace(bytes, out.size());
        if (!inserted) {
          uint32_t& id = out[it->second].second.rule_id;
          id = std::min(id, e.second.rule_id);
          continue;
        }
      }
      out.push_back(e);
      out.back().second.verdict = verdict;
    }
    at = end;
  }
  return out;
}

// The entries of one class of a group's side sorted by class, from `at`
// (moved past them); empty if the next ones are of another.
absl::Span<const Entry> TakeSpan(absl::Span<const Entry> side, size_t& at,
                                 uint32_t group_class) {
  const size_t from = at;
  while (at < side.size() && GroupClass(side[at].first) == group_class) ++at;
  return side.subspan(from, at - from);
}

// The merge described in compile.h, one group at a time: `allow` and
// `deny` are the group's entries, sorted by class.
void MergeGroup(absl::Span<const Entry> allow, absl::Span<const Entry> deny,
                Entries* out) {
  // The denies of EGRESS_PORT_CLASS_ANY, the last class.
  size_t any_from = deny.size();
  while (any_from > 0 &&
         ntohs(deny[any_from - 1].first.port_class) == EGRESS_PORT_CLASS_ANY) {
    --any_from;
  }
  const absl::Span<const Entry> any_deny = deny.subspan(any_from);
  DenySet any_set;
  for (const auto& [k, v] : any_deny) any_set.Add(PrefixOf(k));
  // ANY denies sorted by address, for "which denies lie inside P?".
  std::vector<std::pair<Prefix, const Entry*>> any_sorted;
  for (const auto& e : any_deny) any_sorted.emplace_back(PrefixOf(e.first), &e);
  std::sort(
      any_sorted.begin(), any_sorted.end(),
      [](const auto& a, const auto& b) { return a.first.addr < b.first.addr; });

  // Every class of either side, in order.
  size_t a = 0, d = 0;
  while (a < allow.size() || d < deny.size()) {
    const uint32_t next =
        std::min(a < allow.size() ? GroupClass(allow[a].first) : UINT32_MAX,
                 d < deny.size() ? GroupClass(deny[d].first) : UINT32_MAX);
    const uint16_t c = static_cast<uint16_t>(next);
    const absl::Span<const Entry> denies = TakeSpan(deny, d, next);
    const absl::Span<const Entry> allows = TakeSpan(allow, a, next);
    DenySet class_set;
    for (const auto& [k, v] : denies) class_set.Add(PrefixOf(k));
    out->insert(out->end(), denies.begin(), denies.end());
    for (const auto& [k, v] : allows) {
      const Prefix p = PrefixOf(k);
      if (class_set.Covers(p) || any_set.Covers(p)) continue;  // deny wins
      out->emplace_back(k, v);
      if (c == EGRESS_PORT_CLASS_ANY || any_sorted.empty()) continue;
      // ANY denies strictly inside this allow must be longer here too.
      Prefix hi = p;
      for (uint32_t bit = p.len; bit < 128; ++bit) {
        hi.addr[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
      }
      auto it = std::lower_bound(
          any_sorted.begin(), any_sorted.end(), p.addr,
          [](const auto& e, const std::array<uint8_t, 16>& addr) {
            return e.first.addr < addr;
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
  const std::vector<Entry> allows = Sorted(allow, EGRESS_VERDICT_ALLOW);
  const std::vector<Entry> denies = Sorted(deny, EGRESS_VERDICT_DENY);
  out->reserve(out->size() + allows.size() + denies.size());
  auto group_of = [](const std::vector<Entry>& side, size_t at) {
    return at < side.size() ? GroupClass(side[at].first) >> 16 : UINT32_MAX;
  };
  size_t a = 0, d = 0;
  while (a < allows.size() || d < denies.size()) {
    const uint32_t group = std::min(group_of(allows, a), group_of(denies, d));
    const size_t a_from = a, d_from = d;
    while (group_of(allows, a) == group) ++a;
    while (group_of(denies, d) == group) ++d;
    MergeGroup(absl::MakeConstSpan(allows).subspan(a_from, a - a_from),
               absl::MakeConstSpan(denies).subspan(d_from, d - d_from), out);
  }
}

}  // namespace egress::policy::compile_internal
