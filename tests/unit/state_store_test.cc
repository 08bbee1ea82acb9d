// The state database: what a write stores is what a start loads; a change
// writes only its own rows; state.json is imported once; corrupt files are
// reported, not dropped.
#include "userspace/daemon/state_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/state_store_fixture.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/state_write.h"
#include "userspace/policy/spec.h"

namespace egress {
namespace {

policy::Rule Rule(uint32_t id, const std::string& port) {
  auto r = policy::ParseRuleWords(policy::Action::kAllow, {port, "10.0.0.1"});
  EXPECT_TRUE(r.ok()) << r.status();
  policy::Rule out = r.ok() ? *r : policy::Rule{};
  out.id = id;
  return out;
}

TargetState Target(const std::string& name, uint32_t id, int rules) {
  TargetState t;
  t.name = name;
  t.id = id;
  t.cgroup = "/" + name;
  t.mode = policy::Mode::kAudit;
  t.logging = policy::LoggingLevel::kAll;
  t.ruleset = 7;
  for (int i = 0; i < rules; ++i) {
    t.rules.push_back(Rule(t.next_rule_id++, absl::StrCat(1000 + i, "/tcp")));
  }
  return t;
}

class StateStoreTest : public StateStoreDirTest {
 protected:
  // Writes `t` (its rules as `delta` says) and keeps it in `expected_`.
  void Put(StateStore& store, const TargetState& t,
           std::optional<RulesDelta> delta = RulesDelta{}) {
    StateWrite w{expected_.next_ruleset, {{t.name, &t, delta}}};
    ASSERT_OK(store.Write(w));
    ApplyStateWrite(w, &expected_);
  }
  void ExpectLoads(const DaemonState& want) {
    std::unique_ptr<StateStore> again = Open();
    ASSERT_NE(again, nullptr);
    ASSERT_OK_AND_ASSIGN(DaemonState got, again->Load());
    EXPECT_EQ(got.next_ruleset, want.next_ruleset);
    ASSERT_EQ(got.targets.size(), want.targets.size());
    for (const auto& [name, t] : want.targets) {
      ASSERT_TRUE(got.targets.count(name)) << name;
      const TargetState& g = got.targets.at(name);
      EXPECT_EQ(g.id, t.id);
      EXPECT_EQ(g.cgroup, t.cgroup);
      EXPECT_EQ(g.mode, t.mode);
      EXPECT_EQ(g.logging, t.logging);
      EXPECT_EQ(g.ruleset, t.ruleset);
      EXPECT_EQ(g.next_rule_id, t.next_rule_id);
      EXPECT_EQ(g.annotations, t.annotations) << name;
      EXPECT_EQ(g.rules, t.rules) << name;
    }
  }

  DaemonState expected_;
};

TEST_F(StateStoreTest, EmptyDatabaseLoadsNoTargets) {
  std::unique_ptr<StateStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(DaemonState s, store->Load());
  EXPECT_TRUE(s.targets.empty());
  EXPECT_EQ(s.next_ruleset, 1u);
}

TEST_F(StateStoreTest, WhatIsWrittenIsWhatAStartLoads) {
  std::unique_ptr<StateStore> store = Open();
  expected_.next_ruleset = 9;
  Put(*store, Target("web", 1, 3));
  Put(*store, Target("db", 2, 0));
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, OneAllowWritesOneRuleRow) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 1000);
  Put(*store, t);
  TargetState next = t;
  next.rules.push_back(Rule(next.next_rule_id++, "9999/udp"));
  RulesDelta delta = DiffRules(t.rules, next.rules);
  ASSERT_FALSE(delta.all);
  Put(*store, next, delta);
  // The target's row, the new rule's row, the ruleset counter.
  EXPECT_EQ(store->last_write_rows(), 3);
  EXPECT_EQ(*store->RuleRows("web"), 1001);
  ExpectLoads(expected_);
}

