// Finds processes of a cgroup tree that hold CAP_NET_RAW: they can open
// AF_PACKET sockets, which pass no inet hook, so egress cannot police them.
#ifndef EGRESS_USERSPACE_DAEMON_RAW_CAPABILITY_H_
#define EGRESS_USERSPACE_DAEMON_RAW_CAPABILITY_H_

#include <cstdint>
#include <string>
#include <vector>

namespace egress {

// True when the CapEff hex mask of /proc/PID/status has CAP_NET_RAW (13).
bool CapEffHasNetRaw(const std::string& cap_eff_hex);

// One warning per process (up to a few) of the cgroup at `abs_path` and its
// descendants holding CAP_NET_RAW; reads at most `max_processes` pids.
// How the warning says to drop the capability: in a systemd unit, or for a
// container (`docker run --cap-drop NET_RAW`), or for a pod (its
// securityContext).
enum class RawAdvice { kSystemd, kContainer, kPod };
std::vector<std::string> RawCapabilityWarnings(
    const std::string& abs_path, size_t max_processes,
    RawAdvice advice = RawAdvice::kSystemd);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_RAW_CAPABILITY_H_
