// The apply planner's new targets: their rules move out of the request's
// policies into the plan (an apply of 100,000 rules copies none), numbered
// from 1, each listed in the diff.
#include "userspace/daemon/apply_plan.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

using policy::C;
using policy::Rule;

std::vector<Rule> SomeRules(int n) {
  std::vector<Rule> rules;
  for (int i = 0; i < n; ++i) {
    Rule r;
    r.spec = absl::StrCat(1000 + i, "/tcp");
    r.ports = {policy::Tcp(static_cast<uint16_t>(1000 + i))};
    r.destinations = {C(absl::StrCat("10.0.0.", i))};
    rules.push_back(r);
  }
  return rules;
}

ResolvedPolicy PolicyOn(const std::string& name, std::vector<Rule> rules) {
  ResolvedPolicy p;
  p.spec.name = name;
  p.spec.source = policy::TargetSource::kCgroup;
  p.spec.source_value = "/" + name;
  p.spec.rules = std::move(rules);
  p.cgroup = "/" + name;
  return p;
}

TEST(ApplyPlanTest, NewTargetsTakeTheirPoliciesRules) {
  const std::vector<Rule> web = SomeRules(5), db = SomeRules(3);
  std::vector<ResolvedPolicy> policies = {PolicyOn("web", web),
                                          PolicyOn("db", db)};
  const DaemonState empty;
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan,
                       PlanAgainstState(empty, policies, /*now=*/1000));
  for (const TargetPlan& t : plan.targets) EXPECT_TRUE(t.target.rules.empty());
  PlanNewTargets(policies, plan);
  ASSERT_EQ(plan.targets.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<Rule>& sent = i == 0 ? web : db;
    const TargetPlan& t = plan.targets[i];
    EXPECT_TRUE(t.create);
    EXPECT_TRUE(t.rules_changed);
    ASSERT_EQ(t.target.rules.size(), sent.size());
    for (size_t r = 0; r < sent.size(); ++r) {
      Rule numbered = sent[r];
      numbered.id = static_cast<uint32_t>(r + 1);
      EXPECT_EQ(t.target.rules[r], numbered);
      EXPECT_EQ(plan.changes[i].added[r], policy::FormatRule(sent[r]));
    }
    EXPECT_EQ(t.target.next_rule_id, sent.size() + 1);
    // Moved, not copied.
    EXPECT_TRUE(policies[i].spec.rules.empty());
  }
}

TEST(ApplyPlanTest, AnnotationsAloneChangeTheStateNotTheRules) {
  ResolvedPolicy web = PolicyOn("web", SomeRules(2));
  web.spec.annotations = {{"description", "web"}};
  std::vector<ResolvedPolicy> first = {web};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  ASSERT_EQ(created.targets.size(), 1u);
  EXPECT_EQ(created.targets[0].target.annotations, web.spec.annotations);
  DaemonState state;
  state.targets["web"] = created.targets[0].target;

  std::vector<ResolvedPolicy> same = {web};
  ASSERT_OK_AND_ASSIGN(ApplyPlan again, PlanApply(state, same, 1000));
  EXPECT_FALSE(again.targets[0].annotations_changed);
  EXPECT_FALSE(again.targets[0].rules_changed);

  web.spec.annotations["owner"] = "ops";
  std::vector<ResolvedPolicy> annotated = {web};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, annotated, 1000));
  EXPECT_TRUE(plan.targets[0].annotations_changed);
  EXPECT_FALSE(plan.targets[0].rules_changed);
  EXPECT_FALSE(plan.targets[0].config_changed);
  EXPECT_EQ(plan.targets[0].target.annotations, web.spec.annotations);
}

}  // namespace
}  // namespace egress