// An `allow` the engine recompiles in place hands the store only the new
// rule and the id it follows: one row after that rule's, and a start loads
// the rules in order.
TEST_F(StateStoreTest, AppendedRulesFollowTheStoredOnes) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 1000);
  Put(*store, t);
  for (int i = 0; i < 3; ++i) {
    TargetState next = t;
    next.rules = {Rule(t.next_rule_id, absl::StrCat(5000 + i, "/udp"))};
    next.next_rule_id = t.next_rule_id + 1;
    RulesDelta delta{false, {t.next_rule_id}, {}};
    delta.appended_after = t.rules.back().id;
    Put(*store, next, delta);
    EXPECT_EQ(store->last_write_rows(), 3);  // target, the rule, the counter
    t.rules.push_back(next.rules[0]);
    t.next_rule_id = next.next_rule_id;
  }
  EXPECT_EQ(*store->RuleRows("web"), 1003);
  ExpectLoads(expected_);
  EXPECT_EQ(expected_.targets.at("web").rules, t.rules);
}

// Rules appended after a rule the store has no row of: refused, and the
// store is as it was (the next write places rules as before).
TEST_F(StateStoreTest, RulesAppendedAfterAnUnknownRuleAreRefused) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 3);
  Put(*store, t);
  TargetState next = t;
  next.rules = {Rule(4, "9999/udp")};
  RulesDelta delta{false, {4}, {}};
  delta.appended_after = 77;
  StateWrite w{expected_.next_ruleset, {{"web", &next, delta}}};
  absl::Status st = store->Write(w);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_EQ(*store->RuleRows("web"), 3);
  delta.appended_after = 3;
  Put(*store, next, delta);
  EXPECT_EQ(*store->RuleRows("web"), 4);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, DeletesAndInsertsInTheMiddleKeepTheOrder) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 10);
  Put(*store, t);
  TargetState next = t;
  next.rules.erase(next.rules.begin() + 3);
  next.rules.insert(next.rules.begin() + 5,
                    Rule(next.next_rule_id++, "7000/udp"));
  next.rules.insert(next.rules.begin(), Rule(next.next_rule_id++, "7001/udp"));
  next.rules[8].expires = 123456;  // a temporary rule extended
  RulesDelta delta = DiffRules(t.rules, next.rules);
  ASSERT_FALSE(delta.all);
  EXPECT_EQ(delta.put.size(), 3u);
  EXPECT_EQ(delta.removed, std::vector<uint32_t>{t.rules[3].id});
  Put(*store, next, delta);
  EXPECT_EQ(store->last_write_rows(), 1 + 1 + 3 + 1);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, AReorderIsWrittenWhole) {
  TargetState t = Target("web", 1, 4);
  std::vector<policy::Rule> swapped = t.rules;
  std::swap(swapped[0], swapped[2]);
  EXPECT_TRUE(DiffRules(t.rules, swapped).all);
  std::unique_ptr<StateStore> store = Open();
  Put(*store, t);
  RulesDelta reorder = DiffRules(t.rules, swapped);
  t.rules = swapped;
  Put(*store, t, reorder);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, ManyInsertsAtOnePlaceStillFit) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 2);
  Put(*store, t);
  // Each new rule halves the gap before the last rule: past 20 the gap is
  // gone and the target is written whole, in order.
  for (int i = 0; i < 30; ++i) {
    TargetState next = t;
    next.rules.insert(
        next.rules.end() - 1,
        Rule(next.next_rule_id++, absl::StrCat(5000 + i, "/udp")));
    Put(*store, next, DiffRules(t.rules, next.rules));
    t = next;
  }
  ExpectLoads(expected_);
}

// A whole write over stored rows replaces them in place: rows an `allow`
// put between two others or before the first (off the whole write's keys)
// go, as do the rows past the new rules' end; a longer set adds its rows.
TEST_F(StateStoreTest, AWholeWriteOverStoredRowsLeavesOnlyItsOwn) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 10);
  Put(*store, t);
  TargetState between = t;
  between.rules.insert(between.rules.begin() + 3,
                       Rule(between.next_rule_id++, "7000/udp"));
  between.rules.insert(between.rules.begin(),
                       Rule(between.next_rule_id++, "7001/udp"));
  RulesDelta delta = DiffRules(t.rules, between.rules);
  ASSERT_FALSE(delta.all);
  Put(*store, between, delta);
  EXPECT_EQ(*store->RuleRows("web"), 12);
  // Written whole over those rows: `count` rules of other ids.
  auto write_whole = [&](int count, uint32_t id_offset) {
    TargetState whole = Target("web", 1, count);
    for (policy::Rule& r : whole.rules) r.id += id_offset;
    whole.next_rule_id += id_offset;
    Put(*store, whole);
    EXPECT_EQ(*store->RuleRows("web"), count);
    ExpectLoads(expected_);
  };
  write_whole(4, 100);   // fewer
  write_whole(20, 200);  // more
}

