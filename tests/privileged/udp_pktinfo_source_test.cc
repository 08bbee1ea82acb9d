// A datagram's source address can be picked per send (IP_PKTINFO's
// ipi_spec_dst, IPV6_PKTINFO's ipi6_addr): any address the host owns. From a
// socket bound to one address, a target could send to another of its own
// sockets (bound to an address and port its rules allow it to reach) "from"
// a victim's address and port; that socket would then record the victim as
// a peer and "reply" to it (UDP_REPLY) though no rule allows it. sendmsg4/6
// refuse a per-datagram source other than the bound address; a socket bound
// to the wildcard still picks its source per datagram (what DNS servers do).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/listeners.h"
#include "tests/testing/netns.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr uint16_t kAllowedPort = 40553;  // B: the address the rules allow
constexpr uint16_t kVictimPort = 40999;   // the victim's, and A's

// What the child reports, by index.
enum : size_t {
  kSetup,       // 0, or the errno of the failed set-up step
  kSpoofed,     // errno of A's send to B with the victim's address as source
  kPeerSeen,    // 0 when B read a datagram from the victim's address
  kReply,       // errno of B's sendto(victim)
  kOwnSource,   // errno of A's send with its own bound address as source
  kWildcard,    // errno of a wildcard-bound socket's send with a source
  kZeroSource,  // errno of A's send with a pktinfo source of 0 (IPv4 only)
  kResults,
};

int Errno() { return errno; }

int Bound(const SockAddr& a) {
  const int fd = socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (a.family() == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, a.get(), a.len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Makes `info` the one cmsg in msg's control buffer (which must have room
// for it), at `level` and `type`: the cmsg is laid out the same for
// IP_PKTINFO and IPV6_PKTINFO, only these three differ.
template <typename Pktinfo>
void SetPktinfo(msghdr& msg, int level, int type, const Pktinfo& info) {
  cmsghdr* c = reinterpret_cast<cmsghdr*>(msg.msg_control);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(info));
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  msg.msg_controllen = CMSG_SPACE(sizeof(info));
}

// Sends one datagram to `to` with a pktinfo cmsg naming `source` (an
// address in the family of `to`, port ignored); 0 or the errno.
int SendWithSource(int fd, const SockAddr& to, const SockAddr& source) {
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.get());
  msg.msg_namelen = to.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  if (to.family() == AF_INET6) {
    in6_pktinfo info{};
    info.ipi6_addr =
        reinterpret_cast<const sockaddr_in6*>(&source.storage)->sin6_addr;
    SetPktinfo(msg, IPPROTO_IPV6, IPV6_PKTINFO, info);
  } else {
    in_pktinfo info{};
    info.ipi_spec_dst =
        reinterpret_cast<const sockaddr_in*>(&source.storage)->sin_addr;
    SetPktinfo(msg, IPPROTO_IP, IP_PKTINFO, info);
  }
  return sendmsg(fd, &msg, 0) == 1 ? 0 : Errno();
}

// 0 when `fd` holds a datagram from `from` (loopback delivers within the
// sender's sendmsg, so it is there or never).
int ReadFrom(int fd, const SockAddr& from) {
  char buf[16];
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  if (recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&peer), &len) < 0) {
    return Errno();
  }
  if (len != from.len || std::memcmp(&peer, &from.storage, len) != 0) {
    return EBADMSG;
  }
  return 0;
}

// The whole sequence in the target: A (bound to `a`) sends to B (bound to
// the allowed `b`) with the victim's address as its source; B reads it and
// replies to the victim; then the controls.
std::vector<int> Attack(const SockAddr& a, const SockAddr& b,
                        const SockAddr& victim, const SockAddr& wildcard) {
  std::vector<int> r(kResults, -1);
  const int sa = Bound(a), sb = Bound(b), sw = Bound(wildcard);
  if (sa < 0 || sb < 0 || sw < 0) {
    r[kSetup] = Errno();
    return r;
  }
  r[kSetup] = 0;
  r[kSpoofed] = SendWithSource(sa, b, victim);
  r[kPeerSeen] = ReadFrom(sb, victim);
  char byte = 'r';
  r[kReply] =
      sendto(sb, &byte, 1, 0, victim.get(), victim.len) == 1 ? 0 : Errno();
  r[kOwnSource] = SendWithSource(sa, b, a);
  r[kWildcard] = SendWithSource(sw, b, a);
  if (a.family() == AF_INET) {
    SockAddr zero = a;
    reinterpret_cast<sockaddr_in*>(&zero.storage)->sin_addr.s_addr = 0;
    r[kZeroSource] = SendWithSource(sa, b, zero);
  }
  close(sa);
  close(sb);
  close(sw);
  return r;
}

