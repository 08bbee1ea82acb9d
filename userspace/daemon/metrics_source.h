// One metrics snapshot from the engine's view of targets (cached link
// health: no cgroup walk per scrape), the kernel's per-CPU counters and the
// record pipeline's counters.
#ifndef EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_
#define EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_

#include <cstdint>
#include <map>

#include "userspace/daemon/engine.h"
#include "userspace/daemon/kernel_port.h"
#include "userspace/daemon/metrics.h"
#include "userspace/kernel/dns_sweep.h"

namespace egress {

struct DaemonCounters {
  uint64_t events_read = 0;
  uint64_t events_dropped = 0;
  uint64_t events_sink_errors = 0;
  bool last_reload_ok = true;
  // dns_bindings per target id at egressd's last sweep (DnsSweeper).
  std::map<uint32_t, DnsSweep::Target> dns_bindings;
};

MetricsSnapshot CollectMetrics(const Engine& engine, KernelPort& kernel,
                               const DaemonCounters& counters);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_METRICS_SOURCE_H_
