// Unspecified destinations (0.0.0.0, ::, ::ffff:0.0.0.0) are not loopback:
// the kernel sends them to the source address of the send (the bound
// address, or an IP_PKTINFO source), to 127.0.0.1 when there is none, and
// `::` from a socket bound to an IPv4-mapped address to IPv4 127.0.0.1.
// egress decides them as that address and rewrites the destination to it,
// so what is checked is what is reached. The listeners are the proof: they
// must see nothing the policy does not allow.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

int Errno() { return errno; }

// A socket of `type` bound to bind_addr:0 (an AF_INET6 socket is dual stack,
// or IPv6-only when `v6only`), or -errno.
int BoundSocket(int type, const SockAddr& bind_addr, bool v6only = false) {
  int fd = socket(bind_addr.family(), type, 0);
  if (fd < 0) return -Errno();
  if (bind_addr.family() == AF_INET6) {
    int v = v6only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v));
  }
  if (bind(fd, bind_addr.get(), bind_addr.len) != 0) {
    int e = Errno();
    close(fd);
    return -e;
  }
  return fd;
}

// Each probe: 0 (or ECONNREFUSED) when it got through, else the errno.
int TcpConnectFrom(const SockAddr& src, const SockAddr& dst) {
  int fd = BoundSocket(SOCK_STREAM, src);
  if (fd < 0) return -fd;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  int rc = 0;
  if (connect(fd, dst.get(), dst.len) != 0) {
    rc = Errno();
    if (rc == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, 2000) == 1 ? 0 : ETIMEDOUT;
      socklen_t len = sizeof(int);
      if (rc == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &len);
    }
  }
  close(fd);
  return rc;
}

int UdpConnectFrom(const SockAddr& src, const SockAddr& dst) {
  int fd = BoundSocket(SOCK_DGRAM, src);
  if (fd < 0) return -fd;
  int rc = connect(fd, dst.get(), dst.len) != 0 ? Errno()
           : send(fd, "c", 1, 0) < 0            ? Errno()
                                                : 0;
  close(fd);
  return rc;
}

int UdpSendtoFrom(const SockAddr& src, const SockAddr& dst) {
  int fd = BoundSocket(SOCK_DGRAM, src);
  if (fd < 0) return -fd;
  int rc = sendto(fd, "s", 1, 0, dst.get(), dst.len) < 0 ? Errno() : 0;
  close(fd);
  return rc;
}

// Unbound IPv4 socket; sendmsg() to `dst` with an IP_PKTINFO source.
int UdpSendmsgWithPktinfo(const std::string& source, const SockAddr& dst) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return Errno();
  in_addr from{};
  inet_pton(AF_INET, source.c_str(), &from);
  int rc = UdpSendFromSource(fd, dst.get(), dst.len, from, "p") ? 0 : Errno();
  close(fd);
  return rc;
}

SockAddr Addr(const std::string& a, uint16_t port = 0) {
  auto s = ParseSockAddr(a, port);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : SockAddr{};
}

class UnspecifiedDestTest : public EgressdTest {
 protected:
  // TCP and UDP listeners on `addr` (outside the target).
  void Listen(const std::string& addr) {
    auto tcp = TcpListener::Create(addr, 0, TcpListener::Mode::kDiscard);
    ASSERT_TRUE(tcp.ok()) << tcp.status();
    auto udp = UdpEchoServer::Create(addr, 0);
    ASSERT_TRUE(udp.ok()) << udp.status();
    tcp_ = *std::move(tcp);
    udp_ = *std::move(udp);
  }
  // Lets stragglers arrive, then expects the listeners to have seen exactly
  // this much.
  void ExpectArrived(int connections, int datagrams) {
    if (connections > 0) tcp_->WaitForAccepted(connections);
    if (datagrams > 0) udp_->WaitForDatagrams(datagrams);
    absl::SleepFor(absl::Milliseconds(200));
    EXPECT_EQ(tcp_->accepted(), connections);
    EXPECT_EQ(udp_->datagrams(), datagrams);
  }
  std::unique_ptr<TcpListener> tcp_;
  std::unique_ptr<UdpEchoServer> udp_;
};

