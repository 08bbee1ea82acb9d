// Watch instances: enforcement from a cgroup's first instruction. A unit or
// path target's cgroup is known by name to the watch instance attached once
// at its parent (bpf/lib/config.h), so a cgroup removed and made again
// (`systemctl restart`) is enforced from its mkdir on, also while egressd is
// down, instead of from the moment Attach reaches it. Workload parents
// (containers) get a default for children egressd has not classified yet.
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"

namespace egress {

namespace {

// The parent and the name of a cgroup path relative to the mount; false
// for a cgroup right below the root (its parent would be the root, whose
// watch instance would run for every socket of the host).
bool SplitParent(const std::string& rel, std::string* parent,
                 std::string* name) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos || slash == 0) return false;
  *parent = rel.substr(0, slash);
  *name = rel.substr(slash + 1);
  return !name->empty();
}

// Whether `name` can be a child cgroup's directory name the watch
// instance reads whole (bpf/lib/config.h).
absl::Status CheckChildName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' cannot be a cgroup's name"));
  }
  if (name.size() >= EGRESS_WATCH_NAME_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup name '", name, "' is longer than ",
                     EGRESS_WATCH_NAME_MAX - 1, " bytes"));
  }
  return absl::OkStatus();
}

egress_watch_parent WorkloadEntry(Engine::WorkloadDefault def) {
  egress_watch_parent p{};
  p.kind = EGRESS_WATCH_WORKLOAD;
  p.default_target = def == Engine::WorkloadDefault::kAudit
                         ? EGRESS_TARGET_UNCLASSIFIED_AUDIT
                         : EGRESS_TARGET_UNCLASSIFIED_DENY;
  return p;
}

}  // namespace

void Engine::WatchTarget(const TargetState& t) {
  TargetWatch& w = target_watch_[t.id];
  auto not_watched = [&](const std::string& why) {
    if (why != w.not_watched) {
      Log(absl::StrCat("target ", t.name, ": ", why,
                       "; enforced once attached (each re-creation of its "
                       "cgroup runs unenforced until then)"));
    }
    w.not_watched = why;
  };
  std::string parent, name;
  if (!SplitParent(t.cgroup, &parent, &name)) {
    not_watched("its cgroup is right below the cgroup2 root: not watched");
    return;
  }
  if (name.size() >= EGRESS_WATCH_NAME_MAX) {
    not_watched(absl::StrCat("cgroup name longer than ",
                             EGRESS_WATCH_NAME_MAX - 1, " bytes: not watched"));
    return;
  }
  absl::StatusOr<uint64_t> parent_id = kernel_.CgroupId(parent);
  if (!parent_id.ok()) {
    // No parent, no child to enforce yet: watched once the parent exists.
    if (!absl::IsNotFound(parent_id.status())) {
      not_watched(parent_id.status().ToString());
    }
    return;
  }
  if (w.parent_id == *parent_id && w.name == name && w.not_watched.empty()) {
    return;  // known by name already
  }
  if (w.parent_id != 0) {
    // The parent was made again (or the target moved): start afresh.
    uint32_t id = t.id;
    UnwatchTarget(id);
  }
  TargetWatch& fresh = target_watch_[t.id];
  ParentWatch& p = parent_watch_[*parent_id];
  // The name first: the moment the instance attaches it already knows it.
  absl::Status st = kernel_.SetWatchName(*parent_id, name, t.id);
  if (st.ok() && p.targets.empty() && !p.workload) {
    st = kernel_.Watch(parent, *parent_id);
  }
  if (!st.ok()) {
    kernel_.DeleteWatchName(*parent_id, name).IgnoreError();
    if (p.targets.empty() && !p.workload) parent_watch_.erase(*parent_id);
    TargetWatch& again = target_watch_[t.id];
    std::string why =
        absl::StrCat("cannot watch its parent ", parent, ": ", st.ToString());
    if (why != again.not_watched) {
      Log(absl::StrCat("target ", t.name, ": ", why));
    }
    again.not_watched = why;
    return;
  }
  p.rel = parent;
  p.targets.insert(t.id);
  fresh.parent_id = *parent_id;
  fresh.name = name;
  fresh.covered = 0;
  fresh.not_watched.clear();
  Log(absl::StrCat("target ", t.name,
                   ": enforced from the first instruction "
                   "of each ",
                   name, " under ", parent, " (watched by name)"));
}

void Engine::CoverTarget(const TargetState& t, uint64_t cgroup_id) {
  auto it = target_watch_.find(t.id);
  if (it == target_watch_.end() || it->second.parent_id == 0 ||
      it->second.covered == cgroup_id) {
    return;
  }
  if (!kernel_.SetCgroupClass(cgroup_id, EGRESS_CGROUP_COVERED).ok()) return;
  if (it->second.covered != 0) {
    kernel_.DeleteCgroupClass(it->second.covered).IgnoreError();
  }
  it->second.covered = cgroup_id;
}

