// The state file: round trip, atomic save, corrupt files reported.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "egress/abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/daemon/state.h"
#include "userspace/policy/spec.h"

namespace egress {
namespace {

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-state-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.json";
  }
  void TearDown() override {
    unlink(path_.c_str());
    unlink((path_ + ".tmp").c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
};

DaemonState Sample() {
  DaemonState s;
  s.next_ruleset = 42;
  TargetState t;
  t.name = "web";
  t.id = 3;
  t.cgroup = "/system.slice/nginx.service";
  t.source = policy::TargetSource::kUnit;
  t.source_value = "nginx.service";
  t.mode = policy::Mode::kAudit;
  t.logging = policy::LoggingLevel::kAll;
  t.ruleset = 41;
  t.next_rule_id = 3;
  auto r1 =
      policy::ParseRuleWords(policy::Action::kAllow, {"dns", "10.0.0.53"});
  auto r2 =
      policy::ParseRuleWords(policy::Action::kDeny, {"any", "169.254.169.254"});
  r1->id = 1;
  r2->id = 2;
  t.rules = {*r1, *r2};
  s.targets["web"] = t;
  return s;
}

TEST_F(StateTest, MissingFileIsEmptyState) {
  ASSERT_OK_AND_ASSIGN(DaemonState s, LoadState(path_));
  EXPECT_TRUE(s.targets.empty());
  EXPECT_EQ(s.next_ruleset, 1u);
}

TEST_F(StateTest, EmptyFileIsEmptyStateAndOrphansAreNotSaved) {
  std::ofstream(path_) << " \n";
  ASSERT_OK_AND_ASSIGN(DaemonState empty, LoadState(path_));
  EXPECT_TRUE(empty.targets.empty());
  DaemonState s = Sample();
  TargetState orphan;
  orphan.name = "orphan-7";
  orphan.id = 7;
  orphan.orphan = true;
  s.targets["orphan-7"] = orphan;
  ASSERT_OK(SaveState(path_, s));
  ASSERT_OK_AND_ASSIGN(DaemonState back, LoadState(path_));
  EXPECT_EQ(back.targets.size(), 1u);
  EXPECT_EQ(back.targets.count("orphan-7"), 0u);
}

TEST_F(StateTest, RoundTrip) {
  DaemonState s = Sample();
  ASSERT_OK(SaveState(path_, s));
  ASSERT_OK_AND_ASSIGN(DaemonState back, LoadState(path_));
  EXPECT_EQ(back.next_ruleset, 42u);
  ASSERT_EQ(back.targets.size(), 1u);
  const TargetState& t = back.targets["web"];
  EXPECT_EQ(t.id, 3u);
  EXPECT_EQ(t.cgroup, "/system.slice/nginx.service");
  EXPECT_EQ(t.mode, policy::Mode::kAudit);
  EXPECT_EQ(t.logging, policy::LoggingLevel::kAll);
  EXPECT_EQ(t.source, policy::TargetSource::kUnit);
  EXPECT_EQ(t.source_value, "nginx.service");
  EXPECT_EQ(t.ruleset, 41u);
  EXPECT_EQ(t.rules, s.targets["web"].rules);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0)
      << "temporary file left behind";
}

TEST_F(StateTest, UserTargetsKeepTheirUid) {
  DaemonState s;
  TargetState u;
  u.name = "www";
  u.id = 4;
  u.source = policy::TargetSource::kUser;
  u.source_value = "www-data";
  u.uid = 33;
  s.targets["www"] = u;
  ASSERT_OK(SaveState(path_, s));
  ASSERT_OK_AND_ASSIGN(DaemonState back, LoadState(path_));
  const TargetState& t = back.targets["www"];
  EXPECT_EQ(t.source, policy::TargetSource::kUser);
  EXPECT_EQ(t.source_value, "www-data");
  EXPECT_EQ(t.uid, 33u);
  EXPECT_EQ(t.cgroup, "");
  // Only a user target has the member.
  EXPECT_EQ(StateToJson(Sample()).dump().find("\"uid\""), std::string::npos);
}

TEST_F(StateTest, CorruptFilesAreReportedWithTheFileName) {
  std::ofstream(path_) << "{ not json";
  EXPECT_STATUS(LoadState(path_), absl::StatusCode::kDataLoss, path_);
  std::ofstream(path_)
      << R"({"next_ruleset": 1, "targets": [{"name": "web"}]})";
  EXPECT_STATUS(LoadState(path_), absl::StatusCode::kDataLoss,
                "targets[0] field 'id' is missing");
  std::ofstream(path_)
      << R"({"next_ruleset": 1, "targets": [{"name": "web", "cgroup": "/a",
      "source_kind": "cgroup", "source": "/a", "mode": "observe", "id": 1, "ruleset": 0,
      "next_rule_id": 1, "rules": []}]})";
  EXPECT_STATUS(LoadState(path_), absl::StatusCode::kDataLoss,
                "unknown mode 'observe'");
}

// Each member once: a second "log" would be a writer bug a reader might
// resolve either way.
TEST(StateJsonTest, AnnotationsRoundTripAndOlderFilesHaveNone) {
  DaemonState s = Sample();
  s.targets["web"].annotations = {{"description", "the web: front"}};
  s.targets["web"].rules[0].name = "dns";
  nlohmann::json j = StateToJson(s);
  ASSERT_OK_AND_ASSIGN(DaemonState back, StateFromJson(j, "state.json"));
  EXPECT_EQ(back.targets["web"].annotations, s.targets["web"].annotations);
  EXPECT_EQ(back.targets["web"].rules, s.targets["web"].rules);
  // A target without annotations is written as before, and such a file
  // (every older one) loads.
  const nlohmann::json old = StateToJson(Sample());
  EXPECT_FALSE(old["targets"][0].contains("annotations")) << old.dump();
  EXPECT_FALSE(old["targets"][0]["rules"][0].contains("name")) << old.dump();
  ASSERT_OK_AND_ASSIGN(back, StateFromJson(old, "state.json"));
  EXPECT_TRUE(back.targets["web"].annotations.empty());
  j["targets"][0]["annotations"] = {{"description", 1}};
  EXPECT_THAT(std::string(StateFromJson(j, "state.json").status().message()),
              ::testing::HasSubstr("'annotations' must be an object of "
                                   "strings"));
}

TEST(StateJsonTest, EveryMemberOnce) {
  std::string text = StateToJson(Sample()).dump();
  size_t first = text.find("\"log\"");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("\"log\"", first + 1), std::string::npos) << text;
  EXPECT_NE(text.find("\"log\":\"all\""), std::string::npos) << text;
}

}  // namespace
}  // namespace egress
