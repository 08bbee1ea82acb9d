// Bounded subprocess helpers for the test kit (ip, sysctl-like tools, the
// egress binaries). No shell is involved unless the caller runs "sh -c".
#ifndef EGRESS_TESTS_TESTING_COMMAND_H_
#define EGRESS_TESTS_TESTING_COMMAND_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <csignal>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress {
namespace testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal number when killed by a signal.
  std::string output;  // stdout and stderr interleaved, capped at 1 MiB.
};

// Runs argv[0] (searched in PATH) with stdin from /dev/null in its own process
// group. On timeout the whole group gets SIGKILL and DeadlineExceeded is
// returned. A non-zero exit is not an error here.
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv,
    absl::Duration timeout = absl::Seconds(10));

// Like RunCommand, but a non-zero exit becomes an Internal error whose message
// holds the command line, exit code and output. Returns the output.
absl::StatusOr<std::string> RunCommandOk(
    const std::vector<std::string>& argv,
    absl::Duration timeout = absl::Seconds(10));

// waitpid(pid) polling until `deadline`. Returns the raw wait status, or
// DeadlineExceeded (the child is left running: the caller decides to kill).
absl::StatusOr<int> WaitPidUntil(pid_t pid, absl::Time deadline);

// Maps a wait status to an exit code (128 + signal when signalled).
int ExitCodeFromWaitStatus(int wait_status);

// A long-running daemon a test starts (dockerd, Podman's service,
// containerd, dnsmasq): what SpawnDaemon needs to run it.
struct DaemonSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path (no PATH)
  std::string log_path;           // stdout and stderr are appended here
  // Set (or replaced) in its environment; the rest is the test's own.
  std::vector<std::pair<std::string, std::string>> env;
  // Soft and hard limit of each resource (RLIMIT_*).
  std::vector<std::pair<int, rlim_t>> limits;
  // What it gets when the test process dies (PR_SET_PDEATHSIG).
  int death_signal = SIGKILL;
  // Its own process group, so that kill(-pid) ends its helpers as well.
  bool own_process_group = false;
};

// Forks and execs `spec.argv` with stdin from the test's and the log as
// stdout and stderr. Everything the child touches is made before fork().
absl::StatusOr<pid_t> SpawnDaemon(const DaemonSpec& spec);

// Polls `answers` every `interval` until it says yes (OK), the child `*pid`
// exits (Internal "<what> exited at start: <log>"; reaped, *pid set to -1)
// or `timeout` passes (DeadlineExceeded "<what> did not answer within
// <timeout>: <log>"; the child is left running: the caller stops it).
absl::Status WaitUntilServing(pid_t* pid, const std::string& what,
                              absl::Duration timeout, absl::Duration interval,
                              const std::function<bool()>& answers,
                              const std::function<std::string()>& log);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_COMMAND_H_
