#include "userspace/policy/compiled_diff.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

Rule Allow(uint32_t id, const std::string& cidr, uint16_t port) {
  Rule r;
  r.id = id;
  r.action = Action::kAllow;
  r.destinations.push_back(*Cidr::Parse(cidr));
  r.ports.push_back({Proto::kTcp, port, port});
  return r;
}

// The maps' copy of `from` after writing the diff's upserts and deleting
// its deletes, as a sorted list of key+value bytes: equal to `to`'s.
template <typename Entries>
std::vector<std::string> Apply(const Entries& from, const Entries& upserts,
                               const Entries& deletes) {
  std::map<std::string, std::string> m;
  auto key = [](const auto& k) {
    return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
  };
  for (const auto& [k, v] : from) m[key(k)] = key(v);
  for (const auto& [k, v] : upserts) m[key(k)] = key(v);
  for (const auto& [k, v] : deletes) m.erase(key(k));
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k + v);
  return out;
}

template <typename Entries>
std::vector<std::string> Sorted(const Entries& e) {
  return Apply(e, Entries{}, Entries{});
}

TEST(CompiledDiffTest, OneAddedRuleWritesOnlyItsEntries) {
  std::vector<Rule> rules;
  for (uint32_t i = 1; i <= 1000; ++i) {
    rules.push_back(Allow(i,
                          "10.0." + std::to_string(i / 256) + "." +
                              std::to_string(i % 256) + "/32",
                          443));
  }
  absl::StatusOr<CompiledRuleset> before = Compile(7, rules);
  ASSERT_TRUE(before.ok()) << before.status();
  rules.push_back(Allow(1001, "192.0.2.1/32", 443));
  absl::StatusOr<CompiledRuleset> after = Compile(7, rules);
  ASSERT_TRUE(after.ok());
  const CompiledDiff d = DiffCompiled(*before, *after);
  // One host, one port: an exact_rules key (compile_exact.h).
  EXPECT_EQ(d.upserts.exact.size(), 1u);
  EXPECT_TRUE(d.deletes.exact.empty());
  EXPECT_TRUE(d.upserts.rules.empty());
  EXPECT_TRUE(d.upserts.ports.empty());
  EXPECT_EQ(d.upserts.ruleset, 7u);
  EXPECT_EQ(Apply(before->exact, d.upserts.exact, d.deletes.exact),
            Sorted(after->exact));
  // The same in the tries alone.
  absl::StatusOr<CompiledRuleset> trie_after = Compile(7, rules, 0);
  rules.pop_back();
  absl::StatusOr<CompiledRuleset> trie_before = Compile(7, rules, 0);
  ASSERT_TRUE(trie_before.ok() && trie_after.ok());
  const CompiledDiff t = DiffCompiled(*trie_before, *trie_after);
  EXPECT_EQ(t.upserts.rules.size(), 1u);
  EXPECT_TRUE(t.deletes.rules.empty());
  EXPECT_TRUE(t.upserts.ports.empty());
  EXPECT_EQ(Apply(trie_before->rules, t.upserts.rules, t.deletes.rules),
            Sorted(trie_after->rules));
}

TEST(CompiledDiffTest, ChangedValuesAndRemovedKeysAndNewPortClasses) {
  std::vector<Rule> a = {Allow(1, "10.0.0.0/8", 443),
                         Allow(2, "192.0.2.0/24", 80)};
  std::vector<Rule> b = {Allow(3, "10.0.0.0/8", 443),  // same key, new id
                         Allow(4, "198.51.100.0/24", 8000)};
  Rule deny;
  deny.id = 5;
  deny.action = Action::kDeny;
  deny.destinations.push_back(*Cidr::Parse("10.1.0.0/16"));
  deny.ports.push_back({Proto::kTcp, 0, 65535});
  b.push_back(deny);
  absl::StatusOr<CompiledRuleset> from = Compile(9, a);
  absl::StatusOr<CompiledRuleset> to = Compile(9, b);
  ASSERT_TRUE(from.ok() && to.ok());
  const CompiledDiff d = DiffCompiled(*from, *to);
  EXPECT_FALSE(d.deletes.rules.empty());
  EXPECT_EQ(Apply(from->rules, d.upserts.rules, d.deletes.rules),
            Sorted(to->rules));
  EXPECT_EQ(Apply(from->ports, d.upserts.ports, d.deletes.ports),
            Sorted(to->ports));
  EXPECT_EQ(d.upserts.flags, to->flags);
}

TEST(CompiledDiffTest, EqualSetsNeedNothing) {
  std::vector<Rule> a = {Allow(1, "10.0.0.0/8", 443)};
  absl::StatusOr<CompiledRuleset> x = Compile(3, a);
  ASSERT_TRUE(x.ok());
  const CompiledDiff d = DiffCompiled(*x, *x);
  EXPECT_TRUE(d.upserts.rules.empty() && d.upserts.ports.empty() &&
              d.deletes.rules.empty() && d.deletes.ports.empty());
}

}  // namespace
}  // namespace egress::policy
