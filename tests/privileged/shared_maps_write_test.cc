// SharedMaps::WriteEntries into the real tries: a large set (written on two
// threads, one per trie) and a small one (one thread) land whole, entry for
// entry, and DeleteEntries takes each back out.
#include <bpf/bpf.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/address_rule.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/shared_maps.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/rule.h"

namespace egress::testing {
namespace {

// `n` allow rules, each one TCP port to one /32: n rule entries, and port
// classes that grow with the distinct ports.
std::vector<policy::Rule> DistinctRules(int n) {
  std::vector<policy::Rule> rules;
  rules.reserve(n);
  for (int i = 0; i < n; ++i) {
    rules.push_back(AddressRule(static_cast<uint32_t>(i + 1),
                                static_cast<uint32_t>(i), 1024, 30000));
  }
  return rules;
}

class SharedMapsWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    root_ = absl::StrCat("/sys/fs/bpf/egress-maps-write-test-", getpid());
    ASSERT_OK(EnsureBpffsDir(root_, "/sys/fs/bpf"));
    ASSERT_OK_AND_ASSIGN(maps_, SharedMaps::OpenOrCreate(root_));
  }
  void TearDown() override {
    maps_.reset();
    if (!root_.empty()) {
      EXPECT_OK(RemoveTree(root_));
    }
  }

  // Every entry of `set` is in its trie with its value.
  void ExpectEveryEntry(const policy::CompiledRuleset& set) {
    ASSERT_OK_AND_ASSIGN(bool present, maps_->HasEntries(set));
    EXPECT_TRUE(present);
  }

  std::string root_;
  std::unique_ptr<SharedMaps> maps_;
};

TEST_F(SharedMapsWriteTest, LargeAndSmallSetsAreWrittenWholeAndDeleted) {
  // 30,000 rules: 30,000 rule entries and ~30,000 port classes, over the
  // size from which the two tries are written side by side; 50 rules under
  // it. Both sets live in the maps at once, under their own ruleset ids.
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset large,
                       policy::Compile(11, DistinctRules(30000)));
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset small,
                       policy::Compile(12, DistinctRules(50)));
  ASSERT_GE(large.rules.size() + large.ports.size(), 16384u);
  ASSERT_LT(small.rules.size() + small.ports.size(), 8192u);

  ASSERT_OK(maps_->WriteEntries(large));
  ASSERT_OK(maps_->WriteEntries(small));
  ExpectEveryEntry(large);
  ExpectEveryEntry(small);

  ASSERT_OK(maps_->DeleteEntries(large));
  ASSERT_OK_AND_ASSIGN(bool large_left, maps_->HasEntries(large));
  EXPECT_FALSE(large_left);
  ExpectEveryEntry(small);
  ASSERT_OK(maps_->DeleteEntries(small));
  ASSERT_OK_AND_ASSIGN(bool small_left, maps_->HasEntries(small));
  EXPECT_FALSE(small_left);
}

// A failure in the trie written beside (a port class the kernel refuses) is
// the call's failure, whichever thread met it.
TEST_F(SharedMapsWriteTest, AFailureOnEitherThreadIsReported) {
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset large,
                       policy::Compile(13, DistinctRules(20000)));
  ASSERT_FALSE(large.ports.empty());
  // An LPM key whose prefix is longer than the key: EINVAL from the kernel.
  large.ports.back().first.prefixlen = 0xffff;
  const absl::Status st = maps_->WriteEntries(large);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("port_classes"), std::string::npos) << st;
  maps_->DeleteEntries(large).IgnoreError();
}

}  // namespace
}  // namespace egress::testing
