// The state database's generations: an updated target's rules written ahead
// stay no target's rows until the write that switches it (a start in between
// finds the rules it enforced), that write makes them its rows and the old
// ones are deleted afterwards; a version-1 database is migrated as it was.
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/state_store_fixture.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/state.h"
#include "userspace/daemon/state_store.h"
#include "userspace/daemon/state_write.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"

namespace egress {
namespace {

policy::Rule Rule(uint32_t id, int port) {
  auto r = policy::ParseRuleWords(policy::Action::kAllow,
                                  {absl::StrCat(port, "/tcp"), "10.0.0.1"});
  EXPECT_TRUE(r.ok()) << r.status();
  policy::Rule out = r.ok() ? *r : policy::Rule{};
  out.id = id;
  return out;
}

// `text` as an SQL string.
std::string Quoted(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "''"}}), "'");
}

// `rules` rules from port `first_port` on, ids from the target's next.
TargetState Target(const std::string& name, uint32_t id, int rules,
                   int first_port = 1000) {
  TargetState t;
  t.name = name;
  t.id = id;
  t.cgroup = "/" + name;
  t.ruleset = 7;
  for (int i = 0; i < rules; ++i) {
    t.rules.push_back(Rule(t.next_rule_id++, first_port + i));
  }
  return t;
}

// `t` with every rule replaced by `rules` others (new ids, other ports).
TargetState Replaced(const TargetState& t, int rules) {
  TargetState next = t;
  next.rules.clear();
  for (int i = 0; i < rules; ++i) {
    next.rules.push_back(Rule(next.next_rule_id++, 20000 + i));
  }
  next.ruleset = t.ruleset + 1;
  return next;
}

class StateStoreGenerationsTest : public StateStoreDirTest {
 protected:
  void Put(StateStore& store, const TargetState& t,
           std::optional<RulesDelta> delta = RulesDelta{}) {
    ASSERT_OK(store.Write(StateWrite{9, {{t.name, &t, delta}}}));
  }
  // The switch of `t` to the rules written ahead for it.
  void Switch(StateStore& store, const TargetState& t) {
    RulesDelta ahead;
    ahead.written_ahead = true;
    Put(store, t, ahead);
  }
  // What a start loads (and its drop of leftovers: how many targets').
  DaemonState Start(size_t* dropped = nullptr) {
    std::unique_ptr<StateStore> store = Open();
    if (store == nullptr) return {};
    auto state = store->Load();
    EXPECT_TRUE(state.ok()) << state.status();
    auto drop = store->DropLeftoverRows();
    EXPECT_TRUE(drop.ok()) << drop.status();
    if (dropped != nullptr) *dropped = drop.ok() ? *drop : 0;
    return state.ok() ? *std::move(state) : DaemonState{};
  }
  int64_t Rows(StateStore& store, const std::string& target) {
    auto rows = store.RuleRows(target);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : -1;
  }
};

// (a) A stored target's rules written ahead, no switch (egressd died in
// between): the start loads the rules it enforced and drops the others.
TEST_F(StateStoreGenerationsTest, RulesAheadOfAStoredTargetWaitForTheSwitch) {
  const TargetState web = Target("web", 1, 50);
  const TargetState next = Replaced(web, 300);
  {
    std::unique_ptr<StateStore> store = Open();
    Put(*store, web);
    ASSERT_OK(store->WriteRulesAhead({&next}));
    EXPECT_EQ(Rows(*store, "web"), 350) << "the enforced rows stay";
  }
  size_t dropped = 0;
  DaemonState state = Start(&dropped);
  ASSERT_TRUE(state.targets.count("web"));
  EXPECT_EQ(state.targets.at("web").rules, web.rules);
  EXPECT_EQ(state.targets.at("web").ruleset, web.ruleset);
  EXPECT_EQ(dropped, 1u);
  std::unique_ptr<StateStore> store = Open();
  EXPECT_EQ(Rows(*store, "web"), 50);
}

