#include "userspace/policy/compile.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/compile_deny_summary.h"
#include "userspace/policy/compile_exact.h"
#include "userspace/policy/compile_merge.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

using compile_internal::AddEntry;
using compile_internal::Entries;
using compile_internal::MergeEntries;
using compile_internal::RuleKey;
using compile_internal::ValidateRule;

// Elementary port intervals of one protocol and their class numbers.
class PortClasses {
 public:
  // `ranges` are the non-full ranges of one protocol.
  static absl::StatusOr<PortClasses> Build(
      const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    PortClasses pc;
    // The cuts marked on the 65,537 places they can be, then read in order:
    // sorting two cuts per range (200,000 for an allow-list of 100,000
    // ports) was a tenth of such a compile.
    std::vector<bool> is_cut(65537, false);
    is_cut[0] = is_cut[65536] = true;
    for (const auto& [lo, hi] : ranges) is_cut[lo] = is_cut[hi + 1] = true;
    // Index() of every cut, 0 to 65536: every port of every rule is looked
    // up, and a binary search of up to 120,000 cuts per port (a policy of
    // 100,000 rules of distinct ports) cost more than this table's fill.
    pc.index_.resize(65537);
    for (uint32_t cut = 0; cut <= 65536; ++cut) {
      pc.index_[cut] = static_cast<uint32_t>(pc.cuts_.size());
      if (is_cut[cut]) pc.cuts_.push_back(cut);
    }
    const size_t intervals = pc.cuts_.size() - 1;
    std::vector<int> delta(intervals + 1, 0);
    for (const auto& [lo, hi] : ranges) {
      ++delta[pc.Index(lo)];
      --delta[pc.Index(hi + 1)];
    }
    pc.class_.assign(intervals, 0);
    int depth = 0;
    uint32_t next = 1;
    for (size_t i = 0; i < intervals; ++i) {
      depth += delta[i];
      if (depth > 0) {
        if (next >= EGRESS_PORT_CLASS_ANY) {
          return absl::ResourceExhaustedError(
              absl::StrCat("too many distinct port ranges: more than ",
                           EGRESS_PORT_CLASS_ANY - 1, " port classes"));
        }
        pc.class_[i] = static_cast<uint16_t>(next++);
      }
    }
    return pc;
  }

  // Calls f(class, first_port, last_port) for every numbered interval.
  template <typename F>
  void ForEachClass(F f) const {
    for (size_t i = 0; i + 1 < cuts_.size(); ++i) {
      if (class_[i] != 0) f(class_[i], cuts_[i], cuts_[i + 1] - 1);
    }
  }

  // First and last class inside [lo, hi], a range given to Build.
  std::pair<uint16_t, uint16_t> ClassesOf(uint32_t lo, uint32_t hi) const {
    return {class_[Index(lo)], class_[Index(hi + 1) - 1]};
  }

 private:
  // The place of the first cut at or after `cut` (0 to 65536).
  size_t Index(uint32_t cut) const { return index_[cut]; }

  std::vector<uint32_t> cuts_;  // sorted interval starts, then 65536
  std::vector<uint32_t> index_;
  std::vector<uint16_t> class_;
};

// The rules entry prefix of a name: its pattern id in place of an address,
// all 128 bits significant.
egress_rule_key NameRuleKey(uint32_t ruleset, uint8_t proto,
                            uint16_t port_class, uint64_t pattern) {
  egress_rule_key k{};
  k.prefixlen = EGRESS_RULE_KEY_FIXED_BITS + 128;
  k.ruleset = ruleset;
  k.proto = proto;
  k.family = EGRESS_FAMILY_NAME;
  k.port_class = htons(port_class);
  std::memcpy(k.addr, &pattern, sizeof(pattern));
  return k;
}

// True if the first `bits` bits of a and b are equal.
bool PrefixEqual(const uint8_t* a, const uint8_t* b, uint32_t bits) {
  const uint32_t bytes = bits / 8;
  if (std::memcmp(a, b, bytes) != 0) return false;
  const uint32_t rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff00 >> rest);
  return (a[bytes] & mask) == (b[bytes] & mask);
}

