#include "userspace/kernel/socket_owners.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace egress {
namespace {

std::vector<pid_t> Pids(const std::string& cgroup_dir, size_t max) {
  std::vector<pid_t> out;
  std::ifstream in(cgroup_dir + "/cgroup.procs");
  std::string line;
  while (out.size() < max && std::getline(in, line)) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) out.push_back(pid);
  }
  return out;
}

std::string Comm(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/comm"));
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// Adds the sockets process `pid` holds; `*budget` readlinks at most.
void AddSockets(pid_t pid, size_t* budget,
                std::map<uint32_t, SocketProcess>& out) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::string comm;
  while (*budget > 0) {
    dirent* e = readdir(d);
    if (e == nullptr) break;
    if (e->d_name[0] == '.') continue;
    --*budget;
    char target[64];
    ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view link(target, static_cast<size_t>(n));
    uint32_t inode = 0;
    if (!absl::ConsumePrefix(&link, "socket:[") ||
        !absl::ConsumeSuffix(&link, "]") || !absl::SimpleAtoi(link, &inode)) {
      continue;
    }
    if (out.count(inode) != 0) continue;
    if (comm.empty()) comm = Comm(pid);
    out[inode] = {pid, comm};
  }
  closedir(d);
}

}  // namespace

std::map<uint32_t, SocketProcess> SocketOwners(
    const std::vector<std::string>& cgroup_dirs, OwnerLimits limits) {
  std::map<uint32_t, SocketProcess> out;
  size_t processes = 0;
  size_t budget = limits.max_files;
  for (const std::string& dir : cgroup_dirs) {
    for (pid_t pid : Pids(dir, limits.max_processes - processes)) {
      ++processes;
      AddSockets(pid, &budget, out);
    }
    if (processes >= limits.max_processes || budget == 0) break;
  }
  return out;
}

}  // namespace egress
