// Plain filesystem helpers shared by the daemon, the CLI and the kernel
// layer: directories made, listed and removed. Nothing here knows about BPF;
// bpffs specifics (mounting it, telling it apart) are in kernel/bpffs.h.
#ifndef EGRESS_USERSPACE_COMMON_FS_H_
#define EGRESS_USERSPACE_COMMON_FS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace egress {

// Creates `dir` and missing parents, each with `mode` (ordinary fs or bpffs;
// the umask applies). An existing directory is fine. Errno status of the
// first mkdir that fails otherwise (PermissionDenied, NotFound, ...).
absl::Status MakeDirs(const std::string& dir, unsigned mode);

// Names of the subdirectories of `dir` (names starting with "." left out),
// sorted; empty when `dir` cannot be read. For pin trees and cgroup trees.
std::vector<std::string> SubdirNames(const std::string& dir);

// Removes a directory tree (files, pins and directories), depth first. A
// missing `dir` is fine. Errno status of the first entry that cannot be
// removed.
absl::Status RemoveTree(const std::string& dir);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_FS_H_
