// Which process holds a socket: the pids of a set of cgroups (cgroup.procs)
// and their open files (/proc/PID/fd, "socket:[INODE]"). Bounded in
// processes and files read, so a cgroup with a huge fd table costs at most
// the limits.
#ifndef EGRESS_USERSPACE_KERNEL_SOCKET_OWNERS_H_
#define EGRESS_USERSPACE_KERNEL_SOCKET_OWNERS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace egress {

struct SocketProcess {
  pid_t pid = 0;
  std::string comm;
};

struct OwnerLimits {
  size_t max_processes = 4096;
  size_t max_files = 262144;  // readlink calls in all
};

// Socket inode -> the first process (lowest pid of the walk) found holding
// it, among the processes of `cgroup_dirs` (absolute paths). Unreadable
// cgroups or processes (gone meanwhile) are skipped: the answer is a best
// effort, never an error.
std::map<uint32_t, SocketProcess> SocketOwners(
    const std::vector<std::string>& cgroup_dirs, OwnerLimits limits = {});

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_SOCKET_OWNERS_H_
