// The engine against a kernel in memory: apply's diff and id keeping,
// temporary rules ending, a failed apply rolled back, re-created cgroups
// re-attached, rules added in two spellings, shadowed allows. No root.
#include "userspace/daemon/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"
#include "userspace/daemon/learner.h"

namespace egress::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A policy file's annotations and rule names are kept with the target (for
// `export`); a re-apply that changes only the annotations saves them
// without touching the kernel's rules.
TEST_F(EngineTest, ApplyKeepsAnnotationsAndRuleNames) {
  control::ApplyRequest request;
  policy::Rule named = Allow({"dns", "10.0.0.53"});
  named.name = "dns";
  named.comment = "dns: the resolver";
  request.policies = {Spec("web", "/web", {named})};
  request.policies[0].annotations = {{"description", "web"}};
  ASSERT_OK(engine_->Apply(request, kNow).status());
  EXPECT_EQ(Saved("web").annotations, request.policies[0].annotations);
  EXPECT_EQ(Saved("web").rules[0].name, "dns");
  const uint32_t ruleset = kernel_.ActiveRuleset(IdOf("web"));

  request.policies[0].annotations["owner"] = "ops";
  const int saves = saves_;
  ASSERT_OK(engine_->Apply(request, kNow).status());
  EXPECT_GT(saves_, saves);
  EXPECT_EQ(Saved("web").annotations, request.policies[0].annotations);
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), ruleset);
  ASSERT_OK_AND_ASSIGN(std::vector<TargetState> live,
                       engine_->Targets("web", /*all=*/false));
  EXPECT_EQ(live[0].annotations, request.policies[0].annotations);
}

// A cgroup whose name holds pattern characters (a `--pid` target's can) is
// named by a cgroupPath with each of them as "[*]", "[?]" or "[[]": that
// cgroup, and the text `export` writes for it.
TEST_F(EngineTest, CgroupPathWithLiteralWildcardsNamesThatCgroup) {
  kernel_.MakeCgroup("/odd*name?[x]");
  kernel_.MakeCgroup("/oddAnameBx");
  control::ApplyRequest request;
  request.policies = {Spec("odd", "/odd[*]name[?][[]x]", {})};
  ASSERT_OK(engine_->Apply(request, kNow).status());
  EXPECT_EQ(Saved("odd").cgroup, "/odd*name?[x]");
  EXPECT_EQ(kernel_.AttachedTo(IdOf("odd"), KernelPort::kOwnCgroup),
            *kernel_.CgroupId("/odd*name?[x]"));
  EXPECT_EQ(PolicyTargetOf(Saved("odd")).value, "/odd[*]name[?][[]x]");
  // Unescaped, the text is a pattern, which a cgroupPath refuses.
  request.policies = {Spec("other", "/odd*name?[x]", {})};
  EXPECT_THAT(std::string(engine_->Apply(request, kNow).status().message()),
              HasSubstr("has a wildcard"));
}

