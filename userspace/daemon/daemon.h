// egressd's core: owns the pinned maps, the per-target program sets and the
// persistent state, and answers control requests. Single-threaded: requests,
// cgroup watching and event draining all run from Run()'s poll loop, so no
// locking is needed and every request sees a consistent state.
#ifndef EGRESS_USERSPACE_DAEMON_DAEMON_H_
#define EGRESS_USERSPACE_DAEMON_DAEMON_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/metrics.h"
#include "userspace/daemon/state.h"
#include "userspace/events/event_pipeline.h"
#include "userspace/events/event_sink.h"
#include "userspace/kernel/event_reader.h"
#include "userspace/kernel/shared_maps.h"

namespace egress {

struct DaemonOptions {
  std::string bpffs_dir = "/sys/fs/bpf/egress";  // pins live below
  std::string bpffs_mount = "/sys/fs/bpf";       // mounted if missing
  std::string state_dir = "/var/lib/egress";
  std::string socket_path = "/run/egress/egressd.sock";
  // Where cgroup v2 is mounted; empty = found in /proc/self/mountinfo.
  std::string cgroup_root;
  // Gets every record (verdicts and flows) drained from the kernel, from the
  // loop: a slow sink slows the loop. Null: no sink.
  std::shared_ptr<EventSink> event_sink;
  // Prometheus /metrics and /healthz ("127.0.0.1:9477"; "" = off; port 0
  // picks a free port, reported by `status`).
  std::string metrics_addr;
  // Policy files (*.yaml, *.yml) applied at start and on SIGHUP or
  // `egressctl reload`, like `egressctl apply -f DIR`; "" = none. A rejected
  // directory changes nothing: what is enforced stays.
  std::string policy_dir;
};

class Daemon {
 public:
  // Mounts bpffs if needed, opens or creates the pinned maps, loads the state
  // file and brings the kernel in line with it: program sets pinned, links
  // attached to each target's current cgroup (adopting live ones, never
  // attaching twice), rule sets rewritten without a gap. DataLoss for a
  // corrupt state file; errno statuses for kernel refusals.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(DaemonOptions options);

  // Serves requests on the control socket until *stop becomes true or
  // SIGTERM/SIGINT arrives. Enforcement stays in force after it returns.
  absl::Status Run(const std::atomic<bool>* stop);

  // Handles one control request (the JSON protocol of control_socket.h).
  nlohmann::json Handle(const nlohmann::json& request);

  // Re-attaches targets whose cgroup was re-created; exposed for Run() and
  // tests. Returns the number of targets (re)attached.
  int Reconcile();

  // Removes temporary rules whose end (Rule::expires) is at or before
  // `now_unix`, each target's set in one switch. Returns how many ended.
  int ExpireRules(int64_t now_unix);

 private:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}

  absl::Status Init();
  std::string StatePath() const;
  std::string MapsDir() const;
  std::string TargetDir(uint32_t id) const;
  std::string CgroupAbs(const std::string& rel) const;

  absl::StatusOr<TargetState*> FindTarget(const nlohmann::json& request);
  // Every target when the request names none, else the one it names.
  absl::StatusOr<std::vector<const TargetState*>> SelectTargets(
      const nlohmann::json& request);
  absl::StatusOr<uint32_t> AllocateTargetId() const;
  uint32_t NextRuleset();

  // Replaces a target's rules in the kernel without a gap (new ruleset
  // written, then one config flip), then persists. On error nothing changed.
  absl::Status ApplyRules(TargetState& target, std::vector<policy::Rule> rules);
  absl::Status WriteConfig(const TargetState& target, uint32_t ruleset,
                           uint8_t flags);
  // Attaches the target's program set to its cgroup if the cgroup exists.
  // Returns true when attached.
  absl::StatusOr<bool> AttachTarget(const TargetState& target);
  // A cgroupPattern target: attaches to every matching cgroup not yet
  // attached (one link directory each) and drops the links of cgroups that
  // are gone or no longer match. True when at least one cgroup is attached.
  absl::StatusOr<bool> AttachPattern(const TargetState& target);
  // The cgroups a target covers: its own, or every match of its pattern.
  // Walks a pattern target's tree (and remembers where to watch).
  std::vector<std::string> TargetCgroups(const TargetState& target);
  std::string LinkDir(const TargetState& target, uint64_t cgroup_id) const;
  absl::Status Save();
  // Detaches and removes the pins of older ABI versions (an upgrade).
  void RetireOlderAbis();

