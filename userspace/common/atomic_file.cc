#include "userspace/common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress {

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data, mode_t mode) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "open", tmp);
  absl::Status st;
  size_t off = 0;
  while (st.ok() && off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = ErrnoStatus(errno, "write", tmp);
    } else {
      off += n;
    }
  }
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus(errno, "fsync", tmp);
  if (close(fd) != 0 && st.ok()) st = ErrnoStatus(errno, "close", tmp);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    st = ErrnoStatus(errno, "rename", path);
  }
  // Never leave a half-written temporary file behind.
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

}  // namespace egress
