#include "userspace/daemon/workload_classes.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

// classes_ value of a covered cgroup (target names have no '*').
constexpr char kCovered[] = "*covered";
// Docker containers named ahead at most (watch_names holds 4096 names, unit
// and path targets' included); past it a container starts unclassified.
constexpr size_t kMaxNamedContainers = 1024;

std::string ParentOf(const std::string& cgroup) {
  const size_t slash = cgroup.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/"
                                                  : cgroup.substr(0, slash);
}

bool IsPod(const workloads::Container& c) { return !c.pod_name.empty(); }

// The kubelet's QoS cgroups (cgroupfs and systemd drivers): pods of a class
// live below; guaranteed pods right in the kubepods cgroup.
bool IsQosCgroup(const std::string& cgroup) {
  const std::string name = cgroup.substr(cgroup.rfind('/') + 1);
  return name == "burstable" || name == "besteffort" ||
         name == "kubepods-burstable.slice" ||
         name == "kubepods-besteffort.slice";
}

// One cgroup the watch instances decide for: a pod's or a lone container's.
struct Unit {
  std::string cgroup, parent;
  const workloads::Container* any = nullptr;  // nullptr: an inner parent
};

}  // namespace

WorkloadClasses::WorkloadClasses(Engine& engine, WorkloadTargets& workloads,
                                 WorkloadClassesOptions options)
    : engine_(engine), workloads_(workloads), options_(std::move(options)) {}

