#include "userspace/daemon/raw_capability.h"

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/daemon/cgroup_pids.h"

namespace egress {
namespace {

constexpr int kCapNetRaw = 13;

}  // namespace

bool CapEffHasNetRaw(const std::string& cap_eff_hex) {
  unsigned long long mask = strtoull(cap_eff_hex.c_str(), nullptr, 16);
  return (mask >> kCapNetRaw) & 1;
}

std::vector<std::string> RawCapabilityWarnings(const std::string& abs_path,
                                               size_t max_processes,
                                               RawAdvice advice) {
  const std::vector<std::string> pids = CgroupPids(abs_path, max_processes);
  std::vector<std::string> warnings;
  size_t holders = 0;
  for (const std::string& pid : pids) {
    std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
    std::string line, name;
    while (std::getline(status, line)) {
      if (absl::StartsWith(line, "Name:")) {
        name = std::string(absl::StripAsciiWhitespace(line.substr(5)));
      }
      if (absl::StartsWith(line, "CapEff:") &&
          CapEffHasNetRaw(
              std::string(absl::StripAsciiWhitespace(line.substr(7))))) {
        if (++holders <= 3) {
          warnings.push_back(absl::StrCat(
              "process ", name, "[", pid,
              "] holds CAP_NET_RAW: AF_PACKET sockets skip every inet hook; "
              "drop the capability (",
              advice == RawAdvice::kContainer ? "docker run --cap-drop NET_RAW"
              : advice == RawAdvice::kPod
                  ? "the pod's securityContext.capabilities.drop: [NET_RAW]"
                  : "systemd: CapabilityBoundingSet=~CAP_NET_RAW",
              ")"));
        }
      }
    }
  }
  if (holders > 3) {
    warnings.push_back(
        absl::StrCat(holders - 3, " more processes hold CAP_NET_RAW"));
  }
  return warnings;
}

}  // namespace egress