TEST_F(UnspecifiedDestTest, BoundSourceIsWhere0000Goes) {
  ASSERT_NO_FATAL_FAILURE(Listen("127.0.0.3"));
  AddTarget("web");
  CtlOk({"allow", "any", "127.0.0.1"});  // and nothing else
  const SockAddr src = Addr("127.0.0.3");
  const SockAddr tcp_dst = Addr("0.0.0.0", tcp_->port());
  const SockAddr udp_dst = Addr("0.0.0.0", udp_->port());
  EXPECT_DENIED(InCgroup([&] { return TcpConnectFrom(src, tcp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpConnectFrom(src, udp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpSendtoFrom(src, udp_dst); }));
  EXPECT_DENIED(
      InCgroup([&] { return UdpSendmsgWithPktinfo("127.0.0.3", udp_dst); }));
  ExpectArrived(0, 0);
}

TEST_F(UnspecifiedDestTest, MappedUnspecifiedGoesToTheMappedSource) {
  ASSERT_NO_FATAL_FAILURE(Listen("127.0.0.3"));
  AddTarget("web");
  CtlOk({"allow", "any", "127.0.0.1"});
  CtlOk({"allow", "any", "::1"});
  const SockAddr src = Addr("::ffff:127.0.0.3");
  const SockAddr tcp_dst = Addr("::ffff:0.0.0.0", tcp_->port());
  const SockAddr udp_dst = Addr("::ffff:0.0.0.0", udp_->port());
  EXPECT_DENIED(InCgroup([&] { return TcpConnectFrom(src, tcp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpConnectFrom(src, udp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpSendtoFrom(src, udp_dst); }));
  ExpectArrived(0, 0);
}

TEST_F(UnspecifiedDestTest, AnyFromMappedSourceIsIpv4Loopback) {
  ASSERT_NO_FATAL_FAILURE(Listen("127.0.0.1"));
  AddTarget("web");
  CtlOk({"allow", "any", "::1"});  // IPv6 loopback only
  const SockAddr src = Addr("::ffff:127.0.0.1");
  const SockAddr tcp_dst = Addr("::", tcp_->port());
  const SockAddr udp_dst = Addr("::", udp_->port());
  EXPECT_DENIED(InCgroup([&] { return TcpConnectFrom(src, tcp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpConnectFrom(src, udp_dst); }));
  EXPECT_DENIED(InCgroup([&] { return UdpSendtoFrom(src, udp_dst); }));
  ExpectArrived(0, 0);
}

TEST_F(UnspecifiedDestTest, AllowedSourceStillWorks) {
  ASSERT_NO_FATAL_FAILURE(Listen("127.0.0.1"));
  auto tcp6 = TcpListener::Create("::1", 0, TcpListener::Mode::kDiscard);
  ASSERT_TRUE(tcp6.ok()) << tcp6.status();
  auto udp6 = UdpEchoServer::Create("::1", 0);
  ASSERT_TRUE(udp6.ok()) << udp6.status();
  AddTarget("web");
  CtlOk({"allow", "any", "127.0.0.1"});
  CtlOk({"allow", "any", "::1"});
  const SockAddr src = Addr("127.0.0.1");
  const SockAddr any4 = Addr("0.0.0.0");
  const SockAddr any6 = Addr("::");
  const SockAddr mapped_src = Addr("::ffff:127.0.0.1");
  const SockAddr tcp_dst = Addr("0.0.0.0", tcp_->port());
  const SockAddr udp_dst = Addr("0.0.0.0", udp_->port());
  EXPECT_ALLOWED(InCgroup([&] { return TcpConnectFrom(src, tcp_dst); }));
  EXPECT_ALLOWED(InCgroup([&] { return TcpConnectFrom(any4, tcp_dst); }));
  EXPECT_ALLOWED(InCgroup(
      [&] { return TcpConnectFrom(mapped_src, Addr("::", tcp_->port())); }));
  EXPECT_ALLOWED(InCgroup([&] { return UdpConnectFrom(src, udp_dst); }));
  EXPECT_ALLOWED(InCgroup([&] { return UdpSendtoFrom(src, udp_dst); }));
  EXPECT_ALLOWED(InCgroup([&] { return UdpSendtoFrom(any4, udp_dst); }));
  EXPECT_ALLOWED(
      InCgroup([&] { return UdpSendmsgWithPktinfo("127.0.0.1", udp_dst); }));
  ExpectArrived(3, 4);
  // `::` from an unbound IPv6 socket goes to ::1.
  EXPECT_ALLOWED(InCgroup(
      [&] { return TcpConnectFrom(any6, Addr("::", (*tcp6)->port())); }));
  EXPECT_ALLOWED(InCgroup(
      [&] { return UdpSendtoFrom(any6, Addr("::", (*udp6)->port())); }));
  EXPECT_TRUE((*tcp6)->WaitForAccepted(1));
  EXPECT_TRUE((*udp6)->WaitForDatagrams(1));
}

}  // namespace
}  // namespace egress::testing
