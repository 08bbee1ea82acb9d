// The spare writer: a thread of the engine's own that gives every target
// whose active rule set has no spare a copy of that set under a ruleset id
// of its own. The next change of the target then writes only its difference
// into the spare and flips to it (engine_rules.cc), instead of the whole set
// under a new id: the first change after an apply or a start of a 100,000-
// rule target costs what every later one does.
//
// The copy is written a chunk at a time, each under the engine's lock, so a
// change never waits for more than one chunk. Between chunks the spare is in
// spares_ and holds exactly the entries written so far: a change that comes
// then takes it like any spare and writes the rest with its own difference
// (DiffCompiled), and a change that needs the room deletes it. No lookup
// reads a spare (its ruleset id is no target's active one). A spare not
// finished when the writer stops is deleted; one a crash left is swept at
// the next start (Start deletes the entries of every ruleset no target
// uses). A whole one, left by a stop or a crash, is the target's spare
// again after the start (AdoptSparesLocked): nothing to write.
//
// The writer also deletes, a chunk at a time, the sets an apply switched
// away from (RetireSetLocked, retiring_), last: after every spare it has to
// write, so the copy of a replacing apply's new set is whole when an
// `allow` comes 0.5 s later (deleting the 100,000 replaced entries first
// left that allow most of the copy to write). They hold their room in the
// maps until gone.
#include <algorithm>
#include <chrono>
#include <set>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"

