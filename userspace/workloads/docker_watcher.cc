#include "userspace/workloads/docker_watcher.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/workloads/cri_pods.h"
#include "userspace/workloads/docker_json.h"
#include "userspace/workloads/unix_http.h"

namespace egress::workloads {
namespace {

constexpr int kRetryMs = 1000;
// How long the list waits for the head of /events (see Follow).
constexpr int kHeadWaitMs = 500;
// Only container events, and only those that change what exists or runs,
// or a name a target may select by (rename):
// {"type":["container"],"event":["create","start","die","destroy","stop",
// "rename"]}.
constexpr const char* kEventsTarget =
    "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B"
    "%22create%22%2C%22start%22%2C%22die%22%2C%22destroy%22%2C%22stop%22%2C"
    "%22rename%22%5D%7D";
// Every container, running or not.
constexpr const char* kListTarget = "/containers/json?all=1";
// Inspects under way at once: enough that a few slow answers (a container
// whose start is under way) hold up none of the others, few enough that a
// burst does not load Docker with a request per event at once.
constexpr int kInspectors = 4;

}  // namespace

DockerWatcher::DockerWatcher(DockerWatcherOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<DockerWatcher>> DockerWatcher::Start(
    DockerWatcherOptions options) {
  auto w =
      std::unique_ptr<DockerWatcher>(new DockerWatcher(std::move(options)));
  w->wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!w->wake_) return ErrnoStatus(errno, "eventfd");
  w->problem_ =
      absl::StrCat("not connected to ", w->options_.socket_path, " yet");
  auto start = [self = w.get()](void (DockerWatcher::*loop)()) {
    return std::thread([self, loop] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      (self->*loop)();
    });
  };
  for (int i = 0; i < kInspectors; ++i) {
    w->inspectors_.push_back(start(&DockerWatcher::InspectLoop));
  }
  w->thread_ = start(&DockerWatcher::Loop);
  return w;
}

DockerWatcher::~DockerWatcher() {
  stop_.store(true);
  uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    // EAGAIN only: a wake-up is pending anyway.
  }
  {
    // Under the lock: an inspector between its check and its wait still
    // hears it.
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  for (std::thread& t : inspectors_) t.join();
}

std::vector<Container> DockerWatcher::Running() const { return Listed(true); }

std::vector<Container> DockerWatcher::Created() const { return Listed(false); }

std::vector<Container> DockerWatcher::Listed(bool running) const {
  std::vector<Container> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.reserve(running_.size() + created_.size());
    for (const auto& [id, c] : running_) all.push_back(c);
    for (const auto& [id, c] : created_) all.push_back(c);
  }
  // Kubernetes on Docker Engine (cri-dockerd): pods, with their sandbox's
  // labels, whether or not the container runs yet.
  JoinCriPods(all);
  std::vector<Container> out;
  for (Container& c : all) {
    if (c.running == running) out.push_back(std::move(c));
  }
  return out;
}

std::string DockerWatcher::Problem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problem_;
}

void DockerWatcher::SetProblem(const std::string& problem) {
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = problem != problem_;
    problem_ = problem;
  }
  if (changed && options_.log) {
    options_.log(problem.empty()
                     ? absl::StrCat(options_.runtime,
                                    ": following containers on ",
                                    options_.socket_path)
                     : absl::StrCat(options_.runtime, ": ", problem,
                                    " (container targets keep what they had; "
                                    "retried every second)"));
  }
}

bool DockerWatcher::WaitStop(int ms) {
  pollfd p{wake_.get(), POLLIN, 0};
  poll(&p, 1, ms);
  return stop_.load();
}

absl::StatusOr<Container> DockerWatcher::Inspect(const std::string& id) const {
  EGRESS_ASSIGN_OR_RETURN(
      std::string body,
      UnixGet(options_.socket_path, absl::StrCat("/containers/", id, "/json")));
  EGRESS_ASSIGN_OR_RETURN(Container c, ParseContainerInspect(body));
  if (c.running && options_.pid_cgroup) {
    auto cgroup = options_.pid_cgroup(c.pid);
    // Gone already (a container that exits at once): not running.
    if (cgroup.ok()) {
      c.cgroup = *cgroup;
    } else {
      c.running = false;
    }
  }
  return c;
}

void DockerWatcher::Loop() {
  while (!stop_.load()) {
    absl::Status st = Follow();
    if (stop_.load()) return;
    SetProblem(
        st.ok() ? absl::StrCat(options_.socket_path, " ended the event stream")
                : std::string(st.message()));
    if (WaitStop(kRetryMs)) return;
  }
}

