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

// DistinctRules(20) with a unix rule (id 100, at kUnixRuleAt) and a name
// rule (id 101): entries in the rules, exact, unix and name maps.
constexpr size_t kUnixRuleAt = 20;
std::vector<policy::Rule> RulesOfEveryMap() {
  std::vector<policy::Rule> rules = DistinctRules(20);
  policy::Rule unix_rule;
  unix_rule.id = 100;
  unix_rule.action = policy::Action::kAllow;
  unix_rule.ports = {{policy::Proto::kUnix}};
  unix_rule.unix_paths = {"/run/egress-test-a.sock"};
  rules.push_back(unix_rule);
  policy::Rule named = AddressRule(101, 7, 443, 443);
  named.destinations.clear();
  named.names = {"api.example.com"};
  rules.push_back(named);
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
  // The tries alone (exact_limit 0): one host and port per rule would
  // otherwise all go to exact_rules.
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset large,
                       policy::Compile(11, DistinctRules(30000), 0));
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset small,
                       policy::Compile(12, DistinctRules(50), 0));
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

// exact_rules goes in batches: every key lands, and a delete that meets
// keys already gone (a batch stops at the first) still deletes the rest.
TEST_F(SharedMapsWriteTest, ExactEntriesAreWrittenAndDeletedInBatches) {
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset set,
                       policy::Compile(14, DistinctRules(10000)));
  ASSERT_EQ(set.exact.size(), 10000u);
  ASSERT_TRUE(set.rules.empty());
  ASSERT_OK(maps_->WriteEntries(set));
  ExpectEveryEntry(set);
  ASSERT_OK_AND_ASSIGN(size_t held, maps_->CountEntries("exact_rules"));
  EXPECT_EQ(held, 10000u);
  // Three keys gone already, one of them the first of a batch.
  const int fd = bpf_obj_get((root_ + "/exact_rules").c_str());
  ASSERT_GE(fd, 0);
  for (size_t i : {size_t{0}, size_t{4100}, size_t{9999}}) {
    EXPECT_EQ(bpf_map_delete_elem(fd, &set.exact[i].first), 0);
  }
  close(fd);
  maps_->ForgetCounts();  // deleted around maps_
  ASSERT_OK_AND_ASSIGN(bool whole, maps_->HasEntries(set));
  EXPECT_FALSE(whole);
  ASSERT_OK(maps_->DeleteEntries(set));
  ASSERT_OK_AND_ASSIGN(held, maps_->CountEntries("exact_rules"));
  EXPECT_EQ(held, 0u);
}

// HasEntries holds only for exactly the set: an extra unix or name entry
// under its ruleset, or one whose value changed, is not the compiled set (a
// restart writes such a set again instead of adopting it).
TEST_F(SharedMapsWriteTest, HasEntriesSeesAnEntryTooManyOrChanged) {
  std::vector<policy::Rule> rules = RulesOfEveryMap();
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset set, policy::Compile(15, rules));
  ASSERT_EQ(set.unix_paths.size(), 1u);
  ASSERT_FALSE(set.names.empty());
  ASSERT_OK(maps_->WriteEntries(set));
  ExpectEveryEntry(set);

  // One unix entry more under the same ruleset: a set with another path.
  policy::Rule other_unix = rules[kUnixRuleAt];
  other_unix.unix_paths = {"/run/egress-test-b.sock"};
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset more,
                       policy::Compile(15, {other_unix}));
  ASSERT_EQ(more.unix_paths.size(), 1u);
  const int unix_fd = bpf_obj_get((root_ + "/unix_rules").c_str());
  ASSERT_GE(unix_fd, 0);
  ASSERT_EQ(bpf_map_update_elem(unix_fd, &more.unix_paths[0].first,
                                &more.unix_paths[0].second, BPF_NOEXIST),
            0);
  maps_->ForgetCounts();  // written around maps_
  ASSERT_OK_AND_ASSIGN(bool whole, maps_->HasEntries(set));
  EXPECT_FALSE(whole) << "an extra unix entry";
  ASSERT_EQ(bpf_map_delete_elem(unix_fd, &more.unix_paths[0].first), 0);
  close(unix_fd);
  maps_->ForgetCounts();
  ExpectEveryEntry(set);

  // A name entry whose value changed.
  const int names_fd = bpf_obj_get((root_ + "/dns_names").c_str());
  ASSERT_GE(names_fd, 0);
  egress_dns_name_value changed = set.names[0].second;
  changed.pattern ^= 1;
  ASSERT_EQ(
      bpf_map_update_elem(names_fd, &set.names[0].first, &changed, BPF_EXIST),
      0);
  maps_->ForgetCounts();
  ASSERT_OK_AND_ASSIGN(whole, maps_->HasEntries(set));
  EXPECT_FALSE(whole) << "a changed name entry";
  // And missing.
  ASSERT_EQ(bpf_map_delete_elem(names_fd, &set.names[0].first), 0);
  close(names_fd);
  maps_->ForgetCounts();
  ASSERT_OK_AND_ASSIGN(whole, maps_->HasEntries(set));
  EXPECT_FALSE(whole) << "a missing name entry";
  ASSERT_OK(maps_->DeleteEntries(set));
}

