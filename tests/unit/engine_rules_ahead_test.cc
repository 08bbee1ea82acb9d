// An apply writes the state rows of a new target's rules while it compiles
// them and fills the maps (EngineOptions::save_rules_ahead). Against the
// real state database: whatever fails after those rows were written, the
// database afterwards loads as before the apply and holds no row of a
// target not added, with the same error as a save in line gives; a failed
// write ahead is no failure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/state_store.h"

namespace egress::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RulesAheadTest : public EngineTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-ahead-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_OK_AND_ASSIGN(store_, StateStore::Open(dir_));
    kernel_.MakeCgroup("/web");
    kernel_.MakeCgroup("/db");
    engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, StoreOptions());
    ASSERT_OK(engine_->Start(kNow).status());
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
    RemoveTree(dir_).IgnoreError();
  }

  // The fixture's options with the state in `store_`; a save fails when
  // fail_save_ is set, and so do the fail_save_at_-th save from now and
  // every later one. An apply saves its updates first (SwitchUpdates, also
  // with none), then each new target, then (failing) its removal.
  EngineOptions StoreOptions() {
    EngineOptions o = Options();
    o.save = [this](const StateWrite& w) -> absl::Status {
      if (fail_save_at_ > 0 && --fail_save_at_ == 0) fail_save_ = true;
      if (fail_save_) return absl::UnavailableError("disk full");
      ++saves_;
      return store_->Write(w);
    };
    o.save_rules_ahead =
        [this](const std::vector<const TargetState*>& targets) {
          ++writes_ahead_;
          if (fail_ahead_) return absl::UnavailableError("disk busy");
          return store_->WriteRulesAhead(targets);
        };
    o.drop_rules_ahead = [this](const std::vector<std::string>& names) {
      return store_->DropRulesAhead(names);
    };
    return o;
  }

  // What a start would load from the database now.
  DaemonState Loaded() {
    auto again = StateStore::Open(dir_);
    EXPECT_TRUE(again.ok()) << again.status();
    if (!again.ok()) return {};
    auto state = (*again)->Load();
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *std::move(state) : DaemonState{};
  }
  int64_t Rows(const std::string& target) {
    auto rows = store_->RuleRows(target);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : -1;
  }
  static std::vector<policy::Rule> Many(int n) {
    std::vector<policy::Rule> rules;
    for (int i = 0; i < n; ++i) {
      rules.push_back(Allow({absl::StrCat(1000 + i, "/tcp"),
                             absl::StrCat("10.1.", i / 250, ".", i % 250)}));
    }
    return rules;
  }
  // A rule the compiler refuses: more distinct port ranges than classes.
  static policy::Rule TooManyPorts() {
    policy::Rule r = Allow({"1/tcp", "10.0.0.1"});
    r.ports.clear();
    for (uint32_t p = 1; p <= 0xffff; ++p) {
      r.ports.push_back({policy::Proto::kTcp, static_cast<uint16_t>(p),
                         static_cast<uint16_t>(p)});
    }
    return r;
  }
  // db enforced with two rules, saved.
  void ApplyDb() {
    control::ApplyRequest db;
    db.policies = {Spec("db", "/db", Many(2))};
    ASSERT_OK(engine_->Apply(db, kNow).status());
  }
  void ExpectSameTargets(const DaemonState& got, const DaemonState& want) {
    ASSERT_EQ(got.targets.size(), want.targets.size());
    for (const auto& [name, t] : want.targets) {
      ASSERT_TRUE(got.targets.count(name)) << name;
      EXPECT_EQ(got.targets.at(name).rules, t.rules) << name;
      EXPECT_EQ(got.targets.at(name).ruleset, t.ruleset) << name;
      EXPECT_EQ(got.targets.at(name).id, t.id) << name;
    }
  }
  // web is not enforced: no target, no programs, no config, no entries but
  // those of `kept`.
  void ExpectWebNotEnforced(uint32_t web_id, std::vector<uint32_t> kept) {
    EXPECT_EQ(engine_->Targets("web", false).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_FALSE(kernel_.ProgramsLoaded(web_id));
    EXPECT_EQ(kernel_.ActiveRuleset(web_id), 0u);
    EXPECT_EQ(kernel_.RulesetsInMaps(),
              std::set<uint32_t>(kept.begin(), kept.end()));
  }

  std::string dir_;
  std::unique_ptr<StateStore> store_;
  int fail_save_at_ = 0;
  bool fail_ahead_ = false;
  int writes_ahead_ = 0;
};

