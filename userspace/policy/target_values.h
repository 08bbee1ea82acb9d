// The checks a target's value passes wherever it is given: in a policy file
// (policy_file.cc, which adds FILE:LINE:COL and the field), on egressctl's
// command line (`target add`, which adds the option) and in egressd (any
// client of the control socket may send a target). One function each, so a
// target `egressctl export` writes is one `apply` takes back.
#ifndef EGRESS_USERSPACE_POLICY_TARGET_VALUES_H_
#define EGRESS_USERSPACE_POLICY_TARGET_VALUES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

// Whether `s` holds a wildcard of a cgroup pattern: '*', '?' or '['.
bool HasCgroupWildcard(absl::string_view s);

// Whether every bracket expression ("[...]") of the pattern component `c`
// closes, as fnmatch(FNM_NOESCAPE) reads it (fnmatch would take an unclosed
// "[" as a literal).
bool BracketsClose(absl::string_view c);

// One cgroup (`cgroupPath:`, `--cgroup`): no wildcard, since a policy file
// could not say it back. InvalidArgument:
//   "PATH" has a wildcard; use cgroupPattern (--pattern) to match several
//   cgroups
absl::Status CheckCgroupPath(absl::string_view path);

// A cgroup pattern (`cgroupPattern:`, `--pattern`): at least one wildcard,
// and every "[" of every component closed. InvalidArgument:
//   "GLOB" has no wildcard (*, ? or [...]); use cgroupPath (--cgroup)
//   "GLOB": unclosed "["
absl::Status CheckCgroupPattern(absl::string_view pattern);

// A container name or id (`container:`, `--container`): 1-128 bytes, no
// space, '/', ',', '=' or line break. InvalidArgument:
//   "NAME" is not a container name or id
absl::Status CheckContainer(absl::string_view container);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_TARGET_VALUES_H_
