// Room in the rule maps: a rule set switch writes the new set beside the old
// one, so every change is refused up front (with the numbers) when the maps
// could not then hold a swap copy of the largest set, and a restart adopts
// the sets it finds instead of writing them again. No root: the fake's
// rules map fails past its capacity as the kernel's does (ENOSPC).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"
#include "userspace/daemon/map_room.h"

namespace egress::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class EngineRoomTest : public EngineTest {
 protected:
  // An engine (and fake kernel) whose rules map holds `capacity` entries.
  void Restart(size_t capacity, const DaemonState& state) {
    RestartWithRuleRoom(capacity, state);
  }
  // The last write carried a rule appended to the target's.
  bool OnlyAppended() const {
    return last_write_.targets.size() == 1 && last_write_.targets[0].rules &&
           last_write_.targets[0].rules->appended_after.has_value();
  }
};

TEST_F(EngineRoomTest, PolicyWithoutRoomForItsSwapCopyIsRefusedWithNumbers) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  // Fits once, not twice: today's engine took it and then failed every
  // change with ENOSPC.
  Restart(n + n / 2, DaemonState{});
  const int writes = kernel_.write_calls();
  auto added = engine_->AddTarget(Spec("web", "/web", {big}));
  ASSERT_EQ(added.status().code(), absl::StatusCode::kResourceExhausted)
      << added.status();
  EXPECT_THAT(std::string(added.status().message()),
              AllOf(HasSubstr("policy web"), HasSubstr("rules map"),
                    HasSubstr(absl::StrCat(2 * n, " entries needed")),
                    HasSubstr(absl::StrCat(n + n / 2, " free")),
                    HasSubstr(absl::StrCat("map capacity ", n + n / 2))));
  EXPECT_TRUE(engine_->TargetInfos().empty());
  EXPECT_EQ(kernel_.write_calls(), writes);  // refused before any write
  EXPECT_TRUE(kernel_.RulesetsInMaps().empty());
}

TEST_F(EngineRoomTest, PolicyWithRoomForItsSwapCopyCanAlwaysBeChanged) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  Restart(2 * n, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  // Every later change of the same size switches: the old set and the new
  // one fit side by side.
  for (int net = 2; net < 5; ++net) {
    control::ApplyRequest change;
    change.policies = {Spec("web", "/web", {Hosts(net, 300)})};
    ASSERT_OK(engine_->Apply(change, kNow).status()) << "net " << net;
  }
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 1u);
}

TEST_F(EngineRoomTest, ApplyCountsOtherTargetsAndChangesNothingWhenFull) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  Restart(2 * n + n / 2, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  const uint32_t web_ruleset = kernel_.ActiveRuleset(IdOf("web"));
  // A second target of the same size leaves no room for a swap copy.
  control::ApplyRequest both;
  both.policies = {Spec("web", "/web", {Hosts(2, 300)}),
                   Spec("db", "/db", {Hosts(3, 300)})};
  auto applied = engine_->Apply(both, kNow);
  ASSERT_EQ(applied.status().code(), absl::StatusCode::kResourceExhausted)
      << applied.status();
  EXPECT_THAT(std::string(applied.status().message()),
              HasSubstr("held by other targets"));
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), web_ruleset);
  EXPECT_EQ(engine_->TargetInfos().size(), 1u);
  EXPECT_EQ(kernel_.RulesetsInMaps(), std::set<uint32_t>{web_ruleset});
}

// The replaced set stays in the maps as the target's spare; the next change
// writes only what differs into it and flips to it.
TEST_F(EngineRoomTest, AChangeWritesOnlyWhatDiffersIntoTheSpare) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  Restart(4 * n, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  const uint32_t id = IdOf("web");
  const uint32_t first = kernel_.ActiveRuleset(id);
  // No spare yet: the first change is written whole, under a new id, and
  // the replaced set becomes the spare.
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "192.0.2.1"}), {}}, kNow)
                .status());
  const uint32_t second = kernel_.ActiveRuleset(id);
  EXPECT_NE(second, first);
  EXPECT_EQ(kernel_.RulesetsInMaps(), (std::set<uint32_t>{first, second}));
  // Into the spare: the flip goes back to the first id, and the maps hold
  // exactly the active set (all of it) and the spare.
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "192.0.2.2"}), {}}, kNow)
                .status());
  EXPECT_EQ(kernel_.ActiveRuleset(id), first);
  EXPECT_EQ(kernel_.RulesetsInMaps(), (std::set<uint32_t>{first, second}));
  std::vector<policy::Rule> rules = {big, Allow({"smtp", "192.0.2.1"}),
                                     Allow({"smtp", "192.0.2.2"})};
  for (uint32_t i = 0; i < rules.size(); ++i) rules[i].id = i + 1;
  auto active = policy::Compile(first, rules, 0);
  ASSERT_OK(active.status());
  EXPECT_TRUE(*kernel_.HasEntries(*active));
  // Removing the target deletes both.
  ASSERT_OK(engine_->RemoveTarget("web").status());
  EXPECT_TRUE(kernel_.RulesetsInMaps().empty());
}

