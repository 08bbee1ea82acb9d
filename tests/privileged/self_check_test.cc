// The field self-check: egressd probes every enforcing target from inside
// its cgroup (a connect its policy denies, from a network namespace with no
// route) and turns a target whose hook did not refuse it degraded: status,
// list, the exit code of `status`, a metric and a record say so. A healthy
// target stays healthy.
#include <bpf/bpf.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/command.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

class SelfCheckTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StopDaemon(SIGTERM);
    extra_daemon_args_ = {"--self_check_interval_ms", "100"};
    StartDaemon();
    auto other = TestCgroup::Create("selfcheck-db");
    ASSERT_TRUE(other.ok()) << other.status();
    db_cg_ = *std::move(other);
  }
  void TearDown() override {
    EgressdTest::TearDown();
    db_cg_.reset();
  }

  // A target from `status -o json` (which exits 1 once one is degraded).
  nlohmann::json Target(const std::string& name, int* exit_code = nullptr) {
    CommandResult r = Ctl({"status", "-o", "json"});
    if (exit_code != nullptr) *exit_code = r.exit_code;
    nlohmann::json status = nlohmann::json::parse(r.output, nullptr, false);
    if (status.is_discarded() || !status.contains("targets")) return {};
    for (const auto& t : status["targets"]) {
      if (t["name"] == name) return t;
    }
    return nlohmann::json::object();
  }

  std::unique_ptr<TestCgroup> db_cg_;
};

TEST_F(SelfCheckTest, DetachedHookTurnsTheTargetDegradedAndHealthyOneStays) {
  AddTarget("web");
  AddTarget("db", db_cg_.get());
  // Several rounds pass: both are healthy, and the probes stayed inside.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE(Target("web").contains("degraded")) << Target("web").dump();
  EXPECT_FALSE(Target("db").contains("degraded")) << Target("db").dump();
  EXPECT_EQ(Ctl({"status"}).exit_code, 0);

  // Someone detaches web's links behind egressd's back, with its pins
  // replaced by a dangling symlink so that egressd cannot re-pin or
  // re-attach them (verify_test.cc does the same).
  // web was added first: target id 1 (as in verify_test.cc).
  const std::string web_pins =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/targets/1");
  std::vector<UniqueFd> links;
  auto listing = RunCommand({"ls", web_pins});
  ASSERT_TRUE(listing.ok());
  for (absl::string_view name :
       absl::StrSplit(listing->output, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(name, "link_")) continue;
    links.emplace_back(bpf_obj_get(absl::StrCat(web_pins, "/", name).c_str()));
    ASSERT_TRUE(links.back().valid()) << name;
  }
  ASSERT_FALSE(links.empty()) << listing->output;
  bool sabotaged = false;
  for (int i = 0; i < 50 && !sabotaged; ++i) {
    RunCommand({"rm", "-rf", web_pins}).IgnoreError();
    sabotaged = symlink("/nonexistent", web_pins.c_str()) == 0;
  }
  ASSERT_TRUE(sabotaged) << strerror(errno);
  for (UniqueFd& link : links) ASSERT_EQ(bpf_link_detach(link.get()), 0);

  nlohmann::json web;
  int status_exit = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    absl::SleepFor(absl::Milliseconds(50));
    web = Target("web", &status_exit);
  } while (!web.contains("degraded") && absl::Now() < deadline);
  ASSERT_TRUE(web.contains("degraded")) << web.dump(2);
  EXPECT_FALSE(web["degraded"].get<std::string>().empty());
  // The same `status` that showed it exits 1. (egressd may repair the
  // links soon after: the record below stays.)
  EXPECT_EQ(status_exit, 1);
  EXPECT_FALSE(Target("db").contains("degraded")) << Target("db").dump();

  std::string metrics = ScrapeMetrics();
  EXPECT_TRUE(
      absl::StrContains(metrics, "egress_target_degraded{target=\"web\"} 1"))
      << metrics;
  EXPECT_TRUE(
      absl::StrContains(metrics, "egress_target_degraded{target=\"db\"} 0"))
      << metrics;
  EXPECT_FALSE(absl::StrContains(metrics, "egress_self_check_failures_total 0"))
      << metrics;

  CommandResult events =
      Ctl({"events", "--target", "web", "--last", "1000", "-o", "json"});
  EXPECT_TRUE(absl::StrContains(events.output, "\"self_check_failed\""))
      << events.output;
  CommandResult db_events =
      Ctl({"events", "--target", "db", "--last", "1000", "-o", "json"});
  EXPECT_FALSE(absl::StrContains(db_events.output, "self_check_failed"))
      << db_events.output;
  // The probes' own refused connects are marked as the probe's.
  EXPECT_TRUE(absl::StrContains(db_events.output, "egress-probe"))
      << db_events.output;
  unlink(web_pins.c_str());
}

}  // namespace
}  // namespace egress::testing
