// `egressctl run --user`: the command runs as that user with no
// capabilities, so it cannot move itself out of its cgroup (and its
// policy); under sudo it runs as sudo's caller; left root, egressctl warns.
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "userspace/common/mountinfo.h"

namespace egress::testing {
namespace {

class RunUserTest : public EgressdTest {
 protected:
  void SetUp() override {
    // sudo's variables of whoever runs the tests must not pick the user.
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    EgressdTest::SetUp();
  }
  void TearDown() override {
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    EgressdTest::TearDown();
  }

  CommandResult Run(std::vector<std::string> options,
                    const std::string& script) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    for (const char* a : {"--", "sh", "-c"}) args.push_back(a);
    args.push_back(script);
    return Ctl(args);
  }
};

TEST_F(RunUserTest, CommandAsAnotherUserCannotLeaveItsCgroup) {
  absl::StatusOr<std::string> root = Cgroup2Root();
  ASSERT_TRUE(root.ok()) << root.status();
  const CommandResult r =
      Run({"--user", "65534"},
          absl::StrCat("id -u; id -g; echo $$ > ", *root,
                       "/cgroup.procs && echo moved || echo stayed; "
                       "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' "
                       "/proc/self/status"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "65534\n65534\n")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "Permission denied")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "stayed")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "moved")) << r.output;
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_TRUE(
        absl::StrContains(r.output, absl::StrCat(cap, ":\t0000000000000000")))
        << cap << ": " << r.output;
  }
  EXPECT_TRUE(absl::StrContains(r.output, "NoNewPrivs:\t1")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "warning")) << r.output;
}

TEST_F(RunUserTest, SudoCallerIsTheDefaultUser) {
  setenv("SUDO_UID", "65534", 1);
  setenv("SUDO_GID", "65534", 1);
  const CommandResult r = Run({}, "id -u; id -g");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "65534\n65534\n")) << r.output;
  // --user wins over sudo's caller.
  const CommandResult root = Run({"--user", "0"}, "id -u");
  EXPECT_EQ(root.exit_code, 0) << root.output;
  EXPECT_TRUE(absl::StrContains(root.output, "0\n")) << root.output;
}

TEST_F(RunUserTest, RootWithoutUserIsWarnedOnce) {
  const CommandResult r = Run({}, "id -u");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "egressctl run: warning: the command runs as root"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "--user USER")) << r.output;
  const CommandResult bad = Run({"--user", "no-such-user-here"}, "true");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(absl::StrContains(bad.output, "no user 'no-such-user-here'"))
      << bad.output;
}

}  // namespace
}  // namespace egress::testing
