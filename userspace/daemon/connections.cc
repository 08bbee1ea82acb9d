#include "userspace/daemon/connections.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

constexpr uint32_t Bit(int state) { return 1u << state; }

bool IsUnspecified(const std::array<uint8_t, 16>& a, uint8_t family) {
  const size_t n = family == AF_INET ? 4 : 16;
  return std::all_of(a.begin(), a.begin() + n,
                     [](uint8_t b) { return b == 0; });
}

std::string AddressText(uint8_t family, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == AF_INET ? AF_INET : AF_INET6, a.data(), buf, sizeof(buf));
  return buf;
}

// The destination as the rules see it: an IPv4-mapped IPv6 address is the
// IPv4 address (as the connect6 hook decides it).
struct RuleAddress {
  uint8_t family = 4;
  std::array<uint8_t, 16> addr{};
};
RuleAddress RuleAddressOf(const DiagSocket& s) {
  RuleAddress out;
  const std::array<uint8_t, 16> dst = s.destination();
  if (s.family == AF_INET) {
    out.addr = dst;
  } else if (policy::IsV4Mapped(dst)) {
    std::memcpy(out.addr.data(), dst.data() + 12, 4);
  } else {
    out.family = 6;
    out.addr = dst;
  }
  return out;
}

std::string StateName(uint8_t state) {
  switch (state) {
    case TCP_ESTABLISHED:
      return "established";
    case TCP_SYN_SENT:
      return "syn_sent";
    case TCP_CLOSE_WAIT:
      return "close_wait";
  }
  return absl::StrCat("state_", state);
}

std::string ReasonWord(const policy::Decision& d) {
  if (d.rule_id == 0) return "NO_MATCHING_RULE";
  return d.verdict == EGRESS_VERDICT_ALLOW ? "MATCHED_ALLOW" : "MATCHED_DENY";
}

// The rule with id `id` as `list` prints it ("" when none).
std::string RuleText(const std::vector<policy::Rule>& rules, uint32_t id) {
  for (const policy::Rule& r : rules) {
    if (r.id == id) return policy::FormatRule(r);
  }
  return "";
}

std::string Why(const policy::Decision& d, uint32_t number,
                const std::string& text) {
  if (d.rule_id == 0) return "no matching rule (default deny)";
  return absl::StrCat(d.verdict == EGRESS_VERDICT_ALLOW ? "allowed" : "denied",
                      " by rule ", number, ": ", text);
}

// A socket that can be a connection of the target at all.
bool Candidate(const DiagSocket& s, const ConnectionScope& scope) {
  if (scope.uid.has_value()) {
    if (s.uid != *scope.uid) return false;
  } else if (!s.cgroup_id || scope.cgroups.count(*s.cgroup_id) == 0) {
    return false;
  }
  if (s.protocol == IPPROTO_TCP) {
    return (Bit(s.state) & TcpConnectionStates()) != 0;
  }
  // Only a connected UDP socket has one destination to judge.
  return s.protocol == IPPROTO_UDP && s.state == TCP_ESTABLISHED &&
         s.destination_port() != 0;
}

control::Connection Show(const DiagSocket& s, const ConnectionScope& scope,
                         const policy::Decision& d) {
  control::Connection c;
  c.target = scope.target;
  c.cgroup_id = s.cgroup_id.value_or(0);
  auto cgroup = scope.cgroups.find(c.cgroup_id);
  if (cgroup != scope.cgroups.end()) c.cgroup = cgroup->second;
  c.protocol = s.protocol == IPPROTO_TCP ? "tcp" : "udp";
  c.family = s.family == AF_INET ? "IPv4" : "IPv6";
  c.state = StateName(s.state);
  c.source = AddressText(s.family, s.source());
  c.source_port = s.source_port();
  c.destination = AddressText(s.family, s.destination());
  c.destination_port = s.destination_port();
  c.inode = s.inode;
  c.cookie = s.cookie();
  c.uid = s.uid;
  c.allowed = d.verdict == EGRESS_VERDICT_ALLOW;
  c.reason = ReasonWord(d);
  const uint32_t number = d.rule_id ? scope.rule_number(d.rule_id) : 0;
  c.rule = number;
  c.why = Why(d, number, RuleText(scope.rules, d.rule_id));
  if (!c.allowed && scope.mode == policy::Mode::kAudit) c.action = "audit";
  return c;
}

}  // namespace

