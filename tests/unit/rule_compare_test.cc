#include "userspace/policy/rule_compare.h"

#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/spec.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;

Rule MakeRule(Action action, std::vector<PortProto> ports,
              std::vector<Cidr> destinations = {}) {
  Rule r;
  r.action = action;
  r.ports.assign(ports.begin(), ports.end());
  r.destinations.assign(destinations.begin(), destinations.end());
  return r;
}
Rule Allow(std::vector<PortProto> ports, std::vector<Cidr> destinations = {}) {
  return MakeRule(Action::kAllow, std::move(ports), std::move(destinations));
}
Rule Deny(std::vector<PortProto> ports, std::vector<Cidr> destinations = {}) {
  return MakeRule(Action::kDeny, std::move(ports), std::move(destinations));
}
// Every tcp and udp port and icmp: "any".
std::vector<PortProto> Any() { return {Tcp(0, 65535), Udp(0, 65535), kIcmp}; }

// A rule as the operator's grammar reads "SPEC DEST" (no host names).
Rule Spelled(Action action, const std::string& spec, const std::string& dest) {
  absl::StatusOr<std::vector<PortProto>> ports = ParseSpec(spec);
  EXPECT_TRUE(ports.ok()) << ports.status();
  Rule r = MakeRule(action, ports.ok() ? *ports : std::vector<PortProto>{},
                    {C(dest)});
  r.spec = spec;
  return r;
}

TEST(CanonicalPortsTest, SortsJoinsAndDropsDuplicates) {
  EXPECT_THAT(CanonicalPorts({Udp(53), Tcp(11, 20), Tcp(1, 10), Tcp(5), kIcmp,
                              Tcp(30, 40), kIcmp}),
              ElementsAre(Tcp(1, 20), Tcp(30, 40), Udp(53), kIcmp));
  // Overlapping ranges join; icmp's unused ports do not matter.
  EXPECT_THAT(CanonicalPorts({Tcp(100, 200), Tcp(150, 65535),
                              PortProto{Proto::kIcmp, 7, 7}, kRaw}),
              ElementsAre(Tcp(100, 65535), kIcmp, kRaw));
  EXPECT_THAT(CanonicalPorts({}), ElementsAre());
}

TEST(RuleIdentityTest, IgnoresIdCommentExpiryAndSpelling) {
  Rule a = Spelled(Action::kAllow, "smtp", "10.0.0.5");
  Rule b = Spelled(Action::kAllow, "25/tcp", "10.0.0.5/32");
  a.id = 3;
  a.comment = "relay";
  b.expires = 1700000000;
  EXPECT_NE(a.spec, b.spec);
  EXPECT_EQ(RuleIdentity(a), RuleIdentity(b));
  EXPECT_TRUE(SameRule(a, b));
  // https is 443/tcp + 443/udp, as is a bare 443.
  EXPECT_TRUE(SameRule(Spelled(Action::kAllow, "https", "192.0.2.1"),
                       Spelled(Action::kAllow, "443", "192.0.2.1")));
}

TEST(RuleIdentityTest, ComparesSetsNotLists) {
  EXPECT_TRUE(SameRule(Allow({Udp(53), Tcp(53)}, {C("::1"), C("10.0.0.1")}),
                       Allow({Tcp(53), Udp(53), Tcp(53)},
                             {C("10.0.0.1"), C("::1"), C("10.0.0.1")})));
  EXPECT_TRUE(SameRule(Allow({Tcp(1, 10), Tcp(11, 20)}), Allow({Tcp(1, 20)})));
  EXPECT_TRUE(
      SameRule(Allow({Tcp(443)}, {C("10.0.0.0/25"), C("10.0.0.128/25")}),
               Allow({Tcp(443)}, {C("10.0.0.0/24")})));
  // No destinations is anywhere, the same as both whole families.
  EXPECT_TRUE(
      SameRule(Allow(Any()), Allow(Any(), {Cidr::AnyV6(), Cidr::AnyV4()})));
}

