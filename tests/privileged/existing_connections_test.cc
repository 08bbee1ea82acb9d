// Connections that exist before the policy that refuses them: opened by a
// process in the target's cgroup before `apply` or `target add`, they never
// pass a connect hook again. egressd lists them (`connections`), records
// them when a change leaves them not allowed, and --cut destroys them (the
// peer sees a reset) while allowed ones stay usable.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/held_connections.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/policy_writer.h"

namespace egress::testing {
namespace {

using nlohmann::json;

class ExistingConnectionsTest : public EgressdTest {
 protected:
  // A policy file for the test cgroup allowing TCP to 127.0.0.1:`port`
  // only, written by the policy writer.
  std::string WritePolicy(uint16_t port) {
    policy::Rule allow;
    allow.spec = absl::StrCat(port, "/tcp");
    allow.ports = {{policy::Proto::kTcp, port, port}};
    allow.destinations = {*policy::Cidr::Parse("127.0.0.1")};
    policy::PolicyDocument doc;
    doc.name = "web";
    doc.target = {policy::TargetSource::kCgroup, cg_->relative_path()};
    doc.rules = {allow};
    std::string path =
        state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
    std::ofstream(path) << policy::WritePolicy(doc);
    return path;
  }

  // The connection of `list` to `port` ({} when none).
  static json ToPort(const json& list, uint16_t port) {
    for (const json& c : list) {
      if (c.value("destination_port", 0) == port) return c;
    }
    return json::object();
  }

  // The records of `event` (existing, cut) to `port`.
  std::vector<json> Records(const std::string& event, uint16_t port) {
    CommandResult r = Ctl({"events", "--last", "200", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<json> out;
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      json e = json::parse(line, nullptr, false);
      if (e.is_discarded() || e.value("event", "") != event) continue;
      if (e["l4"]["destination_port"] == port) out.push_back(e);
    }
    return out;
  }
};

TEST_F(ExistingConnectionsTest, ListedRecordedAndCutWhenThePolicyRefuses) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer allowed, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(LoopbackServer refused, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(UdpPeer udp, BindUdp("::1"));
  ASSERT_OK_AND_ASSIGN(
      auto held,
      HeldConnections::Start(cg_->path(), {&allowed, &refused}, {&udp}));

  // The policy comes after the connections: apply reports what it refuses.
  json applied = CtlJson({"apply", "-f", WritePolicy(allowed.port)});
  ASSERT_EQ(applied["existing"].size(), 2u) << applied.dump(2);
  EXPECT_EQ(ToPort(applied["existing"], refused.port)["action"], "kept");
  EXPECT_EQ(ToPort(applied["existing"], udp.port)["protocol"], "udp");
  EXPECT_EQ(Records("existing", refused.port).size(), 1u);

  json listed = CtlJson({"connections", "--target", "web"});
  ASSERT_EQ(listed["connections"].size(), 3u) << listed.dump(2);
  json ok = ToPort(listed["connections"], allowed.port);
  EXPECT_EQ(ok["allowed"], true);
  EXPECT_EQ(ok["rule"], 1);
  EXPECT_EQ(ok["reason"], "MATCHED_ALLOW");
  json bad = ToPort(listed["connections"], refused.port);
  EXPECT_EQ(bad["allowed"], false);
  EXPECT_EQ(bad["reason"], "NO_MATCHING_RULE");
  EXPECT_EQ(bad["state"], "established");
  EXPECT_EQ(bad["pid"], held->pid());
  EXPECT_EQ(bad["cgroup"], cg_->relative_path());
  EXPECT_EQ(bad["cgroup_id"], cg_->id());
  json dgram = ToPort(listed["connections"], udp.port);
  EXPECT_EQ(dgram["protocol"], "udp");
  EXPECT_EQ(dgram["family"], "IPv6");
  EXPECT_EQ(dgram["destination"], "::1");
  EXPECT_EQ(dgram["allowed"], false);

  json cut = CtlJson({"connections", "--target", "web", "--cut"});
  EXPECT_EQ(ToPort(cut["connections"], refused.port)["action"], "cut");
  EXPECT_EQ(ToPort(cut["connections"], udp.port)["action"], "cut");
  EXPECT_EQ(ToPort(cut["connections"], allowed.port)["action"], "kept");
  EXPECT_EQ(PeerSees(refused.accepted.get(), absl::Seconds(1)), "reset");
  EXPECT_EQ(EchoThrough(allowed.accepted.get(), "still here", absl::Seconds(1)),
            "still here");
  std::vector<json> records = Records("cut", refused.port);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["verdict"], "DENIED");
  EXPECT_EQ(records[0]["target"], "web");
  EXPECT_EQ(records[0]["process"]["pid"], held->pid());

