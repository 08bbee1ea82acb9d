// The spare writer (userspace/daemon/engine_spares.cc) against the real
// kernel's maps: an engine of its own over a BpfKernel (no egressd), a test
// cgroup as its target. After an apply the target gets a spare copy of its
// set in the background, so the first change writes only its difference; a
// change that comes while the copy is half written takes it and writes the
// rest; removing the target, stopping the engine and a restart leave no
// entry of a spare behind. No traffic: the rules' addresses are data only.
#include <bpf/bpf.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/ruleset_entries.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/common/instance_lock.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/kernel_port_bpf.h"
#include "userspace/daemon/state_write.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/map_walk.h"
#include "userspace/policy/spec.h"

namespace egress::testing {
namespace {

constexpr int64_t kNow = 1'000'000;
constexpr auto kWait = std::chrono::seconds(30);

// Allow rule n: one TCP port to one /32 in 10.0.0.0/8 (data only).
policy::Rule RuleNumber(int n) {
  auto r = policy::ParseRuleWords(policy::Action::kAllow,
                                  {absl::StrCat(1024 + n % 500, "/tcp"),
                                   absl::StrCat("10.", (n >> 16) & 255, ".",
                                                (n >> 8) & 255, ".", n & 255)});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : policy::Rule{};
}

std::vector<policy::Rule> Rules(int first, int n) {
  std::vector<policy::Rule> out;
  for (int i = first; i < first + n; ++i) out.push_back(RuleNumber(i));
  return out;
}

// Holds the spare writer (its chunk hook) after its `at`-th chunk until
// Release().
class ChunkGate {
 public:
  void HoldAfter(int at) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_at_ = chunks_ + at;
    released_ = false;
    held_ = false;
  }
  void OnChunk() {
    std::unique_lock<std::mutex> lock(mu_);
    ++chunks_;
    if (chunks_ != hold_at_) return;
    held_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, kWait, [this] { return released_; });
  }
  bool WaitHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [this] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int chunks_ = 0;
  int hold_at_ = -1;
  bool held_ = false;
  bool released_ = false;
};

class BackgroundSpareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    bpffs_dir_ = absl::StrCat("/sys/fs/bpf/egress-test-spares-", getpid());
    ASSERT_OK_AND_ASSIGN(cgroup_root_, Cgroup2Root());
    ASSERT_OK_AND_ASSIGN(
        kernel_, BpfKernel::Open(bpffs_dir_, "/sys/fs/bpf", cgroup_root_,
                                 LockHolder{getpid(), ""}));
    ASSERT_OK_AND_ASSIGN(cgroup_, TestCgroup::Create("spares"));
    StartEngine();
  }

  void TearDown() override {
    gate_.Release();
    if (engine_) engine_->RemoveTarget("big").IgnoreError();
    engine_.reset();
    kernel_.reset();
    if (cgroup_) cgroup_->Remove().IgnoreError();
    if (!bpffs_dir_.empty()) RemoveTree(bpffs_dir_).IgnoreError();
  }

  // An engine over the kernel and the state saved so far (a restart when
  // there was one before).
  void StartEngine() {
    engine_.reset();
    EngineOptions o;
    o.save = [this](const StateWrite& w) {
      ApplyStateWrite(w, &saved_);
      return absl::OkStatus();
    };
    o.normalize_cgroup = [root = cgroup_root_](const std::string& p) {
      return NormalizeCgroupPath(p, root);
    };
    o.background_spares = true;
    o.spare_chunk = kChunk;
    o.spare_chunk_written = [this] { gate_.OnChunk(); };
    engine_ = std::make_unique<Engine>(*kernel_, saved_, o);
    ASSERT_OK(engine_->Start(kNow).status());
  }

  absl::Status Apply(std::vector<policy::Rule> rules) {
    control::TargetSpec spec;
    spec.name = "big";
    spec.source_value = cgroup_->relative_path();
    spec.rules = std::move(rules);
    control::ApplyRequest request;
    request.policies.push_back(std::move(spec));
    return engine_->Apply(std::move(request), kNow).status();
  }

  absl::Status Allow(int n) {
    return engine_->AddRule({"big", RuleNumber(n), std::nullopt, false}, kNow)
        .status();
  }

  uint32_t Id() {
    auto t = engine_->Targets("big", false);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? (*t)[0].id : 0;
  }

  uint32_t ActiveRuleset() {
    auto config = kernel_->TargetConfig(Id());
    EXPECT_TRUE(config.ok()) << config.status();
    return config.ok() ? config->ruleset : 0;
  }

  // Entries per ruleset id over every rule map, walked now.
  std::map<uint32_t, size_t> EntriesByRuleset() {
    return egress::EntriesByRuleset(kernel_->maps().dir());
  }

  // The target's set compiled whole under `ruleset`, as the engine
  // compiles it (room for exact entries: these sets are small).
  policy::CompiledRuleset Compiled(uint32_t ruleset,
                                   const std::vector<policy::Rule>& rules) {
    auto c = policy::Compile(ruleset, rules, EGRESS_MAX_EXACT_PER_SET);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : policy::CompiledRuleset{};
  }

  // What the hooks read is exactly a whole compile of the target's rules:
  // every entry, and nothing else under the active id.
  void ExpectEnforcedIsCompiled(const std::string& step) {
    auto rules = engine_->RulesOf("big");
    ASSERT_TRUE(rules.ok()) << rules.status();
    const uint32_t active = ActiveRuleset();
    ASSERT_NE(active, 0u) << step;
    const policy::CompiledRuleset whole = Compiled(active, *rules);
    auto present = kernel_->HasEntries(whole);
    ASSERT_TRUE(present.ok()) << present.status();
    EXPECT_TRUE(*present) << step;
    EXPECT_EQ(EntriesByRuleset()[active], TotalEntries(whole)) << step;
  }

  static constexpr size_t kChunk = 64;
  static constexpr int kRules = 3000;
  std::string bpffs_dir_, cgroup_root_;
  DaemonState saved_;
  ChunkGate gate_;  // outlives the engine, whose writer calls it
  std::unique_ptr<BpfKernel> kernel_;
  std::unique_ptr<TestCgroup> cgroup_;
  std::unique_ptr<Engine> engine_;
};

// After an apply the target gets a spare: under an id of its own, as many
// entries in every map as the active set.
TEST_F(BackgroundSpareTest, AfterAnApplyTheTargetGetsAWholeSpare) {
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  const uint32_t active = ActiveRuleset();
  std::map<uint32_t, size_t> n = EntriesByRuleset();
  ASSERT_EQ(n.size(), 2u) << "the active set and one spare";
  n.erase(active);
  const uint32_t spare = n.begin()->first;
  auto rules = engine_->RulesOf("big");
  ASSERT_OK(rules.status());
  // The spare is the active set under its own id: every entry.
  const policy::CompiledRuleset copy = Compiled(spare, *rules);
  EXPECT_EQ(n[spare], TotalEntries(copy));
  EXPECT_GT(TotalEntries(copy), 2 * kChunk);  // written in many chunks
  ASSERT_OK_AND_ASSIGN(bool present, kernel_->HasEntries(copy));
  EXPECT_TRUE(present);
  EXPECT_EQ(engine_->EntriesWritten().by_spare_writer, TotalEntries(copy));
  ExpectEnforcedIsCompiled("after the apply");
}

