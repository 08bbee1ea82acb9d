// Starts a child directly inside a cgroup with clone3(CLONE_INTO_CGROUP), as
// systemd starts a unit's first process: the child never runs anywhere else,
// so its first instruction already runs under the cgroup's hooks (no window
// of the parent's cgroup, as RunInCgroup's fork-then-join has).
//
//   ASSERT_OK_AND_ASSIGN(int err, RunClonedIntoCgroup(path, [] {
//     return UdpSendto("127.0.0.1", port);
//   }));
//
// `fn` runs in a forked copy of a possibly multi-threaded process: syscalls
// only (see run_in_cgroup.h). Its result is the child's exit status, so it
// must be 0..255 (an errno).
#ifndef EGRESS_TESTS_TESTING_CLONE_INTO_CGROUP_H_
#define EGRESS_TESTS_TESTING_CLONE_INTO_CGROUP_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress {
namespace testing {

// Errors: the errno status of opening the cgroup or of clone3 (ENOENT for a
// cgroup that went away), Internal when the child died of a signal,
// DeadlineExceeded when it did not end within `timeout` (it is SIGKILLed
// and reaped).
absl::StatusOr<int> RunClonedIntoCgroup(
    const std::string& cgroup_dir, std::function<int()> fn,
    absl::Duration timeout = absl::Seconds(10));

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_CLONE_INTO_CGROUP_H_
