#include "userspace/daemon/raw_capability.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace egress {
namespace {

constexpr int kCapNetRaw = 13;

void CollectPids(const std::string& dir, size_t max,
                 std::vector<std::string>& pids, int depth) {
  if (depth > 32 || pids.size() >= max) return;
  std::ifstream procs(dir + "/cgroup.procs");
  std::string pid;
  while (pids.size() < max && std::getline(procs, pid)) {
    if (!pid.empty()) pids.push_back(pid);
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (struct dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    CollectPids(absl::StrCat(dir, "/", e->d_name), max, pids, depth + 1);
  }
  closedir(d);
}

}  // namespace

bool CapEffHasNetRaw(const std::string& cap_eff_hex) {
  unsigned long long mask = strtoull(cap_eff_hex.c_str(), nullptr, 16);
  return (mask >> kCapNetRaw) & 1;
}

std::vector<std::string> RawCapabilityWarnings(const std::string& abs_path,
                                               size_t max_processes) {
  std::vector<std::string> pids;
  CollectPids(abs_path, max_processes, pids, 0);
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
              "drop the capability (systemd: "
              "CapabilityBoundingSet=~CAP_NET_RAW)"));
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
