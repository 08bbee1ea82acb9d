// A slow change on one target must not stall the others: while egressd
// compiles and writes a policy of ~200,000 destinations for one target, a
// second target's cgroup is re-created (systemctl restart) and must be
// enforced again within the usual reconcile delay, and `status` must answer
// at once.
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"

namespace egress::testing {
namespace {

// 176 rules of a /16 minus 128 /32 excepts: 1,152 destinations each, 202,752
// rule-map entries in all (what a policy file of under 1 MiB can say).
std::string BigPolicy(const std::string& cgroup) {
  std::string rules;
  for (int i = 0; i < 176; ++i) {
    absl::StrAppend(&rules, "  - to: [{ipBlock: {cidr: 10.", i,
                    ".0.0/16, except: [");
    for (int j = 0; j < 128; ++j) {
      absl::StrAppend(&rules, j == 0 ? "" : ", ", "10.", i, ".", 2 * j, ".1");
    }
    absl::StrAppend(&rules, "]}}]\n    ports: [{port: 443, protocol: TCP}]\n");
  }
  return absl::StrCat(PolicyHead("big", cgroup), rules);
}

class ResponsivenessTest : public EgressdTest {};

TEST_F(ResponsivenessTest, ASlowApplyStallsNeitherReattachNorStatus) {
  ASSERT_OK_AND_ASSIGN(TestCgroup * big, cg_->CreateChild("big"));
  const std::string steady_rel = cg_->relative_path() + "/steady";
  const std::string steady_abs = cg_->path() + "/steady";
  ASSERT_EQ(mkdir(steady_abs.c_str(), 0755), 0);
  CtlOk({"target", "add", "steady", "--cgroup", steady_rel});

  const std::string file = state_dir_ + "/big.yaml";
  std::ofstream(file) << BigPolicy(big->relative_path());
  std::atomic<bool> applied{false};
  CommandResult apply;
  absl::Time apply_start = absl::Now();
  std::thread applier([&] {
    apply = Ctl({"apply", "-f", file});
    applied.store(true);
  });
  // Joined on every way out, failed assertions included.
  absl::Cleanup join = [&] {
    if (applier.joinable()) applier.join();
  };
  // Give egressd the request, then restart the other target's cgroup.
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_FALSE(applied.load()) << "the apply was too quick to prove anything";
  ASSERT_EQ(rmdir(steady_abs.c_str()), 0);
  ASSERT_EQ(mkdir(steady_abs.c_str(), 0755), 0);
  const absl::Time recreated = absl::Now();

  // Enforced again: a process in the new cgroup is refused (no rules).
  absl::Time enforced = absl::InfiniteFuture();
  for (int i = 0; i < 200 && enforced == absl::InfiniteFuture(); ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::ofstream(steady_abs + "/cgroup.procs") << getpid();
      _exit(TcpConnect("127.0.0.1", 9) == EPERM ? 0 : 1);
    }
    ASSERT_OK_AND_ASSIGN(int ws,
                         WaitPidUntil(pid, absl::Now() + absl::Seconds(5)));
    if (ExitCodeFromWaitStatus(ws) == 0)
      enforced = absl::Now();
    else
      absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_NE(enforced, absl::InfiniteFuture()) << "never re-attached";
  const bool apply_still_running = !applied.load();

  absl::Time status_start = absl::Now();
  CommandResult status = Ctl({"status", "-o", "json"});
  absl::Duration status_took = absl::Now() - status_start;
  const bool status_during_apply = !applied.load();

  applier.join();
  absl::Duration apply_took = absl::Now() - apply_start;
  rmdir(steady_abs.c_str());
  CtlOk({"target", "remove", "steady"});

  EXPECT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_EQ(status.exit_code, 0) << status.output;
  // The proof is the order, not a clock: the re-attachment and the answer
  // to `status` both came while the apply was still running (the times are
  // recorded below for the reader).
  EXPECT_TRUE(apply_still_running)
      << "re-attached only after the apply (it took " << apply_took
      << "; re-attached " << (enforced - recreated) << " after the mkdir)";
  EXPECT_TRUE(status_during_apply)
      << "status answered only after the apply (it took " << apply_took
      << "; status took " << status_took << ")";
  RecordProperty("apply_ms", absl::ToInt64Milliseconds(apply_took));
  RecordProperty("reattach_ms",
                 absl::ToInt64Milliseconds(enforced - recreated));
  RecordProperty("status_ms", absl::ToInt64Milliseconds(status_took));
}

}  // namespace
}  // namespace egress::testing