TEST_F(EngineTest, ApplyCreatesThenDiffsAndKeepsIdsOfUnchangedRules) {
  control::ApplyRequest first;
  first.policies = {
      Spec("web", "/web",
           {Allow({"dns", "10.0.0.53"}), Allow({"smtp", "10.0.0.5"})})};
  ASSERT_OK_AND_ASSIGN(control::ApplyResponse created,
                       engine_->Apply(first, kNow));
  ASSERT_EQ(created.changes.size(), 1u);
  EXPECT_EQ(created.changes[0].action, "create");
  EXPECT_EQ(created.changes[0].added.size(), 2u);
  const uint32_t id = IdOf("web");
  const uint32_t first_ruleset = kernel_.ActiveRuleset(id);
  EXPECT_NE(first_ruleset, 0u);
  EXPECT_EQ(kernel_.AttachedTo(id, KernelPort::kOwnCgroup),
            *kernel_.CgroupId("/web"));
  const uint32_t smtp_id = Saved("web").rules[1].id;

  // smtp spelled as its port: the same rule, so it keeps its id; dns goes;
  // https comes with a fresh id.
  control::ApplyRequest second;
  second.policies = {Spec(
      "web", "/web",
      {Allow({"25/tcp", "10.0.0.5"}), Allow({"https", "203.0.113.0/24"})})};
  second.dry_run = true;
  ASSERT_OK_AND_ASSIGN(control::ApplyResponse dry,
                       engine_->Apply(second, kNow));
  EXPECT_EQ(dry.changes[0].action, "update");
  EXPECT_EQ(dry.changes[0].added.size(), 1u);
  EXPECT_EQ(dry.changes[0].removed.size(), 1u);
  EXPECT_EQ(kernel_.ActiveRuleset(id), first_ruleset) << "dry run changed";

  second.dry_run = false;
  ASSERT_OK(engine_->Apply(second, kNow).status());
  const TargetState& t = Saved("web");
  ASSERT_EQ(t.rules.size(), 2u);
  EXPECT_EQ(t.rules[0].id, smtp_id);
  EXPECT_GT(t.rules[1].id, smtp_id);
  EXPECT_NE(kernel_.ActiveRuleset(id), first_ruleset);
  // Only the active set has entries: the old one went without recompiling.
  EXPECT_THAT(kernel_.RulesetsInMaps(), ElementsAre(kernel_.ActiveRuleset(id)));

  // The same policy again changes nothing in the kernel.
  const uint32_t ruleset = kernel_.ActiveRuleset(id);
  ASSERT_OK(engine_->Apply(second, kNow).status());
  EXPECT_EQ(kernel_.ActiveRuleset(id), ruleset);
}

TEST_F(EngineTest, TemporaryRulesEndOnTime) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  control::RuleAddRequest add{"web", Allow({"smtp", "10.0.0.5"}), 60};
  ASSERT_OK_AND_ASSIGN(control::RuleAddResponse added,
                       engine_->AddRule(add, kNow));
  EXPECT_EQ(added.expires, kNow + 60);
  // Adding it again for longer extends it instead of adding a second rule.
  add.for_seconds = 120;
  ASSERT_OK_AND_ASSIGN(control::RuleAddResponse extended,
                       engine_->AddRule(add, kNow));
  EXPECT_TRUE(extended.extended);
  EXPECT_EQ(Saved("web").rules.size(), 1u);
  const uint32_t ruleset = kernel_.ActiveRuleset(IdOf("web"));
  EXPECT_EQ(engine_->ExpireRules(kNow + 119), 0);
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), ruleset);
  EXPECT_EQ(engine_->ExpireRules(kNow + 120), 1);
  EXPECT_THAT(Saved("web").rules, IsEmpty());
  EXPECT_NE(kernel_.ActiveRuleset(IdOf("web")), ruleset);
  EXPECT_EQ(engine_->ExpireRules(kNow + 500), 0);
}

