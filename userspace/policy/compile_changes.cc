#include "userspace/policy/compile_changes.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "userspace/policy/compile_deny_summary.h"
#include "userspace/policy/compile_exact.h"
#include "userspace/policy/compile_merge.h"
#include "userspace/policy/rule_compare.h"

namespace egress::policy {
namespace {

using compile_internal::Entries;

bool IsPortProto(Proto p) { return p == Proto::kTcp || p == Proto::kUdp; }
int ProtoIndex(Proto p) { return p == Proto::kTcp ? 0 : 1; }
constexpr uint8_t kIpProtos[2] = {IPPROTO_TCP, IPPROTO_UDP};

// A changed rule the recompile takes: tcp/udp port entries and addresses
// only, no deny of every port, and valid.
bool Recompilable(const Rule& r) {
  if (!r.names.empty() || !r.unix_paths.empty()) return false;
  for (const PortProto& pp : r.ports) {
    if (!IsPortProto(pp.proto)) return false;
    if (r.action == Action::kDeny && pp.AllPorts()) return false;
  }
  return compile_internal::ValidateRule(r).ok();
}

// A tcp/udp port range that is not every port: a source of class cuts.
struct Range {
  int proto;  // ProtoIndex
  uint16_t lo, hi;
  bool operator==(const Range&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Range& r) {
    return H::combine(std::move(h), r.proto, r.lo, r.hi);
  }
};

// The rules that differ between `before` and `after` (a rule whose content
// changed counts on both sides). False when more than kMaxRecompiledRules.
bool ChangedRules(absl::Span<const Rule> before, absl::Span<const Rule> after,
                  std::vector<const Rule*>* gone,
                  std::vector<const Rule*>* added) {
  // The common head and tail (by id) are compared in place; only what lies
  // between is hashed. A rule of either that differs counts as changed.
  const size_t n = before.size(), m = after.size();
  const auto [head, tail] = CommonEndsById(before, after);
  auto in_place = [&](size_t i, size_t j) {
    // The same rule, not just an equal one, when both views share the
    // target's list (an appended allow): no deep compare of 100,000 rules.
    if (&before[i] == &after[j] || before[i] == after[j]) return true;
    gone->push_back(&before[i]);
    added->push_back(&after[j]);
    return gone->size() + added->size() <= kMaxRecompiledRules;
  };
  for (size_t i = 0; i < head; ++i) {
    if (!in_place(i, i)) return false;
  }
  for (size_t k = tail; k > 0; --k) {
    if (!in_place(n - k, m - k)) return false;
  }
  absl::flat_hash_map<uint32_t, const Rule*> old;
  for (size_t i = head; i < n - tail; ++i)
    old.emplace(before[i].id, &before[i]);
  for (size_t j = head; j < m - tail; ++j) {
    const Rule& r = after[j];
    auto it = old.find(r.id);
    if (it != old.end() && *it->second == r) {
      old.erase(it);
      continue;
    }
    if (it != old.end()) {
      gone->push_back(it->second);
      old.erase(it);
    }
    added->push_back(&r);
    if (gone->size() + added->size() > kMaxRecompiledRules) return false;
  }
  for (const auto& [id, r] : old) gone->push_back(r);
  return gone->size() + added->size() <= kMaxRecompiledRules;
}

// True when every range the changed rules name is still named by some rule
// after the change exactly when it was before: the port classes stay.
bool ClassesStay(absl::Span<const Rule> after,
                 const std::vector<const Rule*>& gone,
                 const std::vector<const Rule*>& added) {
  absl::flat_hash_map<Range, int64_t> delta;  // after minus before
  auto count = [&](const std::vector<const Rule*>& rules, int sign) {
    for (const Rule* r : rules) {
      for (const PortProto& pp : r->ports) {
        if (pp.AllPorts()) continue;
        delta[{ProtoIndex(pp.proto), pp.lo, pp.hi}] += sign;
      }
    }
  };
  count(added, 1);
  count(gone, -1);
  absl::flat_hash_map<Range, int64_t> now;  // in `after`
  for (const auto& [range, d] : delta) now[range] = 0;
  for (const Rule& r : after) {
    for (const PortProto& pp : r.ports) {
      if (!IsPortProto(pp.proto) || pp.AllPorts()) continue;
      auto it = now.find(Range{ProtoIndex(pp.proto), pp.lo, pp.hi});
      if (it != now.end()) ++it->second;
    }
  }
  for (const auto& [range, d] : delta) {
    const int64_t after_count = now[range];
    if ((after_count > 0) != (after_count - d > 0)) return false;
  }
  return true;
}

// The port classes a change reaches, per protocol, with the ports each
// covers (an elementary interval: a range holds all of it or none of it).
struct Reached {
  struct Class {
    uint16_t port_class;
    uint32_t lo, hi;
  };
  std::vector<Class> classes[2];
  bool any[2] = {false, false};  // EGRESS_PORT_CLASS_ANY (allows only)

