// The engine's side of watch instances (engine_watch.cc) against a kernel in
// memory: a unit or path target is known by name at its parent before its
// own programs attach, marked covered once they do, and forgotten with the
// target; workload parents get a default and classifications. No root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "tests/testing/status_matchers.h"
#include "tests/unit/engine_fixture.h"
#include "userspace/daemon/engine.h"

namespace egress::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

class EngineWatchTest : public EngineTest {
 protected:
  void SetUp() override {
    slice_ = kernel_.MakeCgroup("/system.slice");
    EngineTest::SetUp();
  }
  uint64_t slice_ = 0;
};

TEST_F(EngineWatchTest,
       UnitTargetIsKnownByNameAtItsSliceAndCoveredOnceAttached) {
  const uint64_t first = kernel_.MakeCgroup("/system.slice/web.service");
  control::TargetSpec spec = Spec("web", "web.service", {});
  spec.source = policy::TargetSource::kUnit;
  ASSERT_OK(engine_->AddTarget(spec).status());
  const uint32_t id = IdOf("web");
  EXPECT_THAT(kernel_.Watched(), ElementsAre(Pair(slice_, "/system.slice")));
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(slice_, "web.service"), id)));
  EXPECT_THAT(kernel_.Classes(),
              ElementsAre(Pair(first, EGRESS_CGROUP_COVERED)));

  // systemctl restart: the new cgroup is the target's by name at once; the
  // cover follows the new id once its own programs attach.
  kernel_.RemoveCgroup("/system.slice/web.service");
  EXPECT_EQ(engine_->Reconcile(), 0);
  const uint64_t second = kernel_.MakeCgroup("/system.slice/web.service");
  EXPECT_EQ(engine_->Reconcile(), 1);
  EXPECT_THAT(kernel_.Classes(),
              ElementsAre(Pair(second, EGRESS_CGROUP_COVERED)));
  EXPECT_EQ(kernel_.Watched().size(), 1u) << "attached once, not again";

  ASSERT_OK(engine_->RemoveTarget("web").status());
  EXPECT_THAT(kernel_.Watched(), IsEmpty());
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
  EXPECT_THAT(kernel_.Classes(), IsEmpty());
}

// egressd runs `systemctl show UNIT` as root: a unit name starting with '-'
// (from any client of the control socket) would be an option there, "-H" a
// remote host. Refused before the unit is looked up.
TEST_F(EngineWatchTest, UnitNamesStartingWithADashAreRefusedUnlookedUp) {
  int lookups = 0;
  RestartWithRuleRoom(1000, saved_, [&](EngineOptions& o) {
    o.unit_cgroup =
        [&](const std::string& unit) -> absl::StatusOr<std::string> {
      ++lookups;
      return "/system.slice/" + unit;
    };
  });
  for (const char* unit : {"-Hroot@192.0.2.1:x.service", "--system", "-Mfoo"}) {
    control::TargetSpec spec = Spec("web", unit, {});
    spec.source = policy::TargetSource::kUnit;
    EXPECT_STATUS(engine_->AddTarget(spec).status(),
                  absl::StatusCode::kInvalidArgument, "bad unit name")
        << unit;
  }
  EXPECT_EQ(lookups, 0);
  EXPECT_THAT(saved_.targets, IsEmpty());
}

TEST_F(EngineWatchTest, TargetWaitingForItsCgroupIsWatchedAlready) {
  ASSERT_OK(engine_->AddTarget(Spec("later", "/system.slice/later.service", {}))
                .status());
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(slice_, "later.service"), IdOf("later"))));
  EXPECT_THAT(kernel_.Classes(), IsEmpty());
}

