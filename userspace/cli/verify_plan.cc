#include "userspace/cli/verify_plan.h"

#include <netinet/in.h>

#include "absl/strings/str_cat.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

uint8_t IpProto(policy::Proto p) {
  return p == policy::Proto::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
}

// The first host of a network (the network address itself for /31, /32,
// /127, /128).
policy::Cidr FirstHost(const policy::Cidr& net) {
  policy::Cidr host = net;
  const int bits = net.family == 4 ? 32 : 128;
  host.prefix_len = bits;
  if (net.prefix_len < bits - 1) {
    int last = net.family == 4 ? 3 : 15;
    host.addr[last] |= 1;
  }
  return host;
}

// True when an allow rule with names covers `proto`/`port`: any address the
// target's own lookups bound to one of its names is allowed there, which no
// rule text says beforehand.
bool NameRuleCovers(absl::Span<const policy::Rule> rules, policy::Proto proto,
                    uint16_t port) {
  for (const policy::Rule& r : rules) {
    if (r.action != policy::Action::kAllow || r.names.empty()) continue;
    for (const policy::PortProto& pp : r.ports) {
      if (pp.proto == proto &&
          (pp.AllPorts() || (pp.lo <= port && port <= pp.hi))) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool RulesAllow(absl::Span<const policy::Rule> rules, policy::Proto proto,
                const std::string& address, uint16_t port) {
  auto cidr = policy::Cidr::Parse(address);
  if (!cidr.ok()) return false;
  return policy::EvaluateNaive(rules, IpProto(proto), port, cidr->family,
                               cidr->addr)
             .verdict == EGRESS_VERDICT_ALLOW;
}

std::vector<Probe> PlanProbes(absl::Span<const policy::Rule> rules,
                              size_t max_allow) {
  std::vector<Probe> out;
  size_t allow_probes = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    const policy::Rule& r = rules[i];
    if (r.action != policy::Action::kAllow || r.destinations.empty()) continue;
    for (const policy::PortProto& pp : r.ports) {
      if (pp.proto != policy::Proto::kTcp && pp.proto != policy::Proto::kUdp)
        continue;
      if (allow_probes >= max_allow) break;
      uint16_t port = pp.AllPorts() ? 443 : (pp.lo == 0 ? 1 : pp.lo);
      for (const policy::Cidr& net : r.destinations) {
        std::string addr = FirstHost(net).ToString();
        if (!RulesAllow(rules, pp.proto, addr, port)) continue;
        out.push_back(
            {true, pp.proto, addr, port, r.id,
             absl::StrCat("rule ", i + 1, ": ", policy::FormatRule(r))});
        ++allow_probes;
        break;
      }
    }
  }
  struct Candidate {
    policy::Proto proto;
    const char* address;
    uint16_t port;
    const char* why;
  };
  const Candidate kDeny[] = {
      {policy::Proto::kUdp, "192.0.2.1", 9, "an address nothing allows"},
      {policy::Proto::kUdp, "192.0.2.53", 53, "another DNS resolver"},
      {policy::Proto::kUdp, "2001:db8::1", 9, "an IPv6 address"},
      {policy::Proto::kTcp, "127.0.0.1", 9, "a loopback port"},
  };
  for (const Candidate& c : kDeny) {
    if (RulesAllow(rules, c.proto, c.address, c.port)) continue;
    // Whether the probe's address is bound to a name now is the kernel's
    // knowledge, not the rules': such a probe would prove nothing.
    if (NameRuleCovers(rules, c.proto, c.port)) continue;
    out.push_back({false, c.proto, c.address, c.port, 0, c.why});
  }
  return out;
}

}  // namespace egress::cli
