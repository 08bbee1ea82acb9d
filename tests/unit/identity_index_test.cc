#include "userspace/policy/identity_index.h"

#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

Rule AllowTcp(uint16_t port, const char* dest) {
  Rule r;
  r.action = Action::kAllow;
  r.ports = {Tcp(port)};
  r.destinations = {C(dest)};
  return r;
}

// Equal identities hash alike however they are spelled, and the index
// finds the first rule listed with one.
TEST(IdentityIndexTest, FindsTheFirstRuleOfAnIdentity) {
  std::vector<Rule> rules = {AllowTcp(443, "10.0.0.1"),
                             AllowTcp(443, "10.0.0.2"),
                             AllowTcp(443, "10.0.0.1/32")};
  IdentityHasher hash;
  EXPECT_EQ(hash(rules[0]), hash(rules[2]));
  EXPECT_NE(hash(rules[0]), hash(rules[1]));
  IdentityIndex index(rules.size());
  for (uint32_t i = 0; i < rules.size(); ++i) index.Add(hash(rules[i]), i);
  auto at = [&](uint32_t i) -> const Rule& { return rules[i]; };
  EXPECT_EQ(index.Find(hash(rules[2]), rules[2], at), std::optional(0u));
  EXPECT_EQ(index.Find(hash(rules[1]), rules[1], at), std::optional(1u));
  const Rule other = AllowTcp(80, "10.0.0.1");
  EXPECT_EQ(index.Find(hash(other), other, at), std::nullopt);
}

// Two identities under one hash (as two 64-bit hashes may collide) are
// told apart by the rules themselves.
TEST(IdentityIndexTest, RulesSharingAHashAreToldApart) {
  std::vector<Rule> rules = {AllowTcp(443, "10.0.0.1"),
                             AllowTcp(22, "10.0.0.9"),
                             AllowTcp(53, "10.0.0.7")};
  IdentityIndex index(rules.size());
  for (uint32_t i = 0; i < rules.size(); ++i) index.Add(42, i);
  auto at = [&](uint32_t i) -> const Rule& { return rules[i]; };
  for (uint32_t i = 0; i < rules.size(); ++i) {
    EXPECT_EQ(index.Find(42, rules[i], at), std::optional(i));
  }
  EXPECT_EQ(index.Find(42, AllowTcp(443, "10.0.0.2"), at), std::nullopt);
  EXPECT_EQ(index.Find(7, rules[0], at), std::nullopt);
}

}  // namespace
}  // namespace egress::policy
