// The engine when the state or the pins are not what it expects: a state
// file that cannot be written, pins without a state, programs that read maps
// that are no longer pinned. No root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"

namespace egress::testing {
namespace {

using ::testing::Contains;
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

TEST_F(EngineLifecycleTest, PinsWithoutStateAreAdoptedAsOrphansNotSwept) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  control::TargetSpec audit = Spec("db", "/db", {});
  audit.mode = policy::Mode::kAudit;
  ASSERT_OK(engine_->AddTarget(audit).status());
  const uint32_t web = IdOf("web");
  const uint32_t ruleset = kernel_.ActiveRuleset(web);
  // egressd starts again with the state gone; the pins are there.
  saved_ = DaemonState{};
  std::vector<std::string> logged;
  EngineOptions o = Options();
  o.log = [&logged](const std::string& line) { logged.push_back(line); };
  engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, o);
  ASSERT_OK(engine_->Start(kNow).status());
  EXPECT_EQ(kernel_.RulesetsInMaps().count(ruleset), 1u) << "rules swept";
  EXPECT_EQ(kernel_.ActiveRuleset(web), ruleset);
  std::vector<control::TargetInfo> infos = engine_->TargetInfos();
  ASSERT_EQ(infos.size(), 2u);
  const std::string name = absl::StrCat("orphan-", web);
  const control::TargetInfo& info = infos[infos[0].name == name ? 0 : 1];
  EXPECT_EQ(info.name, name);
  EXPECT_TRUE(info.orphan);
  EXPECT_EQ(info.cgroup, "/web");
  EXPECT_TRUE(info.attached);
  EXPECT_EQ(infos[infos[0].name == name ? 1 : 0].mode, policy::Mode::kAudit);
  ASSERT_OK_AND_ASSIGN(control::ListResponse list, engine_->List(name));
  EXPECT_TRUE(list.targets[0].orphan);
  EXPECT_THAT(logged, Contains(HasSubstr(name)));
  EXPECT_TRUE(StateToJson(saved_)["targets"].empty())
      << "orphans are never saved";
  // Its rules are unknown: changes are refused, removal lifts it.
  EXPECT_STATUS(engine_->AddRule({name, Allow({"https"}), {}}, kNow),
                absl::StatusCode::kFailedPrecondition, "target remove");
  EXPECT_STATUS(engine_->SetMode({policy::Mode::kAudit, name, false}),
                absl::StatusCode::kFailedPrecondition, "rules are unknown");
  EXPECT_STATUS(engine_->AddTarget(Spec("web", "/web", {})),
                absl::StatusCode::kAlreadyExists, name);
  ASSERT_OK(engine_->RemoveTarget(name).status());
  EXPECT_FALSE(kernel_.ProgramsLoaded(web));
  EXPECT_EQ(kernel_.AttachedTo(web, KernelPort::kOwnCgroup), 0u);
  EXPECT_EQ(kernel_.RulesetsInMaps().count(ruleset), 0u);
  EXPECT_EQ(kernel_.ActiveRuleset(web), 0u);
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
}

TEST_F(EngineLifecycleTest, ProgramsReadingUnpinnedMapsAreRefreshedAtStart) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  const uint32_t id = IdOf("web");
  kernel_.MakeProgramsStale(id);
  std::vector<std::string> logged;
  EngineOptions o = Options();
  o.log = [&logged](const std::string& line) { logged.push_back(line); };
  engine_ = std::make_unique<Engine>(kernel_, saved_, o);
  ASSERT_OK(engine_->Start(kNow).status());
  EXPECT_FALSE(kernel_.ProgramsStale(id));
  EXPECT_THAT(logged, Contains(HasSubstr("no longer pinned")));
  EXPECT_TRUE(engine_->TargetInfos()[0].attached);
}

// An older egressd took a name rule with icmp alone from a policy file: it
// compiled to "icmp allowed" for every address. Compile refuses it now; a
// start drops it (logged, saved) instead of failing.
TEST_F(EngineLifecycleTest, StoredNameRulesWithOnlyIcmpAreDroppedAtStart) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {Allow({"dns"})})).status());
  DaemonState old = saved_;
  policy::Rule ping;
  ping.id = old.targets.at("web").next_rule_id++;
  ping.spec = "icmp";
  ping.ports = {{policy::Proto::kIcmp}};
  ping.names = {"ping.example.com"};
  old.targets.at("web").rules.push_back(ping);
  std::vector<std::string> logged;
  EngineOptions o = Options();
  o.log = [&logged](const std::string& line) { logged.push_back(line); };
  engine_ = std::make_unique<Engine>(kernel_, old, o);
  ASSERT_OK(engine_->Start(kNow).status());
  EXPECT_THAT(logged,
              Contains(absl::StrCat("target web: dropped rule ", ping.id,
                                    " (icmp to ping.example.com): a name "
                                    "takes tcp and udp ports, not icmp")));
  ASSERT_OK_AND_ASSIGN(control::ListResponse list, engine_->List("web"));
  ASSERT_EQ(list.targets[0].rules.size(), 1u);
  EXPECT_EQ(Saved("web").rules.size(), 1u);
  EXPECT_EQ(Saved("web").rules[0].spec, "dns");
}

TEST_F(EngineLifecycleTest, LostPinsAreRepairedLoggedOnceAndChangesTellTruth) {
  std::vector<std::string> logged;
  EngineOptions o = Options();
  o.log = [&logged](const std::string& line) { logged.push_back(line); };
  engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, o);
  ASSERT_OK(engine_->Start(kNow).status());
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  auto count = [&logged](const std::string& what) {
    int n = 0;
    for (const std::string& l : logged) n += l.find(what) != l.npos;
    return n;
  };
  // bpffs gone and not mountable: the held links keep enforcing, so a rule
  // change is taken; the failure is logged once, not every reconcile.
  kernel_.LosePins();
  kernel_.FailRepairPins(true);
  for (int i = 0; i < 3; ++i) engine_->Reconcile();
  EXPECT_EQ(count("cannot make the pins again"), 1);
  EXPECT_TRUE(engine_->TargetInfos()[0].attached);
  ASSERT_OK(engine_->AddRule({"web", Allow({"dns"}), {}}, kNow).status());
  // Its cgroup re-created meanwhile: nothing enforces on it, and nothing
  // can be attached. A change is refused and not saved.
  kernel_.RemoveCgroup("/web");
  kernel_.MakeCgroup("/web");
  for (int i = 0; i < 3; ++i) engine_->Reconcile();
  EXPECT_EQ(count("no bpffs"), 1) << "an attach failure logged again";
  EXPECT_STATUS(engine_->AddRule({"web", Allow({"https"}), {}}, kNow),
                absl::StatusCode::kUnavailable, "not enforced");
  EXPECT_STATUS(engine_->DeleteRule({"web", 1, std::nullopt}),
                absl::StatusCode::kUnavailable, "nothing was changed");
  EXPECT_EQ(Saved("web").rules.size(), 1u);
  // bpffs back: the pins are made again, the cgroup attached, once.
  kernel_.FailRepairPins(false);
  engine_->Reconcile();
  EXPECT_EQ(count("made again"), 1);
  EXPECT_TRUE(engine_->TargetInfos()[0].attached);
  EXPECT_EQ(kernel_.AttachedTo(IdOf("web"), KernelPort::kOwnCgroup),
            *kernel_.CgroupId("/web"));
  ASSERT_OK(engine_->AddRule({"web", Allow({"https"}), {}}, kNow).status());
}

}  // namespace
}  // namespace egress::testing
