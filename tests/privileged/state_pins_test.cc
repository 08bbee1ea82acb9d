// The state file and the pins out of step: a state directory that cannot be
// written, a state file lost while the pins remain. egressd never lifts
// enforcement it could not record, and never hides or sweeps a target it
// finds pinned.
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"

namespace egress::testing {
namespace {

class StatePinsTest : public EgressdTest {};

TEST_F(StatePinsTest, RemoveWithAReadOnlyStateDirKeepsTheTargetEnforced) {
  AddTarget("web");
  // Root ignores file modes: a read-only bind mount makes the directory
  // unwritable for egressd too. Undone on every way out of the test.
  ASSERT_EQ(
      mount(state_dir_.c_str(), state_dir_.c_str(), nullptr, MS_BIND, nullptr),
      0)
      << strerror(errno);
  bool mounted = true;
  absl::Cleanup unmount = [&] {
    if (mounted) umount2(state_dir_.c_str(), MNT_DETACH);
  };
  ASSERT_EQ(mount(nullptr, state_dir_.c_str(), nullptr,
                  MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr),
            0)
      << strerror(errno);
  CommandResult r = Ctl({"target", "remove", "web"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "stays enforced")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "Read-only file system")) << r.output;
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_EQ(targets["targets"].size(), 1u) << targets.dump();
  ASSERT_EQ(umount2(state_dir_.c_str(), 0), 0) << strerror(errno);
  mounted = false;
  CtlOk({"target", "remove", "web"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

TEST_F(StatePinsTest, PinsWithoutStateAreShownAsOrphansAndRemovable) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGKILL);
  // The state lost (a lost disk, an operator's mistake).
  for (const char* file : {"/state.db", "/state.db-wal", "/state.db-shm"}) {
    unlink((state_dir_ + file).c_str());
  }
  StartDaemon();
  // Still enforced as it was: its rules were not swept.
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  nlohmann::json list = CtlJson({"target", "list"});
  ASSERT_EQ(list["targets"].size(), 1u) << list.dump();
  const nlohmann::json& t = list["targets"][0];
  EXPECT_EQ(t["name"], "orphan-1");
  EXPECT_EQ(t["orphan"], true);
  EXPECT_EQ(t["cgroup"], cg_->relative_path());
  EXPECT_EQ(t["attached"], true);
  std::string status = CtlOk({"status"});
  EXPECT_TRUE(absl::StrContains(status, "orphan-1")) << status;
  EXPECT_TRUE(absl::StrContains(status, "orphan,")) << status;
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "without state")) << DaemonLog();
  // Changing it is refused (its rules are unknown); removing it lifts it.
  CommandResult allow =
      Ctl({"allow", "40002/tcp", "127.0.0.2", "-t", "orphan-1"});
  EXPECT_EQ(allow.exit_code, 1) << allow.output;
  CtlOk({"target", "remove", "orphan-1"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
  // And a new target on the cgroup starts from its own rules.
  AddTarget("web");
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
}

TEST_F(StatePinsTest, RestartWithMapPinsGoneMovesTheProgramsToTheNewMaps) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGKILL);
  // The map pins go; the programs and links stay pinned (and keep the old
  // maps alive): egressd makes new maps at start.
  ASSERT_TRUE(
      RemoveTree(absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps"))
          .ok());
  StartDaemon();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  // What is acknowledged from now on is what the hooks do.
  CtlOk({"allow", "40002/tcp", "127.0.0.2"});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  CtlOk({"delete", "1"});
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  nlohmann::json counters = Counters("web");
  EXPECT_GE(counters["allowed"].get<int>(), 2) << counters.dump();
  EXPECT_GE(counters["denied"].get<int>(), 1) << counters.dump();
  // Swapped under the links, not attached a second time.
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "no longer pinned"))
      << DaemonLog();
}

}  // namespace
}  // namespace egress::testing
