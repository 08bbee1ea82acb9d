// Targets: start-up, adding and removing targets, their mode and logging,
// and the reads that describe them.
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"
#include "userspace/policy/names.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/target_values.h"

namespace egress {

Engine::Engine(KernelPort& kernel, DaemonState state, EngineOptions options)
    : kernel_(kernel), options_(std::move(options)), state_(std::move(state)) {
  for (const auto& [name, t] : state_.targets) names_by_id_[t.id] = name;
}

const TargetState* Engine::FindById(uint32_t id) const {
  auto name = names_by_id_.find(id);
  if (name == names_by_id_.end()) return nullptr;
  auto it = state_.targets.find(name->second);
  return it == state_.targets.end() ? nullptr : &it->second;
}

absl::Status Engine::SaveLocked(Lock&, std::vector<TargetWrite> targets) {
  return options_.save(StateWrite{state_.next_ruleset, std::move(targets)});
}

TargetWrite Engine::WriteOf(const std::string& name,
                            std::optional<RulesDelta> rules) const {
  auto it = state_.targets.find(name);
  if (it == state_.targets.end() || it->second.orphan)
    return {name, nullptr, {}};
  return {name, &it->second, std::move(rules)};
}

size_t Engine::TargetCount() const {
  Lock lock(mu_);
  return state_.targets.size();
}

absl::StatusOr<bool> Engine::Start(int64_t now) {
  Lock lock(mu_);
  // Never reuse a ruleset id that still has entries in the maps.
  EGRESS_ASSIGN_OR_RETURN(uint32_t max_in_maps, kernel_.MaxRulesetInMaps());
  state_.next_ruleset = std::max(state_.next_ruleset, max_in_maps + 1);
  std::vector<std::string> names;
  bool any_user = false;
  for (const auto& [name, t] : state_.targets) {
    if (IsUser(t)) {  // served by the root set, loaded below
      any_user = true;
      names.push_back(name);
      continue;
    }
    if (!kernel_.ProgramsLoaded(t.id)) {
      EGRESS_RETURN_IF_ERROR(kernel_.LoadPrograms(t.id));
    } else {
      // Pinned programs that read maps no longer pinned would ignore every
      // rule written from now on.
      EGRESS_ASSIGN_OR_RETURN(bool reloaded, kernel_.RefreshPrograms(t.id));
      if (reloaded) {
        Log(absl::StrCat("target ", name,
                         ": its programs read maps that are no longer "
                         "pinned; loaded again against the pinned maps and "
                         "swapped in under the live links"));
      }
    }
    names.push_back(name);
  }
  if (any_user && kernel_.ProgramsLoaded(EGRESS_TARGET_BY_UID)) {
    EGRESS_ASSIGN_OR_RETURN(bool reloaded,
                            kernel_.RefreshPrograms(EGRESS_TARGET_BY_UID));
    if (reloaded) {
      Log("user targets: the root programs read maps that are no longer "
          "pinned; loaded again against the pinned maps and swapped in "
          "under the live links");
    }
  }
  lock.unlock();
  // A rule set still in the maps is adopted as it is: writing a second copy
  // would need room a full map does not have. Otherwise (maps new after a
  // reboot, temporary rules that ran out while egressd was down) the set is
  // written again. A target whose links are still pinned keeps enforcing
  // throughout (adopted, not re-attached).
  for (const std::string& name : names) {
    std::vector<policy::Rule> rules;
    EGRESS_ASSIGN_OR_RETURN(std::vector<TargetState> t, Targets(name, false));
    for (const policy::Rule& r : t[0].rules) {
      if (r.expires != 0 && r.expires <= now) continue;
      // An older egressd took such a rule from a policy file; Compile
      // refuses it now, and a start must not fail on it. Dropping it takes
      // away only what it wrongly allowed (ping to every address); as a
      // deny it matched nothing.
      if (r.NamesWithoutTcpOrUdp()) {
        Log(absl::StrCat("target ", name, ": dropped rule ", r.id, " (", r.spec,
                         " to ", absl::StrJoin(r.names, ", "),
                         "): a name takes tcp and udp ports, not icmp"));
        continue;
      }
      rules.push_back(r);
    }
    const bool as_stored = rules.size() == t[0].rules.size();
    if (as_stored) {
      EGRESS_ASSIGN_OR_RETURN(bool adopted, AdoptRules(name));
      if (adopted) continue;
    }
    // The store with no room (a full state directory) does not stop the
    // stored rules in force: their set's id is found again from the maps
    // at the next start, rules that ran out are dropped again, and the
    // target's next rule change is stored whole (store_behind_).
    EGRESS_RETURN_IF_ERROR(Replace(name, NewRules{std::move(rules), {}},
                                   std::nullopt, nullptr, NoRoom::kSwitch));
  }
  lock.lock();
  AdoptOrphans();
  bool all_attached = true;
  std::set<uint32_t> keep;
  for (const auto& [name, t] : state_.targets) {
    auto attached = Attach(t);
    if (!attached.ok()) {
      all_attached = false;
      Log(absl::StrCat("target ", name, ": ", attached.status().ToString()));
    }
    keep.insert(t.ruleset);
  }
  for (const auto& [id, spare] : spares_) keep.insert(spare.ruleset);
  for (const auto& [id, set] : retiring_) keep.insert(set.ruleset);
  // The spares the last egressd left are taken, not swept and written
  // again (200 targets of 1,000 rules: 200,000 entries twice).
  EGRESS_ASSIGN_OR_RETURN(size_t adopted_spares, AdoptSparesLocked(keep));
  if (adopted_spares > 0) {
    Log(absl::StrCat("adopted ", adopted_spares, " spare rule sets"));
  }
  // Entries of rulesets no target uses were left by an interrupted apply.
  EGRESS_ASSIGN_OR_RETURN(size_t swept, kernel_.DeleteRulesetsExcept(keep));
  if (swept > 0) Log(absl::StrCat("removed ", swept, " stale rule entries"));
  // Only next_ruleset is new here, and it is known again from the maps at
  // every start: a store with no room (a full state directory) does not
  // stop egressd from enforcing what is pinned and stored. Changes are
  // refused until it has room (the store says so).
  if (absl::Status saved = SaveLocked(lock); !saved.ok()) {
    if (!absl::IsResourceExhausted(saved)) return saved;
    Log("started read-only: enforcing what is pinned and stored; changes "
        "are refused until the state directory has room");
  }
  // Every target adopted or written: spares of their sets, in the
  // background.
  StartSparesLocked();
  return all_attached;
}

absl::StatusOr<TargetState*> Engine::Find(const std::string& name) {
  const Engine* self = this;
  EGRESS_ASSIGN_OR_RETURN(const TargetState* t, self->Find(name));
  return const_cast<TargetState*>(t);
}

absl::StatusOr<const TargetState*> Engine::Find(const std::string& name) const {
  if (name.empty()) {
    if (state_.targets.size() == 1) return &state_.targets.begin()->second;
    if (state_.targets.empty()) {
      return absl::NotFoundError(
          "no targets yet: add one with 'egressctl target add NAME --cgroup "
          "PATH'");
    }
    std::vector<std::string> names;
    for (const auto& [n, t] : state_.targets) names.push_back(n);
    return absl::InvalidArgumentError(
        absl::StrCat("several targets exist (", absl::StrJoin(names, ", "),
                     "): name one with --target NAME"));
  }
  auto it = state_.targets.find(name);
  if (it == state_.targets.end()) {
    return absl::NotFoundError(absl::StrCat("no target named '", name, "'"));
  }
  return &it->second;
}

absl::StatusOr<std::string> Engine::ResolveCgroup(policy::TargetSource source,
                                                  const std::string& value) {
  std::string path = value;
  switch (source) {
    case policy::TargetSource::kUnit: {
      // Any client of the control socket may send a unit; the name goes to
      // systemctl, run as root.
      EGRESS_RETURN_IF_ERROR(policy::CheckUnitName(value));
      EGRESS_ASSIGN_OR_RETURN(path, options_.unit_cgroup(value));
      break;
    }
    case policy::TargetSource::kPid: {
      char* end = nullptr;
      long pid = strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || pid <= 0 || pid > (1 << 22)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad pid '", value, "'"));
      }
      EGRESS_ASSIGN_OR_RETURN(path, options_.pid_cgroup(static_cast<int>(pid)));
      break;
    }
    // What a policy file refuses (target_values.h): `export` writes the
    // target as one, and `apply` must take it back.
    case policy::TargetSource::kPattern:
      EGRESS_RETURN_IF_ERROR(policy::CheckCgroupPattern(value));
      break;
    case policy::TargetSource::kCgroup: {
      // The cgroup the text names: "[*]" is a '*' of its name.
      EGRESS_ASSIGN_OR_RETURN(path, policy::CgroupPathOfText(value));
      break;
    }
    case policy::TargetSource::kUser:  // ResolveUser: no cgroup
      return absl::InvalidArgumentError("a user target has no cgroup");
    case policy::TargetSource::kContainer:
      EGRESS_RETURN_IF_ERROR(policy::CheckContainer(value));
      return std::string();
    case policy::TargetSource::kSelector:
    case policy::TargetSource::kPod:
    case policy::TargetSource::kPodSelector:
      // Cgroups of their own, found as the workloads start.
      if (value.empty()) {
        return absl::InvalidArgumentError(
            "no container name, selector, pod or pod selector");
      }
      return std::string();
  }
  return options_.normalize_cgroup(path);
}

