#include "userspace/daemon/workload_targets.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/containerd/containerd_watcher.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

// Containers whose records may still be drained after they exit.
constexpr size_t kRememberedCgroups = 4096;

// With every label: ContainerOf keeps those a record's target selects by.
EventContext::Container IdentityOf(const workloads::Container& c) {
  return {c.name,     workloads::ShortId(c.id),
          c.image,    c.pod_namespace,
          c.pod_name, c.labels};
}

// What status and the log say of a container target whose value names
// several of `containers` ("" when it names one or none).
std::string AmbiguityText(const std::string& value,
                          const std::vector<workloads::Container>& containers) {
  const std::vector<workloads::Container> named =
      workloads::AmbiguousContainers(policy::TargetSource::kContainer, value,
                                     containers);
  if (named.empty()) return "";
  std::string who;
  bool exact = false;
  for (const workloads::Container& c : named) {
    absl::StrAppend(&who, who.empty() ? "" : ", ", c.name, " (",
                    workloads::ShortId(c.id), ")");
    exact = exact || c.name == value || c.id == value;
  }
  return absl::StrCat(
      exact ? absl::StrCat("container ", value,
                           " is ambiguous: one container's name or id and "
                           "an id prefix of others")
            : absl::StrCat("id prefix ", value, " is ambiguous"),
      ": it names ", named.size(), " containers: ", who,
      "; the target enforces every one of them (docker would refuse the "
      "prefix); to select one, give its name or a longer id prefix");
}

}  // namespace

WorkloadTargets::WorkloadTargets(Runtimes runtimes, std::string cgroup_root)
    : runtimes_(std::move(runtimes)), cgroup_root_(std::move(cgroup_root)) {}

WorkloadTargets::~WorkloadTargets() {
  // Their threads call back into this object: stopped before it goes.
  docker_.reset();
  podman_.reset();
  containerd_.reset();
}

absl::Status WorkloadTargets::Start(
    std::function<void()> changed,
    std::function<void(const std::string&)> log) {
  auto pid_cgroup = [root =
                         cgroup_root_](int pid) -> absl::StatusOr<std::string> {
    EGRESS_ASSIGN_OR_RETURN(std::string path, CgroupOfPid(pid));
    return NormalizeCgroupPath(path, root);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_ = log;
  }
  auto on_change = [this, changed] {
    Remember();
    if (changed) changed();
  };
  // Docker's Engine API; Podman's service speaks it too.
  auto start_engine_api = [&](const std::string& socket, const char* runtime)
      -> absl::StatusOr<std::unique_ptr<workloads::DockerWatcher>> {
    if (socket.empty()) return nullptr;
    workloads::DockerWatcherOptions o;
    o.socket_path = socket;
    o.runtime = runtime;
    o.pid_cgroup = pid_cgroup;
    o.changed = on_change;
    o.log = log;
    // Docker's create events carry the container's labels; Podman's are
    // not relied on.
    o.labels_in_create_events = std::string(runtime) == "docker";
    return workloads::DockerWatcher::Start(std::move(o));
  };
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<workloads::DockerWatcher> docker,
                          start_engine_api(runtimes_.docker_socket, "docker"));
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<workloads::DockerWatcher> podman,
                          start_engine_api(runtimes_.podman_socket, "podman"));
  std::unique_ptr<containerd::ContainerdWatcher> containerd;
  if (!runtimes_.containerd_socket.empty()) {
    containerd::ContainerdWatcherOptions o;
    o.socket = runtimes_.containerd_socket;
    if (!runtimes_.containerd_namespace.empty()) {
      o.ns = runtimes_.containerd_namespace;
    }
    o.pid_cgroup = pid_cgroup;
    o.changed = on_change;
    o.log = [log, ns = o.ns](const std::string& problem) {
      if (log) log(absl::StrCat("containerd (namespace ", ns, "): ", problem));
    };
    containerd = containerd::ContainerdWatcher::Start(std::move(o));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    docker_ = std::move(docker);
    podman_ = std::move(podman);
    containerd_ = std::move(containerd);
    started_ = true;
  }
  Remember();
  if (changed) changed();
  return absl::OkStatus();
}

