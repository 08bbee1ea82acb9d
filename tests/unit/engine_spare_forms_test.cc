// A change written as a diff into a spare while exact_rules fills up: the
// exact limit (Engine::ExactLimitLocked) the spare's copy was written under
// is not the one the change compiles under. The entries under the active id
// must still be one form of each rule (its exact_rules entries or its trie
// entry, never both) and nothing of a rule that is gone: the diff goes from
// what the spare holds to what the change compiled, whatever limit either
// was made under.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "egress/abi.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

constexpr auto kWait = std::chrono::seconds(30);

// Holds the spare writer after its `at`-th chunk from now until Release().
// Shared with the writer's hook: the engine outlives a test's body.
struct ChunkGate {
  std::mutex mu;
  std::condition_variable cv;
  int chunks = 0;
  int hold_at = -1;
  bool held = false;
  bool released = false;

  void OnChunk() {
    std::unique_lock<std::mutex> lock(mu);
    if (++chunks != hold_at) return;
    held = true;
    cv.notify_all();
    cv.wait_for(lock, kWait, [this] { return released; });
  }
  void HoldAfter(int at) {
    std::lock_guard<std::mutex> lock(mu);
    hold_at = chunks + at;
  }
  bool WaitHeld() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kWait, [this] { return held; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }
};

template <typename Entries>
Entries One(const Entries& from, size_t i) {
  return Entries{from[i]};
}

class EngineSpareFormsTest : public EngineTest {
 protected:
  // 1 if the maps hold this entry of `set` (`Entries` member `list`).
  template <typename Member>
  size_t Has(const policy::CompiledRuleset& set, Member list, size_t i) {
    policy::CompiledRuleset one;
    one.ruleset = set.ruleset;
    one.*list = One(set.*list, i);
    return kernel_.EntriesPresent(one);
  }

  // The entries under target `name`'s active id are one form of each of its
  // rules' entries: a trie entry both compiles keep, every exact_rules entry
  // or the trie entry of one moved to the hash (never both, never part),
  // the port_classes entries of exactly the classes a trie entry names, and
  // nothing else.
  void ExpectOneFormOfEachRule(const std::string& name,
                               const std::string& step) {
    SCOPED_TRACE(step);
    auto targets = engine_->Targets(name, false);
    ASSERT_OK(targets.status());
    const uint32_t active = kernel_.ActiveRuleset(IdOf(name));
    ASSERT_NE(active, 0u);
    const std::vector<policy::Rule>& rules = (*targets)[0].rules;
    auto trie = policy::Compile(active, rules, 0);
    auto hash = policy::Compile(active, rules, EGRESS_MAX_EXACT_PER_SET);
    ASSERT_OK(trie.status());
    ASSERT_OK(hash.status());
    ASSERT_TRUE(trie->names.empty() && trie->unix_paths.empty());
    size_t present = 0;
    // Trie entries present, by protocol and port class (for the ports).
    std::set<std::pair<uint8_t, uint16_t>> named;
    std::vector<bool> exact_seen(hash->exact.size());
    for (size_t i = 0; i < trie->rules.size(); ++i) {
      const egress_rule_key& k = trie->rules[i].first;
      const size_t in_trie = Has(*trie, &policy::CompiledRuleset::rules, i);
      present += in_trie;
      if (in_trie) named.insert({k.proto, ntohs(k.port_class)});
      bool kept = false;
      for (const auto& [h, v] : hash->rules) {
        kept = kept || std::memcmp(&h, &k, sizeof(k)) == 0;
      }
      if (kept) {
        EXPECT_EQ(in_trie, 1u) << "a trie entry of both compiles is missing";
        continue;
      }
      // Moved to exact_rules by a compile with room: its entries there are
      // those of its address, protocol and the ports of its class.
      const policy::compile_internal::ClassSpan* span = nullptr;
      for (const auto& c : trie->classes) {
        if (c.proto == k.proto && c.port_class == ntohs(k.port_class)) {
          span = &c;
        }
      }
      ASSERT_NE(span, nullptr);
      size_t forms = 0, in_exact = 0;
      for (size_t j = 0; j < hash->exact.size(); ++j) {
        const egress_exact_key& x = hash->exact[j].first;
        if (x.proto != k.proto || x.family != k.family ||
            std::memcmp(x.addr, k.addr, sizeof(k.addr)) != 0 ||
            ntohs(x.port) < span->lo || ntohs(x.port) > span->hi) {
          continue;
        }
        exact_seen[j] = true;
        ++forms;
        in_exact += Has(*hash, &policy::CompiledRuleset::exact, j);
      }
      ASSERT_GT(forms, 0u);
      present += in_exact;
      EXPECT_TRUE((in_trie == 1 && in_exact == 0) ||
                  (in_trie == 0 && in_exact == forms))
          << "rule entry " << i << ": trie " << in_trie << ", exact "
          << in_exact << " of " << forms;
    }
    for (size_t j = 0; j < exact_seen.size(); ++j) {
      EXPECT_TRUE(exact_seen[j]) << "an exact entry of no trie entry";
    }
    for (size_t i = 0; i < trie->ports.size(); ++i) {
      const auto& [k, v] = trie->ports[i];
      const size_t in = Has(*trie, &policy::CompiledRuleset::ports, i);
      present += in;
      EXPECT_EQ(in == 1, named.count({k.proto, v.port_class}) > 0)
          << "port_classes entry " << i << " of class " << v.port_class;
    }
    // Nothing else: no entry of a rule that is gone.
    EXPECT_EQ(kernel_.EntriesByRuleset()[active], present);
  }

