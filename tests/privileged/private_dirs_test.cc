// What egressd keeps on disk is root's alone, whatever was there before it
// started: a state directory made 0755 (a DaemonSet's hostPath) and
// databases made under umask 022 become 0700 and 0600; a pin tree other
// users made on a bpffs mounted without mode= (mode 1777) becomes root's,
// and no other user can then remove a pin.
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/bpffs.h"

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

// The errno of `fn` run as uid and gid 65534 in a child (0: it worked).
int AsNobody(std::function<int()> fn) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(255);
    }
    _exit(fn() == 0 ? 0 : errno);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
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

TEST_F(PrivateDirsTest, PinTreeOthersMadeIsTakenOver) {
  StopDaemon(SIGTERM);
  ASSERT_TRUE(RemoveTree(bpffs_dir_).ok());
  // A bpffs of the test's own with bpffs's default mode (1777): anyone may
  // make directories in it. Unmounted on every way out.
  const std::string mnt = state_dir_ + "-bpf";
  ASSERT_TRUE(MakeDirs(mnt, 0700).ok());
  // uid 65534 may pass through the test's directories to the mount.
  const std::string top = state_dir_.substr(0, state_dir_.rfind('/'));
  ASSERT_EQ(chmod(top.c_str(), 0711), 0);
  ASSERT_EQ(chmod(mnt.c_str(), 0711), 0);
  ASSERT_EQ(mount("bpf", mnt.c_str(), "bpf", 0, nullptr), 0) << strerror(errno);
  absl::Cleanup unmount = [this, mnt] {
    StopDaemon(SIGKILL);
    for (int i = 0; i < 10 && IsOnBpffs(mnt); ++i) {
      umount2(mnt.c_str(), MNT_DETACH);
    }
    EXPECT_FALSE(IsOnBpffs(mnt));
  };
  struct stat st;
  ASSERT_EQ(stat(mnt.c_str(), &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 01777u);
  // What uid 65534 made while egressd was stopped, each 0777: the pin root,
  // the version directory and the directory the targets' pins go below.
  bpffs_dir_ = mnt + "/egress";
  const std::string version =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION);
  for (const std::string& d :
       {bpffs_dir_, version, version + "/targets", version + "/spare"}) {
    ASSERT_EQ(AsNobody([&] { return mkdir(d.c_str(), 0777); }), 0) << d;
    ASSERT_EQ(chmod(d.c_str(), 0777), 0);
  }
  // A pin of root's others may write to, and one of another owner.
  UniqueFd map(bpf_map_create(BPF_MAP_TYPE_ARRAY, "probe", 4, 4, 1, nullptr));
  ASSERT_TRUE(map.valid()) << strerror(errno);
  const std::string roots = version + "/spare/roots_pin";
  const std::string foreign = version + "/spare/foreign_pin";
  ASSERT_EQ(bpf_obj_pin(map.get(), roots.c_str()), 0);
  ASSERT_EQ(chmod(roots.c_str(), 0666), 0);
  ASSERT_EQ(bpf_obj_pin(map.get(), foreign.c_str()), 0);
  ASSERT_EQ(lchown(foreign.c_str(), kNobody, kNobody), 0);

  extra_daemon_args_ = {"--bpffs_mount", mnt};
  StartDaemon();
  AddTarget("web");
  CtlOk({"allow", "443/tcp", "127.0.0.2"});

  size_t pins = 0;
  std::string a_pin;
  for (const Entry& e : TreeOf(bpffs_dir_)) {
    EXPECT_EQ(e.st.st_uid, 0u) << e.path;
    if (S_ISDIR(e.st.st_mode)) {
      EXPECT_EQ(e.st.st_mode & 07777, 0700u) << e.path;
    } else if (!S_ISLNK(e.st.st_mode)) {  // a symlink's mode means nothing
      EXPECT_EQ(e.st.st_mode & 077, 0u) << e.path;
      ++pins;
      if (absl::StrContains(e.path, "/link_")) a_pin = e.path;
    }
  }
  ASSERT_EQ(stat(bpffs_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(access(foreign.c_str(), F_OK), -1) << "another user's pin kept";
  EXPECT_EQ(access(roots.c_str(), F_OK), 0);
  EXPECT_GT(pins, 1u);
  ASSERT_FALSE(a_pin.empty()) << "no link pin below " << bpffs_dir_;
  // uid 65534 can neither remove a link pin nor make anything in the tree.
  EXPECT_EQ(AsNobody([&] { return unlink(a_pin.c_str()); }), EACCES) << a_pin;
  EXPECT_EQ(access(a_pin.c_str(), F_OK), 0);
  EXPECT_EQ(AsNobody([&] { return mkdir((version + "/x").c_str(), 0777); }),
            EACCES);
  const std::string log = DaemonLog();
  EXPECT_TRUE(absl::StrContains(log, "had mode 0777; now 0700")) << log;
  EXPECT_TRUE(absl::StrContains(log, "was owned by 65534:65534")) << log;
  EXPECT_TRUE(absl::StrContains(log, "removed " + foreign)) << log;
  EXPECT_TRUE(absl::StrContains(log, "with mode 1777")) << log;
}

}  // namespace
}  // namespace egress::testing
