// What a test's own container runtime (dockerd, Podman) leaves to clean up:
// mounts below its directory and the parent cgroup of its containers in
// every cgroup hierarchy (v1 and v2).
#ifndef EGRESS_TESTS_TESTING_RUNTIME_CLEANUP_H_
#define EGRESS_TESTS_TESTING_RUNTIME_CLEANUP_H_

#include <string>
#include <vector>

namespace egress::testing {

// The mount points below `dir`, deepest first.
std::vector<std::string> MountsBelow(const std::string& dir);

// The mount point of every cgroup hierarchy (v1 and v2).
std::vector<std::string> CgroupMounts();

// SIGKILLs every process in a cgroup directory tree (what a runtime the
// test started left there, e.g. Podman's exec-session conmon processes);
// returns how many it signalled.
int KillCgroupTree(const std::string& path);

// Removes a cgroup directory tree depth-first (only empty cgroups go).
void RemoveCgroupTree(const std::string& path);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_RUNTIME_CLEANUP_H_