TEST_F(RulesAheadTest, ANewTargetsRowsAreWrittenAheadAndTakenByItsSave) {
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", Many(300))};
  ASSERT_OK(engine_->Apply(web, kNow).status());
  EXPECT_EQ(writes_ahead_, 1);
  // The save that added the target wrote its row and the counter alone.
  EXPECT_EQ(store_->last_write_rows(), 2);
  const DaemonState loaded = Loaded();
  ASSERT_TRUE(loaded.targets.count("web"));
  ASSERT_OK_AND_ASSIGN(std::vector<TargetState> now,
                       engine_->Targets("web", false));
  EXPECT_EQ(loaded.targets.at("web").rules, now[0].rules);
  EXPECT_EQ(loaded.targets.at("web").ruleset, now[0].ruleset);
  EXPECT_EQ(Rows("web"), 300);
  // The store knows the rows: one allow more writes one row.
  ASSERT_OK(
      engine_->AddRule({"web", Allow({"https", "10.9.9.9"})}, kNow).status());
  EXPECT_EQ(store_->last_write_rows(), 3);
  EXPECT_EQ(Loaded().targets.at("web").rules.size(), 301u);
}

TEST_F(RulesAheadTest, ACompileRefusalLeavesTheStateAsItWas) {
  ApplyDb();
  const DaemonState before = Loaded();
  const uint32_t db_set = kernel_.ActiveRuleset(before.targets.at("db").id);
  control::ApplyRequest both;
  std::vector<policy::Rule> refused = Many(50);
  refused.push_back(TooManyPorts());
  both.policies = {Spec("db", "/db", Many(3)), Spec("web", "/web", refused)};
  EXPECT_STATUS(engine_->Apply(both, kNow),
                absl::StatusCode::kResourceExhausted,
                "policy web: too many distinct port ranges");
  EXPECT_EQ(writes_ahead_, 2);
  ExpectSameTargets(Loaded(), before);
  EXPECT_EQ(Rows("web"), 0) << "the rows written ahead were left behind";
  EXPECT_EQ(Rows("db"), 2);
  ExpectWebNotEnforced(2, {db_set});
}

TEST_F(RulesAheadTest, AKernelRefusalLeavesTheStateAsItWas) {
  ApplyDb();
  const DaemonState before = Loaded();
  const uint32_t db_set = kernel_.ActiveRuleset(before.targets.at("db").id);
  control::ApplyRequest both;
  both.policies = {Spec("db", "/db", Many(3)), Spec("web", "/web", Many(200))};
  kernel_.FailWriteEntriesAt(2);  // db's set goes in, web's not
  EXPECT_STATUS(engine_->Apply(both, kNow),
                absl::StatusCode::kResourceExhausted,
                "policy web: rules map is full");
  ExpectSameTargets(Loaded(), before);
  EXPECT_EQ(Rows("web"), 0);
  ExpectWebNotEnforced(2, {db_set});
  EXPECT_EQ(kernel_.ActiveRuleset(before.targets.at("db").id), db_set);
}

TEST_F(RulesAheadTest, NoMapRoomLeavesTheStateAsItWas) {
  EngineOptions o = StoreOptions();
  o.map_capacity.rules = 150;  // web's 200 rules do not fit
  o.map_capacity.exact = 0;    // nor move to exact_rules
  engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, o);
  ASSERT_OK(engine_->Start(kNow).status());
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", Many(200))};
  EXPECT_STATUS(engine_->Apply(web, kNow), absl::StatusCode::kResourceExhausted,
                "");
  EXPECT_EQ(writes_ahead_, 1);
  EXPECT_THAT(Loaded().targets, IsEmpty());
  EXPECT_EQ(Rows("web"), 0);
  ExpectWebNotEnforced(1, {});
}

