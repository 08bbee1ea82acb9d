// cgroupPattern targets: every matching cgroup is enforced, including ones
// created after the target, and nothing else; restart and reboot-like
// restart re-attach every match; removal lifts all of them.
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

int Api() { return TcpConnect("127.0.0.2", 40001); }
int Other() { return TcpConnect("127.0.0.2", 40002); }

class PatternTest : public EgressdTest {
 protected:
  TestCgroup* Child(const std::string& name) {
    auto c = cg_->CreateChild(name);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : nullptr;
  }
  std::string Pattern() const { return cg_->relative_path() + "/ctr-*"; }

  // Polls (bounded) until a connect from `cg` to `fn` gets `want`.
  int WaitFor(int want, int (*fn)(), const TestCgroup* cg) {
    return InCgroupUntil(
        fn, [want](int rc) { return rc == want; }, cg);
  }

  std::vector<std::string> MatchedCgroups() {
    std::vector<std::string> out;
    nlohmann::json list = CtlJson({"target", "list"});
    for (const auto& t : list["targets"]) {
      for (const auto& c : t["cgroups"]) out.push_back(c["path"]);
    }
    return out;
  }
};

TEST_F(PatternTest, EveryMatchIncludingLaterOnesAndNothingElse) {
  TestCgroup* a = Child("ctr-a");
  TestCgroup* other = Child("sidecar");
  ASSERT_TRUE(a && other);
  CtlOk({"target", "add", "ctrs", "--pattern", Pattern()});
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup(Api, a));
  EXPECT_DENIED(InCgroup(Other, a));
  // Not matching: untouched.
  EXPECT_ALLOWED(InCgroup(Other, other));

  // A container started later is enforced without any command.
  TestCgroup* b = Child("ctr-b");
  ASSERT_TRUE(b);
  EXPECT_EQ(WaitFor(EPERM, Other, b), EPERM);
  EXPECT_ALLOWED(InCgroup(Api, b));
  EXPECT_EQ(MatchedCgroups(),
            (std::vector<std::string>{a->relative_path(), b->relative_path()}));
  nlohmann::json t = CtlJson({"target", "list"})["targets"][0];
  EXPECT_TRUE(t["attached"].get<bool>()) << t;
  EXPECT_EQ(t["hooks_attached"], t["hooks_total"]);

  // Records name the container's cgroup.
  CommandResult events =
      Ctl({"events", "--verdict", "deny", "--last", "10", "-o", "json"});
  EXPECT_TRUE(absl::StrContains(
      events.output, absl::StrCat("\"path\":\"", b->relative_path(), "\"")))
      << events.output;

  // A container that goes away leaves no link behind.
  ASSERT_TRUE(a->Remove().ok());
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline && MatchedCgroups().size() != 1) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(MatchedCgroups(), (std::vector<std::string>{b->relative_path()}));
  // Its links turn defunct once the kernel releases the cgroup; the next
  // rescan (500 ms) drops them (bounded wait).
  auto link_dirs = [&] {
    auto r =
        RunCommand({"sh", "-c",
                    absl::StrCat("ls -d ", bpffs_dir_, "/v", EGRESS_ABI_VERSION,
                                 "/targets/*/cgroup-* | wc -l")});
    return r.ok() ? r->output : "";
  };
  deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && link_dirs() != "1\n") {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(link_dirs(), "1\n");

  CtlOk({"target", "remove", "ctrs"});
  EXPECT_ALLOWED(InCgroup(Other, b));
}

TEST_F(PatternTest, RestartAndRebootLikeRestartReattachEveryMatch) {
  TestCgroup* a = Child("ctr-a");
  TestCgroup* b = Child("ctr-b");
  ASSERT_TRUE(a && b);
  CtlOk({"target", "add", "ctrs", "--pattern", Pattern()});
  StopDaemon(SIGKILL);
  // Pinned links keep enforcing without egressd.
  EXPECT_DENIED(InCgroup(Other, a));
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  // The "reboot" detached everything (the kernel releases unpinned links
  // asynchronously; nothing listens on the port).
  EXPECT_EQ(WaitFor(ECONNREFUSED, Other, a), ECONNREFUSED);
  TestCgroup* c = Child("ctr-c");  // created while egressd is down
  ASSERT_TRUE(c);
  StartDaemon();
  EXPECT_DENIED(InCgroup(Other, a));
  EXPECT_DENIED(InCgroup(Other, b));
  EXPECT_DENIED(InCgroup(Other, c));
  EXPECT_EQ(MatchedCgroups().size(), 3u);
  // A plain restart adopts: still one program of each kind per cgroup.
  StopDaemon(SIGTERM);
  StartDaemon();
  nlohmann::json t = CtlJson({"target", "list"})["targets"][0];
  EXPECT_EQ(t["hooks_attached"], t["hooks_total"]) << t;
  EXPECT_EQ(t["hooks_total"].get<int>() % 3, 0) << t;
  auto progs = RunCommand({"sh", "-c",
                           absl::StrCat("bpftool cgroup show ", a->path(),
                                        " | grep -c egress_connect4")});
  ASSERT_TRUE(progs.ok());
  EXPECT_EQ(progs->output, "1\n");
}

TEST_F(PatternTest, ApplyAPatternPolicy) {
  TestCgroup* a = Child("ctr-a");
  ASSERT_TRUE(a);
  std::string file = state_dir_.substr(0, state_dir_.rfind('/')) + "/c.yaml";
  std::ofstream(file) << "apiVersion: egress.dev/v1alpha1\n"
                         "kind: EgressPolicy\n"
                         "metadata: {name: containers}\n"
                         "spec:\n"
                         "  target:\n"
                         "    cgroupPattern: "
                      << Pattern()
                      << "\n"
                         "  egress:\n"
                         "  - to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
                         "    ports: [{port: 40001, protocol: TCP}]\n";
  std::string out = CtlOk({"apply", "-f", file});
  EXPECT_TRUE(absl::StrContains(out, "created target containers")) << out;
  EXPECT_ALLOWED(InCgroup(Api, a));
  EXPECT_DENIED(InCgroup(Other, a));
  TestCgroup* b = Child("ctr-b");
  ASSERT_TRUE(b);
  EXPECT_EQ(WaitFor(EPERM, Other, b), EPERM);
  EXPECT_ALLOWED(InCgroup(Api, b));
}

TEST_F(PatternTest, PatternWithoutWildcardIsRefused) {
  CommandResult r = Ctl({"target", "add", "x", "--pattern", "/system.slice"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "has no wildcard")) << r.output;
}

}  // namespace
}  // namespace egress::testing
