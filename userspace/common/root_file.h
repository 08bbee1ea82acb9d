// Files of another process's view of the filesystem (/proc/PID/root), read
// without trusting it: that process owns what the names lead to. A name is
// resolved as if the directory were "/" (absolute symlinks and ".." stay
// inside it), never through a magic link (/proc/PID/fd/N, /proc/PID/root),
// and only a regular file is ever opened for reading: a FIFO, a device or a
// socket is looked at (O_PATH, fstat) but never opened, so no open blocks
// and no device's open has its side effect. Reads are bounded.
#ifndef EGRESS_USERSPACE_COMMON_ROOT_FILE_H_
#define EGRESS_USERSPACE_COMMON_ROOT_FILE_H_

#include <sys/stat.h>

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// A directory to resolve names under ("/proc/42/root", or a test's
// directory), opened O_PATH. The errno status of the open otherwise.
absl::StatusOr<UniqueFd> OpenRootDir(const std::string& dir);

// What `rel` ("etc/resolv.conf"; a leading "/" is the root's) names below
// `root_fd`, symlinks followed inside the root. NotFound when nothing is
// there; InvalidArgument when resolving it would leave the root or go
// through a magic link; the errno status otherwise.
absl::StatusOr<struct stat> StatInRoot(int root_fd, const std::string& rel);

// The contents of the regular file `rel` below `root_fd`, at most
// `max_bytes`. NotFound when there is no such file; FailedPrecondition when
// it is not a regular file (naming what it is) or is larger than
// `max_bytes`; InvalidArgument as StatInRoot; the errno status otherwise.
absl::StatusOr<std::string> ReadFileInRoot(int root_fd, const std::string& rel,
                                           size_t max_bytes);

// "a FIFO", "a character device", ... for the type bits of `mode`.
std::string FileKindOf(mode_t mode);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_ROOT_FILE_H_