void Engine::UnwatchTarget(uint32_t id) {
  auto it = target_watch_.find(id);
  if (it == target_watch_.end()) return;
  TargetWatch w = it->second;
  target_watch_.erase(it);
  if (w.covered != 0) kernel_.DeleteCgroupClass(w.covered).IgnoreError();
  if (w.parent_id == 0) return;
  kernel_.DeleteWatchName(w.parent_id, w.name).IgnoreError();
  auto p = parent_watch_.find(w.parent_id);
  if (p != parent_watch_.end()) p->second.targets.erase(id);
  DropParentIfUnused(w.parent_id);
}

void Engine::SweepGoneParents() {
  std::set<uint64_t> parents;
  for (uint64_t id : kernel_.WatchedParents()) parents.insert(id);
  for (const auto& [id, p] : parent_watch_) parents.insert(id);
  for (uint64_t parent_id : parents) {
    // Cgroup ids are never reused: a parent gone is gone for good, and its
    // instance (links defunct) decides for nothing any more. Anything but
    // NotFound (no CAP_DAC_READ_SEARCH, ...) keeps it.
    if (!absl::IsNotFound(kernel_.CgroupPathOf(parent_id).status())) continue;
    std::vector<uint32_t> watching;
    for (const auto& [id, w] : target_watch_) {
      if (w.parent_id == parent_id) watching.push_back(id);
    }
    // Watched afresh at the parent made again (WatchTarget).
    for (uint32_t id : watching) UnwatchTarget(id);
    auto p = parent_watch_.find(parent_id);
    const std::string rel = p == parent_watch_.end() ? "" : p->second.rel;
    if (p != parent_watch_.end()) parent_watch_.erase(p);
    absl::Status st = kernel_.Unwatch(parent_id);
    kernel_.DeleteWatchParent(parent_id).IgnoreError();
    const std::string what = absl::StrCat(
        "watch instance of the removed cgroup ",
        rel.empty() ? "" : absl::StrCat(rel, " "), "(id ", parent_id, ")");
    if (st.ok()) {
      unswept_parents_.erase(parent_id);
      Log(absl::StrCat(what, " removed"));
    } else if (unswept_parents_.insert(parent_id).second) {
      Log(absl::StrCat(what, " not removed: ", st.ToString(),
                       " (retried every 500 ms)"));
    }
  }
}

void Engine::DropParentIfUnused(uint64_t parent_id) {
  auto p = parent_watch_.find(parent_id);
  if (p == parent_watch_.end()) return;
  if (!p->second.targets.empty() || p->second.workload) return;
  kernel_.Unwatch(parent_id).IgnoreError();
  kernel_.DeleteWatchParent(parent_id).IgnoreError();
  parent_watch_.erase(p);
}

absl::Status Engine::RegisterWorkloadParent(const std::string& parent,
                                            WorkloadDefault def) {
  EGRESS_ASSIGN_OR_RETURN(std::string rel, options_.normalize_cgroup(parent));
  if (rel.empty() || rel == "/" || rel == ".") {
    return absl::InvalidArgumentError(
        "the cgroup2 root cannot be a workload parent: its watch instance "
        "would run for every socket of the host");
  }
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(uint64_t parent_id, kernel_.CgroupId(rel));
  // The defaults' configs: no rules, every decision UNCLASSIFIED
  // (bpf/lib/verdict.h), denied or audited.
  egress_target_config deny{};
  deny.mode = EGRESS_MODE_ENFORCE;
  deny.flags = EGRESS_TF_UNCLASSIFIED;
  egress_target_config audit = deny;
  audit.mode = EGRESS_MODE_AUDIT;
  EGRESS_RETURN_IF_ERROR(
      kernel_.SetTargetConfig(EGRESS_TARGET_UNCLASSIFIED_DENY, deny));
  EGRESS_RETURN_IF_ERROR(
      kernel_.SetTargetConfig(EGRESS_TARGET_UNCLASSIFIED_AUDIT, audit));
  EGRESS_RETURN_IF_ERROR(kernel_.SetWatchParent(parent_id, WorkloadEntry(def)));
  ParentWatch& p = parent_watch_[parent_id];
  if (p.targets.empty() && !p.workload) {
    if (absl::Status st = kernel_.Watch(rel, parent_id); !st.ok()) {
      kernel_.DeleteWatchParent(parent_id).IgnoreError();
      parent_watch_.erase(parent_id);
      return st;
    }
  }
  p.rel = rel;
  p.workload = def;
  Log(absl::StrCat("workload parent ", rel, ": unclassified children ",
                   def == WorkloadDefault::kAudit ? "audited" : "denied"));
  return absl::OkStatus();
}

