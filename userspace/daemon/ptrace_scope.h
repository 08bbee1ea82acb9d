// A process of a target that may attach to (ptrace) a process of its uid
// outside the target can make it open a socket, or copy one out of it
// (pidfd_getfd), and connect that socket anywhere: a socket's hooks are
// those of the cgroup it was made in (docs/bypasses.md section 7). With Yama's
// kernel.yama.ptrace_scope at 1 or more a process may only attach to its
// descendants; at 0, or without Yama, to every process of its uid. egress
// cannot refuse that per target (`egressctl run` does, for its commands);
// `status` says so instead.
#ifndef EGRESS_USERSPACE_DAEMON_PTRACE_SCOPE_H_
#define EGRESS_USERSPACE_DAEMON_PTRACE_SCOPE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace egress {

inline constexpr char kPtraceScopePath[] = "/proc/sys/kernel/yama/ptrace_scope";

// The warning for the contents of the sysctl file (e.g. "0\n"), nullopt
// when there is none (no Yama in the kernel); "" when it is 1 or more, or
// cannot be read as a number.
std::string PtraceScopeWarning(std::optional<absl::string_view> sysctl_text);

// PtraceScopeWarning of the file at `path` (nullopt when it cannot be
// opened).
std::string PtraceScopeWarningOf(const std::string& path);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_PTRACE_SCOPE_H_
