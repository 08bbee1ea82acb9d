// The nftables alternative egress_bench measures beside egress
// (bench/nft_alternative.h) must decide as egress does, or its rows would
// compare egress with something else: the same rules, loaded with the real
// `nft` into the running kernel's nf_tables, judging real sockets of a test
// cgroup on loopback. Both shapes (a set, a linear list) must agree.
#include "bench/nft_alternative.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {

// For test names and messages: "set", "linear".
void PrintTo(NftShape shape, std::ostream* os) { *os << NftShapeName(shape); }

namespace {

using testing::RunInCgroup;
using testing::TcpConnect;
using testing::TcpListener;
using testing::TestCgroup;
using testing::UdpSendto;

policy::Rule MakeRule(uint32_t id, policy::Action action, policy::Proto proto,
                      uint16_t port, const std::string& dest) {
  policy::Rule r;
  r.id = id;
  r.action = action;
  r.ports = {{proto, port, port}};
  if (!dest.empty()) r.destinations = {*policy::Cidr::Parse(dest)};
  return r;
}

class NftAlternativeTest : public ::testing::TestWithParam<NftShape> {};

TEST_P(NftAlternativeTest, DecidesAsEgressRulesDo) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> judged,
                       TestCgroup::Create("nft-judged"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> other,
                       TestCgroup::Create("nft-other"));
  std::vector<std::unique_ptr<TcpListener>> listeners;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(listeners.emplace_back(),
                         TcpListener::Create("127.0.0.1"));
  }
  const uint16_t allowed = listeners[0]->port();
  const uint16_t allowed_then_denied = listeners[1]->port();
  const uint16_t unlisted = listeners[2]->port();
  const uint16_t udp_allowed = 40001, udp_unlisted = 40002;
  // Allowed to the host and to its /28; one port allowed but also denied
  // (a deny beats an allow); a UDP port to anywhere.
  const std::vector<policy::Rule> rules = {
      MakeRule(1, policy::Action::kAllow, policy::Proto::kTcp, allowed,
               "127.0.0.1"),
      MakeRule(2, policy::Action::kAllow, policy::Proto::kTcp,
               allowed_then_denied, "127.0.0.0/28"),
      MakeRule(3, policy::Action::kDeny, policy::Proto::kTcp,
               allowed_then_denied, "127.0.0.1"),
      MakeRule(4, policy::Action::kAllow, policy::Proto::kUdp, udp_allowed,
               "")};
  ASSERT_OK_AND_ASSIGN(std::string cgroup, NftCgroupPath(judged->path()));
  const std::string table =
      absl::StrCat("egress_test_", getpid(), "_", NftShapeName(GetParam()));
  ASSERT_OK_AND_ASSIGN(
      std::string script,
      NftScript(table, cgroup, 1, GetParam(), rules, NftReplies::kStateless));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NftTable> loaded,
                       NftTable::Load(table, script));

  auto from = [](const TestCgroup& cg, std::function<int()> probe) {
    auto got = RunInCgroup(cg.path(), std::move(probe));
    return got.ok() ? *got : -1;
  };
  EXPECT_EQ(from(*judged, [&] { return TcpConnect("127.0.0.1", allowed); }), 0);
  EXPECT_EQ(from(*judged,
                 [&] { return TcpConnect("127.0.0.1", allowed_then_denied); }),
            ECONNREFUSED);
  EXPECT_EQ(from(*judged, [&] { return TcpConnect("127.0.0.1", unlisted); }),
            ECONNREFUSED);
  EXPECT_EQ(from(*judged, [&] { return UdpSendto("127.0.0.1", udp_allowed); }),
            0);
  EXPECT_EQ(from(*judged, [&] { return UdpSendto("127.0.0.1", udp_unlisted); }),
            EPERM);
  // Another cgroup's packets pass the table untouched.
  for (uint16_t port : {allowed, allowed_then_denied, unlisted}) {
    EXPECT_EQ(from(*other, [&] { return TcpConnect("127.0.0.1", port); }), 0)
        << port;
  }
  EXPECT_EQ(from(*other, [&] { return UdpSendto("127.0.0.1", udp_unlisted); }),
            0);
}

