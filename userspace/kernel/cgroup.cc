#include "userspace/kernel/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"

namespace egress {

absl::StatusOr<std::string> NormalizeCgroupPath(absl::string_view input,
                                                absl::string_view root) {
  absl::string_view rest = input;
  if (!root.empty() && absl::StartsWith(rest, root) &&
      (rest.size() == root.size() || rest[root.size()] == '/')) {
    rest.remove_prefix(root.size());
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(rest, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup path '", input, "': '", part,
                       "' is not allowed in a cgroup path"));
    }
    parts.push_back(part);
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup path '", input,
                     "': the cgroup root cannot be a target; name a child"));
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

absl::StatusOr<uint64_t> CgroupId(const std::string& abs_path) {
  struct stat st;
  if (stat(abs_path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "stat cgroup", abs_path);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(abs_path, " is not a cgroup directory"));
  }
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<std::string> CgroupPathOfId(const std::string& root,
                                           uint64_t id) {
  UniqueFd mount_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd) return ErrnoStatus(errno, "open cgroup2 mount", root);
  // cgroup2 (kernfs) file handles are the 8-byte node id, which is the id
  // the kernel reports for a cgroup; the handle type is asked of the root.
  struct {
    file_handle fh;
    uint64_t id;
  } handle{};
  handle.fh.handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (name_to_handle_at(mount_fd.get(), "", &handle.fh, &mount_id,
                        AT_EMPTY_PATH) != 0) {
    return ErrnoStatus(errno, "name_to_handle_at", root);
  }
  memcpy(handle.fh.f_handle, &id, sizeof(id));
  UniqueFd cg(open_by_handle_at(mount_fd.get(), &handle.fh,
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) {
    return ErrnoStatus(errno == ESTALE ? ENOENT : errno, "open cgroup id",
                       absl::StrCat(id));
  }
  char path[PATH_MAX];
  std::string fd_link = absl::StrCat("/proc/self/fd/", cg.get());
  ssize_t n = readlink(fd_link.c_str(), path, sizeof(path) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink", fd_link);
  return std::string(path, n);
}

absl::StatusOr<UniqueFd> OpenCgroup(const std::string& abs_path) {
  int fd = open(abs_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open cgroup", abs_path);
  return UniqueFd(fd);
}

absl::StatusOr<std::string> CgroupOfPid(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/cgroup");
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("no process with pid ", pid));
  }
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "0::")) return line.substr(3);
  }
  return absl::NotFoundError(
      absl::StrCat(path, " has no cgroup v2 entry (\"0::\")"));
}

absl::StatusOr<std::string> CgroupOfUnit(const std::string& unit) {
  for (char c : unit) {
    if (!(isalnum(static_cast<unsigned char>(c)) ||
          absl::StrContains("-_.@:\\", c))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unit '", unit, "': unexpected character '", std::string(1, c), "'"));
    }
  }
  std::string cmd = absl::StrCat("systemctl show -p ControlGroup --value '",
                                 unit, "' 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return ErrnoStatus(errno, "popen", "systemctl");
  char buf[4096];
  std::string out;
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  int rc = pclose(p);
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) == 127) {
    return absl::UnavailableError(
        absl::StrCat("unit '", unit, "': systemctl is not available"));
  }
  std::string cg(absl::StripAsciiWhitespace(out));
  if (WEXITSTATUS(rc) != 0 || cg.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "unit '", unit, "' has no cgroup (is it loaded and running?)"));
  }
  return cg;
}

absl::Status MoveToCgroup(const std::string& abs_path, pid_t pid) {
  std::string procs = absl::StrCat(abs_path, "/cgroup.procs");
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", procs);
  std::string s = absl::StrCat(pid);
  ssize_t n = write(fd, s.data(), s.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(s.size()))
    return ErrnoStatus(err, "write", procs);
  return absl::OkStatus();
}

}  // namespace egress