  void Settle() { ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30))); }
};

// web's spare is two chunks into its copy (written under room for exact
// entries) when db takes the room: the next changes of web compile under
// none and are written as diffs, first into the half copy, then into the
// whole old set.
TEST_F(EngineSpareFormsTest, DiffsIntoASpareAcrossAnExactLimitChange) {
  const policy::Rule big = Hosts(1, 300);
  policy::Rule r = big;
  r.id = 1;
  auto one = policy::Compile(1, {r}, EGRESS_MAX_EXACT_PER_SET);
  ASSERT_OK(one.status());
  const size_t exact_n = one->exact.size();
  ASSERT_GT(exact_n, 2 * 50u);  // more than the two chunks
  auto gate = std::make_shared<ChunkGate>();
  absl::Cleanup release = [gate] { gate->Release(); };
  RestartWithRuleRoom(
      10 * EntriesOf(big), DaemonState{}, [&](EngineOptions& o) {
        o.background_spares = true;
        o.spare_chunk = 50;
        o.spare_chunk_written = [gate] { gate->OnChunk(); };
        // Room for web, two chunks of its spare and db beside the three
        // sets' margin, so db is compiled into the hash; with db there,
        // none is.
        o.map_capacity.exact =
            3 * size_t{EGRESS_MAX_EXACT_PER_SET} + exact_n + exact_n / 2;
      });
  gate->HoldAfter(2);
  control::ApplyRequest apply;
  // ssh's class is in the trie (a /24 is no whole address): a host of it
  // is a recompile of that class alone.
  apply.policies = {
      Spec("web", "/web", {big, Allow({"ssh", "198.51.100.0/24"})})};
  ASSERT_OK(engine_->Apply(apply, kNow).status());
  ASSERT_TRUE(gate->WaitHeld());
  ASSERT_EQ(kernel_.EntriesByRuleset().size(), 2u);
  ExpectOneFormOfEachRule("web", "the apply");
  ASSERT_OK(engine_->AddTarget(Spec("db", "/db", {Hosts(2, 300)})).status());
  ExpectOneFormOfEachRule("db", "db's add");
  auto db_hash = policy::Compile(kernel_.ActiveRuleset(IdOf("db")),
                                 engine_->Targets("db", false)->at(0).rules,
                                 EGRESS_MAX_EXACT_PER_SET);
  ASSERT_OK(db_hash.status());
  ASSERT_TRUE(*kernel_.HasEntries(*db_hash)) << "db went to the trie";

  // Another class: web's hash entries stay, the new host goes to the trie
  // (a compile with room would put it in the hash): written into the half
  // copy, a set of both limits.
  const uint32_t before = kernel_.ActiveRuleset(IdOf("web"));
  ASSERT_OK(engine_->AddRule({"web", Allow({"ssh", "192.0.2.1"}), {}}, kNow)
                .status());
  const uint32_t mixed = kernel_.ActiveRuleset(IdOf("web"));
  EXPECT_NE(mixed, before) << "no spare taken";
  ExpectOneFormOfEachRule("web", "an allow of another class");
  auto web_rules = engine_->Targets("web", false);
  ASSERT_OK(web_rules.status());
  for (const size_t limit : {size_t{0}, size_t{EGRESS_MAX_EXACT_PER_SET}}) {
    auto whole = policy::Compile(mixed, web_rules->at(0).rules, limit);
    ASSERT_OK(whole.status());
    EXPECT_FALSE(*kernel_.HasEntries(*whole))
        << "the set is a whole compile under limit " << limit
        << ", not one of both";
  }
  gate->Release();
  Settle();
  ExpectOneFormOfEachRule("web", "settled");

  // The class of the hash entries: all of them come again, into the trie
  // (no room), written into the spare (the old set, hash entries and all).
  const uint32_t again = kernel_.ActiveRuleset(IdOf("web"));
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "192.0.2.2"}), {}}, kNow)
                .status());
  EXPECT_NE(kernel_.ActiveRuleset(IdOf("web")), again) << "no spare taken";
  ExpectOneFormOfEachRule("web", "an allow of the hash entries' class");
  auto web_trie =
      policy::Compile(kernel_.ActiveRuleset(IdOf("web")),
                      engine_->Targets("web", false)->at(0).rules, 0);
  ASSERT_OK(web_trie.status());
  EXPECT_TRUE(*kernel_.HasEntries(*web_trie));
  Settle();
  ExpectOneFormOfEachRule("web", "settled again");
  ExpectOneFormOfEachRule("db", "at the end");
}

}  // namespace
}  // namespace egress::testing
