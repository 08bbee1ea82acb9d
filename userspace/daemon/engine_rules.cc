// Rule set switches: a target's new rules are compiled and written beside the
// old ones, the state file is saved, then one 8-byte config update flips the
// hooks from the old set to the new one: never a mix, never nothing. The old
// set stays in the maps as the target's spare when there is room: the next
// switch writes only its difference into the spare and flips to it. Without
// a spare the new set is written whole under a new id and the old set's
// entries are deleted afterwards, from the compiled form kept for it.
#include <algorithm>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"
#include "userspace/policy/compile_changes.h"
#include "userspace/policy/compiled_diff.h"
#include "userspace/policy/rule_json.h"

namespace egress {

struct Engine::Change {
  std::string name;
  uint32_t new_ruleset = 0;
  std::optional<policy::Mode> mode;
  // What the state says of the target once this is done (its rules are the
  // new ones: the change holds them only here; with `appended`, only the
  // rule added to the target's), and which of its rules that takes writing.
  TargetState next_target;
  uint32_t next_ruleset = 0;
  RulesDelta delta;
  policy::CompiledRuleset compiled;
  policy::CompiledRuleset replaced;  // the old set: a spare, or deleted
  // The spare written into (its id is new_ruleset), ruleset 0 if none.
  policy::CompiledRuleset spare;
  // The spare writer's source of it when it was not whole (engine_spares.cc:
  // spare_sources_), 0 otherwise.
  uint32_t spare_source = 0;
  size_t exact_limit = 0;  // for a whole compile (ExactLimitLocked)
  bool compiled_ahead = false;
  bool written = false;
  // next_target.rules holds only the rule appended to the target's
  // (delta.appended_after says after which).
  bool appended = false;
  NoRoom no_room = NoRoom::kRefuse;
  // Switched though not stored (no_room kSwitch, no room).
  bool unsaved = false;
};

uint32_t Engine::NextRuleset() {
  uint32_t r = state_.next_ruleset++;
  if (state_.next_ruleset == 0) state_.next_ruleset = 1;
  return r;
}

absl::Status Engine::WriteConfig(const TargetState& t) {
  // Every change of a target's rules is switched in here: the earliest
  // expiry is looked for again at the next tick (ExpireRules).
  no_expiry_before_ = 0;
  egress_target_config cfg{};
  cfg.ruleset = t.ruleset;
  cfg.mode = policy::KernelMode(t.mode);
  auto it = compiled_.find(t.id);
  uint8_t rule_flags =
      it != compiled_.end() && t.ruleset != 0 ? it->second.flags : 0;
  cfg.flags = rule_flags | policy::LoggingFlags(t.logging, t.mode);
  cfg.dns_ttl_floor = options_.dns_ttl_floor;
  return kernel_.SetTargetConfig(t.id, cfg);
}

Engine::Change Engine::Prepare(TargetState& t, NewRules rules, Staged* staged) {
  Change c;
  c.name = t.name;
  c.exact_limit = ExactLimitLocked();
  if (staged != nullptr) {
    c.new_ruleset = staged->ruleset;
    c.compiled = std::move(staged->compiled);
    c.compiled_ahead = true;
    c.written = staged->written;
    staged->written = false;  // the change owns the entries now
  } else if (auto spare = spares_.find(t.id); spare != spares_.end()) {
    c.spare = std::move(spare->second);
    spares_.erase(spare);
    c.new_ruleset = c.spare.ruleset;
    // A spare the writer had not finished: the diff writes the rest.
    if (auto source = spare_sources_.find(t.id);
        source != spare_sources_.end()) {
      c.spare_source = source->second;
      spare_sources_.erase(source);
    }
  } else {
    c.new_ruleset = NextRuleset();
  }
  // A target being created has no rule stored yet (its state may already
  // hold the rules an apply gave it): all of them are written.
  const bool creating = creating_.count(t.id) > 0;
  // The store may hold other rows than the engine's rules: all are written.
  const bool behind = store_behind_.count(t.name) > 0;
  if (rules.appended && (creating || behind || staged != nullptr)) {
    rules.all = t.rules;
    rules.all.push_back(*std::move(rules.appended));
    rules.appended.reset();
  }
  const size_t kept = t.rules.size();
  if (rules.appended) {
    c.delta = RulesDelta{false, {rules.appended->id}, {}};
    c.delta.appended_after = kept == 0 ? 0 : t.rules.back().id;
    // Lent to the target's list for the recompile, taken back below: the
    // new list is never copied.
    t.rules.push_back(*rules.appended);
  } else {
    c.delta = creating ? RulesDelta{} : DiffRules(t.rules, rules.all);
    if (behind) c.delta.all = true;
    c.delta.written_ahead =
        creating && staged != nullptr && staged->rules_saved_ahead;
  }
  const absl::Span<const policy::Rule> after =
      rules.appended ? absl::MakeConstSpan(t.rules)
                     : absl::MakeConstSpan(rules.all);
  const absl::Span<const policy::Rule> before =
      absl::MakeConstSpan(t.rules).first(kept);
  // A few rules changed: only their port classes are merged again, from the
  // active set's entries (compile_changes.h). Milliseconds under the lock,
  // where the old rules and entries are at hand without copying them.
  if (!c.compiled_ahead && !creating && !c.delta.all && t.ruleset != 0 &&
      c.delta.put.size() + c.delta.removed.size() <=
          policy::kMaxRecompiledRules) {
    if (auto active = compiled_.find(t.id);
        active != compiled_.end() && active->second.ruleset == t.ruleset) {
      if (std::optional<policy::CompiledRuleset> recompiled =
              policy::RecompileChanged(active->second, before, after,
                                       c.new_ruleset, c.exact_limit)) {
        c.compiled = *std::move(recompiled);
        c.compiled_ahead = true;
      }
    }
  }
  if (rules.appended) t.rules.pop_back();
  c.next_ruleset = state_.next_ruleset;
  // Only this target: a change costs its own rules, not every target's. Its
  // settings are copied, its old rules are not (100,000 rules are a lot of
  // small allocations).
  std::vector<policy::Rule> old_rules;
  old_rules.swap(t.rules);
  c.next_target = t;
  t.rules.swap(old_rules);
  if (!rules.appended) {
    c.next_target.rules = std::move(rules.all);
  } else if (c.compiled_ahead) {
    c.next_target.rules.push_back(*std::move(rules.appended));
    c.appended = true;
  } else {
    // Compiled whole (a rule RecompileChanged does not take): every rule.
    c.next_target.rules.reserve(kept + 1);
    c.next_target.rules = t.rules;
    c.next_target.rules.push_back(*std::move(rules.appended));
    c.delta.appended_after.reset();
  }
  c.next_target.ruleset = c.new_ruleset;
  return c;
}

std::string Engine::SpareRow(uint32_t id) {
  return absl::StrCat("(spare of target ", id, ")");
}

std::vector<TargetEntries> Engine::HeldRowsLocked(
    const std::map<std::string, EntryCounts>& next,
    const policy::CompiledRuleset* consuming) const {
  std::vector<TargetEntries> targets;
  for (const auto& [name, t] : state_.targets) {
    TargetEntries e{name, {}, {}, false};
    if (auto c = compiled_.find(t.id); c != compiled_.end() && t.ruleset != 0)
      e.now = CountEntries(c->second);
    auto n = next.find(name);
    e.changing = n != next.end();
    e.next = e.changing ? n->second : e.now;
    targets.push_back(std::move(e));
  }
  for (const auto& [name, counts] : next) {
    if (!state_.targets.count(name))
      targets.push_back({name, {}, counts, true});
  }
  // Spares are held like any set; a spare being written into is held now.
  for (const auto& [id, spare] : spares_) {
    const EntryCounts n = CountEntries(spare);
    targets.push_back({SpareRow(id), n, n, false});
  }
  if (consuming != nullptr && consuming->ruleset != 0) {
    targets.push_back(
        {"(spare being written)", CountEntries(*consuming), {}, false});
  }
  for (const auto& [id, set] : retiring_) {
    const EntryCounts n = CountEntries(set);
    targets.push_back({"(replaced set being deleted)", n, n, false});
  }
  for (const EntryCounts& n : spares_dropping_) {
    targets.push_back({"(spare being deleted)", n, n, false});
  }
  return targets;
}

absl::Status Engine::CheckMapRoomLocked(
    const std::map<std::string, EntryCounts>& next,
    policy::CompiledRuleset* consuming) {
  absl::Status room =
      CheckRoom(HeldRowsLocked(next, consuming), options_.map_capacity);
  if (room.ok()) return room;
  // Replaced sets are dead: they go first, spares (which save the next
  // change its writes) only when that is not enough.
  if (!retiring_.empty()) {
    DropRetiringLocked();
    room = CheckRoom(HeldRowsLocked(next, consuming), options_.map_capacity);
    if (room.ok()) return room;
  }
  if (spares_.empty() && (consuming == nullptr || consuming->ruleset == 0)) {
    return room;
  }
  DropSparesLocked();
  if (consuming != nullptr && consuming->ruleset != 0) {
    kernel_.DeleteEntries(*consuming).IgnoreError();
    *consuming = policy::CompiledRuleset{};
  }
  return CheckRoom(HeldRowsLocked(next, nullptr), options_.map_capacity);
}

absl::Status Engine::CheckMapRoom(
    const std::map<std::string, EntryCounts>& next,
    policy::CompiledRuleset* consuming) {
  Lock lock(mu_);
  return CheckMapRoomLocked(next, consuming);
}

void Engine::KeepOrDeleteSpareLocked(uint32_t id,
                                     policy::CompiledRuleset replaced) {
  if (replaced.ruleset == 0) return;
  DropSpareLocked(id);
  // The spare as a change of nobody's: room for it beside what is held, and
  // afterwards still for a swap copy of the largest set.
  std::vector<TargetEntries> rows = HeldRowsLocked({}, nullptr);
  rows.push_back({"(spare)", {}, CountEntries(replaced), true});
  rows.back().now = {};
  // Held already: count it once, in `next` only.
  if (CheckRoom(rows, options_.map_capacity).ok()) {
    spares_[id] = std::move(replaced);
    return;
  }
  DeleteStaleEntries(replaced);
}

policy::CompiledRuleset Engine::TakeSpareLocked(uint32_t id) {
  spare_sources_.erase(id);
  auto it = spares_.find(id);
  if (it == spares_.end()) return {};
  policy::CompiledRuleset spare = std::move(it->second);
  spares_.erase(it);
  return spare;
}

void Engine::DropSpareLocked(uint32_t id) {
  policy::CompiledRuleset spare = TakeSpareLocked(id);
  if (spare.ruleset != 0) DeleteStaleEntries(spare);
}

void Engine::DeleteStaleEntries(const policy::CompiledRuleset& set) {
  if (absl::Status st = kernel_.DeleteEntries(set); !st.ok()) {
    Log(absl::StrCat("leaving stale entries of ruleset ", set.ruleset, ": ",
                     st.ToString()));
  }
}

size_t Engine::ExactLimitLocked() const {
  uint64_t held = 0;
  for (const auto& [id, set] : compiled_) held += set.exact.size();
  for (const auto& [id, set] : spares_) held += set.exact.size();
  for (const auto& [id, set] : retiring_) held += set.exact.size();
  return held + 3 * uint64_t{EGRESS_MAX_EXACT_PER_SET} <=
                 options_.map_capacity.exact
             ? EGRESS_MAX_EXACT_PER_SET
             : 0;
}

void Engine::DropSparesLocked() {
  while (!spares_.empty()) DropSpareLocked(spares_.begin()->first);
}

absl::StatusOr<bool> Engine::AdoptRules(const std::string& name) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(name));
  if (t->ruleset == 0) return false;
  auto active = kernel_.TargetConfig(t->id);
  if (!active.ok() || active->ruleset != t->ruleset) return false;
  const uint32_t ruleset = t->ruleset;
  std::vector<policy::Rule> rules = t->rules;
  const size_t exact_limit = ExactLimitLocked();
  lock.unlock();
  // Compiling is deterministic: the same rules under the same id (and
  // limit) give the same entries, so finding them all means the set in the
  // maps is this one. The limit it was written under is not stored: the
  // one a compile would take now first, then the other (ExactLimitLocked
  // gives two). A start adopting many targets reaches the bound of
  // exact_rules part-way, and every target after it was written again, each
  // write making the next adoption walk the maps again: 200 targets of
  // 1,000 rules took 14 s, 22 s with their spares still in the maps. A set
  // found under neither (a recompile under another limit) is written again.
  policy::CompiledRuleset compiled;
  bool present = false;
  for (const size_t limit :
       {exact_limit,
        exact_limit == 0 ? size_t{EGRESS_MAX_EXACT_PER_SET} : size_t{0}}) {
    EGRESS_ASSIGN_OR_RETURN(compiled, policy::Compile(ruleset, rules, limit));
    EGRESS_ASSIGN_OR_RETURN(present, kernel_.HasEntries(compiled));
    // A set with no exact entries under a limit is the same under none.
    if (present || (limit != 0 && compiled.exact.empty())) break;
  }
  if (!present) return false;
  lock.lock();
  EGRESS_ASSIGN_OR_RETURN(t, Find(name));
  if (t->ruleset != ruleset) return false;
  compiled_[t->id] = std::move(compiled);
  EGRESS_RETURN_IF_ERROR(WriteConfig(*t));
  return true;
}

