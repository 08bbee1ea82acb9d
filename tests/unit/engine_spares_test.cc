// The spare writer (engine_spares.cc) over the fake kernel, whose rules map
// fails past its capacity as the kernel's does: a spare is written after a
// change and after a start when the maps keep room for it, never when they
// do not, and a change that needs its room deletes it. The half-written
// spare and the real maps: tests/privileged/background_spare_test.cc.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

class EngineSparesTest : public EngineTest {
 protected:
  // An engine with the spare writer, its rules map `capacity` entries.
  void Restart(size_t capacity, const DaemonState& state) {
    RestartWithRuleRoom(capacity, state, [](EngineOptions& o) {
      o.background_spares = true;
      o.spare_chunk = 50;  // a set of 300 hosts in several chunks
    });
  }
  void Settle() { ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30))); }

  const policy::Rule big_ = Hosts(1, 300);
  const size_t n_ = EntriesOf(big_);
};

TEST_F(EngineSparesTest, AfterAChangeASpareIsWrittenAndTheNextWritesItsDiff) {
  Restart(4 * n_, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big_})).status());
  Settle();
  const uint32_t first = kernel_.ActiveRuleset(IdOf("web"));
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 2u);  // the set and its spare
  EXPECT_GE(engine_->EntriesWritten().by_spare_writer, n_);
  const uint64_t written = engine_->EntriesWritten().by_changes;
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "192.0.2.1"}), {}}, kNow)
                .status());
  EXPECT_LE(engine_->EntriesWritten().by_changes - written, 4u);
  EXPECT_NE(kernel_.ActiveRuleset(IdOf("web")), first);
  // The maps hold a whole compile of the rules under the active id.
  auto targets = engine_->Targets("web", false);
  ASSERT_OK(targets.status());
  auto whole = policy::Compile(kernel_.ActiveRuleset(IdOf("web")),
                               (*targets)[0].rules, 0);
  ASSERT_OK(whole.status());
  EXPECT_TRUE(*kernel_.HasEntries(*whole));
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 2u);
  ASSERT_OK(engine_->RemoveTarget("web").status());
  Settle();
  EXPECT_TRUE(kernel_.RulesetsInMaps().empty());
}

TEST_F(EngineSparesTest, NoSpareIsWrittenWithoutRoomForIt) {
  // The set and a swap copy fit; the set, a spare and a copy do not.
  Restart(2 * n_ + n_ / 2, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big_})).status());
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 1u);
  EXPECT_EQ(engine_->EntriesWritten().by_spare_writer, 0u);
  // Changes still switch.
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "192.0.2.1"}), {}}, kNow)
                .status());
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 1u);
}

TEST_F(EngineSparesTest, AChangeThatNeedsTheRoomDeletesTheSpare) {
  // Two sets and a swap copy fit; two sets, a spare and a copy do not.
  Restart(3 * n_ + n_ / 2, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big_})).status());
  Settle();
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 2u);
  ASSERT_OK(engine_->AddTarget(Spec("db", "/db", {Hosts(2, 300)})).status());
  Settle();
  // No room for a spare of either now.
  EXPECT_EQ(kernel_.RulesetsInMaps(),
            (std::set<uint32_t>{kernel_.ActiveRuleset(IdOf("web")),
                                kernel_.ActiveRuleset(IdOf("db"))}));
  // Room again once db is gone: web gets its spare back.
  ASSERT_OK(engine_->RemoveTarget("db").status());
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 2u);
}

// An apply that replaces a target's rules while exact_rules has room for
// the new set only once the target's stale spare is gone: the spare goes,
// the new set is written into the hash as the first one was (not the
// trie), and the spare writer copies the new set (the next change writes
// its own difference into that copy, not the whole replacement).
TEST_F(EngineSparesTest, AReplacingApplyDropsTheStaleSpareForExactRoom) {
  const policy::Rule other = Hosts(2, 300);
  policy::Rule r = big_;
  r.id = 1;
  auto one = policy::Compile(1, {r}, EGRESS_MAX_EXACT_PER_SET);
  ASSERT_OK(one.status());
  const size_t exact_n = one->exact.size();
  ASSERT_GT(exact_n, 0u);
  RestartWithRuleRoom(10 * n_, DaemonState{}, [exact_n](EngineOptions& o) {
    o.background_spares = true;
    o.spare_chunk = 50;
    // The set and three sets' margin fit; with its spare they do not.
    o.map_capacity.exact =
        3 * size_t{EGRESS_MAX_EXACT_PER_SET} + exact_n + exact_n / 2;
  });
  control::ApplyRequest first;
  first.policies = {Spec("web", "/web", {big_})};
  ASSERT_OK(engine_->Apply(first, kNow).status());
  Settle();
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 2u);  // the set and its spare
  const uint64_t copied = engine_->EntriesWritten().by_spare_writer;
  control::ApplyRequest replace;
  replace.policies = {Spec("web", "/web", {other})};
  ASSERT_OK(engine_->Apply(replace, kNow).status());
  auto targets = engine_->Targets("web", false);
  ASSERT_OK(targets.status());
  auto exact = policy::Compile(kernel_.ActiveRuleset(IdOf("web")),
                               (*targets)[0].rules, EGRESS_MAX_EXACT_PER_SET);
  ASSERT_OK(exact.status());
  ASSERT_EQ(exact->exact.size(), exact_n);
  EXPECT_TRUE(*kernel_.HasEntries(*exact))
      << "the new set went to the trie, not exact_rules";
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 2u);
  EXPECT_GE(engine_->EntriesWritten().by_spare_writer - copied, exact_n)
      << "no new spare: the stale one stayed";
}

