// A connect from inside a cgroup that cannot leave the host: the field
// self-check's probe. A short-lived child is born in the cgroup (clone3
// with CLONE_INTO_CGROUP, so a read-only cgroup mount does not stop it; fork
// and cgroup.procs where clone3 is missing), enters a new
// network namespace (only a loopback that is down: no route anywhere) and
// connects a TCP socket. The cgroup's connect4 hook runs before routing, so
// EPERM means the hook refused it; without the hook the connect fails with
// ENETUNREACH and no packet exists.
#ifndef EGRESS_USERSPACE_KERNEL_CGROUP_PROBE_H_
#define EGRESS_USERSPACE_KERNEL_CGROUP_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress {

// The child names itself so (comm), so its record is told from the user's.
inline constexpr char kProbeComm[] = "egress-probe";

// The errno of the probe's connect to addr_be:port (0 = it connected) from
// inside `cgroup_dir` (an absolute cgroup2 directory). Errors: the child
// could not be made, join the cgroup, unshare its network namespace or
// make a socket, or did not finish within `timeout` (killed and reaped);
// NotFound when the cgroup directory does not exist.
absl::StatusOr<int> ProbeConnectFromCgroup(const std::string& cgroup_dir,
                                           uint32_t addr_be, uint16_t port,
                                           absl::Duration timeout);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_CGROUP_PROBE_H_
