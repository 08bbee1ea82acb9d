// Rule set switches: a target's new rules are compiled and written beside the
// old ones, the state file is saved, then one 8-byte config update flips the
// hooks from the old set to the new one: never a mix, never nothing. The old
// set's entries go afterwards, from the compiled form kept for it.
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"
#include "userspace/policy/rule_json.h"

namespace egress {

struct Engine::Change {
  std::string name;
  uint32_t new_ruleset = 0;
  std::vector<policy::Rule> rules;
  std::optional<policy::Mode> mode;
  // What the state says of the target once this is done, and which of its
  // rules that takes writing.
  TargetState next_target;
  uint32_t next_ruleset = 0;
  RulesDelta delta;
  policy::CompiledRuleset compiled;
  policy::CompiledRuleset replaced;  // the old set, deleted after Commit
  bool compiled_ahead = false;
  bool written = false;
};

uint32_t Engine::NextRuleset() {
  uint32_t r = state_.next_ruleset++;
  if (state_.next_ruleset == 0) state_.next_ruleset = 1;
  return r;
}

absl::Status Engine::WriteConfig(const TargetState& t) const {
  egress_target_config cfg{};
  cfg.ruleset = t.ruleset;
  cfg.mode = policy::KernelMode(t.mode);
  auto it = compiled_.find(t.id);
  uint8_t rule_flags =
      it != compiled_.end() && t.ruleset != 0 ? it->second.flags : 0;
  cfg.flags = rule_flags | policy::LoggingFlags(t.logging);
  cfg.dns_ttl_floor = options_.dns_ttl_floor;
  return kernel_.SetTargetConfig(t.id, cfg);
}

Engine::Change Engine::Prepare(const TargetState& t,
                               std::vector<policy::Rule> rules,
                               Staged* staged) {
  Change c;
  c.name = t.name;
  if (staged != nullptr) {
    c.new_ruleset = staged->ruleset;
    c.compiled = std::move(staged->compiled);
    c.compiled_ahead = true;
    c.written = staged->written;
    staged->written = false;  // the change owns the entries now
  } else {
    c.new_ruleset = NextRuleset();
  }
  c.rules = std::move(rules);
  // A target being created has no rule stored yet (its state may already
  // hold the rules an apply gave it): all of them are written.
  c.delta = creating_.count(t.id) ? RulesDelta{} : DiffRules(t.rules, c.rules);
  c.next_ruleset = state_.next_ruleset;
  // Only this target: a change costs its own rules, not every target's.
  c.next_target = t;
  c.next_target.rules = c.rules;
  c.next_target.ruleset = c.new_ruleset;
  return c;
}

absl::Status Engine::CheckMapRoomLocked(
    const std::map<std::string, EntryCounts>& next) const {
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
  return CheckRoom(targets, options_.map_capacity);
}

absl::Status Engine::CheckMapRoom(
    const std::map<std::string, EntryCounts>& next) const {
  Lock lock(mu_);
  return CheckMapRoomLocked(next);
}

absl::StatusOr<bool> Engine::AdoptRules(const std::string& name) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(name));
  if (t->ruleset == 0) return false;
  auto active = kernel_.TargetConfig(t->id);
  if (!active.ok() || active->ruleset != t->ruleset) return false;
  const uint32_t ruleset = t->ruleset;
  std::vector<policy::Rule> rules = t->rules;
  lock.unlock();
  // Compiling is deterministic: the same rules under the same id give the
  // same entries, so finding them all means the set in the maps is this one.
  EGRESS_ASSIGN_OR_RETURN(policy::CompiledRuleset compiled,
                          policy::Compile(ruleset, rules));
  EGRESS_ASSIGN_OR_RETURN(bool present, kernel_.HasEntries(compiled));
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
    EGRESS_ASSIGN_OR_RETURN(c.compiled,
                            policy::Compile(c.new_ruleset, c.rules));
  }
  if (!c.written) {
    EGRESS_RETURN_IF_ERROR(CheckMapRoom({{c.name, CountEntries(c.compiled)}}));
  }
  if (!c.written) {
    if (absl::Status st = kernel_.WriteEntries(c.compiled); !st.ok()) {
      kernel_.DeleteEntries(c.compiled).IgnoreError();
      return st;
    }
    c.written = true;
  }
  StateWrite write{c.next_ruleset, {{c.name, &c.next_target, c.delta}}};
  if (absl::Status st = options_.save(write); !st.ok()) {
    Discard(c);
    return st;
  }
  return absl::OkStatus();
}

void Engine::Discard(Change& c) {
  if (c.written) kernel_.DeleteEntries(c.compiled).IgnoreError();
  c.written = false;
}

absl::Status Engine::Commit(Lock& lock, Change& c) {
  auto found = Find(c.name);
  if (!found.ok()) {
    Discard(c);
    return found.status();
  }
  TargetState& t = **found;
  TargetState before = t;
  t.rules = c.rules;
  t.ruleset = c.new_ruleset;
  if (c.mode) t.mode = *c.mode;
  policy::CompiledRuleset old = std::move(compiled_[t.id]);
  compiled_[t.id] = c.compiled;
  // The switch.
  if (absl::Status st = WriteConfig(t); !st.ok()) {
    t = std::move(before);
    compiled_[t.id] = std::move(old);
    // The store said the new set: undo it.
    SaveLocked(lock, {WriteOf(t.name, RulesDelta{})}).IgnoreError();
    Discard(c);
    return st;
  }
  c.written = false;  // the entries are in use now
  c.replaced = std::move(old);
  return absl::OkStatus();
}

absl::Status Engine::ReplaceRules(const std::string& name,
                                  std::vector<policy::Rule> rules,
                                  std::optional<policy::Mode> mode,
                                  Staged* staged) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(name));
  EGRESS_RETURN_IF_ERROR(RefuseOrphan(*t));
  Change c = Prepare(*t, std::move(rules), staged);
  c.mode = mode;
  lock.unlock();
  EGRESS_RETURN_IF_ERROR(Build(c));
  lock.lock();
  EGRESS_RETURN_IF_ERROR(Commit(lock, c));
  lock.unlock();
  if (c.replaced.ruleset != 0 && c.replaced.ruleset != c.new_ruleset) {
    if (absl::Status st = kernel_.DeleteEntries(c.replaced); !st.ok()) {
      Log(absl::StrCat("leaving stale entries of ruleset ", c.replaced.ruleset,
                       ": ", st.ToString()));
    }
  }
  return absl::OkStatus();
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
    for (const auto& [name, t] : state_.targets) {
      Expiry e{name, {}, {}};
      for (const policy::Rule& r : t.rules) {
        (r.expires == 0 || r.expires > now ? e.keep : e.gone).push_back(r);
      }
      if (!e.gone.empty()) work.push_back(std::move(e));
    }
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
