// Source routing sends packets to a first hop other than the destination the
// hooks checked. cgroup/setsockopt refuses the options; cgroup_skb/egress
// drops packets that carry them anyway (cmsg path).
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

// setsockopt(IP_OPTIONS) with the given bytes on a fresh UDP socket.
int SetIpOptions(const std::vector<uint8_t>& opts) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int rc = setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opts.data(), opts.size()) == 0
               ? 0
               : errno;
  close(fd);
  return rc;
}

class SourceRouteTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    AddTarget("web");
    // Everything on loopback is allowed: only the source route may be refused.
    CtlOk({"allow", "any", "127.0.0.0/8"});
    CtlOk({"allow", "any", "::1"});
  }
};

TEST_F(SourceRouteTest, Ipv6RoutingHeaderSetsockoptRefused) {
  ASSERT_EQ(Ipv6RoutingHeaderSetsockopt(), 0)
      << "unprivileged IPV6_RTHDR should work outside enforcement";
  EXPECT_EQ(InCgroup([] { return Ipv6RoutingHeaderSetsockopt(); }), EPERM);
  EXPECT_EQ(
      InCgroup([] { return Ipv6RoutingHeaderStickySend("::1", 40053, "::1"); }),
      EPERM);
  EXPECT_GE(Counters("web")["source_route_denied"], 2);
  // The socket still works without the option.
  EXPECT_EQ(InCgroup([] { return UdpSendto("::1", 40053); }), 0);
}

TEST_F(SourceRouteTest, Ipv4SourceRouteSetsockoptRefused) {
  ASSERT_EQ(Ipv4SourceRouteSetsockopt(true), 0);
  EXPECT_EQ(InCgroup([] { return Ipv4SourceRouteSetsockopt(true); }), EPERM);
  EXPECT_EQ(InCgroup([] { return Ipv4SourceRouteSetsockopt(false); }), EPERM);
  // Hidden behind no-ops.
  EXPECT_EQ(InCgroup([] {
              return SetIpOptions({0x01, 0x01, 0x83, 0x07, 0x04, 127, 0, 0, 1,
                                   0x00, 0x00, 0x00});
            }),
            EPERM);
}

TEST_F(SourceRouteTest, Ipv4SourceRouteCmsgDropped) {
  int outside = Ipv4SourceRouteCmsgSend("127.0.0.2", 40053, "127.0.0.3");
  ASSERT_EQ(outside, 0) << "IP_RETOPTS cmsg should send outside enforcement: "
                        << strerror(outside);
  // The option comes with the datagram, past setsockopt: the packet is
  // dropped on its way out.
  EXPECT_EQ(InCgroup([] {
              return Ipv4SourceRouteCmsgSend("127.0.0.2", 40053, "127.0.0.3");
            }),
            EPERM);
  EXPECT_GE(Counters("web")["source_route_denied"], 1);
}

TEST_F(SourceRouteTest, Ipv6RoutingHeaderCmsgDropped) {
  // Kernels without CONFIG_IPV6_MIP6 (this one) refuse every routing-header
  // cmsg themselves (EINVAL); with it, type 2 passes the kernel and the
  // packet must then be dropped by cgroup_skb/egress. Either way no datagram
  // with a routing header leaves the target. The drop itself is proven on
  // every kernel by srcroute_packet_test.cc.
  int outside = Ipv6RoutingHeaderCmsgSend("::1", 40053, "::1");
  int inside =
      InCgroup([] { return Ipv6RoutingHeaderCmsgSend("::1", 40053, "::1"); });
  if (outside == 0) {
    EXPECT_EQ(inside, EPERM);
  } else {
    EXPECT_EQ(outside, EINVAL) << strerror(outside);
    EXPECT_EQ(inside, EINVAL) << strerror(inside);
  }
  // The IPV6_2292PKTOPTIONS route to the same header is refused outright.
  EXPECT_EQ(InCgroup([] {
              int fd = socket(AF_INET6, SOCK_DGRAM, 0);
              uint8_t buf[64] = {};
              int rc = setsockopt(fd, IPPROTO_IPV6, 6 /* IPV6_2292PKTOPTIONS */,
                                  buf, sizeof(buf)) == 0
                           ? 0
                           : errno;
              close(fd);
              return rc;
            }),
            EPERM);
}

TEST_F(SourceRouteTest, HarmlessIpOptionsStillAllowed) {
  // No-ops and end-of-list only; and clearing options.
  EXPECT_EQ(InCgroup([] { return SetIpOptions({0x01, 0x01, 0x01, 0x00}); }), 0);
  EXPECT_EQ(InCgroup([] { return SetIpOptions({}); }), 0);
  // A timestamp option (type 0x44) is not a source route.
  EXPECT_EQ(InCgroup([] { return SetIpOptions({0x44, 0x04, 0x05, 0x00}); }), 0);
  EXPECT_EQ(Counters("web")["source_route_denied"], 0);
}

}  // namespace
}  // namespace egress::testing