absl::Status Engine::Build(Change& c) {
  if (c.mode) c.next_target.mode = *c.mode;
  if (!c.compiled_ahead) {
    EGRESS_ASSIGN_OR_RETURN(
        c.compiled,
        policy::Compile(c.new_ruleset, c.next_target.rules, c.exact_limit));
  }
  if (!c.written) {
    if (absl::Status room =
            CheckMapRoom({{c.name, CountEntries(c.compiled)}}, &c.spare);
        !room.ok()) {
      DropChangeSpare(c);
      return room;
    }
  }
  if (!c.written && c.spare.ruleset != 0) {
    // Into the spare (no lookup reads it): what differs, then the flip.
    const policy::CompiledDiff diff = policy::DiffCompiled(c.spare, c.compiled);
    change_writes_ += TotalEntries(diff.upserts) + TotalEntries(diff.deletes);
    absl::Status st = kernel_.WriteEntries(diff.upserts);
    if (st.ok()) st = kernel_.DeleteEntries(diff.deletes);
    if (!st.ok()) {
      kernel_.DeleteEntries(c.compiled).IgnoreError();
      DropChangeSpare(c);
      return st;
    }
    c.spare = policy::CompiledRuleset{};  // its entries are c.compiled's now
    c.written = true;
  }
  if (!c.written) {
    change_writes_ += TotalEntries(c.compiled);
    if (absl::Status st = kernel_.WriteEntries(c.compiled); !st.ok()) {
      kernel_.DeleteEntries(c.compiled).IgnoreError();
      return st;
    }
    c.written = true;
  }
  StateWrite write{c.next_ruleset, {{c.name, &c.next_target, c.delta}}};
  if (absl::Status st = options_.save(write); !st.ok()) {
    if (c.no_room == NoRoom::kSwitch && absl::IsResourceExhausted(st)) {
      Log(absl::StrCat("target ", c.name,
                       ": its stored rules in force are written to the maps "
                       "again as rule set ",
                       c.new_ruleset,
                       " (not stored: the state directory has no room; the "
                       "next change of its rules stores them whole)"));
      c.unsaved = true;
      return absl::OkStatus();
    }
    Discard(c);
    return st;
  }
  return absl::OkStatus();
}

