#include "tests/testing/run_in_cgroup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/command.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {
namespace {

constexpr uint32_t kMaxValues = 65536;

enum class ChildOutcome : int32_t {
  kValues = 0,      // `count` values follow.
  kJoinFailed = 1,  // `err` is the errno of open/write of cgroup.procs.
  kThrew = 2,       // fn threw an exception.
  kTooMany = 3,     // fn returned more than kMaxValues values.
};

struct Header {
  ChildOutcome outcome;
  int32_t err;
  uint32_t count;
};

// Writes all of [data, data + len) to fd; returns false on error.
bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

[[noreturn]] void ChildMain(int fd, const char* procs_path, pid_t parent,
                            const std::function<std::vector<int>()>& fn) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // Parent died before prctl.
  Header header = {ChildOutcome::kValues, 0, 0};
  int procs_fd = ::open(procs_path, O_WRONLY | O_CLOEXEC);
  if (procs_fd < 0) {
    header = {ChildOutcome::kJoinFailed, errno, 0};
    WriteAll(fd, &header, sizeof(header));
    ::_exit(1);
  }
  char pid_text[32];
  int len = std::snprintf(pid_text, sizeof(pid_text), "%d", ::getpid());
  if (::write(procs_fd, pid_text, static_cast<size_t>(len)) != len) {
    header = {ChildOutcome::kJoinFailed, errno, 0};
    WriteAll(fd, &header, sizeof(header));
    ::_exit(1);
  }
  ::close(procs_fd);

  std::vector<int> values;
  try {
    values = fn();
  } catch (...) {
    header = {ChildOutcome::kThrew, 0, 0};
    WriteAll(fd, &header, sizeof(header));
    ::_exit(1);
  }
  if (values.size() > kMaxValues) {
    header = {ChildOutcome::kTooMany, 0, static_cast<uint32_t>(values.size())};
    WriteAll(fd, &header, sizeof(header));
    ::_exit(1);
  }
  header.count = static_cast<uint32_t>(values.size());
  bool ok = WriteAll(fd, &header, sizeof(header)) &&
            WriteAll(fd, values.data(), values.size() * sizeof(int));
  std::fflush(nullptr);
  ::_exit(ok ? 0 : 1);
}

// Reads exactly `len` bytes unless EOF or the deadline comes first. Returns
// the number of bytes read, or -1 with errno on a read/poll error.
ssize_t ReadUntil(int fd, void* data, size_t len, absl::Time deadline) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < len) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    int ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    pollfd pfd = {fd, POLLIN, 0};
    int pr = ::poll(&pfd, 1, ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (pr == 0) continue;
    ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

std::string DescribeWait(absl::StatusOr<int> wait_status) {
  if (!wait_status.ok()) return std::string(wait_status.status().message());
  int ws = *wait_status;
  if (WIFEXITED(ws)) return absl::StrCat("exited with code ", WEXITSTATUS(ws));
  if (WIFSIGNALED(ws)) {
    return absl::StrCat("killed by signal ", WTERMSIG(ws), " (",
                        strsignal(WTERMSIG(ws)), ")");
  }
  return absl::StrCat("wait status ", ws);
}

}  // namespace

absl::StatusOr<std::vector<int>> RunInCgroupMulti(
    const std::string& cgroup_dir, std::function<std::vector<int>()> fn,
    absl::Duration timeout) {
  const std::string procs_path = absl::StrCat(cgroup_dir, "/cgroup.procs");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoStatus(errno, "pipe2", "RunInCgroup");
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  std::fflush(nullptr);  // Or the child would flush the parent's buffers too.
  const pid_t parent = ::getpid();
  const absl::Time deadline = absl::Now() + timeout;
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork", "RunInCgroup");
  if (pid == 0) {
    read_end.reset();
    ChildMain(write_end.get(), procs_path.c_str(), parent, fn);
  }
  write_end.reset();

  auto kill_and_reap = [pid]() {
    ::kill(pid, SIGKILL);
    return WaitPidUntil(pid, absl::Now() + absl::Seconds(5));
  };

  Header header;
  ssize_t got = ReadUntil(read_end.get(), &header, sizeof(header), deadline);
  if (got < 0) {
    int err = errno;
    (void)kill_and_reap();
    return ErrnoStatus(err, "read", "RunInCgroup result pipe");
  }
  if (static_cast<size_t>(got) < sizeof(header)) {
    if (absl::Now() >= deadline) {
      (void)kill_and_reap();
      return absl::DeadlineExceededError(
          absl::StrCat("RunInCgroup(", cgroup_dir, "): child ", pid,
                       " did not report within ", absl::FormatDuration(timeout),
                       "; killed it"));
    }
    // EOF before a full header: the child died.
    absl::StatusOr<int> ws = WaitPidUntil(pid, deadline);
    if (!ws.ok()) ws = kill_and_reap();
    return absl::InternalError(
        absl::StrCat("RunInCgroup(", cgroup_dir, "): child ", pid,
                     " died before reporting: ", DescribeWait(ws)));
  }

  std::vector<int> values;
  if (header.outcome == ChildOutcome::kValues) {
    values.resize(std::min(header.count, kMaxValues));
    size_t want = values.size() * sizeof(int);
    got = ReadUntil(read_end.get(), values.data(), want, deadline);
    if (got < 0 || static_cast<size_t>(got) != want) {
      (void)kill_and_reap();
      return absl::InternalError(absl::StrCat("RunInCgroup(", cgroup_dir,
                                              "): child ", pid, " sent ", got,
                                              " of ", want, " result bytes"));
    }
  }
  absl::StatusOr<int> ws = WaitPidUntil(pid, deadline + absl::Seconds(1));
  if (!ws.ok()) (void)kill_and_reap();

  switch (header.outcome) {
    case ChildOutcome::kValues:
      return values;
    case ChildOutcome::kJoinFailed:
      return ErrnoStatus(header.err, "RunInCgroup: child write pid to",
                         procs_path);
    case ChildOutcome::kThrew:
      return absl::InternalError(absl::StrCat(
          "RunInCgroup(", cgroup_dir, "): fn threw an exception in the child"));
    case ChildOutcome::kTooMany:
      return absl::InvalidArgumentError(absl::StrCat(
          "RunInCgroup(", cgroup_dir, "): fn returned ", header.count,
          " values; at most ", kMaxValues, " are supported"));
  }
  return absl::InternalError(
      absl::StrCat("RunInCgroup(", cgroup_dir, "): corrupt child report"));
}

absl::StatusOr<int> RunInCgroup(const std::string& cgroup_dir,
                                std::function<int()> fn,
                                absl::Duration timeout) {
  absl::StatusOr<std::vector<int>> values = RunInCgroupMulti(
      cgroup_dir, [&fn]() { return std::vector<int>{fn()}; }, timeout);
  if (!values.ok()) return values.status();
  if (values->size() != 1) {
    return absl::InternalError(absl::StrCat("RunInCgroup(", cgroup_dir,
                                            "): expected 1 value, got ",
                                            values->size()));
  }
  return (*values)[0];
}

}  // namespace testing
}  // namespace egress
