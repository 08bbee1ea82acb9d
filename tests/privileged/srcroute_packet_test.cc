// The backstop of source routing in cgroup_skb/egress, packet by packet: a
// target's real skb_egress program run with BPF_PROG_TEST_RUN on crafted
// frames. The socket-level tests (srcroute_test.cc) cannot reach the IPv6
// branch on kernels without CONFIG_IPV6_MIP6, which refuse a routing-header
// cmsg themselves; here the program meets the header whatever the kernel's
// options, behind the extension headers it walks past, and the IPv4 options
// it must tell apart.
#include <bpf/bpf.h>
#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"

namespace egress::testing {
namespace {

constexpr uint8_t kUdp = 17, kHopByHop = 0, kRouting = 43, kDestOpts = 60;

// An Ethernet header of the given type (BPF_PROG_TEST_RUN takes a frame and
// hands the program its network header).
std::vector<uint8_t> Ethernet(uint16_t type) {
  std::vector<uint8_t> f(12, 0);
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  return f;
}

// An 8-byte UDP header to port 40053 with 8 bytes of payload.
void AppendUdp(std::vector<uint8_t>& f) {
  const uint8_t udp[] = {0x9c, 0x55, 0x9c, 0x55, 0, 16, 0, 0};
  f.insert(f.end(), udp, udp + sizeof(udp));
  f.insert(f.end(), 8, 'x');
}

// ::1 -> ::1 with the extension headers `chain` (each 8 bytes: its next
// header, length 0, then for a routing header type 2 with one segment
// left) before UDP.
std::vector<uint8_t> Ipv6(const std::vector<uint8_t>& chain) {
  std::vector<uint8_t> f = Ethernet(0x86dd);
  const uint16_t payload = static_cast<uint16_t>(8 * chain.size() + 16);
  const uint8_t first = chain.empty() ? kUdp : chain[0];
  const uint8_t fixed[8] = {0x60,
                            0,
                            0,
                            0,
                            static_cast<uint8_t>(payload >> 8),
                            static_cast<uint8_t>(payload),
                            first,
                            64};
  f.insert(f.end(), fixed, fixed + 8);
  for (int side = 0; side < 2; ++side) {  // source, destination: ::1
    f.insert(f.end(), 15, 0);
    f.push_back(1);
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    const uint8_t next = i + 1 < chain.size() ? chain[i + 1] : kUdp;
    const bool routing = chain[i] == kRouting;
    const uint8_t ext[8] = {next, 0, static_cast<uint8_t>(routing ? 2 : 1),
                            static_cast<uint8_t>(routing ? 1 : 4)};
    f.insert(f.end(), ext, ext + 8);
  }
  AppendUdp(f);
  return f;
}

// 127.0.0.2 -> 127.0.0.3 with the IP options `options` (padded to 4 bytes
// with end-of-list) before UDP.
std::vector<uint8_t> Ipv4(std::vector<uint8_t> options) {
  while (options.size() % 4 != 0) options.push_back(0);
  std::vector<uint8_t> f = Ethernet(0x0800);
  const uint8_t ihl = static_cast<uint8_t>(5 + options.size() / 4);
  const uint16_t total = static_cast<uint16_t>(4 * ihl + 16);
  const uint8_t header[20] = {static_cast<uint8_t>(0x40 | ihl),
                              0,
                              static_cast<uint8_t>(total >> 8),
                              static_cast<uint8_t>(total),
                              0,
                              0,
                              0x40,
                              0,
                              64,
                              kUdp,
                              0,
                              0,
                              127,
                              0,
                              0,
                              2,
                              127,
                              0,
                              0,
                              3};
  f.insert(f.end(), header, header + 20);
  f.insert(f.end(), options.begin(), options.end());
  AppendUdp(f);
  return f;
}

// A set per target, as in dns_ingress_fuzz_test.cc: the program carries the
// target id (the shared set reads it from a cgroup storage that
// BPF_PROG_TEST_RUN does not give it).
class SourceRoutePacketTest : public EgressdTest {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {"--noshared_program_set"};
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    AddTarget("web");
    CtlOk({"allow", "any", "127.0.0.0/8"});
    CtlOk({"allow", "any", "::1"});
    prog_ = OwnProgram("web", "skb_egress");
    ASSERT_TRUE(prog_.valid());
  }

  // The program's verdict on `frame`: 1 passes, 0 drops; -errno when the
  // run itself failed.
  int Run(std::vector<uint8_t> frame) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .repeat = 1);
    if (bpf_prog_test_run_opts(prog_.get(), &opts) != 0) return -errno;
    return static_cast<int>(opts.retval);
  }
  uint64_t Denied() {
    return Counters("web")["source_route_denied"].get<uint64_t>();
  }

  UniqueFd prog_;
};

TEST_F(SourceRoutePacketTest, Ipv6RoutingHeaderIsDroppedBehindOtherHeaders) {
  EXPECT_EQ(Run(Ipv6({})), 1) << "plain UDP";
  EXPECT_EQ(Run(Ipv6({kHopByHop, kDestOpts})), 1) << "no routing header";
  EXPECT_EQ(Denied(), 0u);
  EXPECT_EQ(Run(Ipv6({kRouting})), 0) << "a routing header";
  EXPECT_EQ(Run(Ipv6({kHopByHop, kRouting})), 0) << "behind hop-by-hop";
  EXPECT_EQ(Run(Ipv6({kHopByHop, kDestOpts, kRouting})), 0)
      << "behind hop-by-hop and destination options";
  EXPECT_EQ(Denied(), 3u);
}

TEST_F(SourceRoutePacketTest, Ipv4SourceRouteOptionsAreDroppedOthersPass) {
  EXPECT_EQ(Run(Ipv4({})), 1) << "no options";
  EXPECT_EQ(Run(Ipv4({0x01, 0x01, 0x01})), 1) << "no-ops";
  EXPECT_EQ(Run(Ipv4({0x44, 0x04, 0x05, 0x00})), 1) << "a timestamp";
  EXPECT_EQ(Denied(), 0u);
  // Loose and strict source routes, the first hop 127.0.0.9.
  EXPECT_EQ(Run(Ipv4({0x83, 0x07, 0x04, 127, 0, 0, 9})), 0) << "LSRR";
  EXPECT_EQ(Run(Ipv4({0x89, 0x07, 0x04, 127, 0, 0, 9})), 0) << "SSRR";
  EXPECT_EQ(Run(Ipv4({0x01, 0x83, 0x07, 0x04, 127, 0, 0, 9})), 0)
      << "LSRR after a no-op";
  EXPECT_EQ(Denied(), 3u);
}

}  // namespace
}  // namespace egress::testing
