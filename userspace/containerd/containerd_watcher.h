// Follows the containers of one containerd namespace (k8s.io for pods) by
// asking containerd's API (ContainerdClient) at once when containerd reports
// a task started or ended or a container made or deleted (its event
// stream), and every `poll` in any case, as
// workloads::Container values: id, name (the pod's container name when CRI
// made it), image, labels (a pod's labels, which CRI puts on its sandbox,
// are given to each of its containers), pod identity, pid and cgroup.
#ifndef EGRESS_USERSPACE_CONTAINERD_CONTAINERD_WATCHER_H_
#define EGRESS_USERSPACE_CONTAINERD_CONTAINERD_WATCHER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/containerd/containerd_client.h"
#include "userspace/workloads/container.h"

namespace egress::containerd {

// containerd's view as workloads::Containers (pure; cgroups left empty, and
// pods not joined: JoinCriPods needs the cgroups).
std::vector<workloads::Container> ToContainers(
    const std::vector<ContainerdContainer>& listed);

struct ContainerdWatcherOptions {
  std::string socket = kDefaultSocket;
  std::string ns = kKubernetesNamespace;
  absl::Duration poll = absl::Milliseconds(500);
  // The cgroup of a process, relative to the cgroup2 mount.
  std::function<absl::StatusOr<std::string>(int pid)> pid_cgroup;
  // Called (on the watcher's thread) after the running set changed.
  std::function<void()> changed;
  std::function<void(const std::string&)> log;
};

class ContainerdWatcher {
 public:
  static std::unique_ptr<ContainerdWatcher> Start(
      ContainerdWatcherOptions options);
  ~ContainerdWatcher();  // stops and joins the thread

  std::vector<workloads::Container> Running() const;
  // "" while containerd answers; otherwise why not.
  std::string Problem() const;

 private:
  explicit ContainerdWatcher(ContainerdWatcherOptions options);
  void Loop();
  void Poll();
  // Subscribes to the namespace's events (again after an error, every
  // second) and wakes Loop on each.
  void FollowEvents();
  void Wake();

  const ContainerdWatcherOptions options_;
  ContainerdClient client_;
  ContainerdClient events_client_;  // its stream blocks: a client of its own
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool poll_now_ = false;  // guarded by wake_mu_
  mutable std::mutex mu_;
  std::vector<workloads::Container> running_;
  std::string problem_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::thread events_thread_;
};

}  // namespace egress::containerd

#endif  // EGRESS_USERSPACE_CONTAINERD_CONTAINERD_WATCHER_H_
