// systemd unit names on their way to `systemctl show`, which egressd runs as
// root: the check every path shares (policy::CheckUnitName) and the argv
// CgroupOfUnit runs. Nothing here runs systemctl.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/policy/names.h"

namespace egress {
namespace {

using ::testing::ElementsAre;

TEST(UnitNameTest, SystemdNamesAreAccepted) {
  for (const char* ok :
       {"nginx", "nginx.service", "getty@tty1.service", "dev-sda1.swap",
        "system-getty.slice", "run-user-1000.mount", "a:b.service",
        "foo\\x2dbar.service", "_x.service", "0.scope"}) {
    EXPECT_OK(policy::CheckUnitName(ok)) << ok;
  }
}

// "-H root@192.0.2.1" would run systemctl against another host, "-M" in a
// container, "--system"/"--user" switch managers: a leading '-' is refused.
TEST(UnitNameTest, ALeadingDashIsRefused) {
  for (const char* bad : {"-Hroot@192.0.2.1:x.service", "--system", "-Mfoo",
                          "-", "--", "-x.service"}) {
    EXPECT_STATUS(policy::CheckUnitName(bad),
                  absl::StatusCode::kInvalidArgument,
                  absl::StrCat("bad unit name \"", bad,
                               "\": starts with '-', which systemctl reads as "
                               "an option"));
  }
}

TEST(UnitNameTest, OtherCharactersAreRefused) {
  for (const char* bad : {"", "a b.service", "a/b.service", "a'b", "a;b",
                          "a$(x)", "a\nb", "caf\xc3\xa9.service"}) {
    EXPECT_STATUS(policy::CheckUnitName(bad),
                  absl::StatusCode::kInvalidArgument, "bad unit name");
  }
}

// "--" ends systemctl's options: whatever slipped past the check would still
// be read as a unit.
TEST(UnitNameTest, SystemctlArgvEndsOptionsBeforeTheUnit) {
  EXPECT_THAT(UnitCgroupCommand("nginx.service"),
              ElementsAre("systemctl", "show", "-p", "ControlGroup", "--value",
                          "--", "nginx.service"));
  EXPECT_THAT(UnitCgroupCommand("-Hx"),
              ElementsAre("systemctl", "show", "-p", "ControlGroup", "--value",
                          "--", "-Hx"));
}

// Refused before anything runs (a run would find no such unit: NotFound or
// Unavailable, never InvalidArgument).
TEST(UnitNameTest, CgroupOfUnitRefusesBeforeRunningSystemctl) {
  for (const char* bad :
       {"-Hroot@192.0.2.1:x.service", "--system", "-Mfoo", "a b", ""}) {
    EXPECT_STATUS(CgroupOfUnit(bad), absl::StatusCode::kInvalidArgument,
                  absl::StrCat("unit '", bad, "': bad unit name"));
  }
}

}  // namespace
}  // namespace egress
