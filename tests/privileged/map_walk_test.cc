// ForEachKey: every key once, bounded, and refused on a key size mismatch.
#include "userspace/kernel/map_walk.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <set>
#include <vector>

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

// The batched walk over an LPM trie (the kernel's generic batch): every key
// once, in batches larger and smaller than the trie.
TEST_F(MapWalkTest, BatchedWalkOfATrieVisitsEveryKeyOnce) {
  struct TrieKey {
    uint32_t prefixlen;
    uint32_t addr;
  };
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  const int fd =
      bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "walk_trie", sizeof(TrieKey),
                     sizeof(uint64_t), 10000, &opts);
  ASSERT_GE(fd, 0);
  UniqueFd trie(fd);
  constexpr uint32_t kKeys = 9000;  // more than one batch of 4,096
  for (uint32_t i = 0; i < kKeys; ++i) {
    TrieKey k{i % 3 == 0 ? 24u : 32u, htonl(0x0a000000u + i * 256u)};
    uint64_t v = i;
    ASSERT_EQ(bpf_map_update_elem(trie.get(), &k, &v, BPF_ANY), 0) << i;
  }
  std::multiset<uint32_t> seen;
  ASSERT_OK_AND_ASSIGN(
      size_t n, ForEachKeyBatched<TrieKey>(trie.get(), [&](const TrieKey& k) {
        seen.insert(ntohl(k.addr));
      }));
  EXPECT_EQ(n, kKeys);
  EXPECT_EQ(seen.size(), kKeys);
  EXPECT_EQ(std::set<uint32_t>(seen.begin(), seen.end()).size(), kKeys);
}

// A per-CPU hash's batch carries a value per possible CPU: the walk sizes
// its buffer for them and still visits every key once.
TEST_F(MapWalkTest, BatchedWalkOfAPerCpuHashVisitsEveryKeyOnce) {
  const int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "walk_pcpu",
                                sizeof(uint32_t), 12, 20000, nullptr);
  ASSERT_GE(fd, 0);
  UniqueFd pcpu(fd);
  const int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  std::vector<char> value(16 * static_cast<size_t>(cpus), 'x');
  constexpr uint32_t kKeys = 10000;
  for (uint32_t k = 0; k < kKeys; ++k) {
    ASSERT_EQ(bpf_map_update_elem(pcpu.get(), &k, value.data(), BPF_ANY), 0);
  }
  std::set<uint32_t> seen;
  size_t calls = 0;
  ASSERT_OK_AND_ASSIGN(
      size_t n, ForEachKeyBatched<uint32_t>(pcpu.get(), [&](const uint32_t& k) {
        seen.insert(k);
        ++calls;
      }));
  EXPECT_EQ(n, kKeys);
  EXPECT_EQ(calls, kKeys);
  EXPECT_EQ(seen.size(), kKeys);
}

}  // namespace
}  // namespace egress::testing
