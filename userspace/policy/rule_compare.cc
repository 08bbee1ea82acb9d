#include "userspace/policy/rule_compare.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "userspace/policy/cidr_set.h"

namespace egress::policy {
namespace {

// A rule's destinations as a normalized set; none means anywhere, which is
// written out so that "anywhere" and "0.0.0.0/0 ::/0" compare equal.
std::vector<Cidr> DestinationSet(const Rule& rule) {
  if (rule.Anywhere()) return {Cidr::AnyV4(), Cidr::AnyV6()};
  return NormalizeCidrs(rule.destinations);
}

// True if every entry of `inner` lies inside one entry of `outer`; both are
// CanonicalPorts, so a range inside the union lies inside one range.
bool PortsCover(absl::Span<const PortProto> outer,
                absl::Span<const PortProto> inner) {
  return std::all_of(inner.begin(), inner.end(), [&](const PortProto& p) {
    return std::any_of(outer.begin(), outer.end(), [&](const PortProto& o) {
      return o.proto == p.proto && o.lo <= p.lo && p.hi <= o.hi;
    });
  });
}

bool DestinationsCover(absl::Span<const Cidr> outer,
                       absl::Span<const Cidr> inner) {
  return std::all_of(inner.begin(), inner.end(), [&](const Cidr& c) {
    return NormalizedContains(outer, c);
  });
}

// A rule's names, sorted and unique.
std::vector<std::string> SortedNames(const Rule& rule) {
  std::vector<std::string> names = rule.names;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// True if `deny` refuses every name of an allow (`names`, sorted): a deny
// anywhere wins over names (bpf/lib/names.h), else it must name each one.
bool NamesCover(const Rule& deny, absl::Span<const std::string> names) {
  if (deny.Anywhere()) return true;
  const std::vector<std::string> denied = SortedNames(deny);
  return std::includes(denied.begin(), denied.end(), names.begin(),
                       names.end());
}

// A unix rule's addresses, sorted and unique (empty for other rules).
std::vector<std::string> SortedPaths(const Rule& rule) {
  std::vector<std::string> paths = rule.unix_paths;
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

// icmp and raw have no ports; whatever lo/hi hold means nothing.
PortProto CanonicalPort(PortProto pp) {
  if (pp.proto == Proto::kIcmp || pp.proto == Proto::kRaw ||
      pp.proto == Proto::kUnix) {
    pp = {pp.proto};
  }
  return pp;
}

}  // namespace

std::vector<PortProto> CanonicalPorts(absl::Span<const PortProto> ports) {
  std::vector<PortProto> sorted;
  sorted.reserve(ports.size());
  for (const PortProto& pp : ports) sorted.push_back(CanonicalPort(pp));
  std::sort(
      sorted.begin(), sorted.end(), [](const PortProto& a, const PortProto& b) {
        return std::tie(a.proto, a.lo, a.hi) < std::tie(b.proto, b.lo, b.hi);
      });
  std::vector<PortProto> out;
  for (const PortProto& pp : sorted) {
    if (!out.empty() && out.back().proto == pp.proto &&
        int{pp.lo} <= int{out.back().hi} + 1) {
      out.back().hi = std::max(out.back().hi, pp.hi);
      continue;
    }
    out.push_back(pp);
  }
  return out;
}

std::string RuleIdentity(const Rule& rule) {
  std::string out;
  out.reserve(48 + rule.host.size());
  AppendRuleIdentity(rule, out);
  return out;
}

void AppendRuleIdentity(const Rule& rule, std::string& out) {
  // One string, appended to in place: a new target of 100,000 rules takes
  // the identity of each (apply_plan.cc), and the temporaries of a join per
  // part were most of that time. A rule of one port and one destination,
  // as most are, is its own canonical form and normalized set.
  absl::StrAppend(&out, ActionName(rule.action), "|");
  auto port = [&](const PortProto& pp) {
    absl::StrAppend(&out, ProtoName(pp.proto), ":", pp.lo, "-", pp.hi, " ");
  };
  if (rule.ports.size() == 1) {
    port(CanonicalPort(rule.ports[0]));
  } else {
    for (const PortProto& pp : CanonicalPorts(rule.ports)) port(pp);
  }
  out.push_back('|');
  auto join = [&](const auto& items, auto append_one) {
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out.push_back(' ');
      append_one(items[i]);
    }
  };
  auto cidr = [&](const Cidr& c) { out.append(c.ToString()); };
  if (rule.destinations.size() == 1) {
    cidr(rule.destinations[0]);
  } else {
    join(DestinationSet(rule), cidr);
  }
  auto text = [&](const std::string& t) { out.append(t); };
  absl::StrAppend(&out, "|", rule.host, "|");
  if (!rule.unix_paths.empty()) join(SortedPaths(rule), text);
  out.push_back('|');
  if (!rule.names.empty()) join(SortedNames(rule), text);
}

void AppendIdentityKey(const Rule& rule, std::string& out) {
  auto no_text = [](const std::vector<std::string>& items) {
    return std::all_of(items.begin(), items.end(),
                       [](const std::string& s) { return s.empty(); });
  };
  // An identity that ends in "|||" (no host, no unix address or name text)
  // is its action, ports and destinations, whose parts hold no '|': no
  // other identity equals it. Those are keyed by their values, written as
  // bytes (the text's numbers and addresses cost most of its making); any
  // other rule by its identity text.
  if (!rule.host.empty() || !no_text(rule.unix_paths) || !no_text(rule.names)) {
    out.push_back('T');
    AppendRuleIdentity(rule, out);
    return;
  }
  const char action = rule.action == Action::kAllow ? 'a' : 'd';
  if (rule.ports.size() == 1 && rule.destinations.size() == 1) {
    // One port word and one destination, as most rules have: the bytes
    // below, written into one array and appended once (the appends one by
    // one were most of a key's making, 200,000 keys for a replacing apply).
    const PortProto pp = CanonicalPort(rule.ports[0]);
    const Cidr& c = rule.destinations[0];
    const size_t addr_bytes = c.family == 4 ? 4 : 16;
    char key[1 + 1 + 2 * sizeof(uint16_t) + 1 + 1 + 16 + 1];
    char* at = key;
    *at++ = action;
    *at++ = static_cast<char>(pp.proto);
    std::memcpy(at, &pp.lo, sizeof(pp.lo));
    at += sizeof(pp.lo);
    std::memcpy(at, &pp.hi, sizeof(pp.hi));
    at += sizeof(pp.hi);
    *at++ = '|';
    *at++ = c.family == 4 ? '4' : '6';
    std::memcpy(at, c.addr.data(), addr_bytes);
    at += addr_bytes;
    *at++ = static_cast<char>(c.prefix_len);
    out.append(key, static_cast<size_t>(at - key));
    return;
  }
  out.push_back(action);
  auto port = [&](const PortProto& pp) {
    out.push_back(static_cast<char>(pp.proto));
    out.append(reinterpret_cast<const char*>(&pp.lo), sizeof(pp.lo));
    out.append(reinterpret_cast<const char*>(&pp.hi), sizeof(pp.hi));
  };
  if (rule.ports.size() == 1) {
    port(CanonicalPort(rule.ports[0]));
  } else {
    for (const PortProto& pp : CanonicalPorts(rule.ports)) port(pp);
  }
  out.push_back('|');
  // Cidr::ToString writes an IPv4 network from addr[0..3] and its length,
  // any other from all 16 bytes and its length: the same bytes here.
  auto cidr = [&](const Cidr& c) {
    const bool v4 = c.family == 4;
    out.push_back(v4 ? '4' : '6');
    out.append(reinterpret_cast<const char*>(c.addr.data()), v4 ? 4 : 16);
    out.push_back(static_cast<char>(c.prefix_len));
  };
  if (rule.destinations.size() == 1) {
    cidr(rule.destinations[0]);
  } else {
    for (const Cidr& c : DestinationSet(rule)) cidr(c);
  }
}

bool SameIdentityFields(const Rule& a, const Rule& b) {
  return a.action == b.action && a.ports == b.ports &&
         a.destinations == b.destinations && a.host == b.host &&
         a.names == b.names && a.unix_paths == b.unix_paths;
}

bool SameRule(const Rule& a, const Rule& b) {
  // Equal fields make equal identities: most pairs compared are a rule and
  // its own copy (identity_index.h checks every hash hit so).
  return SameIdentityFields(a, b) || RuleIdentity(a) == RuleIdentity(b);
}

SameRuleAs::SameRuleAs(const Rule& rule)
    : action_(rule.action),
      ports_(CanonicalPorts(rule.ports)),
      identity_(RuleIdentity(rule)) {}

bool SameRuleAs::operator()(const Rule& other) const {
  if (other.action != action_) return false;
  if (other.ports.size() == 1) {
    // One port word, as most rules have: its canonical form is itself,
    // made without a vector (a search of 100,000 rules made 100,000).
    if (ports_.size() != 1 || CanonicalPort(other.ports[0]) != ports_[0]) {
      return false;
    }
  } else if (CanonicalPorts(other.ports) != ports_) {
    return false;
  }
  return RuleIdentity(other) == identity_;
}

std::optional<size_t> ShadowingDeny(absl::Span<const Rule> rules,
                                    const Rule& allow) {
  if (allow.action != Action::kAllow || allow.ports.empty()) {
    return std::nullopt;
  }
  const std::vector<PortProto> ports = CanonicalPorts(allow.ports);
  const std::vector<Cidr> destinations = DestinationSet(allow);
  // Raw is a permission to create a socket: a deny of raw takes it away
  // whatever the destinations.
  const bool only_raw =
      std::all_of(ports.begin(), ports.end(),
                  [](const PortProto& pp) { return pp.proto == Proto::kRaw; });
  const std::vector<std::string> paths = SortedPaths(allow);
  const std::vector<std::string> names = SortedNames(allow);
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& deny = rules[i];
    if (deny.action != Action::kDeny) continue;
    if (!PortsCover(CanonicalPorts(deny.ports), ports)) continue;
    const std::vector<std::string> denied = SortedPaths(deny);
    if (!std::includes(denied.begin(), denied.end(), paths.begin(),
                       paths.end())) {
      continue;
    }
    if (!only_raw && !DestinationsCover(DestinationSet(deny), destinations)) {
      continue;
    }
    if (!only_raw && !NamesCover(deny, names)) continue;
    return i;
  }
  return std::nullopt;
}

CommonEnds CommonEndsById(absl::Span<const Rule> before,
                          absl::Span<const Rule> after) {
  const size_t n = before.size(), m = after.size();
  CommonEnds e;
  while (e.head < n && e.head < m && before[e.head].id == after[e.head].id) {
    ++e.head;
  }
  while (e.tail < n - e.head && e.tail < m - e.head &&
         before[n - 1 - e.tail].id == after[m - 1 - e.tail].id) {
    ++e.tail;
  }
  return e;
}

}  // namespace egress::policy
