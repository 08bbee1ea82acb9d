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

// An updated target's rule list becomes the target's once switched, and
// each `allow` appends to it under the engine's lock: a list with no room
// left was moved whole by the first allow after a replacing apply (100,000
// rules, a third of that allow).
TEST(ApplyPlanTest, AnUpdatedTargetsRulesHaveRoomForAnAllow) {
  std::vector<ResolvedPolicy> first = {PolicyOn("web", SomeRules(3))};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["web"] = created.targets[0].target;
  std::vector<ResolvedPolicy> replace = {PolicyOn("web", SomeRules(40))};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, replace, 1000));
  ASSERT_TRUE(plan.targets[0].rules_changed);
  const std::vector<Rule>& rules = plan.targets[0].target.rules;
  ASSERT_EQ(rules.size(), 40u);
  EXPECT_GT(rules.capacity(), rules.size());
}

// An updated target's rules move out of its policy into the plan, as a new
// target's do: a copy of 100,000 rules was a tenth of a replacing apply's
// plan, which runs under the engine's lock.
TEST(ApplyPlanTest, AnUpdatedTargetTakesItsPolicysRules) {
  std::vector<ResolvedPolicy> first = {PolicyOn("web", SomeRules(3))};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["web"] = created.targets[0].target;
  const std::vector<Rule> sent = SomeRules(5);
  std::vector<ResolvedPolicy> again = {PolicyOn("web", sent)};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanAgainstState(state, again, 1000));
  const std::vector<Rule>& rules = plan.targets[0].target.rules;
  ASSERT_EQ(rules.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    Rule numbered = sent[i];
    numbered.id = rules[i].id;
    EXPECT_EQ(rules[i], numbered);
    // The first three keep their ids (the same rules), the rest are new.
    EXPECT_EQ(rules[i].id, i + 1);
    // Moved, not copied: a moved vector is left empty.
    EXPECT_TRUE(again[0].spec.rules[i].destinations.empty());
  }
}

// A policy's list with room for the allows that follow (a decoded
// request's: rule_json_tree.h) becomes the target's, its rules kept in
// place: a new list of 100,000 rules was 26 MB of pages first touched under
// the engine's lock. A rule listed twice is kept once, in its first place.
TEST(ApplyPlanTest, AnUpdatedTargetTakesItsPolicysListWhenItHasRoom) {
  std::vector<ResolvedPolicy> first = {PolicyOn("web", SomeRules(3))};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["web"] = created.targets[0].target;
  const std::vector<Rule> sent = SomeRules(40);
  std::vector<Rule> listed;
  listed.reserve(80);
  listed.insert(listed.end(), sent.begin(), sent.begin() + 10);
  listed.push_back(sent[5]);  // a repeat
  listed.insert(listed.end(), sent.begin() + 10, sent.end());
  // Moved in (a braced list would copy the policy, and its list without
  // the room).
  std::vector<ResolvedPolicy> again;
  again.push_back(PolicyOn("web", std::move(listed)));
  const Rule* storage = again[0].spec.rules.data();
  ASSERT_GE(again[0].spec.rules.capacity(), 80u);
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanAgainstState(state, again, 1000));
  const std::vector<Rule>& rules = plan.targets[0].target.rules;
  EXPECT_EQ(rules.data(), storage);
  ASSERT_EQ(rules.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    Rule numbered = sent[i];
    numbered.id = static_cast<uint32_t>(i + 1);  // 1-3 kept, then new ones
    EXPECT_EQ(rules[i], numbered);
  }
  EXPECT_EQ(plan.targets[0].target.next_rule_id, 41u);
  EXPECT_EQ(plan.changes[0].added.size(), 37u);
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("is listed 2 times"), std::string::npos);
}

