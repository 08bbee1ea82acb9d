#include "userspace/policy/compile_changes.h"

#include <arpa/inet.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

// The entries as sorted key+value bytes: what the maps hold, whatever the
// order they were written in.
template <typename Entries>
std::vector<std::string> Sorted(const Entries& entries) {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries) {
    out.push_back(std::string(reinterpret_cast<const char*>(&k), sizeof(k)) +
                  std::string(reinterpret_cast<const char*>(&v), sizeof(v)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ExpectSameEntries(const CompiledRuleset& got,
                       const CompiledRuleset& want) {
  EXPECT_EQ(got.ruleset, want.ruleset);
  EXPECT_EQ(got.flags, want.flags);
  EXPECT_EQ(Sorted(got.ports), Sorted(want.ports));
  EXPECT_EQ(Sorted(got.rules), Sorted(want.rules));
  EXPECT_EQ(Sorted(got.exact), Sorted(want.exact));
  EXPECT_EQ(Sorted(got.names), Sorted(want.names));
  EXPECT_EQ(Sorted(got.unix_paths), Sorted(want.unix_paths));
}

// The recompile of `compiled` (of `before`) for `after` into ruleset 4,
// checked against a whole compile of `after`; nullopt (a failure recorded)
// when the recompile does not take the change.
std::optional<CompiledRuleset> RecompiledAsWhole(
    const CompiledRuleset& compiled, const std::vector<Rule>& before,
    const std::vector<Rule>& after) {
  std::optional<CompiledRuleset> got =
      RecompileChanged(compiled, before, after, 4);
  EXPECT_TRUE(got.has_value());
  absl::StatusOr<CompiledRuleset> want = Compile(4, after);
  EXPECT_TRUE(want.ok()) << want.status();
  if (!got.has_value() || !want.ok()) return std::nullopt;
  ExpectSameEntries(*got, *want);
  return got;
}

Rule Allow(uint32_t id, const std::string& cidr, uint16_t lo, uint16_t hi) {
  Rule r;
  r.id = id;
  r.action = Action::kAllow;
  r.destinations.push_back(*Cidr::Parse(cidr));
  r.ports.push_back({Proto::kTcp, lo, hi});
  return r;
}

std::vector<Rule> Many(int n) {
  std::vector<Rule> rules;
  for (int i = 0; i < n; ++i) {
    rules.push_back(Allow(i + 1,
                          "10.0." + std::to_string(i / 256) + "." +
                              std::to_string(i % 256) + "/32",
                          1000 + i % 50, 1000 + i % 50));
  }
  return rules;
}

TEST(RecompileChangedTest, OneAllowOnAKnownPortEqualsAWholeCompile) {
  std::vector<Rule> before = Many(2000);
  absl::StatusOr<CompiledRuleset> compiled = Compile(3, before);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  std::vector<Rule> after = before;
  after.push_back(Allow(5000, "127.0.0.9/32", 1010, 1010));
  EXPECT_TRUE(RecompiledAsWhole(*compiled, before, after).has_value());
}

// Name entries in exact_rules (compile_exact.h) of a class a change reaches
// are taken over: a change of address rules makes none of them again.
TEST(RecompileChangedTest, NameEntriesOfAReachedClassStay) {
  std::vector<Rule> before = Many(200);
  Rule named = Allow(1000, "10.9.0.1/32", 1010, 1010);
  named.destinations.clear();
  named.names = {"api.example.com"};
  before.push_back(named);
  absl::StatusOr<CompiledRuleset> compiled = Compile(3, before);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  // The name's key: family NAME, port 1010, rule 1000.
  auto name_keys = [](const CompiledRuleset& c) {
    int n = 0;
    for (const auto& [k, v] : c.exact) {
      n += k.family == EGRESS_FAMILY_NAME && ntohs(k.port) == 1010 &&
           k.ruleset == c.ruleset && v.rule_id == 1000;
    }
    return n;
  };
  ASSERT_EQ(name_keys(*compiled), 1);
  std::vector<Rule> after = before;
  after.push_back(Allow(5000, "127.0.0.9/32", 1010, 1010));
  std::optional<CompiledRuleset> got =
      RecompiledAsWhole(*compiled, before, after);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(name_keys(*got), 1);
}

TEST(RecompileChangedTest, LeavesWhatItCannotTakeToAWholeCompile) {
  std::vector<Rule> before = Many(100);
  absl::StatusOr<CompiledRuleset> compiled = Compile(3, before);
  ASSERT_TRUE(compiled.ok());
  auto with = [&](Rule r) {
    std::vector<Rule> after = before;
    after.push_back(std::move(r));
    return RecompileChanged(*compiled, before, after, 4);
  };
  // A port range no rule had: the port classes change.
  EXPECT_FALSE(with(Allow(500, "127.0.0.9/32", 7000, 7000)).has_value());
  // A deny of every port decides inside every class.
  Rule deny_all = Allow(501, "127.0.0.9/32", 0, 65535);
  deny_all.action = Action::kDeny;
  EXPECT_FALSE(with(deny_all).has_value());
  // Names, icmp: other maps and flags.
  Rule named = Allow(502, "127.0.0.9/32", 1000, 1000);
  named.names = {"example.com"};
  EXPECT_FALSE(with(named).has_value());
  Rule icmp = Allow(503, "127.0.0.9/32", 1000, 1000);
  icmp.ports = {{Proto::kIcmp, 0, 65535}};
  EXPECT_FALSE(with(icmp).has_value());
  // A rule a whole compile refuses: the compile says why.
  EXPECT_FALSE(with(Allow(0, "127.0.0.9/32", 1000, 1000)).has_value());
  // More changes than kMaxRecompiledRules.
  std::vector<Rule> many = before;
  for (uint32_t i = 0; i <= kMaxRecompiledRules; ++i) {
    many.push_back(Allow(600 + i, "127.0.1.1/32", 1000, 1000));
  }
  EXPECT_FALSE(RecompileChanged(*compiled, before, many, 4).has_value());
}

// A random rule over a small space, so that rules overlap, collide on keys,
// contain each other and deny inside allows.
Rule RandomRule(std::mt19937& rng, uint32_t id) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  Rule r;
  r.id = id;
  r.action = pick(4) == 0 ? Action::kDeny : Action::kAllow;
  const int dests = pick(3);
  for (int i = 0; i < dests; ++i) {
    const int len = std::vector<int>{8, 16, 24, 32}[pick(4)];
    std::array<uint8_t, 16> addr{};
    addr[0] = 10;
    addr[1] = static_cast<uint8_t>(pick(2));
    addr[2] = static_cast<uint8_t>(pick(3));
    addr[3] = static_cast<uint8_t>(pick(4));
    Cidr c;
    c.family = 4;
    c.addr = MaskedAddress(addr, len);
    c.prefix_len = static_cast<uint8_t>(len);
    r.destinations.push_back(c);
  }
  if (pick(8) == 0) {
    Cidr v6 = *Cidr::Parse("2001:db8::/32");
    r.destinations.push_back(v6);
  }
  const int ports = 1 + pick(2);
  for (int i = 0; i < ports; ++i) {
    PortProto pp;
    pp.proto = pick(3) == 0 ? Proto::kUdp : Proto::kTcp;
    switch (pick(6)) {
      case 0:
        pp.lo = 0;
        pp.hi = 65535;
        break;
      case 1:
        pp.lo = 1000;
        pp.hi = 1010;
        break;
      default:
        pp.lo = pp.hi = static_cast<uint16_t>(1000 + pick(12));
    }
    r.ports.push_back(pp);
  }
  if (pick(20) == 0) r.ports.push_back({Proto::kIcmp, 0, 65535});
  if (pick(25) == 0) r.names = {"example.com"};
  return r;
}

// The differential test: random rule sets and random edits (adds, deletes,
// changes, several at once); whenever the recompile takes the change its
// entries are a whole compile's.
TEST(RecompileChangedTest, EqualsAWholeCompileForRandomEdits) {
  std::mt19937 rng(20261203);
  int taken = 0, rounds = 0;
  for (int set = 0; set < 60; ++set) {
    uint32_t next_id = 1;
    std::vector<Rule> rules;
    const int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) rules.push_back(RandomRule(rng, next_id++));
    uint32_t ruleset = 1;
    absl::StatusOr<CompiledRuleset> compiled = Compile(ruleset, rules);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    for (int edit = 0; edit < 30; ++edit) {
      std::vector<Rule> after = rules;
      const int changes = 1 + static_cast<int>(rng() % 3);
      for (int c = 0; c < changes; ++c) {
        const int kind = static_cast<int>(rng() % 3);
        if (kind == 0 || after.empty()) {
          after.insert(after.begin() + rng() % (after.size() + 1),
                       RandomRule(rng, next_id++));
        } else if (kind == 1) {
          after.erase(after.begin() + rng() % after.size());
        } else {
          Rule& r = after[rng() % after.size()];
          r = RandomRule(rng, r.id);
        }
      }
      ++rounds;
      std::optional<CompiledRuleset> got =
          RecompileChanged(*compiled, rules, after, ruleset + 1);
      absl::StatusOr<CompiledRuleset> want = Compile(ruleset + 1, after);
      ASSERT_TRUE(want.ok()) << want.status();
      if (got.has_value()) {
        ++taken;
        SCOPED_TRACE(testing::Message() << "set " << set << " edit " << edit);
        ExpectSameEntries(*got, *want);
        if (HasFailure()) return;
        compiled = *std::move(got);  // chain recompiles on recompiles
      } else {
        compiled = *std::move(want);
      }
      rules = std::move(after);
      ++ruleset;
    }
  }
  // The test means something only when the recompile took many edits.
  EXPECT_GT(taken, rounds / 5) << taken << " of " << rounds;
}

}  // namespace
}  // namespace egress::policy
