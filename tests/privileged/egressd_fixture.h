// Fixture of the privileged integration tests: a real egressd (the built
// binary, its own socket, bpffs directory and state directory), a real test
// cgroup, and egressctl invoked as an operator would. Everything it creates
// is removed in TearDown, also when a test fails.
#ifndef EGRESS_TESTS_PRIVILEGED_EGRESSD_FIXTURE_H_
#define EGRESS_TESTS_PRIVILEGED_EGRESSD_FIXTURE_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/command.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {

// Programs attached directly to `cgroup_path` for one attach type (enum
// bpf_attach_type); -1 when the query fails.
int AttachedPrograms(const std::string& cgroup_path, int attach_type);

// A process in `cgroup` whose root is the directory `root` (chroot), holding
// unix sockets bound at `sockets` (paths outside the root), sleeping 60 s:
// its etc/nsswitch.conf, etc/resolv.conf and sockets are what egressd reads
// through /proc/PID/root. The caller kills and reaps it; -1 when it could
// not be started.
pid_t StartChrootedSleeper(const std::string& cgroup, const std::string& root,
                           const std::vector<std::string>& sockets);

class EgressdTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts egressd and waits until it answers (fails the test otherwise).
  void StartDaemon();
  // The two halves of StartDaemon: fork and exec egressd (daemon_pid_), and
  // wait until it answers `ping`. Apart for tests that watch what egressd
  // does before it answers.
  void LaunchDaemon();
  void WaitForDaemon();
  // Sends `sig` to egressd and reaps it.
  void StopDaemon(int sig);

  // Runs `egressctl --socket <ours> args...`.
  CommandResult Ctl(const std::vector<std::string>& args);
  // Runs egressctl and asserts exit 0; returns stdout+stderr.
  std::string CtlOk(const std::vector<std::string>& args);
  // `egressctl ... -o json` parsed.
  nlohmann::json CtlJson(const std::vector<std::string>& args);
  // The records `egressctl events --last 10000 FILTER... -o json` prints,
  // polled (bounded, 5 s) until there are at least `at_least`.
  std::vector<nlohmann::json> Records(const std::vector<std::string>& filter,
                                      size_t at_least);

  // Adds target `name` for cgroup `cg` (default: the test cgroup).
  void AddTarget(const std::string& name, const TestCgroup* cg = nullptr,
                 const std::string& mode = "enforce");

  // Runs `fn` in a child process inside `cg` (default: the test cgroup) and
  // returns its result (an errno, 0 = success); -1 if the child failed.
  int InCgroup(std::function<int()> fn, const TestCgroup* cg = nullptr);

  // Repeats InCgroup(fn, cg) until `done(result)` or `timeout` (bounded; for
  // changes egressd or the kernel make asynchronously). Returns the last
  // result.
  int InCgroupUntil(std::function<int()> fn, std::function<bool(int)> done,
                    const TestCgroup* cg = nullptr,
                    absl::Duration timeout = absl::Seconds(10));

  // Starts a process that joins `cg` (default: the test cgroup) and sleeps;
  // returns its pid once it is in. The caller kills and reaps it.
  pid_t StartSleeperInCgroup(const TestCgroup* cg = nullptr);

  // GET http://127.0.0.1:<metrics_port>/metrics: the whole HTTP answer.
  std::string ScrapeMetrics();

  // What egressd logged so far ("" when the log cannot be read).
  std::string DaemonLog();

  // Target `target` from `status -o json` (null, and a failure, if absent).
  nlohmann::json TargetStatus(const std::string& target);
  // Counters of a target from `status -o json`.
  nlohmann::json Counters(const std::string& target);
  // The id egressd gave target `target` (0, and a failure, if absent).
  uint32_t TargetId(const std::string& target);
  // Waits (bounded, 5 s) until the kernel counted `closed` closed flows of
  // `target`, and asserts it did.
  void AwaitFlowsClosed(const std::string& target, uint64_t closed);

  // The pinned program `prog_<hook>` of target `target`'s own instances
  // (egressd --noshared_program_set), opened: for BPF_PROG_TEST_RUN of the
  // real program. Fails the test (and returns an invalid fd) when the
  // target or the pin is missing.
  UniqueFd OwnProgram(const std::string& target, const std::string& hook);

  // The ruleset the hooks of target `id` use now (pinned targets map).
  uint32_t ActiveRuleset(uint32_t id);
  // Every entry of the pinned exact_rules map, any ruleset (fails the test
  // when the map cannot be opened).
  std::vector<std::pair<egress_exact_key, egress_rule_value>>
  ExactRulesEntries();

  // More egressd flags for StartDaemon (set before it runs).
  std::vector<std::string> extra_daemon_args_;
  std::string socket_path_;
  std::string bpffs_dir_;
  std::string state_dir_;
  std::string daemon_log_;
  pid_t daemon_pid_ = -1;
  std::unique_ptr<TestCgroup> cg_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_PRIVILEGED_EGRESSD_FIXTURE_H_