  // What was cut is gone; the allowed connection is all that is left.
  json after = CtlJson({"connections"});
  ASSERT_EQ(after["connections"].size(), 1u) << after.dump(2);
  EXPECT_EQ(after["connections"][0]["destination_port"], allowed.port);
}

// events_read counts the kernel's records only: the `existing` and `cut`
// records egressd makes are no decisions the kernel counted, and counting
// them would break read + suppressed + lost = decisions.
TEST_F(ExistingConnectionsTest, OwnRecordsAreNotCountedAsRead) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer refused, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&refused}, {}));
  AddTarget("web");  // after the connection: reported as existing
  CtlJson({"connections", "--target", "web", "--cut"});
  ASSERT_EQ(Records("existing", refused.port).size(), 1u);
  ASSERT_EQ(Records("cut", refused.port).size(), 1u);
  // Every record egressd holds, against the counter, read without a record
  // drained in between (bounded).
  uint64_t read = 0;
  size_t kernel_records = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    read = CtlJson({"status"})["events_read"].get<uint64_t>();
    CommandResult r = Ctl({"events", "--last", "4096", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    kernel_records = 0;
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      const std::string event = json::parse(line).value("event", "");
      if (event != "existing" && event != "cut" &&
          event != "self_check_failed" && event != "held_back") {
        ++kernel_records;
      }
    }
    if (CtlJson({"status"})["events_read"].get<uint64_t>() == read) break;
  }
  EXPECT_EQ(read, kernel_records);
}

TEST_F(ExistingConnectionsTest, TargetAddCutResetsAnIpv6Connection) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("::1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&server}, {}));
  json added = CtlJson(
      {"target", "add", "web", "--cgroup", cg_->relative_path(), "--cut"});
  ASSERT_EQ(added["existing"].size(), 1u) << added.dump(2);
  EXPECT_EQ(added["existing"][0]["action"], "cut");
  EXPECT_EQ(added["existing"][0]["family"], "IPv6");
  EXPECT_EQ(PeerSees(server.accepted.get(), absl::Seconds(1)), "reset");
}

TEST_F(ExistingConnectionsTest, RuleChangesReportAndCutOnlyWhenAsked) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&server}, {}));
  AddTarget("web");
  const std::string port = std::to_string(server.port);
  json allowed = CtlJson({"allow", port + "/tcp", "127.0.0.1"});
  EXPECT_FALSE(allowed.contains("existing")) << allowed.dump(2);

  // A deny tightens: reported, left up without --cut.
  json denied = CtlJson({"deny", port + "/tcp", "127.0.0.1"});
  ASSERT_EQ(denied["existing"].size(), 1u) << denied.dump(2);
  EXPECT_EQ(denied["existing"][0]["reason"], "MATCHED_DENY");
  EXPECT_EQ(denied["existing"][0]["action"], "kept");
  EXPECT_EQ(EchoThrough(server.accepted.get(), "up", absl::Seconds(1)), "up");

  // Deleting the allow with --cut: still denied, now cut.
  json deleted = CtlJson({"delete", "1", "--cut"});
  ASSERT_EQ(deleted["existing"].size(), 1u) << deleted.dump(2);
  EXPECT_EQ(deleted["existing"][0]["action"], "cut");
  EXPECT_EQ(PeerSees(server.accepted.get(), absl::Seconds(1)), "reset");
}

// An allow or deny in a port class the target has is appended to its rules
// without copying them (engine_rules.cc); the look after it still judges
// by every rule: an allow reports what stays refused and cuts nothing, a
// deny with --cut cuts what it refuses and nothing else.
TEST_F(ExistingConnectionsTest, AppendedRulesAreJudgedWithEveryRule) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer kept, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(LoopbackServer other, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(
      auto held, HeldConnections::Start(cg_->path(), {&kept, &other}, {}));
  json applied = CtlJson({"apply", "-f", WritePolicy(kept.port)});
  ASSERT_EQ(applied["existing"].size(), 1u) << applied.dump(2);

  // Same port class as rule 1: appended. `other` is still refused.
  const std::string kept_port = absl::StrCat(kept.port, "/tcp");
  const std::string other_port = absl::StrCat(other.port, "/tcp");
  json allowed = CtlJson({"allow", kept_port, "127.0.0.2"});
  ASSERT_EQ(allowed["existing"].size(), 1u) << allowed.dump(2);
  EXPECT_EQ(allowed["existing"][0]["destination_port"], other.port);
  EXPECT_EQ(allowed["existing"][0]["action"], "kept");
  EXPECT_EQ(EchoThrough(other.accepted.get(), "up", absl::Seconds(1)), "up");

  // A new port class (compiled whole): now both are allowed.
  json both = CtlJson({"allow", other_port, "127.0.0.1"});
  EXPECT_FALSE(both.contains("existing")) << both.dump(2);

  // A deny in that class, appended, with --cut: `other` alone is cut.
  json denied = CtlJson({"deny", other_port, "127.0.0.1", "--cut"});
  ASSERT_EQ(denied["existing"].size(), 1u) << denied.dump(2);
  EXPECT_EQ(denied["existing"][0]["destination_port"], other.port);
  EXPECT_EQ(denied["existing"][0]["action"], "cut");
  EXPECT_EQ(PeerSees(other.accepted.get(), absl::Seconds(1)), "reset");
  EXPECT_EQ(EchoThrough(kept.accepted.get(), "still here", absl::Seconds(1)),
            "still here");
  json listed = CtlJson({"list", "--target", "web"});
  EXPECT_NE(listed.dump().find("127.0.0.2"), std::string::npos)
      << listed.dump(2);
}

