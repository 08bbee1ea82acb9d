// A container target given as an id prefix that more than one container's
// id starts with. Docker's ids are random, so two that share a prefix cannot
// be made on demand; containerd's are the caller's to choose, so these
// tests run plain (no pod) containers in a containerd of their own
// (tests/testing/containerd.h, one per suite), host network, connects to
// loopback only. The `docker` CLI refuses an ambiguous prefix; egressd
// cannot refuse a container, so it enforces every container the prefix
// names, and says in status and its log that the prefix is ambiguous.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/containerd_suite.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/containerd.h"
#include "tests/testing/listeners.h"
#include "tests/testing/status_matchers.h"

namespace egress::testing {
namespace {

class ContainerdIdPrefixTest : public ContainerdSuite {
 protected:
  void SetUp() override {
    ExpectContainerd();
    if (HasFatalFailure()) return;
    // The containers' parent, watched (--container_parent), and a cgroup
    // elsewhere that no watch instance decides for.
    ASSERT_OK_AND_ASSIGN(inside_, TestCgroup::Create("ctr-inside"));
    ASSERT_OK_AND_ASSIGN(outside_, TestCgroup::Create("ctr-outside"));
    extra_daemon_args_ = {"--containerd_socket", containerd_->socket(),
                          "--docker_socket=", "--container_parent",
                          inside_->relative_path()};
    EgressdTest::SetUp();
    CreateListeners();
  }
  void TearDown() override {
    // The containers first (their cgroups live below), then what runc left.
    RemoveStarted();
    for (std::unique_ptr<TestCgroup>* cg : {&inside_, &outside_}) {
      if (*cg == nullptr) continue;
      RemoveV1Trees((*cg)->relative_path());
      EXPECT_OK((*cg)->Remove());
    }
    EgressdTest::TearDown();
  }

  // A container with id `id` sleeping in `parent`/`id`.
  void RunSleeper(const std::string& id, const TestCgroup& parent) {
    auto pid = containerd_->Run(kNamespace, id, kImage, {},
                                {"/bin/busybox", "sleep", "600"},
                                absl::StrCat(parent.relative_path(), "/", id));
    ASSERT_TRUE(pid.ok()) << pid.status();
    started_.push_back(id);
  }

  // The target's entry of `status -o json`.
  nlohmann::json StatusOf(const std::string& target) {
    const nlohmann::json status = CtlJson({"status"});
    for (const nlohmann::json& t : status["targets"]) {
      if (t["name"] == target) return t;
    }
    return {};
  }

  std::unique_ptr<TestCgroup> inside_, outside_;
};

// Two containers whose ids start with the target's prefix: the first runs
// below the watched parent, the second (started later) outside it. Both are
// enforced by the target's policy and listed in its status, which warns
// that the prefix is ambiguous and names both; egressd logs it. Before,
// the prefix selected no container at all once it was ambiguous: the one
// outside the watched parent ran unenforced, and status listed none.
TEST_F(ContainerdIdPrefixTest, AmbiguousPrefixEnforcesEveryMatchAndWarns) {
  // Hex ids of our own, unique per run: the prefix is what they share.
  const std::string prefix = absl::StrFormat("3f2a%06x", getpid());
  const std::string first = prefix + "01";
  const std::string second = prefix + "02";
  CtlOk({"target", "add", "pre", "--container", prefix});
  Allow("pre", allowed_->port());
  RunSleeper(first, *inside_);
  ASSERT_TRUE(WaitRefused(first, denied_->port())) << DaemonLog();
  RunSleeper(second, *outside_);
  // Outside the watched parent it is enforced once egressd has seen it
  // start (its first connects may pass, docs/policy.md); before, never.
  EXPECT_TRUE(WaitRefused(second, denied_->port())) << DaemonLog();
  const int passed = denied_->accepted();
  // The target's, both: refused the denied port, the allowed one passes.
  for (const std::string& id : {first, second}) {
    EXPECT_TRUE(absl::StrContains(ExecConnect(id, denied_->port()), kEperm))
        << id;
    EXPECT_FALSE(absl::StrContains(ExecConnect(id, allowed_->port()), kEperm))
        << id;
  }
  EXPECT_EQ(denied_->accepted(), passed);

  const nlohmann::json pre = StatusOf("pre");
  std::vector<std::string> cgroups;
  for (const nlohmann::json& c :
       pre.value("cgroups", nlohmann::json::array())) {
    cgroups.push_back(c["path"]);
  }
  EXPECT_EQ(cgroups.size(), 2u) << pre.dump(2);
  std::string warnings;
  for (const nlohmann::json& w :
       pre.value("warnings", nlohmann::json::array())) {
    absl::StrAppend(&warnings, w.get<std::string>(), "\n");
  }
  EXPECT_TRUE(absl::StrContains(
      warnings, absl::StrCat("id prefix ", prefix, " is ambiguous")))
      << pre.dump(2);
  // Each by name (containerd's is its id).
  for (const std::string& id : {first, second}) {
    EXPECT_TRUE(absl::StrContains(warnings, id)) << warnings;
  }
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "is ambiguous")) << DaemonLog();
}

}  // namespace
}  // namespace egress::testing
