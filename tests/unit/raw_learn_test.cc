// Raw sockets in audit mode: a target that creates a raw inet socket is
// learned like a destination, kept across restarts in learned.db, and
// `suggest` proposes the `raw: true` rule it needs (without which the
// suggested policy would break it once enforced).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/learner_fixture.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/learn_history.h"
#include "userspace/daemon/learner.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/suggest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An audit record of the sock_create hook: `type` and `proto` as given to
// socket(2), now.
egress_event SocketRecord(uint8_t family, uint8_t type, uint8_t proto,
                          const char* comm) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.hook = EGRESS_HOOK_SOCK_CREATE;
  e.verdict = EGRESS_VERDICT_AUDIT;
  e.reason = EGRESS_REASON_SOCKET_TYPE;
  e.family = family;
  e.sock_type = type;
  e.proto = proto;
  e.tgid = 42;
  std::strncpy(e.comm, comm, sizeof e.comm - 1);
  // ts_ns is 0: the offset makes the record's time now.
  return e;
}

// The rules of `yaml` that allow raw sockets.
size_t RawRules(const std::string& yaml) {
  absl::StatusOr<policy::Policy> p = policy::ParsePolicy(yaml, "web.yaml");
  EXPECT_TRUE(p.ok()) << p.status() << "\n" << yaml;
  if (!p.ok()) return 0;
  size_t n = 0;
  for (const policy::Rule& r : p->rules) {
    if (r.ports.size() == 1 && r.ports[0].proto == policy::Proto::kRaw) ++n;
  }
  return n;
}

class RawLearnTest : public LearnerFixture {
 protected:
  const int64_t now_ = absl::GetCurrentTimeNanos();
};

TEST_F(RawLearnTest, AuditedRawSocketIsSuggestedAsRawRule) {
  Learn(SocketRecord(EGRESS_FAMILY_IPV4, SOCK_RAW, IPPROTO_ICMP, "ping"),
        /*allows_recorded=*/false);
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("raw: true")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("not checked per destination")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("by ping")) << yaml;
  ASSERT_EQ(RawRules(yaml), 1u) << yaml;
  // Applied, it lets the target create raw sockets.
  absl::StatusOr<policy::Policy> p = policy::ParsePolicy(yaml, "web.yaml");
  ASSERT_OK(p.status());
  std::vector<policy::Rule> rules = p->rules;
  for (size_t i = 0; i < rules.size(); ++i) rules[i].id = i + 1;
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset c, policy::Compile(1, rules));
  EXPECT_EQ(c.flags & EGRESS_TF_ALLOW_RAW, EGRESS_TF_ALLOW_RAW);
}

TEST_F(RawLearnTest, RawSocketsOfBothFamiliesMakeOneRuleThatOutlivesRestart) {
  for (int i = 0; i < 3; ++i) {
    Learn(SocketRecord(EGRESS_FAMILY_IPV4, SOCK_RAW, IPPROTO_ICMP, "ping"),
          /*allows_recorded=*/false);
  }
  Learn(SocketRecord(EGRESS_FAMILY_IPV6, SOCK_RAW, IPPROTO_ICMPV6, "ping6"),
        /*allows_recorded=*/false);
  ASSERT_OK(learner_->Flush());
  Restart();  // egressd restarted
  const std::string yaml = Suggestion();
  EXPECT_EQ(RawRules(yaml), 1u) << yaml;
  EXPECT_THAT(yaml, HasSubstr("3 attempts by ping")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("1 attempt by ping6")) << yaml;
}

TEST_F(RawLearnTest, OtherRefusedSocketKindsAreNotRaw) {
  // A ping socket and a UDP-Lite socket are refused as socket types too,
  // but `raw: true` would not allow them (and would allow far more).
  Learn(SocketRecord(EGRESS_FAMILY_IPV4, SOCK_DGRAM, IPPROTO_ICMP, "ping"),
        /*allows_recorded=*/false);
  Learn(SocketRecord(EGRESS_FAMILY_IPV4, SOCK_DGRAM, IPPROTO_UDPLITE, "lite"),
        /*allows_recorded=*/false);
  const std::string yaml = Suggestion();
  EXPECT_EQ(RawRules(yaml), 0u) << yaml;
  EXPECT_THAT(yaml, Not(HasSubstr("raw")));
}

policy::Observation RawSeen(uint8_t family, uint8_t ip_proto, uint64_t count,
                            std::string comm) {
  policy::Observation o;
  o.raw = true;
  o.family = family;
  o.ip_proto = ip_proto;
  o.count = count;
  o.first_seen_ns = 1'795'514'400'000'000'000;
  o.last_seen_ns = o.first_seen_ns + 60'000'000'000;
  o.processes = {std::move(comm)};
  return o;
}

