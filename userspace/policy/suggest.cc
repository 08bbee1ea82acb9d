#include "userspace/policy/suggest.h"

#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/common/saturating_add.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/services.h"
#include "userspace/policy/suggest_names.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

// What was seen towards one destination (a host, or a /N group of hosts).
struct DestStats {
  uint64_t count = 0;
  int64_t first_seen_ns = std::numeric_limits<int64_t>::max();
  int64_t last_seen_ns = std::numeric_limits<int64_t>::min();
  std::set<std::string> processes;
  std::set<std::array<uint8_t, 16>> addresses;  // the hosts grouped here
  std::set<std::string> names;  // the names a wildcard groups, as learned
};

// (family, address, prefix length): sorts IPv4 before IPv6, then by address.
using DestKey = std::tuple<uint8_t, std::array<uint8_t, 16>, uint8_t>;
// (protocol, port): tcp before udp before icmp (Proto's order), then by port.
using PortKey = std::pair<Proto, uint16_t>;

// RFC 3339, UTC, whole seconds: "2026-11-24T22:45:00Z".
std::string Rfc3339(int64_t ns) {
  int64_t secs = ns / 1000000000;
  if (ns < 0 && ns % 1000000000 != 0) --secs;  // floor
  const time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) return absl::StrCat(ns, "ns");
  char buf[64];
  if (strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return absl::StrCat(ns, "ns");
  }
  return buf;
}

// Names for a (protocol, port) that a well-known service maps exactly.
struct ServiceNames {
  std::string port_word;         // for `port:`; the canonical (longest) name
  std::string rule_name;         // for `name:`; the short name
  bool other_protocols = false;  // the service also has other protocols
};

// (protocol, port) -> names, from KnownServiceNames() as this host's
// LookupService expands them. Only services whose expansion has exactly one
// port of that protocol count, so the name opens nothing else of it.
std::map<PortKey, ServiceNames> WellKnownServices() {
  std::map<PortKey, std::vector<std::string>> names;
  std::map<std::string, std::vector<PortProto>> expansions;
  for (const std::string& name : KnownServiceNames()) {
    absl::StatusOr<std::vector<PortProto>> ports = LookupService(name);
    if (!ports.ok()) continue;
    expansions[name] = *ports;
    for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
      std::vector<PortProto> of_proto;
      for (const PortProto& pp : *ports) {
        if (pp.proto == proto) of_proto.push_back(pp);
      }
      if (of_proto.size() != 1 || of_proto[0].lo != of_proto[0].hi) continue;
      names[{proto, of_proto[0].lo}].push_back(name);
    }
  }
  std::map<PortKey, ServiceNames> result;
  for (auto& [key, list] : names) {
    // Aliases are the short forms (dns, postgres, smtps): they make good rule
    // names, while `port:` gets the name /etc/services itself uses.
    auto by_length = [](const std::string& a, const std::string& b) {
      return std::make_pair(a.size(), a) < std::make_pair(b.size(), b);
    };
    std::sort(list.begin(), list.end(), by_length);
    ServiceNames s;
    s.rule_name = list.front();
    s.port_word = *std::max_element(
        list.begin(), list.end(),
        [](const std::string& a, const std::string& b) {
          // Longest; among equals, the alphabetically first.
          return a.size() != b.size() ? a.size() < b.size() : a > b;
        });
    for (const PortProto& pp : expansions[s.port_word]) {
      if (pp.proto != key.first) s.other_protocols = true;
    }
    result[key] = s;
  }
  return result;
}

absl::Status CheckTimes(const Observation& o, size_t index) {
  if (o.first_seen_ns > o.last_seen_ns) {
    return absl::InvalidArgumentError(absl::StrCat(
        "observation ", index, ": first_seen_ns is after last_seen_ns"));
  }
  return absl::OkStatus();
}

absl::Status CheckUnixObservation(const Observation& o, size_t index) {
  if (absl::Status st = UnixAddressBytes(o.unix_path).status(); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("observation ", index, ": ", st.message()));
  }
  return CheckTimes(o, index);
}

absl::Status CheckRawObservation(const Observation& o, size_t index) {
  if (o.family != 4 && o.family != 6) {
    return absl::InvalidArgumentError(absl::StrCat("observation ", index,
                                                   ": raw socket family ",
                                                   o.family, " is not 4 or 6"));
  }
  return CheckTimes(o, index);
}

