// Finding the cgroups a cgroupPattern target covers, and the directories to
// watch so that cgroups created later are found at once.
#ifndef EGRESS_USERSPACE_DAEMON_CGROUP_MATCH_H_
#define EGRESS_USERSPACE_DAEMON_CGROUP_MATCH_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace egress {

struct CgroupMatches {
  // Paths relative to the cgroup2 mount ("/system.slice/docker-ab.scope")
  // that match the pattern, sorted; a match inside another match is left
  // out (the outer one's programs already run for it).
  std::vector<std::string> cgroups;
  // Directories (relative, "/" for the root) in which a new child could
  // match or lead to a match: what to watch with inotify.
  std::vector<std::string> watch_dirs;
  // The walk stopped at `max_dirs` directories; some matches may be missing.
  bool truncated = false;
};

// Walks the tree below `root` (the cgroup2 mount) from the pattern's literal
// prefix (the components before the first wildcard), matching with
// policy::CgroupPatternMatches. Without "**" the walk descends only into
// directories whose name matches the pattern component at that depth; with
// "**" it visits the whole subtree below the prefix. At most `max_dirs`
// directories are read. A missing prefix yields no matches and no watches
// below it (its closest existing ancestor is watched instead).
CgroupMatches FindCgroups(const std::string& root, absl::string_view pattern,
                          size_t max_dirs = 20000);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_CGROUP_MATCH_H_
