#include "userspace/policy/identity_index.h"

#include <optional>
#include <string>
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

std::string KeyOf(const Rule& r) {
  std::string key;
  AppendIdentityKey(r, key);
  return key;
}

// The key is equal exactly where the identity text is, over the ways one
// identity is written: spelled ports, joined ranges, destinations as a
// set, "anywhere", and rules whose identity ends in empty text.
TEST(IdentityIndexTest, KeysAreEqualExactlyWhereIdentitiesAre) {
  Rule https = AllowTcp(443, "10.0.0.1");
  https.ports = {Tcp(443), Udp(443)};
  Rule https_again = https;
  https_again.ports = {Udp(443), Tcp(443), Tcp(443)};
  Rule joined = AllowTcp(1, "10.0.0.0/24");
  joined.ports = {Tcp(1, 10), Tcp(11, 20)};
  Rule one_range = AllowTcp(1, "10.0.0.0/24");
  one_range.ports = {Tcp(1, 20)};
  Rule halves = AllowTcp(443, "10.0.0.0/25");
  halves.destinations = {C("10.0.0.128/25"), C("10.0.0.0/25")};
  Rule anywhere = AllowTcp(443, "10.0.0.1");
  anywhere.destinations.clear();
  Rule both_families = anywhere;
  both_families.destinations = {Cidr::AnyV6(), Cidr::AnyV4()};
  // A name list of one empty name: its text is empty, so its identity is
  // the plain rule's (and it is not "anywhere").
  Rule empty_name = AllowTcp(443, "10.0.0.1");
  empty_name.names = {""};
  Rule no_destination_empty_name = anywhere;
  no_destination_empty_name.names = {""};
  Rule named = AllowTcp(443, "10.0.0.1");
  named.names = {"example.com"};
  Rule hosted = AllowTcp(443, "10.0.0.1");
  hosted.host = "example.com";
  Rule deny = AllowTcp(443, "10.0.0.1");
  deny.action = Action::kDeny;
  Rule v6 = AllowTcp(443, "2001:db8::1");
  Rule v6_net = AllowTcp(443, "2001:db8::/64");
  const std::vector<Rule> rules = {AllowTcp(443, "10.0.0.1"),
                                   AllowTcp(443, "10.0.0.1/32"),
                                   https,
                                   https_again,
                                   joined,
                                   one_range,
                                   halves,
                                   AllowTcp(443, "10.0.0.0/24"),
                                   anywhere,
                                   both_families,
                                   empty_name,
                                   no_destination_empty_name,
                                   named,
                                   hosted,
                                   deny,
                                   v6,
                                   v6_net};
  for (size_t i = 0; i < rules.size(); ++i) {
    for (size_t j = 0; j < rules.size(); ++j) {
      EXPECT_EQ(KeyOf(rules[i]) == KeyOf(rules[j]),
                RuleIdentity(rules[i]) == RuleIdentity(rules[j]))
          << RuleIdentity(rules[i]) << " / " << RuleIdentity(rules[j]);
    }
  }
  // The cases above that share an identity.
  EXPECT_EQ(KeyOf(rules[0]), KeyOf(rules[1]));
  EXPECT_EQ(KeyOf(https), KeyOf(https_again));
  EXPECT_EQ(KeyOf(joined), KeyOf(one_range));
  EXPECT_EQ(KeyOf(halves), KeyOf(rules[7]));
  EXPECT_EQ(KeyOf(anywhere), KeyOf(both_families));
  EXPECT_EQ(KeyOf(empty_name), KeyOf(rules[0]));
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

// Add says whether its hash is new (then the rule is the first of its
// identity); FindOrAdd finds a rule's identity among those added or adds
// the value, as Find then Add would.
TEST(IdentityIndexTest, AddSaysWhetherAHashIsNewAndFindOrAddAddsOnce) {
  std::vector<Rule> rules = {AllowTcp(443, "10.0.0.1"),
                             AllowTcp(22, "10.0.0.9"),
                             AllowTcp(443, "10.0.0.1/32")};
  IdentityIndex added(rules.size());
  EXPECT_TRUE(added.Add(42, 0));
  EXPECT_FALSE(added.Add(42, 1));
  EXPECT_TRUE(added.Add(7, 2));

  // rules[0] and rules[1] under one hash, then rules[2] (rules[0]'s
  // identity), then a rule of another identity under that hash again.
  IdentityIndex index(rules.size());
  auto at = [&](uint32_t i) -> const Rule& { return rules[i]; };
  EXPECT_EQ(index.FindOrAdd(42, rules[0], at, 0), std::nullopt);
  EXPECT_EQ(index.FindOrAdd(42, rules[1], at, 1), std::nullopt);
  EXPECT_EQ(index.FindOrAdd(42, rules[2], at, 2), std::optional(0u));
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(index.Find(42, rules[i], at), std::optional(i));
  }
  rules.push_back(AllowTcp(53, "10.0.0.7"));
  EXPECT_EQ(index.FindOrAdd(42, rules[3], at, 3), std::nullopt);
  EXPECT_EQ(index.Find(42, rules[3], at), std::optional(3u));
}

}  // namespace
}  // namespace egress::policy
