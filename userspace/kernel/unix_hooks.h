// The AF_UNIX sock_addr hooks (Linux 6.7+: connect_unix, sendmsg_unix):
// whether the running kernel has them, and how their programs are loaded.
// libbpf 1.1 knows neither the section names nor the attach types, so the
// loader names the program type and attach type itself; on a kernel without
// the hooks the programs are left out and everything else loads as before.
#ifndef EGRESS_USERSPACE_KERNEL_UNIX_HOOKS_H_
#define EGRESS_USERSPACE_KERNEL_UNIX_HOOKS_H_

#include <bpf/libbpf.h>

#include <string>

#include "absl/status/status.h"

namespace egress {

// True when the kernel accepts a cgroup sock_addr program for the unix
// connect attach type (probed once, by loading a two-instruction program;
// needs CAP_BPF like everything else here). A probe that cannot run counts
// as "no".
bool KernelHasUnixHooks();

// The warning egressd prints at start on a kernel without the hooks (unix
// rules are accepted but not enforced there); "" when the kernel has them.
std::string UnixHooksWarning();

// Prepares the unix programs of an opened, not yet loaded object: program
// type and attach type when `enabled`, else not loaded at all. Errors:
// InternalError naming a program the object lacks; the errno status of a
// libbpf setter.
absl::Status PrepareUnixPrograms(bpf_object* obj, bool enabled);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_UNIX_HOOKS_H_
