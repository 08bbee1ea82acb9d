// `apply`: many policies at once. Phases: resolve cgroups, plan (the diff),
// compile every new rule set (an invalid one stops here, nothing changed),
// write every new set beside the enforced ones (a kernel refusal stops here:
// what was written is deleted, nothing changed), switch every updated target
// and save the state once (a failure switches back), then create new
// targets. Only a failure while creating a target can leave an apply part-way
// done, and the answer says so.
//
// What is dead once switched is deleted off the answer's path: the sets the
// switch replaced go to the spare writer (RetireSetLocked), and a stale
// spare dropped for exact_rules' room is deleted while the new sets
// compile.
//
// The state rows of new and replaced rules (100,000 rows were a third of a
// large apply's time, under the engine lock for an update) are written on a
// thread of their own while the rules are compiled and written to the maps:
// see Apply.
#include <functional>
#include <future>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/apply_plan.h"
#include "userspace/daemon/engine.h"

namespace egress {
namespace {

absl::Status InPolicy(const std::string& name, const absl::Status& st) {
  if (st.ok()) return st;
  return absl::Status(st.code(),
                      absl::StrCat("policy ", name, ": ", st.message()));
}

}  // namespace

absl::StatusOr<std::vector<ResolvedPolicy>> Engine::Resolve(
    std::vector<control::TargetSpec> policies) {
  std::vector<ResolvedPolicy> resolved;
  resolved.reserve(policies.size());
  for (control::TargetSpec& spec : policies) {
    if (spec.source == policy::TargetSource::kUser) {
      auto uid = ResolveUser(spec.source_value);
      EGRESS_RETURN_IF_ERROR(
          InPolicyFile(spec, InPolicy(spec.name, uid.status()), true));
      resolved.push_back({std::move(spec), "", *uid});
      continue;
    }
    if (spec.source != policy::TargetSource::kCgroup &&
        spec.source != policy::TargetSource::kUnit &&
        spec.source != policy::TargetSource::kPattern &&
        !policy::IsWorkloadSource(spec.source)) {
      return InPolicyFile(spec,
                          absl::InvalidArgumentError(absl::StrCat(
                              "policy ", spec.name,
                              ": a policy names a cgroup, a unit, a "
                              "cgroup pattern, a user, containers or pods")),
                          true);
    }
    auto cgroup = ResolveCgroup(spec.source, spec.source_value);
    EGRESS_RETURN_IF_ERROR(
        InPolicyFile(spec, InPolicy(spec.name, cgroup.status()), true));
    resolved.push_back({std::move(spec), *std::move(cgroup)});
  }
  return resolved;
}

absl::Status Engine::StageAll(const std::vector<TargetPlan>& plans,
                              const std::vector<ResolvedPolicy>& policies,
                              std::vector<Staged>& staged,
                              const std::function<void()>& before_room) {
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].rules_changed) continue;
    auto compiled = policy::Compile(staged[i].ruleset, plans[i].target.rules,
                                    staged[i].exact_limit);
    absl::Status st = InPolicy(plans[i].target.name, compiled.status());
    // A rule set the kernel's maps cannot hold is the file's to change.
    if (i < policies.size()) st = InPolicyFile(policies[i].spec, st, false);
    EGRESS_RETURN_IF_ERROR(st);
    staged[i].compiled = *std::move(compiled);
  }
  before_room();
  std::map<std::string, EntryCounts> next;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].rules_changed) {
      next[plans[i].target.name] = CountEntries(staged[i].compiled);
    }
  }
  EGRESS_RETURN_IF_ERROR(CheckMapRoom(next));
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].rules_changed) continue;
    change_writes_ += TotalEntries(staged[i].compiled);
    absl::Status st = kernel_.WriteEntries(staged[i].compiled);
    staged[i].written = true;  // partly, maybe: deleted below on failure
    EGRESS_RETURN_IF_ERROR(InPolicy(plans[i].target.name, st));
  }
  return absl::OkStatus();
}

