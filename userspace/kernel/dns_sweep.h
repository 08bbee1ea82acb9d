// Sweeping dns_bindings: deleting the addresses whose every name binding
// expired long ago, so that the map does not fill with dead entries
// (dns_abi.h, "Sweeping", states why a sweep never loses a live binding).
#ifndef EGRESS_USERSPACE_KERNEL_DNS_SWEEP_H_
#define EGRESS_USERSPACE_KERNEL_DNS_SWEEP_H_

#include <cstdint>
#include <map>

#include "absl/status/statusor.h"
#include "egress/dns_abi.h"

namespace egress {

// What one sweep found, per target id.
struct DnsSweep {
  struct Target {
    uint64_t live = 0;      // entries with a slot not yet expired
    uint64_t expired = 0;   // all slots expired, kept (not dead long enough)
    uint64_t swept = 0;     // deleted
    uint64_t restored = 0;  // found renewed when deleted, put back
  };
  std::map<uint32_t, Target> targets;
  uint64_t entries = 0;  // entries walked
};

// True when `b` holds a pattern whose binding has not expired at `now_ns`
// (bpf_ktime_get_ns clock).
bool BindingLive(const egress_dns_binding& b, uint64_t now_ns);
// True when every pattern's binding in `b` expired `for_ns` or more before
// `now_ns` (an entry with no pattern at all too).
bool BindingDeadFor(const egress_dns_binding& b, uint64_t now_ns,
                    uint64_t for_ns);

// Sweeps the dns_bindings map `fd` at `now_ns`: every entry dead for
// EGRESS_DNS_SWEEP_NS is taken out with lookup-and-delete; one that turns
// out renewed meanwhile is put back at once. Errno status of a map call
// (an entry gone meanwhile is not an error).
absl::StatusOr<DnsSweep> SweepDnsBindings(int fd, uint64_t now_ns);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_DNS_SWEEP_H_
