// The engine when the state or the pins are not what it expects: a state
// file that cannot be written, pins without a state, programs that read maps
// that are no longer pinned. No root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

class EngineLifecycleTest : public EngineTest {};

TEST_F(EngineLifecycleTest, RemoveThatCannotBeSavedLeavesTheTargetEnforced) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  const uint32_t id = IdOf("web");
  const uint32_t ruleset = kernel_.ActiveRuleset(id);
  fail_save_ = true;
  EXPECT_STATUS(engine_->RemoveTarget("web"), absl::StatusCode::kUnavailable,
                "'web' stays enforced: cannot save the state: disk full");
  EXPECT_TRUE(kernel_.ProgramsLoaded(id));
  EXPECT_EQ(kernel_.AttachedTo(id, KernelPort::kOwnCgroup),
            *kernel_.CgroupId("/web"));
  EXPECT_EQ(kernel_.ActiveRuleset(id), ruleset);
  ASSERT_EQ(engine_->TargetInfos().size(), 1u);
  EXPECT_TRUE(engine_->TargetInfos()[0].attached);
  // Once the state can be written, remove works and lifts it.
  fail_save_ = false;
  ASSERT_OK(engine_->RemoveTarget("web").status());
  EXPECT_FALSE(kernel_.ProgramsLoaded(id));
  EXPECT_EQ(kernel_.AttachedTo(id, KernelPort::kOwnCgroup), 0u);
  EXPECT_TRUE(saved_.targets.empty());
}

}  // namespace
}  // namespace egress::testing