absl::Status CheckObservation(const Observation& o, size_t index) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("observation ", index, ": ", why));
  };
  if (o.family != 4 && o.family != 6) {
    return bad(absl::StrCat("family ", o.family, " is not 4 or 6"));
  }
  if (o.family == 4 && std::any_of(o.addr.begin() + 4, o.addr.end(),
                                   [](uint8_t b) { return b != 0; })) {
    return bad("IPv4 address has bytes set past addr[3]");
  }
  switch (o.ip_proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
      if (o.port == 0) {
        return bad(
            absl::StrCat(o.ip_proto == IPPROTO_TCP ? "TCP" : "UDP", " port 0"));
      }
      break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: {
      const bool v4 = o.ip_proto == IPPROTO_ICMP;
      // A mapped address is IPv4 traffic on an IPv6 socket.
      const bool matches =
          v4 ? (o.family == 4 || IsV4Mapped(o.addr)) : o.family == 6;
      if (!matches) {
        return bad(absl::StrCat(v4 ? "ICMP" : "ICMPv6", " with IPv", o.family,
                                " address"));
      }
      if (o.port != 0) {
        return bad(absl::StrCat("ICMP has no port, got ", o.port));
      }
      break;
    }
    default:
      return bad(absl::StrCat("ip_proto ", o.ip_proto,
                              " is not TCP, UDP, ICMP or ICMPv6"));
  }
  return CheckTimes(o, index);
}

// The names an observation's address was resolved from (Observation::name:
// one, or several joined by ',': the connect may have meant any of them).
std::vector<absl::string_view> ObservedNames(const Observation& o) {
  return absl::StrSplit(o.name, ',', absl::SkipEmpty());
}

// Joins the patterns of a destination resolved from several names, in a
// rule's comment ("api.shop.test, shop.test"); every one is allowed.
constexpr absl::string_view kNameSeparator = ", ";

std::string DestText(const DestKey& key) {
  Cidr c;
  std::tie(c.family, c.addr, c.prefix_len) = key;
  return c.ToString();
}

// "a, b, c": at most 8 of `items` in their order, then how many more.
template <typename Items>
std::string Listed(const Items& items) {
  constexpr size_t kListed = 8;
  std::vector<std::string> shown;
  for (const std::string& item : items) {
    if (shown.size() == kListed) break;
    shown.push_back(item);
  }
  std::string out = absl::StrJoin(shown, ", ");
  if (items.size() > kListed) {
    absl::StrAppend(&out, " and ", items.size() - kListed, " more");
  }
  return out;
}

std::string Attempts(uint64_t n) {
  return absl::StrCat(n, n == 1 ? " attempt" : " attempts");
}

std::string DescribePort(const PortKey& key) {
  if (key.first == Proto::kIcmp) return "ICMP/ICMPv6";
  return absl::StrCat(key.second, "/", ProtoName(key.first));
}

// "IPv4 icmp": a raw socket's family and protocol, the protocol by its
// name where it is a common one.
std::string RawSocketText(uint8_t family, uint8_t ip_proto) {
  std::string protocol;
  switch (ip_proto) {
    case IPPROTO_ICMP:
      protocol = "icmp";
      break;
    case IPPROTO_ICMPV6:
      protocol = "icmpv6";
      break;
    case IPPROTO_TCP:
      protocol = "tcp";
      break;
    case IPPROTO_UDP:
      protocol = "udp";
      break;
    case IPPROTO_RAW:
      protocol = "any protocol (IPPROTO_RAW)";
      break;
    default:
      protocol = absl::StrCat("protocol ", ip_proto);
  }
  return absl::StrCat("IPv", family, " ", protocol);
}

// "  WHERE: N attempts by a, b; first T, last T"
std::string StatsLine(const std::string& where, const DestStats& s) {
  return absl::StrCat("  ", where, ": ", Attempts(s.count), " by ",
                      s.processes.empty() ? "unknown processes"
                                          : absl::StrJoin(s.processes, ", "),
                      "; first ", Rfc3339(s.first_seen_ns), ", last ",
                      Rfc3339(s.last_seen_ns));
}

