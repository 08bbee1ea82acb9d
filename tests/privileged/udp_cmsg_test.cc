// A connected UDP socket's send that carries an IP-level cmsg (IP_TOS,
// IPV6_TCLASS: what QUIC stacks send for ECN) takes the kernel's
// unconnected path, which runs the sendmsg4/6 hooks with a zeroed address.
// The datagram still goes to the connected peer, so that peer is what must
// be decided and recorded, not 127.0.0.1 or ::1 on port 0.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr int kTos = 0x02;  // ECT(0), as a QUIC sender marks its packets.
constexpr char kPayload[] = "cmsg";

// connect() to addr:port, then one sendmsg() with no address and a traffic
// class cmsg (IP_TOS for IPv4 and IPv4-mapped peers, IPV6_TCLASS for IPv6).
// 0 or the errno of the failing call.
int ConnectedSendWithTos(const std::string& addr, uint16_t port, bool v4) {
  absl::StatusOr<SockAddr> dst = ParseSockAddr(addr, port);
  if (!dst.ok()) return EINVAL;
  int fd = ::socket(dst->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int err = 0;
  if (::connect(fd, dst->get(), dst->len) != 0) {
    err = errno;
  } else {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov = {const_cast<char*>(kPayload), sizeof(kPayload)};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
    c->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &kTos, sizeof(kTos));
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) err = errno;
  }
  ::close(fd);
  return err;
}

class UdpCmsgTest : public EgressdTest {
 protected:
  // A receiver on addr with an ephemeral port that reports the traffic class
  // of what it reads.
  struct Receiver {
    UniqueFd fd;
    uint16_t port = 0;
  };
  Receiver Listen(const std::string& addr, bool v4) {
    absl::StatusOr<UniqueFd> fd = BindSocket(SOCK_DGRAM, addr, 0);
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (!fd.ok()) return {};
    int on = 1;
    EXPECT_EQ(::setsockopt(fd->get(), v4 ? IPPROTO_IP : IPPROTO_IPV6,
                           v4 ? IP_RECVTOS : IPV6_RECVTCLASS, &on, sizeof(on)),
              0)
        << std::strerror(errno);
    absl::StatusOr<uint16_t> port = LocalPort(fd->get());
    EXPECT_TRUE(port.ok()) << port.status();
    return Receiver{std::move(*fd), port.ok() ? *port : uint16_t{0}};
  }

  // The traffic class of the one datagram `r` reads within 2 s, or -1.
  static int ReadTos(const Receiver& r, bool v4) {
    pollfd p = {r.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return -1;
    char buf[64];
    alignas(cmsghdr) char control[256];
    iovec iov = {buf, sizeof(buf)};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(r.fd.get(), &msg, MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(sizeof(kPayload)) ||
        std::memcmp(buf, kPayload, sizeof(kPayload)) != 0) {
      return -1;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (v4 && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
        return *reinterpret_cast<unsigned char*>(CMSG_DATA(c));
      }
      if (!v4 && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
        int tclass;
        std::memcpy(&tclass, CMSG_DATA(c), sizeof(tclass));
        return tclass;
      }
    }
    return -1;
  }
};

TEST_F(UdpCmsgTest, ConnectedSendWithACmsgReachesItsAllowedPeer) {
  AddTarget("web");
  Receiver v4 = Listen("127.0.0.53", true);
  Receiver v6 = Listen("::1", false);
  ASSERT_NE(v4.port, 0);
  ASSERT_NE(v6.port, 0);
  CtlOk({"allow", absl::StrCat(v4.port, "/udp"), "127.0.0.53"});
  CtlOk({"allow", absl::StrCat(v6.port, "/udp"), "::1"});

  EXPECT_EQ(InCgroup([&] {
              return ConnectedSendWithTos("127.0.0.53", v4.port, true);
            }),
            0);
  EXPECT_EQ(ReadTos(v4, true), kTos);
  EXPECT_EQ(
      InCgroup([&] { return ConnectedSendWithTos("::1", v6.port, false); }), 0);
  EXPECT_EQ(ReadTos(v6, false), kTos);
  // An IPv6 socket connected to an IPv4-mapped peer: the send goes through
  // sendmsg4, with IP_TOS.
  EXPECT_EQ(InCgroup([&] {
              return ConnectedSendWithTos("::ffff:127.0.0.53", v4.port, true);
            }),
            0);
  EXPECT_EQ(ReadTos(v4, true), kTos);
  // The decision is still the peer's: a peer no rule allows is refused at
  // connect().
  EXPECT_EQ(InCgroup([&] {
              return ConnectedSendWithTos("127.0.0.54", v4.port, true);
            }),
            EPERM);
}

TEST_F(UdpCmsgTest, ConnectedSendWithACmsgIsRecordedWithItsPeer) {
  AddTarget("web", nullptr, "audit");
  Receiver v4 = Listen("127.0.0.53", true);
  Receiver v6 = Listen("::1", false);
  ASSERT_NE(v4.port, 0);
  ASSERT_NE(v6.port, 0);
  ASSERT_EQ(InCgroup([&] {
              return ConnectedSendWithTos("127.0.0.53", v4.port, true);
            }),
            0);
  ASSERT_EQ(
      InCgroup([&] { return ConnectedSendWithTos("::1", v6.port, false); }), 0);
  // connect4, sendmsg4, connect6, sendmsg6: each names the peer.
  std::vector<nlohmann::json> records = Records({"--target", "web"}, 4);
  int sends = 0;
  for (const nlohmann::json& e : records) {
    SCOPED_TRACE(e.dump());
    const std::string hook = e.value("hook", "");
    if (hook != "sendmsg4" && hook != "sendmsg6") continue;
    ++sends;
    EXPECT_EQ(e["verdict"], "AUDIT");
    if (hook == "sendmsg4") {
      EXPECT_EQ(e["l4"]["destination"], "127.0.0.53");
      EXPECT_EQ(e["l4"]["destination_port"], v4.port);
    } else {
      EXPECT_EQ(e["l4"]["destination"], "::1");
      EXPECT_EQ(e["l4"]["destination_port"], v6.port);
    }
  }
  EXPECT_EQ(sends, 2);
}

}  // namespace
}  // namespace egress::testing
