// Runs a function in a forked child that first joins a cgroup, so that BPF
// programs attached to that cgroup see the child's syscalls.
//
//   ASSERT_OK_AND_ASSIGN(int err, RunInCgroup(cg->path(), [] {
//     return TcpConnect("127.0.0.1", closed_port);
//   }));
//   EXPECT_EQ(err, EPERM);
//
// `fn` runs after fork() in a child of a possibly multi-threaded process: it
// must not use gtest assertions, must not touch locks held by other threads of
// the parent, and should only do syscalls and return numbers. The child leaves
// with _exit() (no atexit handlers, no gtest teardown); it gets SIGKILL if the
// test process dies.
#ifndef EGRESS_TESTS_TESTING_RUN_IN_CGROUP_H_
#define EGRESS_TESTS_TESTING_RUN_IN_CGROUP_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress {
namespace testing {

// Forks; the child writes its pid to `cgroup_dir`/cgroup.procs, runs `fn` and
// sends the result to the parent. Errors: the child could not join the cgroup
// (the errno of the write, e.g. NotFound), it died or threw before reporting
// (Internal), or it did not report within `timeout` (DeadlineExceeded; the
// child is SIGKILLed and reaped).
absl::StatusOr<int> RunInCgroup(const std::string& cgroup_dir,
                                std::function<int()> fn,
                                absl::Duration timeout = absl::Seconds(10));

// Same, for a function that reports several values (at most 65536).
absl::StatusOr<std::vector<int>> RunInCgroupMulti(
    const std::string& cgroup_dir, std::function<std::vector<int>()> fn,
    absl::Duration timeout = absl::Seconds(10));

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_RUN_IN_CGROUP_H_