namespace egress {
namespace {

// Every kind of entry a CompiledRuleset holds is copied below: a new member
// changes the size and stops the build here (as in compiled_diff.cc).
static_assert(sizeof(policy::CompiledRuleset) ==
                  8 + 6 * sizeof(std::vector<std::pair<int, int>>) + 8,
              "CompiledRuleset changed: copy its new entries into spares");

// The writer's pause after each chunk. A mutex does not queue its waiters:
// a request woken when the writer lets go must be scheduled before the
// writer takes the lock again, and on a busy machine a pause of 0.3 ms let
// the writer take it chunk after chunk (`status` during a 200-target apply,
// whose spares are written as it answers, waited up to 150 ms).
constexpr auto kSparePause = std::chrono::milliseconds(1);
// Steps of one pass (it ends when there is nothing to do): bounds a bug,
// not the work (100,000 rules take about 75).
constexpr int kMaxStepsPerPass = 1 << 20;

// Appends to `chunk` the entries of `from` past its first `done`, at most
// `budget` (which they use up), keyed by `ruleset`.
template <typename Entries>
void TakeNext(const Entries& from, size_t done, uint32_t ruleset,
              size_t& budget, Entries& chunk) {
  const size_t n = std::min(budget, from.size() - std::min(done, from.size()));
  for (size_t i = done; i < done + n; ++i) {
    chunk.push_back(from[i]);
    chunk.back().first.ruleset = ruleset;
  }
  budget -= n;
}

// Moves the last entries of `from`, at most `budget`, to `chunk`.
template <typename Entries>
void TakeLast(Entries& from, size_t& budget, Entries& chunk) {
  const size_t n = std::min(budget, from.size());
  chunk.insert(chunk.end(), from.end() - n, from.end());
  from.erase(from.end() - n, from.end());
  budget -= n;
}

// Moves the last entries of `set`, at most `size` (at least one), to the
// chunk returned, the ports (which the rules' entries name) last.
policy::CompiledRuleset TakeChunk(policy::CompiledRuleset& set, size_t size) {
  policy::CompiledRuleset chunk;
  chunk.ruleset = set.ruleset;
  size_t budget = std::max<size_t>(size, 1);
  TakeLast(set.unix_paths, budget, chunk.unix_paths);
  TakeLast(set.names, budget, chunk.names);
  TakeLast(set.exact, budget, chunk.exact);
  TakeLast(set.rules, budget, chunk.rules);
  TakeLast(set.ports, budget, chunk.ports);
  return chunk;
}

template <typename Entries>
void Rekey(Entries& entries, uint32_t ruleset) {
  for (auto& entry : entries) entry.first.ruleset = ruleset;
}

template <typename Entries>
void Append(Entries& to, const Entries& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// True when `spare` holds as many entries of each kind as `active`.
bool Whole(const policy::CompiledRuleset& spare,
           const policy::CompiledRuleset& active) {
  return spare.ports.size() == active.ports.size() &&
         spare.rules.size() == active.rules.size() &&
         spare.exact.size() == active.exact.size() &&
         spare.names.size() == active.names.size() &&
         spare.unix_paths.size() == active.unix_paths.size();
}

}  // namespace

uint64_t TotalEntries(const policy::CompiledRuleset& s) {
  return s.ports.size() + s.rules.size() + s.exact.size() + s.names.size() +
         s.unix_paths.size();
}

Engine::~Engine() { StopSpares(); }

void Engine::StartSparesLocked() {
  if (!options_.background_spares || spare_started_ || spare_stop_) return;
  spare_poked_ = true;
  try {
    spare_thread_ = std::thread([this] { SpareLoop(); });
    spare_started_ = true;
  } catch (const std::system_error& e) {
    // Changes still keep the sets they replace as spares.
    Log(absl::StrCat("no spare writer (", e.what(),
                     "): the first change of each target writes its set "
                     "whole"));
  }
}

void Engine::PokeSparesLocked() {
  spare_poked_ = true;
  spare_cv_.notify_one();
}

void Engine::StopSpares() {
  {
    Lock lock(mu_);
    spare_stop_ = true;
    spare_cv_.notify_all();
  }
  if (spare_thread_.joinable()) spare_thread_.join();
}

bool Engine::WaitForSpares(absl::Duration timeout) {
  Lock lock(mu_);
  if (!spare_started_) return true;
  return spare_idle_cv_.wait_for(
      lock, absl::ToChronoNanoseconds(timeout),
      [this] { return spare_stop_ || (!spare_busy_ && !spare_poked_); });
}

Engine::EntryWrites Engine::EntriesWritten() const {
  return EntryWrites{change_writes_.load(), spare_writes_.load()};
}

void Engine::SpareLoop() {
  Lock lock(mu_);
  while (true) {
    spare_cv_.wait(lock, [this] { return spare_stop_ || spare_poked_; });
    if (spare_stop_) break;
    spare_poked_ = false;
    spare_busy_ = true;
    std::set<uint32_t> skipped;
    for (int i = 0; i < kMaxStepsPerPass && !spare_stop_; ++i) {
      if (!SpareStepLocked(skipped)) break;
      lock.unlock();
      if (options_.spare_chunk_written) options_.spare_chunk_written();
      std::this_thread::sleep_for(kSparePause);
      lock.lock();
    }
    spare_busy_ = false;
    spare_idle_cv_.notify_all();
  }
  // What is not finished goes: nothing else knows its entries once the
  // engine is gone (a restart would sweep them too).
  while (!spare_sources_.empty()) {
    DropSpareLocked(spare_sources_.begin()->first);
  }
  DropRetiringLocked();
  spare_busy_ = false;
  spare_idle_cv_.notify_all();
}

bool Engine::SpareStepLocked(std::set<uint32_t>& skipped) {
  if (!spare_sources_.empty()) {
    const auto [id, source] = *spare_sources_.begin();
    const TargetState* t = FindById(id);
    auto active = compiled_.find(id);
    const bool current = source != 0 && t != nullptr && t->ruleset == source &&
                         active != compiled_.end() &&
                         active->second.ruleset == source;
    if (current && SpareFitsLocked(id, active->second)) {
      if (!FillSpareLocked(id, active->second)) skipped.insert(id);
      return true;
    }
    // The set it copies was replaced (an apply keeps the target's spare):
    // the part written goes, and a copy of the new set is started after.
    // Or the maps lack room for the whole copy now: it goes for good.
    if (current) skipped.insert(id);
    spare_sources_[id] = 0;
    ShrinkSpareLocked(id);
    return true;
  }
  // A change's end pokes the writer: no spare is started meanwhile.
  if (changes_in_flight_ == 0 && StartSpareLocked(skipped)) return true;
  if (retiring_.empty()) return false;
  ShrinkRetiringLocked();
  // Its room is free once it is gone: a target skipped for room (while
  // the set was held) is tried again.
  if (retiring_.empty()) skipped.clear();
  return true;
}

bool Engine::StartSpareLocked(std::set<uint32_t>& skipped) {
  for (const auto& [name, t] : state_.targets) {
    if (t.orphan || t.ruleset == 0 || creating_.count(t.id) > 0 ||
        spares_.count(t.id) > 0 || skipped.count(t.id) > 0) {
      continue;
    }
    auto active = compiled_.find(t.id);
    if (active == compiled_.end() || active->second.ruleset != t.ruleset) {
      continue;
    }
    skipped.insert(t.id);  // one try a pass
    if (!SpareFitsLocked(t.id, active->second)) continue;
    const policy::CompiledRuleset& from = active->second;
    policy::CompiledRuleset spare;
    spare.ruleset = NextRuleset();
    // Its room in memory taken once (appending chunk by chunk would double
    // it on the way).
    spare.ports.reserve(from.ports.size());
    spare.rules.reserve(from.rules.size());
    spare.exact.reserve(from.exact.size());
    spare.names.reserve(from.names.size());
    spare.unix_paths.reserve(from.unix_paths.size());
    spares_.emplace(t.id, std::move(spare));
    spare_sources_[t.id] = t.ruleset;
    FillSpareLocked(t.id, from);
    return true;
  }
  return false;
}

bool Engine::SpareFitsLocked(uint32_t id,
                             const policy::CompiledRuleset& active) {
  std::vector<TargetEntries> rows = HeldRowsLocked({}, nullptr);
  // The spare counted once, whole, as the change that grows it.
  const std::string own = SpareRow(id);
  rows.erase(
      std::remove_if(rows.begin(), rows.end(),
                     [&](const TargetEntries& r) { return r.name == own; }),
      rows.end());
  rows.push_back({own, {}, CountEntries(active), true});
  return CheckRoom(rows, options_.map_capacity).ok();
}

bool Engine::FillSpareLocked(uint32_t id,
                             const policy::CompiledRuleset& active) {
  auto it = spares_.find(id);
  if (it == spares_.end()) {
    spare_sources_.erase(id);
    return false;
  }
  policy::CompiledRuleset& spare = it->second;
  policy::CompiledRuleset chunk;
  chunk.ruleset = spare.ruleset;
  size_t budget = std::max<size_t>(options_.spare_chunk, 1);
  TakeNext(active.ports, spare.ports.size(), spare.ruleset, budget,
           chunk.ports);
  TakeNext(active.rules, spare.rules.size(), spare.ruleset, budget,
           chunk.rules);
  TakeNext(active.exact, spare.exact.size(), spare.ruleset, budget,
           chunk.exact);
  TakeNext(active.names, spare.names.size(), spare.ruleset, budget,
           chunk.names);
  TakeNext(active.unix_paths, spare.unix_paths.size(), spare.ruleset, budget,
           chunk.unix_paths);
  if (absl::Status st = kernel_.WriteEntries(chunk); !st.ok()) {
    // Partly written, maybe: deleted with the rest of the spare.
    kernel_.DeleteEntries(chunk).IgnoreError();
    const TargetState* t = FindById(id);
    Log(absl::StrCat("target ", t != nullptr ? t->name : absl::StrCat(id),
                     ": cannot write a spare of its rule set (its next "
                     "change writes the set whole): ",
                     st.ToString()));
    DropSpareLocked(id);
    return false;
  }
  spare_writes_ += TotalEntries(chunk);
  Append(spare.ports, chunk.ports);
  Append(spare.rules, chunk.rules);
  Append(spare.exact, chunk.exact);
  Append(spare.names, chunk.names);
  Append(spare.unix_paths, chunk.unix_paths);
  if (Whole(spare, active)) spare_sources_.erase(id);
  return true;
}

absl::StatusOr<size_t> Engine::AdoptSparesLocked(std::set<uint32_t>& keep) {
  size_t adopted = 0;
  for (const auto& [name, t] : state_.targets) {
    if (t.orphan || t.ruleset == 0 || spares_.count(t.id) > 0) continue;
    auto active = compiled_.find(t.id);
    if (active == compiled_.end() || active->second.ruleset != t.ruleset) {
      continue;
    }
    // A change diffs into a spare trusting that the maps hold exactly its
    // entries (engine_rules.cc). The tallies say so as HasEntries says it
    // of the active set a start adopts: equal counts and 64-bit digest
    // sums in every map, wrong by chance once in 2^64. Only root writes
    // the pinned maps, and whoever can could write any rule outright. A
    // copy part written (killed mid-chunk) or part deleted has another
    // count and is swept.
    EGRESS_ASSIGN_OR_RETURN(std::vector<uint32_t> copies,
                            kernel_.CopiesOf(active->second));
    auto unclaimed =
        std::find_if(copies.begin(), copies.end(),
                     [&](uint32_t r) { return !keep.contains(r); });
    if (unclaimed == copies.end()) continue;
    // Held like the spare the writer would make, and only when it would.
    if (!SpareFitsLocked(t.id, active->second)) continue;
    policy::CompiledRuleset spare = active->second;
    spare.ruleset = *unclaimed;
    Rekey(spare.ports, *unclaimed);
    Rekey(spare.rules, *unclaimed);
    Rekey(spare.exact, *unclaimed);
    Rekey(spare.names, *unclaimed);
    Rekey(spare.unix_paths, *unclaimed);
    keep.insert(*unclaimed);
    // Not in spare_sources_: whole.
    spares_.emplace(t.id, std::move(spare));
    ++adopted;
  }
  return adopted;
}

void Engine::RetireSetLocked(uint32_t id, policy::CompiledRuleset set) {
  if (set.ruleset == 0) return;
  if (spare_started_ && !spare_stop_ && spares_.count(id) == 0 &&
      retiring_.count(id) == 0) {
    // Held in the maps' room until deleted (HeldRowsLocked); a change
    // short of room deletes it at once (CheckMapRoomLocked).
    retiring_.emplace(id, std::move(set));
    PokeSparesLocked();
    return;
  }
  DeleteStaleEntries(set);
}

void Engine::ShrinkRetiringLocked() {
  if (retiring_.empty()) return;
  auto it = retiring_.begin();
  policy::CompiledRuleset chunk = TakeChunk(it->second, options_.spare_chunk);
  DeleteStaleEntries(chunk);
  spare_writes_ += TotalEntries(chunk);
  if (TotalEntries(it->second) == 0) retiring_.erase(it);
}

void Engine::DropRetiringLocked() {
  for (const auto& [id, set] : retiring_) {
    DeleteStaleEntries(set);
  }
  retiring_.clear();
}

void Engine::ShrinkSpareLocked(uint32_t id) {
  auto it = spares_.find(id);
  if (it == spares_.end()) {
    spare_sources_.erase(id);
    return;
  }
  policy::CompiledRuleset& spare = it->second;
  policy::CompiledRuleset chunk = TakeChunk(spare, options_.spare_chunk);
  DeleteStaleEntries(chunk);
  spare_writes_ += TotalEntries(chunk);
  if (TotalEntries(spare) == 0) {
    spares_.erase(it);
    spare_sources_.erase(id);
  }
}

}  // namespace egress
