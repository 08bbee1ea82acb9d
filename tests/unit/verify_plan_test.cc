// Which probes `egressctl verify` plans for a rule set.
#include "userspace/cli/verify_plan.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/spec.h"

namespace egress::cli {
namespace {

policy::Rule R(policy::Action action, std::vector<std::string> words,
               uint32_t id) {
  auto r = policy::ParseRuleWords(action, words);
  EXPECT_TRUE(r.ok()) << r.status();
  r->id = id;
  return *r;
}

std::string Show(const Probe& p) {
  return absl::StrCat(p.expect_allowed ? "allow " : "deny ",
                      policy::ProtoName(p.proto), " ", p.address, ":", p.port);
}

std::vector<std::string> Shown(const std::vector<Probe>& probes) {
  std::vector<std::string> out;
  for (const Probe& p : probes) out.push_back(Show(p));
  return out;
}

TEST(VerifyPlanTest, ProbesEachAllowRuleAndDeniesAFewOthers) {
  std::vector<policy::Rule> rules = {
      R(policy::Action::kAllow, {"dns", "10.0.0.53"}, 1),
      R(policy::Action::kAllow, {"443/tcp", "203.0.113.0/24"}, 2),
      R(policy::Action::kAllow, {"8000-8080/tcp", "2001:db8:1::/48"}, 3),
      R(policy::Action::kAllow, {"smtp"}, 4),  // anywhere: nothing to aim at
  };
  EXPECT_EQ(Shown(PlanProbes(rules)),
            (std::vector<std::string>{
                "allow tcp 10.0.0.53:53", "allow udp 10.0.0.53:53",
                "allow tcp 203.0.113.1:443", "allow tcp 2001:db8:1::1:8000",
                "deny udp 192.0.2.1:9", "deny udp 192.0.2.53:53",
                "deny udp 2001:db8::1:9", "deny tcp 127.0.0.1:9"}));
  EXPECT_EQ(PlanProbes(rules)[0].rule_id, 1u);
  EXPECT_NE(PlanProbes(rules)[0].why.find("rule 1: ALLOW dns"),
            std::string::npos);
}

TEST(VerifyPlanTest, DenyRulesAndAllowedCandidatesAreRespected) {
  std::vector<policy::Rule> rules = {
      R(policy::Action::kAllow, {"443/tcp", "203.0.113.1", "203.0.113.7"}, 1),
      R(policy::Action::kDeny, {"any", "203.0.113.1"}, 2),
      R(policy::Action::kAllow, {"any", "127.0.0.0/8"}, 3),
      R(policy::Action::kAllow, {"9/udp", "192.0.2.1"}, 4),
  };
  std::vector<std::string> shown = Shown(PlanProbes(rules));
  // The denied first destination is skipped for the next one.
  EXPECT_EQ(shown[0], "allow tcp 203.0.113.7:443");
  // Loopback and 192.0.2.1:9/udp are allowed: not deny probes.
  for (const std::string& s : shown) {
    EXPECT_NE(s, "deny tcp 127.0.0.1:9");
    EXPECT_NE(s, "deny udp 192.0.2.1:9");
  }
  EXPECT_TRUE(RulesAllow(rules, policy::Proto::kTcp, "203.0.113.7", 443));
  EXPECT_FALSE(RulesAllow(rules, policy::Proto::kTcp, "203.0.113.1", 443));
  EXPECT_FALSE(RulesAllow(rules, policy::Proto::kUdp, "203.0.113.7", 443));
  EXPECT_FALSE(RulesAllow({}, policy::Proto::kTcp, "127.0.0.1", 80));
}

// A name rule allows whatever address the target's own lookups bound to its
// names, 127.0.0.1 included: a deny probe on its protocol and port would
// prove nothing (and got through as a false FAIL). Other ports are probed.
TEST(VerifyPlanTest, NoDenyProbeWhereANameRuleCouldAllowIt) {
  const std::vector<policy::Rule> rules = {
      R(policy::Action::kAllow, {"tcp", "api.shop.test"}, 1),
      R(policy::Action::kAllow, {"53/udp", "resolver.test"}, 2),
  };
  const std::vector<std::string> shown = Shown(PlanProbes(rules));
  EXPECT_EQ(shown, (std::vector<std::string>{"deny udp 192.0.2.1:9",
                                             "deny udp 2001:db8::1:9"}));
}

TEST(VerifyPlanTest, AllowProbesAreBounded) {
  std::vector<policy::Rule> rules;
  for (int i = 1; i <= 100; ++i) {
    rules.push_back(R(policy::Action::kAllow,
                      {absl::StrCat(1000 + i, "/tcp"), "10.1.0.1"}, i));
  }
  size_t allow = 0;
  for (const Probe& p : PlanProbes(rules, 32)) allow += p.expect_allowed;
  EXPECT_EQ(allow, 32u);
}

}  // namespace
}  // namespace egress::cli