// The kernel's LPM trie lookup over `entries`: the longest prefix whose bits
// (after the 4-byte prefixlen) equal the query's.
template <typename K, typename V>
const V* LpmLookup(const std::vector<std::pair<K, V>>& entries,
                   const K& query) {
  const auto* q = reinterpret_cast<const uint8_t*>(&query) + 4;
  const V* best = nullptr;
  int64_t best_len = -1;
  for (const auto& [key, value] : entries) {
    const auto* e = reinterpret_cast<const uint8_t*>(&key) + 4;
    if (static_cast<int64_t>(key.prefixlen) > best_len &&
        PrefixEqual(e, q, key.prefixlen)) {
      best = &value;
      best_len = key.prefixlen;
    }
  }
  return best;
}

// The key family of Evaluate's `family` (4, 6 or EGRESS_FAMILY_NAME).
uint8_t KeyFamily(uint8_t family) {
  if (family == 4) return EGRESS_FAMILY_IPV4;
  if (family == 6) return EGRESS_FAMILY_IPV6;
  return EGRESS_FAMILY_NAME;
}

// Whether `rule` names the pattern id in the first 8 bytes of `addr` with a
// tcp/udp port entry covering the port (EvaluateNaive's name case).
bool NameRuleMatches(const Rule& rule, uint8_t ip_proto, uint16_t port,
                     const std::array<uint8_t, 16>& addr) {
  uint64_t pattern = 0;
  std::memcpy(&pattern, addr.data(), sizeof(pattern));
  bool port_match = false;
  for (const PortProto& pp : rule.ports) {
    if (pp.proto != Proto::kTcp && pp.proto != Proto::kUdp) continue;
    port_match |=
        ip_proto == (pp.proto == Proto::kTcp ? IPPROTO_TCP : IPPROTO_UDP) &&
        port >= pp.lo && port <= pp.hi;
  }
  if (!port_match) return false;
  for (const std::string& name : rule.names) {
    if (NamePatternId(name) == pattern) return true;
  }
  return false;
}

using PortRanges = std::vector<std::pair<uint32_t, uint32_t>>;

// Validates every rule and collects what is not per destination: the
// target flags (icmp, raw) and the explicit tcp/udp port ranges.
absl::Status ScanRules(absl::Span<const Rule> rules, uint8_t* flags,
                       PortRanges ranges[2]) {
  bool allow_raw = false, deny_raw = false;
  for (const Rule& rule : rules) {
    EGRESS_RETURN_IF_ERROR(ValidateRule(rule));
    for (const PortProto& pp : rule.ports) {
      if (pp.proto == Proto::kRaw) {
        (rule.action == Action::kAllow ? allow_raw : deny_raw) = true;
      } else if (pp.proto == Proto::kIcmp && rule.action == Action::kAllow) {
        *flags |= EGRESS_TF_ALLOW_ICMP;
      } else if ((pp.proto == Proto::kTcp || pp.proto == Proto::kUdp) &&
                 !pp.AllPorts()) {
        ranges[pp.proto == Proto::kTcp ? 0 : 1].emplace_back(pp.lo, pp.hi);
      }
    }
  }
  if (allow_raw && !deny_raw) *flags |= EGRESS_TF_ALLOW_RAW;
  return absl::OkStatus();
}

constexpr uint8_t kIpProtos[2] = {IPPROTO_TCP, IPPROTO_UDP};

// The port classes of tcp and udp, and their spans.
absl::Status BuildPortClasses(const PortRanges ranges[2],
                              std::optional<PortClasses> classes[2],
                              CompiledRuleset* out) {
  for (int p = 0; p < 2; ++p) {
    EGRESS_ASSIGN_OR_RETURN(classes[p], PortClasses::Build(ranges[p]));
    classes[p]->ForEachClass([&](uint16_t cls, uint32_t lo, uint32_t hi) {
      out->classes.push_back({kIpProtos[p], cls, static_cast<uint16_t>(lo),
                              static_cast<uint16_t>(hi)});
    });
  }
  return absl::OkStatus();
}