absl::Status Engine::UnregisterWorkloadParent(const std::string& parent) {
  EGRESS_ASSIGN_OR_RETURN(std::string rel, options_.normalize_cgroup(parent));
  Lock lock(mu_);
  for (auto& [id, p] : parent_watch_) {
    if (p.rel != rel || !p.workload) continue;
    p.workload.reset();
    uint64_t parent_id = id;
    EGRESS_RETURN_IF_ERROR(kernel_.DeleteWatchParent(parent_id));
    // Its children named ahead go too: nothing decides for them any more.
    for (auto n = workload_names_.begin(); n != workload_names_.end();) {
      if (n->first.first != rel) {
        ++n;
        continue;
      }
      if (!TargetWatchesName(n->second, n->first.second)) {
        kernel_.DeleteWatchName(n->second, n->first.second).IgnoreError();
      }
      n = workload_names_.erase(n);
    }
    {
      std::lock_guard<std::mutex> names(names_mu_);
      for (auto n = ahead_names_.begin(); n != ahead_names_.end();) {
        if (n->first.first != rel) {
          ++n;
          continue;
        }
        if (!TargetWatchesName(n->second, n->first.second)) {
          kernel_.DeleteWatchName(n->second, n->first.second).IgnoreError();
        }
        n = ahead_names_.erase(n);
      }
    }
    DropParentIfUnused(parent_id);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Engine::ClassifyWorkloadCgroup(uint64_t cgroup_id,
                                            const std::string& target) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(uint32_t value, WorkloadClassValue(target));
  return kernel_.SetCgroupClass(cgroup_id, value);
}

absl::Status Engine::NameWorkloadChild(const std::string& parent,
                                       const std::string& name,
                                       const std::string& target) {
  EGRESS_ASSIGN_OR_RETURN(std::string rel, options_.normalize_cgroup(parent));
  EGRESS_RETURN_IF_ERROR(CheckChildName(name));
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(uint32_t value, WorkloadClassValue(target));
  EGRESS_ASSIGN_OR_RETURN(uint64_t parent_id, kernel_.CgroupId(rel));
  if (TargetWatchesName(parent_id, name)) {
    return absl::AlreadyExistsError(
        absl::StrCat(rel, "/", name, " is a unit or path target's cgroup"));
  }
  {
    // Written ahead: this write is the name's now.
    std::lock_guard<std::mutex> names(names_mu_);
    ahead_names_.erase({rel, name});
  }
  auto [it, fresh] = workload_names_.try_emplace({rel, name}, parent_id);
  if (!fresh && it->second != parent_id) {
    // The parent was made again: the old entry names a parent gone.
    kernel_.DeleteWatchName(it->second, name).IgnoreError();
    it->second = parent_id;
  }
  if (absl::Status st = kernel_.SetWatchName(parent_id, name, value);
      !st.ok()) {
    if (fresh) workload_names_.erase(it);
    return st;
  }
  return absl::OkStatus();
}

absl::Status Engine::NameWorkloadChildAhead(const std::string& parent,
                                            const std::string& name,
                                            uint32_t target_id) {
  EGRESS_ASSIGN_OR_RETURN(std::string rel, options_.normalize_cgroup(parent));
  EGRESS_RETURN_IF_ERROR(CheckChildName(name));
  // A stat: no lock.
  EGRESS_ASSIGN_OR_RETURN(uint64_t parent_id, kernel_.CgroupId(rel));
  std::lock_guard<std::mutex> names(names_mu_);
  EGRESS_RETURN_IF_ERROR(kernel_.AddWatchName(
      parent_id, name,
      target_id == 0 ? EGRESS_CGROUP_NOT_SELECTED : target_id));
  ahead_names_[{rel, name}] = parent_id;
  return absl::OkStatus();
}

absl::Status Engine::ForgetWorkloadChildName(const std::string& parent,
                                             const std::string& name) {
  EGRESS_ASSIGN_OR_RETURN(std::string rel, options_.normalize_cgroup(parent));
  Lock lock(mu_);
  {
    std::lock_guard<std::mutex> names(names_mu_);
    if (auto a = ahead_names_.find({rel, name}); a != ahead_names_.end()) {
      const uint64_t parent_id = a->second;
      ahead_names_.erase(a);
      if (!workload_names_.count({rel, name}) &&
          !TargetWatchesName(parent_id, name)) {
        return kernel_.DeleteWatchName(parent_id, name);
      }
    }
  }
  auto it = workload_names_.find({rel, name});
  if (it == workload_names_.end()) return absl::OkStatus();
  const uint64_t parent_id = it->second;
  workload_names_.erase(it);
  if (TargetWatchesName(parent_id, name)) return absl::OkStatus();
  return kernel_.DeleteWatchName(parent_id, name);
}

bool Engine::TargetWatchesName(uint64_t parent_id,
                               const std::string& name) const {
  for (const auto& [id, w] : target_watch_) {
    if (w.parent_id == parent_id && w.name == name) return true;
  }
  return false;
}

absl::StatusOr<uint32_t> Engine::WorkloadClassValue(
    const std::string& target) const {
  if (target.empty()) return EGRESS_CGROUP_NOT_SELECTED;
  EGRESS_ASSIGN_OR_RETURN(const TargetState* t, Find(target));
  if (IsUser(*t)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target '", target, "' is a user target: it follows its uid"));
  }
  return t->id;
}

absl::Status Engine::CoverWorkloadCgroup(uint64_t cgroup_id) {
  Lock lock(mu_);
  return kernel_.SetCgroupClass(cgroup_id, EGRESS_CGROUP_COVERED);
}

absl::Status Engine::ForgetWorkloadCgroup(uint64_t cgroup_id) {
  Lock lock(mu_);
  return kernel_.DeleteCgroupClass(cgroup_id);
}

}  // namespace egress
