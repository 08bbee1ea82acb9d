// The supervisor of `egressctl run`: waits for the command while it
// answers the run filter's notifications (run_seccomp.h). A refused call
// fails in the command with EAFNOSUPPORT (socket families) or EPERM (user
// namespaces, io_uring), and egressctl prints on stderr what was refused,
// by whom, and the option that allows it (RefusalLine).
#ifndef EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_
#define EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_

#include <sys/types.h>

#include "userspace/cli/run_restrictions.h"
#include "userspace/common/unique_fd.h"

namespace egress::cli {

// How many refusals are printed; then one line says more are not shown.
inline constexpr int kMaxRefusalLines = 100;

// Returns when the child `pid` has exited, with its wait status. `listener`
// is the filter's notification fd (empty when no filter was loaded); it is
// closed on return, so a refused call of a process the command left behind
// fails with ENOSYS (unexplained) until `run` kills it.
int SuperviseUntilExit(pid_t pid, UniqueFd listener, const RunRestrictions& r);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_SUPERVISOR_H_
