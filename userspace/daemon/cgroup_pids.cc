#include "userspace/daemon/cgroup_pids.h"

#include <dirent.h>

#include <fstream>

#include "absl/strings/str_cat.h"

namespace egress {
namespace {

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

std::vector<std::string> CgroupPids(const std::string& abs_path, size_t max) {
  std::vector<std::string> pids;
  CollectPids(abs_path, max, pids, 0);
  return pids;
}

}  // namespace egress