// The set an apply replaces is no target's once switched: the spare writer
// deletes it after the answer, not the apply before it (100,000 entries
// were a tenth of a replacing apply's answer).
TEST_F(EngineSparesTest, AReplacedSetIsDeletedAfterTheApplyAnswers) {
  // Room for the set and a swap copy: no spare, so the old set is the one
  // left to delete.
  Restart(2 * n_ + n_ / 2, DaemonState{});
  control::ApplyRequest first;
  first.policies = {Spec("web", "/web", {big_})};
  ASSERT_OK(engine_->Apply(first, kNow).status());
  Settle();
  const uint32_t old = kernel_.ActiveRuleset(IdOf("web"));
  ASSERT_EQ(kernel_.RulesetsInMaps(), std::set<uint32_t>{old});
  std::mutex mu;
  std::vector<std::thread::id> deleters;
  kernel_.OnDeleteEntries([&](uint32_t ruleset) {
    std::lock_guard<std::mutex> lock(mu);
    if (ruleset == old) deleters.push_back(std::this_thread::get_id());
  });
  control::ApplyRequest replace;
  replace.policies = {Spec("web", "/web", {Hosts(2, 300)})};
  ASSERT_OK(engine_->Apply(replace, kNow).status());
  Settle();
  kernel_.OnDeleteEntries(nullptr);
  ASSERT_FALSE(deleters.empty());
  for (const std::thread::id& by : deleters) {
    EXPECT_NE(by, std::this_thread::get_id())
        << "the apply deleted the replaced set before it answered";
  }
  EXPECT_EQ(kernel_.RulesetsInMaps(),
            std::set<uint32_t>{kernel_.ActiveRuleset(IdOf("web"))});
}

// After a replacing apply the spare writer copies the new set first and
// deletes the replaced one after: an `allow` 0.5 s after replacing 100,000
// rules found the copy not begun (the writer was deleting the old set in
// the target's spare slot) and wrote most of it itself.
TEST_F(EngineSparesTest, TheNewSetIsCopiedBeforeTheReplacedOneIsDeleted) {
  // Each time the writer lets go of the lock: entries per ruleset (shared:
  // the engine outlives the test's body).
  struct Seen {
    std::mutex mu;
    std::vector<std::map<uint32_t, size_t>> maps;
  };
  auto seen = std::make_shared<Seen>();
  RestartWithRuleRoom(10 * n_, DaemonState{}, [&](EngineOptions& o) {
    o.background_spares = true;
    o.spare_chunk = 50;
    o.spare_chunk_written = [seen, kernel = &kernel_] {
      std::map<uint32_t, size_t> now = kernel->EntriesByRuleset();
      std::lock_guard<std::mutex> lock(seen->mu);
      seen->maps.push_back(std::move(now));
    };
  });
  control::ApplyRequest first;
  first.policies = {Spec("web", "/web", {big_})};
  ASSERT_OK(engine_->Apply(first, kNow).status());
  Settle();
  const uint32_t old = kernel_.ActiveRuleset(IdOf("web"));
  control::ApplyRequest replace;
  replace.policies = {Spec("web", "/web", {Hosts(2, 300)})};
  ASSERT_OK(engine_->Apply(replace, kNow).status());
  Settle();
  const uint32_t active = kernel_.ActiveRuleset(IdOf("web"));
  const std::map<uint32_t, size_t> end = kernel_.EntriesByRuleset();
  ASSERT_EQ(end.size(), 2u) << "the new set and its spare";
  ASSERT_EQ(end.count(old), 0u) << "the replaced set was left";
  uint32_t spare = 0;
  for (const auto& [r, n] : end) {
    if (r != active) spare = r;
  }
  ASSERT_EQ(end.at(spare), end.at(active));
  std::lock_guard<std::mutex> lock(seen->mu);
  bool copied_first = false;
  for (const std::map<uint32_t, size_t>& m : seen->maps) {
    auto s = m.find(spare);
    if (s != m.end() && s->second == end.at(spare) && m.count(old) > 0) {
      copied_first = true;
    }
  }
  EXPECT_TRUE(copied_first)
      << "the new set's spare was written only after the replaced set was "
         "deleted";
}

