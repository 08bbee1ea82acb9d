// Containers and pods enforced from their first instruction: the parents of
// their cgroups are workload parents (Engine::RegisterWorkloadParent), each
// watched by one program set that decides for every child cgroup; a child
// egressd has not classified yet gets the operator's default (deny, or
// audit), also while egressd is down. Here every running workload's cgroup
// (a pod's, shared by its containers, or a lone container's) is classified
// as the target that selects it, or as no target's (it then passes).
//
// Docker's parent is --container_parent, or else the parent of the running
// containers' cgroups (the cgroupfs driver: /docker, or dockerd's
// --cgroup-parent). A systemd slice is never taken on its own for Docker:
// the default would then hold every unit started in it. A pod's parent is
// that of its pod cgroup (kubepods, kubepods/burstable, or the kubepods
// slices, which hold pods only), and kubepods above a QoS class's cgroup; a
// parent nested in another (burstable in kubepods) is classified as no
// target's in the outer one, while a QoS class with no pod seen yet stays
// unclassified there (its first pod gets the default until classified). A
// container deeper below Docker's parent (`docker run --cgroup-parent
// <parent>/team1`) makes its own parent an inner parent the same way: it is
// not named ahead (below), so its first instructions get the default until
// egressd has seen it start. Parents stay registered while any target
// selects workloads: a workload started later is enforced from its first
// instruction. Nothing is registered until a target selects containers or
// pods.
//
// A Docker container is classified by name too, from its `create` on: its
// cgroup will be the Docker parent's child named by its id (cgroupfs), so
// the watch instance knows it from its mkdir on instead of from the moment
// egressd has seen it start. The name stays while the container exists and
// does not run, and until its running cgroup is classified by id. It is
// known from Docker's create event alone (Container::from_event), which
// cannot tell its labels `name` and `image`: while a selector reads either,
// such a container is named only once inspected (it starts unclassified).
// A container just created is named at once, ahead of the next pass
// (NameAhead, from the watcher's thread), as the last pass's targets select
// it: a pass may wait seconds for the kernel's cgroup lock in a burst of
// container starts, and Docker starts a container in milliseconds.
#ifndef EGRESS_USERSPACE_DAEMON_WORKLOAD_CLASSES_H_
#define EGRESS_USERSPACE_DAEMON_WORKLOAD_CLASSES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "userspace/daemon/engine.h"
#include "userspace/daemon/workload_targets.h"
#include "userspace/workloads/selection.h"

namespace egress {

struct WorkloadClassesOptions {
  std::string cgroup_root;  // the cgroup2 mount
  std::string parent;       // --container_parent; "" = from the containers
  Engine::WorkloadDefault unclassified = Engine::WorkloadDefault::kDeny;
  std::function<void(const std::string&)> log;
};

class WorkloadClasses {
 public:
  WorkloadClasses(Engine& engine, WorkloadTargets& workloads,
                  WorkloadClassesOptions options);

  // Brings the classification in line with the running containers and the
  // targets; thread-safe, cheap when nothing changed (the reconciler calls
  // it on every pass).
  void Update();
  // Names each created container no pass has named yet as the last pass's
  // targets select it (Engine::NameWorkloadChildAhead), without waiting for
  // a pass; thread-safe, cheap. The next pass takes the names over.
  void NameAhead();

 private:
  // Names each created, not running Docker container's cgroup-to-be under
  // `docker_parent` ("" = none registered) as the target selecting it, and
  // forgets names no longer needed, of those written `ahead` too (mu_
  // held).
  void NameCreated(
      const std::string& docker_parent,
      const std::vector<workloads::Container>& created,
      const std::vector<workloads::Container>& running,
      const std::set<std::string>& classified,
      const std::set<std::pair<std::string, std::string>>& ahead,
      const std::function<std::string(const workloads::Container&)>& target_of,
      const std::function<void(const std::string&)>& problem);

  // Detaches each target's own program set from the running workloads it
  // no longer selects (a container renamed away from a name target's name,
  // relabelled out of a selector), once `settled` holds for the workload's
  // cgroup: classified by now as what selects it now (mu_ held).
  void DetachUnselected(
      const std::vector<control::TargetInfo>& targets,
      const std::vector<workloads::Container>& running,
      const std::function<bool(const std::string&)>& settled,
      const std::function<std::string(const workloads::Container&)>& target_of,
      const std::function<void(const std::string&)>& problem);

  // Logs, once each, the running containers that carry CRI's pod labels
  // but are no pod (workloads::Container::not_pod) (mu_ held).
  void LogNotPods(const std::vector<workloads::Container>& running);

  // Logs, once each, the running workloads a target selects whose parent is
  // not watched (not in registered_): enforced only once seen (mu_ held).
  void LogOutside(const std::map<std::string, std::string>& selected);

  Engine& engine_;
  WorkloadTargets& workloads_;
  const WorkloadClassesOptions options_;
  std::mutex mu_;
  std::set<std::string> registered_;  // the parents registered
  // cgroup id -> target ("" none, or kCovered in the .cc)
  std::map<uint64_t, std::string> classes_;
  // {parent, child name} -> target ("" none) of the names written ahead.
  std::map<std::pair<std::string, std::string>, std::string> named_;
  // What NameAhead names by, as the last pass left it (ahead_mu_): Docker's
  // watched parent ("" none), the targets in order (id, selection), whether
  // containers known from their create event only wait for their inspect,
  // the names the pass wrote, and the names written ahead since.
  std::mutex ahead_mu_;
  std::string ahead_parent_;
  std::vector<std::pair<uint32_t, workloads::ContainerMatcher>> ahead_targets_;
  bool ahead_skips_from_event_ = false;
  std::set<std::string> pass_named_;
  std::set<std::pair<std::string, std::string>> ahead_;
  std::string last_problem_;        // logged once
  std::set<std::string> not_pods_;  // ids of the not_pod containers logged
  std::set<std::string> outside_;   // cgroups LogOutside logged
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_WORKLOAD_CLASSES_H_