// An apply that switches an audit target to enforce (or changes what it
// records) showed nothing in its diff: a dry run said only "Would update
// target", and the real apply switched silently. The diff names both ends.
TEST(ApplyPlanTest, ModeAndLoggingChangesAreInTheDiff) {
  ResolvedPolicy d = PolicyOn("d", SomeRules(2));
  d.spec.mode = policy::Mode::kAudit;
  d.spec.logging = policy::LoggingLevel::kAll;
  std::vector<ResolvedPolicy> first = {d};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  ASSERT_EQ(created.changes.size(), 1u);
  // A new target says how it starts.
  EXPECT_EQ(created.changes[0].mode, policy::Mode::kAudit);
  EXPECT_EQ(created.changes[0].logging, policy::LoggingLevel::kAll);
  EXPECT_FALSE(created.changes[0].mode_from.has_value());
  EXPECT_FALSE(created.changes[0].logging_from.has_value());
  DaemonState state;
  state.targets["d"] = created.targets[0].target;

  std::vector<ResolvedPolicy> same = {d};
  ASSERT_OK_AND_ASSIGN(ApplyPlan again, PlanApply(state, same, 1000));
  EXPECT_FALSE(again.changes[0].mode.has_value());
  EXPECT_FALSE(again.changes[0].logging.has_value());
  EXPECT_TRUE(again.changes[0].changed.empty());

  d.spec.mode = policy::Mode::kEnforce;
  d.spec.logging = policy::LoggingLevel::kDenied;
  std::vector<ResolvedPolicy> enforcing = {d};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, enforcing, 1000));
  const control::TargetChange& c = plan.changes[0];
  EXPECT_EQ(c.mode_from, policy::Mode::kAudit);
  EXPECT_EQ(c.mode, policy::Mode::kEnforce);
  EXPECT_EQ(c.logging_from, policy::LoggingLevel::kAll);
  EXPECT_EQ(c.logging, policy::LoggingLevel::kDenied);
  EXPECT_TRUE(c.added.empty());
  EXPECT_TRUE(c.removed.empty());
  EXPECT_TRUE(plan.targets[0].config_changed);

  // Logging alone.
  d.spec.mode = policy::Mode::kAudit;
  std::vector<ResolvedPolicy> quieter = {d};
  ASSERT_OK_AND_ASSIGN(plan, PlanApply(state, quieter, 1000));
  EXPECT_FALSE(plan.changes[0].mode.has_value());
  EXPECT_EQ(plan.changes[0].logging_from, policy::LoggingLevel::kAll);
  EXPECT_EQ(plan.changes[0].logging, policy::LoggingLevel::kDenied);
}

// A rule that only gets another comment or name keeps its id and is neither
// added nor removed, but `list` shows new text: the diff shows both texts.
TEST(ApplyPlanTest, CommentAndNameChangesAreInTheDiff) {
  std::vector<Rule> rules = SomeRules(3);
  rules[1].comment = "old";
  std::vector<ResolvedPolicy> first = {PolicyOn("web", rules)};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["web"] = created.targets[0].target;
  const Rule before = created.targets[0].target.rules[1];

  rules[1].comment = "new";
  rules[2].name = "api";
  rules[2].comment = "api";
  std::vector<ResolvedPolicy> edited = {PolicyOn("web", rules)};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, edited, 1000));
  const control::TargetChange& c = plan.changes[0];
  EXPECT_TRUE(c.added.empty());
  EXPECT_TRUE(c.removed.empty());
  ASSERT_EQ(c.changed.size(), 2u);
  EXPECT_EQ(c.changed[0].from, "ALLOW 1001/tcp to 10.0.0.1 # old");
  EXPECT_EQ(c.changed[0].to, "ALLOW 1001/tcp to 10.0.0.1 # new");
  EXPECT_EQ(c.changed[1].from, "ALLOW 1002/tcp to 10.0.0.2");
  EXPECT_EQ(c.changed[1].to, "ALLOW 1002/tcp to 10.0.0.2 # api");
  EXPECT_EQ(plan.targets[0].target.rules[1].id, before.id);
  EXPECT_TRUE(plan.targets[0].rules_changed);
}