TEST_F(EngineSparesTest, AStartWritesASpareOfEveryAdoptedSet) {
  Restart(6 * n_, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big_})).status());
  ASSERT_OK(engine_->AddTarget(Spec("db", "/db", {Hosts(2, 300)})).status());
  Settle();
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 4u);
  engine_->StopSpares();
  // The maps of a reboot: the start writes every set and a spare of each.
  ASSERT_OK(kernel_.DeleteRulesetsExcept({}).status());
  Restart(6 * n_, saved_);
  Settle();
  EXPECT_EQ(kernel_.RulesetsInMaps().size(), 4u);
  EXPECT_GE(engine_->EntriesWritten().by_spare_writer, 2 * n_);
  const uint64_t written = engine_->EntriesWritten().by_changes;
  ASSERT_OK(engine_->AddRule({"db", Allow({"https", "192.0.2.1"}), {}}, kNow)
                .status());
  EXPECT_LE(engine_->EntriesWritten().by_changes - written, 4u);
}

// A start takes the whole spares the last engine left (each to one target,
// also between targets with the same rules) and writes only the missing
// one: a spare part deleted is swept and written again.
TEST_F(EngineSparesTest, AStartAdoptsTheWholeSparesItFinds) {
  Restart(8 * n_, DaemonState{});
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {big_})).status());
  ASSERT_OK(engine_->AddTarget(Spec("db", "/db", {big_})).status());
  const policy::Rule api_rule = Hosts(2, 300);
  ASSERT_OK(engine_->AddTarget(Spec("api", "/api", {api_rule})).status());
  Settle();
  ASSERT_EQ(kernel_.RulesetsInMaps().size(), 6u);
  engine_->StopSpares();
  // api's spare loses one entry, as a copy cut short would.
  auto api = engine_->Targets("api", false);
  ASSERT_OK(api.status());
  ASSERT_OK_AND_ASSIGN(
      policy::CompiledRuleset api_set,
      policy::Compile(kernel_.ActiveRuleset(IdOf("api")), (*api)[0].rules, 0));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> copies, kernel_.CopiesOf(api_set));
  ASSERT_EQ(copies.size(), 1u);
  policy::CompiledRuleset cut = api_set;
  cut.ruleset = copies[0];
  cut.rules.resize(1);
  cut.rules[0].first.ruleset = copies[0];
  cut.ports.clear();
  ASSERT_OK(kernel_.DeleteEntries(cut));
  std::set<uint32_t> kept = kernel_.RulesetsInMaps();
  kept.erase(copies[0]);

  Restart(8 * n_, saved_);
  Settle();
  // web's and db's spares stay; api's is swept and written whole again.
  EXPECT_EQ(engine_->EntriesWritten().by_spare_writer, TotalEntries(api_set));
  std::set<uint32_t> now = kernel_.RulesetsInMaps();
  EXPECT_EQ(now.size(), 6u);
  EXPECT_EQ(now.count(copies[0]), 0u);
  for (const uint32_t r : kept) EXPECT_EQ(now.count(r), 1u) << r;
  // Each allow writes its difference into a spare of its own.
  std::set<uint32_t> flipped_to;
  for (const char* name : {"web", "db"}) {
    const uint64_t written = engine_->EntriesWritten().by_changes;
    ASSERT_OK(engine_->AddRule({name, Allow({"https", "192.0.2.1"}), {}}, kNow)
                  .status());
    EXPECT_LE(engine_->EntriesWritten().by_changes - written, 4u) << name;
    flipped_to.insert(kernel_.ActiveRuleset(IdOf(name)));
    auto t = engine_->Targets(name, false);
    ASSERT_OK(t.status());
    ASSERT_OK_AND_ASSIGN(
        policy::CompiledRuleset whole,
        policy::Compile(kernel_.ActiveRuleset(IdOf(name)), (*t)[0].rules, 0));
    EXPECT_TRUE(*kernel_.HasEntries(whole)) << name;
  }
  EXPECT_EQ(flipped_to.size(), 2u);
  for (const uint32_t r : flipped_to) EXPECT_EQ(kept.count(r), 1u) << r;
}

}  // namespace
}  // namespace egress::testing
