// Learned traffic by the hour: --since selects by the last attempt, hours
// merge on the way out, age and row caps bound it, learned.json is imported.
#include "userspace/daemon/learn_history.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/learner.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kHour = 3600 * kSec;

policy::Observation Seen(uint8_t last_octet, uint16_t port, int64_t at,
                         uint64_t count = 1, std::string comm = "curl") {
  policy::Observation o;
  o.family = 4;
  o.addr = {10, 0, 0, last_octet};
  o.ip_proto = IPPROTO_TCP;
  o.port = port;
  o.count = count;
  o.first_seen_ns = at;
  o.last_seen_ns = at;
  o.processes = {std::move(comm)};
  return o;
}

class LearnHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-learn-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }
  std::unique_ptr<LearnHistory> Open(LearnLimits limits = {}) {
    auto h = LearnHistory::Open(dir_ + "/learned.db", limits);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *std::move(h) : nullptr;
  }
  std::vector<uint16_t> Ports(LearnHistory& h, int64_t since) {
    auto seen = h.Query("web", since);
    EXPECT_TRUE(seen.ok()) << seen.status();
    std::vector<uint16_t> out;
    if (seen.ok()) {
      for (const auto& o : *seen) out.push_back(o.port);
    }
    return out;
  }
  std::string dir_;
  const int64_t now_ = int64_t{1'700'000'000} * kSec;
};

TEST_F(LearnHistoryTest, TheNameADestinationWasResolvedFromIsKept) {
  auto h = Open();
  policy::Observation named = Seen(1, 443, now_ - kHour);
  named.name = "api.example.com";
  policy::Observation other = Seen(1, 443, now_ - kHour);
  other.name = "cdn.example.net";
  ASSERT_OK(h->Add("web", {named, other, Seen(1, 443, now_ - kHour)}, now_));
  auto seen = h->Query("web", 0);
  ASSERT_OK(seen.status());
  // Three rows: one destination reached by two names and without one.
  ASSERT_EQ(seen->size(), 3u);
  EXPECT_EQ((*seen)[0].name, "");
  EXPECT_EQ((*seen)[1].name, "api.example.com");
  EXPECT_EQ((*seen)[2].name, "cdn.example.net");
  for (const auto& o : *seen) {
    EXPECT_EQ(o.port, 443);
    EXPECT_EQ(o.addr, named.addr);
  }
}

TEST_F(LearnHistoryTest, SinceSelectsByTheLastAttempt) {
  std::unique_ptr<LearnHistory> h = Open();
  ASSERT_OK(h->Add("web", {Seen(1, 443, now_ - 47 * kHour)}, now_));
  ASSERT_OK(h->Add("web", {Seen(2, 80, now_ - kHour)}, now_));
  ASSERT_OK(h->Add("db", {Seen(3, 5432, now_ - 60 * kSec)}, now_));
  EXPECT_THAT(Ports(*h, 0), ElementsAre(443, 80));
  EXPECT_THAT(Ports(*h, now_ - 48 * kHour), ElementsAre(443, 80));
  EXPECT_THAT(Ports(*h, now_ - 2 * kHour), ElementsAre(80));
  // Exactly at the last attempt counts; a nanosecond later does not.
  EXPECT_THAT(Ports(*h, now_ - kHour), ElementsAre(80));
  EXPECT_THAT(Ports(*h, now_ - kHour + 1), IsEmpty());
}

TEST_F(LearnHistoryTest, HoursOfOneDestinationMergeOnTheWayOut) {
  std::unique_ptr<LearnHistory> h = Open();
  ASSERT_OK(h->Add("web", {Seen(1, 443, now_ - 5 * kHour, 3, "curl")}, now_));
  ASSERT_OK(h->Add("web", {Seen(1, 443, now_ - 2 * kHour, 4, "wget")}, now_));
  ASSERT_OK(h->Add("web", {Seen(1, 443, now_ - 2 * kHour, 1, "curl")}, now_));
  EXPECT_EQ(*h->Rows("web"), 2);
  ASSERT_OK_AND_ASSIGN(auto all, h->Query("web", 0));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].count, 8u);
  EXPECT_EQ(all[0].first_seen_ns, now_ - 5 * kHour);
  EXPECT_EQ(all[0].last_seen_ns, now_ - 2 * kHour);
  EXPECT_THAT(all[0].processes, ElementsAre("curl", "wget"));
  // Since 3 h: only the later hour's attempts.
  ASSERT_OK_AND_ASSIGN(auto recent, h->Query("web", now_ - 3 * kHour));
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].count, 5u);
}

