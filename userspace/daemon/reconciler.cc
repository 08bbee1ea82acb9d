#include "userspace/daemon/reconciler.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

constexpr size_t kMaxWatches = 8192;
// Passes one wake-up may run while each adds watches (Loop).
constexpr int kPassesPerWake = 4;

// Reads everything pending on a non-blocking fd; true if there was any.
bool DrainFd(int fd) {
  char buf[4096];
  bool any = false;
  while (read(fd, buf, sizeof(buf)) > 0) any = true;
  return any;
}

// Reads every pending inotify event (bounded) and returns the watch
// descriptors the kernel dropped (IN_IGNORED: the directory was removed).
std::vector<int> DrainInotify(int fd) {
  std::vector<int> dropped;
  alignas(inotify_event) char buf[4096];
  for (int reads = 0; reads < 1024; ++reads) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t at = 0;
         at + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      inotify_event ev;
      memcpy(&ev, buf + at, sizeof(ev));
      if (ev.mask & IN_IGNORED) dropped.push_back(ev.wd);
      at += sizeof(inotify_event) + ev.len;
    }
  }
  return dropped;
}

}  // namespace

Reconciler::Reconciler(Engine& engine, std::string cgroup_root, int rescan_ms,
                       std::function<void()> before_pass)
    : engine_(engine),
      cgroup_root_(std::move(cgroup_root)),
      rescan_ms_(rescan_ms),
      before_pass_(std::move(before_pass)) {}

absl::Status Reconciler::CheckRescanInterval(absl::Duration rescan_interval) {
  if (rescan_interval < absl::Milliseconds(1) ||
      rescan_interval > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rescan_interval_ms ", absl::ToInt64Milliseconds(rescan_interval),
        " is out of range: 1 to 3600000 ms"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Reconciler>> Reconciler::Start(
    Engine& engine, std::string cgroup_root, absl::Duration rescan_interval,
    std::function<void()> before_pass) {
  EGRESS_RETURN_IF_ERROR(CheckRescanInterval(rescan_interval));
  auto r = std::unique_ptr<Reconciler>(new Reconciler(
      engine, std::move(cgroup_root),
      static_cast<int>(absl::ToInt64Milliseconds(rescan_interval)),
      std::move(before_pass)));
  r->inotify_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!r->inotify_) return ErrnoStatus(errno, "inotify_init1");
  r->wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->wake_) return ErrnoStatus(errno, "eventfd");
  r->WatchAll();
  r->thread_ = std::thread([self = r.get()] {
    // Signals are the loop's (signalfd): never delivered to this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    self->Loop();
  });
  return r;
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Stop() {
  stop_.store(true);
  Poke();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Poke() {
  uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    // Only EAGAIN (counter full) is possible: a wake-up is pending anyway.
  }
}

bool Reconciler::Watch(const std::string& rel) {
  std::string abs = rel == "/" ? cgroup_root_ : absl::StrCat(cgroup_root_, rel);
  if (watched_.count(abs)) return false;
  if (watched_.size() >= kMaxWatches) {
    // Directories come and go (pods): start over rather than stop
    // watching; the rescan covers the moment in between.
    inotify_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    watched_.clear();
    path_of_wd_.clear();
  }
  // IN_DELETE too: a pattern target drops the links of a removed cgroup.
  int wd =
      inotify_add_watch(inotify_.get(), abs.c_str(), IN_CREATE | IN_DELETE);
  if (wd < 0) return false;
  watched_[abs] = wd;
  path_of_wd_[wd] = abs;
  return true;
}

void Reconciler::Forget(const std::vector<int>& dropped) {
  // A directory removed (and maybe made again, a new inode): watched anew by
  // the next WatchAll, so a target's cgroup made in it wakes the pass.
  for (int wd : dropped) {
    auto it = path_of_wd_.find(wd);
    if (it == path_of_wd_.end()) continue;
    watched_.erase(it->second);
    path_of_wd_.erase(it);
  }
}

bool Reconciler::WatchAll() {
  bool added = false;
  for (const std::string& rel : engine_.WatchDirs()) added |= Watch(rel);
  return added;
}

void Reconciler::Loop() {
  while (!stop_.load()) {
    pollfd fds[] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int r = poll(fds, 2, rescan_ms_);
    if (r < 0 && errno != EINTR) return;
    if (r > 0) {
      if (fds[0].revents & POLLIN) Forget(DrainInotify(inotify_.get()));
      if (fds[1].revents & POLLIN) DrainFd(wake_.get());
    }
    if (stop_.load()) return;
    // Classifications first: a container's cgroup is classified before its
    // target's own program set is attached to it.
    // A directory made or removed after the pass looked at it but before
    // its parent's watch was added gives no event: when a pass adds
    // watches, another pass sees what changed in between (bounded: each
    // added watch is a directory not watched before).
    for (int pass = 0; pass < kPassesPerWake; ++pass) {
      if (before_pass_) before_pass_();
      engine_.Reconcile();
      if (!WatchAll()) break;
    }
  }
}

}  // namespace egress