absl::StatusOr<uint32_t> Engine::ResolveUser(const std::string& user) const {
  EGRESS_RETURN_IF_ERROR(policy::CheckUser(user));
  if (std::optional<uint32_t> uid = policy::UidOfNumber(user)) return *uid;
  if (!options_.user_uid) {
    return absl::UnimplementedError("user names cannot be looked up here");
  }
  return options_.user_uid(user);
}

const TargetState* Engine::UserTargetOf(uint32_t uid) const {
  for (const auto& [n, t] : state_.targets) {
    if (IsUser(t) && t.uid == uid) return &t;
  }
  return nullptr;
}

void Engine::LiftUser(uint32_t uid, uint32_t id) {
  kernel_.DeleteUserTarget(uid).IgnoreError();
  DropRootSetIfUnused(id);
}

void Engine::DropRootSetIfUnused(uint32_t leaving) {
  for (const auto& [n, other] : state_.targets) {
    if (IsUser(other) && other.id != leaving) return;  // the root set stays
  }
  // Also what is left of a set whose program pins went (links, held fds).
  const bool loaded = kernel_.ProgramsLoaded(EGRESS_TARGET_BY_UID);
  kernel_.RemovePrograms(EGRESS_TARGET_BY_UID).IgnoreError();
  if (loaded) Log("no user target left: detached the root program set");
}

