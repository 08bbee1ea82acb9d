// LinkReadMemo's bookkeeping on a directory with no pins (no hooks read, so
// no BPF call and no root): when an answer is kept, and that a Forget
// during a full read keeps none (a Detach racing a reconcile pass).
#include "userspace/kernel/link_read_memo.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace egress {
namespace {

class LinkReadMemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-link-read-memo-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Settled: modified well over a second before the reads.
    struct timespec old[2]{};
    clock_gettime(CLOCK_REALTIME, &old[0]);
    old[0].tv_sec -= 10;
    old[1] = old[0];
    ASSERT_EQ(utimensat(AT_FDCWD, dir_.c_str(), old, 0), 0);
  }
  void TearDown() override { rmdir(dir_.c_str()); }

  LinkHealth Read(LinkReadMemo& memo, const std::function<void()>& during) {
    return memo.Read(dir_, 7, {},
                     [&] {
                       during();
                       return HeldLinks{};
                     },
                     {});
  }

  std::string dir_;
};

TEST_F(LinkReadMemoTest, ASettledReadIsKeptUntilForgotten) {
  LinkReadMemo memo;
  Read(memo, [] {});
  EXPECT_EQ(memo.full_reads(), 1u);
  EXPECT_EQ(memo.entries(), 1u);
  Read(memo, [] {});
  EXPECT_EQ(memo.full_reads(), 1u);
  EXPECT_EQ(memo.kept_reads(), 1u);
  memo.Forget(dir_);
  EXPECT_EQ(memo.entries(), 0u);
  Read(memo, [] {});
  EXPECT_EQ(memo.full_reads(), 2u);
}

TEST_F(LinkReadMemoTest, AReadOverlappingAForgetKeepsNothing) {
  LinkReadMemo memo;
  // The Forget lands while the read is under way: what it read may be gone
  // (a Detach removed the directory), so its answer must not be kept.
  Read(memo, [&] { memo.Forget(dir_); });
  EXPECT_EQ(memo.full_reads(), 1u);
  EXPECT_EQ(memo.entries(), 0u);
  // The next read, with no Forget, is kept again.
  Read(memo, [] {});
  EXPECT_EQ(memo.full_reads(), 2u);
  EXPECT_EQ(memo.entries(), 1u);
}

}  // namespace
}  // namespace egress
