// A test suite with a containerd of its own (tests/testing/containerd.h),
// started once per suite with the busybox image imported into CRI's
// namespace, and an egressd per test (EgressdTest). A suite whose
// containerd could not start fails each test with the reason. Its tests
// probe from containers with busybox nc to two loopback listeners.
#ifndef EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_
#define EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/containerd.h"
#include "tests/testing/listeners.h"
#include "tests/testing/poll.h"
#include "tests/testing/status_matchers.h"

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

  // busybox nc's words for a connect the kernel refused with EPERM.
  static constexpr char kEperm[] = "Operation not permitted";

  // Last in each test's SetUp (after EgressdTest::SetUp): the listeners
  // the containers connect to.
  void CreateListeners() {
    for (auto* l : {&allowed_, &denied_}) {
      ASSERT_OK_AND_ASSIGN(*l, TcpListener::Create("127.0.0.1"));
    }
  }
  // First in each test's TearDown: the containers it started (their
  // cgroups live below the test's).
  void RemoveStarted() {
    if (containerd_ == nullptr) return;
    for (const std::string& id : started_) {
      EXPECT_OK(containerd_->Remove(kNamespace, id));
    }
  }

  static std::string ConnectScript(uint16_t port) {
    return absl::StrCat("echo hi | /bin/busybox nc -w 2 127.0.0.1 ", port);
  }
  // `ctr task exec` of a connect in container `id`: nc's output.
  std::string ExecConnect(const std::string& id, uint16_t port) {
    auto r = containerd_->Ctr(
        kNamespace,
        {"task", "exec", "--exec-id", absl::StrCat("probe-", ++execs_), id,
         "/bin/busybox", "sh", "-c", ConnectScript(port)});
    return r.ok() ? *r : std::string(r.status().message());
  }
  bool Refused(const std::string& id, uint16_t port) {
    return absl::StrContains(ExecConnect(id, port), kEperm);
  }
  // Polls (bounded) until a connect from `id` to `port` is refused (want)
  // or not: egressd decides a container once containerd lists it.
  bool WaitRefused(const std::string& id, uint16_t port, bool want = true) {
    return PollUntil([&] { return Refused(id, port) == want; },
                     absl::Seconds(10), absl::Milliseconds(100));
  }

  void Allow(const std::string& target, uint16_t port) {
    CtlOk(
        {"allow", absl::StrCat(port, "/tcp"), "127.0.0.1", "--target", target});
  }

  static inline Containerd* containerd_ = nullptr;
  static inline std::string* start_error_ = nullptr;
  std::unique_ptr<TcpListener> allowed_, denied_;
  // The containers a test started (ids), removed by RemoveStarted.
  std::vector<std::string> started_;
  int execs_ = 0;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_PRIVILEGED_CONTAINERD_SUITE_H_