// The once-a-second expiry looks at rules only when one is due: between
// deadlines it knows the earliest one. A rule added meanwhile with an
// earlier deadline still ends on time.
TEST_F(EngineTest, ExpiryWaitsForTheEarliestDeadlineAndSeesNewRules) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  EXPECT_EQ(engine_->ExpireRules(kNow), 0);
  EXPECT_EQ(engine_->NoExpiryBefore(), std::numeric_limits<int64_t>::max());
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), 600}, kNow)
                .status());
  EXPECT_EQ(engine_->NoExpiryBefore(), 0);  // a change: not known
  EXPECT_EQ(engine_->ExpireRules(kNow + 10), 0);
  EXPECT_EQ(engine_->NoExpiryBefore(), kNow + 600);
  // Added after the look, ending long before the known deadline.
  ASSERT_OK(engine_->AddRule({"web", Allow({"dns", "10.0.0.53"}), 5}, kNow + 10)
                .status());
  EXPECT_EQ(engine_->ExpireRules(kNow + 14), 0);
  EXPECT_EQ(engine_->NoExpiryBefore(), kNow + 15);
  EXPECT_EQ(engine_->ExpireRules(kNow + 15), 1);
  ASSERT_EQ(Saved("web").rules.size(), 1u);
  EXPECT_EQ(Saved("web").rules[0].expires, kNow + 600);
  EXPECT_EQ(engine_->ExpireRules(kNow + 16), 0);
  EXPECT_EQ(engine_->NoExpiryBefore(), kNow + 600);
  // An apply is a change too; the bound learned after it is the saved
  // rules' earliest deadline.
  control::ApplyRequest apply;
  apply.policies = {Spec("web", "/web", {Allow({"https"})})};
  ASSERT_OK(engine_->Apply(apply, kNow + 20).status());
  EXPECT_EQ(engine_->NoExpiryBefore(), 0);
  EXPECT_EQ(engine_->ExpireRules(kNow + 21), 0);
  int64_t earliest = std::numeric_limits<int64_t>::max();
  for (const policy::Rule& r : Saved("web").rules) {
    if (r.expires != 0) earliest = std::min(earliest, r.expires);
  }
  EXPECT_EQ(engine_->NoExpiryBefore(), earliest);
}

TEST_F(EngineTest, AFailedWritePartWayThroughAnApplyChangesNothing) {
  control::ApplyRequest both;
  both.policies = {Spec("web", "/web", {Allow({"dns", "10.0.0.53"})}),
                   Spec("db", "/db", {Allow({"5432/tcp", "10.0.0.7"})})};
  ASSERT_OK(engine_->Apply(both, kNow).status());
  const DaemonState before = saved_;
  const int saves_before = saves_;
  const uint32_t web = kernel_.ActiveRuleset(IdOf("web"));
  const uint32_t db = kernel_.ActiveRuleset(IdOf("db"));

  both.policies[0].rules.push_back(Allow({"https"}));
  both.policies[1].rules.push_back(Allow({"https"}));
  kernel_.FailWriteEntriesAt(2);  // the first set goes in, the second not
  absl::StatusOr<control::ApplyResponse> r = engine_->Apply(both, kNow);
  EXPECT_STATUS(r, absl::StatusCode::kResourceExhausted, "policy db");
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), web);
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("db")), db);
  EXPECT_THAT(kernel_.RulesetsInMaps(), ElementsAre(web, db))
      << "written entries of the failed apply were left behind";
  EXPECT_EQ(saves_, saves_before);
  EXPECT_EQ(saved_.targets.at("web").rules, before.targets.at("web").rules);
}

TEST_F(EngineTest, AFailedSaveSwitchesBack) {
  control::ApplyRequest web;
  web.policies = {Spec("web", "/web", {Allow({"dns", "10.0.0.53"})})};
  ASSERT_OK(engine_->Apply(web, kNow).status());
  const uint32_t ruleset = kernel_.ActiveRuleset(IdOf("web"));
  web.policies[0].rules.push_back(Allow({"https"}));
  fail_save_ = true;
  EXPECT_STATUS(engine_->Apply(web, kNow), absl::StatusCode::kUnavailable,
                "disk full");
  EXPECT_EQ(kernel_.ActiveRuleset(IdOf("web")), ruleset);
  EXPECT_THAT(kernel_.RulesetsInMaps(), ElementsAre(ruleset));
  ASSERT_OK_AND_ASSIGN(control::ListResponse list, engine_->List("web"));
  EXPECT_EQ(list.targets[0].rules.size(), 1u);
}

