// bpffs: where egressd pins its maps, programs and links. Plain directory
// helpers (MakeDirs, SubdirNames, RemoveTree) are in common/fs.h.
#ifndef EGRESS_USERSPACE_KERNEL_BPFFS_H_
#define EGRESS_USERSPACE_KERNEL_BPFFS_H_

#include <string>

#include "absl/status/status.h"

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

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_BPFFS_H_