// A set written under one ruleset id is a copy of the same rules compiled
// for another (what a restart adopts as a spare), in every map: rules,
// ports, exact, unix and name entries. One entry changed, one more or one
// fewer, and it is not.
TEST_F(SharedMapsWriteTest, CopiesOfFindsTheSameSetUnderAnotherIdOnly) {
  std::vector<policy::Rule> rules = RulesOfEveryMap();
  policy::Rule ranged = AddressRule(102, 9, 2000, 1);  // to the tries
  ranged.ports = {{policy::Proto::kTcp, 2000, 2100}};
  ranged.destinations[0].prefix_len = 16;
  ranged.destinations[0].addr = {10, 9, 0, 0};
  rules.push_back(ranged);
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset active,
                       policy::Compile(31, rules));
  ASSERT_FALSE(active.rules.empty());
  ASSERT_FALSE(active.ports.empty());
  ASSERT_FALSE(active.exact.empty());
  ASSERT_EQ(active.unix_paths.size(), 1u);
  ASSERT_FALSE(active.names.empty());
  ASSERT_OK(maps_->WriteEntries(active));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> copies, maps_->CopiesOf(active));
  EXPECT_TRUE(copies.empty()) << "the set itself is no copy";

  // The same rules compiled for 32 and 33; 34 and 35 one entry off.
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset copy,
                       policy::Compile(32, rules));
  ASSERT_OK(maps_->WriteEntries(copy));
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset changed,
                       policy::Compile(33, rules));
  changed.rules[0].second.rule_id ^= 1;  // one value changed
  ASSERT_OK(maps_->WriteEntries(changed));
  std::vector<policy::Rule> fewer = rules;
  fewer.erase(fewer.begin());
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset less,
                       policy::Compile(34, fewer));
  ASSERT_OK(maps_->WriteEntries(less));
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset more,
                       policy::Compile(35, rules));
  policy::Rule other_unix = rules[kUnixRuleAt];
  other_unix.unix_paths = {"/run/egress-test-b.sock"};
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset extra,
                       policy::Compile(35, {other_unix}));
  more.unix_paths.push_back(extra.unix_paths[0]);  // one unix entry more
  ASSERT_OK(maps_->WriteEntries(more));

  ASSERT_OK_AND_ASSIGN(copies, maps_->CopiesOf(active));
  EXPECT_EQ(copies, std::vector<uint32_t>{32});
  // Either way round: 31 is a copy of the set compiled for 32.
  ASSERT_OK_AND_ASSIGN(copies, maps_->CopiesOf(copy));
  EXPECT_EQ(copies, std::vector<uint32_t>{31});
  // HasEntries still tells the ruleset ids apart.
  ASSERT_OK_AND_ASSIGN(bool whole, maps_->HasEntries(active));
  EXPECT_TRUE(whole);
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset other_id,
                       policy::Compile(36, rules));
  ASSERT_OK_AND_ASSIGN(whole, maps_->HasEntries(other_id));
  EXPECT_FALSE(whole) << "no entry under 36";

  // The copy's name entry changed (written around maps_): no copy left.
  const int names_fd = bpf_obj_get((root_ + "/dns_names").c_str());
  ASSERT_GE(names_fd, 0);
  egress_dns_name_value value = copy.names[0].second;
  value.pattern ^= 1;
  ASSERT_EQ(
      bpf_map_update_elem(names_fd, &copy.names[0].first, &value, BPF_EXIST),
      0);
  close(names_fd);
  maps_->ForgetCounts();
  ASSERT_OK_AND_ASSIGN(copies, maps_->CopiesOf(active));
  EXPECT_TRUE(copies.empty()) << "a changed name entry";

  for (const policy::CompiledRuleset* set :
       {&active, &copy, &changed, &less, &more}) {
    ASSERT_OK(maps_->DeleteEntries(*set));
  }
}

// A failure in the trie written beside (a port class the kernel refuses) is
// the call's failure, whichever thread met it.
TEST_F(SharedMapsWriteTest, AFailureOnEitherThreadIsReported) {
  ASSERT_OK_AND_ASSIGN(policy::CompiledRuleset large,
                       policy::Compile(13, DistinctRules(20000), 0));
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
