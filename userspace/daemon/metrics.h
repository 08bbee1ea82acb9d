// Prometheus metrics and health endpoints of egressd. egressd fills a
// MetricsSnapshot from the kernel's per-CPU counters (exact, whatever the
// ring buffer lost) and its own bookkeeping; this module turns snapshots into
// the text exposition format and serves them over HTTP. Pure formatting is
// separate from serving so it is unit-tested without sockets.
#ifndef EGRESS_USERSPACE_DAEMON_METRICS_H_
#define EGRESS_USERSPACE_DAEMON_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/control/protocol.h"

namespace egress {

// A scrape never carries more egress_workload_info series than this: a node
// runs a few hundred containers, and targets that select each of them many
// times over are a mistake the metrics must survive, not a series explosion.
constexpr size_t kMaxWorkloadSeries = 10'000;

// Everything the metrics show, at one instant.
struct MetricsSnapshot {
  struct Verdicts {
    std::string target;
    std::string verdict;   // "allowed", "denied", "audit", "udp_reply"
    std::string protocol;  // "tcp", "udp", "icmp", "other"
    uint64_t count = 0;
  };
  struct RuleHits {
    std::string target;
    // 0 = the default action. Rules are named by id only: their text and
    // comment are the operator's, not every local user's, and editing a
    // comment must not start a new series.
    uint32_t rule_id = 0;
    uint64_t hits = 0;
  };
  struct Target {
    std::string name;
    std::string mode;  // "enforce" / "audit"
    uint64_t rules = 0;
    uint64_t hooks_attached = 0;
    uint64_t hooks_total = 0;
    uint64_t sockets_denied = 0;
    uint64_t source_routes_denied = 0;
    uint64_t events_lost = 0;        // ring buffer reservation failures
    uint64_t events_suppressed = 0;  // rate-limited records (still counted)
    uint64_t flows_active = 0;       // TCP connections open now (in+out)
    // udp_peers (peer_evictions.h): peers recorded, insertions failed,
    // entries there now, evicted (derived).
    uint64_t udp_peers_recorded = 0, udp_peers_not_recorded = 0;
    uint64_t udp_peers_live = 0, udp_peers_evicted = 0;
    // Decisions rule_hits had no room to count per rule.
    uint64_t rule_hits_not_counted = 0;
    bool degraded = false;  // the self-check found it not enforced
    // DNS learning (targets with name rules only).
    bool names = false;
    control::TargetDns dns;
  };
  // A running container that a workload target selects (WorkloadSeriesOf).
  struct Workload {
    std::string target;
    std::string container;     // its name
    std::string container_id;  // the 12-digit short id
    std::string image;
    std::string pod_namespace, pod;  // "" for a container no kubelet made
    // "label_<sanitized key>" -> the container's value, for the keys the
    // target's label selector names (PrometheusLabelName).
    std::map<std::string, std::string> selector_labels;
  };
  std::vector<Verdicts> verdicts;
  std::vector<RuleHits> rule_hits;
  std::vector<Target> targets;
  std::vector<Workload> workloads;
  uint64_t workloads_omitted = 0;  // left out by kMaxWorkloadSeries
  uint64_t events_read = 0;        // records drained from the ring buffer
  // Records egressd could not deliver: to an `events --follow` client whose
  // buffer was full, and to a sink that failed to write (stdout, file).
  uint64_t events_dropped = 0;      // follower overflow
  uint64_t events_sink_errors = 0;  // sink write failures
  // udp_peers entries evicted, of every target since egressd started.
  uint64_t udp_peers_evicted = 0;
  bool last_reload_ok = true;
  // Whether the shared program set is loaded (egressd loads it after its
  // start, on a thread of its own); nullopt with a set per target.
  std::optional<bool> shared_program_set_loaded;
  uint64_t self_check_failures = 0;  // probes or checks that failed
  // Connections the metrics server answered 503 because it already served
  // kMetricsMaxConnections (MetricsServer fills it in).
  uint64_t metrics_connections_refused = 0;
  std::string version;
  std::string libbpf_version;
  // egressd --node_name, else NODE_NAME, else the host name.
  std::string node;
};

// The text exposition (version 0.0.4) of a snapshot. Metric names:
//   egress_verdicts_total{target,verdict,proto}         counter
//   egress_rule_hits_total{target,rule_id}              counter
//   egress_rule_hits_not_counted_total{target}          counter
//   egress_sockets_denied_total{target}                 counter
//   egress_source_routes_denied_total{target}           counter
//   egress_events_lost_total{target}                    counter
//   egress_events_suppressed_total{target}              counter
//   egress_udp_peers_recorded_total{target}             counter
//   egress_udp_peers_not_recorded_total{target}         counter
//   egress_udp_peers_evicted_total{target}              counter
//   egress_dns_queries_total{target}                    counter
//   egress_dns_answers_total{target}                    counter
//   egress_dns_answers_ignored_total{target,reason}     counter
//   egress_dns_bindings_learned_total{target}           counter
//   egress_dns_bindings_refused_total{target}           counter
//   egress_dns_bindings_swept_total{target}             counter
//   egress_events_read_total                            counter
//   egress_events_dropped_total{reason}                 counter
//   egress_udp_peers_evicted_all_targets_total          counter
//   egress_flows_active{target}                         gauge
//   egress_udp_peers{target}                            gauge
//   egress_policy_rules{target}                         gauge
//   egress_attached_hooks{target}                       gauge
//   egress_dns_bindings{target}                         gauge
//   egress_target_info{target,mode}                     gauge (1)
//   egress_target_degraded{target}                      gauge (0/1)
//   egress_self_check_failures_total                    counter
//   egress_metrics_connections_refused_total            counter
//   egress_workload_info{target,container,container_id,image,
//                        pod_namespace,pod,node,label_*} gauge (1)
//   egress_workload_info_omitted                        gauge
//   egress_config_last_reload_successful                gauge
//   egress_shared_program_set_loaded                    gauge (0/1; absent
//                                       with egressd --noshared_program_set)
//   egress_build_info{version,libbpf_version,node}      gauge (1)
std::string FormatMetrics(const MetricsSnapshot& snapshot);

// Connections the metrics server serves at once (a thread each); one more is
// answered 503 and closed. Idle and slow clients are closed within seconds
// (metrics.cc), so a scrape or a probe is never queued behind them.
constexpr size_t kMetricsMaxConnections = 64;

// Serves GET /metrics (FormatMetrics of a fresh snapshot from `source`) and
// GET /healthz ("ok" while `healthy` returns true, else 503) on `address`
// ("127.0.0.1:9477"; port 0 picks a free one). Other paths: 404. `source` and
// `healthy` are called from the server's threads: they must be thread-safe.
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::function<MetricsSnapshot()> source,
      std::function<bool()> healthy);
  ~MetricsServer();
  // The port actually bound.
  int port() const;

 private:
  MetricsServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_METRICS_H_