void Engine::Discard(Change& c) {
  if (c.written) kernel_.DeleteEntries(c.compiled).IgnoreError();
  c.written = false;
  DropChangeSpare(c);
}

void Engine::DropChangeSpare(Change& c) {
  if (c.spare.ruleset == 0) return;
  kernel_.DeleteEntries(c.spare).IgnoreError();
  c.spare = policy::CompiledRuleset{};
}

absl::Status Engine::Commit(Lock& lock, Change& c) {
  auto found = Find(c.name);
  if (!found.ok()) {
    Discard(c);
    return found.status();
  }
  TargetState& t = **found;
  if (c.appended &&
      (t.rules.empty() ? 0 : t.rules.back().id) != *c.delta.appended_after) {
    // Another change came between (changes are meant to come one at a
    // time): the stored rows say otherwise now.
    SaveLocked(lock, {WriteOf(t.name, RulesDelta{})}).IgnoreError();
    Discard(c);
    return absl::AbortedError(
        absl::StrCat("target ", t.name,
                     ": its rules changed during this change; try again"));
  }
  // Moved, not copied: what a failed switch puts back.
  std::vector<policy::Rule> old_rules;
  if (c.appended) {
    t.rules.push_back(std::move(c.next_target.rules.front()));
  } else {
    old_rules = std::move(t.rules);
    t.rules = std::move(c.next_target.rules);
  }
  const uint32_t old_ruleset = t.ruleset;
  const policy::Mode old_mode = t.mode;
  t.ruleset = c.new_ruleset;
  if (c.mode) t.mode = *c.mode;
  policy::CompiledRuleset old = std::move(compiled_[t.id]);
  compiled_[t.id] = std::move(c.compiled);
  // The switch.
  if (absl::Status st = WriteConfig(t); !st.ok()) {
    if (c.appended) {
      t.rules.pop_back();
    } else {
      c.next_target.rules = std::move(t.rules);
      t.rules = std::move(old_rules);
    }
    t.ruleset = old_ruleset;
    t.mode = old_mode;
    c.compiled = std::move(compiled_[t.id]);
    compiled_[t.id] = std::move(old);
    // The store said the new set: undo it.
    SaveLocked(lock, {WriteOf(t.name, RulesDelta{})}).IgnoreError();
    Discard(c);
    return st;
  }
  c.written = false;  // the entries are in use now
  c.replaced = std::move(old);
  // Freed with the change, once the lock is let go.
  c.next_target.rules = std::move(old_rules);
  return absl::OkStatus();
}

