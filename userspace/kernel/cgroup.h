// cgroup v2 paths, ids and lookups. Paths kept by egress are relative to the
// cgroup2 mount ("/system.slice/nginx.service"); the mount is found in
// /proc/self/mountinfo, never assumed.
#ifndef EGRESS_USERSPACE_KERNEL_CGROUP_H_
#define EGRESS_USERSPACE_KERNEL_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// Turns what an operator typed into a path relative to the cgroup2 mount
// `root`: "/system.slice/x", "system.slice/x" and "<root>/system.slice/x" all
// give "/system.slice/x". InvalidArgument for "..", empty components or the
// root itself.
absl::StatusOr<std::string> NormalizeCgroupPath(absl::string_view input,
                                                absl::string_view root);

// The cgroup id (inode number of the cgroup directory) of `abs_path`, as
// bpf_get_current_cgroup_id() and bpf_link_info report it: compare it with
// CheckLinks() to tell a re-created cgroup from the one a link is on.
// NotFound when the directory does not exist.
absl::StatusOr<uint64_t> CgroupId(const std::string& abs_path);

// The absolute path (below `root`, the cgroup2 mount) of the cgroup with id
// `id`, as bpf_link_info reports it: opened by its file handle, so no walk.
// NotFound when no such cgroup exists; PermissionDenied without
// CAP_DAC_READ_SEARCH; the errno status of the lookup otherwise.
absl::StatusOr<std::string> CgroupPathOfId(const std::string& root,
                                           uint64_t id);

// An O_DIRECTORY fd of the cgroup, for attaching programs (AttachPinned).
// NotFound when the directory does not exist, PermissionDenied without
// access.
absl::StatusOr<UniqueFd> OpenCgroup(const std::string& abs_path);

// The cgroup v2 path ("0::" line of /proc/PID/cgroup) of a process.
absl::StatusOr<std::string> CgroupOfPid(pid_t pid);

// The argv CgroupOfUnit runs: `systemctl show -p ControlGroup --value --
// UNIT`.
std::vector<std::string> UnitCgroupCommand(const std::string& unit);

// The ControlGroup of a systemd unit, from `systemctl show` (run without a
// shell). InvalidArgument, before anything runs, for a name
// policy::CheckUnitName refuses (one starting with '-', say); NotFound when
// the unit has no cgroup (not running), Unavailable without systemctl.
absl::StatusOr<std::string> CgroupOfUnit(const std::string& unit);

// Moves process `pid` into the cgroup at `abs_path`.
absl::Status MoveToCgroup(const std::string& abs_path, pid_t pid);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_CGROUP_H_
