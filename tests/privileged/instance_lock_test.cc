// One egressd per state directory and per pin directory: a second one, even
// on another socket, exits naming the first before it touches either, so
// what the first acknowledged stays enforced.
#include "userspace/common/instance_lock.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"

namespace egress::testing {
namespace {

class InstanceLockTest : public EgressdTest {
 protected:
  // Runs a second egressd on its own socket; bounded (on a refusal it exits
  // at once).
  CommandResult SecondDaemon(const std::string& state_dir,
                             const std::string& bpffs_dir) {
    auto r = RunCommand(
        {EGRESS_EGRESSD_PATH, "--socket", socket_path_ + "2", "--bpffs",
         bpffs_dir, "--state_dir", state_dir, "--metrics_addr", ""},
        absl::Seconds(10));
    EXPECT_TRUE(r.ok()) << "second egressd did not exit: " << r.status();
    return r.ok() ? *r : CommandResult{};
  }
  void ExpectRefusedNamingUs(const CommandResult& r, const std::string& dir) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(absl::StrContains(
        r.output, absl::StrCat(dir, " is in use by egressd pid ", daemon_pid_,
                               " serving socket ", socket_path_)))
        << r.output;
  }
};

TEST_F(InstanceLockTest, SecondEgressdOnTheSameStateOrPinsIsRefused) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  const std::string other = state_dir_ + "-other";
  const std::string other_pins = bpffs_dir_ + "-other";
  // Same state and pins; only the pins shared; only the state shared.
  ExpectRefusedNamingUs(SecondDaemon(state_dir_, bpffs_dir_), state_dir_);
  ExpectRefusedNamingUs(SecondDaemon(other, bpffs_dir_), bpffs_dir_);
  ExpectRefusedNamingUs(SecondDaemon(state_dir_, other_pins), state_dir_);
  EXPECT_TRUE(RemoveTree(other_pins).ok());
  // What the first acknowledges afterwards is what the kernel does.
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  CtlOk({"delete", "1"});
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  CtlOk({"allow", "40002/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_EQ(targets["targets"].size(), 1u) << targets.dump();
}

// The lock is on the directories, not on the holder records beside them:
// removing those (a cleanup of stray symlinks) frees nothing, and egressd
// writes them again, so a refusal still names it.
TEST_F(InstanceLockTest, RemovedHolderRecordsFreeNothingAndAreWrittenAgain) {
  const std::string holder = state_dir_ + "/" + kHolderName;
  ASSERT_EQ(unlink(holder.c_str()), 0);
  ASSERT_EQ(unlink((bpffs_dir_ + "/" + kHolderName).c_str()), 0);
  EXPECT_EQ(SecondDaemon(state_dir_, bpffs_dir_).exit_code, 1);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  struct stat st;
  while (lstat(holder.c_str(), &st) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ExpectRefusedNamingUs(SecondDaemon(state_dir_, bpffs_dir_), state_dir_);
}

// A state directory removed and made again (a cleanup, tmpfiles' `d` line)
// is a new directory nobody has locked: egressd locks it as soon as it is
// there, so a second egressd on it (with pins of its own) is refused.
TEST_F(InstanceLockTest, AStateDirectoryMadeAgainIsLockedAgain) {
  ASSERT_TRUE(RemoveTree(state_dir_).ok());
  ASSERT_EQ(mkdir(state_dir_.c_str(), 0700), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(DaemonLog(), "locked the new one") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const std::string other_pins = bpffs_dir_ + "-other";
  CommandResult second = SecondDaemon(state_dir_, other_pins);
  EXPECT_TRUE(RemoveTree(other_pins).ok());
  unlink((socket_path_ + "2").c_str());
  ExpectRefusedNamingUs(second, state_dir_);
}

}  // namespace
}  // namespace egress::testing