absl::StatusOr<uint32_t> Engine::AllocateTargetId() {
  std::set<uint32_t> used;
  for (const auto& [n, t] : state_.targets) used.insert(t.id);
  // Ids go round, from after the last one handed out (after a start, the
  // highest in use): a removed target's id serves again only after every
  // other free one did. The kernel still holds things under an id after
  // its target goes (its records in the ring buffer, its held-back counts
  // until the sweep reports them, the storage of its flows): a new target
  // given the same id at once would be named in them.
  if (last_target_id_ == 0 && !used.empty()) last_target_id_ = *used.rbegin();
  constexpr uint32_t kIds = EGRESS_TARGET_ID_LIMIT - 1;
  for (uint32_t i = 0; i < kIds; ++i) {
    const uint32_t id = (last_target_id_ + i) % kIds + 1;
    if (!used.count(id)) {
      last_target_id_ = id;
      return id;
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("at most ", EGRESS_TARGET_ID_LIMIT - 1, " targets"));
}

absl::StatusOr<TargetState> Engine::NewTarget(const control::TargetSpec& spec) {
  EGRESS_RETURN_IF_ERROR(policy::CheckName(spec.name, "target name"));
  TargetState t;
  CopyTargetSettings(spec, &t);
  t.annotations = spec.annotations;
  if (IsUser(t)) {
    EGRESS_ASSIGN_OR_RETURN(t.uid, ResolveUser(spec.source_value));
    return t;
  }
  EGRESS_ASSIGN_OR_RETURN(t.cgroup,
                          ResolveCgroup(spec.source, spec.source_value));
  return t;
}

absl::StatusOr<control::TargetAddResponse> Engine::AddTarget(
    const control::TargetSpec& spec) {
  EGRESS_ASSIGN_OR_RETURN(TargetState t, NewTarget(spec));
  std::vector<policy::Rule> rules = spec.rules;
  for (policy::Rule& r : rules) r.id = t.next_rule_id++;
  // Validate the rules, and that the maps have room for them, before
  // touching the kernel.
  Lock lock(mu_);
  const size_t exact_limit = ExactLimitLocked();
  lock.unlock();
  EGRESS_ASSIGN_OR_RETURN(policy::CompiledRuleset compiled,
                          policy::Compile(1, rules, exact_limit));
  lock.lock();
  EGRESS_RETURN_IF_ERROR(
      CheckMapRoomLocked({{t.name, CountEntries(compiled)}}));
  std::string name = t.name;
  EGRESS_RETURN_IF_ERROR(CreateTarget(lock, std::move(t), std::move(rules)));
  if (!lock.owns_lock()) lock.lock();
  const TargetState& stored = state_.targets.at(name);
  control::TargetAddResponse out;
  out.target = InfoLocked(stored);
  if (!out.target.cgroup_exists) {
    out.warning =
        IsWorkload(stored)
            ? absl::StrCat("no running container is ",
                           policy::TargetSourceName(stored.source), " ",
                           stored.source_value,
                           " yet; each one is enforced as soon as it starts")
        : IsPattern(stored)
            ? absl::StrCat("no cgroup matches ", stored.cgroup,
                           " yet; each one is enforced as soon as it is "
                           "created")
            : absl::StrCat("cgroup ", stored.cgroup,
                           " does not exist yet; it is enforced as soon as "
                           "it is created");
  }
  return out;
}

absl::Status Engine::CreateTarget(Lock& lock, TargetState t,
                                  std::vector<policy::Rule> rules,
                                  Staged* staged) {
  if (state_.targets.count(t.name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("target '", t.name, "' exists already"));
  }
  if (IsUser(t)) {
    if (const TargetState* other = UserTargetOf(t.uid)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "uid ", t.uid, " is already target '", other->name, "'"));
    }
  } else if (IsWorkload(t)) {
    for (const auto& [n, other] : state_.targets) {
      if (other.source == t.source && other.source_value == t.source_value) {
        return absl::AlreadyExistsError(
            absl::StrCat(policy::TargetSourceName(t.source), " ",
                         t.source_value, " is already target '", n, "'"));
      }
    }
  } else {
    for (const auto& [n, other] : state_.targets) {
      if (!IsUser(other) && !IsWorkload(other) && other.cgroup == t.cgroup) {
        return absl::AlreadyExistsError(
            absl::StrCat("cgroup ", t.cgroup, " is already target '", n, "'"));
      }
    }
  }
  EGRESS_ASSIGN_OR_RETURN(t.id, AllocateTargetId());
  const uint32_t id = t.id;
  const std::string name = t.name;
  const bool user = IsUser(t);
  const uint32_t uid = t.uid;  // what LiftUser needs (not the rules)
  auto undo = [&] {
    if (user) LiftUser(uid, id);
    UnwatchTarget(id);
    kernel_.RemovePrograms(id).IgnoreError();
    kernel_.SetTargetConfig(id, egress_target_config{}).IgnoreError();
    compiled_.erase(id);
    ForgetLinks(id);
  };
  // Config (mode, no rules = deny all) goes in before any program attaches.
  EGRESS_RETURN_IF_ERROR(WriteConfig(t));
  EGRESS_RETURN_IF_ERROR(kernel_.ResetCounters(id));
  // Not attached until its programs and rules are in: reconcile, the
  // self-check and the rule diff leave a target in creating_ alone.
  state_.targets.emplace(name, std::move(t));
  names_by_id_[id] = name;
  creating_.insert(id);
  lock.unlock();
  // Loading the programs (the verifier, tens of ms a target) and writing
  // the rules run without the lock, so `status` and reconcile do not wait
  // for a 200-target apply one load at a time. A user target has no
  // programs of its own: the root set serves it once its uid is entered
  // (AttachUser, after its rules).
  absl::Status st = user ? absl::OkStatus() : kernel_.LoadPrograms(id);
  if (st.ok()) {
    st = ReplaceRules(name, std::move(rules), std::nullopt, staged);
  }
  lock.lock();
  creating_.erase(id);
  if (st.ok()) {
    auto attached = Attach(state_.targets.at(name));
    st = attached.status();
  }
  if (!st.ok()) {
    auto it = compiled_.find(id);
    if (it != compiled_.end()) kernel_.DeleteEntries(it->second).IgnoreError();
    state_.targets.erase(name);
    names_by_id_.erase(id);
    undo();
    SaveLocked(lock, {WriteOf(name, std::nullopt)}).IgnoreError();
    return st;
  }
  // Created: the spare writer passed it by while it was being made.
  PokeSparesLocked();
  return absl::OkStatus();
}