TEST_F(EngineTest, ARecreatedCgroupIsAttachedAgain) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint32_t id = IdOf("web");
  const uint64_t first = *kernel_.CgroupId("/web");
  EXPECT_EQ(kernel_.AttachedTo(id, KernelPort::kOwnCgroup), first);
  EXPECT_EQ(engine_->Reconcile(), 0) << "nothing to do";

  kernel_.RemoveCgroup("/web");  // systemctl restart: rmdir ...
  EXPECT_EQ(engine_->Reconcile(), 0);
  EXPECT_FALSE(engine_->TargetInfos()[0].cgroup_exists);
  const uint64_t second = kernel_.MakeCgroup("/web");  // ... and mkdir
  EXPECT_EQ(engine_->Reconcile(), 1);
  EXPECT_EQ(kernel_.AttachedTo(id, KernelPort::kOwnCgroup), second);
  control::TargetInfo info = engine_->TargetInfos()[0];
  EXPECT_TRUE(info.attached);
  EXPECT_EQ(info.cgroup_id, second);
  EXPECT_EQ(info.hooks_attached, static_cast<uint64_t>(FakeKernel::kHooks));
}

TEST_F(EngineTest, PatternTargetsFollowTheirMatches) {
  kernel_.MakeCgroup("/docker");
  kernel_.MakeCgroup("/docker/a");
  control::TargetSpec spec = Spec("containers", "/docker/*", {});
  spec.source = policy::TargetSource::kPattern;
  ASSERT_OK(engine_->AddTarget(spec).status());
  const uint32_t id = IdOf("containers");
  const uint64_t b = kernel_.MakeCgroup("/docker/b");
  engine_->Reconcile();
  EXPECT_EQ(kernel_.AttachedTo(id, b), b);
  EXPECT_EQ(engine_->TargetInfos()[0].cgroups.size(), 2u);
  kernel_.RemoveCgroup("/docker/b");
  engine_->Reconcile();
  EXPECT_EQ(kernel_.LinkSets(id).size(), 1u) << "defunct links kept";
}

// Any client of the control socket may send a target: egressd refuses what
// a policy file refuses (target_values.h), so `export` writes only files
// `apply` takes back.
TEST_F(EngineTest, TargetsAPolicyFileRefusesAreRefused) {
  const struct {
    policy::TargetSource source;
    const char* value;
    const char* message;
  } kCases[] = {
      {policy::TargetSource::kCgroup, "/x-[x]", "has a wildcard"},
      {policy::TargetSource::kCgroup, "/x-*star", "has a wildcard"},
      {policy::TargetSource::kPattern, "/x-[x*", "unclosed \"[\""},
      {policy::TargetSource::kPattern, "/x", "has no wildcard"},
      {policy::TargetSource::kContainer, "a b:c",
       "is not a container name or id"},
  };
  for (const auto& c : kCases) {
    control::TargetSpec spec = Spec("t", c.value, {});
    spec.source = c.source;
    EXPECT_STATUS(engine_->AddTarget(spec), absl::StatusCode::kInvalidArgument,
                  c.message);
  }
  EXPECT_TRUE(engine_->TargetInfos().empty());
}

TEST_F(EngineTest, TheSameRuleInAnotherSpellingIsADuplicate) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), {}}, kNow)
                .status());
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse again,
      engine_->AddRule({"web", Allow({"25/tcp", "10.0.0.5"}), {}}, kNow));
  EXPECT_TRUE(again.skipped);
  EXPECT_EQ(again.number, 1u);
  EXPECT_EQ(Saved("web").rules.size(), 1u);
  // And deleting by the other spelling finds it.
  control::RuleDeleteRequest del{"web", std::nullopt,
                                 Allow({"25/tcp", "10.0.0.5"})};
  ASSERT_OK(engine_->DeleteRule(del).status());
  EXPECT_THAT(Saved("web").rules, IsEmpty());
}