TEST_F(ExistingConnectionsTest, AuditTargetsKeepTheirConnections) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&server}, {}));
  json added = CtlJson({"target", "add", "web", "--cgroup",
                        cg_->relative_path(), "--mode", "audit", "--cut"});
  ASSERT_EQ(added["existing"].size(), 1u) << added.dump(2);
  EXPECT_EQ(added["existing"][0]["action"], "audit");
  EXPECT_EQ(EchoThrough(server.accepted.get(), "up", absl::Seconds(1)), "up");
  std::vector<json> records = Records("existing", server.port);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["verdict"], "AUDIT");
}

// Audit -> enforce is the tightening that watch-first users make: the
// connections audit let up are reported, and cut only with --cut.
TEST_F(ExistingConnectionsTest, SwitchingToEnforceReportsAndCutsOnRequest) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&server}, {}));
  CtlOk({"target", "add", "web", "--cgroup", cg_->relative_path(), "--mode",
         "audit"});
  json audit = CtlJson({"mode", "audit", "--target", "web"});
  EXPECT_FALSE(audit.contains("existing")) << audit.dump(2);

  json enforced = CtlJson({"mode", "enforce", "--target", "web"});
  ASSERT_EQ(enforced["existing"].size(), 1u) << enforced.dump(2);
  EXPECT_EQ(enforced["existing"][0]["action"], "kept");
  EXPECT_EQ(EchoThrough(server.accepted.get(), "up", absl::Seconds(1)), "up");
  // target add recorded it as AUDIT; enforce records it as DENIED.
  std::vector<json> records = Records("existing", server.port);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["verdict"], "AUDIT");
  EXPECT_EQ(records[1]["verdict"], "DENIED");

  json cut = CtlJson({"mode", "enforce", "--target", "web", "--cut"});
  ASSERT_EQ(cut["existing"].size(), 1u) << cut.dump(2);
  EXPECT_EQ(cut["existing"][0]["action"], "cut");
  EXPECT_EQ(PeerSees(server.accepted.get(), absl::Seconds(1)), "reset");
}

// A temporary rule that ends tightens the target like a delete: the
// connection it let open is recorded, and left up (nobody asked to cut).
TEST_F(ExistingConnectionsTest, ExpiredTemporaryRuleReportsItsConnections) {
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("127.0.0.1"));
  AddTarget("web");
  CtlOk(
      {"allow", absl::StrCat(server.port, "/tcp"), "127.0.0.1", "--for", "2s"});
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(cg_->path(), {&server}, {}));
  EXPECT_TRUE(Records("existing", server.port).empty());
  // The rule ends after 2 s; expiry runs every second. Bounded wait.
  std::vector<json> records;
  for (int i = 0; i < 80 && records.empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    records = Records("existing", server.port);
  }
  ASSERT_EQ(records.size(), 1u) << "no record within 8 s of the expiry";
  EXPECT_EQ(EchoThrough(server.accepted.get(), "up", absl::Seconds(1)), "up");
}

TEST_F(ExistingConnectionsTest, ChildCgroupsAreTheTargetsToo) {
  ASSERT_OK_AND_ASSIGN(TestCgroup * child, cg_->CreateChild("worker"));
  ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp("127.0.0.1"));
  ASSERT_OK_AND_ASSIGN(auto held,
                       HeldConnections::Start(child->path(), {&server}, {}));
  AddTarget("web");
  json listed = CtlJson({"connections", "--target", "web"});
  ASSERT_EQ(listed["connections"].size(), 1u) << listed.dump(2);
  EXPECT_EQ(listed["connections"][0]["cgroup"], child->relative_path());
  EXPECT_EQ(listed["connections"][0]["allowed"], false);
  // The table names the cgroup's process and why the rules refuse it.
  std::string text = CtlOk({"connections"});
  EXPECT_NE(text.find("NOT ALLOWED"), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat("127.0.0.1:", server.port)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(absl::StrCat("[", held->pid(), "]")), std::string::npos)
      << text;
  EXPECT_NE(text.find("no matching rule (default deny) [kept]"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace egress::testing
