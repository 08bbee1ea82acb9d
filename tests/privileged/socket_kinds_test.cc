// Socket kinds that skip the address hooks: raw and ping sockets are refused
// at creation (cgroup/sock_create) unless the policy allows them; ping echo
// requests are checked per destination in cgroup_skb/egress; AF_PACKET is a
// known limit that `status` warns about.
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class SocketKindsTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto previous = EnsurePingAllowed();
    ASSERT_TRUE(previous.ok()) << previous.status();
    previous_ping_range_ = *previous;
  }
  void TearDown() override {
    if (!previous_ping_range_.empty()) {
      EXPECT_TRUE(RestorePingGroupRange(previous_ping_range_).ok());
    }
    EgressdTest::TearDown();
  }
  std::string previous_ping_range_;
};

TEST_F(SocketKindsTest, RawSocketsRefusedUnlessAllowed) {
  ASSERT_EQ(RawSocket(AF_INET), 0) << "root must be able to open raw sockets";
  AddTarget("web");
  CtlOk({"allow", "any"});  // even "any" destination does not mean raw
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET); }), EPERM);
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET6); }), EPERM);
  EXPECT_EQ(Counters("web")["sockets_denied"], 2);
  CtlOk({"allow", "raw"});
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET); }), 0);
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET6); }), 0);
}

TEST_F(SocketKindsTest, PingSocketsRefusedUnlessAllowed) {
  ASSERT_EQ(PingSocket(AF_INET), 0);
  AddTarget("web");
  EXPECT_EQ(InCgroup([] { return PingSocket(AF_INET); }), EPERM);
  EXPECT_EQ(InCgroup([] { return PingSocket(AF_INET6); }), EPERM);
  CtlOk({"allow", "icmp", "127.0.0.2"});
  EXPECT_EQ(InCgroup([] { return PingSocket(AF_INET); }), 0);
  EXPECT_EQ(InCgroup([] { return PingSocket(AF_INET6); }), 0);
  // Ordinary TCP/UDP sockets are never refused at creation.
  CtlOk({"delete", "1"});
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
}

TEST_F(SocketKindsTest, PingSendtoCheckedPerDestination) {
  ASSERT_EQ(PingSendto("127.0.0.2"), 0);
  AddTarget("web");
  CtlOk({"allow", "icmp", "127.0.0.2"});
  CtlOk({"allow", "icmp", "::1"});
  // Unconnected sendto() on a ping socket passes no sendmsg hook: the echo
  // request itself is checked on its way out.
  EXPECT_EQ(InCgroup([] { return PingSendto("127.0.0.2"); }), 0);
  EXPECT_EQ(InCgroup([] { return PingSendto("127.0.0.3"); }), EPERM);
  EXPECT_EQ(InCgroup([] { return PingSendto("::1"); }), 0);
  CtlOk({"deny", "icmp", "::1"});
  EXPECT_EQ(InCgroup([] { return PingSendto("::1"); }), EPERM);
}

TEST_F(SocketKindsTest, PacketSocketIsAKnownLimitAndStatusWarns) {
  AddTarget("web");
  // AF_PACKET passes no inet hook: egress cannot refuse it (documented in
  // docs/bypasses.md). It needs CAP_NET_RAW, which status reports.
  EXPECT_EQ(InCgroup([] { return PacketSocket(); }), 0);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ofstream(cg_->path() + "/cgroup.procs") << getpid();
    close(ready[0]);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    sleep(20);
    _exit(0);
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  nlohmann::json status = CtlJson({"status"});
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::string warnings = status["targets"][0]["warnings"].dump();
  EXPECT_TRUE(absl::StrContains(warnings, "CAP_NET_RAW")) << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, absl::StrCat("[", pid, "]"))) << warnings;
}

}  // namespace
}  // namespace egress::testing
