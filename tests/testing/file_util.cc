#include "tests/testing/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  constexpr size_t kMaxBytes = 16 << 20;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", path);
  std::string text;
  char buf[8192];
  while (text.size() < kMaxBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", path);
  ssize_t n;
  do {
    n = ::write(fd.get(), content.data(), content.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "write", path);
  if (static_cast<size_t>(n) != content.size()) {
    return absl::InternalError(absl::StrCat("write(", path, "): short write, ",
                                            n, " of ", content.size(),
                                            " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace egress