// (b) The switch makes them the target's in one write (its row and the
// counter); the old rows go afterwards, in chunks.
TEST_F(StateStoreGenerationsTest, TheSwitchTakesTheRowsAndTheOldOnesGoLater) {
  const TargetState web = Target("web", 1, 12000);  // more than one chunk
  const TargetState next = Replaced(web, 300);
  std::unique_ptr<StateStore> store = Open();
  Put(*store, web);
  ASSERT_OK(store->WriteRulesAhead({&next}));
  Switch(*store, next);
  EXPECT_EQ(store->last_write_rows(), 2) << "the target's row, the counter";
  ASSERT_OK(store->WaitForDeletes());
  EXPECT_EQ(Rows(*store, "web"), 300);
  size_t dropped = 0;
  DaemonState state = Start(&dropped);
  ASSERT_TRUE(state.targets.count("web"));
  EXPECT_EQ(state.targets.at("web").rules, next.rules);
  EXPECT_EQ(state.targets.at("web").ruleset, next.ruleset);
  EXPECT_EQ(dropped, 0u);
}

// (b) Killed before the old rows were deleted: the start loads the new
// rules and drops the old rows.
TEST_F(StateStoreGenerationsTest, OldRowsLeftByAStopAreDroppedAtTheStart) {
  const TargetState web = Target("web", 1, 40);
  const TargetState next = Replaced(web, 30);
  {
    std::unique_ptr<StateStore> store = Open();
    store->HoldDeletes(true);
    Put(*store, web);
    ASSERT_OK(store->WriteRulesAhead({&next}));
    Switch(*store, next);
    ASSERT_OK(store->WaitForDeletes());
    EXPECT_EQ(Rows(*store, "web"), 70);
  }
  size_t dropped = 0;
  DaemonState state = Start(&dropped);
  ASSERT_TRUE(state.targets.count("web"));
  EXPECT_EQ(state.targets.at("web").rules, next.rules);
  EXPECT_EQ(dropped, 1u);
  std::unique_ptr<StateStore> store = Open();
  EXPECT_EQ(Rows(*store, "web"), 30);
}

// (c) An apply that fails after writing ahead drops those rows: the
// target's own are intact, and a later apply writes ahead again.
TEST_F(StateStoreGenerationsTest, DroppingRowsAheadKeepsTheTargetsRows) {
  const TargetState web = Target("web", 1, 20);
  std::unique_ptr<StateStore> store = Open();
  Put(*store, web);
  const TargetState failed = Replaced(web, 100);
  ASSERT_OK(store->WriteRulesAhead({&failed}));
  ASSERT_OK(store->DropRulesAhead({"web"}));
  EXPECT_EQ(Rows(*store, "web"), 20);
  EXPECT_EQ(Start().targets.at("web").rules, web.rules);

  const TargetState next = Replaced(web, 10);
  ASSERT_OK(store->WriteRulesAhead({&next}));
  Switch(*store, next);
  ASSERT_OK(store->WaitForDeletes());
  EXPECT_EQ(Rows(*store, "web"), 10);
  EXPECT_EQ(Start().targets.at("web").rules, next.rules);
}

// (e) Small deltas after a switch go to the switched generation, in place.
TEST_F(StateStoreGenerationsTest, AnAllowAfterTheSwitchIsInTheNewRows) {
  const TargetState web = Target("web", 1, 200);
  TargetState next = Replaced(web, 100);
  std::unique_ptr<StateStore> store = Open();
  Put(*store, web);
  ASSERT_OK(store->WriteRulesAhead({&next}));
  Switch(*store, next);
  // An `allow` as the engine writes it: only the new rule, after the last.
  TargetState appended = next;
  appended.rules = {Rule(next.next_rule_id, 9999)};
  appended.next_rule_id = next.next_rule_id + 1;
  RulesDelta after_last{false, {next.next_rule_id}, {}};
  after_last.appended_after = next.rules.back().id;
  Put(*store, appended, after_last);
  EXPECT_EQ(store->last_write_rows(), 3) << "the target, the rule, the counter";
  next.rules.push_back(appended.rules[0]);
  next.next_rule_id = appended.next_rule_id;
  // A `delete` of the first rule and an `allow` between the two first.
  TargetState edited = next;
  edited.rules.erase(edited.rules.begin());
  edited.rules.insert(edited.rules.begin() + 1,
                      Rule(edited.next_rule_id++, 8888));
  RulesDelta delta = DiffRules(next.rules, edited.rules);
  ASSERT_FALSE(delta.all);
  Put(*store, edited, delta);
  EXPECT_EQ(store->last_write_rows(), 4);
  ASSERT_OK(store->WaitForDeletes());
  EXPECT_EQ(Rows(*store, "web"), 101);
  store.reset();
  size_t dropped = 0;
  EXPECT_EQ(Start(&dropped).targets.at("web").rules, edited.rules);
  EXPECT_EQ(dropped, 0u);
}

