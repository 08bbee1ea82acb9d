#include "userspace/common/shell_word.h"

#include "gtest/gtest.h"

namespace egress {
namespace {

TEST(ShellWordTest, PlainWordsStayAsTheyAre) {
  for (const char* w : {"web", "/run/a.sock", "@bus", "10.0.0.5", "2001:db8::1",
                        "a+b-c_d", "x@y:z"}) {
    EXPECT_EQ(ShellWord(w), w);
  }
}

TEST(ShellWordTest, AnythingElseIsSingleQuoted) {
  EXPECT_EQ(ShellWord(""), "''");
  EXPECT_EQ(ShellWord("/tmp/x;touch /tmp/pwned;#"),
            "'/tmp/x;touch /tmp/pwned;#'");
  EXPECT_EQ(ShellWord("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellWord("''"), "''\\'''\\'''");
  EXPECT_EQ(ShellWord("$HOME"), "'$HOME'");
  EXPECT_EQ(ShellWord("~root"), "'~root'");
  EXPECT_EQ(ShellWord("a\nb"), "'a\nb'");
  EXPECT_EQ(ShellWord("caf\xc3\xa9"), "'caf\xc3\xa9'");
}

}  // namespace
}  // namespace egress
