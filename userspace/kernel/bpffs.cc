#include "userspace/kernel/bpffs.h"

#include <dirent.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;
}  // namespace

bool IsOnBpffs(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

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
