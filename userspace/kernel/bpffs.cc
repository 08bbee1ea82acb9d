#include "userspace/kernel/bpffs.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;
}  // namespace

bool IsOnBpffs(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

absl::Status EnsureBpffsDir(const std::string& dir,
                            const std::string& mount_point) {
  if (!absl::StartsWith(dir, mount_point)) {
    return absl::FailedPreconditionError(
        absl::StrCat("bpffs directory ", dir,
                     " is not below the bpffs mount point ", mount_point));
  }
  EGRESS_RETURN_IF_ERROR(MakeDirs(mount_point, 0755));
  if (!IsOnBpffs(mount_point)) {
    if (mount("bpf", mount_point.c_str(), "bpf", 0, "mode=0700") != 0) {
      return ErrnoStatus(errno, "mount bpffs", mount_point);
    }
  }
  EGRESS_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  // mkdir honours the umask; pins must not be readable by anyone but root.
  if (chmod(dir.c_str(), 0700) != 0) return ErrnoStatus(errno, "chmod", dir);
  return absl::OkStatus();
}

}  // namespace egress
