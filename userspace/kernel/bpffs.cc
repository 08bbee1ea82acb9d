#include "userspace/kernel/bpffs.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace {
constexpr long kBpfFsMagic = 0xcafe4a11;

struct Walk {
  const FsLog& log;
  size_t budget = kMaxPinTreeEntries;
  size_t changed = 0;
  bool said_budget = false;
};

void Say(const FsLog& log, const std::string& line) {
  if (log) log(line);
}

// The entries of the directory open as `dir_fd`, "." and ".." left out.
absl::StatusOr<std::vector<std::string>> EntriesOf(int dir_fd,
                                                   const std::string& path) {
  const int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus(errno, "dup", path);
  DIR* d = fdopendir(dup_fd);
  if (d == nullptr) {
    const int err = errno;
    close(dup_fd);
    return ErrnoStatus(err, "fdopendir", path);
  }
  rewinddir(d);
  std::vector<std::string> out;
  while (struct dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  return out;
}

absl::Status WalkPins(int dir_fd, const std::string& path, int depth, Walk& w) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          EntriesOf(dir_fd, path));
  for (const std::string& name : names) {
    const std::string child = absl::StrCat(path, "/", name);
    if (w.budget == 0) {
      if (!w.said_budget) {
        Say(w.log, absl::StrCat("pin tree: stopped looking after ",
                                kMaxPinTreeEntries, " entries, at ", child));
        w.said_budget = true;
      }
      return absl::OkStatus();
    }
    --w.budget;
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, "fstatat", child);
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth >= kMaxPinTreeDepth) {
        Say(w.log,
            absl::StrCat("pin tree: not looking below ", child, " (more than ",
                         kMaxPinTreeDepth, " levels deep)"));
        continue;
      }
      UniqueFd sub(openat(dir_fd, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return ErrnoStatus(errno, "open", child);
      size_t said = 0;
      EGRESS_RETURN_IF_ERROR(
          MakeFdPrivate(sub.get(), child, 0700, [&](const std::string& line) {
            ++said;
            Say(w.log, line);
          }));
      if (said > 0) ++w.changed;
      EGRESS_RETURN_IF_ERROR(WalkPins(sub.get(), child, depth + 1, w));
      continue;
    }
    if (st.st_uid != geteuid()) {
      // egressd pins as root and makes no symlinks: another user's pin is
      // not one of ours, and would be used as if it were.
      if (unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "unlink", child);
      }
      ++w.changed;
      Say(w.log, absl::StrCat("removed ", child, ": ",
                              S_ISLNK(st.st_mode) ? "a symlink" : "a pin",
                              " of uid ", st.st_uid, ", not made by egressd"));
      continue;
    }
    if (S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0) continue;
    // Not a symlink (looked at without following), in a directory only root
    // can reach now.
    if (fchmodat(dir_fd, name.c_str(), st.st_mode & 07700, 0) != 0) {
      return ErrnoStatus(errno, "chmod", child);
    }
    ++w.changed;
    Say(w.log,
        absl::StrCat(child, " had mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777), "; now ",
                     absl::StrFormat("%04o", st.st_mode & 07700)));
  }
  return absl::OkStatus();
}

// Says so when users other than root can make, rename or remove entries at
// the top of the bpf filesystem (bpffs's own default, 1777, without mode=).
void WarnOfOpenMount(const std::string& mount_point, const FsLog& log) {
  struct stat st;
  if (!log || stat(mount_point.c_str(), &st) != 0) return;
  if (st.st_uid == 0 && (st.st_mode & 022) == 0) return;
  log(absl::StrCat(
      "bpffs at ", mount_point, " is owned by uid ", st.st_uid, " with mode ",
      absl::StrFormat("%04o", st.st_mode & 07777),
      ": users other than root can make directories and pins in it; "
      "egressd keeps its own pin directory root's alone, but mount bpffs "
      "with mode=0700 (systemd does; mount -t bpf -o mode=0700 bpf ",
      mount_point, ")"));
}

}  // namespace

absl::StatusOr<size_t> MakePinTreePrivate(int dir_fd, const std::string& path,
                                          const FsLog& log) {
  Walk w{log};
  EGRESS_RETURN_IF_ERROR(WalkPins(dir_fd, path, 1, w));
  return w.changed;
}

bool IsOnBpffs(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

absl::Status EnsureBpffsDir(const std::string& dir,
                            const std::string& mount_point, const FsLog& log) {
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
  WarnOfOpenMount(mount_point, log);
  EGRESS_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  // mkdir honours the umask, and the directory may have been there before,
  // made by anyone who could write to the mount: pins must be root's alone.
  EGRESS_ASSIGN_OR_RETURN(int raw, OpenDirNoFollow(dir, O_RDONLY));
  UniqueFd fd(raw);
  EGRESS_RETURN_IF_ERROR(MakeFdPrivate(fd.get(), dir, 0700, log));
  return MakePinTreePrivate(fd.get(), dir, log).status();
}

absl::StatusOr<UniqueFd> OpenPin(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, "bpf_obj_get", path);
  return UniqueFd(fd);
}

}  // namespace egress
