// TCP through the connect4/connect6 hooks: every path that opens a
// connection (plain connect, dual-stack, TCP Fast Open, MPTCP, io_uring),
// rule matching (ports, ranges, CIDR edges, deny beats allow) and modes.
// Closed loopback ports are the test hosts: an allowed attempt ends in
// ECONNREFUSED (or 0), a denied one in EPERM before any packet leaves.
#include <arpa/inet.h>
#include <errno.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class ConnectTest : public EgressdTest {
 protected:
  // "proto/port" of every exact_rules key in the pinned map, any ruleset.
  std::set<std::string> ExactKeys() {
    std::set<std::string> out;
    for (const auto& [k, v] : ExactRulesEntries()) {
      out.insert(absl::StrCat(k.proto == IPPROTO_TCP ? "tcp/" : "udp/",
                              ntohs(k.port)));
    }
    return out;
  }
};

// One host and a few ports: decided by one exact_rules probe (compile.h),
// verdicts as the tries give them, and gone from the hash with the rule.
TEST_F(ConnectTest, OneHostAndFewPortsAreDecidedByTheExactHash) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  CtlOk({"allow", "40030-40031/tcp", "::1"});
  CtlOk({"allow", "40040-40060/tcp", "127.0.0.2"});  // wide: the trie
  CtlOk({"allow", "40070/tcp", "127.0.5.0/24"});     // a network: the trie
  CtlOk({"deny", "40071/tcp", "127.0.5.9"});         // a deny, in the hash
  const std::set<std::string> keys = ExactKeys();
  EXPECT_TRUE(keys.count("tcp/40001")) << keys.size();
  EXPECT_TRUE(keys.count("tcp/40030"));
  EXPECT_TRUE(keys.count("tcp/40031"));
  EXPECT_TRUE(keys.count("tcp/40071"));
  EXPECT_FALSE(keys.count("tcp/40040"));
  EXPECT_FALSE(keys.count("tcp/40070"));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.3", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40030); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40031); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::1", 40032); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40050); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.5.9", 40070); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.5.9", 40071); }));
  // An IPv4-mapped destination is the IPv4 one.
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("::ffff:127.0.0.2", 40001); }));
  CtlOk({"delete", "allow", "40001/tcp", "127.0.0.2"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  CtlOk({"target", "remove", "web"});
  EXPECT_TRUE(ExactKeys().empty());
}

TEST_F(ConnectTest, AllowListDecidesTcpV4) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.3", 40001); }));
  // The test process itself is outside the target: untouched.
  EXPECT_ALLOWED(TcpConnect("127.0.0.3", 40001));
}

TEST_F(ConnectTest, EmptyTargetDeniesEverything) {
  AddTarget("web");
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::ffff:127.0.0.1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("::1", 40001); }));
  EXPECT_DENIED(
      InCgroup([] { return UdpConnectThenSend("127.0.0.1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return UdpConnectThenSend("::1", 40001); }));
}

TEST_F(ConnectTest, PortRangeEdges) {
  AddTarget("web");
  CtlOk({"allow", "40010-40020/tcp", "127.0.0.2"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40009); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40010); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40015); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40020); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40021); }));
}

TEST_F(ConnectTest, CidrBoundaries) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.1.0/24"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.255", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.1.0", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.1.255", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.2.0", 40001); }));
}

TEST_F(ConnectTest, DenyBeatsAllowEvenWhenAllowIsMoreSpecific) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.3.7"});
  CtlOk({"allow", "any", "127.0.4.0/24"});
  CtlOk({"deny", "any", "127.0.3.0/24"});
  CtlOk({"deny", "40002/tcp", "127.0.4.9"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.3.7", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.4.9", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.4.9", 40002); }));
  // Deleting the deny lets the allow through again.
  CtlOk({"delete", "deny", "any", "127.0.3.0/24"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.3.7", 40001); }));
}

TEST_F(ConnectTest, Ipv6Rules) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "::1"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::1", 40002); }));
  // An IPv6 rule does not open IPv4.
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.1", 40001); }));
}

TEST_F(ConnectTest, Ipv4MappedDestinationsMatchIpv4Rules) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  CtlOk({"allow", "any", "127.0.5.0/24"});
  CtlOk({"deny", "any", "127.0.5.5"});
  // Dual-stack sockets (Java, Go, nginx) reach IPv4 through ::ffff:a.b.c.d.
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnectDualStack("127.0.0.2", 40001); }));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnectDualStack("127.0.0.2", 40002); }));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("::ffff:127.0.5.1", 40009); }));
  // ... and cannot slip past an IPv4 deny either.
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::ffff:127.0.5.5", 40009); }));
}