uint32_t TcpConnectionStates() {
  return Bit(TCP_ESTABLISHED) | Bit(TCP_SYN_SENT) | Bit(TCP_CLOSE_WAIT);
}

uint32_t TcpDumpStates() { return TcpConnectionStates() | Bit(TCP_LISTEN); }

bool AcceptedFrom(const DiagSocket& s, absl::Span<const DiagSocket> listeners) {
  for (const DiagSocket& l : listeners) {
    if (l.protocol != s.protocol || l.source_port() != s.source_port()) {
      continue;
    }
    const std::array<uint8_t, 16> addr = l.source();
    if (IsUnspecified(addr, l.family) ||
        (l.family == s.family && addr == s.source())) {
      return true;
    }
  }
  return false;
}

bool MayHaveConnections(absl::Span<const DiagSocket> sockets,
                        const ConnectionScope& scope) {
  for (const DiagSocket& s : sockets) {
    if (Candidate(s, scope)) return true;
  }
  return false;
}

std::vector<JudgedConnection> JudgeConnections(
    absl::Span<const DiagSocket> sockets, const ConnectionScope& scope) {
  std::vector<DiagSocket> listeners;
  for (const DiagSocket& s : sockets) {
    if (s.protocol == IPPROTO_TCP && s.state == TCP_LISTEN) {
      listeners.push_back(s);
    }
  }
  std::vector<JudgedConnection> out;
  for (const DiagSocket& s : sockets) {
    if (!Candidate(s, scope)) continue;
    if (s.protocol == IPPROTO_TCP && AcceptedFrom(s, listeners)) continue;
    const RuleAddress dst = RuleAddressOf(s);
    policy::Decision d = policy::EvaluateNaive(
        scope.rules, s.protocol, s.destination_port(), dst.family, dst.addr);
    out.push_back({s, d, Show(s, scope, d)});
  }
  return out;
}

void NameOwners(const std::map<uint32_t, SocketProcess>& owners,
                std::vector<JudgedConnection>& connections) {
  for (JudgedConnection& c : connections) {
    auto it = owners.find(c.socket.inode);
    if (it == owners.end()) continue;
    c.shown.pid = static_cast<uint64_t>(it->second.pid);
    c.shown.comm = it->second.comm;
  }
}

egress_event ExistingRecord(const JudgedConnection& c, uint32_t target_id,
                            policy::Mode mode, uint8_t kind,
                            uint64_t ktime_ns) {
  egress_event e{};
  e.ts_ns = ktime_ns;
  e.cgroup_id = c.shown.cgroup_id;
  e.pid = e.tgid = static_cast<uint32_t>(c.shown.pid);
  e.uid = c.socket.uid;
  e.target_id = target_id;
  e.rule_id = c.decision.rule_id;
  const RuleAddress dst = RuleAddressOf(c.socket);
  std::memcpy(e.addr, dst.addr.data(), sizeof(e.addr));
  e.port = c.socket.id.idiag_dport;
  e.family = dst.family == 4 ? EGRESS_FAMILY_IPV4 : EGRESS_FAMILY_IPV6;
  e.proto = c.socket.protocol;
  e.hook = EGRESS_HOOK_SOCK_DIAG;
  e.verdict =
      mode == policy::Mode::kAudit ? EGRESS_VERDICT_AUDIT : EGRESS_VERDICT_DENY;
  e.reason = c.decision.rule_id == 0 ? EGRESS_REASON_NO_MATCH
                                     : EGRESS_REASON_MATCH_DENY;
  std::memcpy(e.comm, c.shown.comm.data(),
              std::min(c.shown.comm.size(), sizeof(e.comm) - 1));
  e.cookie = c.socket.cookie();
  e.local_port = c.socket.source_port();
  e.kind = kind;
  e.direction = EGRESS_DIR_OUTBOUND;
  return e;
}

}  // namespace egress