absl::StatusOr<control::TargetRemoveResponse> Engine::RemoveTarget(
    const std::string& name) {
  Lock lock(mu_);
  auto it = state_.targets.find(name);
  if (it == state_.targets.end()) {
    return absl::NotFoundError(absl::StrCat("no target named '", name, "'"));
  }
  TargetState t = it->second;
  // The intent is saved before enforcement is lifted: a state file that
  // cannot be written leaves the target enforced and says why, never a
  // target lifted that comes back at the next start.
  state_.targets.erase(it);
  if (absl::Status st = SaveLocked(lock, {WriteOf(name, std::nullopt)});
      !st.ok()) {
    state_.targets.emplace(name, std::move(t));
    return absl::Status(
        st.code(), absl::StrCat("target '", name,
                                "' stays enforced: cannot save the state: ",
                                st.message()));
  }
  if (IsUser(t)) {
    LiftUser(t.uid, t.id);  // the uid's entry first: that lifts enforcement
  } else {
    // The name first: a re-created cgroup must not stay denied by the watch
    // instance once the target is gone.
    UnwatchTarget(t.id);
    EGRESS_RETURN_IF_ERROR(kernel_.RemovePrograms(t.id));
  }
  if (t.orphan) RemoveOrphanEntries(t).IgnoreError();
  kernel_.SetTargetConfig(t.id, egress_target_config{}).IgnoreError();
  if (auto c = compiled_.find(t.id); c != compiled_.end()) {
    if (t.ruleset != 0) kernel_.DeleteEntries(c->second).IgnoreError();
    compiled_.erase(c);
  }
  DropSpareLocked(t.id);
  ForgetLinks(t.id);
  names_by_id_.erase(t.id);
  removed_.Remember(t.id, name, absl::Now());
  rule_numbers_.erase(t.id);
  pattern_watch_dirs_.erase(t.id);
  kernel_.DeletePeers(t.id).IgnoreError();
  DeleteAllRuleHitsLocked(t.id);
  // The room it held may take a spare the maps had none for.
  PokeSparesLocked();
  return control::TargetRemoveResponse{name};
}