// Calls key(ip_proto, port_class) for every class a tcp/udp port entry
// covers.
template <typename F>
void ForEachClass(const PortProto& pp,
                  const std::optional<PortClasses> classes[2], F key) {
  const int p = pp.proto == Proto::kTcp ? 0 : 1;
  if (pp.AllPorts()) {
    key(kIpProtos[p], uint16_t{EGRESS_PORT_CLASS_ANY});
    return;
  }
  const auto [first, last] = classes[p]->ClassesOf(pp.lo, pp.hi);
  for (uint32_t c = first; c <= last; ++c) {
    key(kIpProtos[p], static_cast<uint16_t>(c));
  }
}

// One rule's entries for one port entry and one destination.
void AddEntries(uint32_t ruleset, const Rule& rule, const PortProto& pp,
                const Cidr& d, const std::optional<PortClasses> classes[2],
                Entries& entries) {
  if (pp.proto == Proto::kIcmp) {
    const uint8_t icmp =
        d.family == 4 ? uint8_t{IPPROTO_ICMP} : uint8_t{IPPROTO_ICMPV6};
    AddEntry(entries, RuleKey(ruleset, icmp, EGRESS_PORT_CLASS_ANY, d),
             rule.id);
    return;
  }
  ForEachClass(pp, classes, [&](uint8_t proto, uint16_t port_class) {
    AddEntry(entries, RuleKey(ruleset, proto, port_class, d), rule.id);
  });
}

// One rule's entries for one tcp/udp port entry and one name.
void AddNameEntries(uint32_t ruleset, const Rule& rule, const PortProto& pp,
                    const std::string& name,
                    const std::optional<PortClasses> classes[2],
                    Entries& entries) {
  const uint64_t pattern = NamePatternId(name);
  ForEachClass(pp, classes, [&](uint8_t proto, uint16_t port_class) {
    AddEntry(entries, NameRuleKey(ruleset, proto, port_class, pattern),
             rule.id);
  });
}

absl::Status CheckCapacity(const CompiledRuleset& out) {
  if (out.ports.size() > EGRESS_MAX_PORT_ENTRIES) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rules need ", out.ports.size(),
                     " port class entries; port_classes holds at most ",
                     EGRESS_MAX_PORT_ENTRIES));
  }
  if (out.names.size() > EGRESS_DNS_MAX_NAME_ENTRIES) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rules need ", out.names.size(), " names; dns_names holds at most ",
        EGRESS_DNS_MAX_NAME_ENTRIES));
  }
  if (out.rules.size() > EGRESS_MAX_RULE_ENTRIES) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rules need ", out.rules.size(),
        " entries; the rules map holds at most ", EGRESS_MAX_RULE_ENTRIES));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompiledRuleset> Compile(uint32_t ruleset,
                                        absl::Span<const Rule> rules,
                                        size_t exact_limit) {
  if (ruleset == 0) {
    return absl::InvalidArgumentError("ruleset 0 is reserved");
  }
  CompiledRuleset out;
  out.ruleset = ruleset;
  PortRanges ranges[2];  // tcp, udp
  EGRESS_RETURN_IF_ERROR(ScanRules(rules, &out.flags, ranges));
  std::optional<PortClasses> classes[2];
  EGRESS_RETURN_IF_ERROR(BuildPortClasses(ranges, classes, &out));

  // Every entry as made, repeats included: MergeEntries keeps each key once
  // (a hash map of every key here was a quarter of a 100,000-rule compile).
  Entries allow_list, deny_list;
  const size_t allows = static_cast<size_t>(
      std::count_if(rules.begin(), rules.end(),
                    [](const Rule& r) { return r.action == Action::kAllow; }));
  allow_list.reserve(allows);
  deny_list.reserve(rules.size() - allows);
  const CidrList anywhere = {Cidr::AnyV4(), Cidr::AnyV6()};
  for (const Rule& rule : rules) {
    Entries& side = rule.action == Action::kAllow ? allow_list : deny_list;
    const CidrList& dests = rule.Anywhere() ? anywhere : rule.destinations;
    for (const PortProto& pp : rule.ports) {
      if (pp.proto == Proto::kRaw || pp.proto == Proto::kUnix) continue;
      for (const Cidr& d : dests)
        AddEntries(ruleset, rule, pp, d, classes, side);
      // Names are tcp and udp only: "any" to a name is every port of both.
      if (pp.proto == Proto::kIcmp) continue;
      for (const std::string& name : rule.names)
        AddNameEntries(ruleset, rule, pp, name, classes, side);
    }
  }
  out.names = CompileNameEntries(ruleset, rules);
  if (!out.names.empty()) out.flags |= EGRESS_TF_NAME_RULES;
  MergeEntries(allow_list, deny_list, &out.rules);
  compile_internal::ExactClasses small;
  for (const compile_internal::ClassSpan& c : out.classes) {
    small.Add(c.proto == IPPROTO_TCP ? 0 : 1, c.port_class, c.lo, c.hi);
  }
  compile_internal::MoveExact(small, exact_limit, &out.rules, &out.exact);
  out.ports =
      compile_internal::NamedClassEntries(ruleset, out.classes, out.rules);
  SummarizeDenies(&out);
  EGRESS_RETURN_IF_ERROR(
      CompileUnixRules(ruleset, rules, &out.unix_paths, &out.flags));
  EGRESS_RETURN_IF_ERROR(CheckCapacity(out));
  return out;
}

