// A Learner over a fresh learned.db in a temp dir, for target "web" in audit
// mode: what the learner and raw-socket tests share.
#ifndef EGRESS_TESTS_UNIT_LEARNER_FIXTURE_H_
#define EGRESS_TESTS_UNIT_LEARNER_FIXTURE_H_

#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/learner.h"

namespace egress {

class LearnerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-learner-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Restart();
    web_.name = "web";
    web_.cgroup = "/web";
    web_.mode = policy::Mode::kAudit;
  }
  void TearDown() override {
    learner_.reset();
    RemoveTree(dir_).IgnoreError();
  }
  // A new Learner over the same directory, as when egressd restarts.
  void Restart() {
    learner_.reset();
    learner_ = std::make_unique<Learner>(dir_);
    ASSERT_OK(learner_->Load());
  }
  void Learn(const egress_event& e, bool allows_recorded = true) {
    // Records carry boot-time stamps (ts_ns 0 or 1): the offset makes them
    // now.
    learner_->Learn(e, "web", allows_recorded, absl::GetCurrentTimeNanos());
  }
  std::string Suggestion() {
    auto r = learner_->Suggest(web_, {"web", std::nullopt, 32, 128}, "node");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->yaml : "";
  }

  std::string dir_;
  std::unique_ptr<Learner> learner_;
  TargetState web_;
};

}  // namespace egress

#endif  // EGRESS_TESTS_UNIT_LEARNER_FIXTURE_H_
