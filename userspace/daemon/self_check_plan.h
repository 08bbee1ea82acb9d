// What the field self-check probes: a destination the target's policy
// denies, picked from the documentation ranges (RFC 5737), so the probe's
// connect must be refused by the target's connect hook. Pure: decided with
// policy::Evaluate on the compiled rule set, exactly as the kernel decides.
#ifndef EGRESS_USERSPACE_DAEMON_SELF_CHECK_PLAN_H_
#define EGRESS_USERSPACE_DAEMON_SELF_CHECK_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>

#include "userspace/policy/compile.h"

namespace egress {

struct ProbeDestination {
  uint32_t addr_be = 0;  // IPv4, network order
  uint16_t port = 0;     // host order, TCP
  std::string text;      // "192.0.2.1:9/tcp"
};

// The first of 192.0.2.1, 198.51.100.1, 203.0.113.1 (TCP port 9) that the
// compiled set denies; nullopt when the policy allows all of them (the
// self-check then checks the attachments only).
std::optional<ProbeDestination> DeniedProbeDestination(
    const policy::CompiledRuleset& compiled);

// Why a probe's connect outcome (an errno, 0 = connected) shows the hook
// did not decide, or "" when EPERM proves it refused.
std::string ProbeVerdict(int connect_errno, const ProbeDestination& dest);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_SELF_CHECK_PLAN_H_