std::vector<std::string> RuleComment(
    const PortKey& key, const std::string& service,
    const std::map<DestKey, DestStats>& dests,
    const std::map<std::string, DestStats>& names) {
  uint64_t total = 0;
  for (const auto& [dest, s] : dests) total = SaturatingAdd(total, s.count);
  for (const auto& [name, s] : names) total = SaturatingAdd(total, s.count);
  const size_t n = dests.size() + names.size();
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat(
      DescribePort(key),
      service.empty() ? "" : absl::StrCat(" (", service, ")"), ": ",
      Attempts(total), " to ", n, n == 1 ? " destination" : " destinations"));
  for (const auto& [name, s] : names) {
    // A wildcard says which names it stands for: the ones seen.
    const std::string members =
        s.names.empty() ? "" : absl::StrCat(Listed(s.names), "; ");
    lines.push_back(StatsLine(
        absl::StrCat(name, " (", members, "resolved to ", s.addresses.size(),
                     s.addresses.size() == 1 ? " address)" : " addresses)"),
        s));
  }
  for (const auto& [dest, s] : dests) {
    std::string where = DestText(dest);
    const int host_len = std::get<0>(dest) == 4 ? 32 : 128;
    if (std::get<2>(dest) < host_len) {
      // A network says which hosts of it were seen.
      std::vector<std::string> hosts;
      for (const std::array<uint8_t, 16>& a : s.addresses) {
        hosts.push_back(
            DestText({std::get<0>(dest), a, static_cast<uint8_t>(host_len)}));
      }
      absl::StrAppend(&where, " (", s.addresses.size(),
                      s.addresses.size() == 1 ? " address: " : " addresses: ",
                      Listed(hosts), ")");
    }
    lines.push_back(StatsLine(where, s));
  }
  return lines;
}

// Every observation, grouped by (protocol, port) and destination network,
// or rule name for destinations reached by a DNS name.
struct Seen {
  std::map<PortKey, std::map<DestKey, DestStats>> by_port;
  std::map<PortKey, std::map<std::string, DestStats>> names_by_port;
  std::map<std::string, DestStats> unix_paths;  // by address text
  // Raw sockets created, by (family, protocol).
  std::map<std::pair<uint8_t, uint8_t>, DestStats> raw_sockets;
  uint64_t total = 0;  // attempts
  int64_t first_ns = std::numeric_limits<int64_t>::max();
  int64_t last_ns = std::numeric_limits<int64_t>::min();
};

