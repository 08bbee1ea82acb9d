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
    return;
  }
  auto problem = [&](const std::string& p) {
    if (p != last_problem_ && options_.log) options_.log(p);
    last_problem_ = p;
  };
  std::map<std::string, std::vector<std::string>> keys;
  for (const control::TargetInfo& t : targets) {
    std::vector<std::string> k =
        workloads::SelectorKeys(t.source, t.source_value);
    if (!k.empty()) keys[t.name] = std::move(k);
  }
  workloads_.SetSelectorKeys(std::move(keys));
  const std::vector<workloads::Container> running = workloads_.Running();
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
    for (const control::TargetInfo& t : targets) {
      if (u.any == nullptr ||
          workloads::SelectContainers(t.source, t.source_value, {*u.any})
              .empty()) {
        continue;
      }
      target = t.name;
      covered =
          t.hooks_total > 0 && t.hooks_attached == t.hooks_total &&
          std::any_of(t.cgroups.begin(), t.cgroups.end(),
                      [id](const control::CgroupRef& r) { return r.id == id; });
      break;
    }
    const std::string want = covered ? kCovered : target;
    auto it = classes_.find(id);
    if (it != classes_.end() && it->second == want) continue;
    absl::Status s = covered ? engine_.CoverWorkloadCgroup(id)
                             : engine_.ClassifyWorkloadCgroup(id, target);
    if (!s.ok()) {
      problem(absl::StrCat("workload ", cgroup, ": ", s.ToString()));
      continue;
    }
    classes_[id] = want;
  }
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
  for (auto it = classes_.begin(); it != classes_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    engine_.ForgetWorkloadCgroup(it->first).IgnoreError();
    it = classes_.erase(it);
  }
}

}  // namespace egress
