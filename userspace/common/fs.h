// Plain filesystem helpers shared by the daemon, the CLI and the kernel
// layer: directories made, listed and removed. Nothing here knows about BPF;
// bpffs specifics (mounting it, telling it apart) are in kernel/bpffs.h.
#ifndef EGRESS_USERSPACE_COMMON_FS_H_
#define EGRESS_USERSPACE_COMMON_FS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace egress {

// Creates `dir` and missing parents, each with `mode` (ordinary fs or bpffs;
// the umask applies). An existing directory is fine. Errno status of the
// first mkdir that fails otherwise (PermissionDenied, NotFound, ...).
absl::Status MakeDirs(const std::string& dir, unsigned mode);

// Says one line of what was done (egressd's log; nullptr: nothing said).
using FsLog = std::function<void(const std::string&)>;

// Makes the directory open as `fd` (named `path` in messages) owned by the
// effective uid and gid (root, for egressd) with exactly mode `mode`,
// saying through `log` what it changed. The errno status of a failed
// fstat, fchown or fchmod.
absl::Status MakeFdPrivate(int fd, const std::string& path, mode_t mode,
                           const FsLog& log);

// Creates `dir` (and missing parents, MakeDirs) and makes it a directory
// owned by the effective uid and gid with mode 0700, also when it was
// there before with another owner or mode (said through `log`), so that no
// other user can read or change what is in it; the regular files directly
// in it lose their group and other bits. FailedPrecondition when
// `dir` is a symlink or not a directory (nothing is changed then).
absl::Status MakePrivateDir(const std::string& dir, const FsLog& log);

// Opens the directory `dir` itself (O_DIRECTORY | O_NOFOLLOW) with
// `flags`: FailedPrecondition naming it when it is a symlink or not a
// directory, the errno status otherwise.
absl::StatusOr<int> OpenDirNoFollow(const std::string& dir, int flags);

// Names of the subdirectories of `dir` (names starting with "." left out),
// sorted; empty when `dir` cannot be read. For pin trees and cgroup trees.
std::vector<std::string> SubdirNames(const std::string& dir);

// Removes a directory tree (files, pins and directories), depth first. A
// missing `dir` is fine. Errno status of the first entry that cannot be
// removed.
absl::Status RemoveTree(const std::string& dir);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_FS_H_
