#include "tests/testing/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

extern char** environ;

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

  // EOF comes once every copy of the write end is closed: the child's, its
  // heirs', and also a copy that a fork() in another thread of the test made
  // between pipe2() and write_end.reset() above. O_CLOEXEC closes it only at
  // an exec, and RunInCgroup's child never execs: it held a copy for as long
  // as it ran (9 s, EventsTest.RecordsReadJustAfterTheRemovalNameTheRemoved-
  // Target, about one run in 150). So the child's exit ends the wait too:
  // what is in the pipe by then is read, and heirs that still write get
  // kHeirGrace more.
  constexpr absl::Duration kExitCheck = absl::Milliseconds(20);
  constexpr absl::Duration kHeirGrace = absl::Milliseconds(200);
  CommandResult result;
  bool timed_out = false;
  std::optional<int> exit_status;
  absl::Time read_until = deadline;
  char buf[4096];
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= read_until) {
      timed_out = !exit_status.has_value();
      break;
    }
    pollfd pfd = {read_end.get(), POLLIN, 0};
    int pr =
        ::poll(&pfd, 1, MillisUntil(std::min(read_until, now + kExitCheck)));
    if (pr < 0 && errno != EINTR) break;
    if (pr == 0 && !exit_status.has_value()) {
      int wait_status = 0;
      if (::waitpid(pid, &wait_status, WNOHANG) == pid) {
        exit_status = wait_status;
        read_until = std::min(deadline, absl::Now() + kHeirGrace);
      }
    }
    if (pr <= 0) continue;
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: every writer (the child and its heirs) is gone.
    size_t room =
        kMaxOutputBytes - std::min(kMaxOutputBytes, result.output.size());
    result.output.append(buf, std::min(room, static_cast<size_t>(n)));
  }
  if (exit_status.has_value()) {
    result.exit_code = ExitCodeFromWaitStatus(*exit_status);
    return result;
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

absl::StatusOr<pid_t> SpawnDaemon(const DaemonSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  // The test's environment with spec.env set over it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const auto& [name, value] : spec.env) {
      replaced = replaced || entry.rfind(name + "=", 0) == 0;
    }
    if (!replaced) env_strings.push_back(entry);
  }
  for (const auto& [name, value] : spec.env) {
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  UniqueFd log(::open(spec.log_path.c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return ErrnoStatus(errno, "open", spec.log_path);

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork", spec.argv[0]);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, spec.death_signal);
    if (spec.own_process_group) ::setpgid(0, 0);
    for (const auto& [resource, value] : spec.limits) {
      const rlimit limit{value, value};
      ::setrlimit(resource, &limit);
    }
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (spec.own_process_group) ::setpgid(pid, pid);  // whichever runs first
  return pid;
}

absl::Status WaitUntilServing(pid_t* pid, const std::string& what,
                              absl::Duration timeout, absl::Duration interval,
                              const std::function<bool()>& answers,
                              const std::function<std::string()>& log) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (answers()) return absl::OkStatus();
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = -1;
      return absl::InternalError(
          absl::StrCat(what, " exited at start: ", log()));
    }
    absl::SleepFor(interval);
  }
  return absl::DeadlineExceededError(
      absl::StrCat(what, " did not answer within ",
                   absl::FormatDuration(timeout), ": ", log()));
}

}  // namespace testing
}  // namespace egress