template <typename T>
absl::Status Engine::ChangeSetting(Lock& lock, TargetState& t,
                                   T TargetState::*field, T value) {
  EGRESS_RETURN_IF_ERROR(RefuseOrphan(t));
  T old = t.*field;
  t.*field = value;
  if (absl::Status st = SaveLocked(lock, {WriteOf(t.name, std::nullopt)});
      !st.ok()) {
    t.*field = old;  // the file still says the old value
    return st;
  }
  return WriteConfig(t);
}

absl::StatusOr<control::ModeResponse> Engine::SetMode(
    const control::ModeRequest& request) {
  Lock lock(mu_);
  std::vector<TargetState*> targets;
  if (request.all) {
    for (auto& [n, t] : state_.targets) {
      if (!t.orphan) targets.push_back(&t);
    }
  } else {
    EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(request.target));
    targets.push_back(t);
  }
  control::ModeResponse out;
  for (TargetState* t : targets) {
    EGRESS_RETURN_IF_ERROR(
        ChangeSetting(lock, *t, &TargetState::mode, request.mode));
    out.changed.push_back({t->name, t->mode});
  }
  return out;
}

absl::StatusOr<control::LoggingResponse> Engine::SetLogging(
    const control::LoggingRequest& request) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(request.target));
  EGRESS_RETURN_IF_ERROR(
      ChangeSetting(lock, *t, &TargetState::logging, request.level));
  return control::LoggingResponse{t->name, t->logging};
}

