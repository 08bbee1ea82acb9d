#include "userspace/daemon/apply_plan.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/identity_index.h"
#include "userspace/policy/names.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

// What a target enforces, as messages name it: two targets never share one.
std::string Scope(policy::TargetSource source, const std::string& cgroup,
                  uint32_t uid, const std::string& value) {
  if (policy::IsWorkloadSource(source)) {
    return absl::StrCat(policy::TargetSourceName(source), " ", value);
  }
  return source == policy::TargetSource::kUser
             ? absl::StrCat("uid ", uid)
             : absl::StrCat("cgroup ", cgroup);
}
std::string Scope(const TargetState& t) {
  return Scope(t.source, t.cgroup, t.uid, t.source_value);
}
std::string Scope(const ResolvedPolicy& p) {
  return Scope(p.spec.source, p.cgroup, p.uid, p.spec.source_value);
}

// Everything that could stop the switch is checked here, so a request is
// applied whole or not at all.
absl::Status CheckConflicts(const DaemonState& state,
                            const std::vector<ResolvedPolicy>& policies,
                            size_t i) {
  const ResolvedPolicy& p = policies[i];
  const std::string& name = p.spec.name;
  if (absl::Status st = policy::CheckName(name, "target name"); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy name '", name, "' cannot name a target: ", st.message()));
  }
  const std::string scope = Scope(p);
  for (const auto& [n, t] : state.targets) {
    if (Scope(t) == scope && n != name) {
      return absl::AlreadyExistsError(absl::StrCat(
          "policy ", name, ": ", scope, " is already target '", n, "'"));
    }
  }
  auto existing = state.targets.find(name);
  if (existing != state.targets.end() && Scope(existing->second) != scope) {
    return absl::AlreadyExistsError(
        absl::StrCat("target ", name, " exists for ", Scope(existing->second),
                     "; remove it before applying it to ", scope));
  }
  for (size_t j = 0; j < i; ++j) {
    if (Scope(policies[j]) == scope) {
      return absl::InvalidArgumentError(
          absl::StrCat("policies ", policies[j].spec.name, " and ", name,
                       " both target ", scope));
    }
  }
  return absl::OkStatus();
}

// The rules of one policy listed more than once (the same match and
// action, RuleIdentity), each with how often: a rule is in force once
// however often it is listed, as `egressctl allow` skips an existing rule.
// Kept twice, `delete` of one copy would leave the other in force.
class Repeats {
 public:
  // Another listing of the rule with identity `key`, whose first listing is
  // `first`.
  void Count(const std::string& key, const policy::Rule& first) {
    auto [it, inserted] = at_.try_emplace(key, list_.size());
    if (inserted) list_.emplace_back(policy::FormatRule(first), 1);
    ++list_[it->second].second;
  }
  // "policy web (web.yaml): ALLOW 443 to 10.9.9.9 is listed 2 times; ...",
  // or "" when nothing repeats.
  std::string Note(const ResolvedPolicy& p) const {
    if (list_.empty()) return "";
    constexpr size_t kShown = 5;
    std::string out = absl::StrCat(
        "note: policy ", p.spec.name,
        p.spec.file.empty() ? "" : absl::StrCat(" (", p.spec.file, ")"), ": ");
    for (size_t i = 0; i < list_.size() && i < kShown; ++i) {
      absl::StrAppend(&out, i == 0 ? "" : "; ", list_[i].first, " is listed ",
                      list_[i].second, " times");
    }
    if (list_.size() > kShown) {
      absl::StrAppend(&out, "; and ", list_.size() - kShown, " more rules");
    }
    absl::StrAppend(&out,
                    ". Each is kept once (the first listing), as egressctl "
                    "allow skips an existing rule");
    return out;
  }

 private:
  absl::flat_hash_map<std::string, size_t> at_;  // index in list_
  std::vector<std::pair<std::string, size_t>> list_;
};

TargetState Planned(const ResolvedPolicy& p) {
  TargetState t;
  t.name = p.spec.name;
  t.cgroup = p.cgroup;
  t.uid = p.uid;
  t.source = p.spec.source;
  t.source_value = p.spec.source_value;
  t.mode = p.spec.mode;
  t.logging = p.spec.logging;
  t.ephemeral = p.spec.ephemeral;
  t.annotations = p.spec.annotations;
  return t;
}

// A new target, without its rules (PlanNewTargets adds them).
TargetPlan PlanCreate(const ResolvedPolicy& p, control::TargetChange& change) {
  TargetPlan plan;
  plan.create = true;
  plan.rules_changed = true;
  plan.rules_differ = true;
  plan.config_changed = true;
  plan.target = Planned(p);
  change.action = "create";
  change.mode = p.spec.mode;
  change.logging = p.spec.logging;
  return plan;
}