TEST_F(RulesAheadTest, AnAttachFailureLeavesTheStateAsItWas) {
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", Many(100))};
  kernel_.FailAttach(true);
  EXPECT_STATUS(engine_->Apply(web, kNow), absl::StatusCode::kPermissionDenied,
                "partially applied: 0 of 1 policies switched, then web "
                "failed: attach refused");
  EXPECT_EQ(writes_ahead_, 1);
  EXPECT_THAT(Loaded().targets, IsEmpty());
  EXPECT_EQ(Rows("web"), 0);
  ExpectWebNotEnforced(1, {});
}

// The save that adds the target fails after its rows were written ahead,
// and so does the removal its failure saves: the rows go all the same.
TEST_F(RulesAheadTest, AFailedSaveOfTheTargetLeavesNoRows) {
  ApplyDb();
  const DaemonState before = Loaded();
  const uint32_t db_set = kernel_.ActiveRuleset(before.targets.at("db").id);
  control::ApplyRequest web;
  web.policies = {Spec("db", "/db", Many(2)), Spec("web", "/web", Many(100))};
  fail_save_at_ = 2;
  EXPECT_STATUS(engine_->Apply(web, kNow), absl::StatusCode::kUnavailable,
                "partially applied: 1 of 2 policies switched, then web "
                "failed: disk full");
  fail_save_ = false;
  EXPECT_EQ(writes_ahead_, 2);
  ExpectSameTargets(Loaded(), before);
  EXPECT_EQ(Rows("web"), 0);
  ExpectWebNotEnforced(2, {db_set});
}

// Of two new targets, the second's save fails: the first stays added with
// all its rows, the second leaves none.
TEST_F(RulesAheadTest, ASecondTargetsFailureKeepsTheFirstsRows) {
  control::ApplyRequest both;
  both.policies = {Spec("db", "/db", Many(20)), Spec("web", "/web", Many(30))};
  fail_save_at_ = 3;
  EXPECT_STATUS(engine_->Apply(both, kNow), absl::StatusCode::kUnavailable,
                "partially applied: 1 of 2 policies switched, then web "
                "failed: disk full");
  EXPECT_EQ(writes_ahead_, 1);
  const DaemonState loaded = Loaded();
  ASSERT_EQ(loaded.targets.size(), 1u);
  ASSERT_TRUE(loaded.targets.count("db"));
  EXPECT_EQ(loaded.targets.at("db").rules.size(), 20u);
  EXPECT_EQ(Rows("db"), 20);
  EXPECT_EQ(Rows("web"), 0);
  fail_save_ = false;
  const uint32_t db_id = loaded.targets.at("db").id;
  ExpectWebNotEnforced(2, {kernel_.ActiveRuleset(db_id)});
}

// The save of the updates (before any new target) fails: the update is
// switched back, and the new target's rows go.
TEST_F(RulesAheadTest, AFailedSaveOfTheUpdatesLeavesTheStateAsItWas) {
  ApplyDb();
  const DaemonState before = Loaded();
  const uint32_t db_set = kernel_.ActiveRuleset(before.targets.at("db").id);
  control::ApplyRequest both;
  both.policies = {Spec("db", "/db", Many(3)), Spec("web", "/web", Many(100))};
  fail_save_ = true;
  EXPECT_STATUS(engine_->Apply(both, kNow), absl::StatusCode::kUnavailable,
                "disk full");
  fail_save_ = false;
  EXPECT_EQ(writes_ahead_, 2);
  ExpectSameTargets(Loaded(), before);
  EXPECT_EQ(Rows("web"), 0);
  EXPECT_EQ(Rows("db"), 2);
  ExpectWebNotEnforced(2, {db_set});
  EXPECT_EQ(kernel_.ActiveRuleset(before.targets.at("db").id), db_set);
}

