// `egressctl verify --target NAME`: from inside the target's cgroup, tries
// the connections of PlanProbes and reports whether the policy is in force
// ("configured but not in force" is what it catches: audit mode, detached
// hooks, a cgroup that is not the one the workload runs in, another program
// overriding the verdict).
#ifndef EGRESS_USERSPACE_CLI_VERIFY_COMMAND_H_
#define EGRESS_USERSPACE_CLI_VERIFY_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "userspace/cli/cli_parse.h"

namespace egress::cli {

// Prints the report (text or JSON). Returns the exit code: 0 when every
// probe got the verdict the policy gives it and every hook is attached, 1
// otherwise. Errors (no daemon, no such target) as statuses.
absl::StatusOr<int> RunVerify(const ParsedCommand& command);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_VERIFY_COMMAND_H_