// The kernel keeps a deleted rule's hits: the metrics must show the rules
// that exist (and the default action), and nothing of a removed target.
TEST_F(EngineTest, GoneRulesAreErasedFromRuleHits) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), {}}, kNow)
                .status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "10.0.0.6"}), {}}, kNow)
                .status());
  const uint32_t id = IdOf("web");
  const uint32_t first = Saved("web").rules[0].id;
  const uint32_t second = Saved("web").rules[1].id;
  ASSERT_OK(engine_->DeleteRule({"web", 1u, std::nullopt}).status());
  std::map<uint32_t, uint64_t> hits = {{0, 3}, {first, 5}, {second, 7}};
  engine_->EraseGoneRules(id, hits);
  EXPECT_EQ(hits, (std::map<uint32_t, uint64_t>{{0, 3}, {second, 7}}));
  ASSERT_OK(engine_->RemoveTarget("web").status());
  engine_->EraseGoneRules(id, hits);
  EXPECT_EQ(hits, (std::map<uint32_t, uint64_t>{{0, 3}}));
}

// The kernel's rule_hits map is shared by every target: each change that
// removes rules (delete, an apply, an expiry) deletes their keys, and a
// removed target takes all of its keys along, so a target whose rules churn
// never fills it. The default action's and the live rules' keys stay.
TEST_F(EngineTest, ChangesDeleteTheRuleHitsOfGoneRules) {
  control::ApplyRequest first;
  first.policies = {
      Spec("web", "/web",
           {Allow({"dns", "10.0.0.53"}), Allow({"smtp", "10.0.0.5"})})};
  ASSERT_OK(engine_->Apply(first, kNow).status());
  const uint32_t id = IdOf("web");
  const uint32_t dns = Saved("web").rules[0].id;
  const uint32_t smtp = Saved("web").rules[1].id;
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "10.0.0.6"}), {}}, kNow)
                .status());
  const uint32_t https = Saved("web").rules[2].id;
  for (uint32_t rule : {0u, dns, smtp, https}) kernel_.Hit(id, rule);
  auto keys = [&] {
    std::vector<uint32_t> out;
    const absl::StatusOr<std::map<uint32_t, uint64_t>> hits =
        kernel_.RuleHits(id);
    EXPECT_TRUE(hits.ok()) << hits.status();
    if (hits.ok()) {
      for (const auto& [rule, n] : *hits) out.push_back(rule);
    }
    return out;
  };
  ASSERT_THAT(keys(), ElementsAre(0u, dns, smtp, https));

  ASSERT_OK(engine_->DeleteRule({"web", 3u, std::nullopt}).status());
  EXPECT_THAT(keys(), ElementsAre(0u, dns, smtp));
  // An apply that drops dns and keeps smtp (under another spelling).
  control::ApplyRequest second;
  second.policies = {Spec("web", "/web", {Allow({"25/tcp", "10.0.0.5"})})};
  ASSERT_OK(engine_->Apply(second, kNow).status());
  ASSERT_EQ(Saved("web").rules[0].id, smtp);
  EXPECT_THAT(keys(), ElementsAre(0u, smtp));
  ASSERT_OK(engine_->RemoveTarget("web").status());
  EXPECT_THAT(keys(), IsEmpty());
}

// Records a removed target wrote are read after its removal: they still
// get its name (and say it was removed, so nothing learns from them).
TEST_F(EngineTest, RecordsOfATargetRemovedAMomentAgoKeepItsName) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint32_t id = IdOf("web");
  EXPECT_FALSE(engine_->LookupRecord(id, 0).removed);
  ASSERT_OK(engine_->RemoveTarget("web").status());
  const RecordTarget after = engine_->LookupRecord(id, 0);
  EXPECT_EQ(after.name, "web");
  EXPECT_TRUE(after.removed);
  EXPECT_EQ(engine_->LookupRecord(id + 100, 0).name, "");
}