class UdpPktinfoSourceTest : public EgressdTest {
 protected:
  // The attack with the victim listening outside the target at
  // victim_addr:kVictimPort; the target's rules allow b_addr:kAllowedPort.
  void Check(const std::string& a_addr, const std::string& b_addr,
             const std::string& victim_addr, const std::string& any) {
    AddTarget("pktinfo");
    CtlOk({"allow", absl::StrCat(kAllowedPort, "/udp"), b_addr});
    absl::StatusOr<SockAddr> a = ParseSockAddr(a_addr, kVictimPort);
    absl::StatusOr<SockAddr> b = ParseSockAddr(b_addr, kAllowedPort);
    absl::StatusOr<SockAddr> victim = ParseSockAddr(victim_addr, kVictimPort);
    absl::StatusOr<SockAddr> wildcard = ParseSockAddr(any, 0);
    ASSERT_TRUE(a.ok() && b.ok() && victim.ok() && wildcard.ok());
    const int listener = Bound(*victim);
    ASSERT_GE(listener, 0) << strerror(errno);

    absl::StatusOr<std::vector<int>> r = RunInCgroupMulti(
        cg_->path(), [&] { return Attack(*a, *b, *victim, *wildcard); });
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ((*r)[kSetup], 0) << strerror((*r)[kSetup]);
    EXPECT_DENIED((*r)[kSpoofed]);
    EXPECT_NE((*r)[kPeerSeen], 0) << "B read a datagram from the victim";
    EXPECT_DENIED((*r)[kReply]);
    // Nothing reached the victim.
    char buf[16];
    EXPECT_LT(recv(listener, buf, sizeof(buf), MSG_DONTWAIT), 0);
    close(listener);
    // The controls: the bound address as the source, and a wildcard-bound
    // socket that picks its source per datagram, still send.
    EXPECT_ALLOWED((*r)[kOwnSource]);
    EXPECT_ALLOWED((*r)[kWildcard]);
    if (a->family() == AF_INET) {
      // A zero source lets the route pick one (127.0.0.1 here), so it is
      // not the bound address either.
      EXPECT_DENIED((*r)[kZeroSource]);
    }
    // The spoofed send is recorded as a borrowed source, the reply as a
    // plain refusal (B never recorded the victim).
    const std::vector<nlohmann::json> recs =
        Records({"--target", "pktinfo", "--verdict", "deny"}, 2);
    int borrowed = 0;
    for (const nlohmann::json& e : recs) {
      if (e.value("reason", "") == "NONLOCAL_SOURCE_BLOCKED") ++borrowed;
    }
    EXPECT_EQ(borrowed, a->family() == AF_INET ? 2 : 1);
  }
};

TEST_F(UdpPktinfoSourceTest, ForgedSourceMakesNoPeerIpv4) {
  Check("127.0.0.98", "127.0.0.53", "127.0.0.99", "0.0.0.0");
}

// ::1 is the only address on lo: the victim is the address of the host's
// end of a veth pair to a namespace of the test (an address the host owns,
// so IPV6_PKTINFO accepts it as a source).
TEST_F(UdpPktinfoSourceTest, ForgedSourceMakesNoPeerIpv6) {
  absl::StatusOr<std::unique_ptr<TestNetns>> ns = TestNetns::Create("pkt6");
  ASSERT_TRUE(ns.ok()) << ns.status();
  Check("::1", "::1", (*ns)->host_addr6(), "::");
}

}  // namespace
}  // namespace egress::testing