void WorkloadClasses::Update() {
  const std::vector<control::TargetInfo> targets =
      engine_.WorkloadTargetInfos();
  std::lock_guard<std::mutex> lock(mu_);
  if (targets.empty()) {
    // No target selects workloads: new ones must not wait for a
    // classification nobody makes.
    for (const std::string& parent : registered_) {
      engine_.UnregisterWorkloadParent(parent).IgnoreError();
    }
    registered_.clear();
    for (const auto& [id, target] : classes_) {
      engine_.ForgetWorkloadCgroup(id).IgnoreError();
    }
    classes_.clear();
    for (const auto& [key, target] : named_) {
      engine_.ForgetWorkloadChildName(key.first, key.second).IgnoreError();
    }
    named_.clear();
    std::set<std::pair<std::string, std::string>> ahead;
    {
      std::lock_guard<std::mutex> ahead_lock(ahead_mu_);
      ahead_parent_.clear();
      ahead_targets_.clear();
      pass_named_.clear();
      ahead.swap(ahead_);
    }
    for (const auto& [parent, name] : ahead) {
      engine_.ForgetWorkloadChildName(parent, name).IgnoreError();
    }
    return;
  }
  auto problem = [&](const std::string& p) {
    if (p != last_problem_ && options_.log) options_.log(p);
    last_problem_ = p;
  };
  std::map<std::string, std::vector<std::string>> keys;
  // Whether a selector reads a label a container known from its create
  // event only cannot have (Container::from_event).
  bool reads_unknown_labels = false;
  for (const control::TargetInfo& t : targets) {
    std::vector<std::string> k =
        workloads::SelectorKeys(t.source, t.source_value);
    for (const std::string& key : k) {
      if (key == "name" || key == "image") reads_unknown_labels = true;
    }
    if (!k.empty()) keys[t.name] = std::move(k);
  }
  workloads_.SetSelectorKeys(std::move(keys));
  // Each target's selection read once for this pass, in target order: the
  // first that selects a workload has it.
  std::vector<workloads::ContainerMatcher> selects;
  for (const control::TargetInfo& t : targets) {
    selects.push_back(workloads::MatcherOf(t.source, t.source_value));
  }
  auto target_index = [&](const workloads::Container& c) -> int {
    for (size_t i = 0; i < selects.size(); ++i) {
      if (selects[i](c)) return static_cast<int>(i);
    }
    return -1;
  };
  // The names written ahead before `created` is read: each is of a
  // container in it, or of one gone or running by then (NameCreated).
  std::set<std::pair<std::string, std::string>> ahead;
  {
    std::lock_guard<std::mutex> ahead_lock(ahead_mu_);
    ahead = ahead_;
  }
  // Created before running: a container starting in between is in both
  // (named and classified), never in neither.
  std::vector<workloads::Container> created = workloads_.Created();
  if (reads_unknown_labels) {
    // Decided once inspected: until then unclassified, not maybe another
    // target's (or none's) for want of a label.
    std::erase_if(created,
                  [](const workloads::Container& c) { return c.from_event; });
  }
  const std::vector<workloads::Container> running = workloads_.Running();
  LogNotPods(running);
  // The parents: Docker's (one, --container_parent or the containers'), and
  // each pod cgroup's.
  std::string docker_parent = options_.parent;
  std::map<std::string, Unit> units;  // by cgroup
  for (const workloads::Container& c : running) {
    if (c.cgroup.empty()) continue;
    const std::string cgroup = workloads::WorkloadCgroup(c);
    const std::string parent = ParentOf(cgroup);
    if (parent == "/") continue;  // the root is never a workload parent
    if (!IsPod(c) && docker_parent.empty()) docker_parent = parent;
    units.emplace(cgroup, Unit{cgroup, parent, &c});
  }
  std::set<std::string> parents = registered_;
  for (const auto& [cgroup, u] : units) {
    if (!IsPod(*u.any)) continue;
    parents.insert(u.parent);
    // kubepods itself too: the first pod of another QoS class is then
    // under a watched parent (its class's cgroup unclassified) from its
    // first instruction.
    if (IsQosCgroup(u.parent) && ParentOf(u.parent) != "/") {
      parents.insert(ParentOf(u.parent));
    }
  }
  if (!docker_parent.empty() && docker_parent != "/") {
    if (options_.parent.empty() && absl::EndsWith(docker_parent, ".slice")) {
      problem(absl::StrCat(
          "containers run in ", docker_parent,
          " (the systemd cgroup driver): a container is enforced once "
          "egressd has seen it start, not from its first instruction; give "
          "dockerd a --cgroup-parent of its own and egressd "
          "--container_parent"));
    } else {
      parents.insert(docker_parent);
    }
  }
  // A container deeper below Docker's parent (`docker run --cgroup-parent
  // <parent>/team1`): its own parent is watched too, as an inner parent.
  // The watch instance at Docker's parent decides by its child on the way
  // (team1), which no container is: classified as an inner parent's
  // subtree below, it passes there, and the container is decided by its
  // target (or none) in its own parent's instance.
  if (parents.count(docker_parent)) {
    for (const auto& [cgroup, u] : units) {
      if (IsPod(*u.any) || u.parent == docker_parent ||
          !absl::StartsWith(u.parent, absl::StrCat(docker_parent, "/"))) {
        continue;
      }
      parents.insert(u.parent);
    }
  }
  // A parent inside another: the outer one's child on the way to it is an
  // inner parent's subtree, decided there (no target's in the outer one).
  for (const std::string& inner : parents) {
    for (const std::string& outer : parents) {
      if (!absl::StartsWith(inner, absl::StrCat(outer, "/"))) continue;
      const size_t end = inner.find('/', outer.size() + 1);
      const std::string child = inner.substr(0, end);
      units.emplace(child, Unit{child, outer, nullptr});
    }
  }
  // Classified first, registered after: a running workload of a parent
  // registered now is never given the unclassified default.
  std::set<uint64_t> seen;
  std::set<std::string> classified;  // cgroups classified by id now
  for (const auto& [cgroup, u] : units) {
    if (!parents.count(u.parent)) continue;
    struct stat st;
    // On cgroup2 a cgroup's id is its directory's inode number.
    if (stat((options_.cgroup_root + cgroup).c_str(), &st) != 0) continue;
    const uint64_t id = st.st_ino;
    seen.insert(id);
    // The target that selects it; once that target's own program set is
    // attached to the workload's cgroup with every link live, the parent's
    // set stands aside (covered) so nothing is decided twice.
    std::string target;
    bool covered = false;
    if (const int i = u.any == nullptr ? -1 : target_index(*u.any); i >= 0) {
      const control::TargetInfo& t = targets[i];
      target = t.name;
      covered =
          t.hooks_total > 0 && t.hooks_attached == t.hooks_total &&
          std::any_of(t.cgroups.begin(), t.cgroups.end(),
                      [id](const control::CgroupRef& r) { return r.id == id; });
    }
    const std::string want = covered ? kCovered : target;
    auto it = classes_.find(id);
    if (it != classes_.end() && it->second == want) {
      classified.insert(cgroup);
      continue;
    }
    absl::Status s = covered ? engine_.CoverWorkloadCgroup(id)
                             : engine_.ClassifyWorkloadCgroup(id, target);
    if (!s.ok()) {
      problem(absl::StrCat("workload ", cgroup, ": ", s.ToString()));
      continue;
    }
    classes_[id] = want;
    classified.insert(cgroup);
  }
  auto target_of = [&](const workloads::Container& c) {
    const int i = target_index(c);
    return i < 0 ? std::string() : targets[i].name;
  };
  NameCreated(docker_parent.empty() || !parents.count(docker_parent)
                  ? ""
                  : docker_parent,
              created, running, classified, ahead, target_of, problem);
  // Below a watched parent only once classified as what selects it now:
  // were its target's programs gone first, it would pass as covered.
  DetachUnselected(
      targets, running,
      [&](const std::string& cgroup) {
        return !parents.count(ParentOf(cgroup)) || classified.count(cgroup);
      },
      target_of, problem);
  for (const std::string& parent : parents) {
    if (registered_.count(parent)) continue;
    if (absl::Status st =
            engine_.RegisterWorkloadParent(parent, options_.unclassified);
        !st.ok()) {
      problem(absl::StrCat(
          "workloads under ", parent,
          " are not enforced from their first instruction: ", st.ToString()));
      continue;
    }
    registered_.insert(parent);
    if (options_.log) {
      options_.log(absl::StrCat(
          "workload parent ", parent, ": new containers and pods are ",
          options_.unclassified == Engine::WorkloadDefault::kDeny ? "denied"
                                                                  : "audited",
          " until classified"));
    }
  }
  // Selected workloads no watched parent holds: cgroup -> "TARGET: WHO".
  std::map<std::string, std::string> outside;
  for (const auto& [cgroup, u] : units) {
    if (u.any == nullptr || registered_.count(u.parent)) continue;
    if (const int i = target_index(*u.any); i >= 0) {
      outside[cgroup] = absl::StrCat("container ", u.any->name, " (",
                                     workloads::ShortId(u.any->id),
                                     ") of target ", targets[i].name);
    }
  }
  LogOutside(outside);
  {
    // What NameAhead names by until the next pass.
    std::lock_guard<std::mutex> ahead_lock(ahead_mu_);
    ahead_parent_ = registered_.count(docker_parent) ? docker_parent : "";
    ahead_targets_.clear();
    for (size_t i = 0; i < targets.size(); ++i) {
      ahead_targets_.emplace_back(targets[i].id, selects[i]);
    }
    ahead_skips_from_event_ = reads_unknown_labels;
    pass_named_.clear();
    for (const auto& [key, target] : named_) pass_named_.insert(key.second);
  }
  std::set<std::string> guarded = registered_;
  if (!options_.parent.empty()) guarded.insert(options_.parent);
  workloads_.SetWorkloadParents(std::move(guarded));
  for (auto it = classes_.begin(); it != classes_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    engine_.ForgetWorkloadCgroup(it->first).IgnoreError();
    it = classes_.erase(it);
  }
}

