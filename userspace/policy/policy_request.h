// The control-protocol form of parsed policy files: what `egressctl apply`
// sends and what egressd builds from its policy directory, so both paths
// apply exactly the same thing.
#ifndef EGRESS_USERSPACE_POLICY_POLICY_REQUEST_H_
#define EGRESS_USERSPACE_POLICY_POLICY_REQUEST_H_

#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/policy_file.h"

namespace egress::policy {

// {"name", "file", "target_kind" ("cgroup" | "unit" | "pattern"), "target",
//  "mode" ("enforce" | "audit"), "logging", "rules" (RulesToJson)}.
nlohmann::json PolicyToRequest(const Policy& policy);

// {"cmd": "apply", "dry_run": DRY_RUN, "policies": [PolicyToRequest...]}.
nlohmann::json ApplyRequest(absl::Span<const Policy> policies, bool dry_run);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_POLICY_REQUEST_H_