TEST_F(EngineWatchTest, TwoTargetsShareTheirParentsInstance) {
  kernel_.MakeCgroup("/system.slice/a.service");
  kernel_.MakeCgroup("/system.slice/b.service");
  ASSERT_OK(
      engine_->AddTarget(Spec("a", "/system.slice/a.service", {})).status());
  ASSERT_OK(
      engine_->AddTarget(Spec("b", "/system.slice/b.service", {})).status());
  EXPECT_EQ(kernel_.Watched().size(), 1u);
  EXPECT_EQ(kernel_.WatchNames().size(), 2u);
  ASSERT_OK(engine_->RemoveTarget("a").status());
  EXPECT_EQ(kernel_.Watched().size(), 1u) << "b still needs it";
  EXPECT_EQ(kernel_.WatchNames().size(), 1u);
}

// A parent that is removed (a job runner's directory): its instance and
// names go with it, and the parent made again is watched under its new id.
TEST_F(EngineWatchTest, AGoneParentsInstanceIsRemoved) {
  const uint64_t first = kernel_.MakeCgroup("/batch");
  kernel_.MakeCgroup("/batch/worker");
  ASSERT_OK(engine_->AddTarget(Spec("w", "/batch/worker", {})).status());
  EXPECT_THAT(kernel_.Watched(), ElementsAre(Pair(first, "/batch")));
  kernel_.RemoveCgroup("/batch/worker");
  kernel_.RemoveCgroup("/batch");
  engine_->Reconcile();
  EXPECT_THAT(kernel_.Watched(), IsEmpty());
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
  const uint64_t second = kernel_.MakeCgroup("/batch");
  engine_->Reconcile();
  EXPECT_THAT(kernel_.Watched(), ElementsAre(Pair(second, "/batch")));
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(second, "worker"), IdOf("w"))));
}

// An instance pinned for a parent that went while egressd was down: no
// target knows it, and it is removed all the same.
TEST_F(EngineWatchTest, ALeftoverInstanceOfAGoneParentIsRemoved) {
  ASSERT_OK(kernel_.Watch("/gone", 424242));
  ASSERT_OK(kernel_.SetWatchName(424242, "worker", 7));
  ASSERT_OK(kernel_.Watch("/system.slice", slice_));
  engine_->Reconcile();
  EXPECT_THAT(kernel_.Watched(), ElementsAre(Pair(slice_, "/system.slice")))
      << "only the gone parent's instance goes";
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
}

TEST_F(EngineWatchTest, TopLevelTargetIsNotWatched) {
  // Its parent is the root: a watch there would run for every socket.
  EXPECT_THAT(kernel_.Watched(), IsEmpty());
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  EXPECT_THAT(kernel_.Watched(), IsEmpty());
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
}

TEST_F(EngineWatchTest, WorkloadParentDefaultsAndClassifications) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  EXPECT_STATUS(
      engine_->RegisterWorkloadParent("/", Engine::WorkloadDefault::kDeny),
      absl::StatusCode::kInvalidArgument, "");
  EXPECT_STATUS(engine_->RegisterWorkloadParent("/docker",
                                                Engine::WorkloadDefault::kDeny),
                absl::StatusCode::kNotFound, "");
  const uint64_t docker = kernel_.MakeCgroup("/docker");
  ASSERT_OK(engine_->RegisterWorkloadParent("/docker",
                                            Engine::WorkloadDefault::kDeny));
  EXPECT_THAT(kernel_.Watched(), ElementsAre(Pair(docker, "/docker")));
  egress_watch_parent p = kernel_.WatchParents().at(docker);
  EXPECT_EQ(p.kind, EGRESS_WATCH_WORKLOAD);
  EXPECT_EQ(p.default_target, EGRESS_TARGET_UNCLASSIFIED_DENY);
  egress_target_config deny = kernel_.Config(EGRESS_TARGET_UNCLASSIFIED_DENY);
  EXPECT_EQ(deny.mode, EGRESS_MODE_ENFORCE);
  EXPECT_EQ(deny.flags, EGRESS_TF_UNCLASSIFIED);
  EXPECT_EQ(kernel_.Config(EGRESS_TARGET_UNCLASSIFIED_AUDIT).mode,
            EGRESS_MODE_AUDIT);

  ASSERT_OK(engine_->RegisterWorkloadParent("/docker",
                                            Engine::WorkloadDefault::kAudit));
  EXPECT_EQ(kernel_.WatchParents().at(docker).default_target,
            EGRESS_TARGET_UNCLASSIFIED_AUDIT);

  ASSERT_OK(engine_->ClassifyWorkloadCgroup(501, "web"));
  ASSERT_OK(engine_->ClassifyWorkloadCgroup(502, ""));
  EXPECT_THAT(kernel_.Classes(),
              ElementsAre(Pair(501, IdOf("web")),
                          Pair(502, EGRESS_CGROUP_NOT_SELECTED)));
  EXPECT_STATUS(engine_->ClassifyWorkloadCgroup(503, "nope"),
                absl::StatusCode::kNotFound, "");
  ASSERT_OK(engine_->ForgetWorkloadCgroup(502));
  EXPECT_EQ(kernel_.Classes().size(), 1u);

  ASSERT_OK(engine_->UnregisterWorkloadParent("/docker"));
  EXPECT_THAT(kernel_.Watched(), IsEmpty());
  EXPECT_THAT(kernel_.WatchParents(), IsEmpty());
}