// The first allow after the apply finds the spare: it writes its
// difference (a few entries), not the whole set under a new id.
TEST_F(BackgroundSpareTest, TheFirstAllowAfterAnApplyWritesOnlyItsDifference) {
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  const uint32_t before = ActiveRuleset();
  const uint64_t written = engine_->EntriesWritten().by_changes;
  ASSERT_OK(Allow(kRules));
  const uint64_t allow_wrote = engine_->EntriesWritten().by_changes - written;
  EXPECT_LE(allow_wrote, 8u);
  EXPECT_GT(allow_wrote, 0u);
  EXPECT_NE(ActiveRuleset(), before);  // flipped to the spare
  ExpectEnforcedIsCompiled("after the first allow");
  // The replaced set is the spare now: two sets, no third.
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  EXPECT_EQ(EntriesByRuleset().size(), 2u);
}

// A change that comes while the spare is half written takes it as it is
// and writes the rest; nothing is left over once everything settles.
TEST_F(BackgroundSpareTest, AChangeTakesAHalfWrittenSpareAndWritesTheRest) {
  gate_.HoldAfter(10);
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(gate_.WaitHeld());
  const uint32_t active = ActiveRuleset();
  std::map<uint32_t, size_t> n = EntriesByRuleset();
  ASSERT_EQ(n.size(), 2u);
  const size_t whole = n[active];
  n.erase(active);
  const uint32_t spare = n.begin()->first;
  EXPECT_EQ(n[spare], 10 * kChunk) << "ten chunks written, no more";
  // The writer waits outside the engine's lock: the change goes ahead.
  const uint64_t written = engine_->EntriesWritten().by_changes;
  ASSERT_OK(Allow(kRules));
  const uint64_t allow_wrote = engine_->EntriesWritten().by_changes - written;
  EXPECT_EQ(ActiveRuleset(), spare);
  // The rest of the set and the new rule's entries, not the part written.
  EXPECT_LT(allow_wrote, whole - 10 * kChunk + 8);
  EXPECT_GE(allow_wrote, whole - 10 * kChunk);
  ExpectEnforcedIsCompiled("after the allow");
  gate_.Release();
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  ExpectEnforcedIsCompiled("after the writer went on");
  // The old set became the spare; nothing else is in the maps.
  n = EntriesByRuleset();
  EXPECT_EQ(n.size(), 2u);
  EXPECT_EQ(n[active], whole);
  // The next allow writes into that spare only its difference.
  const uint64_t again = engine_->EntriesWritten().by_changes;
  ASSERT_OK(Allow(kRules + 1));
  EXPECT_LE(engine_->EntriesWritten().by_changes - again, 16u);
  ExpectEnforcedIsCompiled("after a second allow");
}

// Changes of every kind while the writer copies, deletes and copies again
// (an apply that replaces the set the spare copies): after each the
// enforced set is the compile, and after all of them the maps hold the
// active set and one spare that later changes can rely on.
TEST_F(BackgroundSpareTest, ChangesWhileTheSpareIsWrittenLeaveNoStrayEntry) {
  for (int round = 0; round < 6; ++round) {
    const std::string step = absl::StrCat("round ", round);
    ASSERT_OK(Apply(Rules(round * 100, kRules))) << step;
    ExpectEnforcedIsCompiled(step + " apply");
    // Let the writer get part-way, at a different point each round.
    absl::SleepFor(absl::Milliseconds(2 * round));
    ASSERT_OK(Allow(kRules + round)) << step;
    ExpectEnforcedIsCompiled(step + " allow");
    ASSERT_OK(Apply(Rules(round * 100 + 7, kRules - round))) << step;
    ExpectEnforcedIsCompiled(step + " second apply");
  }
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  EXPECT_EQ(EntriesByRuleset().size(), 2u);
  // A spare that did not hold what the engine thinks would show here: the
  // diff into it leaves entries missing or extra under the active id.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(Allow(kRules + 100 + i));
    ExpectEnforcedIsCompiled(absl::StrCat("settled allow ", i));
    ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  }
  EXPECT_EQ(EntriesByRuleset().size(), 2u);
}

