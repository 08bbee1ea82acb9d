// egressd's side of targets that select containers and pods: the runtimes
// followed (Docker's Engine API, and Podman's Docker-compatible one;
// containerd's, whose k8s.io namespace holds what the kubelet's CRI made), the
// seam that gives the engine each such target's cgroups now, and the identity
// (name, short id, image, pod) of the container behind a record's cgroup,
// remembered by cgroup id so that records of a container that has exited still
// name it.
#ifndef EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_
#define EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/state.h"
#include "userspace/events/event_json.h"
#include "userspace/policy/vocabulary.h"
#include "userspace/workloads/docker_watcher.h"

namespace egress::containerd {
class ContainerdWatcher;
}  // namespace egress::containerd

namespace egress {

class WorkloadTargets {
 public:
  struct Runtimes {
    std::string docker_socket;      // "" = Docker is not followed
    std::string containerd_socket;  // "" = containerd is not followed
    std::string containerd_namespace;
    std::string podman_socket;  // "" = Podman is not followed
  };
  // With no runtime, workload targets select nothing and say so in status.
  WorkloadTargets(Runtimes runtimes, std::string cgroup_root);
  ~WorkloadTargets();  // stops the watchers

  // Starts following the runtimes; `changed` runs (on a watcher's thread)
  // after the running containers changed.
  absl::Status Start(std::function<void()> changed,
                     std::function<void(const std::string&)> log);

  // The seam (EngineOptions::workload_cgroups): the cgroups of the running
  // containers `t` selects. The per-socket classification that replaces
  // per-cgroup attachment takes the same answer.
  std::vector<std::string> CgroupsOf(const TargetState& t) const;
  // Around a reconcile pass (EngineOptions::workload_pass_begin/_end):
  // CgroupsOf answers every target of the pass from one look at the
  // runtimes, taken when the first target asks, instead of copying every
  // container once per target.
  void BeginPass();
  void EndPass();
  // The running containers of every runtime (none without a runtime).
  std::vector<workloads::Container> Running() const;
  // Docker's containers that exist but do not run (created, or exited):
  // they may start any moment (DockerWatcher::Created).
  std::vector<workloads::Container> Created() const;
  // The container of a record's cgroup ({} when none is known), with the
  // labels that `target` selects by (SetSelectorKeys).
  EventContext::Container ContainerOf(uint64_t cgroup_id,
                                      const std::string& cgroup_path,
                                      const std::string& target);
  // Names the workload behind each cgroup of a workload target, as `docker
  // ps` does (control::CgroupRef::container: name, short id, image), or the
  // pod whose pod cgroup it is (::pod), from the running containers, else
  // from the identity remembered for the cgroup's id (a container that
  // exited and whose cgroup is still there). Left unnamed when neither
  // knows it.
  void NameCgroups(std::vector<control::CgroupRef>* cgroups) const;
  // The label keys each selecting target names (target name -> keys),
  // as WorkloadClasses last saw the targets.
  void SetSelectorKeys(std::map<std::string, std::vector<std::string>> keys);
  // "" when a runtime that can run what a target of `source` names is
  // followed (pods: containerd; containers: Docker, Podman or containerd);
  // otherwise what a status warning says.
  std::string Problem(policy::TargetSource source) const;
  // The status warnings of target `name` (selecting by `source`, `value`):
  // Problem(source), each container that carries the pod labels of a pod
  // the target selects but is no pod (its cgroup is no pod cgroup), and
  // each cgroup not attached to because it holds a workload parent, and
  // each selected container outside the watched workload parents
  // (workloads::SelectedOutsideParents), and a container value that names
  // several containers (workloads::AmbiguousContainers).
  std::vector<std::string> Warnings(const std::string& name,
                                    policy::TargetSource source,
                                    const std::string& value) const;
  // The workload parents WorkloadClasses watches (and --container_parent):
  // no target is ever attached to one or to a cgroup above one
  // (workloads::HoldsWorkloadParent).
  void SetWorkloadParents(std::set<std::string> parents);

 private:
  void Remember();  // the cgroup ids of the running containers
  std::vector<workloads::Container> RunningLocked() const;
  // RunningLocked, and Docker's and Podman's containers that do not run.
  std::vector<workloads::Container> AllLocked() const;
  // What CgroupsOf reads: the running containers, and every container
  // (AllLocked) once a container target asks whether its value names
  // several.
  struct Look {
    std::vector<workloads::Container> running;
    std::optional<std::vector<workloads::Container>> all;
  };
  // The ambiguity text (AmbiguityText) of a container value over look.all.
  std::string AmbiguityLocked(const std::string& value, Look& look) const;

  const Runtimes runtimes_;
  const std::string cgroup_root_;
  std::unique_ptr<workloads::DockerWatcher> docker_;
  std::unique_ptr<workloads::DockerWatcher> podman_;  // the same API
  std::unique_ptr<containerd::ContainerdWatcher> containerd_;
  bool started_ = false;
  mutable std::mutex mu_;
  std::map<uint64_t, EventContext::Container> by_cgroup_id_;  // all labels
  std::map<std::string, std::vector<std::string>> selector_keys_;
  std::deque<uint64_t> remembered_;  // oldest first, bounded
  std::set<std::string> parents_;    // SetWorkloadParents
  std::function<void(const std::string&)> log_;
  // By target: the cgroups CgroupsOf left out (HoldsWorkloadParent).
  mutable std::map<std::string, std::vector<std::string>> refused_;
  // By target: what CgroupsOf last logged of an ambiguous container value.
  mutable std::map<std::string, std::string> ambiguous_;
  // During a pass (BeginPass): its look, once a target asked.
  bool in_pass_ = false;
  mutable std::optional<Look> pass_look_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_WORKLOAD_TARGETS_H_