absl::Status Engine::SwitchUpdates(
    Lock& lock, std::vector<TargetPlan>& plans, std::vector<Staged>& staged,
    std::vector<std::pair<uint32_t, policy::CompiledRuleset>>& replaced) {
  // Each switched target's state as it was, by plan index. Targets and
  // sets are moved, never copied (under the lock, a copy of a 100,000-rule
  // target and of its entries was a tenth of a replacing apply): the plan's
  // target becomes the state's, and the new set is swapped with the old
  // one, which staged[i] holds until the switch is saved.
  std::vector<std::pair<size_t, TargetState>> before;
  absl::Status failure;
  for (size_t i = 0; i < plans.size() && failure.ok(); ++i) {
    TargetPlan& plan = plans[i];
    if (plan.create || !(plan.rules_changed || plan.config_changed ||
                         plan.annotations_changed)) {
      continue;
    }
    TargetState& t = state_.targets.at(plan.target.name);
    plan.target.ruleset = plan.rules_changed ? staged[i].ruleset : t.ruleset;
    before.emplace_back(i, std::move(t));
    t = std::move(plan.target);  // plan.target keeps its id (Apply reads it)
    if (plan.rules_changed) std::swap(compiled_[t.id], staged[i].compiled);
    if (plan.rules_changed || plan.config_changed) {
      failure = InPolicy(t.name, WriteConfig(t));
    }
  }
  if (failure.ok()) {
    // An applied policy's rules are written whole (its order is the file's).
    std::vector<TargetWrite> writes;
    for (const auto& [i, old] : before) {
      const TargetState& now = state_.targets.at(old.name);
      std::optional<RulesDelta> rules;
      if (now.rules != old.rules) {
        rules.emplace();
        rules->written_ahead = staged[i].rules_saved_ahead;
      }
      writes.push_back(WriteOf(old.name, std::move(rules)));
    }
    failure = SaveLocked(lock, std::move(writes));
  }
  if (!failure.ok()) {
    // Back to what was enforced, target by target; the new sets go back to
    // staged, whose entries the caller deletes.
    for (auto& [i, old] : before) {
      if (plans[i].rules_changed) {
        std::swap(compiled_[old.id], staged[i].compiled);
      }
      TargetState& t = state_.targets[old.name];
      t = std::move(old);
      WriteConfig(t).IgnoreError();
    }
    return failure;
  }
  for (auto& [i, old] : before) {
    if (!plans[i].rules_changed) continue;
    staged[i].written = false;
    if (old.ruleset != state_.targets.at(old.name).ruleset) {
      replaced.emplace_back(old.id, std::move(staged[i].compiled));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<control::ApplyResponse> Engine::Apply(
    control::ApplyRequest request, int64_t now) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<ResolvedPolicy> resolved,
                          Resolve(std::move(request.policies)));
  Lock lock(mu_);
  // The spare writer starts no spare while this runs, and looks again after.
  ++changes_in_flight_;
  absl::Cleanup in_flight = [&] {
    if (!lock.owns_lock()) lock.lock();
    --changes_in_flight_;
    PokeSparesLocked();
  };
  EGRESS_ASSIGN_OR_RETURN(ApplyPlan plan,
                          PlanAgainstState(state_, resolved, now));
  lock.unlock();
  // New targets' rules need no state: moved and listed without the lock,
  // which reads (status) wait for. For a fleet's first apply (200 policies
  // of 1,000 rules) that is the whole plan.
  PlanNewTargets(resolved, plan);
  control::ApplyResponse out;
  out.dry_run = request.dry_run;
  out.changes = std::move(plan.changes);
  out.note = absl::StrJoin(plan.notes, "\n");
  if (request.dry_run) return out;
  std::vector<Staged> staged(plan.targets.size());
  lock.lock();
  size_t exact_limit = ExactLimitLocked();
  // Stale spares taken out of spares_ below: deleted while the new sets
  // compile (100,000 entries and a compile take about as long), on a
  // thread of their own, joined before the room check and the writes.
  std::vector<policy::CompiledRuleset> dropping;
  if (exact_limit == 0) {
    // The spare of a target whose rules change is a copy of the set being
    // replaced: stale after the switch. When its entries are what keeps
    // the new sets out of exact_rules, it goes now, or a replaced 100,000-
    // rule set would be written into the trie (twice the CPU of a first
    // apply) and the next `allow` would write the whole difference into
    // the stale spare. The spare writer copies the new set after the
    // switch. Until deleted, its entries count for room (spares_dropping_)
    // but not for the exact limit: they are gone before anything of this
    // apply is written.
    for (const TargetPlan& p : plan.targets) {
      if (p.create || !p.rules_changed) continue;
      policy::CompiledRuleset spare = TakeSpareLocked(p.target.id);
      if (spare.ruleset == 0) continue;
      spares_dropping_.push_back(CountEntries(spare));
      dropping.push_back(std::move(spare));
    }
    // Sets an earlier apply replaced, not yet deleted: dead, and in the
    // same way.
    for (auto& [id, set] : retiring_) {
      spares_dropping_.push_back(CountEntries(set));
      dropping.push_back(std::move(set));
    }
    retiring_.clear();
    exact_limit = ExactLimitLocked();
  }
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    if (!plan.targets[i].rules_changed) continue;
    staged[i].ruleset = NextRuleset();
    staged[i].exact_limit = exact_limit;
  }
  lock.unlock();
  auto delete_dropping = [this, &dropping] {
    for (const policy::CompiledRuleset& set : dropping) {
      DeleteStaleEntries(set);
    }
  };
  std::future<void> dropped;
  if (!dropping.empty()) {
    try {
      dropped = std::async(std::launch::async, delete_dropping);
    } catch (const std::system_error&) {
      delete_dropping();  // no thread: before the compile, as it was
    }
  }
  // Joined before the room check, and on every return (a compile error).
  auto join_dropped = [&] {
    if (dropped.valid()) dropped.get();
    if (dropping.empty()) return;
    dropping.clear();
    const bool held = lock.owns_lock();
    if (!held) lock.lock();
    spares_dropping_.clear();
    if (!held) lock.unlock();
  };
  absl::Cleanup join_on_return = join_dropped;
  auto drop_staged = [&] {
    for (Staged& s : staged) {
      if (s.written) kernel_.DeleteEntries(s.compiled).IgnoreError();
    }
  };
  // The rule rows of new targets and of updated targets whose rules
  // change are written beside StageAll (the compile and the map writes),
  // which they do not depend on: the apply takes about as long as the
  // longer of the two, not both. What keeps every guarantee:
  //  - The rows are no target's until the save that adds the target's row
  //    (CreateTarget) or switches it (SwitchUpdates), at the same point as
  //    without this: a new target's rows belong to no stored target, an
  //    updated target's go to a generation of their own (StateStore) while
  //    its rows stay those of the rules it enforces. A start never loads
  //    them, so a crash at any point comes back with the state as it was
  //    saved before, and a target in the state still has all its rules
  //    (never one that enforces less). The rows of the generation a switch
  //    left are deleted later by the store (a crash first: by the start).
  //  - The thread is joined before anything else saves (SwitchUpdates,
  //    CreateTarget) and before any return: the store's connection is used
  //    by one thread at a time, and the answer still waits for the save
  //    that makes the target's row durable.
  //  - A failure of the rows write is no failure: each target's save writes
  //    its rows then, as without this, and fails (or not) as it would.
  //  - Any failure before the switch deletes the rows ahead of every target
  //    (drop_ahead), a failure after it those of every target not added:
  //    the state saved is as before, with the same error, and an updated
  //    target keeps its rows. A target that fails in CreateTarget had its
  //    own removal saved there already (as without this); deleting again is
  //    harmless.
  // A target whose mode alone changes writes no rows: its save writes its
  // row.
  std::vector<const TargetState*> rewritten;
  for (const TargetPlan& p : plan.targets) {
    if (p.rules_differ) rewritten.push_back(&p.target);
  }
  std::future<absl::Status> rows_ahead;
  if (!rewritten.empty() && options_.save_rules_ahead &&
      options_.drop_rules_ahead) {
    try {
      rows_ahead = std::async(std::launch::async, [this, &rewritten] {
        return options_.save_rules_ahead(rewritten);
      });
    } catch (const std::system_error&) {
      // No thread: the rows are written with their targets.
    }
  }
  absl::Status stage = StageAll(plan.targets, resolved, staged, join_dropped);
  // The names of the targets whose rows were written ahead (by plan index;
  // "" for the others): taken before CreateTarget moves the plans.
  std::vector<std::string> ahead(plan.targets.size());
  if (rows_ahead.valid()) {
    if (absl::Status st = rows_ahead.get(); st.ok()) {
      for (size_t i = 0; i < plan.targets.size(); ++i) {
        if (!plan.targets[i].rules_differ) continue;
        ahead[i] = plan.targets[i].target.name;
        staged[i].rules_saved_ahead = true;
      }
    } else {
      Log(absl::StrCat("writing the rules of targets ahead: ", st.ToString(),
                       "; written with each target"));
    }
  }
  // The rows ahead of the targets from plan index `from` on: none is added
  // or switched.
  auto drop_ahead = [&](size_t from) {
    std::vector<std::string> names;
    for (size_t i = from; i < ahead.size(); ++i) {
      if (!ahead[i].empty()) names.push_back(ahead[i]);
    }
    if (names.empty()) return;
    if (absl::Status st = options_.drop_rules_ahead(names); !st.ok()) {
      // Rows of no target: never loaded, replaced when one of these names
      // is added.
      Log(absl::StrCat("leaving state rows of targets not added: ",
                       st.ToString()));
    }
  };
  if (!stage.ok()) {
    drop_staged();
    drop_ahead(0);
    return stage;
  }
  lock.lock();
  std::vector<std::pair<uint32_t, policy::CompiledRuleset>> replaced;
  if (absl::Status st = SwitchUpdates(lock, plan.targets, staged, replaced);
      !st.ok()) {
    lock.unlock();
    drop_staged();
    drop_ahead(0);
    return st;
  }
  // The updates' rows ahead are their targets' now: never dropped.
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    if (!plan.targets[i].create) ahead[i].clear();
  }
  // The replaced sets are dead (no target's ruleset): deleting 100,000
  // entries was a tenth of a replacing apply's answer, and nothing in the
  // answer depends on it.
  for (auto& [id, old] : replaced) RetireSetLocked(id, std::move(old));
  lock.unlock();
  for (const TargetPlan& p : plan.targets) {
    if (!p.create && p.rules_changed) DeleteGoneRuleHits(p.target.id);
  }
  size_t done = plan.targets.size();
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    if (plan.targets[i].create) --done;
  }
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    TargetPlan& p = plan.targets[i];
    if (!p.create) continue;
    lock.lock();
    const std::string name = p.target.name;
    // The plan's target is not needed again: its rules are moved, not
    // copied (a policy of 100,000 rules is a lot of small allocations). The
    // target goes in without them, as `target add` puts it: CreateTarget
    // switches them in with its first rule set.
    std::vector<policy::Rule> rules = std::move(p.target.rules);
    p.target.rules.clear();
    absl::Status st =
        CreateTarget(lock, std::move(p.target), std::move(rules), &staged[i]);
    if (lock.owns_lock()) lock.unlock();
    if (!st.ok()) {
      drop_staged();
      drop_ahead(i);
      return absl::Status(
          st.code(),
          absl::StrCat("partially applied: ", done, " of ", plan.targets.size(),
                       " policies switched, then ", name,
                       " failed: ", st.message()));
    }
    ++done;
  }
  return out;
}

}  // namespace egress
