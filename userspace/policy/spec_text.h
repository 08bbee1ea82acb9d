// The SPEC word `egressctl list` prints for a rule: one that `allow`,
// `deny` and `delete` take back (spec.h), so that a line of `list` can be
// typed again.
#ifndef EGRESS_USERSPACE_POLICY_SPEC_TEXT_H_
#define EGRESS_USERSPACE_POLICY_SPEC_TEXT_H_

#include <string>

#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// A SPEC word for `ports`, in UFW's forms where one holds them: "443" (tcp
// and udp), "80,443/tcp", "1000:2000/udp", "tcp", "icmp", "any", "raw";
// else a list giving each item its protocol ("443/tcp,53/udp", "tcp,udp",
// "443/tcp,icmp"). ParseSpec of it gives ports with the same
// CanonicalPorts. "" for no ports.
std::string PortsSpecText(absl::Span<const PortProto> ports);

// The rule's SPEC as `list` prints it: `rule.spec` when the grammar takes
// it back to the same ports (as typed, a service name, a policy file's
// single port word), else PortsSpecText(rule.ports) (a policy file's port
// list joined, "443/tcp,443/udp", becomes "443"). A service name is never
// looked up here.
std::string RuleSpecText(const Rule& rule);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_SPEC_TEXT_H_