// Changes of a few rules are recompiled from the active set's entries
// (compile_changes.h): after allows, a delete and a changed expiry, the maps
// hold exactly a whole compile of the target's rules, and the spare's.
TEST_F(EngineRoomTest, ChangesOfAFewRulesLeaveAWholeCompilesEntries) {
  const policy::Rule big = Hosts(1, 300);
  Restart(6 * EntriesOf(big), DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  const uint32_t id = IdOf("web");
  for (const char* host : {"192.0.2.1", "192.0.2.2", "10.1.0.7"}) {
    ASSERT_OK(
        engine_->AddRule({"web", Allow({"https", host}), {}}, kNow).status());
  }
  ASSERT_OK(engine_->DeleteRule({"web", 2, std::nullopt, false}).status());
  policy::Rule deny = Allow({"https", "10.1.0.0/24"});
  deny.action = policy::Action::kDeny;
  ASSERT_OK(engine_->AddRule({"web", deny, {}}, kNow).status());
  auto targets = engine_->Targets("web", false);
  ASSERT_OK(targets.status());
  ASSERT_EQ(targets->size(), 1u);
  EXPECT_EQ((*targets)[0].rules.size(), 4u);
  auto whole =
      policy::Compile(kernel_.ActiveRuleset(id), (*targets)[0].rules, 0);
  ASSERT_OK(whole.status());
  EXPECT_TRUE(*kernel_.HasEntries(*whole));
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 2u);  // the set and its spare
}

// Allows appended without copying the target's rules (recompiled in place),
// mixed with allows in new port classes (compiled whole), denies and
// deletes: after every change the maps hold exactly a whole compile of the
// target's rules under its active ruleset, and the store holds its rules.
TEST_F(EngineRoomTest, AppendedAllowsLeaveExactlyAWholeCompilesEntries) {
  Restart(6 * EntriesOf(Hosts(1, 300)), DaemonState{});
  ASSERT_OK(engine_
                ->AddTarget(Spec("web", "/web",
                                 {Hosts(1, 300), Allow({"dns", "10.9.0.1"})}))
                .status());
  const uint32_t id = IdOf("web");
  auto check = [&](const std::string& step) {
    auto targets = engine_->Targets("web", false);
    ASSERT_OK(targets.status());
    const std::vector<policy::Rule>& rules = (*targets)[0].rules;
    auto whole = policy::Compile(kernel_.ActiveRuleset(id), rules, 0);
    ASSERT_OK(whole.status());
    EXPECT_TRUE(*kernel_.HasEntries(*whole)) << step;
    EXPECT_EQ(Saved("web").rules, rules) << step;
  };
  int appended = 0;
  for (int i = 0; i < 12; ++i) {
    const std::string host = absl::StrCat("10.2.0.", i + 1);
    policy::Rule r = Allow({i % 3 == 0 ? "dns" : "https", host});
    if (i % 4 == 3) r.action = policy::Action::kDeny;
    if (i == 5) r = Allow({"smtp", host});  // a new port class
    ASSERT_OK(engine_->AddRule({"web", r, {}}, kNow).status()) << i;
    appended += OnlyAppended() ? 1 : 0;
    check(absl::StrCat("after allow ", i));
    if (i % 5 == 4) {
      ASSERT_OK(engine_->DeleteRule({"web", 2, std::nullopt, false}).status());
      check(absl::StrCat("after delete ", i));
    }
  }
  // Most went the appending way; the new port class did not.
  EXPECT_GE(appended, 8);
}

