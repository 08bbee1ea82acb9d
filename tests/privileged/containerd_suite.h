// A test suite with a containerd of its own (tests/testing/containerd.h),
// started once per suite with the busybox image imported into CRI's
// namespace, and an egressd per test (EgressdTest). A suite whose
// containerd could not start fails each test with the reason.
#ifndef EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_
#define EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/containerd.h"

namespace egress::testing {

class ContainerdSuite : public EgressdTest {
 protected:
  // CRI's containerd namespace, which egressd reads by default.
  static constexpr char kNamespace[] = "k8s.io";
  static constexpr char kImage[] = "egress.test/busybox:1";

  static void SetUpTestSuite() {
    auto c = Containerd::Start();
    if (!c.ok()) {
      start_error_ = new std::string(c.status().ToString());
      return;
    }
    containerd_ = c->release();
    if (absl::Status st = containerd_->ImportBusyboxImage(kNamespace, kImage);
        !st.ok()) {
      start_error_ = new std::string(st.ToString());
    }
  }
  static void TearDownTestSuite() {
    delete containerd_;
    containerd_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }
  // First in each test's SetUp.
  static void ExpectContainerd() {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_NE(containerd_, nullptr);
  }

  static inline Containerd* containerd_ = nullptr;
  static inline std::string* start_error_ = nullptr;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_