Decision Evaluate(const CompiledRuleset& compiled, uint32_t ruleset,
                  uint8_t ip_proto, uint16_t port_host_order, uint8_t family,
                  const std::array<uint8_t, 16>& addr) {
  const uint8_t key_family = KeyFamily(family);
  std::optional<uint16_t> port_class;
  if (ip_proto == IPPROTO_TCP || ip_proto == IPPROTO_UDP) {
    const egress_exact_key ek = compile_internal::ExactKey(
        ruleset, ip_proto, key_family, port_host_order, addr.data());
    for (const auto& [k, v] : compiled.exact) {
      if (std::memcmp(&k, &ek, sizeof(k)) == 0) return {v.verdict, v.rule_id};
    }
    egress_port_key pk{};
    pk.prefixlen = EGRESS_PORT_KEY_FIXED_BITS + 16;
    pk.ruleset = ruleset;
    pk.proto = ip_proto;
    pk.port = htons(port_host_order);
    if (const egress_port_value* v = LpmLookup(compiled.ports, pk)) {
      port_class = v->port_class;
    }
  }
  egress_rule_key rk{};
  rk.prefixlen = EGRESS_RULE_KEY_FIXED_BITS + 128;
  rk.ruleset = ruleset;
  rk.proto = ip_proto;
  rk.family = key_family;
  std::memcpy(rk.addr, addr.data(), sizeof(rk.addr));
  if (port_class) {
    rk.port_class = htons(*port_class);
    if (const egress_rule_value* v = LpmLookup(compiled.rules, rk)) {
      return {v->verdict, v->rule_id};
    }
  }
  rk.port_class = htons(EGRESS_PORT_CLASS_ANY);
  if (const egress_rule_value* v = LpmLookup(compiled.rules, rk)) {
    return {v->verdict, v->rule_id};
  }
  return {EGRESS_VERDICT_DENY, 0};
}

Decision EvaluateNaive(absl::Span<const Rule> rules, uint8_t ip_proto,
                       uint16_t port_host_order, uint8_t family,
                       const std::array<uint8_t, 16>& addr) {
  std::optional<uint32_t> allow_id;
  for (const Rule& rule : rules) {
    if (family == EGRESS_FAMILY_NAME
            ? !NameRuleMatches(rule, ip_proto, port_host_order, addr)
            : !RuleMatches(rule, ip_proto, port_host_order, family, addr)) {
      continue;
    }
    if (rule.action == Action::kDeny) return {EGRESS_VERDICT_DENY, rule.id};
    if (!allow_id) allow_id = rule.id;
  }
  if (allow_id) return {EGRESS_VERDICT_ALLOW, *allow_id};
  return {EGRESS_VERDICT_DENY, 0};
}

}  // namespace egress::policy
