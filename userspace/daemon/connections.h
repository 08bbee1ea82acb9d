// Existing connections judged by a target's rules: which dumped sockets
// belong to the target (their cgroup is one the target covers), which of
// them are outbound, and whether the rules allow each (policy::
// EvaluateNaive, the evaluator the compiled maps are checked against). Pure:
// the sockets come from sock_diag (kernel/sock_diag.h), the cgroups from the
// engine; connection_scan.h does the looking and cutting.
#ifndef EGRESS_USERSPACE_DAEMON_CONNECTIONS_H_
#define EGRESS_USERSPACE_DAEMON_CONNECTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "egress/abi.h"
#include "userspace/control/protocol.h"
#include "userspace/kernel/sock_diag_codec.h"
#include "userspace/kernel/socket_owners.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/vocabulary.h"

namespace egress {

// What judging needs of one target.
struct ConnectionScope {
  std::string target;
  uint32_t target_id = 0;
  policy::Mode mode = policy::Mode::kEnforce;
  std::vector<policy::Rule> rules;
  // The cgroups it covers (id -> path below the mount): its own and their
  // descendants; for a pattern, every match and theirs.
  std::map<uint64_t, std::string> cgroups;
  // A user target: its connections are the sockets of this uid (the uid a
  // socket was made with, as sock_diag reports it), in any cgroup; cgroups
  // is then empty.
  std::optional<uint32_t> uid;
  // A rule id's number in `list` (0 when unknown).
  std::function<uint32_t(uint32_t rule_id)> rule_number;
};

struct JudgedConnection {
  DiagSocket socket;
  policy::Decision decision;
  control::Connection shown;
};

// TCP states counted as a connection that exists: established, being
// established (SYN sent) and half-closed by the peer. Connected UDP sockets
// are in TCP_ESTABLISHED.
uint32_t TcpConnectionStates();
// The states to dump for TCP: TcpConnectionStates() and listeners (to tell
// accepted connections apart).
uint32_t TcpDumpStates();

// True when `s` was accepted from one of `listeners` (same protocol, local
// port, and the listener's address is the socket's or a wildcard): an
// inbound connection, which egress never affects. A connect()ed socket
// bound to a listener's port by SO_REUSEADDR looks the same and is skipped
// too.
bool AcceptedFrom(const DiagSocket& s, absl::Span<const DiagSocket> listeners);

// True when some socket among `sockets` may be a connection of `scope`
// (its cgroups or uid, a connection state): JudgeConnections finds nothing
// otherwise, and the scope's rules need not be read at all.
bool MayHaveConnections(absl::Span<const DiagSocket> sockets,
                        const ConnectionScope& scope);

// The connections of `scope` among `sockets` (TCP in TcpConnectionStates()
// and connected UDP, outbound only), each judged by the scope's rules, in
// the order of `sockets`. No process is named yet (NameOwners).
std::vector<JudgedConnection> JudgeConnections(
    absl::Span<const DiagSocket> sockets, const ConnectionScope& scope);

// Fills each connection's pid and comm from `owners` (socket inode ->
// process).
void NameOwners(const std::map<uint32_t, SocketProcess>& owners,
                std::vector<JudgedConnection>& connections);

// The record of an existing connection the rules do not allow: kind
// EGRESS_EVENT_EXISTING (left up) or EGRESS_EVENT_CUT (destroyed), verdict
// DENIED (enforce) or AUDIT, at monotonic time `ktime_ns`.
egress_event ExistingRecord(const JudgedConnection& c, uint32_t target_id,
                            policy::Mode mode, uint8_t kind, uint64_t ktime_ns);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_CONNECTIONS_H_
