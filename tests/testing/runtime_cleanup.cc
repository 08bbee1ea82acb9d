#include "tests/testing/runtime_cleanup.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace egress::testing {

std::vector<std::string> MountsBelow(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && absl::StartsWith(f[4], dir + "/")) out.push_back(f[4]);
  }
  // Deepest first.
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  return out;
}

std::vector<std::string> CgroupMounts() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(line.substr(0, dash), ' ');
    std::vector<std::string> t = absl::StrSplit(line.substr(dash + 3), ' ');
    if (f.size() > 4 && !t.empty() && (t[0] == "cgroup" || t[0] == "cgroup2")) {
      out.push_back(f[4]);
    }
  }
  return out;
}

int KillCgroupTree(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return 0;
  int killed = 0;
  std::ifstream procs(path + "/cgroup.procs");
  pid_t pid;
  while (procs >> pid) {
    if (pid > 0 && kill(pid, SIGKILL) == 0) ++killed;
  }
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.is_directory(ec)) killed += KillCgroupTree(e.path().string());
  }
  return killed;
}

void RemoveCgroupTree(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.is_directory(ec)) RemoveCgroupTree(e.path().string());
  }
  rmdir(path.c_str());
}

}  // namespace egress::testing
