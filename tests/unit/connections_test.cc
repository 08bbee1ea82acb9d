// Judging existing connections: which dumped sockets are a target's
// (cgroup subtree, outbound, connected), the verdict of its rules
// (EvaluateNaive: deny beats allow, IPv4-mapped destinations are IPv4), and
// the records made of those not allowed.
#include "userspace/daemon/connections.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/diag_sockets.h"
#include "tests/testing/rule_builders.h"
#include "userspace/events/event_json.h"
#include "userspace/events/event_text.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

using policy::C;
using policy::Tcp;
using policy::Udp;

DiagSocket Sock(uint8_t protocol, uint8_t family, const char* src,
                uint16_t sport, const char* dst, uint16_t dport,
                uint64_t cgroup, uint8_t state = TCP_ESTABLISHED) {
  DiagSocket s;
  s.family = family;
  s.protocol = protocol;
  s.state = state;
  s.id = testing::SockId(family, src, sport, dst, dport);
  s.inode = 1000u + sport;
  if (cgroup != 0) s.cgroup_id = cgroup;
  return s;
}

policy::Rule MakeRule(uint32_t id, policy::Action action, policy::PortProto p,
                      const char* dest) {
  policy::Rule r;
  r.id = id;
  r.action = action;
  r.spec = "test";
  r.ports = {p};
  r.destinations = {C(dest)};
  return r;
}

ConnectionScope WebScope() {
  ConnectionScope s;
  s.target = "web";
  s.target_id = 3;
  s.rules = {MakeRule(11, policy::Action::kAllow, Tcp(40001), "127.0.0.9"),
             MakeRule(12, policy::Action::kAllow, Udp(53), "2001:db8::/32"),
             MakeRule(13, policy::Action::kDeny, Udp(53), "2001:db8::1")};
  s.cgroups = {{100, "/web"}, {101, "/web/worker"}};
  s.rule_number = [](uint32_t id) { return id - 10; };
  return s;
}

// TCP from 127.0.0.1:`sport` to 127.0.0.9:`dport` in cgroup `cgroup`.
DiagSocket Tcp4(uint16_t sport, uint16_t dport, uint64_t cgroup,
                uint8_t state = TCP_ESTABLISHED) {
  return Sock(IPPROTO_TCP, AF_INET, "127.0.0.1", sport, "127.0.0.9", dport,
              cgroup, state);
}

// A table: each socket and the reason of its verdict (nullptr: not listed;
// MATCHED_ALLOW: allowed).
struct Case {
  const char* description;
  DiagSocket socket;
  const char* reason;
};

TEST(ConnectionsTest, JudgesEachSocketOfTheTargetsSubtree) {
  const char* kNotListed = nullptr;
  const Case cases[] = {
      {"allowed tcp in a child cgroup", Tcp4(50001, 40001, 101),
       "MATCHED_ALLOW"},
      {"tcp no rule allows", Tcp4(50002, 40002, 100), "NO_MATCHING_RULE"},
      {"mapped destination judged as IPv4",
       Sock(IPPROTO_TCP, AF_INET6, "::ffff:127.0.0.1", 50003,
            "::ffff:127.0.0.9", 40001, 100),
       "MATCHED_ALLOW"},
      {"syn sent counts", Tcp4(50004, 40002, 100, TCP_SYN_SENT),
       "NO_MATCHING_RULE"},
      {"connected udp denied by a deny rule",
       Sock(IPPROTO_UDP, AF_INET6, "2001:db8::5", 50005, "2001:db8::1", 53,
            100),
       "MATCHED_DENY"},
      {"connected udp allowed",
       Sock(IPPROTO_UDP, AF_INET6, "2001:db8::5", 50006, "2001:db8::2", 53,
            100),
       "MATCHED_ALLOW"},
      {"another cgroup", Tcp4(50007, 40002, 999), kNotListed},
      {"no cgroup id", Tcp4(50008, 40002, 0), kNotListed},
      {"time wait is gone", Tcp4(50009, 40002, 100, TCP_TIME_WAIT), kNotListed},
      {"a listener is no connection",
       Sock(IPPROTO_TCP, AF_INET, "0.0.0.0", 8080, "0.0.0.0", 0, 100,
            TCP_LISTEN),
       kNotListed},
      {"accepted from the listener: inbound",
       Sock(IPPROTO_TCP, AF_INET, "127.0.0.1", 8080, "127.0.0.5", 60000, 100),
       kNotListed},
  };
  std::vector<DiagSocket> sockets;
  for (const Case& c : cases) sockets.push_back(c.socket);
  std::vector<JudgedConnection> got = JudgeConnections(sockets, WebScope());
  size_t i = 0;
  for (const Case& c : cases) {
    if (c.reason == kNotListed) continue;
    ASSERT_LT(i, got.size()) << c.description;
    const control::Connection& shown = got[i].shown;
    EXPECT_EQ(shown.source_port, c.socket.source_port()) << c.description;
    EXPECT_EQ(shown.allowed, std::string(c.reason) == "MATCHED_ALLOW")
        << c.description;
    EXPECT_EQ(shown.reason, c.reason) << c.description;
    ++i;
  }
  EXPECT_EQ(i, got.size());
}

