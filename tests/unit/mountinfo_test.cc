#include "userspace/common/mountinfo.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

// Debian 12 style hybrid layout: v1 controllers under a tmpfs, v2 at unified.
constexpr char kHybrid[] =
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs "
    "rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup "
    "rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
    "rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// systemd pure v2 layout with several optional fields and a bpf mount.
constexpr char kPureV2[] =
    "24 30 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc "
    "rw\n"
    "30 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 "
    "rw,errors=remount-ro\n"
    "33 26 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 "
    "master:1 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
    "35 26 0:29 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:6 - bpf "
    "bpf rw,mode=700\n";

TEST(ParseMountInfoTest, ParsesHybridLayout) {
  std::vector<MountEntry> entries = ParseMountInfo(kHybrid);
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].mount_point, "/sys");
  EXPECT_EQ(entries[0].fs_type, "sysfs");
  EXPECT_EQ(entries[0].source, "sysfs");
  EXPECT_EQ(entries[0].options, "rw,nosuid,nodev,noexec,relatime");
  EXPECT_EQ(entries[5].mount_point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(entries[5].fs_type, "cgroup2");
  EXPECT_EQ(entries[5].source, "cgroup2");
  EXPECT_EQ(entries[5].options, "rw,relatime");
}

TEST(ParseMountInfoTest, HandlesOptionalFields) {
  std::vector<MountEntry> entries = ParseMountInfo(kPureV2);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[1].mount_point, "/");
  EXPECT_EQ(entries[1].source, "/dev/nvme0n1p2");
  EXPECT_EQ(entries[2].mount_point, "/sys/fs/cgroup");
  EXPECT_EQ(entries[2].fs_type, "cgroup2");
  EXPECT_EQ(entries[2].options, "rw,nosuid,nodev,noexec,relatime");
  EXPECT_EQ(entries[3].fs_type, "bpf");
}

TEST(ParseMountInfoTest, DecodesOctalEscapes) {
  std::vector<MountEntry> entries = ParseMountInfo(
      "50 41 0:38 / /mnt/my\\040cgroup\\011x\\134y rw - cgroup2 "
      "none\\040here rw\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].mount_point, "/mnt/my cgroup\tx\\y");
  EXPECT_EQ(entries[0].source, "none here");
}

TEST(ParseMountInfoTest, KeepsIncompleteEscapesVerbatim) {
  std::vector<MountEntry> entries = ParseMountInfo(
      "50 41 0:38 / /a\\04 rw - tmpfs tmpfs rw\n"
      "51 41 0:38 / /b\\089 rw - tmpfs tmpfs rw\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].mount_point, "/a\\04");
  EXPECT_EQ(entries[1].mount_point, "/b\\089");
}

TEST(ParseMountInfoTest, SkipsMalformedLines) {
  std::vector<MountEntry> entries = ParseMountInfo(
      "\n"
      "garbage\n"
      "1 2 3:4 / /no-separator rw shared:1 cgroup2 cgroup2 rw\n"
      "1 2 3:4 / /no-type rw -\n"
      "41 31 0:38 / /ok rw - cgroup2 cgroup2 rw");  // No trailing newline.
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].mount_point, "/ok");
}

TEST(ParseMountInfoTest, MissingSourceIsEmpty) {
  std::vector<MountEntry> entries =
      ParseMountInfo("41 31 0:38 / /x rw - cgroup2\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].fs_type, "cgroup2");
  EXPECT_EQ(entries[0].source, "");
}

TEST(ParseMountInfoTest, EmptyInput) {
  EXPECT_TRUE(ParseMountInfo("").empty());
}

TEST(FindMountTest, FindsCgroup2InHybridLayout) {
  absl::StatusOr<std::string> root = FindMount(kHybrid, "cgroup2");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, "/sys/fs/cgroup/unified");
}

TEST(FindMountTest, FindsCgroup2AndBpfInPureV2Layout) {
  absl::StatusOr<std::string> root = FindMount(kPureV2, "cgroup2");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, "/sys/fs/cgroup");
  absl::StatusOr<std::string> bpffs = FindMount(kPureV2, "bpf");
  ASSERT_TRUE(bpffs.ok()) << bpffs.status();
  EXPECT_EQ(*bpffs, "/sys/fs/bpf");
}

TEST(FindMountTest, ReturnsFirstMatch) {
  absl::StatusOr<std::string> root = FindMount(
      "1 0 0:1 / /first rw - cgroup2 cgroup2 rw\n"
      "2 0 0:1 / /second rw - cgroup2 cgroup2 rw\n",
      "cgroup2");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, "/first");
}

TEST(FindMountTest, MatchesTypeExactly) {
  // v1 "cgroup" must not satisfy a "cgroup2" lookup and vice versa.
  absl::StatusOr<std::string> root = FindMount(
      "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "cgroup2");
  EXPECT_EQ(root.status().code(), absl::StatusCode::kNotFound);
}

TEST(FindMountTest, NotFoundNamesTheType) {
  absl::StatusOr<std::string> bpffs = FindMount(kHybrid, "bpf");
  ASSERT_EQ(bpffs.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(bpffs.status().message().find("'bpf'"), std::string::npos)
      << bpffs.status();
}

TEST(Cgroup2RootTest, ReadsThisProcessMountInfo) {
  // Every supported host has cgroup2 somewhere (egress cannot work without
  // it, so neither can this test pass); the path must be absolute.
  absl::StatusOr<std::string> root = Cgroup2Root();
  ASSERT_TRUE(root.ok()) << root.status();
  ASSERT_FALSE(root->empty());
  EXPECT_EQ((*root)[0], '/');
}

}  // namespace
}  // namespace egress
