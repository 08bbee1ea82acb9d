// Parser for /proc/<pid>/mountinfo (proc(5)), used to locate the cgroup2 and
// bpf filesystems instead of hard-coding /sys/fs/cgroup or /sys/fs/bpf.
#ifndef EGRESS_USERSPACE_COMMON_MOUNTINFO_H_
#define EGRESS_USERSPACE_COMMON_MOUNTINFO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress {

// One line of mountinfo. Octal escapes (\040 space, \011 tab, \012 newline,
// \134 backslash) are decoded in every field.
struct MountEntry {
  std::string mount_point;  // Field 5, e.g. "/sys/fs/cgroup/unified".
  std::string fs_type;      // First field after " - ", e.g. "cgroup2".
  std::string source;       // Second field after " - ", e.g. "cgroup2".
  std::string options;      // Field 6: per-mount options, e.g. "rw,relatime".
};

// Parses mountinfo text. Malformed lines (too few fields, no "-" separator)
// are skipped; the result keeps the order of the input.
std::vector<MountEntry> ParseMountInfo(absl::string_view text);

// Returns the mount point of the first entry whose filesystem type is exactly
// `fs_type` ("cgroup2", "bpf"). NotFound names the type when there is none.
absl::StatusOr<std::string> FindMount(absl::string_view text,
                                      absl::string_view fs_type);

// The cgroup2 mount point as seen by this process, from /proc/self/mountinfo.
// Works for pure v2 (/sys/fs/cgroup) and hybrid (/sys/fs/cgroup/unified).
absl::StatusOr<std::string> Cgroup2Root();

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_MOUNTINFO_H_