absl::StatusOr<std::vector<TargetState>> Engine::Targets(
    const std::string& name, bool all) const {
  Lock lock(mu_);
  std::vector<TargetState> out;
  if (name.empty() && all) {
    for (const auto& [n, t] : state_.targets) out.push_back(t);
    return out;
  }
  EGRESS_ASSIGN_OR_RETURN(const TargetState* t, Find(name));
  out.push_back(*t);
  return out;
}

absl::StatusOr<std::vector<TargetState>> Engine::TargetsWithoutRules(
    const std::string& name, bool all) {
  Lock lock(mu_);
  // The rules are lent out while the rest is copied (as in Prepare).
  auto copy = [](TargetState& t) {
    std::vector<policy::Rule> rules;
    rules.swap(t.rules);
    TargetState settings = t;
    t.rules.swap(rules);
    return settings;
  };
  std::vector<TargetState> out;
  if (name.empty() && all) {
    for (auto& [n, t] : state_.targets) out.push_back(copy(t));
    return out;
  }
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(name));
  out.push_back(copy(*t));
  return out;
}

absl::StatusOr<std::vector<policy::Rule>> Engine::RulesOf(
    const std::string& name) const {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(const TargetState* t, Find(name));
  return t->rules;
}

std::vector<control::TargetInfo> Engine::TargetInfos() const {
  Lock lock(mu_);
  std::vector<control::TargetInfo> out;
  for (const auto& [n, t] : state_.targets) out.push_back(InfoLocked(t));
  return out;
}

std::vector<control::TargetInfo> Engine::WorkloadTargetInfos() const {
  Lock lock(mu_);
  std::vector<control::TargetInfo> out;
  for (const auto& [n, t] : state_.targets) {
    if (IsWorkload(t)) out.push_back(InfoLocked(t));
  }
  return out;
}

absl::StatusOr<control::ListResponse> Engine::List(
    const std::string& name) const {
  EGRESS_ASSIGN_OR_RETURN(std::vector<TargetState> targets,
                          Targets(name, /*all=*/true));
  control::ListResponse out;
  for (TargetState& t : targets) {
    control::TargetRules tr{t.name, t.mode, {}};
    tr.orphan = t.orphan;
    for (size_t i = 0; i < t.rules.size(); ++i) {
      tr.rules.push_back({i + 1, std::move(t.rules[i])});
    }
    out.targets.push_back(std::move(tr));
  }
  return out;
}

RecordTarget Engine::LookupRecord(uint32_t target_id, uint32_t rule_id) const {
  Lock lock(mu_);
  RecordTarget out;
  const TargetState* target = FindById(target_id);
  if (target == nullptr) {
    // Written before the target's removal, read after it.
    out.name = removed_.NameOf(target_id, absl::Now());
    out.removed = !out.name.empty();
    return out;
  }
  out.name = target->name;
  out.logging = target->logging;
  out.mode = target->mode;
  if (rule_id == 0) return out;
  const RuleIndex& index = IndexLocked(*target);
  auto it = index.numbers.find(rule_id);
  out.rule_number = it == index.numbers.end() ? 0 : it->second;
  return out;
}