  absl::StatusOr<nlohmann::json> TargetAdd(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> TargetRemove(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> TargetList(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> SetMode(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> SetLogging(const nlohmann::json& req);
  // Applies parsed policy files: validates all, returns the diff, and (unless
  // dry_run) switches each target's rules without a gap.
  absl::StatusOr<nlohmann::json> Apply(const nlohmann::json& req);
  // Applies options_.policy_dir; the response of Apply.
  absl::StatusOr<nlohmann::json> Reload(const nlohmann::json& req);
  // Reload() from start-up and SIGHUP: the outcome goes to stderr.
  void ReloadAndLog(const char* why);
  absl::StatusOr<nlohmann::json> RuleAdd(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> RuleDelete(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> ListRules(const nlohmann::json& req);
  absl::StatusOr<nlohmann::json> Status(const nlohmann::json& req);
  nlohmann::json TargetJson(const TargetState& t);

  // Learning and proposing (daemon_learn.cc).
  std::string LearnPath() const;
  // Missing file: nothing learned yet. A corrupt file is moved aside and
  // reported; learning starts afresh (it is not policy).
  absl::Status LoadLearned();
  void SaveLearned();
  // Records what `target` initiated: audit and allow verdicts of the
  // connect/sendmsg hooks and ping packets, and outbound established flows.
  void Learn(const egress_event& e, const std::string& target);
  // A least-privilege policy file from what a target was seen initiating.
  absl::StatusOr<nlohmann::json> Suggest(const nlohmann::json& req);
  // The enforced policy of one or every target as policy files.
  absl::StatusOr<nlohmann::json> Export(const nlohmann::json& req);

  // What the kernel does not know about a record: target, rule number,
  // cgroup path, node name, wall-clock offset.
  EventContext EventContextOf(const egress_event& e);
  // The 1-based position of rule `rule_id` in the target's list (0 = none).
  uint32_t RuleNumber(const TargetState& t, uint32_t rule_id);
  struct RuleIndex {
    uint32_t ruleset = 0;
    absl::flat_hash_map<uint32_t, uint32_t> numbers;  // rule id -> number
  };
  std::map<uint32_t, RuleIndex> rule_numbers_;  // by target id
  // Relative path of a cgroup id below a target's cgroup ("" if unknown).
  std::string CgroupPath(uint64_t id, const TargetState* target);
  absl::StatusOr<nlohmann::json> Events(const nlohmann::json& req);
  MetricsSnapshot Snapshot();

  DaemonOptions options_;
  std::unique_ptr<ControlListener> listener_;
  // Pins of an older ABI wait until every target is attached under ours.
  bool retire_older_abis_ = false;
  // The last policy directory reload failed (retried every 30 s).
  bool reload_failed_ = false;
  // Directories where a pattern target's new cgroups can appear, from its
  // last walk; by target id.
  std::map<uint32_t, std::vector<std::string>> pattern_watch_dirs_;
  std::string cgroup_root_;
  std::unique_ptr<SharedMaps> maps_;
  std::unique_ptr<EventReader> events_;
  DaemonState state_;
  LearnStore learn_;
  // Drained records -> context, learning, sinks, followers, recent records.
  std::unique_ptr<EventPipeline> pipeline_;
  int64_t realtime_offset_ns_ = 0;
  std::string node_name_;
  std::map<uint64_t, std::string> cgroup_paths_;
  // Held by the loop while it works, and by metrics scrapes (other threads).
  std::mutex mu_;
  std::unique_ptr<MetricsServer> metrics_;
  // When Run()'s loop last turned (0 before it starts), for /healthz.
  std::atomic<int64_t> loop_heartbeat_ns_{0};
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_DAEMON_H_