TEST_F(StateStoreTest, SettingsOnlyWriteLeavesRulesAlone) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 100);
  Put(*store, t);
  t.mode = policy::Mode::kEnforce;
  Put(*store, t, std::nullopt);
  EXPECT_EQ(store->last_write_rows(), 2);  // the target, the counter
  ExpectLoads(expected_);
}

// What `export` writes back: a policy file's annotations and rule names.
TEST_F(StateStoreTest, AnnotationsAndRuleNamesAreKept) {
  std::unique_ptr<StateStore> store = Open();
  TargetState t = Target("web", 1, 2);
  t.annotations = {{"description", "web: \"front\" end"}, {"owner", "ops"}};
  t.rules[0].name = "api";
  t.rules[0].comment = "api: payments";
  Put(*store, t);
  ExpectLoads(expected_);
  t.annotations.erase("owner");
  Put(*store, t, std::nullopt);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, RemovedTargetTakesItsRules) {
  std::unique_ptr<StateStore> store = Open();
  Put(*store, Target("web", 1, 5));
  Put(*store, Target("db", 2, 5));
  StateWrite w{3, {{"web", nullptr, std::nullopt}}};
  ASSERT_OK(store->Write(w));
  ApplyStateWrite(w, &expected_);
  ASSERT_OK(store->WaitForDeletes());  // its rows go after the write
  EXPECT_EQ(*store->RuleRows("web"), 0);
  ExpectLoads(expected_);
}

// Rows written ahead are no target's until the write that adds the target:
// a start in between (egressd crashed) loads the state as it was.
TEST_F(StateStoreTest, RulesWrittenAheadAreNotLoadedBeforeTheirTarget) {
  std::unique_ptr<StateStore> store = Open();
  expected_.next_ruleset = 4;
  Put(*store, Target("db", 2, 3));
  const TargetState web = Target("web", 1, 500);
  ASSERT_OK(store->WriteRulesAhead({&web}));
  EXPECT_EQ(*store->RuleRows("web"), 500);
  ExpectLoads(expected_);

  // The write that adds it takes the rows: its row and the counter.
  RulesDelta ahead;
  ahead.written_ahead = true;
  Put(*store, web, ahead);
  EXPECT_EQ(store->last_write_rows(), 2);
  EXPECT_EQ(*store->RuleRows("web"), 500);
  ExpectLoads(expected_);
  // The store knows where they are: one allow is one row.
  TargetState next = web;
  next.rules.push_back(Rule(next.next_rule_id++, "9999/udp"));
  Put(*store, next, DiffRules(web.rules, next.rules));
  EXPECT_EQ(store->last_write_rows(), 3);
  ExpectLoads(expected_);
}

// After a crash the rows ahead are left; the next write of a target of
// that name writes its own and hands them to the deleting thread.
TEST_F(StateStoreTest, RowsLeftAheadAreReplacedByTheTargetsWrite) {
  {
    std::unique_ptr<StateStore> store = Open();
    const TargetState web = Target("web", 1, 40);
    ASSERT_OK(store->WriteRulesAhead({&web}));
  }
  std::unique_ptr<StateStore> store = Open();
  ASSERT_OK(store->Load().status());
  RulesDelta ahead;
  ahead.written_ahead = true;  // not by this store: written whole
  Put(*store, Target("web", 1, 3), ahead);
  ASSERT_OK(store->WaitForDeletes());  // the rows left go after the write
  EXPECT_EQ(*store->RuleRows("web"), 3);
  ExpectLoads(expected_);
}

