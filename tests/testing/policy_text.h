// Policy text that tests write or parse: the head every EgressPolicy file
// starts with, so a test's text shows only its rules.
#ifndef EGRESS_TESTS_TESTING_POLICY_TEXT_H_
#define EGRESS_TESTS_TESTING_POLICY_TEXT_H_

#include <string>

#include "absl/strings/str_cat.h"

namespace egress::testing {

// An EgressPolicy named `name` for the cgroup at `cgroup_path` (relative to
// the cgroup2 root), up to and including its "  egress:" line.
inline std::string PolicyHead(const std::string& name,
                              const std::string& cgroup_path) {
  return absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\n"
      "kind: EgressPolicy\n"
      "metadata:\n"
      "  name: ",
      name,
      "\n"
      "spec:\n"
      "  target:\n"
      "    cgroupPath: ",
      cgroup_path,
      "\n"
      "  egress:\n");
}

// The first seven lines of the unit tests' inline policies: an
// EgressPolicy "t" for t.service, up to the end of spec.target. Other spec.*
// fields follow at line 8 with a two-space indent (tests expect errors at
// line:column positions counted from here).
inline constexpr char kInlinePolicyHead[] = R"(apiVersion: egress.dev/v1alpha1
kind: EgressPolicy
metadata:
  name: t
spec:
  target:
    systemdUnit: t.service
)";

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_POLICY_TEXT_H_