std::vector<workloads::Container> WorkloadTargets::AllLocked() const {
  std::vector<workloads::Container> out = RunningLocked();
  for (const workloads::DockerWatcher* w : {docker_.get(), podman_.get()}) {
    if (w == nullptr) continue;
    std::vector<workloads::Container> created = w->Created();
    out.insert(out.end(), std::make_move_iterator(created.begin()),
               std::make_move_iterator(created.end()));
  }
  return out;
}

std::string WorkloadTargets::AmbiguityLocked(const std::string& value,
                                             Look& look) const {
  if (!look.all) look.all = AllLocked();
  return AmbiguityText(value, *look.all);
}

std::vector<workloads::Container> WorkloadTargets::RunningLocked() const {
  std::vector<workloads::Container> out;
  auto add = [&out](std::vector<workloads::Container> more) {
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  };
  if (docker_) add(docker_->Running());
  if (podman_) add(podman_->Running());
  if (containerd_) add(containerd_->Running());
  return out;
}

void WorkloadTargets::BeginPass() {
  std::lock_guard<std::mutex> lock(mu_);
  in_pass_ = true;
  pass_look_.reset();
}

void WorkloadTargets::EndPass() {
  std::lock_guard<std::mutex> lock(mu_);
  in_pass_ = false;
  pass_look_.reset();
}

std::vector<std::string> WorkloadTargets::CgroupsOf(
    const TargetState& t) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<Look> own;
  std::optional<Look>& slot = in_pass_ ? pass_look_ : own;
  if (!slot) slot = Look{RunningLocked(), std::nullopt};
  Look& look = *slot;
  std::vector<std::string> refused;
  std::vector<std::string> out = workloads::SelectWorkloadCgroups(
      t.source, t.source_value, look.running, parents_, &refused);
  std::vector<std::string>& before = refused_[t.name];
  for (const std::string& cgroup : refused) {
    if (log_ &&
        std::find(before.begin(), before.end(), cgroup) == before.end()) {
      log_(absl::StrCat("target ", t.name, ": not attached to ", cgroup,
                        ": it holds a workload parent, so the target's "
                        "policy would decide for every workload below it"));
    }
  }
  if (refused.empty()) {
    refused_.erase(t.name);
  } else {
    before = std::move(refused);
  }
  // Logged once per change of what the prefix names.
  const std::string ambiguous = t.source == policy::TargetSource::kContainer
                                    ? AmbiguityLocked(t.source_value, look)
                                    : "";
  if (ambiguous.empty()) {
    ambiguous_.erase(t.name);
  } else if (ambiguous_[t.name] != ambiguous) {
    ambiguous_[t.name] = ambiguous;
    if (log_) log_(absl::StrCat("target ", t.name, ": ", ambiguous));
  }
  return out;
}

void WorkloadTargets::SetWorkloadParents(std::set<std::string> parents) {
  std::lock_guard<std::mutex> lock(mu_);
  parents_ = std::move(parents);
}