// In the judged cgroup: a UDP socket sends to `peer` unsolicited, then gets
// a datagram from `peer` and answers it. Returns (errno of the unsolicited
// send) * 1000 + (errno of the answer), each 0 on success; 999 for a setup
// failure.
int UnsolicitedThenAnswer(int peer) {
  UniqueFd server(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  sockaddr_in peer_addr{};
  socklen_t peer_len = sizeof(peer_addr);
  if (!server ||
      bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      getsockname(server.get(), reinterpret_cast<sockaddr*>(&addr), &len) !=
          0 ||
      getsockname(peer, reinterpret_cast<sockaddr*>(&peer_addr), &peer_len) !=
          0) {
    return 999;
  }
  char buf[8] = "x";
  int unsolicited = 0;
  if (sendto(server.get(), buf, 1, 0, reinterpret_cast<sockaddr*>(&peer_addr),
             peer_len) != 1) {
    unsolicited = errno;
  }
  if (sendto(peer, buf, 1, 0, reinterpret_cast<sockaddr*>(&addr), len) != 1) {
    return 999;
  }
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  if (recvfrom(server.get(), buf, sizeof(buf), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&from), &from_len) != 1) {
    return 999;
  }
  int answer = 0;
  if (sendto(server.get(), buf, 1, 0, reinterpret_cast<sockaddr*>(&from),
             from_len) != 1) {
    answer = errno;
  }
  return unsolicited * 1000 + answer;
}

// egress_bench's `udp reply` rows: a server may answer a peer no rule names
// once the peer has sent to it, with the conntrack accept and only with it;
// an unsolicited datagram to the peer stays refused either way.
TEST_P(NftAlternativeTest, RepliesPassOnlyWithTheConntrackAccept) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> judged,
                       TestCgroup::Create("nft-replies"));
  ASSERT_OK_AND_ASSIGN(std::string cgroup, NftCgroupPath(judged->path()));
  // One rule, for a port nobody uses here: the peer's port is not in it.
  const std::vector<policy::Rule> rules = {MakeRule(
      1, policy::Action::kAllow, policy::Proto::kUdp, 40001, "127.0.0.1")};
  for (NftReplies replies :
       {NftReplies::kStateless, NftReplies::kEstablished}) {
    const bool established = replies == NftReplies::kEstablished;
    SCOPED_TRACE(established ? "established" : "stateless");
    const std::string table =
        absl::StrCat("egress_test_", getpid(), "_replies_",
                     NftShapeName(GetParam()), established ? "_ct" : "");
    ASSERT_OK_AND_ASSIGN(
        std::string script,
        NftScript(table, cgroup, 1, GetParam(), rules, replies));
    EXPECT_EQ(script.find("ct state") != std::string::npos, established);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<NftTable> loaded,
                         NftTable::Load(table, script));
    // The peer is made here, outside the judged cgroup: the table does not
    // judge its datagrams.
    UniqueFd peer(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_TRUE(peer);
    ASSERT_EQ(bind(peer.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)),
              0);
    const int fd = peer.get();
    ASSERT_OK_AND_ASSIGN(int got, RunInCgroup(judged->path(), [fd] {
                           return UnsolicitedThenAnswer(fd);
                         }));
    EXPECT_EQ(got / 1000, EPERM) << "unsolicited datagram";
    EXPECT_EQ(got % 1000, established ? 0 : EPERM) << "answer";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, NftAlternativeTest,
                         ::testing::Values(NftShape::kSet, NftShape::kLinear),
                         [](const auto& info) {
                           return std::string(NftShapeName(info.param));
                         });

TEST(NftScriptTest, RulesNftCannotExpressAreRefused) {
  policy::Rule named =
      MakeRule(7, policy::Action::kAllow, policy::Proto::kTcp, 443, "");
  named.names = {"api.example.com"};
  auto script =
      NftScript("t", "x", 1, NftShape::kSet, {named}, NftReplies::kStateless);
  EXPECT_EQ(script.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(script.status().message().find("rule 7"), std::string::npos);
  EXPECT_FALSE(NftCgroupPath("/tmp/x").ok());
}

}  // namespace
}  // namespace egress::bench
