// What the engine hands the state store per change: one target, and of its
// rules only the ones the change touched.
#include <gmock/gmock.h>

#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The rules part of the last write, for a write of exactly one target.
const RulesDelta& OnlyRulesOf(const StateWrite& w, const std::string& name) {
  EXPECT_EQ(w.targets.size(), 1u);
  EXPECT_EQ(w.targets[0].name, name);
  static const RulesDelta kNone;
  return w.targets.empty() || !w.targets[0].rules ? kNone : *w.targets[0].rules;
}

TEST_F(EngineTest, OneAllowWritesOneRule) {
  ASSERT_OK(
      engine_
          ->AddTarget(Spec("web", "/web", {Allow({"dns"}), Allow({"https"})}))
          .status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), {}}, kNow)
                .status());
  const RulesDelta& d = OnlyRulesOf(last_write_, "web");
  EXPECT_FALSE(d.all);
  EXPECT_THAT(d.put, ElementsAre(3u));
  EXPECT_THAT(d.removed, IsEmpty());
  EXPECT_EQ(Saved("web").rules.size(), 3u);
}

TEST_F(EngineTest, ATargetAnApplyCreatesIsWrittenWithAllItsRules) {
  control::ApplyRequest request;
  request.policies = {Spec("web", "/web", {Allow({"dns"}), Allow({"https"})})};
  ASSERT_OK(engine_->Apply(request, kNow).status());
  // The fixture's store keeps only the rules a write carries.
  EXPECT_EQ(Saved("web").rules.size(), 2u);
}

TEST_F(EngineTest, ADeleteWritesOneRemovedRule) {
  ASSERT_OK(
      engine_
          ->AddTarget(Spec("web", "/web", {Allow({"dns"}), Allow({"https"})}))
          .status());
  ASSERT_OK(engine_->DeleteRule({"web", 1, std::nullopt, false}).status());
  const RulesDelta& d = OnlyRulesOf(last_write_, "web");
  EXPECT_FALSE(d.all);
  EXPECT_THAT(d.put, IsEmpty());
  EXPECT_THAT(d.removed, ElementsAre(1u));
}

TEST_F(EngineTest, AModeChangeWritesNoRules) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  ASSERT_OK(engine_->SetMode({policy::Mode::kAudit, "web", false}).status());
  ASSERT_EQ(last_write_.targets.size(), 1u);
  EXPECT_FALSE(last_write_.targets[0].rules.has_value());
  EXPECT_EQ(Saved("web").mode, policy::Mode::kAudit);
}

TEST_F(EngineTest, ARemovedTargetIsWrittenAsGone) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  ASSERT_OK(engine_->RemoveTarget("web").status());
  ASSERT_EQ(last_write_.targets.size(), 1u);
  EXPECT_EQ(last_write_.targets[0].target, nullptr);
  EXPECT_EQ(saved_.targets.count("web"), 0u);
}

}  // namespace
}  // namespace egress::testing
