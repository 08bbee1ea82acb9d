// egressd's side of targets that select containers: the Docker watcher, the
// seam that gives the engine each such target's cgroups now, and the
// identity (name, short id, image) of the container behind a record's
// cgroup, remembered by cgroup id so that records of a container that has
// exited still name it.
#ifndef EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_
#define EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "userspace/daemon/state.h"
#include "userspace/events/event_json.h"
#include "userspace/workloads/docker_watcher.h"

namespace egress {

class WorkloadTargets {
 public:
  // `docker_socket` "" = no runtime: workload targets select nothing and
  // say so in status.
  WorkloadTargets(std::string docker_socket, std::string cgroup_root);
  ~WorkloadTargets();  // stops the watcher

  // Starts following the runtime; `changed` runs (on the watcher's thread)
  // after the running containers changed.
  absl::Status Start(std::function<void()> changed,
                     std::function<void(const std::string&)> log);

  // The seam (EngineOptions::workload_cgroups): the cgroups of the running
  // containers `t` selects. The per-socket classification that replaces
  // per-cgroup attachment takes the same answer.
  std::vector<std::string> CgroupsOf(const TargetState& t) const;
  // The running containers (none without a runtime).
  std::vector<workloads::Container> Running() const;
  // The container of a record's cgroup ({} when none is known).
  EventContext::Container ContainerOf(uint64_t cgroup_id,
                                      const std::string& cgroup_path);
  // "" when the runtime is followed; otherwise what a status warning says.
  std::string Problem() const;

 private:
  void Remember();  // the cgroup ids of the running containers

  const std::string docker_socket_, cgroup_root_;
  std::unique_ptr<workloads::DockerWatcher> watcher_;
  mutable std::mutex mu_;
  std::map<uint64_t, EventContext::Container> by_cgroup_id_;
  std::deque<uint64_t> remembered_;  // oldest first, bounded
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_
