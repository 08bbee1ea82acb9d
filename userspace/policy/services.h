// Service names ("smtp", "https", "dns") to ports, for the rule grammar.
#ifndef EGRESS_USERSPACE_POLICY_SERVICES_H_
#define EGRESS_USERSPACE_POLICY_SERVICES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// Resolves a service name to its ports, tcp entries before udp entries, each
// a single port (lo == hi).
//
// Order of lookup:
//   1. Built-in aliases are applied first: dns -> domain, smtps ->
//      submissions, postgres -> postgresql.
//   2. /etc/services via getservbyname_r, for "tcp" and for "udp"; a name
//      listed for both protocols yields both (https -> 443/tcp + 443/udp).
//   3. If /etc/services knows neither, an embedded table of common services
//      (see KnownServiceNames()), so rules mean the same on hosts with a
//      minimal or missing /etc/services.
//
// Errors: InvalidArgument "unknown service 'smpt'", with "; did you mean
// 'smtp'?" appended when a known name (embedded table or alias) is within
// edit distance 2 (adjacent transpositions count as 1).
absl::StatusOr<std::vector<PortProto>> LookupService(absl::string_view name);

// Names of the embedded table plus the aliases, sorted; the candidates for
// "did you mean" suggestions.
std::vector<std::string> KnownServiceNames();

// Optimal-string-alignment distance (Levenshtein plus adjacent
// transpositions). Exposed for tests.
int EditDistance(absl::string_view a, absl::string_view b);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_SERVICES_H_
