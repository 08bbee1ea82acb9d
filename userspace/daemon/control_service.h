// egressd's answers: typed requests in, typed responses out. It knows no
// sockets and no JSON; the event loop decodes requests, sends changes to the
// worker thread and reads to this service directly.
#ifndef EGRESS_USERSPACE_DAEMON_CONTROL_SERVICE_H_
#define EGRESS_USERSPACE_DAEMON_CONTROL_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/connection_scan.h"
#include "userspace/daemon/dns_sweeper.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/learner.h"

namespace egress {

// Where `events` reads recent records from (the event pipeline).
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // The last records matching the request's filter, rendered in its format,
  // and a warning when its target is known by kept records only.
  virtual absl::StatusOr<control::EventsResponse> Recent(
      const control::EventsRequest& request) = 0;
};

struct ServiceOptions {
  std::string node_name;
  std::string bpffs_dir;
  std::string cgroup_root;
  std::string policy_dir;  // "" = none
  std::string version;
  // Daemon-wide counters for `status`.
  std::function<uint64_t()> metrics_port;
  std::function<uint64_t()> events_read;
  std::function<uint64_t()> events_dropped;
  std::function<uint64_t()> events_sink_errors;
  // Wall-clock seconds (tests pass their own).
  std::function<int64_t()> now;
  // Existing connections (`connections`, and the look after each change
  // that may tighten a target); null: not looked at.
  ConnectionScan* connections = nullptr;
  // What a workload target's status warns of: why it cannot follow its
  // containers now, containers it does not take as the runtime reports
  // them (none = all is well); null: no container runtime.
  std::function<std::vector<std::string>(const control::TargetInfo&)>
      workload_warnings;
  // Names the container (or pod) of each of a workload target's cgroups, as
  // users name them (`status`, `target list`); null: no container runtime.
  std::function<void(std::vector<control::CgroupRef>*)> name_workloads;
  // Why the field self-check could not probe a target (by id; "" = it
  // could); null: no self-check.
  std::function<std::string(uint32_t)> self_check_problem;
  // Why changes cannot be stored now ("" = they can; may be empty).
  std::function<std::string()> state_error;
  // A line for egressd's log.
  std::function<void(const std::string&)> log;
};

class ControlService {
 public:
  // `learner` is used from the loop thread only (records, suggest).
  ControlService(Engine& engine, KernelPort& kernel, Learner& learner,
                 RecordSource& records, ServiceOptions options);

  // Requests that change enforcement: run one at a time on the worker.
  static bool IsChange(const control::Request& request);
  // By value: a change's request moves on into the engine (an apply's
  // rules become the targets' rules without a copy).
  absl::StatusOr<control::Response> Handle(control::Request request);

  // Applies the policy directory (the response of apply). Remembers the
  // outcome for the metrics, whoever asked (start, SIGHUP, a file change,
  // `egressctl reload`).
  absl::StatusOr<control::ApplyResponse> Reload();
  bool last_reload_ok() const { return last_reload_ok_.load(); }

  // After temporary rules of `targets` ended: their existing connections
  // the rules now refuse are recorded (never cut: nobody asked). On the
  // worker, like every change.
  void AfterExpiry(const std::vector<std::string>& targets) {
    LookAfterChange(targets, /*cut=*/false);
  }

  // Deletes the learned addresses dead for long (every 5 s on the worker,
  // and before each `status` that shows names), logging a failure; what it
  // found shows in `status` and the metrics. Safe from any thread.
  void SweepDnsBindings();
  std::map<uint32_t, DnsSweep::Target> DnsBindings() const {
    return dns_sweeper_.Targets();
  }

 private:
  absl::StatusOr<control::StatusResponse> Status();
  // Changes that may tighten a target (add, allow/deny, delete, apply, mode
  // enforce); each then looks at the target's existing connections.
  absl::StatusOr<control::Response> Change(control::Request request);
  // The --policy_dir file that defines `target` ("" = none).
  std::string PolicyFileOf(const std::string& target) const;
  // Apply, then a look at the connections of every target it changed.
  absl::StatusOr<control::ApplyResponse> ApplyAndLook(
      control::ApplyRequest request);
  // `egressctl connections`: a look, and cuts on request.
  absl::StatusOr<control::ConnectionsResponse> Connections(
      const control::ConnectionsRequest& request);
  // The connections of `targets` their rules do not allow, recorded and,
  // with `cut`, destroyed. A failed look is logged: the change stands.
  std::vector<control::Connection> LookAfterChange(
      const std::vector<std::string>& targets, bool cut);
  absl::StatusOr<control::ExportResponse> Export(const std::string& target);
  absl::StatusOr<control::SuggestResponse> Suggest(
      const control::SuggestRequest& request);
  std::vector<std::string> Warnings(const control::TargetInfo& info) const;
  // The containers (pods) of a workload target's cgroups, by name.
  void NameWorkloads(control::TargetInfo* info) const;
  // The DNS learning of a target with name rules (its `rules`).
  control::TargetDns DnsOf(const control::TargetInfo& info,
                           const std::vector<policy::Rule>& rules) const;

  Engine& engine_;
  KernelPort& kernel_;
  Learner& learner_;
  RecordSource& records_;
  ServiceOptions options_;
  std::atomic<bool> last_reload_ok_{true};
  // What the last reload of the policy directory left: each target its
  // files define (name -> file, from the last reload that succeeded) and,
  // when the last one failed, why. Written on the worker, read by `status`
  // on the loop thread.
  mutable std::mutex policy_dir_mu_;
  std::map<std::string, std::string> policy_dir_files_;
  std::string policy_dir_error_;
  DnsSweeper dns_sweeper_{kernel_};
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_CONTROL_SERVICE_H_
