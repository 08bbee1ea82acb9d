// `egressctl allow ... --for DURATION`: egressd removes the rule by itself,
// also across a restart, and a rule that ran out while egressd was down is
// gone when it starts again.
#include <errno.h>
#include <signal.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class TemporaryRuleTest : public EgressdTest {};

int ApiConnect() { return TcpConnect("127.0.0.2", 40001); }

TEST_F(TemporaryRuleTest, ExpiresByItself) {
  AddTarget("web");
  CtlOk({"allow", "40002/tcp", "127.0.0.2"});
  std::string out = CtlOk({"allow", "40001/tcp", "127.0.0.2", "--for", "2s"});
  EXPECT_TRUE(absl::StrContains(out, "(until ")) << out;
  EXPECT_ALLOWED(InCgroup(ApiConnect));
  std::string list = CtlOk({"list"});
  EXPECT_TRUE(absl::StrContains(list, "40001/tcp to 127.0.0.2 # (until "))
      << list;

  // Bounded wait: the rule ends 2 s after it was added; egressd checks once
  // a second.
  EXPECT_DENIED(InCgroupUntil(ApiConnect, [](int rc) { return rc == EPERM; }));
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(rules.size(), 1u) << rules;
  EXPECT_EQ(rules[0]["spec"], "40002/tcp");
  EXPECT_FALSE(rules[0].contains("expires"));
  // The permanent rule was never interrupted.
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
}

TEST_F(TemporaryRuleTest, AddingAgainExtendsAndPermanentWins) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--for", "1h"});
  int64_t first = CtlJson({"list"})["targets"][0]["rules"][0]["expires"];
  std::string out = CtlOk({"allow", "40001/tcp", "127.0.0.2", "--for", "2h"});
  EXPECT_TRUE(absl::StrContains(out, "Rule extended")) << out;
  int64_t second = CtlJson({"list"})["targets"][0]["rules"][0]["expires"];
  EXPECT_GE(second - first, 3600 - 5);
  // A shorter duration never shortens it.
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--for", "10m"});
  EXPECT_EQ(CtlJson({"list"})["targets"][0]["rules"][0]["expires"], second);
  // The same rule without --for makes it permanent.
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_FALSE(rules[0].contains("expires"));
}

TEST_F(TemporaryRuleTest, SurvivesRestartAndEndsWhileDown) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--for", "1h"});
  StopDaemon(SIGTERM);
  StartDaemon();
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_GE(rules.size(), 1u) << rules;
  EXPECT_TRUE(rules[0].contains("expires"));
  EXPECT_ALLOWED(InCgroup(ApiConnect));

  // A 2 s rule runs out while egressd is down (killed: no goodbye).
  CtlOk({"allow", "40002/tcp", "127.0.0.2", "--for", "2s"});
  StopDaemon(SIGKILL);
  absl::SleepFor(absl::Seconds(3));
  StartDaemon();
  rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(rules.size(), 1u) << rules;
  EXPECT_EQ(rules[0]["spec"], "40001/tcp");
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_ALLOWED(InCgroup(ApiConnect));
}

}  // namespace
}  // namespace egress::testing
