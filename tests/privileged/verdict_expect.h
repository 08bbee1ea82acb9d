// Expectations shared by the privileged tests. Closed loopback ports are the
// test hosts: an allowed attempt ends in ECONNREFUSED (or 0 where something
// listens or for UDP), a denied one in EPERM before any packet leaves.
#ifndef EGRESS_TESTS_PRIVILEGED_VERDICT_EXPECT_H_
#define EGRESS_TESTS_PRIVILEGED_VERDICT_EXPECT_H_

#include <errno.h>
#include <string.h>

#include "gtest/gtest.h"

namespace egress::testing {

inline bool Allowed(int rc) { return rc == 0 || rc == ECONNREFUSED; }

}  // namespace egress::testing

#define EXPECT_ALLOWED(expr)                     \
  do {                                           \
    int rc_ = (expr);                            \
    EXPECT_TRUE(::egress::testing::Allowed(rc_)) \
        << #expr << " -> " << strerror(rc_);     \
  } while (0)
#define EXPECT_DENIED(expr) \
  EXPECT_EQ((expr), EPERM) << #expr << " should be refused with EPERM"

#endif  // EGRESS_TESTS_PRIVILEGED_VERDICT_EXPECT_H_
