// UDP through the sendmsg4/6 and connect4/6 hooks: every way a datagram can
// name its destination, and the server exemption (replies to peers that sent
// first, recorded by recvmsg4/6).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class UdpTest : public EgressdTest {
 protected:
  void Allow(const std::string& spec, const std::string& dest) {
    CtlOk({"allow", spec, dest});
  }
};

TEST_F(UdpTest, SendtoWithoutConnect) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  Allow("40053/udp", "::1");
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.53", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.54", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.53", 40054); }));
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("::1", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("::1", 40054); }));
  // A TCP rule does not open UDP.
  CtlOk({"allow", "40060/tcp", "127.0.0.53"});
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.53", 40060); }));
}

TEST_F(UdpTest, ConnectedUdp) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  EXPECT_ALLOWED(
      InCgroup([] { return UdpConnectThenSend("127.0.0.53", 40053); }));
  EXPECT_DENIED(
      InCgroup([] { return UdpConnectThenSend("127.0.0.54", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpConnectThenSend("::1", 40053); }));
}

TEST_F(UdpTest, Sendmmsg) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  EXPECT_ALLOWED(InCgroup([] { return UdpSendmmsg("127.0.0.53", 40053, 16); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendmmsg("127.0.0.54", 40053, 16); }));
}

TEST_F(UdpTest, UnspecSockaddrOnIpv4Socket) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  // UDP treats an AF_UNSPEC destination as IPv4: it must not skip the check.
  EXPECT_ALLOWED(InCgroup([] { return UdpSendtoUnspec("127.0.0.53", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendtoUnspec("127.0.0.54", 40053); }));
}

TEST_F(UdpTest, Ipv4SockaddrOnIpv6Socket) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  EXPECT_ALLOWED(
      InCgroup([] { return UdpSendtoFromV6Socket("127.0.0.53", 40053); }));
  EXPECT_DENIED(
      InCgroup([] { return UdpSendtoFromV6Socket("127.0.0.54", 40053); }));
}

TEST_F(UdpTest, Ipv4MappedSendto) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  CtlOk({"deny", "any", "127.0.0.66"});
  Allow("any", "127.0.0.0/8");
  // sendto(::ffff:a.b.c.d) reaches sendmsg4; connect() of the same reaches
  // connect6. Both are matched as IPv4.
  EXPECT_ALLOWED(
      InCgroup([] { return UdpSendto("::ffff:127.0.0.53", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("::ffff:127.0.0.66", 40053); }));
  EXPECT_ALLOWED(
      InCgroup([] { return UdpConnectThenSend("::ffff:127.0.0.53", 40053); }));
  EXPECT_DENIED(
      InCgroup([] { return UdpConnectThenSend("::ffff:127.0.0.66", 40053); }));
}

TEST_F(UdpTest, IoUringSendmsg) {
  AddTarget("web");
  Allow("40053/udp", "127.0.0.53");
  EXPECT_ALLOWED(
      InCgroup([] { return IoUringUdpSendmsg("127.0.0.53", 40053); }));
  EXPECT_DENIED(
      InCgroup([] { return IoUringUdpSendmsg("127.0.0.54", 40053); }));
}

// A UDP server inside the target: the test process (outside) is the client.
// The client keeps sending until the server has answered or time runs out.
struct ReplyOutcome {
  std::vector<int> server;  // results reported by the server child
  bool client_got_reply = false;
};

ReplyOutcome ServeOnce(
    const std::string& cgroup_dir, uint16_t port,
    std::function<std::vector<int>(int fd, const sockaddr_in&)> serve) {
  ReplyOutcome out;
  int client = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000001);  // client at 127.0.0.1
  bind(client, reinterpret_cast<sockaddr*>(&src), sizeof(src));
  std::atomic<bool> done{false};
  std::thread sender([&] {
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(0x7f000002);  // server at 127.0.0.2
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!done.load() && absl::Now() < deadline) {
      sendto(client, "ping", 4, 0, reinterpret_cast<sockaddr*>(&dst),
             sizeof(dst));
      pollfd p{client, POLLIN, 0};
      if (poll(&p, 1, 20) > 0) {
        char buf[16];
        if (recv(client, buf, sizeof(buf), 0) > 0) out.client_got_reply = true;
      }
    }
  });
  auto r = RunInCgroupMulti(cgroup_dir, [&]() -> std::vector<int> {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    sockaddr_in me{};
    me.sin_family = AF_INET;
    me.sin_port = htons(port);
    me.sin_addr.s_addr = htonl(0x7f000002);
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0)
      return {-errno};
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 4000) <= 0) return {-ETIMEDOUT};
    char buf[16];
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer),
                 &len) < 0) {
      return {-errno};
    }
    return serve(fd, peer);
  });
  // Give the client a moment to read the reply before stopping.
  absl::SleepFor(absl::Milliseconds(100));
  done = true;
  sender.join();
  close(client);
  if (r.ok()) out.server = *r;
  return out;
}