void WorkloadClasses::NameAhead() {
  std::lock_guard<std::mutex> lock(ahead_mu_);
  if (ahead_parent_.empty()) return;
  const bool slice = absl::EndsWith(ahead_parent_, ".slice");
  for (const workloads::Container& c : workloads_.Created()) {
    if (IsPod(c) || c.id.empty() || (ahead_skips_from_event_ && c.from_event)) {
      continue;
    }
    const std::string name =
        slice ? absl::StrCat("docker-", c.id, ".scope") : c.id;
    if (pass_named_.count(name) || ahead_.count({ahead_parent_, name}) ||
        pass_named_.size() + ahead_.size() >= kMaxNamedContainers) {
      continue;
    }
    uint32_t target_id = 0;  // no target's
    for (const auto& [id, selects] : ahead_targets_) {
      if (selects(c)) {
        target_id = id;
        break;
      }
    }
    // AlreadyExists: named by a pass or a target meanwhile; the pass decides.
    if (engine_.NameWorkloadChildAhead(ahead_parent_, name, target_id).ok()) {
      ahead_.insert({ahead_parent_, name});
    }
  }
}

void WorkloadClasses::DetachUnselected(
    const std::vector<control::TargetInfo>& targets,
    const std::vector<workloads::Container>& running,
    const std::function<bool(const std::string&)>& settled,
    const std::function<std::string(const workloads::Container&)>& target_of,
    const std::function<void(const std::string&)>& problem) {
  // Each running workload's cgroup (a pod's is shared: one container of it
  // names it) and its id. Only workloads the runtime lists as running now:
  // a runtime that answers nothing lifts nothing.
  std::map<std::string, const workloads::Container*> by_cgroup;
  for (const workloads::Container& c : running) {
    if (!c.running || c.cgroup.empty()) continue;
    by_cgroup.emplace(workloads::WorkloadCgroup(c), &c);
  }
  std::map<std::string, uint64_t> ids;
  for (const auto& [cgroup, c] : by_cgroup) {
    struct stat st;
    if (!settled(cgroup) ||
        stat((options_.cgroup_root + cgroup).c_str(), &st) != 0) {
      continue;
    }
    ids[cgroup] = st.st_ino;  // a cgroup2 cgroup's id is its inode number
  }
  if (ids.empty()) return;
  for (const control::TargetInfo& t : targets) {
    std::set<std::string> selected;
    for (const workloads::Container& c :
         workloads::SelectContainers(t.source, t.source_value, running)) {
      selected.insert(workloads::WorkloadCgroup(c));
    }
    std::map<uint64_t, std::string> unselected;
    for (const auto& [cgroup, id] : ids) {
      if (!selected.count(cgroup)) unselected[id] = cgroup;
    }
    if (unselected.empty()) continue;
    absl::StatusOr<std::vector<std::string>> detached =
        engine_.DetachWorkloadCgroups(t.name, unselected);
    if (!detached.ok()) {
      problem(absl::StrCat("target ", t.name,
                           ": cannot detach from the workloads it no longer "
                           "selects: ",
                           detached.status().ToString()));
      continue;
    }
    if (!options_.log) continue;
    for (const std::string& cgroup : *detached) {
      const workloads::Container& c = *by_cgroup[cgroup];
      const std::string now = target_of(c);
      options_.log(absl::StrCat(
          "target ", t.name, ": detached from ", cgroup, " (",
          IsPod(c) ? absl::StrCat("pod ", c.pod_namespace, "/", c.pod_name)
                   : absl::StrCat("container ", c.name, " (",
                                  workloads::ShortId(c.id), ")"),
          "): the target no longer selects it; ",
          now.empty() ? "no target selects it now: it passes"
                      : absl::StrCat("it is target ", now, "'s now")));
    }
  }
}

