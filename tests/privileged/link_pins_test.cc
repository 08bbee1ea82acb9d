// Link pins are files in bpffs: uid 0 can unlink them without CAP_BPF,
// CAP_NET_ADMIN or CAP_SYS_ADMIN. egressd holds every link it attached or
// adopted open, so removing a pin detaches nothing, and it pins the link
// again.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/target_programs.h"

namespace egress::testing {
namespace {

class LinkPinsTest : public EgressdTest {
 protected:
  std::string LinkPin(const HookSpec& h) const {
    return absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION,
                        "/targets/1/link_", h.name);
  }
  bool AllPinned() const {
    struct stat st;
    for (const HookSpec& h : AllHooks()) {
      if (stat(LinkPin(h).c_str(), &st) != 0) return false;
    }
    return true;
  }
};

TEST_F(LinkPinsTest, RemovingEveryLinkPinLetsNoConnectOut) {
  AddTarget("web");
  auto closed = ReservedPort::Create();
  ASSERT_TRUE(closed.ok()) << closed.status();
  const uint16_t port = (*closed)->port();
  ASSERT_TRUE(AllPinned());

  // A prober in the target connects in a tight loop (bounded in count and
  // time) to a port the policy denies; anything but EPERM got out.
  absl::StatusOr<std::vector<int>> result;
  std::thread prober([&] {
    result = RunInCgroupMulti(
        cg_->path(),
        [port] {
          int out = 0, tries = 0;
          absl::Time end = absl::Now() + absl::Seconds(2);
          while (tries < 200000 && absl::Now() < end) {
            if (Allowed(TcpConnect("127.0.0.1", port))) ++out;
            ++tries;
          }
          return std::vector<int>{out, tries};
        },
        absl::Seconds(10));
  });
  absl::SleepFor(absl::Milliseconds(300));
  for (const HookSpec& h : AllHooks()) unlink(LinkPin(h).c_str());
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!AllPinned() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  prober.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT((*result)[1], 100);
  EXPECT_EQ((*result)[0], 0) << "connects got out of " << (*result)[1];
  EXPECT_TRUE(AllPinned()) << "egressd did not pin the links again";
  auto log = RunCommand({"cat", daemon_log_});
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(absl::StrContains(log->output, "link pin(s) had been removed"))
      << log->output;
  // Pinned again, not attached a second time.
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(InCgroup([port] { return TcpConnect("127.0.0.1", port); }), EPERM);
  // target remove still lifts enforcement: the held links are detached too.
  CtlOk({"target", "remove", "web"});
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
  EXPECT_TRUE(
      Allowed(InCgroup([port] { return TcpConnect("127.0.0.1", port); })));
}

// `status` reads every link without the engine lock (no pin is made
// there): a target removed while it reads stays removed, pins and all.
TEST_F(LinkPinsTest, StatusWhileATargetIsRemovedMakesNoPinOfIt) {
  std::atomic<bool> stop{false};
  int reads = 0;
  std::thread status([&] {
    absl::Time end = absl::Now() + absl::Seconds(60);
    while (!stop.load() && reads < 2000 && absl::Now() < end) {
      Ctl({"status"});
      ++reads;
    }
  });
  for (int round = 0; round < 10; ++round) {
    AddTarget("web");
    CtlOk({"target", "remove", "web"});
  }
  stop.store(true);
  status.join();
  EXPECT_GT(reads, 0);
  absl::SleepFor(absl::Seconds(1));  // two reconciles more
  const std::string targets =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/targets");
  EXPECT_TRUE(SubdirNames(targets).empty())
      << "pins of a removed target: " << SubdirNames(targets).front();
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
}

}  // namespace
}  // namespace egress::testing