absl::Status Engine::ReplaceRules(const std::string& name,
                                  std::vector<policy::Rule> rules,
                                  std::optional<policy::Mode> mode,
                                  Staged* staged) {
  return Replace(name, NewRules{std::move(rules), std::nullopt}, mode, staged);
}

absl::Status Engine::AppendRule(const std::string& name, policy::Rule rule) {
  return Replace(name, NewRules{{}, std::move(rule)}, std::nullopt, nullptr);
}

absl::Status Engine::Replace(const std::string& name, NewRules rules,
                             std::optional<policy::Mode> mode, Staged* staged,
                             NoRoom no_room) {
  Lock lock(mu_);
  // The spare writer starts no spare while this runs, and looks again after.
  ++changes_in_flight_;
  absl::Cleanup in_flight = [&] {
    if (!lock.owns_lock()) lock.lock();
    --changes_in_flight_;
    PokeSparesLocked();
  };
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(name));
  EGRESS_RETURN_IF_ERROR(RefuseOrphan(*t));
  Change c = Prepare(*t, std::move(rules), staged);
  c.mode = mode;
  c.no_room = no_room;
  const uint32_t id = t->id;
  lock.unlock();
  absl::Status built = Build(c);
  lock.lock();
  if (!built.ok()) {
    // A spare the build did not touch (a compile error) is still good.
    if (c.spare.ruleset != 0) {
      if (auto same = Find(name); same.ok() && (*same)->id == id) {
        spares_[id] = std::move(c.spare);
        if (c.spare_source != 0) spare_sources_[id] = c.spare_source;
      } else {
        kernel_.DeleteEntries(c.spare).IgnoreError();
      }
    }
    return built;
  }
  EGRESS_RETURN_IF_ERROR(Commit(lock, c));
  // A stored change of a target behind was written whole (Prepare).
  if (c.unsaved) {
    store_behind_.insert(name);
  } else {
    store_behind_.erase(name);
  }
  if (c.replaced.ruleset != 0 && c.replaced.ruleset != c.new_ruleset) {
    KeepOrDeleteSpareLocked(id, std::move(c.replaced));
  }
  lock.unlock();  // before `c` (the old rules) is freed
  // Rules added only (an `allow`) leave no key behind.
  if (c.delta.all || !c.delta.removed.empty()) DeleteGoneRuleHits(id);
  return absl::OkStatus();
}

