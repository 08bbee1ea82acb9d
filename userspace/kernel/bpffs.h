// bpffs: where egressd pins its maps, programs and links. Plain directory
// helpers (MakeDirs, SubdirNames, RemoveTree) are in common/fs.h.
#ifndef EGRESS_USERSPACE_KERNEL_BPFFS_H_
#define EGRESS_USERSPACE_KERNEL_BPFFS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// True when `path` lies on a bpf filesystem.
bool IsOnBpffs(const std::string& path);

// Makes `dir` (and its parents) exist on a bpf filesystem, owned by root
// (the effective uid and gid) with mode 0700. When the nearest existing
// ancestor is not on bpffs, mounts bpffs on the top-level directory under
// /sys/fs/bpf-like mount point given by `mount_point` (the conventional one
// is /sys/fs/bpf) first. A `dir` that was there before is taken over: made
// root's with mode 0700 (also when another user made it, as anyone can on
// a bpffs mounted without mode=), and so is every directory below it; a pin
// or symlink below it of another owner (egressd made none) is removed, and
// a pin of root's loses group and other bits (MakePinTreePrivate). Each
// change, and a mount point that users other than root can write to, is
// said through `log`. Returns FailedPrecondition when `dir` is not below
// `mount_point` or is a symlink or not a directory, and the errno status
// of a failed mount, mkdir, chown or chmod.
absl::Status EnsureBpffsDir(const std::string& dir,
                            const std::string& mount_point,
                            const FsLog& log = nullptr);

// How far MakePinTreePrivate goes below the pin root: egressd's tree is a
// few levels deep (v<abi>/targets/<id>/links/...), a target's pins are
// counted in tens.
inline constexpr int kMaxPinTreeDepth = 16;
inline constexpr size_t kMaxPinTreeEntries = size_t{1} << 20;

// The walk of EnsureBpffsDir below the directory open as `dir_fd` (already
// private; named `path` in messages), at most kMaxPinTreeDepth levels and
// kMaxPinTreeEntries entries (what is beyond is said through `log` and left:
// no other user can reach it through `path` anyway). Returns the number of
// entries changed or removed, or the errno status of a change that failed.
absl::StatusOr<size_t> MakePinTreePrivate(int dir_fd, const std::string& path,
                                          const FsLog& log);

// The object pinned at `path`, opened (bpf_obj_get). NotFound only when
// there is no pin (ENOENT); any other failure is its errno status (EMFILE or
// ENFILE when egressd is out of descriptors, ENOMEM): the pin may well be
// there and must not be taken for missing, pinned over or made again.
absl::StatusOr<UniqueFd> OpenPin(const std::string& path);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_BPFFS_H_
