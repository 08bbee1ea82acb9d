// One metrics snapshot from the engine's view of targets (cached link
// health: no cgroup walk per scrape), the kernel's per-CPU counters, the
// record pipeline's counters, the node and its running containers.
#ifndef EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_
#define EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "userspace/daemon/engine.h"
#include "userspace/daemon/kernel_port.h"
#include "userspace/daemon/metrics.h"
#include "userspace/kernel/dns_sweep.h"
#include "userspace/workloads/container.h"

namespace egress {

struct DaemonCounters {
  uint64_t events_read = 0;
  uint64_t events_dropped = 0;
  uint64_t events_sink_errors = 0;
  bool last_reload_ok = true;
  std::optional<bool> shared_program_set_loaded;  // BpfKernel's
  // dns_bindings per target id at egressd's last sweep (DnsSweeper).
  std::map<uint32_t, DnsSweep::Target> dns_bindings;
};

// Where egressd runs: what egress_workload_info and egress_build_info name.
struct NodeView {
  std::string node_name;
  std::vector<workloads::Container> running;  // WorkloadTargets::Running()
};

MetricsSnapshot CollectMetrics(const Engine& engine, KernelPort& kernel,
                               const DaemonCounters& counters,
                               const NodeView& node);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_