// (f) A removal writes the target's row only: its rule rows go after the
// write (more than one chunk of them), on the deleting thread.
TEST_F(StateStoreGenerationsTest, ARemovedTargetsRowsGoAfterItsWrite) {
  const TargetState web = Target("web", 1, 12000);
  const TargetState db = Target("db", 2, 5);
  std::unique_ptr<StateStore> store = Open();
  Put(*store, web);
  Put(*store, db);
  store->HoldDeletes(true);
  ASSERT_OK(store->Write(StateWrite{9, {{"web", nullptr, std::nullopt}}}));
  EXPECT_EQ(store->last_write_rows(), 2) << "the target's row, the counter";
  EXPECT_EQ(Rows(*store, "web"), 12000) << "no rule row deleted inline";
  ASSERT_OK_AND_ASSIGN(DaemonState state, store->Load());
  EXPECT_FALSE(state.targets.count("web"));
  store->HoldDeletes(false);
  ASSERT_OK(store->WaitForDeletes());
  EXPECT_EQ(Rows(*store, "web"), 0);
  EXPECT_EQ(Rows(*store, "db"), 5);
  store.reset();
  size_t dropped = 0;
  state = Start(&dropped);
  EXPECT_FALSE(state.targets.count("web"));
  EXPECT_EQ(state.targets.at("db").rules, db.rules);
  EXPECT_EQ(dropped, 0u);
}

// (f) Killed after the removal, before its rows were deleted: the start
// finds no such target, loads none of its rows and drops them.
TEST_F(StateStoreGenerationsTest, RowsOfARemovalCutShortAreDroppedAtTheStart) {
  const TargetState web = Target("web", 1, 40);
  const TargetState db = Target("db", 2, 3);
  {
    std::unique_ptr<StateStore> store = Open();
    Put(*store, web);
    Put(*store, db);
    store->HoldDeletes(true);
    ASSERT_OK(store->Write(StateWrite{9, {{"web", nullptr, std::nullopt}}}));
  }
  std::unique_ptr<StateStore> store = Open();
  ASSERT_OK_AND_ASSIGN(DaemonState state, store->Load());
  EXPECT_FALSE(state.targets.count("web"));
  EXPECT_EQ(state.targets.at("db").rules, db.rules);
  EXPECT_EQ(Rows(*store, "web"), 40) << "left by the stop";
  ASSERT_OK_AND_ASSIGN(size_t dropped, store->DropLeftoverRows());
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(Rows(*store, "web"), 0);
  EXPECT_EQ(Rows(*store, "db"), 3);
}

// (f) A target of the removed one's name added again before its rows were
// deleted (the same rule ids, other rules): its rows are of a generation of
// their own, which the deleting thread leaves alone. As a `target add` (one
// write), as an apply (written ahead, then switched), and in the very write
// that removed the old one.
TEST_F(StateStoreGenerationsTest, ATargetAddedAgainKeepsItsRows) {
  const TargetState web = Target("web", 1, 12000);
  const TargetState again = Target("web", 1, 300, 5000);
  enum class How { kAdd, kApply, kSameWrite };
  for (How how : {How::kAdd, How::kApply, How::kSameWrite}) {
    SCOPED_TRACE(static_cast<int>(how));
    for (const char* file : {"/state.db", "/state.db-wal", "/state.db-shm"}) {
      unlink((dir_ + file).c_str());  // the last pass's database
    }
    std::unique_ptr<StateStore> store = Open();
    Put(*store, web);
    store->HoldDeletes(true);
    const TargetWrite remove{"web", nullptr, std::nullopt};
    if (how == How::kSameWrite) {
      ASSERT_OK(
          store->Write(StateWrite{9, {remove, {"web", &again, RulesDelta{}}}}));
    } else {
      ASSERT_OK(store->Write(StateWrite{9, {remove}}));
      if (how == How::kAdd) {
        Put(*store, again);
      } else {
        ASSERT_OK(store->WriteRulesAhead({&again}));
        Switch(*store, again);
      }
    }
    EXPECT_EQ(Rows(*store, "web"), 12300) << "the old rows still to delete";
    store->HoldDeletes(false);
    ASSERT_OK(store->WaitForDeletes());
    EXPECT_EQ(Rows(*store, "web"), 300);
    ASSERT_OK_AND_ASSIGN(DaemonState state, store->Load());
    EXPECT_EQ(state.targets.at("web").rules, again.rules);
    store.reset();
    size_t dropped = 0;
    EXPECT_EQ(Start(&dropped).targets.at("web").rules, again.rules);
    EXPECT_EQ(dropped, 0u);
  }
}