TEST_F(EngineWatchTest, WorkloadChildIsNamedBeforeItExists) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint64_t docker = kernel_.MakeCgroup("/docker");
  ASSERT_OK(engine_->RegisterWorkloadParent("/docker",
                                            Engine::WorkloadDefault::kDeny));
  const std::string a(64, 'a'), b(64, 'b');
  ASSERT_OK(engine_->NameWorkloadChild("/docker", a, "web"));
  ASSERT_OK(engine_->NameWorkloadChild("/docker", b, ""));
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(docker, a), IdOf("web")),
                          Pair(Pair(docker, b), EGRESS_CGROUP_NOT_SELECTED)));
  // Named again: its target changes.
  ASSERT_OK(engine_->NameWorkloadChild("/docker", a, ""));
  EXPECT_EQ(kernel_.WatchNames().at({docker, a}), EGRESS_CGROUP_NOT_SELECTED);

  EXPECT_STATUS(engine_->NameWorkloadChild("/docker", "x", "nope"),
                absl::StatusCode::kNotFound, "");
  EXPECT_STATUS(engine_->NameWorkloadChild("/nowhere", a, ""),
                absl::StatusCode::kNotFound, "");
  EXPECT_STATUS(engine_->NameWorkloadChild("/docker", "a/b", ""),
                absl::StatusCode::kInvalidArgument, "");
  EXPECT_STATUS(engine_->NameWorkloadChild("/docker", "..", ""),
                absl::StatusCode::kInvalidArgument, "");
  EXPECT_STATUS(
      engine_->NameWorkloadChild("/docker", std::string(128, 'c'), ""),
      absl::StatusCode::kInvalidArgument, "longer than 127 bytes");
  EXPECT_EQ(kernel_.WatchNames().size(), 2u) << "nothing written on errors";

  ASSERT_OK(engine_->ForgetWorkloadChildName("/docker", a));
  ASSERT_OK(engine_->ForgetWorkloadChildName("/docker", a));  // no error
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(docker, b), EGRESS_CGROUP_NOT_SELECTED)));
  // The parent unregistered: its names go with it.
  ASSERT_OK(engine_->UnregisterWorkloadParent("/docker"));
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
}

