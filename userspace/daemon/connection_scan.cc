#include "userspace/daemon/connection_scan.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

// Sockets read per dump (family and protocol) at the most.
constexpr size_t kMaxSockets = 65536;

// Records carry the monotonic clock, as the kernel's do.
uint64_t KtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 +
         static_cast<uint64_t>(ts.tv_nsec);
}

class KernelSocketPort : public SocketPort {
 public:
  explicit KernelSocketPort(std::string root) : root_(std::move(root)) {}

  absl::StatusOr<SocketDump> Sockets() override {
    const struct {
      uint8_t family, protocol;
      uint32_t states;
    } dumps[] = {
        {AF_INET, IPPROTO_TCP, TcpDumpStates()},
        {AF_INET6, IPPROTO_TCP, TcpDumpStates()},
        {AF_INET, IPPROTO_UDP, 1u << TCP_ESTABLISHED},
        {AF_INET6, IPPROTO_UDP, 1u << TCP_ESTABLISHED},
    };
    SocketDump all;
    for (const auto& d : dumps) {
      // A socket per dump: a truncated one leaves replies unread behind.
      EGRESS_ASSIGN_OR_RETURN(SockDiag diag, SockDiag::Open());
      EGRESS_ASSIGN_OR_RETURN(
          SocketDump part,
          diag.Dump(d.family, d.protocol, d.states, kMaxSockets));
      all.sockets.insert(all.sockets.end(), part.sockets.begin(),
                         part.sockets.end());
      all.truncated = all.truncated || part.truncated;
    }
    return all;
  }

  absl::Status Destroy(const DiagSocket& socket) override {
    EGRESS_ASSIGN_OR_RETURN(SockDiag diag, SockDiag::Open());
    return diag.Destroy(socket);
  }

  std::map<uint32_t, SocketProcess> Owners(
      const std::vector<std::string>& cgroups) override {
    std::vector<std::string> dirs;
    for (const std::string& rel : cgroups) {
      dirs.push_back(rel == "/" ? root_ : root_ + rel);
    }
    return SocketOwners(dirs);
  }

 private:
  std::string root_;
};

}  // namespace

std::unique_ptr<SocketPort> NewKernelSocketPort(std::string cgroup_root) {
  return std::make_unique<KernelSocketPort>(std::move(cgroup_root));
}

ConnectionScan::ConnectionScan(Engine& engine, SocketPort& sockets,
                               std::function<void(const egress_event&)> publish)
    : engine_(engine), sockets_(sockets), publish_(std::move(publish)) {}

ConnectionScope ConnectionScan::ScopeOf(const TargetState& t) {
  ConnectionScope s;
  s.target = t.name;
  s.target_id = t.id;
  s.mode = t.mode;
  s.cgroups = engine_.SubtreeCgroups(t.id);
  if (IsUser(t)) s.uid = t.uid;
  const uint32_t id = t.id;
  s.rule_number = [this, id](uint32_t rule) {
    return engine_.LookupRecord(id, rule).rule_number;
  };
  return s;
}

void ConnectionScan::Act(JudgedConnection& c, const ConnectionScope& scope,
                         ScanOptions options) {
  uint8_t kind = EGRESS_EVENT_EXISTING;
  if (options.cut && scope.mode == policy::Mode::kEnforce) {
    absl::Status st = sockets_.Destroy(c.socket);
    if (absl::IsNotFound(st)) {
      c.shown.action = "gone";  // closed since the dump
      return;
    }
    if (st.ok()) {
      c.shown.action = "cut";
      kind = EGRESS_EVENT_CUT;
    } else {
      c.shown.action = absl::StrCat("cut failed: ", st.message());
    }
  }
  if (kind == EGRESS_EVENT_CUT || options.record_kept) {
    publish_(ExistingRecord(c, scope.target_id, scope.mode, kind, KtimeNs()));
  }
}

absl::StatusOr<control::ConnectionsResponse> ConnectionScan::LookAt(
    std::vector<TargetState> targets, ScanOptions options) {
  control::ConnectionsResponse out;
  if (targets.empty()) return out;
  EGRESS_ASSIGN_OR_RETURN(SocketDump dump, sockets_.Sockets());
  out.truncated = dump.truncated;
  for (const TargetState& t : targets) {
    ConnectionScope scope = ScopeOf(t);
    if (scope.cgroups.empty() && !scope.uid) continue;
    // Most targets have no socket at all: their rules (maybe 100,000) are
    // read only for one that has.
    if (!MayHaveConnections(dump.sockets, scope)) continue;
    absl::StatusOr<std::vector<policy::Rule>> rules = engine_.RulesOf(t.name);
    if (!rules.ok()) continue;  // removed since
    scope.rules = *std::move(rules);
    std::vector<JudgedConnection> found = JudgeConnections(dump.sockets, scope);
    if (found.empty()) continue;
    std::vector<std::string> paths;
    for (const auto& [id, path] : scope.cgroups) paths.push_back(path);
    NameOwners(sockets_.Owners(paths), found);
    for (JudgedConnection& c : found) {
      if (!c.shown.allowed) Act(c, scope, options);
      out.connections.push_back(std::move(c.shown));
    }
  }
  return out;
}

absl::StatusOr<control::ConnectionsResponse> ConnectionScan::Look(
    const std::string& target, ScanOptions options) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<TargetState> targets,
                          engine_.TargetsWithoutRules(target, /*all=*/true));
  return LookAt(std::move(targets), options);
}

absl::StatusOr<control::ConnectionsResponse> ConnectionScan::AfterChange(
    const std::vector<std::string>& names, bool cut) {
  std::vector<TargetState> targets;
  for (const std::string& name : names) {
    absl::StatusOr<std::vector<TargetState>> t =
        engine_.TargetsWithoutRules(name, false);
    if (!t.ok()) continue;
    targets.insert(targets.end(), std::make_move_iterator(t->begin()),
                   std::make_move_iterator(t->end()));
  }
  return LookAt(std::move(targets), {.cut = cut, .record_kept = true});
}

}  // namespace egress
