// The diff lines of an update (apply_plan.h), as egressctl prints them: the
// rules added, removed, changed and kept (temporary), in every shape a rule
// is written in: ports, ranges, services, names, unix addresses, IPv4 and
// IPv6 networks, a host, a comment.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/daemon/apply_plan.h"

namespace egress {
namespace {

using policy::Action;
using policy::C;
using policy::Rule;

Rule R(Action action, const std::string& spec,
       std::vector<policy::PortProto> ports, std::vector<std::string> dests) {
  Rule r;
  r.action = action;
  r.spec = spec;
  r.ports.assign(ports.begin(), ports.end());
  for (const std::string& d : dests) r.destinations.push_back(C(d));
  return r;
}

ResolvedPolicy Policy(std::vector<Rule> rules) {
  ResolvedPolicy p;
  p.spec.name = "web";
  p.spec.source = policy::TargetSource::kCgroup;
  p.spec.source_value = "/web";
  p.spec.rules = std::move(rules);
  p.cgroup = "/web";
  return p;
}

TEST(ApplyPlanDiffTest, LinesOfAddedRemovedChangedAndKeptRules) {
  const Rule kept = R(Action::kAllow, "443/tcp", {policy::Tcp(443)},
                      {"10.0.0.1", "192.168.200.0/24"});
  Rule renamed = R(Action::kAllow, "8000-8100/udp", {policy::Udp(8000, 8100)},
                   {"fd00::/64"});
  Rule named = R(Action::kAllow, "https", {policy::Tcp(443)}, {});
  named.names = {"api.example.com", "*.cdn.example.com"};
  named.comment = "api: the API";
  named.name = "api";
  Rule unix_rule = R(Action::kDeny, "unix", {{policy::Proto::kUnix}}, {});
  unix_rule.unix_paths = {"/run/docker.sock", "@hidden"};
  Rule resolved = R(Action::kAllow, "53", {policy::Tcp(53), policy::Udp(53)},
                    {"127.0.0.53"});
  resolved.host = "dns.internal";
  Rule temporary = R(Action::kAllow, "22/tcp", {policy::Tcp(22)}, {"10.9.9.9"});
  temporary.expires = 5000;
  Rule expired = R(Action::kDeny, "any", {}, {"0.0.0.0/0"});
  expired.ports = {policy::Tcp(0, 65535), policy::Udp(0, 65535), policy::kIcmp};
  expired.expires = 10;
  std::vector<ResolvedPolicy> first = {
      Policy({kept, renamed, named, unix_rule, resolved})};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["web"] = created.targets[0].target;
  state.targets["web"].rules.push_back(temporary);
  state.targets["web"].rules.back().id = 6;
  state.targets["web"].rules.push_back(expired);
  state.targets["web"].rules.back().id = 7;

  renamed.comment = "video";
  Rule added = R(Action::kDeny, "1000-2000/tcp", {policy::Tcp(1000, 2000)},
                 {"1.2.3.4", "2001:db8::1"});
  Rule anywhere = R(Action::kAllow, "icmp", {policy::kIcmp}, {});
  std::vector<ResolvedPolicy> again = {
      Policy({kept, renamed, added, anywhere})};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, again, 1000));
  const control::TargetChange& c = plan.changes[0];
  EXPECT_EQ(c.added, (std::vector<std::string>{
                         "DENY 1000-2000/tcp to 1.2.3.4 2001:db8::1",
                         "ALLOW icmp to any",
                     }));
  EXPECT_EQ(c.removed,
            (std::vector<std::string>{
                "ALLOW https to api.example.com *.cdn.example.com # (443/tcp) "
                "api: the API",
                "DENY unix /run/docker.sock @hidden",
                "ALLOW 53 to 127.0.0.53 # (dns.internal)",
                "DENY any to 0.0.0.0/0",
            }));
  ASSERT_EQ(c.changed.size(), 1u);
  EXPECT_EQ(c.changed[0].from, "ALLOW 8000-8100/udp to fd00::/64");
  EXPECT_EQ(c.changed[0].to, "ALLOW 8000-8100/udp to fd00::/64 # video");
  EXPECT_EQ(c.kept_temporary,
            (std::vector<std::string>{"ALLOW 22/tcp to 10.9.9.9"}));
}

}  // namespace
}  // namespace egress
