// The one host setting that undoes the refusal of IPV6_FREEBIND on a
// target's datagram sockets (cgroup/setsockopt, docs/bypasses.md section 6):
// with net.ipv6.ip_nonlocal_bind=1 every IPv6 socket may bind to, and send
// from, an address the host does not own, no socket option needed, and so
// pose over loopback as a UDP peer or a resolver of another socket of the
// target. egress cannot refuse that per socket; `status` says so instead.
#ifndef EGRESS_USERSPACE_DAEMON_NONLOCAL_BIND_H_
#define EGRESS_USERSPACE_DAEMON_NONLOCAL_BIND_H_

#include <string>

#include "absl/strings/string_view.h"

namespace egress {

inline constexpr char kIpv6NonlocalBindPath[] =
    "/proc/sys/net/ipv6/ip_nonlocal_bind";

// The warning for the contents of the sysctl file (e.g. "1\n"), or "" when
// it is off or cannot be read as a number.
std::string NonlocalBindWarning(absl::string_view sysctl_text);

// NonlocalBindWarning of the file at `path` ("" when it cannot be read: no
// IPv6 in this kernel, or no /proc).
std::string NonlocalBindWarningOf(const std::string& path);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_NONLOCAL_BIND_H_