int SendTo(int fd, const sockaddr_in& to) {
  return sendto(fd, "pong", 4, 0, reinterpret_cast<const sockaddr*>(&to),
                sizeof(to)) < 0
             ? errno
             : 0;
}

TEST_F(UdpTest, ServerRepliesToPeersOnly) {
  AddTarget("dns");
  ReplyOutcome o =
      ServeOnce(cg_->path(), 40153, [](int fd, const sockaddr_in& peer) {
        sockaddr_in stranger = peer;
        stranger.sin_addr.s_addr = htonl(0x7f000063);  // 127.0.0.99 never sent
        sockaddr_in other_port = peer;
        other_port.sin_port = htons(ntohs(peer.sin_port) ^ 1);
        return std::vector<int>{SendTo(fd, peer), SendTo(fd, stranger),
                                SendTo(fd, other_port)};
      });
  ASSERT_EQ(o.server.size(), 3u) << (o.server.empty() ? 0 : o.server[0]);
  EXPECT_EQ(o.server[0], 0) << "the reply to the client was refused";
  EXPECT_EQ(o.server[1], EPERM) << "an unsolicited datagram was let out";
  EXPECT_EQ(o.server[2], EPERM) << "another port of the peer was let through";
  EXPECT_TRUE(o.client_got_reply);
  EXPECT_EQ(Counters("dns")["udp_replies"], 1);
}

// Some QUIC servers answer from a per-client socket bound to the same port
// and connected to the client. That is not the socket that received: the
// reply exemption is tied to the receiving socket (a peer made up elsewhere
// must not open another socket), so such a server needs a rule.
TEST_F(UdpTest, PerClientConnectedSocketNeedsARule) {
  AddTarget("quic");
  auto serve = [&](uint16_t port) {
    return ServeOnce(cg_->path(), port, [port](int, const sockaddr_in& peer) {
      auto connected = [port](const sockaddr_in& to) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        sockaddr_in me{};
        me.sin_family = AF_INET;
        me.sin_port = htons(port);
        me.sin_addr.s_addr = htonl(0x7f000002);
        if (bind(s, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0)
          return -errno;
        int rc =
            connect(s, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0
                ? 0
                : errno;
        if (rc == 0 && send(s, "pong", 4, 0) < 0) rc = errno;
        close(s);
        return rc;
      };
      sockaddr_in stranger = peer;
      stranger.sin_addr.s_addr = htonl(0x7f000063);
      return std::vector<int>{connected(peer), connected(stranger)};
    });
  };
  ReplyOutcome o = serve(40443);
  ASSERT_EQ(o.server.size(), 2u);
  EXPECT_EQ(o.server[0], EPERM) << "another socket answered the peer";
  EXPECT_EQ(o.server[1], EPERM);
  EXPECT_FALSE(o.client_got_reply);
  // With a rule for the clients, the per-client socket works.
  Allow("udp", "127.0.0.1");
  o = serve(40444);
  ASSERT_EQ(o.server.size(), 2u);
  EXPECT_EQ(o.server[0], 0);
  EXPECT_EQ(o.server[1], EPERM);
  EXPECT_TRUE(o.client_got_reply);
}

TEST_F(UdpTest, ExplicitDenyBeatsReply) {
  AddTarget("dns");
  CtlOk({"deny", "udp", "127.0.0.1"});
  ReplyOutcome o =
      ServeOnce(cg_->path(), 40154, [](int fd, const sockaddr_in& peer) {
        return std::vector<int>{SendTo(fd, peer)};
      });
  ASSERT_EQ(o.server.size(), 1u);
  EXPECT_EQ(o.server[0], EPERM);
  EXPECT_FALSE(o.client_got_reply);
}

}  // namespace
}  // namespace egress::testing
