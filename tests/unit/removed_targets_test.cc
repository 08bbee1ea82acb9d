#include "userspace/daemon/removed_targets.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

const absl::Time kRemoved = absl::FromUnixSeconds(1700000000);

TEST(RemovedTargetsTest, KeepsANameForTheGracePeriodOnly) {
  RemovedTargets removed;
  removed.Remember(7, "web", kRemoved);
  EXPECT_EQ(removed.NameOf(7, kRemoved), "web");
  EXPECT_EQ(removed.NameOf(7, kRemoved + RemovedTargets::kGrace), "web");
  EXPECT_EQ(removed.NameOf(8, kRemoved), "");
  EXPECT_EQ(removed.NameOf(
                7, kRemoved + RemovedTargets::kGrace + absl::Milliseconds(1)),
            "");
}

TEST(RemovedTargetsTest, AnIdRemovedAgainNamesItsLatestTarget) {
  RemovedTargets removed;
  removed.Remember(7, "web", kRemoved);
  removed.Remember(7, "db", kRemoved + absl::Seconds(1));
  EXPECT_EQ(removed.NameOf(7, kRemoved + absl::Seconds(2)), "db");
}

TEST(RemovedTargetsTest, MemoryIsBounded) {
  RemovedTargets removed;
  // Many removals at once: the oldest go past kMaxKept.
  for (uint32_t id = 1; id <= RemovedTargets::kMaxKept + 10; ++id) {
    removed.Remember(id, absl::StrCat("t", id), kRemoved);
  }
  EXPECT_EQ(removed.size(), RemovedTargets::kMaxKept);
  EXPECT_EQ(removed.NameOf(1, kRemoved), "");
  EXPECT_EQ(removed.NameOf(RemovedTargets::kMaxKept + 10, kRemoved),
            absl::StrCat("t", RemovedTargets::kMaxKept + 10));
  // Removals past the grace go at the next one.
  removed.Remember(1, "late",
                   kRemoved + RemovedTargets::kGrace + absl::Seconds(1));
  EXPECT_EQ(removed.size(), 1u);
}

}  // namespace
}  // namespace egress