TEST(ConnectionsTest, ShowsTheRuleWhereAndWhy) {
  std::vector<DiagSocket> sockets = {
      Sock(IPPROTO_TCP, AF_INET, "127.0.0.1", 50001, "127.0.0.9", 40001, 101),
      Sock(IPPROTO_UDP, AF_INET6, "2001:db8::5", 50005, "2001:db8::1", 53,
           100)};
  std::vector<JudgedConnection> got = JudgeConnections(sockets, WebScope());
  ASSERT_EQ(got.size(), 2u);
  const control::Connection& tcp = got[0].shown;
  EXPECT_EQ(tcp.target, "web");
  EXPECT_EQ(tcp.cgroup, "/web/worker");
  EXPECT_EQ(tcp.cgroup_id, 101u);
  EXPECT_EQ(tcp.protocol, "tcp");
  EXPECT_EQ(tcp.family, "IPv4");
  EXPECT_EQ(tcp.state, "established");
  EXPECT_EQ(tcp.source, "127.0.0.1");
  EXPECT_EQ(tcp.destination, "127.0.0.9");
  EXPECT_EQ(tcp.destination_port, 40001u);
  EXPECT_EQ(tcp.rule, 1u);
  EXPECT_EQ(tcp.why, absl::StrCat("allowed by rule 1: ",
                                  policy::FormatRule(WebScope().rules[0])));
  EXPECT_EQ(tcp.action, "kept");
  const control::Connection& udp = got[1].shown;
  EXPECT_EQ(udp.protocol, "udp");
  EXPECT_EQ(udp.family, "IPv6");
  EXPECT_EQ(udp.destination, "2001:db8::1");
  EXPECT_EQ(udp.rule, 3u);
  EXPECT_EQ(udp.why, absl::StrCat("denied by rule 3: ",
                                  policy::FormatRule(WebScope().rules[2])));
}

TEST(ConnectionsTest, AuditTargetsKeepWhatTheyWouldRefuse) {
  ConnectionScope scope = WebScope();
  scope.mode = policy::Mode::kAudit;
  std::vector<DiagSocket> sockets = {
      Sock(IPPROTO_TCP, AF_INET, "127.0.0.1", 50002, "127.0.0.9", 40002, 100)};
  std::vector<JudgedConnection> got = JudgeConnections(sockets, scope);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].shown.allowed);
  EXPECT_EQ(got[0].shown.action, "audit");
}

