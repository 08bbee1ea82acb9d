#include "userspace/containerd/containerd_watcher.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/time/clock.h"
#include "userspace/workloads/cri_pods.h"

namespace egress::containerd {

std::vector<workloads::Container> ToContainers(
    const std::vector<ContainerdContainer>& listed) {
  std::vector<workloads::Container> out;
  out.reserve(listed.size());
  for (const ContainerdContainer& c : listed) {
    workloads::Container w;
    w.id = c.id;
    w.name = c.id;
    w.image = c.image;
    w.labels.insert(c.labels.begin(), c.labels.end());
    w.pid = static_cast<int>(c.pid);
    w.running = c.running;
    out.push_back(std::move(w));
  }
  return out;
}

ContainerdWatcher::ContainerdWatcher(ContainerdWatcherOptions options)
    : options_(std::move(options)),
      client_(options_.socket),
      events_client_(options_.socket) {}

std::unique_ptr<ContainerdWatcher> ContainerdWatcher::Start(
    ContainerdWatcherOptions options) {
  std::unique_ptr<ContainerdWatcher> w(
      new ContainerdWatcher(std::move(options)));
  w->Poll();  // the first view before anyone asks
  w->thread_ = std::thread([raw = w.get()] { raw->Loop(); });
  w->events_thread_ = std::thread([raw = w.get()] { raw->FollowEvents(); });
  return w;
}

ContainerdWatcher::~ContainerdWatcher() {
  stop_.store(true);
  events_client_.CancelSubscribe();
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    wake_.notify_all();
  }
  if (events_thread_.joinable()) events_thread_.join();
  if (thread_.joinable()) thread_.join();
}

void ContainerdWatcher::Wake() {
  std::lock_guard<std::mutex> lock(wake_mu_);
  poll_now_ = true;
  wake_.notify_all();
}

void ContainerdWatcher::FollowEvents() {
  // What changes which containers run, or which exist (a pod's sandbox is
  // made before its task starts).
  static const std::vector<std::string> kTopics = {
      "/tasks/start", "/tasks/exit", "/tasks/delete", "/containers/create",
      "/containers/delete"};
  while (!stop_.load()) {
    // Whatever happened while not subscribed is in the next list.
    Wake();
    // An unreachable containerd is what Poll reports.
    events_client_
        .Subscribe(options_.ns, kTopics, [this](const std::string&) { Wake(); })
        .IgnoreError();
    if (stop_.load()) return;
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::seconds(1),
                   [this] { return stop_.load(); });
  }
}

std::vector<workloads::Container> ContainerdWatcher::Running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

std::string ContainerdWatcher::Problem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problem_;
}

void ContainerdWatcher::Loop() {
  while (!stop_.load()) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll),
                     [this] { return stop_.load() || poll_now_; });
      poll_now_ = false;
    }
    if (!stop_.load()) Poll();
  }
}

void ContainerdWatcher::Poll() {
  absl::StatusOr<std::vector<ContainerdContainer>> listed =
      client_.List(options_.ns);
  std::vector<workloads::Container> now;
  std::string problem;
  if (listed.ok()) {
    std::vector<workloads::Container> all = ToContainers(*listed);
    for (workloads::Container& c : all) {
      if (!c.running || c.pid <= 0 || !options_.pid_cgroup) continue;
      absl::StatusOr<std::string> cg = options_.pid_cgroup(c.pid);
      if (cg.ok()) c.cgroup = *cg;
    }
    // Pod identity, the pod spec's container names and the pods' labels,
    // once the cgroups are known: a pod's container is in a pod cgroup.
    workloads::JoinCriPods(all);
    for (workloads::Container& c : all) {
      if (c.running && c.pid > 0) now.push_back(std::move(c));
    }
    std::sort(now.begin(), now.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
  } else {
    problem = std::string(listed.status().message());
  }
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (problem != problem_ && !problem.empty() && options_.log) {
      options_.log(problem);
    }
    problem_ = problem;
    if (listed.ok() && now != running_) {
      running_ = std::move(now);
      changed = true;
    }
  }
  if (changed && options_.changed) options_.changed();
}

}  // namespace egress::containerd
