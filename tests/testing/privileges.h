// Gate for tests that need root (cgroups, netns, sysctls, BPF).
#ifndef EGRESS_TESTS_TESTING_PRIVILEGES_H_
#define EGRESS_TESTS_TESTING_PRIVILEGES_H_

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace egress {
namespace testing {

// OK when the effective uid is 0. Otherwise:
//  - CI unset or empty: Unavailable with a skip message (developer machine);
//  - CI set (any non-empty value): PermissionDenied, because a CI job that
//    silently skips every privileged test proves nothing.
absl::Status RequireRoot();

}  // namespace testing
}  // namespace egress

// Use as the first statement of a privileged TEST/SetUp: skips or fails.
#define EGRESS_REQUIRE_ROOT()                                           \
  do {                                                                  \
    if (::absl::Status egress_root_ = ::egress::testing::RequireRoot(); \
        !egress_root_.ok()) {                                           \
      if (::absl::IsUnavailable(egress_root_)) {                        \
        GTEST_SKIP() << egress_root_.message();                         \
      }                                                                 \
      FAIL() << egress_root_.message();                                 \
    }                                                                   \
  } while (0)

#endif  // EGRESS_TESTS_TESTING_PRIVILEGES_H_