void Engine::DeleteGoneRuleHits(uint32_t id) {
  // The walk (the whole map) without the lock; the target's keys are few.
  absl::StatusOr<std::map<uint32_t, uint64_t>> hits = kernel_.RuleHits(id);
  absl::Status st = hits.status();
  if (st.ok()) {
    Lock lock(mu_);
    const TargetState* t = FindById(id);
    // Removed meanwhile (RemoveTarget deleted its keys), or an orphan,
    // whose rules are not known.
    if (t == nullptr || t->orphan) return;
    const RuleIndex& index = IndexLocked(*t);
    std::vector<uint32_t> gone;
    for (const auto& [rule_id, n] : *hits) {
      if (rule_id != 0 && !index.numbers.contains(rule_id)) {
        gone.push_back(rule_id);
      }
    }
    // Under the lock: the target cannot go and its id be taken by a new
    // target (whose rule ids start again at 1) before the deletes.
    st = kernel_.DeleteRuleHits(id, gone);
  }
  if (!st.ok()) {
    Log(absl::StrCat("target id ", id, ": leaving the hit counts of ",
                     "deleted rules in rule_hits: ", st.ToString()));
  }
}

void Engine::DeleteAllRuleHitsLocked(uint32_t id) {
  absl::StatusOr<std::map<uint32_t, uint64_t>> hits = kernel_.RuleHits(id);
  absl::Status st = hits.status();
  if (st.ok()) {
    std::vector<uint32_t> all;
    for (const auto& [rule_id, n] : *hits) all.push_back(rule_id);
    st = kernel_.DeleteRuleHits(id, all);
  }
  if (!st.ok()) {
    Log(absl::StrCat("target id ", id, ": leaving its hit counts in ",
                     "rule_hits: ", st.ToString()));
  }
}