  bool Has(int proto, uint16_t port_class) const {
    if (port_class == EGRESS_PORT_CLASS_ANY) return any[proto];
    for (const Class& c : classes[proto]) {
      if (c.port_class == port_class) return true;
    }
    return false;
  }
};

Reached ReachedClasses(const CompiledRuleset& compiled,
                       const std::vector<const Rule*>& changed) {
  Reached out;
  std::vector<Range> ranges;
  for (const Rule* r : changed) {
    for (const PortProto& pp : r->ports) {
      if (pp.AllPorts()) {
        out.any[ProtoIndex(pp.proto)] = true;
      } else {
        ranges.push_back({ProtoIndex(pp.proto), pp.lo, pp.hi});
      }
    }
  }
  // A class is reached when its ports meet a changed range.
  for (const compile_internal::ClassSpan& c : compiled.classes) {
    const int p = c.proto == IPPROTO_TCP ? 0 : 1;
    for (const Range& r : ranges) {
      if (r.proto == p && r.lo <= c.hi && c.lo <= r.hi) {
        out.classes[p].push_back({c.port_class, c.lo, c.hi});
        break;
      }
    }
  }
  return out;
}

// The allow and deny entries of `after` in the reached classes, plus the
// denies of every port of each protocol with a reached class (they decide
// inside every class).
void ReachedEntries(absl::Span<const Rule> after, const Reached& reached,
                    uint32_t ruleset, Entries* allow_list, Entries* deny_list) {
  const CidrList anywhere = {Cidr::AnyV4(), Cidr::AnyV6()};
  for (const Rule& rule : after) {
    const bool is_deny = rule.action == Action::kDeny;
    const CidrList& dests = rule.Anywhere() ? anywhere : rule.destinations;
    if (dests.empty()) continue;
    Entries& entries = is_deny ? *deny_list : *allow_list;
    for (const PortProto& pp : rule.ports) {
      if (!IsPortProto(pp.proto)) continue;
      const int p = ProtoIndex(pp.proto);
      auto add = [&](uint16_t port_class) {
        for (const Cidr& d : dests) {
          compile_internal::AddEntry(
              entries,
              compile_internal::RuleKey(ruleset, kIpProtos[p], port_class, d),
              rule.id);
        }
      };
      if (pp.AllPorts()) {
        if (is_deny ? reached.any[p] || !reached.classes[p].empty()
                    : reached.any[p]) {
          add(EGRESS_PORT_CLASS_ANY);
        }
        continue;
      }
      for (const Reached::Class& c : reached.classes[p]) {
        if (pp.lo <= c.lo && c.hi <= pp.hi) add(c.port_class);
      }
    }
  }
}

// Whether a rules entry belongs to a reached class (addresses only: name
// entries have a family of their own and are never reached).
bool InReached(const egress_rule_key& k, const Reached& reached) {
  if (k.family != EGRESS_FAMILY_IPV4 && k.family != EGRESS_FAMILY_IPV6) {
    return false;
  }
  if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP) return false;
  return reached.Has(k.proto == IPPROTO_TCP ? 0 : 1, ntohs(k.port_class));
}

// Whether an exact entry of an address has its port in a reached class of
// its protocol (name entries, never reached, are taken over as they are).
bool InReachedPorts(const egress_exact_key& k, const Reached& reached) {
  if (k.family != EGRESS_FAMILY_IPV4 && k.family != EGRESS_FAMILY_IPV6) {
    return false;
  }
  const int p = k.proto == IPPROTO_TCP ? 0 : 1;
  const uint32_t port = ntohs(k.port);
  for (const Reached::Class& c : reached.classes[p]) {
    if (c.lo <= port && port <= c.hi) return true;
  }
  return false;
}

template <typename K, typename V>
std::vector<std::pair<K, V>> Rekeyed(const std::vector<std::pair<K, V>>& from,
                                     uint32_t ruleset) {
  std::vector<std::pair<K, V>> out = from;
  for (auto& [k, v] : out) k.ruleset = ruleset;
  return out;
}

}  // namespace

