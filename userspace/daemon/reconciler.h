// Keeps targets attached to their cgroups from a thread of its own: a
// directory created where a target's cgroup (or a pattern's match) appears
// wakes it at once, and it rescans every `rescan_interval` anyway. Pattern
// walks over large cgroup trees therefore never delay a request or the drain of
// records.
#ifndef EGRESS_USERSPACE_DAEMON_RECONCILER_H_
#define EGRESS_USERSPACE_DAEMON_RECONCILER_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/engine.h"

namespace egress {

class Reconciler {
 public:
  // Starts the thread; `cgroup_root` is the cgroup2 mount. The thread
  // passes on every inotify event and at least every `rescan_interval`.
  // `before_pass` (may be empty) runs before every pass, on the thread.
  // InvalidArgument naming --rescan_interval_ms unless `rescan_interval` is
  // in 1 ms..1 h (egressd checks it before it touches any state).
  static absl::Status CheckRescanInterval(absl::Duration rescan_interval);
  static absl::StatusOr<std::unique_ptr<Reconciler>> Start(
      Engine& engine, std::string cgroup_root,
      absl::Duration rescan_interval = absl::Milliseconds(500),
      std::function<void()> before_pass = nullptr);
  ~Reconciler();  // Stop()

  // Stops and joins the thread: a pass under way finishes first, none
  // starts after. Poke() stays harmless after it.
  void Stop();

  // Reconcile now and watch what the targets need now (after a change).
  void Poke();

 private:
  Reconciler(Engine& engine, std::string cgroup_root, int rescan_ms,
             std::function<void()> before_pass);
  void Loop();
  // Whether a watch was added (a directory not watched before).
  bool Watch(const std::string& rel);
  bool WatchAll();
  // Forgets the watches the kernel dropped (their directories went).
  void Forget(const std::vector<int>& dropped);

  Engine& engine_;
  const std::string cgroup_root_;
  const int rescan_ms_;
  const std::function<void()> before_pass_;
  UniqueFd inotify_, wake_;
  // Absolute path -> inotify watch descriptor, and back.
  std::map<std::string, int> watched_;
  std::map<int, std::string> path_of_wd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_RECONCILER_H_