int64_t Engine::NoExpiryBefore() const {
  Lock lock(mu_);
  return no_expiry_before_;
}

int Engine::ExpireRules(int64_t now, std::vector<std::string>* changed) {
  // Per target: the rules that stay and the ones that end now.
  struct Expiry {
    std::string name;
    std::vector<policy::Rule> keep, gone;
  };
  std::vector<Expiry> work;
  {
    Lock lock(mu_);
    // Called every second: until the earliest deadline, or a change of
    // rules, there is nothing to look at (100,000 rules are 20 MB to walk).
    if (now < no_expiry_before_) return 0;
    int64_t next = std::numeric_limits<int64_t>::max();
    for (const auto& [name, t] : state_.targets) {
      bool due = false;
      for (const policy::Rule& r : t.rules) {
        if (r.expires == 0) continue;
        if (r.expires <= now) {
          due = true;
        } else {
          next = std::min(next, r.expires);
        }
      }
      if (!due) continue;
      Expiry e{name, {}, {}};
      for (const policy::Rule& r : t.rules) {
        (r.expires == 0 || r.expires > now ? e.keep : e.gone).push_back(r);
      }
      work.push_back(std::move(e));
    }
    // With work, the next tick looks again (a removal that fails is tried
    // again; one that succeeds switches rules, which forgets the bound).
    no_expiry_before_ = work.empty() ? next : 0;
  }
  int removed = 0;
  for (Expiry& e : work) {
    if (absl::Status st = ReplaceRules(e.name, std::move(e.keep), std::nullopt);
        !st.ok()) {
      Log(absl::StrCat("target ", e.name,
                       ": cannot remove expired rules: ", st.ToString()));
      continue;
    }
    for (const policy::Rule& r : e.gone) {
      Log(absl::StrCat("target ", e.name,
                       ": temporary rule expired: ", policy::FormatRule(r)));
    }
    removed += e.gone.size();
    if (changed != nullptr) changed->push_back(e.name);
  }
  return removed;
}

}  // namespace egress