TEST_F(LearnHistoryTest, RowsOlderThanTheAgeCapGo) {
  std::unique_ptr<LearnHistory> h = Open({.max_age_ns = 24 * kHour});
  ASSERT_OK(
      h->Add("web", {Seen(1, 443, now_ - 30 * kHour)}, now_ - 29 * kHour));
  EXPECT_EQ(*h->Rows("web"), 1);
  ASSERT_OK(h->Add("web", {Seen(2, 80, now_)}, now_));
  EXPECT_THAT(Ports(*h, 0), ElementsAre(80));
}

TEST_F(LearnHistoryTest, ATargetKeepsItsNewestRowsUpToTheCap) {
  std::unique_ptr<LearnHistory> h = Open({.max_rows_per_target = 10});
  std::vector<policy::Observation> seen;
  for (int i = 0; i < 25; ++i) {
    seen.push_back(Seen(1, static_cast<uint16_t>(1000 + i), now_ - i * kSec));
  }
  ASSERT_OK(h->Add("web", seen, now_));
  EXPECT_EQ(*h->Rows("web"), 10);
  std::vector<uint16_t> kept = Ports(*h, 0);
  EXPECT_THAT(kept, ElementsAre(1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007,
                                1008, 1009));
  ASSERT_OK(h->Add("db", {Seen(1, 1, now_)}, now_));
  EXPECT_EQ(*h->Rows("db"), 1);  // another target's cap is its own
}

TEST_F(LearnHistoryTest, LearnedJsonIsImportedOnce) {
  LearnStore old;
  old.Record("web", 4, {127, 0, 0, 2}, IPPROTO_TCP, 40001, 3,
             absl::GetCurrentTimeNanos() - 10 * kSec, "curl");
  ASSERT_OK(old.Save(dir_ + "/learned.json"));
  TargetState web;
  web.name = "web";
  web.cgroup = "/web";
  {
    Learner learner(dir_);
    ASSERT_OK(learner.Load());
    ASSERT_OK_AND_ASSIGN(control::SuggestResponse r,
                         learner.Suggest(web, {"web", 60, 32, 128}, "node"));
    EXPECT_EQ(r.observations, 1u);
    EXPECT_THAT(r.yaml, ::testing::HasSubstr("127.0.0.2/32"));
  }
  EXPECT_NE(access((dir_ + "/learned.json").c_str(), F_OK), 0);
  EXPECT_EQ(access((dir_ + "/learned.json.migrated").c_str(), F_OK), 0);
  Learner again(dir_);
  ASSERT_OK(again.Load());
  ASSERT_OK_AND_ASSIGN(control::SuggestResponse r,
                       again.Suggest(web, {"web", std::nullopt, 32, 128}, "n"));
  EXPECT_EQ(r.observations, 1u);
  // --since selects: nothing in the last second.
  ASSERT_OK_AND_ASSIGN(r, again.Suggest(web, {"web", 1, 32, 128}, "n"));
  EXPECT_EQ(r.observations, 0u);
}

// learned.db removed while egressd runs: the next add re-creates it from the
// open file, so a restarted egressd still has what was learned before and
// after.
TEST_F(LearnHistoryTest, RemovedFileIsRecreatedBeforeTheNextAdd) {
  const int64_t now = absl::GetCurrentTimeNanos();
  {
    std::unique_ptr<LearnHistory> h = Open();
    ASSERT_NE(h, nullptr);
    ASSERT_OK(h->Add("web", {Seen(1, 80, now - kHour)}, now));
    for (const char* file :
         {"/learned.db", "/learned.db-wal", "/learned.db-shm"}) {
      ASSERT_EQ(unlink((dir_ + file).c_str()), 0) << file;
    }
    ASSERT_OK(h->Add("web", {Seen(2, 443, now)}, now));
  }
  std::unique_ptr<LearnHistory> again = Open();
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(Ports(*again, 0), UnorderedElementsAre(80, 443));
}

}  // namespace
}  // namespace egress
