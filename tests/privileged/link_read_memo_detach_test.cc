// The link reads BpfKernel keeps (LinkReadMemo) go with the link set they
// were read from: a pattern or workload target's set per cgroup is
// detached and removed when its cgroup goes, and cgroup ids never come
// back, so a kept read of a removed set would never be asked for or
// replaced again. A host whose containers come and go would keep one per
// cgroup it ever had, for as long as egressd runs.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/common/instance_lock.h"
#include "userspace/common/mountinfo.h"
#include "userspace/daemon/kernel_port_bpf.h"

namespace egress {
namespace {

constexpr uint32_t kTarget = 7;

class LinkReadMemoDetachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    bpffs_dir_ = absl::StrCat("/sys/fs/bpf/egress-test-memo-", getpid());
    ASSERT_OK_AND_ASSIGN(std::string cgroup_root, Cgroup2Root());
    ASSERT_OK_AND_ASSIGN(kernel_,
                         BpfKernel::Open(bpffs_dir_, "/sys/fs/bpf", cgroup_root,
                                         LockHolder{getpid(), ""}));
    ASSERT_OK_AND_ASSIGN(cgroup_, testing::TestCgroup::Create("memo"));
  }

  void TearDown() override {
    if (kernel_) kernel_->RemovePrograms(kTarget).IgnoreError();
    kernel_.reset();
    if (cgroup_) cgroup_->Remove().IgnoreError();
    if (!bpffs_dir_.empty()) RemoveTree(bpffs_dir_).IgnoreError();
  }

  std::string bpffs_dir_;
  std::unique_ptr<BpfKernel> kernel_;
  std::unique_ptr<testing::TestCgroup> cgroup_;
};

TEST_F(LinkReadMemoDetachTest, ADetachedLinkSetLeavesNoKeptRead) {
  const uint64_t set = cgroup_->id();
  ASSERT_OK(kernel_->LoadPrograms(kTarget));
  ASSERT_OK(kernel_->Attach(kTarget, set, cgroup_->relative_path(), set));
  // The set's directory changed over a second ago (its time set back, not
  // waited for): a read of it is kept.
  const std::string link_dir = absl::StrCat(
      BpfKernel::VersionDir(bpffs_dir_), "/targets/", kTarget, "/cgroup-", set);
  struct timespec times[2];
  ASSERT_EQ(clock_gettime(CLOCK_REALTIME, &times[0]), 0);
  times[0].tv_sec -= 10;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, link_dir.c_str(), times, 0), 0)
      << strerror(errno);
  EXPECT_TRUE(kernel_->ReadLinks(kTarget, set, set).all_live());
  EXPECT_TRUE(kernel_->ReadLinks(kTarget, set, set).all_live());
  ASSERT_EQ(kernel_->link_reads().kept_reads(), 1u);
  ASSERT_EQ(kernel_->link_reads().entries(), 1u);

  ASSERT_OK(kernel_->Detach(kTarget, set));
  struct stat st;
  ASSERT_NE(stat(link_dir.c_str(), &st), 0) << "the set's directory is gone";
  EXPECT_EQ(kernel_->link_reads().entries(), 0u)
      << "a read of a removed link set is still kept";
}

}  // namespace
}  // namespace egress
