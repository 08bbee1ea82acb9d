#include "userspace/common/root_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"

namespace egress {
namespace {

// The name below the root, an O_PATH fd of what it leads to (the final
// symlink followed, inside the root).
absl::StatusOr<UniqueFd> OpenPathInRoot(int root_fd, const std::string& rel) {
  absl::string_view name = rel;
  while (absl::ConsumePrefix(&name, "/")) {
  }
  if (name.empty()) name = ".";
  const std::string path(name);
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  // EAGAIN: a rename raced the lookup (RESOLVE_IN_ROOT); bounded retries.
  for (int attempt = 0;; ++attempt) {
    fd = syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR) || attempt >= 8) break;
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("/", path, ": no such file"));
    }
    if (err == EXDEV || err == ELOOP) {
      return absl::InvalidArgumentError(absl::StrCat(
          "/", path,
          ": resolving it goes through a magic link (/proc/PID/...) or "
          "too many symlinks; not followed"));
    }
    return ErrnoStatus(err, "openat2", absl::StrCat("/", path));
  }
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace

absl::StatusOr<UniqueFd> OpenRootDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", dir);
  return fd;
}

std::string FileKindOf(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symlink";
  }
  return "of an unknown type";
}

absl::StatusOr<struct stat> StatInRoot(int root_fd, const std::string& rel) {
  absl::StatusOr<UniqueFd> fd = OpenPathInRoot(root_fd, rel);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (fstat(fd->get(), &st) != 0) return ErrnoStatus(errno, "fstat", rel);
  return st;
}

absl::StatusOr<std::string> ReadFileInRoot(int root_fd, const std::string& rel,
                                           size_t max_bytes) {
  absl::StatusOr<UniqueFd> path_fd = OpenPathInRoot(root_fd, rel);
  if (!path_fd.ok()) return path_fd.status();
  struct stat st;
  if (fstat(path_fd->get(), &st) != 0) return ErrnoStatus(errno, "fstat", rel);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        rel, " is ", FileKindOf(st.st_mode), ", not a regular file: not read"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(rel, " has ", st.st_size, " bytes, more than the ",
                     max_bytes, " read: not read"));
  }
  // The very inode looked at, opened for reading through our own fd: what
  // the path names now no longer matters.
  UniqueFd fd(open(absl::StrCat("/proc/self/fd/", path_fd->get()).c_str(),
                   O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", rel);
  std::string out(max_bytes + 1, '\0');
  size_t got = 0;
  // Each read returns at least one byte or ends the loop: at most
  // max_bytes + 1 rounds, plus a few interrupted ones.
  for (int interrupted = 0; got < out.size();) {
    const ssize_t n = read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR && ++interrupted < 8) continue;
    if (n < 0) return ErrnoStatus(errno, "read", rel);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        rel, " grew past the ", max_bytes, " bytes read: not read"));
  }
  out.resize(got);
  return out;
}

}  // namespace egress