bool DockerWatcher::TakeCreated(const ContainerEvent& e) {
  if (e.kind != ContainerEvent::Kind::kCreate ||
      !options_.labels_in_create_events) {
    return false;
  }
  Container c;
  c.id = e.id;
  c.name = e.name;
  c.image = e.image;
  c.labels = e.labels;
  c.from_event = true;
  std::lock_guard<std::mutex> lock(mu_);
  // Inspected already (listed after the event): better known so.
  if (running_.count(c.id) || created_.count(c.id)) return false;
  created_[c.id] = std::move(c);
  return true;
}

void DockerWatcher::Take(const std::vector<std::string>& lines) {
  bool created = false;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    for (const std::string& line : lines) {
      auto e = ParseDockerEvent(line);
      if (!e.ok() || e->kind == ContainerEvent::Kind::kOther) continue;
      if (TakeCreated(*e)) {
        created = true;
        // Not inspected unless it must be: its start or end event is.
        if (!inspect_created_.load()) continue;
      }
      // What the container is now, whatever the event said: running, or
      // existing without running (created, exited), or gone (destroyed).
      inspects_.Add(e->id);
      queued = true;
    }
    if (queued) queue_cv_.notify_all();
  }
  // Told at once: a container created now may start any moment, and Docker
  // does not wait for egressd.
  if (created && options_.changed) options_.changed();
}

void DockerWatcher::InspectLoop() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    queue_cv_.wait(lock,
                   [this] { return stop_.load() || inspects_.queued() > 0; });
    if (stop_.load()) return;
    const std::string id = *inspects_.Take();
    const uint64_t generation = generation_.load();
    lock.unlock();
    auto c = Inspect(id);
    bool applied = false;
    {
      std::lock_guard<std::mutex> data(mu_);
      if (generation == generation_.load()) {
        running_.erase(id);
        created_.erase(id);
        if (c.ok()) (c->running ? running_ : created_)[c->id] = *std::move(c);
        applied = true;
      }
    }
    // However fast events come, egressd hears of starts and ends at once.
    if (applied && options_.changed) options_.changed();
    lock.lock();
    inspects_.Done(id);
    // Named again meanwhile: queued again, for any inspector.
    if (inspects_.queued() > 0) queue_cv_.notify_one();
  }
}

absl::Status DockerWatcher::Follow() {
  // Events first, then the list: a container started in between is in one
  // or the other (or both), never in neither. Docker answers the head of
  // /events at once, once it follows them: the list waits for it. Podman
  // (4.3) sends the head with the first event only: after kHeadWaitMs the
  // list is taken anyway, the request being sent before it.
  EGRESS_ASSIGN_OR_RETURN(
      UnixLineStream events,
      UnixLineStream::Open(options_.socket_path, kEventsTarget));
  std::vector<std::string> early;
  for (int waits = 0; !events.has_head() && waits < kHeadWaitMs / 10; ++waits) {
    pollfd p{events.fd(), POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    EGRESS_ASSIGN_OR_RETURN(std::vector<std::string> lines, events.ReadLines());
    early.insert(early.end(), lines.begin(), lines.end());
  }
  {
    // What was queued or is under way belongs to the last connection: the
    // list below is newer.
    std::lock_guard<std::mutex> queue(queue_mu_);
    std::lock_guard<std::mutex> data(mu_);
    generation_.fetch_add(1);
    inspects_.Clear();
  }
  EGRESS_ASSIGN_OR_RETURN(std::string list,
                          UnixGet(options_.socket_path, kListTarget));
  EGRESS_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                          ParseContainerIds(list));
  std::map<std::string, Container> running, created;
  for (const std::string& id : ids) {
    auto c = Inspect(id);
    if (!c.ok()) continue;  // removed in between
    (c->running ? running : created)[c->id] = *std::move(c);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = std::move(running);
    created_ = std::move(created);
  }
  Take(early);
  SetProblem("");
  if (options_.changed) options_.changed();
  // This thread only reads: an event is taken as soon as Docker sends it,
  // never after an inspect (the inspectors').
  while (!stop_.load()) {
    pollfd fds[] = {{events.fd(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int r = poll(fds, 2, -1);
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    if (stop_.load()) return absl::OkStatus();
    if (r <= 0 || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    EGRESS_ASSIGN_OR_RETURN(std::vector<std::string> lines, events.ReadLines());
    Take(lines);
  }
  return absl::OkStatus();
}

}  // namespace egress::workloads
