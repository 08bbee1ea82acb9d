#include "userspace/policy/compile_deny_summary.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/compile_changes.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

constexpr uint32_t kRs = 7;

// allow 443/tcp api.example.test (an exact name entry) and allow tcp (every
// port) any.example.test (a trie name entry), then `more`.
CompiledRuleset CompileWithNames(std::vector<Rule> more) {
  std::vector<Rule> rules = {
      MakeRule(1, Action::kAllow, {Tcp(443)}, {}, {"api.example.test"}),
      MakeRule(2, Action::kAllow, {Tcp(0, 65535)}, {}, {"any.example.test"}),
      MakeRule(3, Action::kAllow, {Tcp(443)}, {C("10.0.0.0/8")})};
  for (Rule& r : more) rules.push_back(std::move(r));
  absl::StatusOr<CompiledRuleset> c = Compile(kRs, rules);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : CompiledRuleset{};
}

// The value of the name entry of rule `id`: the exact one for rule 1, the
// trie one for rule 2.
egress_rule_value NameValue(const CompiledRuleset& c, uint32_t id) {
  for (const auto& [k, v] : c.exact) {
    if (k.family == EGRESS_FAMILY_NAME && v.rule_id == id) return v;
  }
  for (const auto& [k, v] : c.rules) {
    if (k.family == EGRESS_FAMILY_NAME && v.rule_id == id) return v;
  }
  ADD_FAILURE() << "no name entry of rule " << id;
  return {};
}

TEST(CompileDenySummaryTest, NoAddressDenySaysSo) {
  const CompiledRuleset c = CompileWithNames({});
  for (uint32_t id : {1u, 2u}) {
    const egress_rule_value v = NameValue(c, id);
    EXPECT_EQ(v.flags, EGRESS_RULE_F_DENY_SUMMARY) << id;
    EXPECT_EQ(v.v4_deny_octets, 0) << id;
  }
  // Address entries carry no summary.
  for (const auto& [k, v] : c.rules) {
    if (k.family != EGRESS_FAMILY_NAME) {
      EXPECT_EQ(v.flags, 0);
    }
  }
}

TEST(CompileDenySummaryTest, AnyPortDenyIsInEveryNameEntryOfItsProtocol) {
  const CompiledRuleset c = CompileWithNames(
      {MakeRule(4, Action::kDeny, {Tcp(0, 65535)}, {C("10.1.0.0/16")})});
  for (uint32_t id : {1u, 2u}) {
    const egress_rule_value v = NameValue(c, id);
    EXPECT_EQ(v.flags, EGRESS_RULE_F_DENY_SUMMARY) << id;
    EXPECT_EQ(v.v4_deny_octets, DenyOctetBit(10)) << id;
  }
  EXPECT_NE(DenyOctetBit(10), DenyOctetBit(127));
}

TEST(CompileDenySummaryTest, OtherProtocolsAndOtherPortClassesDoNotCount) {
  // A udp deny, and a tcp deny of port 22 only (its own port class).
  const CompiledRuleset c = CompileWithNames(
      {MakeRule(4, Action::kDeny, {Udp(0, 65535)}, {C("10.1.0.0/16")}),
       MakeRule(5, Action::kDeny, {Tcp(22)}, {C("172.16.0.0/12")})});
  EXPECT_EQ(NameValue(c, 1).v4_deny_octets, 0);  // 443: not port 22's class
  // Every port: the class of 22 is probed first.
  EXPECT_EQ(NameValue(c, 2).v4_deny_octets, DenyOctetBit(172));
}

TEST(CompileDenySummaryTest, ExactDeniesNeedNoSummary) {
  // A whole address and one port: an exact entry, probed before the names.
  const CompiledRuleset c = CompileWithNames(
      {MakeRule(4, Action::kDeny, {Tcp(443)}, {C("10.0.0.9/32")})});
  EXPECT_EQ(NameValue(c, 1).v4_deny_octets, 0);
  EXPECT_EQ(NameValue(c, 2).v4_deny_octets, 0);
}

TEST(CompileDenySummaryTest, ShortPrefixesAndIpv6) {
  const CompiledRuleset c = CompileWithNames(
      {MakeRule(4, Action::kDeny, {Tcp(0, 65535)}, {C("64.0.0.0/6")}),
       MakeRule(5, Action::kDeny, {Tcp(0, 65535)}, {C("fd00::/8")})});
  const egress_rule_value v = NameValue(c, 1);
  EXPECT_EQ(v.flags, EGRESS_RULE_F_DENY_SUMMARY | EGRESS_RULE_F_V6_DENY);
  EXPECT_EQ(v.v4_deny_octets, DenyOctetBit(64) | DenyOctetBit(65) |
                                  DenyOctetBit(66) | DenyOctetBit(67));
  const CompiledRuleset wide = CompileWithNames(
      {MakeRule(4, Action::kDeny, {Tcp(0, 65535)}, {C("0.0.0.0/2")})});
  EXPECT_EQ(NameValue(wide, 1).v4_deny_octets, 0xffff);
}

// A recompile that adds or removes an address deny rewrites the summary of
// the name entries it did not reach, as a whole compile does.
TEST(CompileDenySummaryTest, RecompileFollowsADenyAddedOrRemoved) {
  std::vector<Rule> before = {
      MakeRule(1, Action::kAllow, {Tcp(443)}, {}, {"api.example.test"}),
      MakeRule(3, Action::kAllow, {Tcp(8000, 8100)}, {C("10.0.0.0/8")})};
  std::vector<Rule> after = before;
  after.push_back(
      MakeRule(4, Action::kDeny, {Tcp(8000, 8100)}, {C("10.1.0.0/16")}));
  absl::StatusOr<CompiledRuleset> old_set = Compile(kRs, before);
  ASSERT_TRUE(old_set.ok()) << old_set.status();
  std::optional<CompiledRuleset> added =
      RecompileChanged(*old_set, before, after, kRs + 1);
  ASSERT_TRUE(added.has_value());
  // 443 is not in 8000-8100's class: no deny for it.
  EXPECT_EQ(NameValue(*added, 1).v4_deny_octets, 0);
  // A name rule of that range sees the deny, and loses it with the rule.
  before.push_back(MakeRule(6, Action::kAllow, {Tcp(8000, 8100)}, {},
                            {"range.example.test"}));
  after.push_back(before.back());
  old_set = Compile(kRs, before);
  ASSERT_TRUE(old_set.ok()) << old_set.status();
  added = RecompileChanged(*old_set, before, after, kRs + 1);
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ(NameValue(*added, 6).v4_deny_octets, DenyOctetBit(10));
  absl::StatusOr<CompiledRuleset> whole = Compile(kRs + 1, after);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(NameValue(*whole, 6).v4_deny_octets, DenyOctetBit(10));
  std::optional<CompiledRuleset> removed =
      RecompileChanged(*added, after, before, kRs + 2);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(NameValue(*removed, 6).v4_deny_octets, 0);
  EXPECT_EQ(NameValue(*removed, 6).flags, EGRESS_RULE_F_DENY_SUMMARY);
}

}  // namespace
}  // namespace egress::policy