TEST_F(ConnectTest, UnspecifiedAddressIsCheckedAsLoopback) {
  AddTarget("web");
  CtlOk({"allow", "any", "0.0.0.0/0"});
  CtlOk({"allow", "any", "::/0"});
  CtlOk({"deny", "40001/tcp", "127.0.0.1"});
  CtlOk({"deny", "40001/tcp", "::1"});
  // connect(0.0.0.0) and connect(::) reach the loopback host.
  EXPECT_DENIED(InCgroup([] { return TcpConnect("0.0.0.0", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("0.0.0.0", 40002); }));
}

TEST_F(ConnectTest, TcpFastOpenPassesTheHook) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(
      InCgroup([] { return TcpFastOpenSendto("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpFastOpenSendto("127.0.0.2", 40002); }));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpFastOpenConnectOpt("127.0.0.2", 40001); }));
  EXPECT_DENIED(
      InCgroup([] { return TcpFastOpenConnectOpt("127.0.0.2", 40002); }));
}

TEST_F(ConnectTest, MptcpIsTcp) {
  int outside = MptcpConnect("127.0.0.2", 40001);
  ASSERT_TRUE(Allowed(outside))
      << "MPTCP unavailable on this kernel (" << strerror(outside)
      << "): enable net.mptcp.enabled";
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return MptcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return MptcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return MptcpConnect("::1", 40001); }));
}

TEST_F(ConnectTest, IoUringConnect) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return IoUringConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return IoUringConnect("127.0.0.2", 40002); }));
}

TEST_F(ConnectTest, DescendantCgroupsAreEnforced) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  auto child = cg_->CreateChild("worker");
  ASSERT_TRUE(child.ok()) << child.status();
  auto grandchild = (*child)->CreateChild("sub");
  ASSERT_TRUE(grandchild.ok()) << grandchild.status();
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *grandchild));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, *grandchild));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, *child));
}

TEST_F(ConnectTest, AuditModeLetsEverythingPassAndCounts) {
  AddTarget("web", nullptr, "audit");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  for (int i = 0; i < 3; ++i) {
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  }
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["audited"], 3);
  EXPECT_EQ(c["allowed"], 1);
  EXPECT_EQ(c["denied"], 0);
  // Switching to enforce turns the same attempt into a refusal.
  CtlOk({"mode", "enforce", "--target", "web"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_EQ(Counters("web")["denied"], 1);
}

TEST_F(ConnectTest, TwoTargetsKeepTheirOwnPolicies) {
  auto other = TestCgroup::Create("priv-other");
  ASSERT_TRUE(other.ok()) << other.status();
  AddTarget("web");
  AddTarget("mail", other->get());
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--target", "web"});
  CtlOk({"allow", "40025/tcp", "127.0.0.2", "--target", "mail"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40025); }));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40025); }, other->get()));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, other->get()));
  CtlOk({"target", "remove", "mail"});
  EXPECT_TRUE((*other)->Remove().ok());
}

TEST_F(ConnectTest, NestedTargetsMustBothAllow) {
  AddTarget("outer");
  auto inner = cg_->CreateChild("inner");
  ASSERT_TRUE(inner.ok());
  AddTarget("inner", *inner);
  CtlOk({"allow", "any", "127.0.0.0/8", "--target", "outer"});
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--target", "inner"});
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *inner));
  // The inner target cannot lift the outer one's verdict, nor the reverse.
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, *inner));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  CtlOk({"target", "remove", "inner"});
}

}  // namespace
}  // namespace egress::testing
