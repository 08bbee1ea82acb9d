// Room in the real rule maps (F6): a policy whose rule set would not fit
// twice is refused before anything changes, with the numbers; one that fits
// twice can be changed again and again, and a restart adopts its set from
// the maps instead of writing a second copy.
#include <errno.h>
#include <signal.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class RoomTest : public EgressdTest {
 protected:
  // A policy "web" for the test cgroup allowing `hosts` /32s (no ports:
  // tcp, udp and icmp, three rules-map entries each) in 10.<first>.0.0/8
  // onwards.
  std::string WriteHosts(int first, int hosts) {
    std::string path =
        state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
    std::ofstream out(path);
    out << PolicyHead("web", cg_->relative_path()) << "  - to:\n";
    for (int i = 0; i < hosts; ++i) {
      out << "    - ipBlock: {cidr: 10." << first + i / 65536 << "."
          << (i / 256) % 256 << "." << i % 256 << "/32}\n";
    }
    return path;
  }
};

TEST_F(RoomTest, PolicyWithoutRoomForItsSwapCopyIsRefusedWithTheNumbers) {
  // 200,000 /32s = 600,000 entries: fits the 2^20 map once, not twice.
  CommandResult r = Ctl({"apply", "-f", WriteHosts(1, 200000)});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "does not fit the rules map"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "1200000 entries needed"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "1048576 free")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "map capacity 1048576")) << r.output;
  EXPECT_TRUE(CtlJson({"status"})["targets"].empty());
}

TEST_F(RoomTest, HalfFullMapsStillSwitchAndRestartAdoptsWithoutACopy) {
  // 170,000 /32s = 510,000 entries: just under half of the map.
  CtlOk({"apply", "-f", WriteHosts(1, 170000)});
  // Each change writes its set beside the old one, then deletes the old.
  CtlOk({"apply", "-f", WriteHosts(20, 170000)});
  CtlOk({"apply", "-f", WriteHosts(40, 170000)});
  nlohmann::json t = CtlJson({"status"})["targets"][0];
  const uint32_t id = t["id"].get<uint32_t>();
  const uint32_t ruleset = ActiveRuleset(id);
  ASSERT_NE(ruleset, 0u);
  StopDaemon(SIGKILL);
  StartDaemon();
  // Adopted as it is: the same set, no second copy was written.
  EXPECT_EQ(ActiveRuleset(id), ruleset);
  t = CtlJson({"status"})["targets"][0];
  EXPECT_TRUE(t["attached"].get<bool>()) << t.dump();
  // Still enforced: loopback is not in the policy.
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
}

}  // namespace
}  // namespace egress::testing