// A rule of one port and one destination takes a shorter way to its
// identity: the same as the same rule with its port and destination listed
// twice (the general way), and still apart from rules that differ.
TEST(RuleIdentityTest, OnePortAndDestinationAsTheGeneralWay) {
  for (const Rule& one :
       {Allow({Tcp(443)}, {C("10.1.2.3")}),
        Deny({Udp(53)}, {C("2001:db8::/32")}),
        Allow({PortProto{Proto::kIcmp, 7, 7}}, {C("192.0.2.0/24")}),
        Allow({Tcp(1, 65535)}, {C("0.0.0.0/0")})}) {
    Rule twice = one;
    twice.ports.push_back(one.ports[0]);
    twice.destinations.push_back(one.destinations[0]);
    EXPECT_EQ(RuleIdentity(one), RuleIdentity(twice));
    Rule host = one;
    host.host = "api.example.org";
    Rule named = one;
    named.names = {"b.example", "a.example", "b.example"};
    Rule reordered = twice;
    reordered.names = {"a.example", "b.example"};
    EXPECT_NE(RuleIdentity(one), RuleIdentity(host));
    EXPECT_NE(RuleIdentity(one), RuleIdentity(named));
    EXPECT_EQ(RuleIdentity(named), RuleIdentity(reordered));
  }
  Rule unix_rule = Allow({PortProto{Proto::kUnix}});
  unix_rule.unix_paths = {"/run/b.sock", "/run/a.sock"};
  Rule unix_sorted = unix_rule;
  unix_sorted.unix_paths = {"/run/a.sock", "/run/b.sock", "/run/a.sock"};
  EXPECT_EQ(RuleIdentity(unix_rule), RuleIdentity(unix_sorted));
}

TEST(RuleIdentityTest, MeaningDiffers) {
  const Rule base = Allow({Tcp(25)}, {C("10.0.0.5")});
  EXPECT_FALSE(SameRule(base, Deny({Tcp(25)}, {C("10.0.0.5")})));
  EXPECT_FALSE(SameRule(base, Allow({Udp(25)}, {C("10.0.0.5")})));
  EXPECT_FALSE(SameRule(base, Allow({Tcp(25, 26)}, {C("10.0.0.5")})));
  EXPECT_FALSE(SameRule(base, Allow({Tcp(25)}, {C("10.0.0.6")})));
  EXPECT_FALSE(SameRule(base, Allow({Tcp(25)})));
  EXPECT_FALSE(SameRule(base, Allow({Tcp(25), kIcmp}, {C("10.0.0.5")})));
  EXPECT_FALSE(SameRule(Allow({Tcp(0, 65535)}), Allow({Tcp(1, 65535)})));
  EXPECT_FALSE(SameRule(Allow(Any(), {Cidr::AnyV4()}), Allow(Any())));
  Rule named = base;
  named.host = "mail.example";
  EXPECT_FALSE(SameRule(base, named));
}

// SameRuleAs answers what SameRule answers, for every pair of a set of
// rules that agree and differ in every part of their identity.
TEST(SameRuleAsTest, AgreesWithSameRule) {
  Rule named = Allow({Tcp(25)}, {C("10.0.0.5")});
  named.host = "mail.example";
  const std::vector<Rule> rules = {
      Spelled(Action::kAllow, "smtp", "10.0.0.5"),
      Spelled(Action::kAllow, "25/tcp", "10.0.0.5/32"),
      Spelled(Action::kAllow, "https", "192.0.2.1"),
      Spelled(Action::kAllow, "443", "192.0.2.1"),
      Allow({Udp(53), Tcp(53)}, {C("::1"), C("10.0.0.1")}),
      Allow({Tcp(53), Udp(53), Tcp(53)}, {C("10.0.0.1"), C("::1")}),
      Allow({Tcp(1, 10), Tcp(11, 20)}),
      Allow({Tcp(1, 20)}),
      Allow({Tcp(443)}, {C("10.0.0.0/25"), C("10.0.0.128/25")}),
      Allow({Tcp(443)}, {C("10.0.0.0/24")}),
      Allow(Any()),
      Allow(Any(), {Cidr::AnyV6(), Cidr::AnyV4()}),
      Allow(Any(), {Cidr::AnyV4()}),
      Allow({Tcp(25)}, {C("10.0.0.5")}),
      Deny({Tcp(25)}, {C("10.0.0.5")}),
      Allow({Udp(25)}, {C("10.0.0.5")}),
      Allow({Tcp(25), kIcmp}, {C("10.0.0.5")}),
      Allow({Tcp(25)}, {C("10.0.0.6")}),
      // One port word whose ports mean nothing (icmp, raw) whatever lo/hi
      // hold, and two that merge into one.
      Allow({kIcmp}, {C("10.0.0.5")}),
      Allow({PortProto{Proto::kIcmp, 7, 9}}, {C("10.0.0.5")}),
      Allow({PortProto{Proto::kRaw, 1, 2}}),
      Allow({PortProto{Proto::kRaw}}),
      Allow({Tcp(25, 25), Tcp(25)}, {C("10.0.0.6")}),
      named,
  };
  int same = 0;
  for (const Rule& a : rules) {
    const SameRuleAs same_as(a);
    for (const Rule& b : rules) {
      EXPECT_EQ(same_as(b), SameRule(a, b))
          << RuleIdentity(a) << " vs " << RuleIdentity(b);
      same += SameRule(a, b);
    }
  }
  EXPECT_GT(same, static_cast<int>(rules.size()));  // some pairs agree
}