// A rule listed twice in a policy was kept twice ([1] and [2] in `list`),
// and `delete` of it removed one copy and left the other in force. Kept once
// now, the first listing, with a note; the diff lists it once.
TEST(ApplyPlanTest, ARuleListedTwiceIsKeptOnceWithANote) {
  std::vector<Rule> rules = SomeRules(3);
  Rule again = rules[1];
  again.comment = "again";
  rules.push_back(again);
  rules.push_back(rules[1]);
  ResolvedPolicy web = PolicyOn("web", rules);
  web.spec.file = "web.yaml";
  std::vector<ResolvedPolicy> first = {web};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  const TargetState& t = created.targets[0].target;
  ASSERT_EQ(t.rules.size(), 3u);
  EXPECT_EQ(t.rules[1].comment, "");  // the first listing
  EXPECT_EQ(t.rules[2].id, 3u);
  EXPECT_EQ(created.changes[0].added.size(), 3u);
  ASSERT_EQ(created.notes.size(), 1u);
  EXPECT_EQ(created.notes[0],
            "note: policy web (web.yaml): ALLOW 1001/tcp to 10.0.0.1 is "
            "listed 3 times. Each is kept once (the first listing), as "
            "egressctl allow skips an existing rule");

  DaemonState state;
  state.targets["web"] = t;
  std::vector<ResolvedPolicy> same = {web};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply(state, same, 1000));
  EXPECT_EQ(plan.targets[0].target.rules, t.rules);
  EXPECT_FALSE(plan.targets[0].rules_changed);
  EXPECT_TRUE(plan.changes[0].added.empty());
  EXPECT_TRUE(plan.changes[0].removed.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_EQ(plan.notes[0], created.notes[0]);

  // A target that holds a rule twice (an apply before this change) gets it
  // once on the next apply.
  DaemonState doubled;
  doubled.targets["web"] = t;
  Rule copy = t.rules[1];
  copy.id = 4;
  doubled.targets["web"].rules.push_back(copy);
  doubled.targets["web"].next_rule_id = 5;
  std::vector<ResolvedPolicy> once = {PolicyOn("web", SomeRules(3))};
  ASSERT_OK_AND_ASSIGN(plan, PlanApply(doubled, once, 1000));
  EXPECT_EQ(plan.targets[0].target.rules, t.rules);
  EXPECT_EQ(plan.changes[0].removed.size(), 1u);
  EXPECT_TRUE(plan.notes.empty());
}

// A workload target's change says what it selects: it has no one cgroup,
// and the diff printed "created target zz ()".
TEST(ApplyPlanTest, AWorkloadTargetsChangeNamesWhatItSelects) {
  ResolvedPolicy zz = PolicyOn("zz", SomeRules(1));
  zz.spec.source = policy::TargetSource::kSelector;
  zz.spec.source_value = "app=web";
  zz.cgroup = "";
  std::vector<ResolvedPolicy> policies = {zz};
  ASSERT_OK_AND_ASSIGN(ApplyPlan plan, PlanApply({}, policies, 1000));
  EXPECT_EQ(plan.changes[0].workload, "selector app=web");
  EXPECT_EQ(plan.changes[0].cgroup, "");
  std::vector<ResolvedPolicy> cgroup = {PolicyOn("web", SomeRules(1))};
  ASSERT_OK_AND_ASSIGN(plan, PlanApply({}, cgroup, 1000));
  EXPECT_EQ(plan.changes[0].workload, "");
}

// Conflicts found against egressd's state named no file, and "target a
// exists for cgroup /a" exited 1 (FailedPrecondition) though a conflict is
// bad input. They are AlreadyExists (exit 2) and name the file and the
// target's position when the CLI sent them.
TEST(ApplyPlanTest, ConflictsNameThePolicyFileAndAreBadInput) {
  std::vector<ResolvedPolicy> first = {PolicyOn("a", SomeRules(1))};
  ASSERT_OK_AND_ASSIGN(ApplyPlan created, PlanApply({}, first, 1000));
  DaemonState state;
  state.targets["a"] = created.targets[0].target;

  ResolvedPolicy moved = PolicyOn("a", SomeRules(1));
  moved.cgroup = "/c";
  moved.spec.file = "policies/a.yaml";
  moved.spec.target_at = "7:17";
  std::vector<ResolvedPolicy> elsewhere = {moved};
  EXPECT_STATUS(PlanApply(state, elsewhere, 1000).status(),
                absl::StatusCode::kAlreadyExists,
                "policies/a.yaml:7:17: spec.target: target a exists for "
                "cgroup /a; remove it before applying it to cgroup /c");

  ResolvedPolicy same_cgroup = PolicyOn("b", SomeRules(1));
  same_cgroup.cgroup = "/a";
  same_cgroup.spec.file = "b.yaml";
  std::vector<ResolvedPolicy> taken = {same_cgroup};
  EXPECT_STATUS(PlanApply(state, taken, 1000).status(),
                absl::StatusCode::kAlreadyExists,
                "b.yaml: policy b: cgroup /a is already target 'a'");

  // A policy from no file (target add, egressctl run) reads as before.
  moved.spec.file.clear();
  std::vector<ResolvedPolicy> no_file = {moved};
  EXPECT_EQ(PlanApply(state, no_file, 1000).status().message(),
            "target a exists for cgroup /a; remove it before applying it to "
            "cgroup /c");
}

}  // namespace
}  // namespace egress
