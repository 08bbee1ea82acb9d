// The checks a target's value passes wherever it is given: in a policy file
// (policy_file.cc, which adds FILE:LINE:COL and the field), on egressctl's
// command line (`target add`, which adds the option) and in egressd (any
// client of the control socket may send a target). One function each, so a
// target `egressctl export` writes is one `apply` takes back.
#ifndef EGRESS_USERSPACE_POLICY_TARGET_VALUES_H_
#define EGRESS_USERSPACE_POLICY_TARGET_VALUES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

// Whether `s` holds a wildcard of a cgroup pattern: '*', '?' or '['.
bool HasCgroupWildcard(absl::string_view s);

// Whether every bracket expression ("[...]") of the pattern component `c`
// closes, as fnmatch(FNM_NOESCAPE) reads it (fnmatch would take an unclosed
// "[" as a literal).
bool BracketsClose(absl::string_view c);

// A cgroup's name may hold the pattern characters '*', '?' and '[' (a
// `--pid` target names whatever cgroup its process is in). A cgroupPath
// value (`--cgroup`) writes each of them as the one-character bracket
// expression "[*]", "[?]" or "[[]": the text names exactly one cgroup, and,
// read as a cgroupPattern, it matches that cgroup alone.
//
// The cgroupPath text of the cgroup path `path`: its wildcards so written.
std::string CgroupPathText(absl::string_view path);

// The cgroup path of a cgroupPath value `text` (CgroupPathText's inverse).
// InvalidArgument for a wildcard outside those brackets:
//   "PATH" has a wildcard; use cgroupPattern (--pattern) to match several
//   cgroups, or write a literal *, ? or [ as [*], [?] or [[]
absl::StatusOr<std::string> CgroupPathOfText(absl::string_view text);

// One cgroup (`cgroupPath:`, `--cgroup`): CgroupPathOfText's errors.
absl::Status CheckCgroupPath(absl::string_view text);

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
