// The supervisor of `egressctl run`: waits for the command while it
// answers the run filter's notifications (run_seccomp.h). A refused call
// fails in the command with EAFNOSUPPORT (socket families) or EPERM (user
// namespaces, io_uring), and egressctl prints on stderr what was refused,
// by whom, and the option that allows it (RefusalLine).
#ifndef EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_
#define EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_

#include <sys/types.h>

#include "userspace/cli/run_restrictions.h"

namespace egress::cli {

// How many refusals are printed; then one line says more are not shown.
inline constexpr int kMaxRefusalLines = 100;

// Returns when the child `pid` has exited, with its wait status. `listener`
// is the filter's notification fd, or -1 when no filter was loaded. Refused
// calls of processes the command leaves behind stay blocked until the
// caller closes `listener` (then they fail with ENOSYS) or kills them.
int SuperviseUntilExit(pid_t pid, int listener, const RunRestrictions& r);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_
