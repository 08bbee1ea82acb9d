#include "userspace/daemon/self_check_plan.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace egress {

std::optional<ProbeDestination> DeniedProbeDestination(
    const policy::CompiledRuleset& compiled) {
  constexpr std::array<std::array<uint8_t, 4>, 3> kCandidates = {
      {{192, 0, 2, 1}, {198, 51, 100, 1}, {203, 0, 113, 1}}};
  constexpr uint16_t kPort = 9;  // discard
  for (const auto& a : kCandidates) {
    std::array<uint8_t, 16> addr{};
    for (size_t i = 0; i < a.size(); ++i) addr[i] = a[i];
    policy::Decision d =
        compiled.ruleset == 0
            ? policy::Decision{}
            : policy::Evaluate(compiled, compiled.ruleset, IPPROTO_TCP, kPort,
                               EGRESS_FAMILY_IPV4, addr);
    if (d.verdict != EGRESS_VERDICT_DENY) continue;
    ProbeDestination out;
    memcpy(&out.addr_be, a.data(), 4);
    out.port = kPort;
    out.text =
        absl::StrCat(a[0], ".", a[1], ".", a[2], ".", a[3], ":", kPort, "/tcp");
    return out;
  }
  return std::nullopt;
}

std::string ProbeVerdict(int connect_errno, const ProbeDestination& dest) {
  if (connect_errno == EPERM) return "";
  // The probe runs in a network namespace with no route anywhere: a connect
  // the hook let pass fails with ENETUNREACH, one it never saw too.
  return absl::StrCat(
      "a connect to ", dest.text,
      " from inside the target's cgroup was not refused by "
      "its hook (",
      connect_errno == 0 ? "it connected" : strerrorname_np(connect_errno),
      ")");
}

}  // namespace egress
