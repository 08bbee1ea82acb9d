#include "userspace/policy/names.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::policy {
namespace {

TEST(NamesTest, Alphabet) {
  for (const char* ok :
       {"web", "a", "nginx.service", "getty@tty1", "A-b_c.9"}) {
    EXPECT_TRUE(ValidName(ok)) << ok;
    EXPECT_OK(CheckName(ok));
  }
  EXPECT_TRUE(ValidName(std::string(64, 'x')));
  for (const char* bad : {"", "a b", "a/b", "ä", "a:b", "-\n"}) {
    EXPECT_FALSE(ValidName(bad)) << bad;
  }
  EXPECT_FALSE(ValidName(std::string(65, 'x')));
}

TEST(NamesTest, MessageNamesTheNameAndTheRule) {
  EXPECT_STATUS(CheckName("a b"), absl::StatusCode::kInvalidArgument,
                "bad name \"a b\": use 1-64 letters, digits, '-', '_', '.' "
                "or '@'");
  EXPECT_STATUS(CheckName("", "target name"),
                absl::StatusCode::kInvalidArgument, "bad target name \"\":");
}

TEST(NamesTest, Users) {
  for (const char* ok : {"www-data", "nobody", "_apt", "a.b", "host$", "0",
                         "33", "4294967294", std::string(32, 'u').c_str()}) {
    EXPECT_OK(CheckUser(ok)) << ok;
  }
  for (const char* bad : {"", "-x", "a b", "a/b", "a:b", "$", "4294967295",
                          "99999999999", std::string(33, 'u').c_str()}) {
    EXPECT_STATUS(CheckUser(bad), absl::StatusCode::kInvalidArgument,
                  absl::StrCat("bad user \"", bad, "\": use a uid"));
  }
  EXPECT_EQ(UidOfNumber("33"), 33u);
  EXPECT_EQ(UidOfNumber("4294967294"), 4294967294u);
  EXPECT_EQ(UidOfNumber("4294967295"), std::nullopt);
  EXPECT_EQ(UidOfNumber("www-data"), std::nullopt);
  EXPECT_EQ(UserText("www-data", 33), "user www-data (uid 33)");
  EXPECT_EQ(UserText("4000000001", 4000000001u), "uid 4000000001");
}

}  // namespace
}  // namespace egress::policy
