// Pins lost while egressd runs: a target's pin directory removed, bpffs
// unmounted. egressd holds the maps and the links, so nothing stops
// enforcing; it makes every pin again (bpffs, maps, programs, links), says
// so once, and a restart adopts what it pinned. Run with the shared program
// set (the default: programs pinned once under shared/) and with a set per
// target (--noshared_program_set: programs pinned in targets/<id>/).
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/text_count.h"
#include "userspace/common/fs.h"
#include "userspace/kernel/bpffs.h"

namespace egress::testing {
namespace {

class PinRepairTest : public EgressdTest,
                      public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {LayoutFlag()};
    EgressdTest::SetUp();
  }
  bool Shared() const { return GetParam(); }
  const char* LayoutFlag() const {
    return Shared() ? "--shared_program_set" : "--noshared_program_set";
  }
  std::string Version() const {
    return absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION);
  }
  // Every kind of pin is there again: a map, a program (in the layout under
  // test), a link.
  bool Repinned() const {
    struct stat st;
    const std::string prog =
        Shared() ? "/shared/prog_connect4" : "/targets/1/prog_connect4";
    for (const std::string& pin :
         {std::string("/maps/rules"), prog,
          std::string("/targets/1/link_connect4"),
          std::string("/targets/1/link_sock_create")}) {
      if (stat((Version() + pin).c_str(), &st) != 0) return false;
    }
    return IsOnBpffs(Version());
  }
  bool WaitRepinned() const {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!Repinned() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return Repinned();
  }
  int LogCount(const std::string& what) {
    return static_cast<int>(CountOccurrences(DaemonLog(), what));
  }
  // Repaired, enforced, changeable, logged once (`logged`: what egressd says
  // it made again) and adopted by a restart.
  void ExpectRepaired(const std::string& logged = "pin(s) had gone") {
    ASSERT_TRUE(WaitRepinned()) << "egressd did not make the pins again";
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
    nlohmann::json t = CtlJson({"target", "list"})["targets"][0];
    EXPECT_EQ(t["hooks_attached"], t["hooks_total"]) << t.dump();
    CtlOk({"allow", "40002/tcp", "127.0.0.2"});
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
    absl::SleepFor(absl::Seconds(1));  // two reconciles more
    EXPECT_EQ(LogCount(logged), 1);
    EXPECT_EQ(LogCount("NOT_FOUND"), 0);
    StopDaemon(SIGKILL);
    StartDaemon();
    EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1)
        << "not adopted: attached twice";
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40003); }), EPERM);
  }
};

TEST_P(PinRepairTest, ARemovedTargetPinDirectoryIsMadeAgain) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  // Moved away in one step, then removed: egressd repairs pins while it
  // runs, so removing the files one by one races its reconcile (it would
  // pin the first links again before the directory is empty).
  const std::string gone = bpffs_dir_ + "-gone";
  ASSERT_EQ(rename((Version() + "/targets/1").c_str(), gone.c_str()), 0)
      << strerror(errno);
  absl::Status removed = RemoveTree(gone);
  if (!removed.ok()) (void)RemoveTree(gone);
  ASSERT_TRUE(removed.ok()) << removed;
  // With the shared set the directory held link pins only (its programs
  // are pinned under shared/), and egressd names what it pinned again.
  ExpectRepaired(Shared() ? "link pin(s) had been removed" : "pin(s) had gone");
  if (Shared()) {
    EXPECT_EQ(LogCount("pin(s) had gone"), 0);
  }
}

// Every map pin, the accelerators' too (udp_peer_filter, flows): a map
// left unpinned would be made anew by the next start, and the programs
// loaded after it would not share it with those loaded before.
TEST_P(PinRepairTest, RemovedMapPinsAreAllMadeAgain) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  const std::string maps = Version() + "/maps";
  auto pinned = [&maps] {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(maps, ec)) {
      names.insert(e.path().filename().string());
    }
    return names;
  };
  const std::set<std::string> before = pinned();
  ASSERT_TRUE(before.count("udp_peer_filter")) << "not pinned at start";
  ASSERT_TRUE(before.count("flows")) << "not pinned at start";
  ASSERT_GE(before.size(), 20u);
  // Moved away in one step, then removed (see above).
  const std::string gone = bpffs_dir_ + "-maps-gone";
  ASSERT_EQ(rename(maps.c_str(), gone.c_str()), 0) << strerror(errno);
  absl::Status removed = RemoveTree(gone);
  if (!removed.ok()) (void)RemoveTree(gone);
  ASSERT_TRUE(removed.ok()) << removed;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (pinned() != before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::set<std::string> after = pinned();
  for (const std::string& name : before) {
    EXPECT_TRUE(after.count(name)) << "map pin not made again: " << name;
  }
  EXPECT_EQ(after.size(), before.size());
  ExpectRepaired();
}

TEST_P(PinRepairTest, AnUnmountedBpffsIsMountedAndRepinned) {
  // egressd on a bpffs of the test's own, so that unmounting it touches
  // nothing else. Unmounted again on every way out, after egressd stopped
  // (it would mount it again).
  StopDaemon(SIGTERM);
  ASSERT_TRUE(RemoveTree(bpffs_dir_).ok());
  const std::string mnt = state_dir_ + "-bpf";
  ASSERT_TRUE(MakeDirs(mnt, 0700).ok());
  ASSERT_EQ(mount("bpf", mnt.c_str(), "bpf", 0, "mode=0700"), 0)
      << strerror(errno);
  absl::Cleanup unmount = [this, mnt] {
    StopDaemon(SIGKILL);
    for (int i = 0; i < 10 && IsOnBpffs(mnt); ++i) {
      umount2(mnt.c_str(), MNT_DETACH);
    }
    EXPECT_FALSE(IsOnBpffs(mnt));
  };
  bpffs_dir_ = mnt + "/egress";
  extra_daemon_args_ = {LayoutFlag(), "--bpffs_mount", mnt};
  StartDaemon();
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  ASSERT_EQ(umount2(mnt.c_str(), MNT_DETACH), 0) << strerror(errno);
  ExpectRepaired();
}

INSTANTIATE_TEST_SUITE_P(Layouts, PinRepairTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SharedSet" : "SetPerTarget";
                         });

}  // namespace
}  // namespace egress::testing