// A start after such a crash drops the rows left ahead: a target of that
// name stored later without rules (its settings alone) must not find them.
TEST_F(StateStoreTest, RowsLeftAheadByACrashAreDroppedAtTheNextStart) {
  {
    std::unique_ptr<StateStore> store = Open();
    Put(*store, Target("db", 2, 3));
    const TargetState web = Target("web", 1, 40);
    const TargetState api = Target("api", 3, 7);
    ASSERT_OK(store->WriteRulesAhead({&web, &api}));
  }
  std::unique_ptr<StateStore> store = Open();
  ASSERT_OK(store->Load().status());
  EXPECT_EQ(*store->RuleRows("web"), 40);
  ASSERT_OK_AND_ASSIGN(size_t dropped, store->DropLeftoverRows());
  EXPECT_EQ(dropped, 2u);
  EXPECT_EQ(*store->RuleRows("web"), 0);
  EXPECT_EQ(*store->RuleRows("api"), 0);
  EXPECT_EQ(*store->RuleRows("db"), 3) << "a stored target's rows stay";
  ASSERT_OK_AND_ASSIGN(dropped, store->DropLeftoverRows());
  EXPECT_EQ(dropped, 0u);

  // Its settings alone: with the rows left, the next start would load the
  // 40 rules as its own.
  Put(*store, Target("web", 1, 0), std::nullopt);
  ExpectLoads(expected_);
}

// Rules that are not the ones written ahead are written whole.
TEST_F(StateStoreTest, AWriteOfOtherRulesThanTheOnesAheadWritesThemAll) {
  std::unique_ptr<StateStore> store = Open();
  const TargetState web = Target("web", 1, 10);
  ASSERT_OK(store->WriteRulesAhead({&web}));
  TargetState other = web;
  other.rules.pop_back();
  std::swap(other.rules[0], other.rules[1]);
  RulesDelta ahead;
  ahead.written_ahead = true;
  Put(*store, other, ahead);
  ASSERT_OK(store->WaitForDeletes());  // the rows ahead go after the write
  EXPECT_EQ(*store->RuleRows("web"), 9);
  ExpectLoads(expected_);
}

// A stored target's rules go ahead to rows of their own: dropping them
// leaves the target's rows as they were.
TEST_F(StateStoreTest, AStoredTargetsOwnRowsAreNeverDropped) {
  std::unique_ptr<StateStore> store = Open();
  const TargetState web = Target("web", 1, 5);
  Put(*store, web);
  const TargetState other = Target("web", 1, 50);
  const TargetState db = Target("db", 2, 7);
  ASSERT_OK(store->WriteRulesAhead({&db, &other}));
  EXPECT_EQ(*store->RuleRows("web"), 55);
  ExpectLoads(expected_);
  ASSERT_OK(store->DropRulesAhead({"web", "db"}));
  EXPECT_EQ(*store->RuleRows("web"), 5);
  EXPECT_EQ(*store->RuleRows("db"), 0);
  ExpectLoads(expected_);
}

// A removal written for a target whose rows were written ahead takes them.
TEST_F(StateStoreTest, ARemovalTakesTheRowsWrittenAhead) {
  std::unique_ptr<StateStore> store = Open();
  const TargetState web = Target("web", 1, 5);
  ASSERT_OK(store->WriteRulesAhead({&web}));
  StateWrite w{1, {{"web", nullptr, std::nullopt}}};
  ASSERT_OK(store->Write(w));
  ASSERT_OK(store->WaitForDeletes());  // after the write
  EXPECT_EQ(*store->RuleRows("web"), 0);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, StateJsonIsImportedOnceAndMovedAside) {
  DaemonState old;
  old.next_ruleset = 42;
  old.targets["web"] = Target("web", 3, 20);
  old.targets["db"] = Target("db", 4, 2);
  ASSERT_OK(SaveState(dir_ + "/state.json", old));
  {
    std::unique_ptr<StateStore> store = Open();
    ASSERT_NE(store, nullptr);
  }
  EXPECT_NE(access((dir_ + "/state.json").c_str(), F_OK), 0);
  EXPECT_EQ(access((dir_ + "/state.json.migrated").c_str(), F_OK), 0);
  ExpectLoads(old);
  // Changes after the import survive restarts; the import does not repeat.
  std::unique_ptr<StateStore> store = Open();
  expected_ = old;
  Put(*store, Target("api", 5, 1));
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, CorruptStateJsonIsReportedAndTheDatabaseKept) {
  {
    std::unique_ptr<StateStore> store = Open();
    Put(*store, Target("web", 1, 2));
  }
  std::ofstream(dir_ + "/state.json") << "{\"targets\": [ not json";
  EXPECT_STATUS(StateStore::Open(dir_), absl::StatusCode::kDataLoss,
                "state.json is corrupt");
  EXPECT_EQ(access((dir_ + "/state.json").c_str(), F_OK), 0);
  unlink((dir_ + "/state.json").c_str());
  ExpectLoads(expected_);
}

