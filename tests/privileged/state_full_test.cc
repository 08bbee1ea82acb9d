// The state directory full (ENOSPC, a small tmpfs the test fills): a change
// that cannot be stored is refused, saying so, and leaves what is enforced
// as it was; egressd started on a full directory enforces what is pinned and
// stored, says so in `status` and the log, and takes changes again, without
// a restart, once there is room.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/privileges.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr char kRefused[] = "has no room";

class StateFullTest : public EgressdTest {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    char tmpl[] = "/tmp/egress-state-full-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    ASSERT_EQ(mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=2m,mode=0700"),
              0)
        << strerror(errno);
    mounted_ = true;
    fill_ = mount_ + "/fill";
    // The last --state_dir counts: egressd's state on the small tmpfs.
    extra_daemon_args_ = {"--state_dir", mount_ + "/state"};
    EgressdTest::SetUp();
  }

  void TearDown() override {
    EgressdTest::TearDown();  // egressd stopped first: nothing holds the fs
    if (mounted_) {
      EXPECT_EQ(umount2(mount_.c_str(), MNT_DETACH), 0);
    }
    if (!mount_.empty()) rmdir(mount_.c_str());
  }

  // Writes `fill_` until the tmpfs has no room (bounded by its size).
  void Fill() {
    int fd = open(fill_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    std::vector<char> block(4096, 'x');
    int err = 0;
    for (int i = 0; i < 1024; ++i) {  // 4 MiB: twice the tmpfs
      if (write(fd, block.data(), block.size()) < 0) {
        err = errno;
        break;
      }
    }
    close(fd);
    ASSERT_EQ(err, ENOSPC);
  }
  void Free() { ASSERT_EQ(unlink(fill_.c_str()), 0); }

  std::string StateError() {
    nlohmann::json s = CtlJson({"status"});
    return s.value("state_error", "");
  }

  void ExpectOnlyFirstRule() {
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
    std::string list = CtlOk({"list", "--target", "web"});
    EXPECT_FALSE(absl::StrContains(list, "40002")) << list;
  }

  // Refused with the reason, and nothing changed.
  void ExpectChangeRefused() {
    CommandResult r = Ctl({"allow", "40002/tcp", "127.0.0.2"});
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, kRefused)) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "--state_dir")) << r.output;
    ExpectOnlyFirstRule();
    EXPECT_TRUE(absl::StrContains(StateError(), kRefused));
    EXPECT_TRUE(absl::StrContains(CtlOk({"status"}), "CHANGES ARE REFUSED"));
  }

  // Room again: the same change goes through, no restart.
  void ExpectChangeTakenAgain() {
    Free();
    CtlOk({"allow", "40002/tcp", "127.0.0.2"});
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
    EXPECT_EQ(StateError(), "");
    EXPECT_TRUE(absl::StrContains(DaemonLog(), "has room again"))
        << DaemonLog();
  }

  std::string mount_, fill_;
  bool mounted_ = false;
};

TEST_F(StateFullTest, AChangeThatCannotBeStoredIsRefusedAndChangesNothing) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  Fill();
  ExpectChangeRefused();
  ExpectChangeTakenAgain();
}

TEST_F(StateFullTest, StartedOnAFullDirectoryItEnforcesAndRefusesChanges) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  Fill();
  StartDaemon();
  ASSERT_GT(daemon_pid_, 0);
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "started read-only"))
      << DaemonLog();
  ExpectChangeRefused();
  ExpectChangeTakenAgain();
}

}  // namespace
}  // namespace egress::testing
