// Socket kinds that skip the address hooks: raw and ping sockets are refused
// at creation (cgroup/sock_create) unless the policy allows them; ping echo
// requests are checked per destination in cgroup_skb/egress; AF_PACKET is a
// known limit that `status` warns about.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

// Sends one echo request from a ping socket without connect() and waits up
// to a second for the reply: 0 when it came back, ETIMEDOUT when the request
// never left, or the errno of sendto. (IPv6 ping drops are not reported to
// sendto by the kernel, so the reply is the proof.)
int PingRoundTrip(const std::string& addr) {
  bool v6 = addr.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM,
                  v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP});
  if (fd < 0) return errno;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  uint8_t pkt[16] = {static_cast<uint8_t>(v6 ? 128 : 8), 0, 0, 0, 0, 0, 0, 1};
  int rc = 0;
  if (sendto(fd, pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&ss), len) <
      0) {
    rc = errno;
  } else {
    pollfd p{fd, POLLIN, 0};
    rc = poll(&p, 1, 1000) == 1 ? 0 : ETIMEDOUT;
  }
  close(fd);
  return rc;
}

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
  EXPECT_EQ(InCgroup([] { return PingRoundTrip("127.0.0.2"); }), 0);
  EXPECT_NE(InCgroup([] { return PingRoundTrip("127.0.0.3"); }), 0);
  EXPECT_EQ(InCgroup([] { return PingRoundTrip("::1"); }), 0);
  CtlOk({"deny", "icmp", "::1"});
  EXPECT_EQ(InCgroup([] { return PingRoundTrip("::1"); }), ETIMEDOUT);
  // Every refused echo request is counted.
  EXPECT_EQ(Counters("web")["denied"], 3);
}

// UDP-Lite's connect() runs no hook and its connected send() passes no
// sendmsg hook: a policy could never decide it, so it cannot be created.
int UdpLiteConnectSend(const std::string& v4, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
  if (fd < 0) return errno;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, v4.c_str(), &to.sin_addr);
  int rc = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
      send(fd, "x", 1, 0) < 0) {
    rc = errno;
  }
  close(fd);
  return rc;
}

TEST_F(SocketKindsTest, OtherInetProtocolsRefused) {
  ASSERT_EQ(UdpLiteConnectSend("127.0.0.2", 40053), 0)
      << "UDP-Lite should work outside enforcement";
  AddTarget("web");
  CtlOk({"allow", "any"});
  EXPECT_EQ(InCgroup([] { return UdpLiteConnectSend("127.0.0.2", 40053); }),
            EPERM);
  EXPECT_EQ(InCgroup([] { return UdpLiteConnectSend("10.255.255.1", 40053); }),
            EPERM);
  // Plain TCP and UDP sockets, with protocol 0 or named, are fine.
  EXPECT_EQ(InCgroup([] {
              int a = socket(AF_INET, SOCK_STREAM, 0);
              int b = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
              int c = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
              int rc = (a < 0 || b < 0 || c < 0) ? errno : 0;
              close(a);
              close(b);
              close(c);
              return rc;
            }),
            0);
}

TEST_F(SocketKindsTest, PacketSocketIsAKnownLimitAndStatusWarns) {
  AddTarget("web");
  // AF_PACKET passes no inet hook: egress cannot refuse it (documented in
  // docs/bypasses.md). It needs CAP_NET_RAW, which status reports.
  EXPECT_EQ(InCgroup([] { return PacketSocket(); }), 0);
  pid_t pid = StartSleeperInCgroup();
  ASSERT_GT(pid, 0);
  nlohmann::json status = CtlJson({"status"});
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::string warnings = status["targets"][0]["warnings"].dump();
  EXPECT_TRUE(absl::StrContains(warnings, "CAP_NET_RAW")) << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, absl::StrCat("[", pid, "]")))
      << warnings;
}

}  // namespace
}  // namespace egress::testing
