#include "tests/testing/clone_into_cgroup.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

absl::StatusOr<int> RunClonedIntoCgroup(const std::string& cgroup_dir,
                                        std::function<int()> fn,
                                        absl::Duration timeout) {
  UniqueFd cg(open(cgroup_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return ErrnoStatus(errno, "open", cgroup_dir);
  clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cg.get());
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) return ErrnoStatus(errno, "clone3 into", cgroup_dir);
  if (pid == 0) _exit(fn() & 0xff);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = waitpid(static_cast<pid_t>(pid), &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "waitpid", "");
    if (absl::Now() > deadline) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      waitpid(static_cast<pid_t>(pid), &status, 0);
      return absl::DeadlineExceededError(
          absl::StrCat("child in ", cgroup_dir, " did not end within ",
                       absl::FormatDuration(timeout)));
    }
    usleep(200);
  }
  if (!WIFEXITED(status)) {
    return absl::InternalError(
        absl::StrCat("child in ", cgroup_dir, " died: status ", status));
  }
  return WEXITSTATUS(status);
}

}  // namespace testing
}  // namespace egress
