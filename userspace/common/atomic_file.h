// Replacing a file so that readers (and a crash) see the old content or the
// new, never a mix: a temporary file beside it, fsync, rename over it.
#ifndef EGRESS_USERSPACE_COMMON_ATOMIC_FILE_H_
#define EGRESS_USERSPACE_COMMON_ATOMIC_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress {

// Writes `data` to `path` + ".tmp" (mode `mode`), fsyncs it and renames it
// over `path`. Errors name the syscall and the file; the temporary file is
// removed on failure.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data, mode_t mode = 0600);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_ATOMIC_FILE_H_
