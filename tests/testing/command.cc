#include "tests/testing/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {
namespace {

constexpr size_t kMaxOutputBytes = 1 << 20;

int MillisUntil(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(left + absl::Milliseconds(1)), 1000));
}

}  // namespace

int ExitCodeFromWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

absl::StatusOr<int> WaitPidUntil(pid_t pid, absl::Time deadline) {
  absl::Duration nap = absl::Microseconds(200);
  while (true) {
    int wait_status = 0;
    pid_t r = ::waitpid(pid, &wait_status, WNOHANG);
    if (r == pid) return wait_status;
    if (r < 0 && errno != EINTR) {
      return ErrnoStatus(errno, "waitpid", absl::StrCat(pid));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("waitpid(", pid, "): child still running at deadline"));
    }
    absl::SleepFor(nap);
    nap = std::min(nap * 2, absl::Milliseconds(20));
  }
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  std::string cmdline = absl::StrJoin(argv, " ");
  // Everything the child touches is prepared before fork().
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const std::string& arg : argv)
    cargv.push_back(const_cast<char*>(arg.c_str()));
  cargv.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoStatus(errno, "pipe2", cmdline);
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!dev_null) return ErrnoStatus(errno, "open", "/dev/null");

  absl::Time deadline = absl::Now() + timeout;
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork", cmdline);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(dev_null.get(), STDIN_FILENO);
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    ::execvp(cargv[0], cargv.data());
    static constexpr char kMsg[] = "RunCommand: execvp failed\n";
    ssize_t ignored = ::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // Also done in the child; whichever runs first wins.
  write_end.reset();

  CommandResult result;
  bool timed_out = false;
  char buf[4096];
  while (true) {
    int wait_ms = MillisUntil(deadline);
    if (wait_ms == 0) {
      timed_out = true;
      break;
    }
    pollfd pfd = {read_end.get(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, wait_ms);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: every writer (the child and its heirs) is gone.
    size_t room =
        kMaxOutputBytes - std::min(kMaxOutputBytes, result.output.size());
    result.output.append(buf, std::min(room, static_cast<size_t>(n)));
  }
  if (!timed_out) {
    absl::StatusOr<int> wait_status = WaitPidUntil(pid, deadline);
    if (wait_status.ok()) {
      result.exit_code = ExitCodeFromWaitStatus(*wait_status);
      return result;
    }
  }
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  (void)WaitPidUntil(pid, absl::Now() + absl::Seconds(5));
  return absl::DeadlineExceededError(absl::StrCat(
      "command timed out after ", absl::FormatDuration(timeout),
      " and was killed: ", cmdline, "; output so far: ", result.output));
}

absl::StatusOr<std::string> RunCommandOk(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  absl::StatusOr<CommandResult> result = RunCommand(argv, timeout);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("command failed with exit code ", result->exit_code, ": ",
                     absl::StrJoin(argv, " "), ": ", result->output));
  }
  return std::move(result->output);
}

}  // namespace testing
}  // namespace egress