void WorkloadClasses::LogOutside(
    const std::map<std::string, std::string>& selected) {
  std::set<std::string> now;
  for (const auto& [cgroup, who] : selected) {
    now.insert(cgroup);
    if (outside_.count(cgroup) || !options_.log) continue;
    options_.log(absl::StrCat(
        who, " runs in ", cgroup,
        ", outside every watched workload parent: its first instructions are "
        "not enforced, only what it does once egressd has seen it start"));
  }
  outside_ = std::move(now);
}

void WorkloadClasses::LogNotPods(
    const std::vector<workloads::Container>& running) {
  std::set<std::string> now;
  for (const workloads::Container& c : running) {
    if (c.not_pod.empty()) continue;
    now.insert(c.id);
    if (not_pods_.count(c.id) || !options_.log) continue;
    options_.log(absl::StrCat(
        "container ", c.name, " (", workloads::ShortId(c.id),
        ") carries the pod labels of ", c.not_pod, " but its cgroup ", c.cgroup,
        " is not in a pod cgroup: it is no pod, and no pod target selects it"));
  }
  not_pods_ = std::move(now);
}

void WorkloadClasses::NameCreated(
    const std::string& docker_parent,
    const std::vector<workloads::Container>& created,
    const std::vector<workloads::Container>& running,
    const std::set<std::string>& classified,
    const std::set<std::pair<std::string, std::string>>& ahead,
    const std::function<std::string(const workloads::Container&)>& target_of,
    const std::function<void(const std::string&)>& problem) {
  // The cgroup a container will have: <parent>/<id> (the cgroupfs driver),
  // docker-<id>.scope in a slice given as --container_parent (systemd's).
  const bool slice = absl::EndsWith(docker_parent, ".slice");
  std::map<std::pair<std::string, std::string>, std::string> want;
  if (!docker_parent.empty()) {
    for (const workloads::Container& c : created) {
      if (IsPod(c) || c.id.empty()) continue;
      if (want.size() >= kMaxNamedContainers) {
        problem(
            absl::StrCat("more than ", kMaxNamedContainers,
                         " containers exist without running: the others are "
                         "classified once seen running, not from their first "
                         "instruction"));
        break;
      }
      want[{docker_parent, slice ? absl::StrCat("docker-", c.id, ".scope")
                                 : c.id}] = target_of(c);
    }
  }
  for (const auto& [key, target] : want) {
    auto it = named_.find(key);
    if (it != named_.end() && it->second == target) continue;
    if (absl::Status s =
            engine_.NameWorkloadChild(key.first, key.second, target);
        !s.ok()) {
      problem(
          absl::StrCat("container ", key.second, " under ", key.first,
                       " is not classified before it starts: ", s.ToString()));
      continue;
    }
    named_[key] = target;
  }
  // A name no longer wanted goes once the container is gone, or runs and
  // is classified by its cgroup's id (read first): until then it still
  // decides for the container's first instructions. A container stopped
  // again is named again, so `docker start` is covered the same way.
  std::set<std::string> running_cgroups;
  for (const workloads::Container& c : running) {
    running_cgroups.insert(c.cgroup);
  }
  // Names written ahead (before `created` was read): taken over by the
  // writes above (named_ has them), or no longer wanted (the container is
  // gone, or runs): forgotten as a name of named_ would be. One written
  // since may be of a container `created` misses: the next pass decides.
  std::set<std::pair<std::string, std::string>> settled;
  for (const auto& key : ahead) {
    if (named_.count(key)) {
      settled.insert(key);
      continue;
    }
    if (want.count(key)) continue;  // its write failed: retried next pass
    const std::string cgroup = absl::StrCat(key.first, "/", key.second);
    if (running_cgroups.count(cgroup) && !classified.count(cgroup)) continue;
    if (engine_.ForgetWorkloadChildName(key.first, key.second).ok()) {
      settled.insert(key);
    }
  }
  {
    std::lock_guard<std::mutex> lock(ahead_mu_);
    for (const auto& key : settled) ahead_.erase(key);
  }
  for (auto it = named_.begin(); it != named_.end();) {
    const std::string cgroup =
        absl::StrCat(it->first.first, "/", it->first.second);
    if (want.count(it->first) ||
        (running_cgroups.count(cgroup) && !classified.count(cgroup))) {
      ++it;
      continue;
    }
    engine_.ForgetWorkloadChildName(it->first.first, it->first.second)
        .IgnoreError();
    it = named_.erase(it);
  }
}

}  // namespace egress
