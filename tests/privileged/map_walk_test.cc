// ForEachKey: every key once, bounded, and refused on a key size mismatch.
#include "userspace/kernel/map_walk.h"

#include <bpf/bpf.h>

#include <cstdint>
#include <set>

#include "gtest/gtest.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

class MapWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "walk_test", sizeof(uint32_t),
                            sizeof(uint64_t), 64, nullptr);
    ASSERT_GE(fd, 0);
    map_ = UniqueFd(fd);
  }
  UniqueFd map_;
};

TEST_F(MapWalkTest, VisitsEveryKeyOnce) {
  for (uint32_t k = 1; k <= 40; ++k) {
    uint64_t v = k;
    ASSERT_EQ(bpf_map_update_elem(map_.get(), &k, &v, BPF_ANY), 0);
  }
  std::multiset<uint32_t> seen;
  ASSERT_OK_AND_ASSIGN(
      size_t n, ForEachKey<uint32_t>(
                    map_.get(), [&](const uint32_t& k) { seen.insert(k); }));
  EXPECT_EQ(n, 40u);
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_EQ(std::set<uint32_t>(seen.begin(), seen.end()).size(), 40u);
  ASSERT_OK_AND_ASSIGN(size_t count, CountKeys(map_.get()));
  EXPECT_EQ(count, 40u);
}

// Deleting each key as it is visited makes the kernel restart the walk from
// the first key: the bound (max_entries) ends it.
TEST_F(MapWalkTest, WalkIsBoundedByMaxEntries) {
  uint32_t k = 1;
  uint64_t v = 1;
  ASSERT_EQ(bpf_map_update_elem(map_.get(), &k, &v, BPF_ANY), 0);
  ASSERT_OK_AND_ASSIGN(
      size_t n, ForEachKey<uint32_t>(map_.get(), [&](const uint32_t& key) {
        // Replace the key by a new one.
        uint32_t next = key + 1;
        bpf_map_delete_elem(map_.get(), &key);
        bpf_map_update_elem(map_.get(), &next, &v, BPF_ANY);
      }));
  EXPECT_EQ(n, 64u);
}

TEST_F(MapWalkTest, RefusesAnotherKeySize) {
  EXPECT_STATUS(ForEachKey<uint64_t>(map_.get(), [](const uint64_t&) {}),
                absl::StatusCode::kFailedPrecondition, "4-byte keys");
}

}  // namespace
}  // namespace egress::testing