TEST(ShadowingDenyTest, DenyCoveringTheWholeAllow) {
  const std::vector<Rule> rules = {
      Allow({Tcp(443)}, {C("203.0.113.0/24")}),
      Deny({Tcp(1, 1024)}, {C("10.0.0.0/8")}),
      Deny({Tcp(25)}, {C("192.0.2.0/24")}),
  };
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(80)}, {C("10.1.2.3")})), 1u);
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(22, 80)}, {C("10.1.0.0/16")})), 1u);
  EXPECT_EQ(ShadowingDeny(rules, Spelled(Action::kAllow, "smtp", "192.0.2.9")),
            2u);
}

TEST(ShadowingDenyTest, PartialOverlapIsNotShadowed) {
  const std::vector<Rule> rules = {Deny({Tcp(1, 1024)}, {C("10.0.0.0/8")})};
  // Some ports outside.
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(1000, 2000)}, {C("10.0.0.1")})),
            std::nullopt);
  // Another protocol.
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(80), Udp(80)}, {C("10.0.0.1")})),
            std::nullopt);
  // Some destinations outside.
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(80)}, {C("10.0.0.0/7")})),
            std::nullopt);
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(80)}, {C("10.0.0.1"), C("::1")})),
            std::nullopt);
  // Anywhere is more than 10.0.0.0/8.
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(80)})), std::nullopt);
  // Two denies that only together cover it: each one alone does not.
  const std::vector<Rule> halves = {Deny({Tcp(80)}, {C("10.0.0.0/25")}),
                                    Deny({Tcp(80)}, {C("10.0.0.128/25")})};
  EXPECT_EQ(ShadowingDeny(halves, Allow({Tcp(80)}, {C("10.0.0.0/24")})),
            std::nullopt);
}

TEST(ShadowingDenyTest, UnionsWithinOneDenyCount) {
  const std::vector<Rule> rules = {Deny(
      {Tcp(1, 100), Tcp(101, 200)}, {C("10.0.0.0/25"), C("10.0.0.128/25")})};
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(50, 150)}, {C("10.0.0.0/24")})),
            0u);
}

TEST(ShadowingDenyTest, AnyDenyShadowsEverything) {
  const std::vector<Rule> rules = {Allow({Tcp(443)}), Deny(Any())};
  for (const Rule& allow :
       {Allow(Any()), Allow({Tcp(443)}, {C("203.0.113.7")}),
        Allow({Udp(53)}, {C("2001:db8::53")}), Allow({kIcmp}, {C("::1")}),
        Allow({Tcp(1, 65535), Udp(0, 65535)})}) {
    EXPECT_EQ(ShadowingDeny(rules, allow), 1u) << RuleIdentity(allow);
  }
  // Any is tcp, udp and icmp; raw is a separate permission.
  EXPECT_EQ(ShadowingDeny(rules, Allow({kRaw})), std::nullopt);
}

TEST(ShadowingDenyTest, IcmpAndRaw) {
  const std::vector<Rule> rules = {
      Deny({kIcmp}, {C("192.0.2.0/24")}),
      Deny({kRaw}),
  };
  EXPECT_EQ(ShadowingDeny(rules, Allow({kIcmp}, {C("192.0.2.1")})), 0u);
  EXPECT_EQ(ShadowingDeny(rules, Allow({kIcmp}, {C("198.51.100.1")})),
            std::nullopt);
  // icmp does not cover tcp.
  EXPECT_EQ(ShadowingDeny(rules, Allow({Tcp(7)}, {C("192.0.2.1")})),
            std::nullopt);
  EXPECT_EQ(ShadowingDeny(rules, Allow({kRaw})), 1u);
  // A deny of tcp does not take raw away.
  EXPECT_EQ(ShadowingDeny({Deny({Tcp(0, 65535)})}, Allow({kRaw})),
            std::nullopt);
}

TEST(ShadowingDenyTest, OnlyAllowRulesWithPorts) {
  const std::vector<Rule> rules = {Deny(Any())};
  EXPECT_EQ(ShadowingDeny(rules, Deny({Tcp(80)})), std::nullopt);
  EXPECT_EQ(ShadowingDeny(rules, Allow({})), std::nullopt);
  EXPECT_EQ(ShadowingDeny({}, Allow({Tcp(80)})), std::nullopt);
}

}  // namespace
}  // namespace egress::policy
