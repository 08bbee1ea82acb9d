// The field self-check's plan: which destination a target's policy denies
// (as the kernel decides, via the compiled set), and what a probe's connect
// outcome says.
#include "userspace/daemon/self_check_plan.h"

#include <errno.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

policy::CompiledRuleset Compiled(std::vector<policy::Rule> rules) {
  for (size_t i = 0; i < rules.size(); ++i) rules[i].id = i + 1;
  auto c = policy::Compile(7, rules);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : policy::CompiledRuleset{};
}

TEST(SelfCheckPlanTest, PicksTheFirstDocumentationAddressThePolicyDenies) {
  auto none = DeniedProbeDestination(policy::CompiledRuleset{});
  ASSERT_TRUE(none.has_value());  // no rules: everything is denied
  EXPECT_EQ(none->text, "192.0.2.1:9/tcp");

  auto some = DeniedProbeDestination(
      Compiled({Allow({"9/tcp", "192.0.2.0/24"}), Allow({"https"})}));
  ASSERT_TRUE(some.has_value());
  EXPECT_EQ(some->text, "198.51.100.1:9/tcp");
  EXPECT_EQ(some->port, 9);

  // A policy that allows every probe destination leaves nothing to probe.
  EXPECT_FALSE(DeniedProbeDestination(Compiled({Allow({"9/tcp"})})));
}

TEST(SelfCheckPlanTest, OnlyEpermProvesTheHookDecided) {
  ProbeDestination d;
  d.text = "192.0.2.1:9/tcp";
  EXPECT_EQ(ProbeVerdict(EPERM, d), "");
  EXPECT_THAT(ProbeVerdict(ENETUNREACH, d),
              HasSubstr("192.0.2.1:9/tcp from inside the target's cgroup was "
                        "not refused by its hook (ENETUNREACH)"));
  EXPECT_THAT(ProbeVerdict(0, d), HasSubstr("(it connected)"));
}

}  // namespace
}  // namespace egress::testing
