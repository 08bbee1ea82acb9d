// PolicyFileWriters from event sequences, and PolicyDirWatch on a real
// directory (inotify needs no privilege).
#include "userspace/daemon/policy_dir_watch.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/command.h"

namespace egress {
namespace {

TEST(PolicyFileWritersTest, ACreatedFileIsBusyUntilItsWriterCloses) {
  PolicyFileWriters w;
  EXPECT_TRUE(w.OnEvent(IN_CREATE, "web.yaml"));
  EXPECT_FALSE(w.OnEvent(IN_OPEN, "web.yaml"));
  EXPECT_TRUE(w.OnEvent(IN_MODIFY, "web.yaml"));
  EXPECT_EQ(w.Busy(), "web.yaml");
  EXPECT_TRUE(w.OnEvent(IN_CLOSE_WRITE, "web.yaml"));
  EXPECT_EQ(w.Busy(), std::nullopt);
}

TEST(PolicyFileWritersTest, AnAppendToAnOpenFileIsBusy) {
  PolicyFileWriters w;
  w.OnEvent(IN_OPEN, "web.yml");
  EXPECT_EQ(w.Busy(), std::nullopt);  // opened, nothing written yet
  w.OnEvent(IN_MODIFY, "web.yml");
  EXPECT_EQ(w.Busy(), "web.yml");
  w.OnEvent(IN_CLOSE_WRITE, "web.yml");
  EXPECT_EQ(w.Busy(), std::nullopt);
}

TEST(PolicyFileWritersTest, ReadersAloneNeverMakeAFileBusy) {
  PolicyFileWriters w;
  EXPECT_FALSE(w.OnEvent(IN_OPEN, "web.yaml"));
  EXPECT_FALSE(w.OnEvent(IN_OPEN, "web.yaml"));
  EXPECT_EQ(w.Busy(), std::nullopt);
  EXPECT_FALSE(w.OnEvent(IN_CLOSE_NOWRITE, "web.yaml"));
  EXPECT_FALSE(w.OnEvent(IN_CLOSE_NOWRITE, "web.yaml"));
  // A close whose open came before the watch counts nothing.
  w.OnEvent(IN_CLOSE_NOWRITE, "web.yaml");
  w.OnEvent(IN_OPEN, "web.yaml");
  w.OnEvent(IN_MODIFY, "web.yaml");
  EXPECT_EQ(w.Busy(), "web.yaml");
}

TEST(PolicyFileWritersTest, AChangeWithNoOpenSeenIsNotWaitedFor) {
  PolicyFileWriters w;
  w.OnEvent(IN_CREATE, "linked.yaml");  // a hard link: no open
  EXPECT_EQ(w.Busy(), std::nullopt);
  w.OnEvent(IN_MODIFY, "old-writer.yaml");  // a writer older than the watch
  EXPECT_EQ(w.Busy(), std::nullopt);
}

TEST(PolicyFileWritersTest, RenamedInOrGoneIsNotBusy) {
  PolicyFileWriters w;
  w.OnEvent(IN_CREATE, "web.yaml");
  w.OnEvent(IN_OPEN, "web.yaml");
  w.OnEvent(IN_MODIFY, "web.yaml");
  EXPECT_TRUE(w.OnEvent(IN_MOVED_FROM, "web.yaml"));
  EXPECT_EQ(w.Busy(), std::nullopt);
  w.OnEvent(IN_OPEN, "a.yaml");
  w.OnEvent(IN_MODIFY, "a.yaml");
  EXPECT_TRUE(w.OnEvent(IN_DELETE, "a.yaml"));
  EXPECT_EQ(w.Busy(), std::nullopt);
  EXPECT_TRUE(w.OnEvent(IN_MOVED_TO, "b.yaml"));
  EXPECT_EQ(w.Busy(), std::nullopt);
}

TEST(PolicyFileWritersTest, OtherEntriesChangeTheDirectoryButAreNeverBusy) {
  PolicyFileWriters w;
  // An editor's swap file stays open for the whole edit.
  EXPECT_TRUE(w.OnEvent(IN_CREATE, ".web.yaml.swp"));
  w.OnEvent(IN_OPEN, ".web.yaml.swp");
  w.OnEvent(IN_MODIFY, ".web.yaml.swp");
  // A ConfigMap's data directory and its symlink swap.
  EXPECT_TRUE(w.OnEvent(IN_CREATE | IN_ISDIR, "..2026_12_05"));
  EXPECT_TRUE(w.OnEvent(IN_MOVED_TO, "..data"));
  EXPECT_EQ(w.Busy(), std::nullopt);
  EXPECT_FALSE(w.OnEvent(IN_OPEN, ""));  // the directory itself, read
}

TEST(PolicyFileWritersTest, TheFirstBusyFileByNameIsNamed) {
  PolicyFileWriters w;
  for (const char* f : {"b.yaml", "a.yaml"}) {
    w.OnEvent(IN_OPEN, f);
    w.OnEvent(IN_MODIFY, f);
  }
  EXPECT_EQ(w.Busy(), "a.yaml");
  w.Clear();
  EXPECT_EQ(w.Busy(), std::nullopt);
}

class PolicyDirWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-policy-watch-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)testing::RunCommand({"rm", "-rf", root_}); }

  std::string root_;
};

