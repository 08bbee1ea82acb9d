// The state directory full (ENOSPC, a small tmpfs the test fills): a change
// that cannot be stored is refused, saying so, and leaves what is enforced
// as it was; egressd started on a full directory enforces what is pinned and
// stored, says so in `status` and the log, and takes changes again, without
// a restart, once there is room.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/older_learned_json.h"
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
    // strictatime: every read of a file shows in its atime (what the
    // learned.json test counts reads by).
    ASSERT_EQ(mount("tmpfs", mount_.c_str(), "tmpfs", MS_STRICTATIME,
                    "size=2m,mode=0700"),
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

  // Fills the state directory and starts egressd on it; the log must say
  // `expect` (what the start could not write).
  void StartOnAFullDirectory(const std::string& expect) {
    Fill();
    StartDaemon();
    ASSERT_GT(daemon_pid_, 0);
    EXPECT_TRUE(absl::StrContains(DaemonLog(), expect))
        << "the log does not say \"" << expect << "\": " << DaemonLog();
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
  ASSERT_NO_FATAL_FAILURE(StartOnAFullDirectory("started read-only"));
  ExpectChangeRefused();
  ExpectChangeTakenAgain();
}

// After a reboot the pins are gone and the state is not: the start attaches
// every target from the state, with no room to write anything.
TEST_F(StateFullTest, StartedAfterARebootOnAFullDirectoryAttachesFromState) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  // Removing the pins detaches everything, as a reboot would.
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  // The kernel releases unpinned links asynchronously: wait (bounded).
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  ASSERT_NO_FATAL_FAILURE(StartOnAFullDirectory("started read-only"));
  ExpectChangeRefused();
  ExpectChangeTakenAgain();
}

// After a reboot with a temporary rule that ran out meanwhile: the rules
// still in force are enforced though the shorter set cannot be stored, and
// the first change with room stores the target's rules whole (an append
// after the last rule in force would land on the stored row of the rule
// that ran out).
TEST_F(StateFullTest, StartedAfterARebootWithARuleRunOutStoresItWholeLater) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  CtlOk({"allow", "40003/tcp", "127.0.0.2", "--for", "1s"});
  StopDaemon(SIGTERM);
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  absl::SleepFor(absl::Milliseconds(1500));  // the rule's time runs out
  ASSERT_NO_FATAL_FAILURE(StartOnAFullDirectory("not stored"));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40003); }), EPERM);
  ExpectChangeRefused();
  ExpectChangeTakenAgain();
  StopDaemon(SIGTERM);
  StartDaemon();
  ASSERT_GT(daemon_pid_, 0);
  std::string list = CtlOk({"list", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(list, "40001")) << list;
  EXPECT_TRUE(absl::StrContains(list, "40002")) << list;
  EXPECT_FALSE(absl::StrContains(list, "40003")) << list;
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
}

// An older egressd's learned.json waits to be imported into learned.db:
// with no room it waits for a later start, which imports it.
TEST_F(StateFullTest, StartedOnAFullDirectoryWithLearnedJsonToImport) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  const std::string json = mount_ + "/state/learned.json";
  ASSERT_TRUE(WriteOlderLearnedJson(json).ok());
  ASSERT_NO_FATAL_FAILURE(StartOnAFullDirectory("learned.json"));
  EXPECT_EQ(access(json.c_str(), F_OK), 0);
  // What the file holds is missing from suggest, which says so.
  std::string suggested = CtlOk({"suggest", "--target", "web"});
  EXPECT_FALSE(absl::StrContains(suggested, kOlderLearnedAddress)) << suggested;
  EXPECT_TRUE(absl::StrContains(suggested, "learned.json waits")) << suggested;
  // While no room was made, flushes do not read the file again (a large
  // one would cost a parse every few seconds): its atime stays.
  struct stat before;
  ASSERT_EQ(stat(json.c_str(), &before), 0);
  for (int i = 0; i < 3; ++i) {
    suggested = CtlOk({"suggest", "--target", "web"});
    EXPECT_TRUE(absl::StrContains(suggested, "learned.json waits"));
  }
  struct stat after;
  ASSERT_EQ(stat(json.c_str(), &after), 0);
  EXPECT_EQ(before.st_atim.tv_sec, after.st_atim.tv_sec);
  EXPECT_EQ(before.st_atim.tv_nsec, after.st_atim.tv_nsec);
  ExpectChangeRefused();
  // Room again: imported without a restart (suggest flushes first).
  ExpectChangeTakenAgain();
  suggested = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(suggested, kOlderLearnedAddress)) << suggested;
  EXPECT_FALSE(absl::StrContains(suggested, "learned.json waits")) << suggested;
  EXPECT_NE(access(json.c_str(), F_OK), 0);
  EXPECT_EQ(access((json + ".migrated").c_str(), F_OK), 0);
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "imported into learned.db"))
      << DaemonLog();
  // Imported once: a restart finds only the migrated file (the file's one
  // attempt, not two).
  StopDaemon(SIGTERM);
  StartDaemon();
  ASSERT_GT(daemon_pid_, 0);
  suggested = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(suggested, "1 attempt seen")) << suggested;
}

}  // namespace
}  // namespace egress::testing
