// Follows the containers of a Docker Engine over its API socket: lists and
// inspects them at start, then follows /events (create, start, die,
// destroy, rename), so a target naming a container by name or labels finds
// it again after `docker restart`, after `docker rm -f web && docker run
// --name web` and after `docker rename`. Containers that exist but do not run
// (created, or exited) are kept apart: with the cgroupfs driver their cgroup's
// name is known before they start (their id), so they can be classified by name
// from their first instruction on: a created container is taken from Docker's
// create event itself, ahead of any inspect, as Docker does not wait for
// egressd before starting it. One thread reads the events and nothing else,
// so a create is taken the moment Docker sends it; the containers events name
// are inspected from a queue by a few inspectors at once (Docker answers an
// inspect of a container only once a start or an exit under way ends: one
// slow answer holds up neither the events nor the other inspects). Podman's
// Docker-compatible API (`podman system service`) is followed the same way,
// its created containers inspected (its events are not relied on for
// labels). Reconnects every second while the socket is missing or the
// runtime is down.
#ifndef EGRESS_USERSPACE_WORKLOADS_DOCKER_WATCHER_H_
#define EGRESS_USERSPACE_WORKLOADS_DOCKER_WATCHER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"
#include "userspace/workloads/container.h"
#include "userspace/workloads/inspect_queue.h"

namespace egress::workloads {

struct ContainerEvent;
class UnixLineStream;

struct DockerWatcherOptions {
  std::string socket_path = "/run/docker.sock";
  // The runtime's name in log lines ("docker", "podman").
  std::string runtime = "docker";
  // The cgroup of a process, relative to the cgroup2 mount.
  std::function<absl::StatusOr<std::string>(int pid)> pid_cgroup;
  // Called (from the watcher's threads, maybe several at once) after the
  // set of running or created containers changed; it must not block long.
  std::function<void()> changed;
  std::function<void(const std::string&)> log;
  // The runtime's create events carry the container's labels (Docker's
  // do): a created container is known from its event at once, before its
  // inspect, so that it can be classified before it starts.
  bool labels_in_create_events = false;
};

class DockerWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<DockerWatcher>> Start(
      DockerWatcherOptions options);
  ~DockerWatcher();  // stops and joins the threads

  // The running containers as last seen.
  std::vector<Container> Running() const;
  // The containers that exist but do not run (created and not started yet,
  // or exited; `running` false, no pid, no cgroup) as last seen.
  std::vector<Container> Created() const;
  // "" while connected; otherwise why not ("cannot connect to ...").
  std::string Problem() const;
  const std::string& socket_path() const { return options_.socket_path; }
  // Whether a container taken from its create event is inspected too, as
  // the others: while a target selects by a label `name` or `image`,
  // which the event cannot tell (ContainerEvent).
  void InspectCreated(bool inspect) { inspect_created_.store(inspect); }

 private:
  explicit DockerWatcher(DockerWatcherOptions options);
  void Loop();
  // One connection: list, then follow events until it breaks or stop.
  absl::Status Follow();
  absl::StatusOr<Container> Inspect(const std::string& id) const;
  // The running (or only existing) containers, CRI pods joined (cri_pods.h).
  std::vector<Container> Listed(bool running) const;
  // Takes lines of /events: a container they create is taken from its
  // event (labels_in_create_events) and changed() called at once; each
  // other container they name is queued for an inspector.
  void Take(const std::vector<std::string>& lines);
  // A container created_ gets from its create event; true when new.
  bool TakeCreated(const ContainerEvent& e);
  // An inspector: inspects what the queue holds until stop, applying each
  // answer to running_ and created_ and calling changed().
  void InspectLoop();
  void SetProblem(const std::string& problem);
  bool WaitStop(int ms);

  const DockerWatcherOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Container> running_;  // by id
  std::map<std::string, Container> created_;  // by id, not running
  std::string problem_;
  // Bumped (under mu_ and queue_mu_) when a connection lists anew: an
  // inspect taken before is not applied (the list is newer).
  std::atomic<uint64_t> generation_{0};
  std::mutex queue_mu_;  // taken before mu_ when both are
  std::condition_variable queue_cv_;
  InspectQueue inspects_;
  UniqueFd wake_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> inspect_created_{false};
  std::thread thread_;                   // reads the events
  std::vector<std::thread> inspectors_;  // kInspectors
};

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_DOCKER_WATCHER_H_
