#include "userspace/daemon/workload_targets.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

// Containers whose records may still be drained after they exit.
constexpr size_t kRememberedCgroups = 4096;

}  // namespace

WorkloadTargets::WorkloadTargets(std::string docker_socket,
                                 std::string cgroup_root)
    : docker_socket_(std::move(docker_socket)),
      cgroup_root_(std::move(cgroup_root)) {}

WorkloadTargets::~WorkloadTargets() { watcher_.reset(); }

absl::Status WorkloadTargets::Start(
    std::function<void()> changed,
    std::function<void(const std::string&)> log) {
  if (docker_socket_.empty()) return absl::OkStatus();
  workloads::DockerWatcherOptions o;
  o.socket_path = docker_socket_;
  o.pid_cgroup = [root = cgroup_root_](int pid) -> absl::StatusOr<std::string> {
    EGRESS_ASSIGN_OR_RETURN(std::string path, CgroupOfPid(pid));
    return NormalizeCgroupPath(path, root);
  };
  o.changed = [this, changed] {
    Remember();
    if (changed) changed();
  };
  o.log = std::move(log);
  EGRESS_ASSIGN_OR_RETURN(auto watcher,
                          workloads::DockerWatcher::Start(std::move(o)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    watcher_ = std::move(watcher);
  }
  Remember();
  if (changed) changed();
  return absl::OkStatus();
}

std::vector<std::string> WorkloadTargets::CgroupsOf(
    const TargetState& t) const {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(mu_);
  if (!watcher_) return out;
  for (const workloads::Container& c : workloads::SelectContainers(
           t.source, t.source_value, watcher_->Running())) {
    out.push_back(c.cgroup);
  }
  return out;
}

std::vector<workloads::Container> WorkloadTargets::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!watcher_) return {};
  return watcher_->Running();
}

void WorkloadTargets::Remember() {
  workloads::DockerWatcher* watcher;
  {
    std::lock_guard<std::mutex> lock(mu_);
    watcher = watcher_.get();
  }
  // A first change before Start set watcher_ is taken when it returns.
  if (watcher == nullptr) return;
  std::vector<workloads::Container> running = watcher->Running();
  std::lock_guard<std::mutex> lock(mu_);
  for (const workloads::Container& c : running) {
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
    by_cgroup_id_[id] = {c.name, workloads::ShortId(c.id), c.image};
  }
}

EventContext::Container WorkloadTargets::ContainerOf(
    uint64_t cgroup_id, const std::string& cgroup_path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_cgroup_id_.find(cgroup_id); it != by_cgroup_id_.end()) {
    return it->second;
  }
  // A process in a cgroup below the container's own.
  if (watcher_ && !cgroup_path.empty()) {
    if (auto c =
            workloads::ContainerOfCgroup(cgroup_path, watcher_->Running())) {
      return {c->name, workloads::ShortId(c->id), c->image};
    }
  }
  return {};
}

std::string WorkloadTargets::Problem() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (docker_socket_.empty()) {
    return "no container runtime is configured (egressd --docker_socket)";
  }
  if (!watcher_) return "the container runtime is not followed yet";
  std::string problem = watcher_->Problem();
  if (problem.empty()) return "";
  return absl::StrCat("containers cannot be followed: ", problem,
                      " (egressd --docker_socket)");
}

}  // namespace egress
