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

// An allow in a port class the target has is recompiled from the active
// set: the write carries the new rule alone, after the target's last rule,
// and the store ends up with the engine's rules in their order.
TEST_F(EngineTest, AnAllowTheRecompileTakesCarriesTheNewRuleAlone) {
  ASSERT_OK(engine_
                ->AddTarget(Spec("web", "/web",
                                 {Allow({"https", "10.0.0.1"}),
                                  Allow({"https", "10.0.0.2"})}))
                .status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "10.0.0.3"}), {}}, kNow)
                .status());
  const RulesDelta& d = OnlyRulesOf(last_write_, "web");
  EXPECT_FALSE(d.all);
  EXPECT_THAT(d.put, ElementsAre(3u));
  EXPECT_EQ(d.appended_after, std::optional<uint32_t>(2u));
  // A delete between appends, then a rule in a new port class (compiled
  // whole: written with every rule, not appended).
  ASSERT_OK(engine_->DeleteRule({"web", 3, std::nullopt, false}).status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "10.0.0.4"}), {}}, kNow)
                .status());
  EXPECT_EQ(OnlyRulesOf(last_write_, "web").appended_after,
            std::optional<uint32_t>(2u));
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), {}}, kNow)
                .status());
  EXPECT_FALSE(OnlyRulesOf(last_write_, "web").appended_after.has_value());
  auto targets = engine_->Targets("web", false);
  ASSERT_OK(targets.status());
  ASSERT_EQ((*targets)[0].rules.size(), 4u);
  EXPECT_EQ(Saved("web").rules, (*targets)[0].rules);
  EXPECT_EQ(Saved("web").next_rule_id, 6u);
}

// A failed save of an appended rule leaves the target's rules as they were.
TEST_F(EngineTest, AFailedSaveOfAnAppendedRuleChangesNothing) {
  ASSERT_OK(
      engine_->AddTarget(Spec("web", "/web", {Allow({"https", "10.0.0.1"})}))
          .status());
  const uint32_t ruleset = kernel_.ActiveRuleset(IdOf("web"));
  fail_save_ = true;
  EXPECT_FALSE(
      engine_->AddRule({"web", Allow({"https", "10.0.0.2"}), {}}, kNow).ok());
  fail_save_ = false;
  auto targets = engine_->Targets("web", false);
  ASSERT_OK(targets.status());
  EXPECT_EQ((*targets)[0].rules.size(), 1u);
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), ruleset);
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "10.0.0.2"}), {}}, kNow)
                .status());
  EXPECT_EQ(Saved("web").rules.size(), 2u);
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
