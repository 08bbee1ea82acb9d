// The state directory on an ext4 filesystem with blocks reserved for root
// (a loop-mounted image the test makes), full to its last block: room made
// within the reserve shows in f_bfree only (f_bavail stays 0), and egressd,
// root, writes there. An older egressd's learned.json waiting for room is
// imported once such room is made.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/older_learned_json.h"
#include "tests/testing/command.h"
#include "tests/testing/privileges.h"

namespace egress::testing {
namespace {

class StateReservedRoomTest : public EgressdTest {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    char tmpl[] = "/tmp/egress-state-reserved-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    image_ = mount_ + ".img";
    // 16 MiB, half of it reserved for root, no journal (all blocks data).
    ASSERT_EQ(TruncateImage(), 0) << strerror(errno);
    absl::StatusOr<CommandResult> made =
        RunCommand({"mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "50", "-O",
                    "^has_journal", image_});
    ASSERT_TRUE(made.ok() && made->exit_code == 0)
        << (made.ok() ? made->output : made.status().ToString());
    absl::StatusOr<CommandResult> mounted =
        RunCommand({"mount", "-o", "loop", image_, mount_});
    ASSERT_TRUE(mounted.ok() && mounted->exit_code == 0)
        << (mounted.ok() ? mounted->output : mounted.status().ToString());
    mounted_ = true;
    ASSERT_EQ(chmod(mount_.c_str(), 0700), 0);
    extra_daemon_args_ = {"--state_dir", mount_ + "/state"};
    EgressdTest::SetUp();
  }

  void TearDown() override {
    EgressdTest::TearDown();  // egressd stopped first: nothing holds the fs
    // The loop device goes with the mount (mount -o loop sets autoclear).
    if (mounted_) {
      EXPECT_EQ(umount2(mount_.c_str(), 0), 0) << strerror(errno);
    }
    if (!mount_.empty()) rmdir(mount_.c_str());
    if (!image_.empty()) unlink(image_.c_str());
  }

  int TruncateImage() {
    int fd = open(image_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    const int rc = ftruncate(fd, 16 << 20);
    close(fd);
    return rc;
  }

  // Writes `path` with `blocks` 4 KiB blocks, or until ENOSPC; returns the
  // errno that stopped it (0: all written).
  static int Write(const std::string& path, int blocks) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return errno;
    std::vector<char> block(4096, 'x');
    int err = 0;
    for (int i = 0; i < blocks; ++i) {
      if (write(fd, block.data(), block.size()) < 0) {
        err = errno;
        break;
      }
    }
    if (err == 0 && fsync(fd) != 0) err = errno;
    close(fd);
    return err;
  }

  std::string mount_, image_;
  bool mounted_ = false;
};

TEST_F(StateReservedRoomTest, LearnedJsonIsImportedOnceRoomIsMadeInTheReserve) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  const std::string json = mount_ + "/state/learned.json";
  ASSERT_TRUE(WriteOlderLearnedJson(json).ok());
  // 1 MiB to free later (within the 8 MiB reserve), then the rest, as root
  // (bounded: twice the filesystem).
  const std::string small = mount_ + "/small";
  ASSERT_EQ(Write(small, 256), 0);
  ASSERT_EQ(Write(mount_ + "/fill", 8192), ENOSPC);
  StartDaemon();
  ASSERT_GT(daemon_pid_, 0);
  std::string suggested = CtlOk({"suggest", "--target", "web"});
  ASSERT_TRUE(absl::StrContains(suggested, "learned.json waits")) << suggested;

  ASSERT_EQ(unlink(small.c_str()), 0);
  struct statvfs fs;
  ASSERT_EQ(statvfs(mount_.c_str(), &fs), 0);
  EXPECT_EQ(fs.f_bavail, 0u) << "the room made is within the reserve";
  EXPECT_GE(fs.f_bfree, 128u);
  suggested = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(suggested, kOlderLearnedAddress)) << suggested;
  EXPECT_FALSE(absl::StrContains(suggested, "learned.json waits")) << suggested;
  EXPECT_EQ(access((json + ".migrated").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace egress::testing
