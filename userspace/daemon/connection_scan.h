// Looking at the connections targets already have, and cutting the ones
// their rules do not allow. egressd does it for `egressctl connections`
// and after each change that can tighten a target (target add, apply,
// allow, deny, delete): a connection opened before the policy, or by a
// socket created before its process joined the cgroup, never passes a
// connect hook again, so only this look finds it.
#ifndef EGRESS_USERSPACE_DAEMON_CONNECTION_SCAN_H_
#define EGRESS_USERSPACE_DAEMON_CONNECTION_SCAN_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/connections.h"
#include "userspace/daemon/engine.h"
#include "userspace/kernel/sock_diag.h"

namespace egress {

// What a look asks of the kernel; a fake in the unit tests.
class SocketPort {
 public:
  virtual ~SocketPort() = default;
  // TCP sockets in TcpDumpStates() and connected UDP sockets, IPv4 and
  // IPv6, of egressd's network namespace.
  virtual absl::StatusOr<SocketDump> Sockets() = 0;
  // SOCK_DESTROY of one socket (SockDiag::Destroy's errors).
  virtual absl::Status Destroy(const DiagSocket& socket) = 0;
  // Socket inode -> process, among the processes of these cgroups (paths
  // below the mount).
  virtual std::map<uint32_t, SocketProcess> Owners(
      const std::vector<std::string>& cgroups) = 0;
};

// The real one: sock_diag and /proc, cgroups below `cgroup_root`.
std::unique_ptr<SocketPort> NewKernelSocketPort(std::string cgroup_root);

struct ScanOptions {
  bool cut = false;          // destroy what enforcing targets do not allow
  bool record_kept = false;  // a record for each one left up, too
};

class ConnectionScan {
 public:
  // `publish` takes each record (into the record pipeline).
  ConnectionScan(Engine& engine, SocketPort& sockets,
                 std::function<void(const egress_event&)> publish);

  // The connections of `target` ("" = every target), judged. With
  // options.cut, those not allowed of targets in enforce mode are
  // destroyed (a TCP peer gets a reset) and recorded as EGRESS_EVENT_CUT;
  // audit targets keep theirs. Errors: NotFound for an unknown target, the
  // dump's errors (sock_diag.h).
  absl::StatusOr<control::ConnectionsResponse> Look(const std::string& target,
                                                    ScanOptions options);

  // Look() for each of `targets` after a change, recording every
  // connection their rules do not allow (EXISTING, or CUT with cut).
  // Returns what was found; errors as Look.
  absl::StatusOr<control::ConnectionsResponse> AfterChange(
      const std::vector<std::string>& targets, bool cut);

 private:
  absl::StatusOr<control::ConnectionsResponse> LookAt(
      std::vector<TargetState> targets, ScanOptions options);
  // Everything but the rules, which LookAt reads only for a target that
  // may have connections.
  ConnectionScope ScopeOf(const TargetState& t);
  // Cuts (maybe) and records one connection not allowed.
  void Act(JudgedConnection& c, const ConnectionScope& scope,
           ScanOptions options);

  Engine& engine_;
  SocketPort& sockets_;
  std::function<void(const egress_event&)> publish_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_CONNECTION_SCAN_H_
