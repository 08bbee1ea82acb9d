// One egressd per directory: the lock of a state or pin directory is
// exclusive, names its holder to the one refused, and goes with its fd.
#include "userspace/common/instance_lock.h"

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

class InstanceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-lock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { EXPECT_OK(RemoveTree(dir_)); }
  std::string dir_;
};

TEST_F(InstanceLockTest, HolderTextRoundTrips) {
  LockHolder h{4321, "/run/egress/egressd.sock"};
  std::optional<LockHolder> back = ParseHolderText(HolderText(h));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 4321);
  EXPECT_EQ(back->socket, "/run/egress/egressd.sock");
  EXPECT_FALSE(ParseHolderText("pid x socket /s").has_value());
  EXPECT_FALSE(ParseHolderText("something else").has_value());
}

TEST_F(InstanceLockTest, SecondLockIsRefusedNamingTheHolder) {
  ASSERT_OK_AND_ASSIGN(
      UniqueFd first,
      LockDirectory(dir_, "state directory", {getpid(), "/run/first.sock"}));
  absl::StatusOr<UniqueFd> second =
      LockDirectory(dir_, "state directory", {1, "/run/second.sock"});
  EXPECT_STATUS(second.status(), absl::StatusCode::kFailedPrecondition,
                absl::StrCat("egressd pid ", getpid(),
                             " serving socket /run/first.sock"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(dir_));
  // The lock goes with the holder's fd (the kernel drops it at exit).
  first.reset();
  ASSERT_OK_AND_ASSIGN(
      UniqueFd third,
      LockDirectory(dir_, "state directory", {getpid(), "/run/third.sock"}));
  std::optional<LockHolder> now = ParseHolderText([&] {
    char buf[256] = {};
    ssize_t n = readlink(absl::StrCat(dir_, "/", kHolderName).c_str(), buf,
                         sizeof(buf) - 1);
    return std::string(buf, n > 0 ? n : 0);
  }());
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->socket, "/run/third.sock");
}

TEST_F(InstanceLockTest, MissingDirectoryIsAnError) {
  EXPECT_STATUS(
      LockDirectory(dir_ + "/none", "pin directory", {1, "/s"}).status(),
      absl::StatusCode::kNotFound, "pin directory");
}

}  // namespace
}  // namespace egress
