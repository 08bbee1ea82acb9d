// The processes of a cgroup tree, as pids read from cgroup.procs.
#ifndef EGRESS_USERSPACE_DAEMON_CGROUP_PIDS_H_
#define EGRESS_USERSPACE_DAEMON_CGROUP_PIDS_H_

#include <cstddef>
#include <string>
#include <vector>

namespace egress {

// The pids of the cgroup at `abs_path` and its descendants (at most `max`,
// at most 32 levels deep), parents' first.
std::vector<std::string> CgroupPids(const std::string& abs_path, size_t max);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_CGROUP_PIDS_H_
