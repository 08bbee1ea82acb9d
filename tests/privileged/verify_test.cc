// `egressctl verify`: probes from inside the target's cgroup tell an
// enforced policy from one that is configured but not in force.
#include <bpf/bpf.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/target_programs.h"

namespace egress::testing {
namespace {

class VerifyTest : public EgressdTest {
 protected:
  void SetUpPolicy(const std::string& mode) {
    AddTarget("web", nullptr, mode);
    CtlOk({"allow", "40001/tcp", "127.0.0.2"});
    CtlOk({"allow", "dns", "127.0.0.53"});
  }
};

TEST_F(VerifyTest, EnforcedPolicyIsEffective) {
  SetUpPolicy("enforce");
  CommandResult r = Ctl({"verify", "--target", "web"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "Enforcement is effective"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "PASS  allow tcp 127.0.0.2:40001"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "PASS  allow udp 127.0.0.53:53"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "PASS  deny  tcp 127.0.0.1:9"))
      << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "FAIL")) << r.output;

  CommandResult j = Ctl({"verify", "-o", "json"});
  nlohmann::json report = nlohmann::json::parse(j.output, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << j.output;
  EXPECT_TRUE(report["effective"].get<bool>());
  EXPECT_EQ(report["probes"].size(), 7u) << report;  // 3 allow + 4 deny
  // The probes were decided by the kernel: counted as such.
  EXPECT_GE(Counters("web")["denied"].get<uint64_t>(), 4u);
}

TEST_F(VerifyTest, AuditModeIsReportedAsNotInForce) {
  SetUpPolicy("audit");
  CommandResult r = Ctl({"verify"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "NOT IN FORCE")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "audit mode")) << r.output;
  // No probe: each would pass, and be learned as the target's own traffic.
  EXPECT_TRUE(absl::StrContains(r.output, "no probes")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "127.0.0.1:9")) << r.output;
  // A connect of the target's own after verify: once suggest shows it, the
  // records before it (the ring buffer is in order) were learned too.
  InCgroup([] { return TcpConnect("127.0.0.3", 40009); });
  std::string suggested;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         !absl::StrContains(suggested, "127.0.0.3/32")) {
    absl::SleepFor(absl::Milliseconds(200));
    suggested = CtlOk({"suggest", "--target", "web"});
  }
  ASSERT_TRUE(absl::StrContains(suggested, "127.0.0.3/32")) << suggested;
  EXPECT_FALSE(absl::StrContains(suggested, "192.0.2.")) << suggested;
  EXPECT_FALSE(absl::StrContains(suggested, "127.0.0.1/32")) << suggested;
}

TEST_F(VerifyTest, DetachedProgramsAreCaught) {
  SetUpPolicy("enforce");
  // Someone with CAP_NET_ADMIN detached the links (removing a pin alone
  // detaches nothing: egressd holds them) and put a dangling symlink where
  // the program pins were, so egressd can neither pin them again from its
  // held links nor load and re-attach them.
  std::string targets =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/targets");
  std::vector<UniqueFd> links;
  for (const HookSpec& h : AllHooks()) {
    links.emplace_back(
        bpf_obj_get(absl::StrCat(targets, "/1/link_", h.name).c_str()));
    ASSERT_TRUE(links.back().valid()) << h.name;
  }
  // egressd makes removed pins again: retry (bounded) until the symlink
  // wins the race with a repair.
  bool sabotaged = false;
  for (int i = 0; i < 50 && !sabotaged; ++i) {
    RunCommand({"rm", "-rf", targets}).IgnoreError();
    sabotaged = symlink("/nonexistent", targets.c_str()) == 0;
  }
  ASSERT_TRUE(sabotaged) << strerror(errno);
  for (UniqueFd& link : links) ASSERT_EQ(bpf_link_detach(link.get()), 0);
  CommandResult r;
  for (int i = 0; i < 100; ++i) {  // links are released asynchronously
    r = Ctl({"verify"});
    if (absl::StrContains(r.output, "should be denied but got through")) break;
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "hooks are attached")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "should be denied but got through"))
      << r.output;
}

}  // namespace
}  // namespace egress::testing
