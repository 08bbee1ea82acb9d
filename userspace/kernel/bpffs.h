// bpffs: where egressd pins its maps, programs and links.
#ifndef EGRESS_USERSPACE_KERNEL_BPFFS_H_
#define EGRESS_USERSPACE_KERNEL_BPFFS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress {

// True when `path` lies on a bpf filesystem.
bool IsOnBpffs(const std::string& path);

// Makes `dir` (and its parents) exist on a bpf filesystem with mode 0700.
// When the nearest existing ancestor is not on bpffs, mounts bpffs on the
// top-level directory under /sys/fs/bpf-like mount point given by
// `mount_point` (the conventional one is /sys/fs/bpf) first. Returns
// FailedPrecondition when `dir` is not below `mount_point`, and the errno
// status of a failed mount or mkdir.
absl::Status EnsureBpffsDir(const std::string& dir,
                            const std::string& mount_point);

// Creates `dir` and missing parents, each with `mode` (ordinary fs or bpffs).
absl::Status MakeDirs(const std::string& dir, unsigned mode);

// Names of the subdirectories of `dir` (names starting with "." left out),
// sorted; empty when `dir` cannot be read. For pin trees and cgroup trees.
std::vector<std::string> SubdirNames(const std::string& dir);

// Removes a directory tree of pins (files and directories). Missing is fine.
absl::Status RemoveTree(const std::string& dir);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_BPFFS_H_