absl::Status CheckGrouping(const SuggestOptions& options) {
  if (options.group_v4 < 1 || options.group_v4 > 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IPv4 grouping /", options.group_v4, " is out of range 1-32"));
  }
  if (options.group_v6 < 1 || options.group_v6 > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "IPv6 grouping /", options.group_v6, " is out of range 1-128"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Seen> Aggregate(absl::Span<const Observation> observed,
                               const SuggestOptions& options) {
  Seen seen;
  auto add = [&seen](const Observation& o, DestStats& s) {
    s.count = SaturatingAdd(s.count, o.count);
    s.first_seen_ns = std::min(s.first_seen_ns, o.first_seen_ns);
    s.last_seen_ns = std::max(s.last_seen_ns, o.last_seen_ns);
    s.processes.insert(o.processes.begin(), o.processes.end());
    seen.total = SaturatingAdd(seen.total, o.count);
    seen.first_ns = std::min(seen.first_ns, o.first_seen_ns);
    seen.last_ns = std::max(seen.last_ns, o.last_seen_ns);
  };
  // Inet observations, checked, with IPv4-mapped addresses as IPv4.
  struct Inet {
    const Observation* o;
    uint8_t family;
    std::array<uint8_t, 16> addr;
    Proto proto;
  };
  std::vector<Inet> inet;
  // DNS to the target's resolver (53/udp, 53/tcp), where the kernel reads
  // queries and answers (docs/dns.md).
  auto is_dns = [](const Inet& n) {
    return (n.proto == Proto::kTcp || n.proto == Proto::kUdp) &&
           n.o->port == 53;
  };
  // Per (protocol, port): a wildcard for one port's names never opens
  // another port to names seen only there.
  std::map<PortKey, std::set<std::string>> learned_names;
  for (size_t i = 0; i < observed.size(); ++i) {
    const Observation& o = observed[i];
    if (o.raw) {
      EGRESS_RETURN_IF_ERROR(CheckRawObservation(o, i));
      add(o, seen.raw_sockets[{o.family, o.ip_proto}]);
      continue;
    }
    if (!o.unix_path.empty()) {
      EGRESS_RETURN_IF_ERROR(CheckUnixObservation(o, i));
      add(o, seen.unix_paths[o.unix_path]);
      continue;
    }
    if (absl::Status st = CheckObservation(o, i); !st.ok()) return st;
    Inet n{&o, o.family, o.addr, Proto::kIcmp};
    if (n.family == 6 && IsV4Mapped(n.addr)) {
      n.family = 4;
      std::array<uint8_t, 16> v4{};
      std::copy(o.addr.begin() + 12, o.addr.end(), v4.begin());
      n.addr = v4;
    }
    if (o.ip_proto == IPPROTO_TCP) n.proto = Proto::kTcp;
    if (o.ip_proto == IPPROTO_UDP) n.proto = Proto::kUdp;
    if (!o.name.empty() && n.proto != Proto::kIcmp && !is_dns(n)) {
      for (absl::string_view name : ObservedNames(o)) {
        learned_names[{n.proto, o.port}].emplace(name);
      }
    }
    inet.push_back(n);
  }
  std::map<PortKey, std::map<std::string, std::string>> patterns;
  for (const auto& [port, names] : learned_names) {
    patterns[port] = NamePatterns(names, options.group_names);
  }
  // The patterns of every name the destination was resolved from, sorted
  // and joined by kNameSeparator ("" for none). Each observation stands on
  // its own: the learner names a destination only where a live binding
  // allowed it (answer_names.h), so the same address, protocol and port seen
  // without a name was reached where a name rule would not let it through
  // and keeps its address rule too. The resolver is never a name: its
  // queries are what binds names (a row an older egressd named).
  auto pattern_of = [&patterns, &is_dns](const Inet& n) -> std::string {
    if (n.o->name.empty() || n.proto == Proto::kIcmp || is_dns(n)) return "";
    auto port = patterns.find({n.proto, n.o->port});
    if (port == patterns.end()) return "";
    std::set<std::string> found;
    for (absl::string_view name : ObservedNames(*n.o)) {
      auto it = port->second.find(std::string(name));
      if (it != port->second.end()) found.insert(it->second);
    }
    return absl::StrJoin(found, kNameSeparator);
  };
  for (const Inet& n : inet) {
    const PortKey port{n.proto, n.o->port};
    std::string p = pattern_of(n);
    if (!p.empty()) {
      DestStats& s = seen.names_by_port[port][p];
      add(*n.o, s);
      s.addresses.insert(n.addr);
      if (absl::StrContains(p, '*')) {
        for (absl::string_view name : ObservedNames(*n.o))
          s.names.emplace(name);
      }
      continue;
    }
    // The resolver stays exact whatever the grouping: a network would let
    // anyone in the cgroup query a fake resolver in it and bind an allowed
    // name to any address.
    const int host_len = n.family == 4 ? 32 : 128;
    const int prefix = is_dns(n)       ? host_len
                       : n.family == 4 ? options.group_v4
                                       : options.group_v6;
    DestStats& s = seen.by_port[port][{n.family, MaskedAddress(n.addr, prefix),
                                       static_cast<uint8_t>(prefix)}];
    add(*n.o, s);
    s.addresses.insert(n.addr);
  }
  return seen;
}

// What was seen, in a few lines: combinations, destinations, time span,
// grouping.
void DescribeSeen(const Seen& seen, const SuggestOptions& options,
                  std::vector<std::string>* header) {
  std::set<DestKey> all_dests;
  std::set<PortKey> ports;
  for (const auto& [key, dests] : seen.by_port) {
    ports.insert(key);
    for (const auto& [dest, s] : dests) all_dests.insert(dest);
  }
  std::set<std::string> all_names;
  for (const auto& [key, names] : seen.names_by_port) {
    ports.insert(key);
    for (const auto& [joined, s] : names) {
      for (absl::string_view name : absl::StrSplit(joined, kNameSeparator)) {
        all_names.emplace(name);
      }
    }
  }
  const size_t combinations = ports.size();
  const size_t unix_paths = seen.unix_paths.size();
  std::vector<std::string> sockets;
  if (unix_paths > 0) {
    sockets.push_back(
        absl::StrCat(unix_paths, " unix socket", unix_paths == 1 ? "" : "s"));
  }
  if (!seen.raw_sockets.empty()) sockets.push_back("raw sockets");
  header->push_back(absl::StrCat(
      "Covers ", combinations, " protocol/port combination",
      combinations == 1 ? "" : "s", " to ", all_dests.size(), " destination",
      all_dests.size() == 1 ? "" : "s",
      all_names.empty()
          ? ""
          : absl::StrCat(" by address, ", all_names.size(), " by DNS name"),
      sockets.empty() ? ""
                      : absl::StrCat(" and ", absl::StrJoin(sockets, " and ")),
      ": ", Attempts(seen.total), " seen"));
  header->push_back(absl::StrCat("between ", Rfc3339(seen.first_ns), " and ",
                                 Rfc3339(seen.last_ns), "."));
  std::vector<std::string> grouped;
  if (options.group_v4 < 32) {
    grouped.push_back(absl::StrCat("IPv4 into /", options.group_v4));
  }
  if (options.group_v6 < 128) {
    grouped.push_back(absl::StrCat("IPv6 into /", options.group_v6));
  }
  if (!grouped.empty()) {
    header->push_back(absl::StrCat("Destinations are grouped into networks: ",
                                   absl::StrJoin(grouped, ", "), "."));
    header->push_back(
        "Resolvers (port 53) stay exact: in a network, a fake resolver could");
    header->push_back("bind an allowed name to any address.");
  }
  if (!all_names.empty()) {
    header->push_back(
        "Destinations the target resolved are allowed by name (domainNames):");
    header->push_back(
        "their addresses are learned from the target's own DNS answers, so");
    // A name rule binds only addresses answered by a resolver the rules
    // allow: without one, every name below allows nothing once enforced.
    bool resolver = false;
    for (Proto proto : {Proto::kUdp, Proto::kTcp}) {
      resolver = resolver || seen.by_port.count({proto, 53}) > 0;
    }
    if (resolver) {
      header->push_back("the resolver rule (port 53, below) is needed too.");
    } else {
      header->push_back(
          "WARNING: no resolver was seen (no 53/udp or 53/tcp rule here), so "
          "the");
      header->push_back(
          "names below allow nothing and lookups fail once this is enforced:");
      header->push_back(
          "add a rule for the target's resolver by address before applying.");
    }
    if (options.group_names) {
      header->push_back(
          "Names sharing a parent domain are grouped into *.PARENT.");
    }
  }
}

std::vector<std::string> HeaderComment(const Seen& seen,
                                       const SuggestOptions& options) {
  std::vector<std::string> header;
  header.push_back(absl::StrCat("Suggested egress policy for ",
                                TargetKindName(options.target.kind), " ",
                                options.target.value, ", generated by egress"));
  header.push_back(
      "from the connections it was seen making in audit/learn mode.");
  for (const std::string& line : options.header_comment) header.push_back(line);
  header.push_back("");
  if (seen.by_port.empty() && seen.names_by_port.empty() &&
      seen.unix_paths.empty() && seen.raw_sockets.empty()) {
    header.push_back(
        "Nothing was observed, so this policy allows no egress at all: every");
    header.push_back("outgoing connection of the target will be denied.");
  } else {
    DescribeSeen(seen, options, &header);
    header.push_back(
        "It allows exactly that; everything else is denied (mode: enforce).");
    header.push_back(
        "Review it first: a dependency used rarely (backups, renewals,");
    header.push_back("failover) may not have been seen yet.");
  }
  header.push_back("Apply it with:");
  header.push_back("  egressctl apply -f FILE --dry-run   # show the changes");
  header.push_back("  egressctl apply -f FILE");
  return header;
}

// The allow rule of one (protocol, port) without destinations, its name
// before deduplication and the service word it was named after ("" for
// none).
Rule PortRule(const PortKey& key,
              const std::map<PortKey, ServiceNames>& services,
              std::string* name, std::string* service) {
  Rule rule;
  rule.action = Action::kAllow;
  if (key.first == Proto::kIcmp) {
    rule.spec = "icmp";
    rule.ports = {{Proto::kIcmp}};
    *name = "icmp";
    return rule;
  }
  rule.ports = {{key.first, key.second, key.second}};
  const std::string proto = ProtoName(key.first);
  auto it = services.find(key);
  if (it == services.end()) {
    rule.spec = absl::StrCat(key.second, "/", proto);
    *name = absl::StrCat(proto, "-", key.second);
    return rule;
  }
  const ServiceNames& s = it->second;
  *service = s.port_word;
  // Always with the protocol: on the host applying the file, the service
  // might list more protocols than here.
  rule.spec = absl::StrCat(s.port_word, "/", proto);
  *name =
      s.other_protocols ? absl::StrCat(s.rule_name, "-", proto) : s.rule_name;
  return rule;
}

// One allow rule per (protocol, port), with its name and comment.
void AddRules(const Seen& seen, PolicyDocument* doc) {
  const std::map<PortKey, ServiceNames> services = WellKnownServices();
  std::set<std::string> used_names;
  std::set<PortKey> ports;
  for (const auto& [key, dests] : seen.by_port) ports.insert(key);
  for (const auto& [key, names] : seen.names_by_port) ports.insert(key);
  const std::map<DestKey, DestStats> no_dests;
  const std::map<std::string, DestStats> no_names;
  for (const PortKey& key : ports) {
    auto d = seen.by_port.find(key);
    auto n = seen.names_by_port.find(key);
    const auto& dests = d == seen.by_port.end() ? no_dests : d->second;
    const auto& names = n == seen.names_by_port.end() ? no_names : n->second;
    std::string name, service;
    Rule rule = PortRule(key, services, &name, &service);
    if (!used_names.insert(name).second) {
      name = absl::StrCat(name, "-", key.second);
      used_names.insert(name);
    }
    for (const auto& [dest, s] : dests) {
      Cidr c;
      std::tie(c.family, c.addr, c.prefix_len) = dest;
      rule.destinations.push_back(c);
    }
    std::set<std::string> patterns;
    for (const auto& [joined, s] : names) {
      for (absl::string_view p : absl::StrSplit(joined, kNameSeparator)) {
        patterns.emplace(p);
      }
    }
    rule.names.assign(patterns.begin(), patterns.end());
    doc->rule_comments.push_back(RuleComment(key, service, dests, names));
    doc->rule_names.push_back(name);
    doc->rules.push_back(std::move(rule));
  }
  if (!seen.unix_paths.empty()) {
    // One allow-list of every unix address seen.
    Rule rule;
    rule.action = Action::kAllow;
    rule.spec = "unix";
    rule.ports = {{Proto::kUnix}};
    std::vector<std::string> comment = {
        absl::StrCat("unix sockets: ", seen.unix_paths.size(),
                     " addresses; every other "
                     "unix address is refused")};
    for (const auto& [path, s] : seen.unix_paths) {
      rule.unix_paths.push_back(path);
      comment.push_back(StatsLine(path, s));
    }
    doc->rule_comments.push_back(std::move(comment));
    doc->rule_names.push_back(used_names.count("unix") ? "unix-sockets"
                                                       : "unix");
    doc->rules.push_back(std::move(rule));
  }
  if (!seen.raw_sockets.empty()) {
    // Raw sockets are a permission of their own: without it the target's
    // socket() fails once the policy is enforced.
    Rule rule;
    rule.action = Action::kAllow;
    rule.spec = "raw";
    rule.ports = {{Proto::kRaw}};
    std::vector<std::string> comment = {
        "raw sockets: raw packets are not checked per destination",
        "(docs/bypasses.md): this lets the target send any packet anywhere"};
    for (const auto& [kind, s] : seen.raw_sockets) {
      comment.push_back(StatsLine(RawSocketText(kind.first, kind.second), s));
    }
    doc->rule_comments.push_back(std::move(comment));
    doc->rule_names.push_back(used_names.count("raw") ? "raw-sockets" : "raw");
    doc->rules.push_back(std::move(rule));
  }
}

}  // namespace

absl::StatusOr<std::string> SuggestPolicy(
    absl::Span<const Observation> observed, const SuggestOptions& options) {
  EGRESS_RETURN_IF_ERROR(CheckGrouping(options));
  EGRESS_ASSIGN_OR_RETURN(Seen seen, Aggregate(observed, options));
  PolicyDocument doc;
  doc.name = options.name;
  doc.target = options.target;
  doc.mode = Mode::kEnforce;
  doc.logging = LoggingLevel::kDenied;
  doc.annotations["description"] =
      "least-privilege policy suggested from observed traffic";
  doc.header_comment = HeaderComment(seen, options);
  AddRules(seen, &doc);

  std::string text = WritePolicy(doc);
  // The parser is the judge of names and targets; a suggestion that it
  // would refuse is an error here, not at apply time.
  absl::StatusOr<Policy> check =
      ParsePolicy(text, absl::StrCat(options.name, ".yaml"));
  if (!check.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot suggest a policy: ", check.status().message()));
  }
  return text;
}

}  // namespace egress::policy