// Removing the target while its spare is half written deletes it too.
TEST_F(BackgroundSpareTest, RemovingTheTargetDeletesAHalfWrittenSpare) {
  gate_.HoldAfter(5);
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(gate_.WaitHeld());
  ASSERT_EQ(EntriesByRuleset().size(), 2u);
  ASSERT_OK(engine_->RemoveTarget("big").status());
  gate_.Release();
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  EXPECT_TRUE(EntriesByRuleset().empty());
}

// Stopping the engine while a spare is half written deletes that part; a
// restart adopts the active set and writes a new spare.
TEST_F(BackgroundSpareTest,
       StoppingDeletesAHalfWrittenSpareAndRestartWritesIt) {
  gate_.HoldAfter(5);
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(gate_.WaitHeld());
  const uint32_t active = ActiveRuleset();
  ASSERT_EQ(EntriesByRuleset().size(), 2u);
  // The stop is asked while the writer is held; it ends after this chunk.
  std::thread stop([this] { engine_->StopSpares(); });
  absl::SleepFor(absl::Milliseconds(100));
  gate_.Release();
  stop.join();
  std::map<uint32_t, size_t> n = EntriesByRuleset();
  EXPECT_EQ(n.size(), 1u);
  EXPECT_EQ(n.count(active), 1u);
  // Changes still work without the writer.
  ASSERT_OK(Allow(kRules));
  ExpectEnforcedIsCompiled("allow after the stop");
  // A restart: the set is adopted as it is, and a spare written beside it.
  const uint32_t now_active = ActiveRuleset();
  StartEngine();
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  EXPECT_EQ(ActiveRuleset(), now_active);
  n = EntriesByRuleset();
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n.begin()->second, n.rbegin()->second);
  ExpectEnforcedIsCompiled("after the restart");
}

// A restart finds the whole spare the last engine left and takes it: the
// writer writes nothing, and the first allow writes only its difference
// into that spare and flips to it.
TEST_F(BackgroundSpareTest, ARestartAdoptsTheWholeSpareItFinds) {
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  const uint32_t active = ActiveRuleset();
  const std::map<uint32_t, size_t> before = EntriesByRuleset();
  ASSERT_EQ(before.size(), 2u);
  const uint32_t spare = before.begin()->first == active
                             ? before.rbegin()->first
                             : before.begin()->first;
  StartEngine();
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  EXPECT_EQ(engine_->EntriesWritten().by_spare_writer, 0u);
  EXPECT_EQ(EntriesByRuleset(), before) << "nothing swept, nothing written";
  EXPECT_EQ(ActiveRuleset(), active);
  ASSERT_OK(Allow(kRules));
  EXPECT_LE(engine_->EntriesWritten().by_changes, 8u);
  EXPECT_EQ(ActiveRuleset(), spare);
  ExpectEnforcedIsCompiled("after the allow");
}

// What a crash leaves (a spare part-written under an id no state names) is
// swept at the next start.
TEST_F(BackgroundSpareTest, RestartSweepsAPartSpareACrashLeft) {
  ASSERT_OK(Apply(Rules(0, kRules)));
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  engine_->StopSpares();
  // As the writer would have left it, under an id past every one in use.
  auto rules = engine_->RulesOf("big");
  ASSERT_OK(rules.status());
  policy::CompiledRuleset part = Compiled(ActiveRuleset() + 100, *rules);
  part.rules.resize(part.rules.size() / 2);
  part.exact.resize(part.exact.size() / 2);
  ASSERT_OK(kernel_->WriteEntries(part));
  ASSERT_EQ(EntriesByRuleset().size(), 3u);
  StartEngine();
  ASSERT_TRUE(engine_->WaitForSpares(absl::Seconds(30)));
  std::map<uint32_t, size_t> n = EntriesByRuleset();
  EXPECT_EQ(n.count(part.ruleset), 0u);
  EXPECT_EQ(n.size(), 2u);
  ExpectEnforcedIsCompiled("after the restart");
}

}  // namespace
}  // namespace egress::testing
