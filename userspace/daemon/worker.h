// One background thread that runs tasks in order: egressd's changes
// (apply, allow, target add, reload, expiry) and its slow writes, so the loop
// that serves reads and re-attaches cgroups never waits for them.
#ifndef EGRESS_USERSPACE_DAEMON_WORKER_H_
#define EGRESS_USERSPACE_DAEMON_WORKER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace egress {

class Worker {
 public:
  Worker();
  // Finishes the task that runs; tasks still queued are dropped.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Post(std::function<void()> task);
  // Tasks queued or running.
  size_t backlog() const;

 private:
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  size_t running_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_WORKER_H_