// (d) A database version 1 wrote (rows of two targets, and rows written
// ahead for a target never stored): migrated at open, loaded as it was.
TEST_F(StateStoreGenerationsTest, AVersion1DatabaseIsMigratedAsItWas) {
  const TargetState web = Target("web", 3, 30);
  const TargetState db = [] {
    TargetState t = Target("db", 4, 2);
    t.mode = policy::Mode::kEnforce;
    return t;
  }();
  const TargetState ghost = Target("ghost", 5, 7);
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> v1(raw, sqlite3_close);
    // Version 1's schema, as it created it.
    std::string sql =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, "
        "value INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS targets(name TEXT PRIMARY KEY, "
        "settings TEXT NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS rules(target TEXT NOT NULL, "
        "seq INTEGER NOT NULL, id INTEGER NOT NULL, rule TEXT NOT NULL, "
        "PRIMARY KEY(target, seq)) WITHOUT ROWID;"
        "INSERT INTO meta(key, value) VALUES('schema', 1);"
        "INSERT INTO meta(key, value) VALUES('next_ruleset', 42);";
    for (const TargetState* t : {&web, &db}) {
      absl::StrAppend(&sql, "INSERT INTO targets VALUES(", Quoted(t->name),
                      ", ", Quoted(policy::JsonText(TargetSettingsToJson(*t))),
                      ");");
    }
    for (const TargetState* t : {&web, &db, &ghost}) {
      for (size_t i = 0; i < t->rules.size(); ++i) {
        absl::StrAppend(&sql, "INSERT INTO rules VALUES(", Quoted(t->name),
                        ", ", i * StateStore::kSeqGap, ", ", t->rules[i].id,
                        ", ", Quoted(policy::RuleJsonText(t->rules[i])), ");");
      }
    }
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(v1.get(), sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << (error ? error : "");
  }
  std::unique_ptr<StateStore> store = Open();
  ASSERT_OK_AND_ASSIGN(DaemonState state, store->Load());
  EXPECT_EQ(state.next_ruleset, 42u);
  ASSERT_EQ(state.targets.size(), 2u);
  EXPECT_EQ(state.targets.at("web").rules, web.rules);
  EXPECT_EQ(state.targets.at("web").id, web.id);
  EXPECT_EQ(state.targets.at("db").rules, db.rules);
  EXPECT_EQ(state.targets.at("db").mode, policy::Mode::kEnforce);
  ASSERT_OK_AND_ASSIGN(size_t dropped, store->DropLeftoverRows());
  EXPECT_EQ(dropped, 1u) << "ghost's rows";
  EXPECT_EQ(Rows(*store, "ghost"), 0);
  // Its rows are the targets' current ones: a delta and a switch work.
  TargetState more = web;
  more.rules.push_back(Rule(more.next_rule_id++, 7777));
  Put(*store, more, DiffRules(web.rules, more.rules));
  EXPECT_EQ(store->last_write_rows(), 3);
  const TargetState next = Replaced(db, 5);
  ASSERT_OK(store->WriteRulesAhead({&next}));
  Switch(*store, next);
  ASSERT_OK(store->WaitForDeletes());
  EXPECT_EQ(Rows(*store, "db"), 5);
  store.reset();
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> v2(raw, sqlite3_close);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(v2.get(),
                                 "SELECT value FROM meta WHERE key = 'schema'",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(stmt, 0), 2);
    sqlite3_finalize(stmt);
  }
  DaemonState again = Start(&dropped);
  EXPECT_EQ(again.next_ruleset, 9u);
  EXPECT_EQ(again.targets.at("web").rules, more.rules);
  EXPECT_EQ(again.targets.at("db").rules, next.rules);
  EXPECT_EQ(dropped, 0u);
}

}  // namespace
}  // namespace egress