TEST_F(RulesAheadTest, AFailedWriteAheadIsWrittenWithTheTarget) {
  fail_ahead_ = true;
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", Many(50))};
  ASSERT_OK(engine_->Apply(web, kNow).status());
  EXPECT_EQ(writes_ahead_, 1);
  EXPECT_EQ(store_->last_write_rows(), 52) << "the rows, the row, the counter";
  EXPECT_EQ(Loaded().targets.at("web").rules.size(), 50u);
}

// Both writes fail: the error is the save's, as without the write ahead.
TEST_F(RulesAheadTest, AFailedWriteAheadAndSaveGiveTheSavesError) {
  fail_ahead_ = true;
  fail_save_at_ = 2;
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", Many(50))};
  EXPECT_STATUS(engine_->Apply(web, kNow), absl::StatusCode::kUnavailable,
                "partially applied: 0 of 1 policies switched, then web "
                "failed: disk full");
  fail_save_ = false;
  EXPECT_THAT(Loaded().targets, IsEmpty());
  EXPECT_EQ(Rows("web"), 0);
  ExpectWebNotEnforced(1, {});
}

// An updated target's new rules are written ahead too (its enforced rows
// stay until the switch); a dry run and a change of mode alone write
// nothing ahead.
TEST_F(RulesAheadTest, ReplacedRulesAreWrittenAheadAModeAloneIsNot) {
  ApplyDb();
  EXPECT_EQ(writes_ahead_, 1);
  control::ApplyRequest db;
  db.policies = {Spec("db", "/db", Many(5))};
  ASSERT_OK(engine_->Apply(db, kNow).status());
  EXPECT_EQ(writes_ahead_, 2);
  control::ApplyRequest dry;
  dry.dry_run = true;
  dry.policies = {Spec("web", "/web", Many(5))};
  ASSERT_OK(engine_->Apply(dry, kNow).status());
  control::ApplyRequest mode = db;
  mode.policies[0].mode = policy::Mode::kAudit;
  ASSERT_OK(engine_->Apply(mode, kNow).status());
  EXPECT_EQ(writes_ahead_, 2);
  EXPECT_EQ(Rows("web"), 0);
  ASSERT_OK(store_->WaitForDeletes());
  EXPECT_EQ(Rows("db"), 5);
  const DaemonState loaded = Loaded();
  EXPECT_EQ(loaded.targets.at("db").rules.size(), 5u);
  EXPECT_EQ(loaded.targets.at("db").mode, policy::Mode::kAudit);
}

// The switch of an update written ahead writes its target's row and the
// counter alone; a start then loads the new rules, and the old rows go.
TEST_F(RulesAheadTest, AnUpdatesSwitchTakesItsRowsWrittenAhead) {
  ApplyDb();
  control::ApplyRequest db;
  std::vector<policy::Rule> others = Many(300);
  for (policy::Rule& r : others) r.ports[0].lo += 5000;
  for (policy::Rule& r : others) r.ports[0].hi += 5000;
  db.policies = {Spec("db", "/db", others)};
  ASSERT_OK(engine_->Apply(db, kNow).status());
  EXPECT_EQ(writes_ahead_, 2);
  EXPECT_EQ(store_->last_write_rows(), 2) << "the target's row, the counter";
  ASSERT_OK_AND_ASSIGN(std::vector<TargetState> now,
                       engine_->Targets("db", false));
  const DaemonState loaded = Loaded();
  EXPECT_EQ(loaded.targets.at("db").rules, now[0].rules);
  EXPECT_EQ(loaded.targets.at("db").ruleset, now[0].ruleset);
  ASSERT_OK(store_->WaitForDeletes());
  EXPECT_EQ(Rows("db"), 300);
  // An allow after it is one row in the new rows.
  ASSERT_OK(
      engine_->AddRule({"db", Allow({"https", "10.9.9.9"})}, kNow).status());
  EXPECT_EQ(store_->last_write_rows(), 3);
  EXPECT_EQ(Loaded().targets.at("db").rules.size(), 301u);
}

}  // namespace
}  // namespace egress::testing