// A container just created is named at once, not after the pass under way:
// a pass holds the engine's lock while the kernel attaches (seconds in a
// burst of container starts, all waiting for the kernel's cgroup lock).
TEST_F(EngineWatchTest, WorkloadChildIsNamedAheadWhileAnAttachWaits) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint64_t docker = kernel_.MakeCgroup("/docker");
  ASSERT_OK(engine_->RegisterWorkloadParent("/docker",
                                            Engine::WorkloadDefault::kDeny));
  const uint32_t web = IdOf("web");
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  kernel_.OnAttach([&, once = std::make_shared<std::once_flag>()] {
    std::call_once(*once, [&] {
      entered.set_value();
      released.wait();
    });
  });
  // A new target: its attach, under the engine's lock, waits.
  kernel_.MakeCgroup("/api");
  std::thread adding(
      [&] { engine_->AddTarget(Spec("api", "/api", {})).IgnoreError(); });
  entered.get_future().wait();
  const std::string a(64, 'a');
  auto ahead = std::async(std::launch::async, [&] {
    return engine_->NameWorkloadChildAhead("/docker", a, web);
  });
  const bool waited =
      ahead.wait_for(std::chrono::seconds(2)) != std::future_status::ready;
  release.set_value();
  adding.join();
  ASSERT_FALSE(waited) << "the name waited for the attach under way";
  ASSERT_OK(ahead.get());
  EXPECT_EQ(kernel_.WatchNames().at({docker, a}), web);
}

// A name written ahead never overwrites one written already, is taken over
// by the pass's NameWorkloadChild, and goes with ForgetWorkloadChildName or
// its parent.
TEST_F(EngineWatchTest, WorkloadNameAheadIsTakenOverOrForgotten) {
  ASSERT_OK(engine_->AddTarget(Spec("web", "/web", {})).status());
  const uint64_t docker = kernel_.MakeCgroup("/docker");
  ASSERT_OK(engine_->RegisterWorkloadParent("/docker",
                                            Engine::WorkloadDefault::kDeny));
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  ASSERT_OK(engine_->NameWorkloadChild("/docker", a, ""));
  EXPECT_STATUS(engine_->NameWorkloadChildAhead("/docker", a, IdOf("web")),
                absl::StatusCode::kAlreadyExists, "");
  EXPECT_EQ(kernel_.WatchNames().at({docker, a}), EGRESS_CGROUP_NOT_SELECTED);
  ASSERT_OK(engine_->NameWorkloadChildAhead("/docker", b, 0));
  ASSERT_OK(engine_->NameWorkloadChildAhead("/docker", c, IdOf("web")));
  EXPECT_EQ(kernel_.WatchNames().at({docker, b}), EGRESS_CGROUP_NOT_SELECTED);
  // The pass names c as it sees it now.
  ASSERT_OK(engine_->NameWorkloadChild("/docker", c, ""));
  EXPECT_EQ(kernel_.WatchNames().at({docker, c}), EGRESS_CGROUP_NOT_SELECTED);
  // b was never taken over (gone before the pass): forgotten all the same.
  ASSERT_OK(engine_->ForgetWorkloadChildName("/docker", b));
  EXPECT_FALSE(kernel_.WatchNames().count({docker, b}));
  ASSERT_OK(engine_->NameWorkloadChildAhead("/docker", b, 0));
  ASSERT_OK(engine_->UnregisterWorkloadParent("/docker"));
  EXPECT_THAT(kernel_.WatchNames(), IsEmpty());
}

TEST_F(EngineWatchTest, WorkloadNameLeavesUnitTargetsNameAlone) {
  kernel_.MakeCgroup("/system.slice/web.service");
  control::TargetSpec spec = Spec("web", "web.service", {});
  spec.source = policy::TargetSource::kUnit;
  ASSERT_OK(engine_->AddTarget(spec).status());
  ASSERT_OK(engine_->RegisterWorkloadParent("/system.slice",
                                            Engine::WorkloadDefault::kDeny));
  EXPECT_STATUS(engine_->NameWorkloadChild("/system.slice", "web.service", ""),
                absl::StatusCode::kAlreadyExists, "");
  ASSERT_OK(engine_->ForgetWorkloadChildName("/system.slice", "web.service"));
  EXPECT_THAT(kernel_.WatchNames(),
              ElementsAre(Pair(Pair(slice_, "web.service"), IdOf("web"))));
}

}  // namespace
}  // namespace egress::testing
