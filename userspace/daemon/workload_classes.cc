#include "userspace/daemon/workload_classes.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
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

}  // namespace

WorkloadClasses::WorkloadClasses(Engine& engine, WorkloadTargets& workloads,
                                 WorkloadClassesOptions options)
    : engine_(engine), workloads_(workloads), options_(std::move(options)) {}

void WorkloadClasses::Update() {
  const std::vector<control::TargetInfo> targets =
      engine_.WorkloadTargetInfos();
  std::lock_guard<std::mutex> lock(mu_);
  if (targets.empty()) {
    // No target selects containers: new ones must not wait for a
    // classification nobody makes.
    if (!registered_.empty()) {
      engine_.UnregisterWorkloadParent(registered_).IgnoreError();
      registered_.clear();
      classes_.clear();
    }
    return;
  }
  const std::vector<workloads::Container> running = workloads_.Running();
  std::string parent = options_.parent;
  if (parent.empty()) {
    for (const workloads::Container& c : running) {
      if (!c.cgroup.empty()) {
        parent = ParentOf(c.cgroup);
        break;
      }
    }
  }
  auto problem = [&](const std::string& p) {
    if (p != last_problem_ && options_.log) options_.log(p);
    last_problem_ = p;
  };
  if (parent.empty() || parent == "/") {
    return;  // no container yet: the parent is not known
  }
  if (options_.parent.empty() && absl::EndsWith(parent, ".slice")) {
    problem(absl::StrCat(
        "containers run in ", parent,
        " (the systemd cgroup driver): a container is enforced once egressd "
        "has seen it start, not from its first instruction; give dockerd a "
        "--cgroup-parent of its own and egressd --container_parent"));
    return;
  }
  if (registered_ != parent) {
    if (absl::Status st =
            engine_.RegisterWorkloadParent(parent, options_.unclassified);
        !st.ok()) {
      problem(absl::StrCat(
          "containers under ", parent,
          " are not enforced from their first instruction: ", st.ToString()));
      return;
    }
    registered_ = parent;
    classes_.clear();
    if (options_.log) {
      options_.log(absl::StrCat(
          "container parent ", parent, ": new containers are ",
          options_.unclassified == Engine::WorkloadDefault::kDeny ? "denied"
                                                                  : "audited",
          " until classified"));
    }
  }
  std::set<uint64_t> seen;
  for (const workloads::Container& c : running) {
    if (c.cgroup.empty() || ParentOf(c.cgroup) != parent) continue;
    struct stat st;
    // On cgroup2 a cgroup's id is its directory's inode number.
    if (stat((options_.cgroup_root + c.cgroup).c_str(), &st) != 0) continue;
    const uint64_t id = st.st_ino;
    seen.insert(id);
    // The target that selects it; once that target's own program set is
    // attached to the container's cgroup with every link live, the parent's
    // set stands aside (covered) so nothing is decided twice.
    std::string target;
    bool covered = false;
    for (const control::TargetInfo& t : targets) {
      if (workloads::SelectContainers(t.source, t.source_value, {c}).empty()) {
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
      problem(absl::StrCat("container ", c.name, ": ", s.ToString()));
      continue;
    }
    classes_[id] = want;
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