// A new target's rules (taken from `p`), numbered from 1, each once.
void AddNewRules(ResolvedPolicy& p, TargetPlan& plan,
                 control::TargetChange& change,
                 std::vector<std::string>& notes) {
  std::vector<policy::Rule>& rules = plan.target.rules;
  rules = std::move(p.spec.rules);
  p.spec.rules.clear();
  absl::flat_hash_map<std::string, size_t> kept_at;
  kept_at.reserve(rules.size());
  Repeats repeats;
  size_t kept = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string key = policy::RuleIdentity(rules[i]);
    auto [it, inserted] = kept_at.try_emplace(std::move(key), kept);
    if (!inserted) {
      repeats.Count(it->first, rules[it->second]);
      continue;
    }
    if (kept != i) rules[kept] = std::move(rules[i]);
    ++kept;
  }
  rules.resize(kept);
  change.added.reserve(rules.size());
  for (policy::Rule& r : rules) {
    r.id = plan.target.next_rule_id++;
    change.added.push_back(policy::FormatRule(r));
  }
  if (std::string note = repeats.Note(p); !note.empty()) {
    notes.push_back(std::move(note));
  }
}

// An existing target: unchanged rules keep their ids (and so their
// counters); a rule listed twice is kept once.
TargetPlan PlanUpdate(ResolvedPolicy& p, const TargetState& current,
                      int64_t now, control::TargetChange& change,
                      std::vector<std::string>& notes) {
  TargetPlan plan;
  plan.target = Planned(p);
  plan.target.id = current.id;
  plan.target.ruleset = current.ruleset;
  plan.target.next_rule_id = current.next_rule_id;
  plan.target.ephemeral = current.ephemeral;
  change.action = "update";
  if (current.mode != p.spec.mode) {
    change.mode = p.spec.mode;
    change.mode_from = current.mode;
  }
  if (current.logging != p.spec.logging) {
    change.logging = p.spec.logging;
    change.logging_from = current.logging;
  }
  // Each identity is hashed once (a 100,000-rule re-apply built the old
  // rules' twice), into indexes sized up front that keep no identity
  // strings (identity_index.h): this plan runs under the engine's lock.
  const std::vector<policy::Rule>& old_rules = current.rules;
  std::vector<policy::Rule>& new_rules = plan.target.rules;
  policy::IdentityHasher hash;
  std::vector<uint64_t> old_hashes;
  old_hashes.reserve(old_rules.size());
  policy::IdentityIndex old_index(old_rules.size());
  // Old rules no rule before them shares a hash with: the first of their
  // identity, which old_index.Find gives without being asked.
  std::vector<bool> old_first(old_rules.size());
  for (size_t i = 0; i < old_rules.size(); ++i) {
    old_hashes.push_back(hash(old_rules[i]));
    old_first[i] = old_index.Add(old_hashes.back(), static_cast<uint32_t>(i));
  }
  // Old rules a new rule was found as: the file holds their identity.
  std::vector<bool> kept_old(old_rules.size());
  auto old_at = [&](uint32_t i) -> const policy::Rule& { return old_rules[i]; };
  const size_t count = p.spec.rules.size();
  // Index in new_rules, of the policy's rules (not the temporary ones).
  policy::IdentityIndex new_index(count);
  auto new_at = [&](uint32_t i) -> const policy::Rule& { return new_rules[i]; };
  absl::flat_hash_set<uint32_t> used;
  used.reserve(std::min(count, old_rules.size()));
  // Room for the `allow`s that follow: the list is the target's once
  // switched, and an allow appends to it under the engine's lock (a full
  // list of 100,000 rules moved to a larger one was a third of the first
  // allow after a replacing apply). Pages never touched cost no memory.
  const size_t room = count + count / 16 + 16;
  // The policy's own list, when it has that room (a decoded request's
  // has: rule_json_tree.h), is taken whole and its rules kept in place:
  // a new list of 100,000 rules was 26 MB of pages first touched here,
  // under the engine's lock. Its rules move down over the repeats left out.
  const bool take_list = p.spec.rules.capacity() >= room;
  if (take_list) {
    new_rules = std::move(p.spec.rules);
    p.spec.rules.clear();
  } else {
    new_rules.reserve(room);
  }
  std::vector<policy::Rule>& listed_rules =
      take_list ? new_rules : p.spec.rules;
  size_t kept = 0;  // the rules of new_rules so far
  Repeats repeats;
  for (size_t at = 0; at < count; ++at) {
    // Not moved yet: in a taken list, kept <= at.
    policy::Rule& r = listed_rules[at];
    // A re-applied file has most rules where they were: the old rule's
    // identity hash is reused when every field it is made of is the same.
    const bool in_place =
        at < old_rules.size() && policy::SameIdentityFields(r, old_rules[at]);
    const uint64_t h = in_place ? old_hashes[at] : hash(r);
    if (std::optional<uint32_t> listed =
            new_index.FindOrAdd(h, r, new_at, static_cast<uint32_t>(kept))) {
      repeats.Count(policy::RuleIdentity(r), new_rules[*listed]);
      continue;
    }
    uint32_t id = 0;
    const std::optional<uint32_t> found = in_place && old_first[at]
                                              ? std::optional<uint32_t>(at)
                                              : old_index.Find(h, r, old_at);
    if (found) kept_old[*found] = true;
    if (found && used.insert(old_rules[*found].id).second) {
      const policy::Rule& old = old_rules[*found];
      id = old.id;
      // The same rule under another comment, name or port word: it keeps
      // its id, but `list` shows other text from now on, so the diff says so.
      if (old.comment != r.comment || old.name != r.name ||
          old.spec != r.spec) {
        change.changed.push_back(
            {policy::FormatRule(old), policy::FormatRule(r)});
      }
    } else {
      id = plan.target.next_rule_id++;
    }
    if (!found) {
      // Room for every rule left at the first added (a replacement adds
      // them all; the list grown by doubling moved 100,000 lines 17 times).
      if (change.added.empty()) {
        change.added.reserve(count - at);
      }
      change.added.push_back(policy::FormatRule(r));
    }
    // Moved, not copied (100,000 rules' allocations under the engine's
    // lock): nothing reads the policy's rule after this.
    if (!take_list) {
      new_rules.push_back(std::move(r));
    } else if (kept != at) {
      new_rules[kept] = std::move(r);
    }
    new_rules[kept++].id = id;
  }
  if (take_list) new_rules.resize(kept);
  // Temporary rules (--for) the file does not hold live on until their end:
  // a file cannot express them, and applying one must not cut an operator's
  // exception short.
  for (size_t i = 0; i < old_rules.size(); ++i) {
    const policy::Rule& o = old_rules[i];
    if (kept_old[i] || new_index.Find(old_hashes[i], o, new_at)) {
      // A second copy of a rule the file keeps (a target applied before
      // repeats were merged): it goes, and `list` loses its number.
      if (!used.contains(o.id)) change.removed.push_back(policy::FormatRule(o));
      continue;
    }
    if (o.expires > now) {
      change.kept_temporary.push_back(policy::FormatRule(o));
      if (!used.contains(o.id)) new_rules.push_back(o);
    } else {
      if (change.removed.empty()) change.removed.reserve(old_rules.size() - i);
      change.removed.push_back(policy::FormatRule(o));
    }
  }
  if (std::string note = repeats.Note(p); !note.empty()) {
    notes.push_back(std::move(note));
  }
  // The same rules in the same mode (a reload at start, a re-apply):
  // nothing to rewrite in the kernel.
  plan.rules_differ = plan.target.rules != current.rules;
  plan.rules_changed = plan.rules_differ || current.mode != p.spec.mode;
  plan.config_changed =
      current.mode != p.spec.mode || current.logging != p.spec.logging;
  plan.annotations_changed = current.annotations != p.spec.annotations;
  return plan;
}

}  // namespace

