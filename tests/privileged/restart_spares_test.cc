// A restart of egressd adopts the spare rule sets it finds in the pinned
// maps (Engine::AdoptSparesLocked) instead of sweeping them and writing
// them again: after SIGKILL the spares of two targets with the same rules
// are still there under their ids, one for each target, and the next
// `allow` of each target flips to its own spare; real connects from each
// target's cgroup to loopback show what is enforced.
#include <bpf/bpf.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/ruleset_entries.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/map_walk.h"

namespace egress::testing {
namespace {

class RestartSparesTest : public EgressdTest {
 protected:
  // Entries per ruleset id over every rule map, walked now.
  std::map<uint32_t, size_t> EntriesByRuleset() {
    return egress::EntriesByRuleset(
        absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps"));
  }
  static std::set<uint32_t> Ids(const std::map<uint32_t, size_t>& n) {
    std::set<uint32_t> ids;
    for (const auto& [id, count] : n) ids.insert(id);
    return ids;
  }
  // Waits (bounded: 30 s) until the maps hold `sets` rule sets of the same
  // size: every target's set and a whole spare of each (the targets have
  // the same rules). Returns them.
  std::map<uint32_t, size_t> AwaitWholeSpares(size_t sets) {
    std::map<uint32_t, size_t> n;
    for (int i = 0; i < 600; ++i) {
      n = EntriesByRuleset();
      bool same = n.size() == sets;
      for (const auto& [id, count] : n) {
        same = same && count == n.begin()->second;
      }
      if (same) return n;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no whole spares: " << n.size() << " rule sets";
    return n;
  }
};

TEST_F(RestartSparesTest, ARestartAfterSigkillAdoptsEachTargetsSpare) {
  // Siblings: a target of a cgroup would also hold its children.
  auto a_cg = cg_->CreateChild("a");
  ASSERT_TRUE(a_cg.ok()) << a_cg.status();
  auto b_cg = cg_->CreateChild("b");
  ASSERT_TRUE(b_cg.ok()) << b_cg.status();
  // The same rules for both (one spare could pass for either's), applied:
  // the spare writer then copies each target's set whole.
  const std::string dir =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/policies";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  for (const auto& [name, cg] :
       {std::pair<std::string, const TestCgroup*>{"a", *a_cg}, {"b", *b_cg}}) {
    std::ofstream(absl::StrCat(dir, "/", name, ".yaml"))
        << PolicyHead(name, cg->relative_path())
        << "  - to:\n"
           "    - ipBlock: {cidr: 127.0.0.2/32}\n"
           "    ports:\n"
           "    - {port: 40001, protocol: TCP}\n"
           "  - to:\n"
           "    - ipBlock: {cidr: 10.2.0.0/16}\n"
           "    ports:\n"
           "    - {port: 443, protocol: TCP}\n";
  }
  CtlOk({"apply", "-f", dir});
  const uint32_t a = TargetId("a"), b = TargetId("b");
  const std::map<uint32_t, size_t> before = AwaitWholeSpares(4);
  const uint32_t a_active = ActiveRuleset(a), b_active = ActiveRuleset(b);
  std::set<uint32_t> spares = Ids(before);
  spares.erase(a_active);
  spares.erase(b_active);
  ASSERT_EQ(spares.size(), 2u);

  StopDaemon(SIGKILL);
  StartDaemon();
  // Nothing swept, nothing written again: the same four sets, as they were.
  EXPECT_EQ(EntriesByRuleset(), before);
  const std::string log = DaemonLog();
  EXPECT_TRUE(absl::StrContains(log, "adopted 2 spare rule sets")) << log;
  EXPECT_FALSE(absl::StrContains(log, "stale rule entries")) << log;
  EXPECT_EQ(ActiveRuleset(a), a_active);
  EXPECT_EQ(ActiveRuleset(b), b_active);

  // Each allow flips its target to a spare of its own (one spare taken by
  // both would be the other target's active set by the second allow).
  CtlOk({"allow", "40002/tcp", "127.0.0.2", "--target", "a"});
  CtlOk({"allow", "40003/tcp", "127.0.0.2", "--target", "b"});
  const uint32_t a_now = ActiveRuleset(a), b_now = ActiveRuleset(b);
  EXPECT_TRUE(spares.contains(a_now)) << a_now;
  EXPECT_TRUE(spares.contains(b_now)) << b_now;
  EXPECT_NE(a_now, b_now);

  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *a_cg));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, *a_cg));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40003); }, *a_cg),
            EPERM);
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *b_cg));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40003); }, *b_cg));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, *b_cg),
            EPERM);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40004); }, *b_cg),
            EPERM);

  // The sets replaced are the spares now: four sets, no fifth.
  std::map<uint32_t, size_t> after;
  for (int i = 0; i < 600; ++i) {
    after = EntriesByRuleset();
    if (Ids(after) == Ids(before)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(Ids(after), Ids(before));
}

}  // namespace
}  // namespace egress::testing