void Engine::EraseGoneRules(uint32_t target_id,
                            std::map<uint32_t, uint64_t>& by_rule_id) const {
  Lock lock(mu_);
  const TargetState* target = FindById(target_id);
  if (target != nullptr && target->orphan) return;
  const RuleIndex* index = target == nullptr ? nullptr : &IndexLocked(*target);
  for (auto it = by_rule_id.begin(); it != by_rule_id.end();) {
    const bool live = it->first == 0 ||
                      (index != nullptr && index->numbers.contains(it->first));
    it = live ? std::next(it) : by_rule_id.erase(it);
  }
}

const Engine::RuleIndex& Engine::IndexLocked(const TargetState& target) const {
  // Rebuilt when the target's rule set changed: records cost O(1) however
  // many rules there are.
  RuleIndex& index = rule_numbers_[target.id];
  if (index.ruleset != target.ruleset ||
      index.numbers.size() != target.rules.size()) {
    index.ruleset = target.ruleset;
    index.numbers.clear();
    index.name_rules.clear();
    for (size_t i = 0; i < target.rules.size(); ++i) {
      index.numbers.emplace(target.rules[i].id, i + 1);
      if (!target.rules[i].names.empty()) index.name_rules.push_back(i);
    }
  }
  return index;
}

void Engine::RecordNames(const egress_event& e,
                         std::vector<std::string>* destination_names,
                         std::vector<std::string>* unlearned_names) const {
  if (e.kind != EGRESS_EVENT_VERDICT ||
      (e.proto != IPPROTO_TCP && e.proto != IPPROTO_UDP) ||
      (e.family != EGRESS_FAMILY_IPV4 && e.family != EGRESS_FAMILY_IPV6)) {
    return;
  }
  Lock lock(mu_);
  const TargetState* target = FindById(e.target_id);
  if (target == nullptr) return;
  const RuleIndex& index = IndexLocked(*target);
  if (index.name_rules.empty()) return;
  const uint16_t port = ntohs(e.port);
  const uint8_t family = e.family == EGRESS_FAMILY_IPV4 ? 4 : 6;
  std::array<uint8_t, 16> addr;
  std::memcpy(addr.data(), e.addr, addr.size());
  if (e.reason == EGRESS_REASON_MATCH_ALLOW ||
      e.reason == EGRESS_REASON_MATCH_DENY) {
    auto it = index.numbers.find(e.rule_id);
    if (it == index.numbers.end()) return;
    const policy::Rule& r = target->rules[it->second - 1];
    if (r.names.empty()) return;
    // The same rule's addresses alone: did one of them decide?
    policy::Rule by_address = r;
    by_address.names.clear();
    if (!by_address.destinations.empty() &&
        policy::RuleMatches(by_address, e.proto, port, family, addr)) {
      return;
    }
    *destination_names = r.names;
    return;
  }
  if (e.reason != EGRESS_REASON_NO_MATCH ||
      (e.verdict != EGRESS_VERDICT_DENY && e.verdict != EGRESS_VERDICT_AUDIT)) {
    return;
  }
  const policy::Proto proto =
      e.proto == IPPROTO_TCP ? policy::Proto::kTcp : policy::Proto::kUdp;
  for (size_t i : index.name_rules) {
    const policy::Rule& r = target->rules[i];
    if (r.action != policy::Action::kAllow) continue;
    for (const policy::PortProto& pp : r.ports) {
      if (pp.proto != proto || port < pp.lo || port > pp.hi) continue;
      for (const std::string& n : r.names) {
        if (std::find(unlearned_names->begin(), unlearned_names->end(), n) ==
            unlearned_names->end()) {
          unlearned_names->push_back(n);
        }
      }
      break;
    }
  }
}

}  // namespace egress