absl::Status InPolicyFile(const control::TargetSpec& spec,
                          const absl::Status& st, bool about_target) {
  if (st.ok() || spec.file.empty()) return st;
  const std::string place =
      about_target && !spec.target_at.empty()
          ? absl::StrCat(spec.file, ":", spec.target_at, ": spec.target")
          : spec.file;
  return absl::Status(st.code(), absl::StrCat(place, ": ", st.message()));
}

absl::StatusOr<ApplyPlan> PlanApply(const DaemonState& state,
                                    std::vector<ResolvedPolicy> policies,
                                    int64_t now) {
  EGRESS_ASSIGN_OR_RETURN(ApplyPlan plan,
                          PlanAgainstState(state, policies, now));
  PlanNewTargets(policies, plan);
  return plan;
}

void PlanNewTargets(std::vector<ResolvedPolicy>& policies, ApplyPlan& plan) {
  for (size_t i = 0; i < policies.size() && i < plan.targets.size(); ++i) {
    if (plan.targets[i].create) {
      AddNewRules(policies[i], plan.targets[i], plan.changes[i], plan.notes);
    }
  }
}

absl::StatusOr<ApplyPlan> PlanAgainstState(
    const DaemonState& state, std::vector<ResolvedPolicy>& policies,
    int64_t now) {
  ApplyPlan out;
  for (size_t i = 0; i < policies.size(); ++i) {
    EGRESS_RETURN_IF_ERROR(InPolicyFile(
        policies[i].spec, CheckConflicts(state, policies, i), true));
  }
  for (ResolvedPolicy& p : policies) {
    control::TargetChange change;
    change.target = p.spec.name;
    change.cgroup = p.cgroup;
    if (p.spec.source == policy::TargetSource::kUser) {
      change.user = policy::UserText(p.spec.source_value, p.uid);
    }
    if (policy::IsWorkloadSource(p.spec.source)) change.workload = Scope(p);
    auto it = state.targets.find(p.spec.name);
    out.targets.push_back(
        it == state.targets.end()
            ? PlanCreate(p, change)
            : PlanUpdate(p, it->second, now, change, out.notes));
    out.changes.push_back(std::move(change));
  }
  return out;
}

}  // namespace egress
