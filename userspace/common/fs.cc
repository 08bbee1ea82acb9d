#include "userspace/common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace egress {

absl::Status MakeDirs(const std::string& dir, unsigned mode) {
  if (dir.empty()) return absl::OkStatus();
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", partial);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> OpenDirNoFollow(const std::string& dir, int flags) {
  const int fd =
      open(dir.c_str(), flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == ELOOP || err == ENOTDIR) {
    struct stat st;
    const bool link = lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " is ", link ? "a symlink" : "not a directory",
        ": it must be a directory of its own (remove it, or name the "
        "directory itself)"));
  }
  return ErrnoStatus(err, "open", dir);
}

absl::Status MakeFdPrivate(int fd, const std::string& path, mode_t mode,
                           const FsLog& log) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat", path);
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (st.st_uid != uid || st.st_gid != gid) {
    if (fchown(fd, uid, gid) != 0) return ErrnoStatus(errno, "fchown", path);
    if (log) {
      log(absl::StrCat(path, " was owned by ", st.st_uid, ":", st.st_gid,
                       "; now by ", uid, ":", gid));
    }
  }
  // chown clears set-id bits: the mode is set after it, and looked at again.
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat", path);
  if ((st.st_mode & 07777) != mode) {
    if (fchmod(fd, mode) != 0) return ErrnoStatus(errno, "fchmod", path);
    if (log) {
      log(absl::StrCat(path, " had mode ",
                       absl::StrFormat("%04o", st.st_mode & 07777), "; now ",
                       absl::StrFormat("%04o", mode)));
    }
  }
  return absl::OkStatus();
}

absl::Status MakePrivateDir(const std::string& dir, const FsLog& log) {
  struct stat there;
  if (lstat(dir.c_str(), &there) != 0) {
    if (errno != ENOENT) return ErrnoStatus(errno, "lstat", dir);
    EGRESS_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  }
  EGRESS_ASSIGN_OR_RETURN(int raw, OpenDirNoFollow(dir, O_RDONLY));
  UniqueFd fd(raw);
  EGRESS_RETURN_IF_ERROR(MakeFdPrivate(fd.get(), dir, 0700, log));
  // Files made before, under another umask: their group and other bits go
  // too (bounded: a state directory holds a few files).
  const int dup_fd = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  DIR* d = dup_fd < 0 ? nullptr : fdopendir(dup_fd);
  if (d == nullptr) {
    if (dup_fd >= 0) close(dup_fd);
    return ErrnoStatus(errno, "opendir", dir);
  }
  absl::Status st;
  size_t seen = 0;
  while (struct dirent* e = readdir(d)) {
    if (++seen > 10000) break;
    struct stat fs;
    if (fstatat(fd.get(), e->d_name, &fs, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(fs.st_mode) || (fs.st_mode & 077) == 0) {
      continue;
    }
    const std::string path = absl::StrCat(dir, "/", e->d_name);
    if (fchmodat(fd.get(), e->d_name, fs.st_mode & 07700, 0) != 0) {
      st = ErrnoStatus(errno, "chmod", path);
      break;
    }
    if (log) {
      log(absl::StrCat(path, " had mode ",
                       absl::StrFormat("%04o", fs.st_mode & 07777), "; now ",
                       absl::StrFormat("%04o", fs.st_mode & 07700)));
    }
  }
  closedir(d);
  return st;
}

std::vector<std::string> SubdirNames(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    bool is_dir = ent->d_type == DT_DIR;
    if (ent->d_type == DT_UNKNOWN) {
      struct stat st;
      std::string path = absl::StrCat(dir, "/", ent->d_name);
      is_dir = stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.push_back(ent->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status RemoveTree(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "opendir", dir);
  }
  std::vector<std::string> children;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    children.push_back(absl::StrCat(dir, "/", name));
  }
  closedir(d);
  for (const std::string& child : children) {
    struct stat st;
    if (lstat(child.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      EGRESS_RETURN_IF_ERROR(RemoveTree(child));
    } else if (unlink(child.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "unlink", child);
    }
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "rmdir", dir);
  }
  return absl::OkStatus();
}

}  // namespace egress