std::vector<std::string> WorkloadTargets::Warnings(
    const std::string& name, policy::TargetSource source,
    const std::string& value) const {
  std::vector<std::string> out;
  if (std::string problem = Problem(source); !problem.empty()) {
    out.push_back(std::move(problem));
  }
  const bool pods = source == policy::TargetSource::kPod ||
                    source == policy::TargetSource::kPodSelector;
  std::lock_guard<std::mutex> lock(mu_);
  if (pods) {
    const workloads::ContainerMatcher selects =
        workloads::MatcherOf(source, value);
    std::vector<workloads::Container> all = RunningLocked();
    if (docker_) {
      std::vector<workloads::Container> created = docker_->Created();
      all.insert(all.end(), created.begin(), created.end());
    }
    for (const workloads::Container& c : all) {
      if (c.not_pod.empty()) continue;
      // Selected if it were the pod its labels name.
      workloads::Container as_pod = c;
      const size_t slash = c.not_pod.find('/');
      as_pod.pod_namespace = c.not_pod.substr(0, slash);
      as_pod.pod_name = c.not_pod.substr(slash + 1);
      if (!selects(as_pod)) continue;
      out.push_back(absl::StrCat(
          "container ", c.name, " (", workloads::ShortId(c.id),
          ") carries the pod labels of ", c.not_pod,
          " but is no pod: its cgroup ", c.cgroup,
          " is not in a pod cgroup (pod<uid>, or kubepods-...-pod<uid>.slice)"
          "; the target does not select it"));
    }
  }
  if (source == policy::TargetSource::kContainer) {
    if (std::string a = AmbiguityText(value, AllLocked()); !a.empty()) {
      out.push_back(std::move(a));
    }
  }
  for (const workloads::Container& c : workloads::SelectedOutsideParents(
           source, value, RunningLocked(), parents_)) {
    out.push_back(absl::StrCat(
        "container ", c.name, " (", workloads::ShortId(c.id), ") runs in ",
        workloads::WorkloadCgroup(c),
        ", outside every watched workload parent: its first instructions "
        "are not enforced, only what it does once egressd has seen it start "
        "(start it below egressd's --container_parent)"));
  }
  if (auto it = refused_.find(name); it != refused_.end()) {
    for (const std::string& cgroup : it->second) {
      out.push_back(absl::StrCat(
          "not attached to ", cgroup,
          ": it holds a workload parent, so the target's policy would decide "
          "for every workload below it"));
    }
  }
  return out;
}

std::vector<workloads::Container> WorkloadTargets::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return RunningLocked();
}

std::vector<workloads::Container> WorkloadTargets::Created() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!docker_) return {};
  return docker_->Created();
}

void WorkloadTargets::Remember() {
  std::lock_guard<std::mutex> lock(mu_);
  // A first change before Start set the watchers is taken when it returns.
  if (!started_) return;
  for (const workloads::Container& c : RunningLocked()) {
    struct stat st;
    // On cgroup2 a cgroup's id is its directory's inode number.
    if (c.cgroup.empty() || stat((cgroup_root_ + c.cgroup).c_str(), &st) != 0) {
      continue;
    }
    const uint64_t id = st.st_ino;
    if (!by_cgroup_id_.count(id)) {
      remembered_.push_back(id);
      if (remembered_.size() > kRememberedCgroups) {
        by_cgroup_id_.erase(remembered_.front());
        remembered_.pop_front();
      }
    }
    by_cgroup_id_[id] = IdentityOf(c);
  }
}

void WorkloadTargets::NameCgroups(
    std::vector<control::CgroupRef>* cgroups) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<workloads::Container> running = RunningLocked();
  for (control::CgroupRef& ref : *cgroups) {
    const workloads::Container* found = nullptr;
    for (const workloads::Container& c : running) {
      if (!c.cgroup.empty() && workloads::WorkloadCgroup(c) == ref.path) {
        found = &c;
        break;
      }
    }
    if (found != nullptr &&
        workloads::WorkloadCgroup(*found) != found->cgroup) {
      // A pod cgroup: shared by the pod's containers, named by the pod.
      ref.pod = control::PodName{found->pod_namespace, found->pod_name};
    } else if (found != nullptr) {
      ref.container = control::ContainerName{
          found->name, workloads::ShortId(found->id), found->image};
    } else if (auto it = by_cgroup_id_.find(ref.id);
               it != by_cgroup_id_.end()) {
      ref.container = control::ContainerName{it->second.name, it->second.id,
                                             it->second.image};
    }
  }
}

void WorkloadTargets::SetSelectorKeys(
    std::map<std::string, std::vector<std::string>> keys) {
  std::lock_guard<std::mutex> lock(mu_);
  // Labels a container known from Docker's create event only cannot have
  // (WorkloadClasses names no such container while a selector reads one):
  // then it is inspected at once, as before create events were read.
  bool hidden = false;
  for (const auto& [target, k] : keys) {
    hidden = hidden || std::count(k.begin(), k.end(), "name") > 0 ||
             std::count(k.begin(), k.end(), "image") > 0;
  }
  if (docker_) docker_->InspectCreated(hidden);
  selector_keys_ = std::move(keys);
}