TEST(ConnectionsTest, OwnersNameTheProcess) {
  std::vector<DiagSocket> sockets = {
      Sock(IPPROTO_TCP, AF_INET, "127.0.0.1", 50002, "127.0.0.9", 40002, 100)};
  std::vector<JudgedConnection> got = JudgeConnections(sockets, WebScope());
  NameOwners({{sockets[0].inode, {4123, "nc"}}, {1, {1, "init"}}}, got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].shown.pid, 4123u);
  EXPECT_EQ(got[0].shown.comm, "nc");
}

TEST(ConnectionsTest, RecordsOfExistingAndCutConnections) {
  std::vector<DiagSocket> sockets = {
      Sock(IPPROTO_TCP, AF_INET6, "::ffff:127.0.0.1", 50002, "::ffff:127.0.0.9",
           40002, 100),
      Sock(IPPROTO_UDP, AF_INET6, "2001:db8::5", 50005, "2001:db8::1", 53,
           100)};
  std::vector<JudgedConnection> got = JudgeConnections(sockets, WebScope());
  ASSERT_EQ(got.size(), 2u);
  NameOwners({{sockets[0].inode, {4123, "nc"}}}, got);

  egress_event cut =
      ExistingRecord(got[0], 3, policy::Mode::kEnforce, EGRESS_EVENT_CUT, 5000);
  EXPECT_EQ(cut.kind, EGRESS_EVENT_CUT);
  EXPECT_EQ(cut.verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(cut.reason, EGRESS_REASON_NO_MATCH);
  EXPECT_EQ(cut.family, EGRESS_FAMILY_IPV4);
  EXPECT_EQ(cut.addr[0], 127);
  EXPECT_EQ(cut.addr[3], 9);
  EXPECT_EQ(ntohs(cut.port), 40002);
  EXPECT_EQ(cut.local_port, 50002);
  EXPECT_EQ(cut.tgid, 4123u);
  EXPECT_EQ(cut.target_id, 3u);
  EXPECT_EQ(cut.cgroup_id, 100u);
  EXPECT_EQ(cut.cookie, sockets[0].cookie());
  EventContext ctx;
  ctx.target = "web";
  nlohmann::json j = EventToJson(cut, ctx);
  EXPECT_EQ(j["event"], "cut");
  EXPECT_EQ(j["verdict"], "DENIED");
  EXPECT_EQ(j["hook"], "sock_diag");
  EXPECT_EQ(j["l4"]["protocol"], "tcp");
  EXPECT_EQ(j["l4"]["destination"], "127.0.0.9");
  EXPECT_EQ(j["l4"]["source_port"], 50002);
  EXPECT_EQ(j["flow"]["direction"], "outbound");
  EXPECT_EQ(j["process"]["comm"], "nc");
  EXPECT_EQ(j["hint"], "egressctl allow 40002/tcp 127.0.0.9 --target web");
  EXPECT_THAT(j["message"].get<std::string>(),
              ::testing::HasSubstr("nc[4123] -> 127.0.0.9:40002/tcp DENIED "
                                   "(existing connection cut, no matching "
                                   "rule)"));

  egress_event kept = ExistingRecord(got[1], 3, policy::Mode::kAudit,
                                     EGRESS_EVENT_EXISTING, 5000);
  EXPECT_EQ(kept.verdict, EGRESS_VERDICT_AUDIT);
  EXPECT_EQ(kept.reason, EGRESS_REASON_MATCH_DENY);
  EXPECT_EQ(kept.rule_id, 13u);
  EXPECT_EQ(kept.family, EGRESS_FAMILY_IPV6);
  nlohmann::json k = EventToJson(kept, ctx);
  EXPECT_EQ(k["event"], "existing");
  EXPECT_EQ(k["l4"]["protocol"], "udp");
  EXPECT_EQ(k["l4"]["destination"], "2001:db8::1");
  EXPECT_THAT(k["message"].get<std::string>(),
              ::testing::HasSubstr("-> [2001:db8::1]:53/udp AUDIT (existing "
                                   "connection, matched deny)"));
}

}  // namespace
}  // namespace egress
