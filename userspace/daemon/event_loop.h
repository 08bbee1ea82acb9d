// egressd's poll loop: control connections (read without waiting, changes
// handed to the worker, reads answered here), signals, the policy directory
// watch, timers (expiry, learned state), and the drain of kernel records to
// their consumers. Cgroups are the reconciler's (its own thread).
#ifndef EGRESS_USERSPACE_DAEMON_EVENT_LOOP_H_
#define EGRESS_USERSPACE_DAEMON_EVENT_LOOP_H_

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"
#include "userspace/daemon/answer_outbox.h"
#include "userspace/daemon/control_service.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/learner.h"
#include "userspace/daemon/policy_dir_watch.h"
#include "userspace/daemon/reconciler.h"
#include "userspace/daemon/worker.h"
#include "userspace/events/event_pipeline.h"

namespace egress {

// The signals the loop reads from its signalfd: SIGTERM, SIGINT (stop) and
// SIGHUP (reload). Block them before starting any thread, so that they wait
// for the loop instead of killing egressd half-way through start-up.
sigset_t HandledSignals();

// Logs the outcome of a policy directory reload (`why`: "start", "SIGHUP",
// ...): the changes, or why enforcement stayed as it was.
void LogReload(const char* why,
               const absl::StatusOr<control::ApplyResponse>& result,
               const std::string& dir);

// The first answer to `events --follow` (the backlog, and a warning when
// the target is known by kept records only) and the follower taken with it.
struct FollowAnswer {
  control::EventsResponse first;
  uint64_t follower = 0;
};

// Kernel records as the loop sees them.
class RecordStream {
 public:
  virtual ~RecordStream() = default;
  // Reads what the ring buffer holds and hands it to the consumers.
  virtual void Drain() = 0;
  // Writes what followers can take without waiting.
  virtual void FlushFollowers() = 0;
  // Turns the rate limit's held-back counts of destinations not tried
  // again into summary records (EGRESS_EVENT_HELD_BACK) for the next Drain.
  virtual void SweepHeldBack() {}
  // For `events --follow`: the backlog the request asks for and, taken
  // with it, a follower that keeps the records that come after it
  // (EventPipeline::StartFollow). Errors: the request's filter is invalid,
  // its target unknown (no target and no kept record has the name), or too
  // many clients follow.
  virtual absl::StatusOr<FollowAnswer> StartFollow(
      const control::EventsRequest& request) = 0;
  // Streams to `fd` (once the backlog is out) what follower `follower`
  // kept and what comes next; an invalid fd (the client went away) ends
  // the follower.
  virtual void Follow(uint64_t follower, UniqueFd fd) = 0;
};

struct LoopOptions {
  std::string socket_path;
  std::string cgroup_root;
  std::string policy_dir;  // "" = none
  // Decides the workloads' classes and parents (WorkloadClasses::Update)
  // after a change or a reload, before the change is answered: a new
  // container target's parent is watched, and a container started there
  // refused, by the time the client hears back, also if egressd stops at
  // once (the reconciler's own pass may never run then).
  std::function<void()> classify_workloads;
  // Every second: keeps the instance locks on their directories (may be
  // null).
  std::function<void()> check_locks;
};

class EventLoop {
 public:
  EventLoop(ControlListener& listener, Engine& engine, ControlService& service,
            Learner& learner, RecordStream& records, Reconciler& reconciler,
            LoopOptions options);
  ~EventLoop();

  // Until *stop becomes true or SIGTERM/SIGINT arrives.
  absl::Status Run(const std::atomic<bool>* stop);
  // When the loop last turned (0 before it starts), for /healthz.
  int64_t heartbeat_ns() const { return heartbeat_ns_.load(); }
  // False while the control socket's path does not lead to this egressd
  // (removed, or taken by another file), for /healthz: the path is looked
  // at on each call (one lstat), so it is false at once, not from the next
  // check of the loop (every second, which binds the socket again).
  bool socket_at_path() const;

 private:
  struct Pending {
    UniqueFd fd;
    std::string buf;
    absl::Time deadline;
  };

  absl::Status Setup();
  // False when asked to stop.
  bool HandleSignals();
  void HandlePolicyWatch(bool readable);
  void RunTimers();
  void AcceptNew(std::vector<bool>& readable);
  // Every second: the instance locks (options_.check_locks), and is the
  // control socket still at its path? A removed one is bound again (after
  // taking what waited on the old one); a path taken by another file is left
  // alone and tried again.
  void CheckSocketPath(std::vector<bool>& readable);
  void ServePending(const std::vector<bool>& readable);
  // A decoded request (or why it is not one): answered, or run on the
  // worker if it is a change.
  void Serve(UniqueFd fd, absl::StatusOr<control::Request> request);
  // A request line too large to decode on the loop: decoded and, if it is a
  // change, run on the worker.
  void ServeLarge(UniqueFd fd, std::string line);
  // Worker thread: runs a change (the request is used up: an apply's rules
  // move on into the new targets) and queues its answer.
  void RunChange(UniqueFd& conn, control::Request request);
  // Queues the answer; `after` gets the connection once it is written.
  void Reply(UniqueFd fd, const absl::StatusOr<control::Response>& r,
             AnswerOutbox::AfterAnswer after = nullptr);
  void PostReload(const char* why);
  void SaveLearnedLater();
  void Stop();

  ControlListener& listener_;
  Engine& engine_;
  ControlService& service_;
  Learner& learner_;
  RecordStream& records_;
  Reconciler& reconciler_;
  LoopOptions options_;
  std::unique_ptr<Worker> worker_;

  AnswerOutbox outbox_;
  UniqueFd signal_fd_;
  std::unique_ptr<PolicyDirWatch> policy_watch_;  // null: no --policy_dir
  std::vector<Pending> pending_;
  // Out of descriptors (accept: EMFILE/ENFILE) the listener stays readable:
  // it is left out of poll until then, instead of the loop spinning on it.
  absl::Time accept_paused_until_ = absl::InfinitePast();
  // Said once per shortage, and again when it is over (the backlog taken
  // whole: accept says EAGAIN), not at every rest.
  bool accept_short_logged_ = false;
  absl::Time policy_reload_at_ = absl::InfiniteFuture();
  absl::Time next_policy_follow_;
  // The wait for a file still being written is logged once per wait.
  bool policy_wait_logged_ = false;
  absl::Time next_expiry_, next_learn_save_, next_sweep_, next_dns_sweep_;
  std::atomic<bool> expiry_queued_{false};
  std::atomic<bool> dns_sweep_queued_{false};
  std::atomic<bool> reload_queued_{false};
  std::atomic<int64_t> heartbeat_ns_{0};
  absl::Time next_socket_check_;
  std::atomic<bool> socket_at_path_{true};
  // The socket file the listener bound (it binds a new one when the path
  // was emptied), read by socket_at_path() on the metrics thread.
  std::atomic<dev_t> bound_dev_;
  std::atomic<ino_t> bound_ino_;
  // What was last logged about the path ("" while it is ours): one line per
  // change, not one per second.
  std::string socket_problem_logged_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_EVENT_LOOP_H_
