// The state database removed while egressd runs (a cleanup job, an
// operator's mistake): a change is acknowledged only once it is in a file a
// start reads. egressd re-creates the database from the one it holds open
// and says so, or refuses the change saying why; a restart then finds every
// target and rule by name, not as rule-less orphans.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"

namespace egress::testing {
namespace {

class StateRemovedTest : public EgressdTest {
 protected:
  void RemoveStateFiles() {
    for (const char* file : {"/state.db", "/state.db-wal", "/state.db-shm"}) {
      ASSERT_EQ(unlink((state_dir_ + file).c_str()), 0)
          << file << ": " << strerror(errno);
    }
  }
  // Each target of `egressctl list`, by name: how many rules it has.
  std::map<std::string, size_t> RulesByTarget() {
    std::map<std::string, size_t> out;
    const nlohmann::json list = CtlJson({"list"});
    for (const nlohmann::json& t : list["targets"]) {
      out[t["target"].get<std::string>()] = t["rules"].size();
    }
    return out;
  }
};

TEST_F(StateRemovedTest, ChangesAfterTheDatabaseIsRemovedSurviveARestart) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> other,
                       TestCgroup::Create("priv-removed"));
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "-t", "web"});
  RemoveStateFiles();

  CtlOk({"allow", "40002/tcp", "127.0.0.2", "-t", "web"});
  AddTarget("t2", other.get(), "audit");
  CtlOk({"allow", "40003/tcp", "127.0.0.2", "-t", "t2"});
  EXPECT_EQ(access((state_dir_ + "/state.db").c_str(), F_OK), 0);
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "state.db was removed"))
      << DaemonLog();
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "re-created it")) << DaemonLog();

  StopDaemon(SIGTERM);
  StartDaemon();
  const std::map<std::string, size_t> want = {{"t2", 1}, {"web", 2}};
  EXPECT_EQ(RulesByTarget(), want);
  const nlohmann::json targets = CtlJson({"target", "list"})["targets"];
  for (const nlohmann::json& t : targets) {
    EXPECT_FALSE(t.value("orphan", false)) << t.dump();
    if (t["name"] == "t2") {
      EXPECT_EQ(t["mode"], "audit") << t.dump();
    }
  }
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40004); }));
  // And the targets take changes by name again.
  CtlOk({"allow", "40004/tcp", "127.0.0.2", "-t", "web"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40004); }));
}

TEST_F(StateRemovedTest, AChangeThatCannotBeSavedIsRefusedUntilItCanBe) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "-t", "web"});
  RemoveStateFiles();
  // Something in the way of the new copy (a directory where it goes).
  const std::string blocker = state_dir_ + "/state.db.recreating";
  ASSERT_EQ(mkdir(blocker.c_str(), 0700), 0) << strerror(errno);
  ASSERT_EQ(mkdir((blocker + "/x").c_str(), 0700), 0) << strerror(errno);

  CommandResult refused = Ctl({"allow", "40002/tcp", "127.0.0.2", "-t", "web"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_TRUE(absl::StrContains(refused.output, "state.db was removed"))
      << refused.output;
  EXPECT_TRUE(absl::StrContains(refused.output, "do not restart"))
      << refused.output;
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_EQ(RulesByTarget().at("web"), 1u);

  ASSERT_OK(RemoveTree(blocker));
  CtlOk({"allow", "40002/tcp", "127.0.0.2", "-t", "web"});
  StopDaemon(SIGTERM);
  StartDaemon();
  EXPECT_EQ(RulesByTarget(), (std::map<std::string, size_t>{{"web", 2}}));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
}

}  // namespace
}  // namespace egress::testing
