// Attachments: a target's program set on its cgroup (or on every cgroup its
// pattern matches), re-attached when a cgroup is re-created, and what the
// kernel says about it for status and metrics.
#include <set>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"

namespace egress {

void Engine::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::vector<std::string> Engine::TargetCgroups(const TargetState& t) {
  if (IsWorkload(t)) {
    return options_.workload_cgroups ? options_.workload_cgroups(t)
                                     : std::vector<std::string>{};
  }
  if (!IsPattern(t)) return {t.cgroup};
  CgroupMatches m = kernel_.MatchCgroups(t.cgroup);
  if (m.truncated) {
    Log(absl::StrCat("target ", t.name, ": pattern ", t.cgroup,
                     ": stopped after 20000 directories; narrow the pattern"));
  }
  // The same walk tells where new matches can appear: the loop watches them.
  pattern_watch_dirs_[t.id] = std::move(m.watch_dirs);
  return m.cgroups;
}

uint32_t Engine::ProgramSetOf(const TargetState& t) {
  return IsUser(t) ? EGRESS_TARGET_BY_UID : t.id;
}

LinkHealth Engine::LinksOf(const TargetState& t, uint64_t link_set,
                           uint64_t cgroup_id) {
  LinkHealth health = kernel_.Links(ProgramSetOf(t), link_set, cgroup_id);
  if (health.repinned > 0) {
    // Someone removed link pins; the links stayed attached because egressd
    // holds them. Worth a line: it takes root to do that.
    Log(absl::StrCat("target ", t.name, ": ", health.repinned,
                     " link pin(s) had been removed; pinned again (the hooks "
                     "stayed attached)"));
  }
  return health;
}

absl::StatusOr<bool> Engine::Attach(const TargetState& t) {
  if (HasCgroupSet(t)) return AttachPattern(t);
  if (IsUser(t)) return AttachUser(t);
  if (t.cgroup.empty()) {  // an orphan attached nowhere: nothing to attach
    SetLinks(t.id, {}, {});
    return false;
  }
  // Known by name at its parent before its own instance attaches: a cgroup
  // made again is enforced from its first instruction (engine_watch.cc).
  if (!t.orphan) WatchTarget(t);
  auto id = kernel_.CgroupId(t.cgroup);
  if (!id.ok()) {
    if (absl::IsNotFound(id.status())) {
      SetLinks(t.id, {}, {});
      return false;  // waiting for it
    }
    return id.status();
  }
  LinkHealth health = LinksOf(t, KernelPort::kOwnCgroup, *id);
  absl::Status attached;
  if (!health.all_live()) {
    // Its program pins may have gone with no link left to pin them from.
    if (!t.orphan && !kernel_.ProgramsLoaded(t.id)) {
      attached = kernel_.LoadPrograms(t.id);
    }
    if (attached.ok()) {
      attached = kernel_.Attach(t.id, KernelPort::kOwnCgroup, t.cgroup, *id);
    }
    if (attached.ok()) {
      Log(absl::StrCat("target ", t.name, ": attached to ", t.cgroup,
                       " (cgroup id ", *id, ")"));
      health = kernel_.Links(t.id, KernelPort::kOwnCgroup, *id);
    }
  }
  // What the kernel has, also when attaching failed: status must not report
  // hooks that are gone.
  SetLinks(t.id, {{t.cgroup, *id}}, health);
  if (!attached.ok()) return attached;
  if (health.all_live()) CoverTarget(t, *id);
  return true;
}

absl::StatusOr<bool> Engine::AttachUser(const TargetState& t) {
  constexpr uint32_t kSet = EGRESS_TARGET_BY_UID;
  auto root = kernel_.CgroupId("/");
  if (!root.ok()) {
    SetLinks(t.id, {}, {});
    return root.status();
  }
  LinkHealth health = LinksOf(t, KernelPort::kOwnCgroup, *root);
  absl::Status attached;
  if (!health.all_live()) {
    if (!kernel_.ProgramsLoaded(kSet)) attached = kernel_.LoadPrograms(kSet);
    if (attached.ok()) {
      attached = kernel_.Attach(kSet, KernelPort::kOwnCgroup, "/", *root);
    }
    if (attached.ok()) {
      Log(absl::StrCat("user targets: attached to the cgroup2 root (cgroup id ",
                       *root, ")"));
      health = kernel_.Links(kSet, KernelPort::kOwnCgroup, *root);
    }
  }
  // The uid's entry last, and again on every reconcile (one map update):
  // its config and rules are in by then, so its processes never run under
  // an empty policy that is not theirs.
  if (attached.ok() && !t.orphan) {
    attached = kernel_.SetUserTarget(t.uid, t.id);
  }
  SetLinks(t.id, {{"/", *root}}, health);
  if (!attached.ok()) return attached;
  return true;
}

absl::StatusOr<bool> Engine::AttachPattern(const TargetState& t) {
  std::set<uint64_t> live_sets;
  std::vector<control::CgroupRef> attached;
  LinkHealth total;
  absl::Status first_error;
  for (const std::string& rel : TargetCgroups(t)) {
    auto id = kernel_.CgroupId(rel);
    if (!id.ok()) continue;  // gone since the walk
    live_sets.insert(*id);
    LinkHealth health = LinksOf(t, *id, *id);
    if (!health.all_live()) {
      absl::Status st = kernel_.Attach(t.id, *id, rel, *id);
      if (!st.ok()) {
        // A cgroup removed since the walk is not an error.
        if (!absl::IsNotFound(st) && first_error.ok()) first_error = st;
        continue;
      }
      Log(absl::StrCat("target ", t.name, ": attached to ", rel, " (cgroup id ",
                       *id, ")"));
      health = kernel_.Links(t.id, *id, *id);
    }
    attached.push_back({rel, *id});
    total.live += health.live;
    total.total += health.total;
  }
  // Only cgroups that are gone lose their links (every link defunct): a
  // walk that missed a live cgroup (truncated, out of fds) must never lift
  // its enforcement.
  for (uint64_t set : kernel_.LinkSets(t.id)) {
    if (live_sets.count(set) || !kernel_.LinkSetDefunct(t.id, set)) continue;
    kernel_.Detach(t.id, set).IgnoreError();
  }
  SetLinks(t.id, attached, total);
  if (!first_error.ok()) return first_error;
  return !attached.empty();
}

absl::StatusOr<std::vector<std::string>> Engine::DetachWorkloadCgroups(
    const std::string& target, const std::map<uint64_t, std::string>& cgroups) {
  Lock lock(mu_);
  auto it = state_.targets.find(target);
  if (it == state_.targets.end()) {
    return absl::NotFoundError(absl::StrCat("no target named '", target, "'"));
  }
  const TargetState& t = it->second;
  if (!IsWorkload(t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target '", target, "' selects no containers or pods"));
  }
  std::vector<std::string> detached;
  std::set<uint64_t> gone;
  for (uint64_t set : kernel_.LinkSets(t.id)) {
    auto c = cgroups.find(set);  // a workload target's link set is its cgroup
    if (c == cgroups.end()) continue;
    EGRESS_RETURN_IF_ERROR(kernel_.Detach(t.id, set));
    detached.push_back(c->second);
    gone.insert(set);
  }
  if (gone.empty()) return detached;
  // status no longer lists it; the counts are read again by the next pass.
  if (auto lk = links_.find(t.id); lk != links_.end()) {
    std::vector<control::CgroupRef> keep;
    for (const control::CgroupRef& r : lk->second.first) {
      if (!gone.count(r.id)) keep.push_back(r);
    }
    SetLinks(t.id, std::move(keep), lk->second.second);
  }
  return detached;
}

void Engine::LogChange(uint32_t key, const std::string& line) {
  std::string& last = last_logged_[key];
  if (!line.empty() && line != last) Log(line);
  last = line;
}

void Engine::RepairPins() {
  absl::StatusOr<int> made = kernel_.RepairPins();
  if (made.ok() && *made > 0) {
    Log(absl::StrCat(*made,
                     " pin(s) had gone (bpffs unmounted or a pin directory "
                     "removed); made again from the maps, programs and "
                     "links egressd holds"));
  }
  LogChange(kPinsLogKey, made.ok()
                             ? ""
                             : absl::StrCat("cannot make the pins again: ",
                                            made.status().ToString(),
                                            " (the held links keep enforcing; "
                                            "retried every 500 ms)"));
}

void Engine::SetLinks(uint32_t id, std::vector<control::CgroupRef> cgroups,
                      LinkHealth health) {
  links_[id] = {std::move(cgroups), health};
  link_epochs_[id] = ++last_link_epoch_;
}

void Engine::ForgetLinks(uint32_t id) {
  links_.erase(id);
  link_epochs_.erase(id);
}

uint64_t Engine::LinkEpoch(uint32_t id) const {
  auto it = link_epochs_.find(id);
  return it == link_epochs_.end() ? 0 : it->second;
}

bool Engine::Settled(const TargetState& t, const LinkReading& r) const {
  // A new epoch: attached, detached or removed (and maybe made again under
  // the same id) since the reading; the cgroup too may be another one.
  return r.cgroup == t.cgroup && r.epoch == LinkEpoch(t.id) &&
         r.cgroup_id.ok() && r.health.all_live() && r.health.unsettled == 0;
}

int Engine::Reconcile(bool* failed) {
  // The kernel work of a pass is reading every link; done without the lock
  // for single-cgroup targets, so reads (status, list, metrics) never wait
  // for it. Pattern, workload and user targets are walked and attached
  // under the lock as before.
  std::vector<LinkReading> readings;
  {
    Lock lock(mu_);
    RepairPins();
    SweepGoneParents();
    for (const auto& [name, t] : state_.targets) {
      if (creating_.count(t.id) || HasCgroupSet(t) || IsUser(t) ||
          t.cgroup.empty()) {
        continue;
      }
      LinkReading& r = readings.emplace_back();
      r.id = t.id;
      r.cgroup = t.cgroup;
      r.epoch = LinkEpoch(t.id);
    }
  }
  for (LinkReading& r : readings) {
    r.cgroup_id = kernel_.CgroupId(r.cgroup);
    if (r.cgroup_id.ok()) {
      r.health = kernel_.ReadLinks(r.id, KernelPort::kOwnCgroup, *r.cgroup_id);
    }
  }
  absl::flat_hash_map<uint32_t, const LinkReading*> reading_of;
  for (const LinkReading& r : readings) reading_of[r.id] = &r;

  Lock lock(mu_);
  int attached = 0;
  bool any_failed = false;
  const bool workload_pass =
      options_.workload_pass_begin && options_.workload_pass_end;
  if (workload_pass) options_.workload_pass_begin();
  for (const auto& [name, t] : state_.targets) {
    if (creating_.count(t.id)) continue;  // attached once its rules are in
    auto before = links_.find(t.id);
    bool was_live = before != links_.end() && before->second.second.all_live();
    absl::StatusOr<bool> st;
    auto r = reading_of.find(t.id);
    if (r != reading_of.end() && Settled(t, *r->second)) {
      // What Attach() would find and keep: nothing to attach or repin.
      const LinkReading& reading = *r->second;
      if (!t.orphan) WatchTarget(t);
      SetLinks(t.id, {{t.cgroup, *reading.cgroup_id}}, reading.health);
      CoverTarget(t, *reading.cgroup_id);
      st = true;
    } else {
      st = Attach(t);
    }
    // A failure is logged once, not every 500 ms, until it changes.
    LogChange(t.id, st.ok() ? ""
                            : absl::StrCat("target ", name, ": ",
                                           st.status().ToString()));
    if (!st.ok()) {
      any_failed = true;
      continue;
    }
    if (*st && !was_live) ++attached;
  }
  if (workload_pass) options_.workload_pass_end();
  lock.unlock();
  if (failed != nullptr) *failed = any_failed;
  if (!any_failed) NotifyAllAttached();
  return attached;
}

void Engine::RefreshLinkHealth() {
  // What to read, per target: its program set and each (link set, cgroup).
  struct Reading {
    uint32_t id = 0;
    uint64_t epoch = 0;
    uint32_t program_set = 0;
    std::vector<std::pair<uint64_t, uint64_t>> sets;
    LinkHealth health;
  };
  std::vector<Reading> readings;
  {
    Lock lock(mu_);
    for (const auto& [id, links] : links_) {
      const TargetState* t = FindById(id);
      if (t == nullptr) continue;
      Reading& r = readings.emplace_back();
      r.id = id;
      r.epoch = LinkEpoch(id);
      r.program_set = ProgramSetOf(*t);
      for (const control::CgroupRef& c : links.first) {
        r.sets.emplace_back(HasCgroupSet(*t) ? c.id : KernelPort::kOwnCgroup,
                            c.id);
      }
    }
  }
  for (Reading& r : readings) {
    for (const auto& [set, cgroup_id] : r.sets) {
      // Links on a cgroup that was removed since count as not live.
      LinkHealth h = kernel_.ReadLinks(r.program_set, set, cgroup_id);
      r.health.live += h.live;
      r.health.attached += h.attached;
      r.health.total += h.total;
    }
  }
  Lock lock(mu_);
  for (const Reading& r : readings) {
    auto it = links_.find(r.id);
    // Attached, detached or removed meanwhile: that newer view stays.
    if (it == links_.end() || LinkEpoch(r.id) != r.epoch) continue;
    it->second.second = r.health;
  }
}

absl::Status Engine::CheckEnforced(const TargetState& t) {
  if (HasCgroupSet(t) || (t.cgroup.empty() && !IsUser(t))) {
    return absl::OkStatus();
  }
  auto id = kernel_.CgroupId(IsUser(t) ? "/" : t.cgroup);
  if (absl::IsNotFound(id.status())) return absl::OkStatus();  // waiting
  if (id.ok() && LinksOf(t, KernelPort::kOwnCgroup, *id).all_live()) {
    return absl::OkStatus();
  }
  absl::StatusOr<bool> attached = Attach(t);  // one more try, now
  if (attached.ok() && *attached) return absl::OkStatus();
  const LinkHealth& h = links_[t.id].second;
  return absl::UnavailableError(absl::StrCat(
      "target '", t.name, "' is not enforced on ",
      IsUser(t) ? absl::StrCat("uid ", t.uid, " (at the cgroup2 root: ")
                : absl::StrCat("its cgroup ", t.cgroup, " ("),
      h.live, "/", h.total, " hooks attached",
      attached.ok() ? "" : absl::StrCat(": ", attached.status().message()),
      "): nothing was changed; egressd retries attaching every 500 ms"));
}

control::TargetInfo Engine::InfoLocked(const TargetState& t) const {
  control::TargetInfo info;
  CopyTargetSettings(t, &info);
  info.id = t.id;
  info.cgroup = t.cgroup;
  info.uid = t.uid;
  info.rules = t.rules.size();
  for (const policy::Rule& r : t.rules) {
    if (!r.names.empty()) ++info.name_rules;
  }
  info.orphan = t.orphan;
  if (auto d = degraded_.find(t.id); d != degraded_.end()) {
    info.degraded = d->second;
  }
  auto it = links_.find(t.id);
  if (it != links_.end()) {
    info.cgroups = it->second.first;
    info.hooks_attached = it->second.second.live;
    info.hooks_total = it->second.second.total;
  }
  info.cgroup_exists = !info.cgroups.empty();
  info.cgroup_id =
      HasCgroupSet(t) || info.cgroups.empty() ? 0 : info.cgroups[0].id;
  info.attached = info.cgroup_exists && info.hooks_total > 0 &&
                  info.hooks_attached == info.hooks_total;
  return info;
}

std::map<uint64_t, std::string> Engine::SubtreeLocked(
    const TargetState& target) {
  std::map<uint64_t, std::string> out;
  std::vector<std::string> stack;
  // A user target's processes may be in any cgroup: no walk of the whole
  // tree (CgroupPath names a record's cgroup by its id instead).
  if (IsUser(target)) return out;
  auto lk = links_.find(target.id);
  if (lk != links_.end()) {
    for (const control::CgroupRef& c : lk->second.first) {
      stack.push_back(c.path);
    }
  }
  size_t visited = 0;
  while (!stack.empty() && visited < kMaxSubtreeCgroups) {
    std::string rel = stack.back();
    stack.pop_back();
    ++visited;
    if (auto id = kernel_.CgroupId(rel); id.ok()) out[*id] = rel;
    for (const std::string& name : kernel_.ChildCgroups(rel)) {
      stack.push_back(absl::StrCat(rel == "/" ? "" : rel, "/", name));
    }
  }
  return out;
}

std::map<uint64_t, std::string> Engine::SubtreeCgroups(uint32_t target_id) {
  Lock lock(mu_);
  const TargetState* target = FindById(target_id);
  if (target == nullptr) return {};
  return SubtreeLocked(*target);
}

std::string Engine::CgroupPath(uint64_t cgroup_id, uint32_t target_id) {
  if (cgroup_id == 0) return "";
  Lock lock(mu_);
  if (auto it = cgroup_paths_.find(cgroup_id); it != cgroup_paths_.end()) {
    return it->second;
  }
  const TargetState* target = FindById(target_id);
  const bool unclassified = target_id == EGRESS_TARGET_UNCLASSIFIED_DENY ||
                            target_id == EGRESS_TARGET_UNCLASSIFIED_AUDIT;
  if (target == nullptr && !unclassified) return "";
  if (cgroup_paths_.size() > 65536) cgroup_paths_.clear();
  // A user target's cgroups are anywhere in the tree, and an unclassified
  // workload's are new: by its id, no walk.
  if (unclassified || IsUser(*target)) {
    auto rel = kernel_.CgroupPathOf(cgroup_id);
    if (!rel.ok()) return "";
    return cgroup_paths_[cgroup_id] = *rel;
  }
  // Walk the target's subtree once and remember every id seen (bounded).
  for (auto& [id, rel] : SubtreeLocked(*target)) cgroup_paths_[id] = rel;
  auto it = cgroup_paths_.find(cgroup_id);
  return it == cgroup_paths_.end() ? "" : it->second;
}

std::vector<std::string> Engine::WatchDirs() const {
  Lock lock(mu_);
  std::vector<std::string> dirs;
  for (const auto& [n, t] : state_.targets) {
    // The root is always there; containers are found through their runtime.
    if (IsUser(t) || IsWorkload(t)) continue;
    if (IsPattern(t)) {
      auto it = pattern_watch_dirs_.find(t.id);
      if (it == pattern_watch_dirs_.end()) continue;
      dirs.insert(dirs.end(), it->second.begin(), it->second.end());
      continue;
    }
    size_t slash = t.cgroup.rfind('/');
    if (slash == std::string::npos || slash == 0) {
      dirs.push_back("/");
      continue;
    }
    const std::string parent = t.cgroup.substr(0, slash);
    dirs.push_back(parent);
    // The parent's own parent too: a parent made again (a job runner's
    // directory) wakes the pass at once, which puts the watch instance on
    // it before the target's cgroup is made in it, when it can.
    size_t up = parent.rfind('/');
    dirs.push_back(up == 0 || up == std::string::npos ? "/"
                                                      : parent.substr(0, up));
  }
  return dirs;
}

}  // namespace egress