TEST_F(EngineTest, AnAllowADenyCoversIsAddedWithAWarning) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  ASSERT_OK(engine_->AddRule({"web", Deny({"any", "10.0.0.0/8"}), {}}, kNow)
                .status());
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse added,
      engine_->AddRule({"web", Allow({"smtp", "10.0.0.5"}), {}}, kNow));
  EXPECT_FALSE(added.skipped);
  ASSERT_EQ(added.warnings.size(), 1u);
  EXPECT_THAT(added.warnings[0], HasSubstr("rule 1"));
  EXPECT_THAT(added.warnings[0], HasSubstr("10.0.0.0/8"));
  // Partly covered: no warning.
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse partly,
      engine_->AddRule({"web", Allow({"https", "0.0.0.0/0"}), {}}, kNow));
  EXPECT_THAT(partly.warnings, IsEmpty());
}

// The other order: a deny added after an allow it covers whole warned of
// nothing, though the allow stopped having any effect.
TEST_F(EngineTest, ADenyThatCoversAnAllowIsAddedWithAWarning) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  ASSERT_OK(
      engine_->AddRule({"web", Allow({"7000/tcp", "127.0.0.1"}), {}}, kNow)
          .status());
  ASSERT_OK(engine_->AddRule({"web", Allow({"https", "0.0.0.0/0"}), {}}, kNow)
                .status());
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse added,
      engine_->AddRule({"web", Deny({"7000/tcp", "127.0.0.0/8"}), {}}, kNow));
  EXPECT_FALSE(added.skipped);
  EXPECT_EQ(added.number, 3u);
  ASSERT_EQ(added.warnings.size(), 1u);
  EXPECT_EQ(added.warnings[0],
            "this deny shadows rule 1 (ALLOW 7000/tcp to 127.0.0.1), denying "
            "all of it: deny beats allow, so that allow no longer has any "
            "effect; 'egressctl delete 1' if it is not wanted");
  // Partly covered (https to anywhere): no warning.
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse partly,
      engine_->AddRule({"web", Deny({"https", "10.0.0.0/8"}), {}}, kNow));
  EXPECT_THAT(partly.warnings, IsEmpty());
  // Many: five named, the rest counted.
  for (int port = 8001; port <= 8007; ++port) {
    ASSERT_OK(
        engine_
            ->AddRule(
                {"web", Allow({absl::StrCat(port, "/udp"), "10.9.0.1"}), {}},
                kNow)
            .status());
  }
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse wide,
      engine_->AddRule({"web", Deny({"udp", "10.9.0.0/16"}), {}}, kNow));
  ASSERT_EQ(wide.warnings.size(), 6u);
  EXPECT_THAT(wide.warnings[0], HasSubstr("rule 5 (ALLOW 8001/udp"));
  EXPECT_EQ(wide.warnings[5],
            "this deny also shadows 2 more allow rules ('egressctl list' "
            "shows them)");
}

TEST_F(EngineTest, UnixRulesSetTheTargetsUnixFlagsWithTheirRuleset) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint32_t id = IdOf("web");
  const uint8_t unix_flags = EGRESS_TF_UNIX_RULES | EGRESS_TF_UNIX_ALLOWLIST;
  EXPECT_EQ(kernel_.Config(id).flags & unix_flags, 0);
  ASSERT_OK(
      engine_
          ->AddRule({"web", Deny({"unix", "/var/run/docker.sock"}), {}}, kNow)
          .status());
  EXPECT_EQ(kernel_.Config(id).flags & unix_flags, EGRESS_TF_UNIX_RULES);
  ASSERT_OK(
      engine_->AddRule({"web", Allow({"unix", "/run/fpm.sock"}), {}}, kNow)
          .status());
  EXPECT_EQ(kernel_.Config(id).flags & unix_flags, unix_flags);
  // The same rule again is skipped; deleting it leaves the deny-only set.
  ASSERT_OK_AND_ASSIGN(
      control::RuleAddResponse again,
      engine_->AddRule({"web", Allow({"unix", "/run/fpm.sock"}), {}}, kNow));
  EXPECT_TRUE(again.skipped);
  ASSERT_OK(
      engine_
          ->DeleteRule({"web", std::nullopt, Allow({"unix", "/run/fpm.sock"})})
          .status());
  EXPECT_EQ(kernel_.Config(id).flags & unix_flags, EGRESS_TF_UNIX_RULES);
}

