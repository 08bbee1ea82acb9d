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

// A target is exported to NAME.yaml and a policy directory holds no hidden
// files: ".x" would be written and never read back.
TEST(NamesTest, NoLeadingDot) {
  for (const char* bad : {".x", ".", "..", ".hidden.yaml"}) {
    EXPECT_FALSE(ValidName(bad)) << bad;
  }
  EXPECT_TRUE(ValidName("x."));
  EXPECT_TRUE(ValidName("a.b"));
  EXPECT_STATUS(CheckName(".x", "target name"),
                absl::StatusCode::kInvalidArgument,
                "bad target name \".x\": use 1-64 letters, digits, '-', '_', "
                "'.' or '@', not starting with '.'");
}

TEST(NamesTest, MessageNamesTheNameAndTheRule) {
  EXPECT_STATUS(CheckName("a b"), absl::StatusCode::kInvalidArgument,
                "bad name \"a b\": use 1-64 letters, digits, '-', '_', '.' "
                "or '@', not starting with '.'");
  EXPECT_STATUS(CheckName("", "target name"),
                absl::StatusCode::kInvalidArgument, "bad target name \"\":");
}

TEST(NamesTest, Users) {
  const std::string longest(32, 'u'), too_long(33, 'u');
  for (const std::string& ok :
       {std::string("www-data"), std::string("nobody"), std::string("_apt"),
        std::string("a.b"), std::string("host$"), std::string("0"),
        std::string("33"), std::string("4294967294"), longest}) {
    EXPECT_OK(CheckUser(ok)) << ok;
  }
  for (const std::string& bad :
       {std::string(""), std::string("-x"), std::string("a b"),
        std::string("a/b"), std::string("a:b"), std::string("$"),
        std::string("4294967295"), std::string("99999999999"), too_long}) {
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
