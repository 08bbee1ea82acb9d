#include "userspace/daemon/ptrace_scope.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

TEST(PtraceScopeTest, WarnsWhenAnyProcessOfTheUidMayBeAttached) {
  EXPECT_EQ(PtraceScopeWarning("1\n"), "");
  EXPECT_EQ(PtraceScopeWarning("2\n"), "");
  EXPECT_EQ(PtraceScopeWarning("3\n"), "");
  EXPECT_EQ(PtraceScopeWarning("x"), "");
  const std::string zero = PtraceScopeWarning("0\n");
  EXPECT_THAT(zero, HasSubstr("kernel.yama.ptrace_scope=0"));
  EXPECT_THAT(zero, HasSubstr("1 or more"));
  EXPECT_THAT(PtraceScopeWarning(std::nullopt), HasSubstr("has no Yama"));
}

TEST(PtraceScopeTest, ReadsTheFileAndWarnsWithoutOne) {
  char dir[] = "/tmp/egress-ptrace-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/ptrace_scope";
  EXPECT_THAT(PtraceScopeWarningOf(path), HasSubstr("has no Yama"));
  std::ofstream(path) << "0\n";
  EXPECT_THAT(PtraceScopeWarningOf(path),
              HasSubstr("kernel.yama.ptrace_scope=0"));
  std::ofstream(path) << "1\n";
  EXPECT_EQ(PtraceScopeWarningOf(path), "");
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace egress
