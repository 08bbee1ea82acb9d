// The one rule for the names operators give targets, policies and rules. The
// names end up in pin paths, file names, metric labels and command lines, so
// they are kept to a small, shell- and path-safe alphabet.
#ifndef EGRESS_USERSPACE_POLICY_NAMES_H_
#define EGRESS_USERSPACE_POLICY_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

// True for 1-64 ASCII letters, digits, '-', '_', '.' or '@'.
bool ValidName(absl::string_view name);

// OkStatus for a ValidName, else InvalidArgument
//   bad NOUN "NAME": use 1-64 letters, digits, '-', '_', '.' or '@'
// e.g. CheckName("a b") is `bad name "a b": ...` and
// CheckName("a b", "target name") is `bad target name "a b": ...`.
absl::Status CheckName(absl::string_view name, absl::string_view noun = "name");

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_NAMES_H_
