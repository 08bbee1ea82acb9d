// What egressd keeps on disk is root's alone, whatever was there before it
// started: a state directory made 0755 (a DaemonSet's hostPath) and
// databases made under umask 022 become 0700 and 0600.
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "userspace/common/fs.h"

namespace egress::testing {
namespace {

constexpr uid_t kNobody = 65534;

struct Entry {
  std::string path;
  struct stat st;
};

// Every entry below `dir` (not following symlinks), bounded.
std::vector<Entry> TreeOf(const std::string& dir) {
  std::vector<Entry> out;
  std::vector<std::string> todo = {dir};
  for (size_t i = 0; i < todo.size() && out.size() < 10000; ++i) {
    DIR* d = opendir(todo[i].c_str());
    if (d == nullptr) continue;
    while (struct dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      Entry entry{absl::StrCat(todo[i], "/", name), {}};
      if (lstat(entry.path.c_str(), &entry.st) != 0) continue;
      if (S_ISDIR(entry.st.st_mode)) todo.push_back(entry.path);
      out.push_back(entry);
    }
    closedir(d);
  }
  return out;
}

class PrivateDirsTest : public EgressdTest {};

TEST_F(PrivateDirsTest, StateDirectoryOfOthersIsMadeRootsAlone) {
  StopDaemon(SIGTERM);
  // As a hostPath DirectoryOrCreate leaves it, with files of another umask.
  ASSERT_EQ(chmod(state_dir_.c_str(), 0755), 0);
  ASSERT_EQ(chown(state_dir_.c_str(), kNobody, kNobody), 0);
  for (const Entry& e : TreeOf(state_dir_)) {
    if (S_ISREG(e.st.st_mode)) {
      ASSERT_EQ(chmod(e.path.c_str(), 0644), 0);
    }
  }
  const mode_t old = umask(022);
  StartDaemon();
  umask(old);
  AddTarget("web");
  CtlOk({"allow", "443/tcp", "127.0.0.2", "comment", "secret"});
  struct stat st;
  ASSERT_EQ(stat(state_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  size_t files = 0;
  for (const Entry& e : TreeOf(state_dir_)) {
    if (!S_ISREG(e.st.st_mode)) continue;
    ++files;
    EXPECT_EQ(e.st.st_mode & 077, 0u)
        << e.path << " mode " << std::oct << (e.st.st_mode & 07777);
  }
  EXPECT_GE(files, 2u);  // state.db and learned.db at least
  const std::string log = DaemonLog();
  EXPECT_TRUE(absl::StrContains(log, "had mode 0755; now 0700")) << log;
  EXPECT_TRUE(absl::StrContains(log, "was owned by 65534:65534")) << log;
}

TEST_F(PrivateDirsTest, StateDirectorySymlinkIsRefused) {
  StopDaemon(SIGTERM);
  const std::string real = state_dir_ + "-real";
  ASSERT_EQ(rename(state_dir_.c_str(), real.c_str()), 0);
  ASSERT_EQ(symlink(real.c_str(), state_dir_.c_str()), 0);
  LaunchDaemon();
  int status = 0;
  // egressd refuses at start: it exits (bounded wait, then SIGKILL).
  pid_t done = 0;
  for (int i = 0; i < 200 && done == 0; ++i) {
    done = waitpid(daemon_pid_, &status, WNOHANG);
    if (done == 0) usleep(50000);
  }
  if (done == 0) {
    StopDaemon(SIGKILL);
  } else {
    daemon_pid_ = -1;
  }
  EXPECT_NE(done, 0) << "egressd started on a symlinked state directory";
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "is a symlink")) << DaemonLog();
  ASSERT_EQ(unlink(state_dir_.c_str()), 0);
  ASSERT_EQ(rename(real.c_str(), state_dir_.c_str()), 0);
}

}  // namespace
}  // namespace egress::testing
