// The kernel's rule_hits map ({target, rule} -> decisions, 65,536 keys shared
// by every target) holds the keys of live rules only: egressd deletes a
// rule's key when a change removes the rule, and a target's keys when the
// target goes. Otherwise a long-lived target whose rules churn fills the map,
// after which new rules' hits are silently not counted. When live rules do
// fill it, the decisions not counted are counted, in status and /metrics.
// Connects go to 127.0.0.2, where nothing listens: ECONNREFUSED means the
// connect was let through.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/map_walk.h"

namespace egress::testing {
namespace {

constexpr uint16_t kKeptPort = 40001;
constexpr uint16_t kDeniedPort = 40009;

class RuleHitsTest : public EgressdTest {
 protected:
  UniqueFd RuleHitsMap() {
    UniqueFd fd(bpf_obj_get(
        absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/rule_hits")
            .c_str()));
    EXPECT_TRUE(fd.valid()) << strerror(errno);
    return fd;
  }

  // The rule ids target `target_id` has keys of in the kernel's map.
  std::set<uint32_t> KernelRuleIds(uint32_t target_id) {
    std::set<uint32_t> ids;
    UniqueFd fd = RuleHitsMap();
    absl::StatusOr<size_t> walked = ForEachKey<egress_rule_hit_key>(
        fd.get(), [&](const egress_rule_hit_key& k) {
          if (k.target_id == target_id) ids.insert(k.rule_id);
        });
    EXPECT_TRUE(walked.ok()) << walked.status();
    return ids;
  }

  // The id of the target's rule at place `number` (1-based) in `list`.
  uint32_t RuleId(const std::string& target, size_t number) {
    const nlohmann::json list = CtlJson({"list", "--target", target});
    const nlohmann::json& rules = list["targets"][0]["rules"];
    EXPECT_GE(rules.size(), number) << list.dump();
    return rules.size() < number ? 0 : rules[number - 1]["id"].get<uint32_t>();
  }

  static std::string Hits(uint32_t rule_id, uint64_t n) {
    return absl::StrCat("egress_rule_hits_total{rule_id=\"", rule_id,
                        "\",target=\"web\"} ", n, "\n");
  }
};

// A target whose rules churn: each cycle adds a rule, gives it a hit, and
// deletes it again (by number or by its text). After every cycle the kernel
// holds the keys of the live rules (and of the default action) only; the
// rule kept throughout goes on counting every hit. Before, every removed
// rule's key stayed until the target was removed.
TEST_F(RuleHitsTest, ChangesLeaveOnlyTheLiveRulesKeysInTheKernel) {
  AddTarget("web");
  const uint32_t id = TargetId("web");
  CtlOk({"allow", absl::StrCat(kKeptPort, "/tcp"), "127.0.0.2", "--target",
         "web"});
  const uint32_t kept = RuleId("web", 1);
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", kDeniedPort); }),
            EPERM);
  constexpr int kCycles = 24;
  uint64_t kept_hits = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const uint16_t port = 41000 + cycle;
    CtlOk(
        {"allow", absl::StrCat(port, "/tcp"), "127.0.0.2", "--target", "web"});
    const uint32_t added = RuleId("web", 2);
    ASSERT_EQ(InCgroup([port] { return TcpConnect("127.0.0.2", port); }),
              ECONNREFUSED)
        << "cycle " << cycle;
    ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", kKeptPort); }),
              ECONNREFUSED);
    ++kept_hits;
    ASSERT_EQ(KernelRuleIds(id), (std::set<uint32_t>{0, kept, added}))
        << "cycle " << cycle;
    if (cycle % 2 == 0) {
      CtlOk({"delete", "2", "--target", "web"});
    } else {
      CtlOk({"delete", "allow", absl::StrCat(port, "/tcp"), "127.0.0.2",
             "--target", "web"});
    }
    EXPECT_EQ(KernelRuleIds(id), (std::set<uint32_t>{0, kept}))
        << "cycle " << cycle << ": rule " << added << " is gone";
  }
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", kKeptPort); }),
            ECONNREFUSED);
  ++kept_hits;
  const std::string m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(m, Hits(kept, kept_hits))) << m;
  EXPECT_TRUE(absl::StrContains(m, Hits(0, 1))) << m;
  EXPECT_EQ(Counters("web")["rule_hits_not_counted"].get<uint64_t>(), 0u);

  // A removed target takes its keys along (its id may be given again).
  CtlOk({"target", "remove", "web"});
  EXPECT_EQ(KernelRuleIds(id), std::set<uint32_t>{});
}

// When live rules fill the map (here: keys of target id 0, which no target
// has, put in by the test), a hit that needs a new key is not counted per
// rule, but counted as not counted, in status and /metrics; the rules that
// have keys go on counting.
TEST_F(RuleHitsTest, AFullMapCountsTheHitsItCannotKeep) {
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(kKeptPort, "/tcp"), "127.0.0.2", "--target",
         "web"});
  CtlOk({"allow", "41000/tcp", "127.0.0.2", "--target", "web"});
  const uint32_t kept = RuleId("web", 1);
  const uint32_t later = RuleId("web", 2);
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", kKeptPort); }),
            ECONNREFUSED);

  UniqueFd fd = RuleHitsMap();
  ASSERT_TRUE(fd.valid());
  const int ncpu = libbpf_num_possible_cpus();
  ASSERT_GT(ncpu, 0);
  std::vector<uint64_t> zero(ncpu);
  uint32_t filled = 0;
  absl::Cleanup unfill = [&] {
    for (uint32_t r = 1; r <= filled; ++r) {
      const egress_rule_hit_key k{0, r};
      bpf_map_delete_elem(fd.get(), &k);
    }
  };
  // Bounded: one more than the map can hold.
  for (uint32_t r = 1; r <= EGRESS_MAX_RULE_HITS + 1; ++r) {
    const egress_rule_hit_key k{0, r};
    if (bpf_map_update_elem(fd.get(), &k, zero.data(), BPF_NOEXIST) != 0) {
      ASSERT_EQ(errno, E2BIG) << strerror(errno);
      break;
    }
    filled = r;
  }
  ASSERT_LT(filled, uint32_t{EGRESS_MAX_RULE_HITS + 1});

  // The later rule has no key, and there is no room for one.
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 41000); }),
            ECONNREFUSED);
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", kKeptPort); }),
            ECONNREFUSED);
  EXPECT_EQ(Counters("web")["rule_hits_not_counted"].get<uint64_t>(), 1u);
  std::string m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(
      m, "egress_rule_hits_not_counted_total{target=\"web\"} 1\n"))
      << m;
  EXPECT_TRUE(absl::StrContains(m, Hits(kept, 2))) << m;
  EXPECT_FALSE(absl::StrContains(m, absl::StrCat("rule_id=\"", later, "\"")))
      << m;

  // Room again: the later rule's hits are counted from now on.
  std::move(unfill).Invoke();
  filled = 0;
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 41000); }),
            ECONNREFUSED);
  m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(m, Hits(later, 1))) << m;
  EXPECT_EQ(Counters("web")["rule_hits_not_counted"].get<uint64_t>(), 1u);
}

}  // namespace
}  // namespace egress::testing
