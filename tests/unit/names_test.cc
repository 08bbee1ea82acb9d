#include "userspace/policy/names.h"

#include <string>

#include "absl/status/status.h"
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

}  // namespace
}  // namespace egress::policy
