// Host name resolution for rule destinations ("allow https api.example.org").
#ifndef EGRESS_USERSPACE_POLICY_RESOLVER_H_
#define EGRESS_USERSPACE_POLICY_RESOLVER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// Resolves a host name to the addresses a rule should cover, each a host
// network (/32 or /128). Implementations return a non-empty list or an error
// whose message names the host. Tests pass a fake.
using HostResolver =
    std::function<absl::StatusOr<std::vector<Cidr>>(const std::string& host)>;

// getaddrinfo-based resolver (IPv4 and IPv6, /etc/hosts and DNS as configured
// by nsswitch). The result is sorted (IPv4 first) and free of duplicates.
// Errors, all naming the host:
//   NotFound     "cannot resolve host 'x': Name or service not known"
//                (no such name, or a name with no addresses)
//   Unavailable  "cannot resolve host 'x': Temporary failure in name
//                resolution" (EAI_AGAIN; retrying may help)
//   Internal     any other getaddrinfo failure.
HostResolver SystemResolver();

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_RESOLVER_H_
