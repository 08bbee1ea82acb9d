// `egressctl run`: starts a command in a fresh cgroup enforced by its own
// target, and removes both when the command exits.
#ifndef EGRESS_USERSPACE_CLI_RUN_COMMAND_H_
#define EGRESS_USERSPACE_CLI_RUN_COMMAND_H_

#include "absl/status/statusor.h"
#include "userspace/cli/cli_parse.h"

namespace egress::cli {

// Returns the command's exit code (128 + signal when it was killed). The
// process joins the cgroup before it execs, so no socket of it is ever
// outside enforcement. Errors: the daemon's (target add) or the system's.
absl::StatusOr<int> RunUnderPolicy(ParsedCommand command);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_COMMAND_H_
