// MakePrivateDir: egressd's state directory is its own whatever was there
// before (a 0755 hostPath, files made under umask 022), and a symlink or a
// file in its place is refused, not followed.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"

namespace egress {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/egress-private-dir-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    top_ = dir;
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(top_).ok()); }

  mode_t ModeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  FsLog Collect() {
    return [this](const std::string& line) { log_.push_back(line); };
  }

  std::string top_;
  std::vector<std::string> log_;
};

TEST_F(PrivateDirTest, ExistingOpenDirectoryAndItsFilesAreMadePrivate) {
  const std::string dir = top_ + "/state";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  for (const char* f : {"/state.db", "/state.db-wal", "/learned.db"}) {
    const int fd = open((dir + f).c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
    ASSERT_EQ(chmod((dir + f).c_str(), 0644), 0);
  }
  ASSERT_OK(MakePrivateDir(dir, Collect()));
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/state.db"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/state.db-wal"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/learned.db"), 0600u);
  EXPECT_THAT(log_, Contains(dir + " had mode 0755; now 0700"));
  EXPECT_THAT(log_, Contains(dir + "/state.db had mode 0644; now 0600"));
  // A second time there is nothing to change or say.
  log_.clear();
  ASSERT_OK(MakePrivateDir(dir, Collect()));
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(PrivateDirTest, MissingDirectoryIsMadePrivate) {
  const std::string dir = top_ + "/a/b";
  const mode_t old = umask(022);
  ASSERT_OK(MakePrivateDir(dir, Collect()));
  umask(old);
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST_F(PrivateDirTest, SymlinkOrFileIsRefused) {
  const std::string real = top_ + "/real";
  ASSERT_EQ(mkdir(real.c_str(), 0755), 0);
  ASSERT_EQ(chmod(real.c_str(), 0755), 0);
  const std::string link = top_ + "/link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  EXPECT_STATUS(MakePrivateDir(link, Collect()),
                absl::StatusCode::kFailedPrecondition, "is a symlink");
  EXPECT_EQ(ModeOf(real), 0755u);  // not followed
  const std::string file = top_ + "/file";
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_STATUS(MakePrivateDir(file, Collect()),
                absl::StatusCode::kFailedPrecondition, "not a directory");
  EXPECT_THAT(log_, IsEmpty());
}

}  // namespace
}  // namespace egress