TEST(RawSuggestTest, RawObservationsBecomeOneRuleSayingWhatItAllows) {
  policy::Observation smtp;
  smtp.family = 4;
  smtp.addr = {10, 0, 0, 5};
  smtp.ip_proto = IPPROTO_TCP;
  smtp.port = 25;
  smtp.count = 1;
  policy::SuggestOptions o;
  o.name = "web";
  o.target = {policy::TargetSource::kUnit, "web.service"};
  ASSERT_OK_AND_ASSIGN(
      const std::string yaml,
      policy::SuggestPolicy({RawSeen(6, IPPROTO_ICMPV6, 1, "ping6"), smtp,
                             RawSeen(4, IPPROTO_ICMP, 2, "ping")},
                            o));
  EXPECT_THAT(yaml, HasSubstr("and raw sockets: 4 attempts seen")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("# raw sockets: raw packets are not checked "
                              "per destination\n"))
      << yaml;
  EXPECT_THAT(yaml, HasSubstr("#   IPv4 icmp: 2 attempts by ping;")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("#   IPv6 icmpv6: 1 attempt by ping6;")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("  - name: raw\n    raw: true\n")) << yaml;
  EXPECT_EQ(RawRules(yaml), 1u);
  // The rest is as without raw sockets.
  EXPECT_THAT(yaml, HasSubstr("cidr: 10.0.0.5/32")) << yaml;

  // Only raw sockets seen: the policy allows them and nothing else.
  ASSERT_OK_AND_ASSIGN(
      const std::string raw_only,
      policy::SuggestPolicy({RawSeen(4, IPPROTO_RAW, 1, "tool")}, o));
  EXPECT_THAT(raw_only, Not(HasSubstr("Nothing was observed"))) << raw_only;
  EXPECT_THAT(raw_only, HasSubstr("IPv4 any protocol (IPPROTO_RAW)"))
      << raw_only;
  ASSERT_OK_AND_ASSIGN(policy::Policy p,
                       policy::ParsePolicy(raw_only, "web.yaml"));
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].spec, "raw");

  policy::Observation bad = RawSeen(5, IPPROTO_ICMP, 1, "x");
  EXPECT_THAT(policy::SuggestPolicy({smtp, bad}, o).status().message(),
              HasSubstr("observation 1: raw socket family 5 is not 4 or 6"));
}

TEST(RawLearnStoreTest, RawSocketsAreKeptApartAndRoundTrip) {
  LearnStore s;
  s.RecordRaw("web", 4, IPPROTO_ICMP, 2, 200, "ping");
  s.RecordRaw("web", 4, IPPROTO_ICMP, 1, 100, "fping");
  s.RecordRaw("web", 6, IPPROTO_ICMPV6, 1, 300, "");
  s.RecordRaw("web", 1, IPPROTO_ICMP, 1, 300, "x");  // not inet: ignored
  s.Record("web", 4, {10, 0, 0, 5}, IPPROTO_ICMP, 0, 1, 50, "ping");
  s.RecordUnix("web", "/run/x.sock", 1, 50, "ping");
  const std::vector<policy::Observation> q = s.Query("web", 0);
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0].unix_path, "/run/x.sock");
  EXPECT_FALSE(q[1].raw);  // the ICMP destination
  EXPECT_TRUE(q[2].raw);
  EXPECT_EQ(q[2].family, 4);
  EXPECT_EQ(q[2].ip_proto, IPPROTO_ICMP);
  EXPECT_EQ(q[2].count, 3u);
  EXPECT_EQ(q[2].first_seen_ns, 100);
  EXPECT_EQ(q[2].processes, (std::vector<std::string>{"fping", "ping"}));
  EXPECT_TRUE(q[3].raw);
  EXPECT_EQ(q[3].family, 6);

  const nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["targets"]["web"]["entries"][2]["raw"], true) << j.dump();
  EXPECT_FALSE(j["targets"]["web"]["entries"][2].contains("addr"));
  ASSERT_OK_AND_ASSIGN(LearnStore back, LearnStore::FromJson(j, "learn.json"));
  EXPECT_EQ(back.ToJson(), j);
  nlohmann::json bad = j;
  bad["targets"]["web"]["entries"][2]["family"] = 1;
  EXPECT_THAT(LearnStore::FromJson(bad, "learn.json").status().message(),
              HasSubstr("learn.json: targets.web.entries[2].family: 1 is not "
                        "4 or 6"));
}

TEST_F(RawLearnTest, HistoryKeepsRawSocketsBesideDestinations) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LearnHistory> h,
                       LearnHistory::Open(dir_ + "/learned.db"));
  policy::Observation ping = RawSeen(4, IPPROTO_ICMP, 2, "ping");
  ping.first_seen_ns = ping.last_seen_ns = now_;
  policy::Observation tcp;
  tcp.family = 4;
  tcp.addr = {10, 0, 0, 5};
  tcp.ip_proto = IPPROTO_TCP;
  tcp.port = 443;
  tcp.count = 1;
  tcp.first_seen_ns = tcp.last_seen_ns = now_;
  ASSERT_OK(h->Add("web", {ping, tcp}, now_));
  ASSERT_OK(h->Add("web", {ping}, now_));
  ASSERT_OK_AND_ASSIGN(std::vector<policy::Observation> seen,
                       h->Query("web", 0));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].raw);
  EXPECT_EQ(seen[0].port, 443);
  EXPECT_TRUE(seen[1].raw);
  EXPECT_EQ(seen[1].family, 4);
  EXPECT_EQ(seen[1].ip_proto, IPPROTO_ICMP);
  EXPECT_EQ(seen[1].count, 4u);
}

}  // namespace
}  // namespace egress
