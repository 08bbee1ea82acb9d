// `egressctl verify`: which connections to try from inside a target's cgroup
// to tell whether its policy is really in force. Pure logic (unit-tested
// without root); verify_command.h runs the probes.
#ifndef EGRESS_USERSPACE_CLI_VERIFY_PLAN_H_
#define EGRESS_USERSPACE_CLI_VERIFY_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress::cli {

struct Probe {
  bool expect_allowed = false;
  policy::Proto proto = policy::Proto::kTcp;  // kTcp or kUdp
  std::string address;                        // "10.0.0.5", "2001:db8::1"
  uint16_t port = 0;
  uint32_t rule_id = 0;  // the allow rule probed (0 for deny probes)
  std::string why;       // "rule 3: ALLOW smtp (25/tcp) to 10.0.0.5"
};

// Allow probes: for each allow rule, its tcp and udp port entries (the low
// end of a range; 443 for "every port") towards its first destination that
// no deny rule covers (a network's first host), at most `max_allow` in all.
// Rules to anywhere, icmp and raw rules are not probed (no concrete
// destination, or no connect() to observe).
// Deny probes: a few destinations the policy must refuse: UDP to
// 192.0.2.1:9 and [2001:db8::1]:9 and 192.0.2.53:53 (documentation networks:
// a UDP connect() sends nothing, so even a policy not in force leaks no
// packet), and TCP to 127.0.0.1:9 (loopback). Each only if the rules really
// deny it, and no allow rule with names covers its protocol and port (the
// target's own lookups may have bound the address to one of them).
std::vector<Probe> PlanProbes(absl::Span<const policy::Rule> rules,
                              size_t max_allow = 32);

// What the rules decide for a TCP/UDP connection (deny beats allow; nothing
// matching = deny): true when allowed.
bool RulesAllow(absl::Span<const policy::Rule> rules, policy::Proto proto,
                const std::string& address, uint16_t port);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_VERIFY_PLAN_H_