// A spare is a cache: when a change needs its room, it goes first.
TEST_F(EngineRoomTest, SparesMakeRoomForChangesThatNeedIt) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  // Two sets of n and a swap copy fit; two sets, a spare and a copy do not.
  Restart(3 * n + n / 2, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "192.0.2.1"}), {}}, kNow)
                .status());
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 2u);  // web's set and spare
  // A second target as large: it fits only without web's spare.
  ASSERT_OK(engine_->AddTarget(Spec("db", "/db", {Hosts(2, 300)})).status());
  EXPECT_EQ(kernel_.RulesetsInMaps(),
            (std::set<uint32_t>{kernel_.ActiveRuleset(IdOf("web")),
                                kernel_.ActiveRuleset(IdOf("db"))}));
}

TEST_F(EngineRoomTest, RestartAdoptsTheRuleSetsInTheMapsWithoutASecondCopy) {
  const policy::Rule big = Hosts(1, 300);
  const size_t n = EntriesOf(big);
  Restart(2 * n, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big})).status());
  const uint32_t id = IdOf("web");
  const uint32_t ruleset = kernel_.ActiveRuleset(id);
  // The maps are fuller than this version allows (a state written by a
  // version that accepted it): the set fits once, with no room for a copy.
  const int writes = kernel_.write_calls();
  Restart(n + 1, saved_);
  EXPECT_EQ(kernel_.write_calls(), writes);
  EXPECT_EQ(kernel_.ActiveRuleset(id), ruleset);
  EXPECT_EQ(kernel_.RulesetsInMaps(), std::set<uint32_t>{ruleset});
  EXPECT_TRUE(engine_->TargetInfos()[0].attached);
}

// The exact entries' limit a set was compiled under is not stored: a
// restart whose limit is another (exact_rules fuller, or smaller) still
// finds the set. A start of many targets reaches the limit part-way.
TEST_F(EngineRoomTest, RestartAdoptsASetWrittenUnderTheOtherExactLimit) {
  // Compiled with exact entries: the fixture's engine has room for them.
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Hosts(1, 3)})).status());
  const uint32_t id = IdOf("web");
  const uint32_t ruleset = kernel_.ActiveRuleset(id);
  const int writes = kernel_.write_calls();
  Restart(EGRESS_MAX_RULE_ENTRIES, saved_);  // no room in exact_rules
  EXPECT_EQ(kernel_.write_calls(), writes);
  EXPECT_EQ(kernel_.ActiveRuleset(id), ruleset);
  EXPECT_EQ(kernel_.RulesetsInMaps(), std::set<uint32_t>{ruleset});
}

TEST_F(EngineRoomTest, RestartWritesTheSetAgainWhenTheMapsLostIt) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Hosts(1, 3)})).status());
  const uint32_t id = IdOf("web");
  ASSERT_OK(kernel_.DeleteRulesetsExcept({}).status());  // a reboot's maps
  Restart(EGRESS_MAX_RULE_ENTRIES, saved_);
  EXPECT_NE(kernel_.ActiveRuleset(id), 0u);
  EXPECT_EQ(kernel_.RulesetsInMaps(),
            std::set<uint32_t>{kernel_.ActiveRuleset(id)});
}

TEST(MapRoomTest, NamesTheLargestChangingSetAndEveryNumber) {
  EntryCounts cap{100, 100, 100};
  std::vector<TargetEntries> targets = {
      {"a", {30, 0, 0}, {30, 0, 0}, false},
      {"b", {0, 0, 0}, {40, 0, 0}, true},
  };
  // 30 + 40 held after, plus a 40 copy = 110 > 100.
  absl::Status st = CheckRoom(targets, cap);
  ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(std::string(st.message()),
              AllOf(HasSubstr("policy b"), HasSubstr("needs 40 entries"),
                    HasSubstr("80 entries needed"), HasSubstr("70 free"),
                    HasSubstr("map capacity 100"),
                    HasSubstr("30 held by other targets")));
  targets[1].next.rules = 35;  // 30 + 35 + 35 = 100: fits
  EXPECT_OK(CheckRoom(targets, cap));
  // The moment before the flips: old and new sets side by side.
  targets = {{"a", {60, 0, 0}, {20, 0, 0}, true},
             {"b", {0, 0, 0}, {30, 0, 0}, true}};
  EXPECT_FALSE(CheckRoom(targets, cap).ok());  // 60 + 20 + 30 = 110
  targets[0].now.rules = 50;                   // 100: fits
  EXPECT_OK(CheckRoom(targets, cap));
}

}  // namespace
}  // namespace egress::testing