TEST_F(EngineTest, MissingTargetsAreBadInput) {
  EXPECT_STATUS(engine_->List("nope"), absl::StatusCode::kNotFound, "nope");
  EXPECT_STATUS(engine_->AddRule({"", Allow({"dns"}), {}}, kNow),
                absl::StatusCode::kNotFound, "no targets yet");
}

TEST_F(EngineTest, AFailedAttachLeavesNoTarget) {
  kernel_.FailAttach(true);
  EXPECT_STATUS(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})),
                absl::StatusCode::kPermissionDenied, "attach refused");
  EXPECT_TRUE(engine_->TargetInfos().empty());
  EXPECT_TRUE(saved_.targets.empty());
  EXPECT_THAT(kernel_.RulesetsInMaps(), IsEmpty());
}

}  // namespace
}  // namespace egress::testing

namespace egress::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST_F(EngineTest, UserTargetsShareOneRootSetAndEnterTheirUids) {
  const uint64_t root = kernel_.MakeCgroup("/");
  ASSERT_OK(
      engine_->AddTarget(UserSpec("www", "www-data", {Allow({"443/tcp"})}))
          .status());
  const uint32_t www = IdOf("www");
  EXPECT_EQ(Saved("www").uid, 33u);
  EXPECT_EQ(Saved("www").cgroup, "");
  EXPECT_THAT(kernel_.Users(), ElementsAre(Pair(33u, www)));
  EXPECT_FALSE(kernel_.ProgramsLoaded(www)) << "no program set of its own";
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            root);
  EXPECT_NE(kernel_.ActiveRuleset(www), 0u);
  const int attaches = kernel_.attach_calls();

  // A second one by uid: the same root set, one more entry.
  ASSERT_OK(engine_->AddTarget(UserSpec("batch", "4000000001")).status());
  EXPECT_EQ(kernel_.attach_calls(), attaches);
  EXPECT_THAT(kernel_.Users(),
              ElementsAre(Pair(33u, www), Pair(4000000001u, IdOf("batch"))));
  // A uid is one target's; a name no database has is an error naming it.
  EXPECT_STATUS(engine_->AddTarget(UserSpec("www2", "33")).status(),
                absl::StatusCode::kAlreadyExists,
                "uid 33 is already target 'www'");
  EXPECT_STATUS(engine_->AddTarget(UserSpec("x", "nosuch")).status(),
                absl::StatusCode::kNotFound, "nosuch");
  // Beside a cgroup target as usual.
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());

  control::TargetInfo info;
  for (const control::TargetInfo& t : engine_->TargetInfos()) {
    if (t.name == "www") info = t;
  }
  EXPECT_EQ(info.uid, 33u);
  EXPECT_EQ(info.source, policy::TargetSource::kUser);
  EXPECT_TRUE(info.attached);
  EXPECT_EQ(control::TargetWhere(info), "user www-data (uid 33)");
  EXPECT_EQ(engine_->Reconcile(), 0) << "nothing to do";

  // The root set stays while a user target is left.
  ASSERT_OK(engine_->RemoveTarget("www").status());
  EXPECT_THAT(kernel_.Users(), ElementsAre(Pair(4000000001u, IdOf("batch"))));
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            root);
  ASSERT_OK(engine_->RemoveTarget("batch").status());
  EXPECT_TRUE(kernel_.Users().empty());
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            0u);
  EXPECT_FALSE(kernel_.ProgramsLoaded(EGRESS_TARGET_BY_UID));
  EXPECT_NE(kernel_.AttachedTo(IdOf("web"), KernelPort::kOwnCgroup), 0u);
}

