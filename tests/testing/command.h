// Bounded subprocess helpers for the test kit (ip, sysctl-like tools, the
// egress binaries). No shell is involved unless the caller runs "sh -c".
#ifndef EGRESS_TESTS_TESTING_COMMAND_H_
#define EGRESS_TESTS_TESTING_COMMAND_H_

#include <sys/types.h>

#include <string>
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

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_COMMAND_H_
