#include "userspace/kernel/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"
#include "userspace/policy/names.h"

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

std::vector<std::string> UnitCgroupCommand(const std::string& unit) {
  // "--" ends the options: whatever the unit name, systemctl reads it as a
  // unit, never as -H (another host) or -M (a container).
  return {"systemctl", "show", "-p", "ControlGroup", "--value", "--", unit};
}

absl::StatusOr<std::string> CgroupOfUnit(const std::string& unit) {
  // Checked here too, not only where operators type names: egressd runs this
  // as root for every unit target, also one from an older state file.
  if (absl::Status st = policy::CheckUnitName(unit); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unit '", unit, "': ", st.message()));
  }
  const std::vector<std::string> args = UnitCgroupCommand(unit);
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Run directly, not through a shell: nothing in the name is ever parsed
  // twice.
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ErrnoStatus(errno, "pipe", "systemctl");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  pid_t pid = -1;
  const int spawn_err =
      posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (spawn_err == ENOENT) {
    return absl::UnavailableError(
        absl::StrCat("unit '", unit, "': systemctl is not available"));
  }
  if (spawn_err != 0) return ErrnoStatus(spawn_err, "spawn", "systemctl");
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int rc = 0;
  while (waitpid(pid, &rc, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid", "systemctl");
  }
  if (!WIFEXITED(rc) || WEXITSTATUS(rc) == 127) {
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
