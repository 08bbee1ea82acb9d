// egressd's periodic sweep of dns_bindings (kernel/dns_sweep.h) and what it
// found, for `status` and the metrics. Thread-safe: the worker sweeps, the
// loop and the metrics server read.
#ifndef EGRESS_USERSPACE_DAEMON_DNS_SWEEPER_H_
#define EGRESS_USERSPACE_DAEMON_DNS_SWEEPER_H_

#include <cstdint>
#include <map>
#include <mutex>

#include "absl/status/status.h"
#include "egress/dns_abi.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/kernel_port.h"
#include "userspace/kernel/dns_sweep.h"

namespace egress {

// What `status` and the metrics show of a target's DNS learning: the
// kernel's counters `c` and the sweep's view `b` of its bindings (no
// resolver warnings: those are read from /proc, by status only).
control::TargetDns TargetDnsOf(const egress_dns_counters& c,
                               const DnsSweep::Target& b);

class DnsSweeper {
 public:
  explicit DnsSweeper(KernelPort& kernel) : kernel_(kernel) {}

  // One sweep. Errno status of a map call (what was swept before it counts).
  absl::Status Sweep();

  // Per target id: live and expired entries at the last sweep, and swept
  // (and restored) since egressd started.
  std::map<uint32_t, DnsSweep::Target> Targets() const;
  DnsSweep::Target Of(uint32_t target_id) const;

 private:
  KernelPort& kernel_;
  mutable std::mutex mu_;
  std::map<uint32_t, DnsSweep::Target> targets_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_DNS_SWEEPER_H_