TEST_F(EngineTest, UserTargetsComeBackFromStateAndAsOrphansWithout) {
  const uint64_t root = kernel_.MakeCgroup("/");
  ASSERT_OK(engine_->AddTarget(UserSpec("www", "www-data")).status());
  const uint32_t www = IdOf("www");

  // Restart with the state: the uid is kept, never looked up again.
  engine_ = std::make_unique<Engine>(kernel_, saved_, Options());
  ASSERT_OK(engine_->Start(kNow).status());
  EXPECT_THAT(kernel_.Users(), ElementsAre(Pair(33u, www)));
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            root);

  // Restart without it: an orphan that keeps enforcing until removed.
  engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, Options());
  ASSERT_OK(engine_->Start(kNow).status());
  ASSERT_EQ(engine_->TargetInfos().size(), 1u);
  control::TargetInfo orphan = engine_->TargetInfos()[0];
  EXPECT_TRUE(orphan.orphan);
  EXPECT_EQ(orphan.uid, 33u);
  EXPECT_THAT(kernel_.Users(), ElementsAre(Pair(33u, www)));
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            root);
  ASSERT_OK(engine_->RemoveTarget(orphan.name).status());
  EXPECT_TRUE(kernel_.Users().empty());
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            0u);

  // A root set left with no user target is detached at start.
  ASSERT_OK(kernel_.LoadPrograms(EGRESS_TARGET_BY_UID));
  ASSERT_OK(
      kernel_.Attach(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup, "/", root));
  engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, Options());
  ASSERT_OK(engine_->Start(kNow).status());
  EXPECT_EQ(kernel_.AttachedTo(EGRESS_TARGET_BY_UID, KernelPort::kOwnCgroup),
            0u);
}

TEST_F(EngineTest, ApplyCreatesAndUpdatesUserTargets) {
  kernel_.MakeCgroup("/");
  control::ApplyRequest req;
  req.policies.push_back(UserSpec("www", "www-data", {Allow({"443/tcp"})}));
  ASSERT_OK_AND_ASSIGN(control::ApplyResponse r, engine_->Apply(req, kNow));
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].action, "create");
  EXPECT_EQ(r.changes[0].user, "user www-data (uid 33)");
  EXPECT_THAT(kernel_.Users(), ElementsAre(Pair(33u, IdOf("www"))));
  // The same uid by number under another name is refused.
  control::ApplyRequest again;
  again.policies.push_back(UserSpec("www2", "33"));
  EXPECT_STATUS(engine_->Apply(again, kNow).status(),
                absl::StatusCode::kAlreadyExists,
                "policy www2: uid 33 is already target 'www'");
}

// An apply's errors about a policy's target (a user no database has, a uid
// that is another target's) name the policy file and the target's position
// the CLI sent, as the file's own errors do.
TEST_F(EngineTest, ApplyErrorsAboutATargetNameItsFile) {
  kernel_.MakeCgroup("/");
  control::ApplyRequest req;
  req.policies.push_back(UserSpec("zz", "nosuch"));
  req.policies[0].file = "/etc/egress/policies.d/zz.yaml";
  req.policies[0].target_at = "7:11";
  EXPECT_STATUS(engine_->Apply(req, kNow).status(), absl::StatusCode::kNotFound,
                "/etc/egress/policies.d/zz.yaml:7:11: spec.target: policy zz: "
                "no user named 'nosuch'");
  ASSERT_OK(engine_
                ->Apply(
                    control::ApplyRequest{
                        false, {UserSpec("www", "www-data")}, false},
                    kNow)
                .status());
  control::ApplyRequest again;
  again.policies.push_back(UserSpec("www2", "33"));
  again.policies[0].file = "www2.yaml";
  EXPECT_STATUS(engine_->Apply(again, kNow).status(),
                absl::StatusCode::kAlreadyExists,
                "www2.yaml: policy www2: uid 33 is already target 'www'");
}

}  // namespace
}  // namespace egress::testing