std::optional<CompiledRuleset> RecompileChanged(const CompiledRuleset& compiled,
                                                absl::Span<const Rule> before,
                                                absl::Span<const Rule> after,
                                                uint32_t ruleset,
                                                size_t exact_limit) {
  if (ruleset == 0 || compiled.ruleset == 0) return std::nullopt;
  std::vector<const Rule*> gone, added;
  if (!ChangedRules(before, after, &gone, &added)) return std::nullopt;
  for (const Rule* r : added) {
    if (!Recompilable(*r)) return std::nullopt;
  }
  for (const Rule* r : gone) {
    if (!Recompilable(*r)) return std::nullopt;
  }
  if (!ClassesStay(after, gone, added)) return std::nullopt;

  std::vector<const Rule*> changed = gone;
  changed.insert(changed.end(), added.begin(), added.end());
  const Reached reached = ReachedClasses(compiled, changed);
  Entries allow, deny, merged;
  ReachedEntries(after, reached, ruleset, &allow, &deny);
  compile_internal::MergeEntries(allow, deny, &merged);
  // The exact entries of the classes not reached are taken over; those of
  // the reached ones come again from the merge, as a whole compile makes
  // them (compile_exact.h), where the first old one was.
  compile_internal::ExactClasses small;
  for (int p = 0; p < 2; ++p) {
    for (const Reached::Class& c : reached.classes[p]) {
      small.Add(p, c.port_class, c.lo, c.hi);
    }
  }
  std::vector<std::pair<egress_exact_key, egress_rule_value>> kept_exact;
  size_t exact_at = compiled.exact.size();
  for (const auto& [k, v] : compiled.exact) {
    if (InReachedPorts(k, reached)) {
      exact_at = std::min(exact_at, kept_exact.size());
      continue;
    }
    kept_exact.emplace_back(k, v).first.ruleset = ruleset;
  }
  std::vector<std::pair<egress_exact_key, egress_rule_value>> new_exact;
  const size_t room =
      exact_limit > kept_exact.size() ? exact_limit - kept_exact.size() : 0;
  compile_internal::MoveExact(small, room, &merged, &new_exact);

  CompiledRuleset out;
  out.ruleset = ruleset;
  out.flags = compiled.flags;
  out.classes = compiled.classes;
  out.names = Rekeyed(compiled.names, ruleset);
  out.unix_paths = Rekeyed(compiled.unix_paths, ruleset);
  out.rules.reserve(compiled.rules.size() + merged.size());
  // The new entries of the reached classes go where their old ones began
  // (at the end when there were none): the set keeps nearly the order of a
  // whole compile, and DiffCompiled finds long equal heads and tails.
  bool placed = false;
  auto place = [&] {
    for (const auto& e : merged) {
      if (InReached(e.first, reached)) out.rules.push_back(e);
    }
    placed = true;
  };
  for (const auto& [k, v] : compiled.rules) {
    if (InReached(k, reached)) {
      if (!placed) place();
      continue;
    }
    out.rules.emplace_back(k, v).first.ruleset = ruleset;
  }
  if (!placed) place();
  exact_at = std::min(exact_at, kept_exact.size());
  out.exact.reserve(kept_exact.size() + new_exact.size());
  out.exact.assign(kept_exact.begin(), kept_exact.begin() + exact_at);
  out.exact.insert(out.exact.end(), new_exact.begin(), new_exact.end());
  out.exact.insert(out.exact.end(), kept_exact.begin() + exact_at,
                   kept_exact.end());
  // The classes the tries name may change with the reached ones.
  out.ports =
      compile_internal::NamedClassEntries(ruleset, out.classes, out.rules);
  if (out.rules.size() > EGRESS_MAX_RULE_ENTRIES) return std::nullopt;
  // A deny added or removed changes what every name entry says of them.
  SummarizeDenies(&out);
  return out;
}

}  // namespace egress::policy