// A cleanup job or an operator removed the files while egressd ran: the
// next write re-creates them from the open ones (every row, each at its
// seq, so that an appended rule still finds the one it follows) and what a
// start loads is everything acknowledged.
TEST_F(StateStoreTest, RemovedDatabaseIsRecreatedBeforeTheNextWrite) {
  std::unique_ptr<StateStore> store = Open();
  expected_.next_ruleset = 4;
  TargetState web = Target("web", 1, 3);
  Put(*store, web);
  Put(*store, Target("db", 2, 2));
  for (const char* file : {"/state.db", "/state.db-wal", "/state.db-shm"}) {
    ASSERT_EQ(unlink((dir_ + file).c_str()), 0) << file;
  }
  TargetState next = web;
  next.rules = {Rule(web.next_rule_id, "7171/tcp")};
  next.next_rule_id = web.next_rule_id + 1;
  RulesDelta delta{false, {web.next_rule_id}, {}};
  delta.appended_after = web.rules.back().id;
  Put(*store, next, delta);
  ASSERT_EQ(access((dir_ + "/state.db").c_str(), F_OK), 0);
  Put(*store, Target("t2", 3, 1));
  ExpectLoads(expected_);
  EXPECT_EQ(expected_.targets.at("web").rules.size(), 4u);
}

// Another database put where ours was (moved over it) is moved aside, not
// overwritten, and ours is written back in its place.
TEST_F(StateStoreTest, ReplacedDatabaseIsMovedAsideNotOverwritten) {
  std::unique_ptr<StateStore> store = Open();
  Put(*store, Target("web", 1, 2));
  const std::string other_dir = dir_ + "/other";
  ASSERT_EQ(mkdir(other_dir.c_str(), 0700), 0);
  {
    auto other = StateStore::Open(other_dir);
    ASSERT_OK(other.status());
    TargetState t = Target("backup", 9, 1);
    ASSERT_OK((*other)->Write(StateWrite{1, {{t.name, &t, RulesDelta{}}}}));
  }
  ASSERT_EQ(
      rename((other_dir + "/state.db").c_str(), (dir_ + "/state.db").c_str()),
      0);
  Put(*store, Target("db", 2, 1));
  ExpectLoads(expected_);
  std::vector<std::string> aside;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, "state.db.replaced-")) aside.push_back(name);
  }
  ASSERT_EQ(aside.size(), 1u) << absl::StrJoin(aside, " ");
  ASSERT_EQ(rename((dir_ + "/" + aside[0]).c_str(),
                   (other_dir + "/state.db").c_str()),
            0);
  auto other = StateStore::Open(other_dir);
  ASSERT_OK(other.status());
  ASSERT_OK_AND_ASSIGN(DaemonState kept, (*other)->Load());
  EXPECT_EQ(kept.targets.count("backup"), 1u);
}

// When the database cannot be re-created the write is refused, saying
// what happened; once the cause is gone the next write re-creates it.
TEST_F(StateStoreTest, WriteIsRefusedWhenTheRemovedDatabaseCannotBeRecreated) {
  std::unique_ptr<StateStore> store = Open();
  Put(*store, Target("web", 1, 2));
  for (const char* file : {"/state.db", "/state.db-wal", "/state.db-shm"}) {
    ASSERT_EQ(unlink((dir_ + file).c_str()), 0) << file;
  }
  // Something in the way of the copy (a directory where it goes).
  const std::string blocker = dir_ + "/state.db.recreating";
  ASSERT_EQ(mkdir(blocker.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((blocker + "/x").c_str(), 0700), 0);
  TargetState db = Target("db", 2, 1);
  absl::Status refused =
      store->Write(StateWrite{expected_.next_ruleset, {{"db", &db, {}}}});
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.message(), "state.db was removed"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "do not restart"))
      << refused;
  ASSERT_OK(RemoveTree(blocker));
  Put(*store, db);
  ExpectLoads(expected_);
}

TEST_F(StateStoreTest, CorruptDatabaseIsReported) {
  std::ofstream(dir_ + "/state.db") << std::string(4096, 'x');
  EXPECT_STATUS(StateStore::Open(dir_), absl::StatusCode::kDataLoss,
                dir_ + "/state.db");
}

}  // namespace
}  // namespace egress
