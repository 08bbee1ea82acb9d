#include "userspace/daemon/nonlocal_bind.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

TEST(NonlocalBindTest, WarnsOnlyWhenTheSettingIsOn) {
  EXPECT_EQ(NonlocalBindWarning("0\n"), "");
  EXPECT_EQ(NonlocalBindWarning(""), "");
  EXPECT_EQ(NonlocalBindWarning("x"), "");
  const std::string on = NonlocalBindWarning("1\n");
  EXPECT_THAT(on, HasSubstr("net.ipv6.ip_nonlocal_bind=1"));
  EXPECT_THAT(on, HasSubstr("set it to 0"));
}

TEST(NonlocalBindTest, ReadsTheFileAndSaysNothingWithoutOne) {
  char dir[] = "/tmp/egress-nonlocal-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/ip_nonlocal_bind";
  EXPECT_EQ(NonlocalBindWarningOf(path), "");  // no such file
  std::ofstream(path) << "1\n";
  EXPECT_THAT(NonlocalBindWarningOf(path),
              HasSubstr("net.ipv6.ip_nonlocal_bind=1"));
  std::ofstream(path) << "0\n";
  EXPECT_EQ(NonlocalBindWarningOf(path), "");
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace egress
