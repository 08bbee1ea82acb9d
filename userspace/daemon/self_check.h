// The field self-check: on its own thread, every `interval`, each enforcing
// target is probed from inside its cgroup (kernel/cgroup_probe.h: a child in
// a network namespace with no route, so nothing leaves the host) with a
// connect its policy denies (self_check_plan.h), and its hooks are counted.
// A connect not refused with EPERM, or hooks missing, turns the target
// degraded (status, list, egress_target_degraded, `status` exits 1), counts
// in egress_self_check_failures_total and, when it turns, emits a
// self_check_failed record; the next passing check clears it.
// The probe's own denied connect is a real decision: it counts as denied
// and makes a record whose process is named egress-probe (kProbeComm); the
// learner learns only what was let through, so not it.
#ifndef EGRESS_USERSPACE_DAEMON_SELF_CHECK_H_
#define EGRESS_USERSPACE_DAEMON_SELF_CHECK_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "egress/abi.h"
#include "userspace/daemon/engine.h"

namespace egress {

struct SelfCheckOptions {
  absl::Duration interval = absl::Seconds(60);
  std::string cgroup_root;  // the cgroup2 mount
  // Emits an egressd-made record (the record hub's Publish).
  std::function<void(const egress_event&)> publish;
  std::function<void(const std::string&)> log;
};

class SelfCheck {
 public:
  SelfCheck(Engine& engine, SelfCheckOptions options);
  ~SelfCheck();  // stops the thread

  // Starts the thread (the first round after one interval).
  void Start();
  // One round over every target, now (the thread's body; tests).
  void RunOnce();
  // Why the last round could not probe target `id` ("" = it was probed, or
  // not due): status shows it, since such a target is neither proven
  // enforced nor degraded.
  std::string ProbeProblem(uint32_t id) const;

 private:
  // Why the target is not enforced, or "". A probe that could not run
  // leaves its reason in problems_ and says nothing about enforcement.
  std::string Check(const Engine::SelfCheckTarget& t);
  // Records (and logs when it changed) why `t` could not be probed.
  void SetProbeProblem(const Engine::SelfCheckTarget& t, std::string why);

  Engine& engine_;
  SelfCheckOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
  mutable std::mutex problems_mu_;
  std::map<uint32_t, std::string> problems_;  // target id -> why
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_SELF_CHECK_H_
