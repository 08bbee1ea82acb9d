#include "userspace/kernel/cgroup_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace {

// Exit codes of the child past any errno.
constexpr int kJoinFailed = 250;
constexpr int kUnshareFailed = 251;
constexpr int kSocketFailed = 252;

// The child: system calls only (egressd has threads; nothing here may
// take a lock another thread held at fork). procs_fd < 0: it was born in
// the cgroup.
[[noreturn]] void Child(int procs_fd, const sockaddr_in& to) {
  if (procs_fd >= 0 && write(procs_fd, "0", 1) != 1) _exit(kJoinFailed);
  if (unshare(CLONE_NEWNET) != 0) _exit(kUnshareFailed);
  prctl(PR_SET_NAME, kProbeComm, 0, 0, 0);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) _exit(kSocketFailed);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  _exit(rc == 0 || errno == EINPROGRESS ? 0 : errno);
}

// A child born in the cgroup of `cgroup_fd` (clone3 with CLONE_INTO_CGROUP,
// Linux 5.7): the move is checked against the cgroup's own permissions, not
// the mount's, so it works where the cgroup file system is mounted read-only
// (systemd's ProtectControlGroups=yes), where writing cgroup.procs fails with
// EROFS. -1 with errno set when clone3 cannot do it.
pid_t CloneIntoCgroup(int cgroup_fd) {
  clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

// The probe child, in `cgroup_dir` from its first instruction, or (clone3
// missing or filtered: ENOSYS) forked and moved by writing cgroup.procs.
absl::StatusOr<pid_t> StartChild(const std::string& cgroup_dir,
                                 const sockaddr_in& to) {
  UniqueFd cgroup(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup.valid()) return ErrnoStatus(errno, "open", cgroup_dir);
  pid_t pid = CloneIntoCgroup(cgroup.get());
  if (pid == 0) Child(-1, to);
  if (pid > 0) return pid;
  if (errno != ENOSYS) return ErrnoStatus(errno, "clone3 into", cgroup_dir);
  const std::string procs = absl::StrCat(cgroup_dir, "/cgroup.procs");
  UniqueFd procs_fd(open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!procs_fd.valid()) return ErrnoStatus(errno, "open", procs);
  pid = fork();
  if (pid == 0) Child(procs_fd.get(), to);
  if (pid < 0) return ErrnoStatus(errno, "fork", "self-check probe");
  return pid;
}

}  // namespace

absl::StatusOr<int> ProbeConnectFromCgroup(const std::string& cgroup_dir,
                                           uint32_t addr_be, uint16_t port,
                                           absl::Duration timeout) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = addr_be;
  absl::StatusOr<pid_t> child = StartChild(cgroup_dir, to);
  if (!child.ok()) return child.status();
  const pid_t pid = *child;
  int wstatus = 0;
  const absl::Time deadline = absl::Now() + timeout;
  pid_t done = 0;
  while ((done = waitpid(pid, &wstatus, WNOHANG)) == 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &wstatus, 0);
    return absl::DeadlineExceededError(
        absl::StrCat("self-check probe in ", cgroup_dir,
                     " did not finish within ", absl::FormatDuration(timeout)));
  }
  if (done < 0) return ErrnoStatus(errno, "waitpid", "self-check probe");
  if (!WIFEXITED(wstatus)) {
    return absl::InternalError(
        absl::StrCat("self-check probe in ", cgroup_dir, " was killed"));
  }
  switch (int code = WEXITSTATUS(wstatus)) {
    case kJoinFailed:
      return absl::FailedPreconditionError(
          absl::StrCat("self-check probe could not join ", cgroup_dir));
    case kUnshareFailed:
      return absl::FailedPreconditionError(
          "self-check probe could not make a network namespace");
    case kSocketFailed:
      return absl::FailedPreconditionError(
          "self-check probe could not make a socket");
    default:
      return code;
  }
}

}  // namespace egress