TEST_F(PolicyDirWatchTest, AFileStillOpenForWritingIsBusyUntilClosed) {
  const std::string dir = root_ + "/policies";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  PolicyDirWatch watch(dir);
  std::string why, note;
  ASSERT_TRUE(watch.Open(&why)) << why;
  EXPECT_FALSE(watch.Follow(&note));  // the first arms, no reload asked
  EXPECT_EQ(note, "");

  const int fd = open((dir + "/web.yaml").c_str(),
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "kind: EgressPolicy\n", 19), 19);
  EXPECT_TRUE(watch.Read());
  EXPECT_EQ(watch.Busy(), "web.yaml");
  ASSERT_EQ(close(fd), 0);
  EXPECT_TRUE(watch.Read());
  EXPECT_EQ(watch.Busy(), std::nullopt);
  EXPECT_FALSE(watch.Read());  // nothing queued
}

TEST_F(PolicyDirWatchTest, FollowsASwappedSymlinkAndADirectoryMadeLater) {
  const std::string v1 = root_ + "/v1", v2 = root_ + "/v2",
                    link = root_ + "/current";
  ASSERT_EQ(mkdir(v1.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(v2.c_str(), 0700), 0);
  PolicyDirWatch watch(link);
  std::string why, note;
  ASSERT_TRUE(watch.Open(&why)) << why;
  // Not there yet: said once, and a reload is asked when it appears.
  EXPECT_FALSE(watch.Follow(&note));
  EXPECT_NE(note.find("not watching " + link), std::string::npos) << note;
  note.clear();
  EXPECT_FALSE(watch.Follow(&note));
  EXPECT_EQ(note, "");
  ASSERT_EQ(symlink("v1", link.c_str()), 0);
  EXPECT_TRUE(watch.Follow(&note));
  EXPECT_NE(note.find("appeared"), std::string::npos) << note;
  EXPECT_FALSE(watch.Follow(&note));  // unchanged

  // Events come from the directory the link names now, not the old one.
  ASSERT_EQ(symlink("v2", (root_ + "/next").c_str()), 0);
  ASSERT_EQ(rename((root_ + "/next").c_str(), link.c_str()), 0);
  note.clear();
  EXPECT_TRUE(watch.Follow(&note));
  EXPECT_NE(note.find("now names another directory"), std::string::npos)
      << note;
  (void)watch.Read();
  ASSERT_EQ(close(open((v1 + "/old.yaml").c_str(), O_WRONLY | O_CREAT, 0600)),
            0);
  EXPECT_FALSE(watch.Read());
  ASSERT_EQ(close(open((v2 + "/new.yaml").c_str(), O_WRONLY | O_CREAT, 0600)),
            0);
  EXPECT_TRUE(watch.Read());

  // Gone: a reload is asked (it finds no directory), and said once.
  ASSERT_EQ(unlink(link.c_str()), 0);
  note.clear();
  EXPECT_TRUE(watch.Follow(&note));
  EXPECT_NE(note.find("not watching"), std::string::npos) << note;
}

}  // namespace
}  // namespace egress