EventContext::Container WorkloadTargets::ContainerOf(
    uint64_t cgroup_id, const std::string& cgroup_path,
    const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  EventContext::Container out;
  if (auto it = by_cgroup_id_.find(cgroup_id); it != by_cgroup_id_.end()) {
    out = it->second;
  } else if (!cgroup_path.empty()) {
    const std::vector<workloads::Container> running = RunningLocked();
    // A process in a cgroup below the container's own.
    if (auto c = workloads::ContainerOfCgroup(cgroup_path, running)) {
      out = IdentityOf(*c);
    } else {
      // A container of a known pod that the runtime has not listed yet
      // (it started since the last poll): the pod is known.
      for (const workloads::Container& p : running) {
        if (p.pod_name.empty()) continue;
        if (absl::StartsWith(cgroup_path,
                             absl::StrCat(workloads::WorkloadCgroup(p), "/"))) {
          out.pod_namespace = p.pod_namespace;
          out.pod_name = p.pod_name;
          out.labels = p.labels;
          break;
        }
      }
    }
  }
  std::map<std::string, std::string> selected;
  if (auto keys = selector_keys_.find(target); keys != selector_keys_.end()) {
    for (const std::string& key : keys->second) {
      if (auto l = out.labels.find(key); l != out.labels.end()) {
        selected.insert(*l);
      }
    }
  }
  out.labels = std::move(selected);
  return out;
}

std::string WorkloadTargets::Problem(policy::TargetSource source) const {
  const bool pods = source == policy::TargetSource::kPod ||
                    source == policy::TargetSource::kPodSelector;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string docker =
      runtimes_.docker_socket.empty()
          ? "Docker is not followed (egressd --docker_socket)"
      : !docker_ ? "Docker is not followed yet"
      : docker_->Problem().empty()
          ? ""
          : absl::StrCat("Docker cannot be followed: ", docker_->Problem(),
                         " (egressd --docker_socket)");
  const std::string containerd =
      runtimes_.containerd_socket.empty()
          ? "containerd is not followed (egressd --containerd_socket)"
      : !containerd_ ? "containerd is not followed yet"
      : containerd_->Problem().empty()
          ? ""
          : absl::StrCat(
                "containerd cannot be followed: ", containerd_->Problem(),
                " (egressd --containerd_socket)");
  if (pods) {
    // The kubelet runs pods through containerd's CRI, or through
    // cri-dockerd on Docker Engine (pods then come from Docker's API).
    if (containerd.empty() ||
        (!runtimes_.docker_socket.empty() && docker.empty())) {
      return "";
    }
    return runtimes_.docker_socket.empty()
               ? absl::StrCat("pods cannot be found: ", containerd)
               : absl::StrCat("pods cannot be found: ", containerd, "; ",
                              docker);
  }
  const std::string podman =
      runtimes_.podman_socket.empty() ? ""
      : !podman_                      ? "Podman is not followed yet"
      : podman_->Problem().empty()
          ? ""
          : absl::StrCat("Podman cannot be followed: ", podman_->Problem(),
                         " (egressd --podman_socket)");
  // A container may run under any runtime: one that answers will do
  // (containerd's only when neither Docker nor Podman is configured).
  const bool engine_api =
      !runtimes_.docker_socket.empty() || !runtimes_.podman_socket.empty();
  if ((!runtimes_.docker_socket.empty() && docker.empty()) ||
      (!runtimes_.podman_socket.empty() && podman.empty()) ||
      (!engine_api && containerd.empty())) {
    return "";
  }
  if (!engine_api) {
    return "containers cannot be followed: neither Docker nor Podman is "
           "followed (egressd --docker_socket, --podman_socket)";
  }
  if (runtimes_.podman_socket.empty()) {
    return absl::StrCat("containers cannot be followed: ", docker);
  }
  if (runtimes_.docker_socket.empty()) {
    return absl::StrCat("containers cannot be followed: ", podman);
  }
  return absl::StrCat("containers cannot be followed: ", docker, "; ", podman);
}

}  // namespace egress
