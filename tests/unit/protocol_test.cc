// The control protocol's codec: every request survives encode -> decode,
// every response likewise, and malformed messages are answered with an
// error naming the member, never an exception.
#include "userspace/control/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/rule_builders.h"
#include "tests/testing/sample_connection.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/rule_json.h"

namespace egress::control {
namespace {

using ::egress::testing::SomeConnection;

using nlohmann::json;
using ::testing::HasSubstr;

policy::Rule SmtpRule() {
  policy::Rule r;
  r.id = 3;
  r.spec = "smtp";
  r.ports = {{policy::Proto::kTcp, 25, 25}};
  r.destinations = {*policy::Cidr::Parse("10.0.0.5")};
  return r;
}

std::vector<Request> EveryRequest() {
  TargetSpec spec;
  spec.name = "web";
  spec.source = policy::TargetSource::kPattern;
  spec.source_value = "/docker/*";
  spec.mode = policy::Mode::kAudit;
  spec.logging = policy::LoggingLevel::kAll;
  spec.rules = {SmtpRule()};
  spec.rules[0].name = "relay";
  spec.file = "web.yaml";
  spec.target_at = "7:17";
  spec.annotations = {{"description", "web: \"front\""}, {"owner", "ops"}};
  return {TargetAddRequest{spec},
          TargetAddRequest{spec, /*cut=*/true},
          TargetRemoveRequest{"web"},
          TargetListRequest{},
          ModeRequest{policy::Mode::kAudit, "web", true, false},
          ModeRequest{policy::Mode::kEnforce, "web", false, true},
          LoggingRequest{policy::LoggingLevel::kOff, "web"},
          RuleAddRequest{"web", SmtpRule(), 1800},
          RuleAddRequest{"web", SmtpRule(), std::nullopt, /*cut=*/true},
          RuleDeleteRequest{"web", 2, std::nullopt},
          RuleDeleteRequest{"web", std::nullopt, SmtpRule()},
          RuleDeleteRequest{"web", 1, std::nullopt, /*cut=*/true},
          ListRequest{"web"},
          StatusRequest{},
          ApplyRequest{true, {spec, spec}},
          ApplyRequest{false, {spec}, /*cut=*/true},
          ReloadRequest{},
          SuggestRequest{"web", 3600, 24, 64},
          SuggestRequest{"web", std::nullopt, 32, 128, /*group_names=*/true},
          ExportRequest{"web"},
          EventsRequest{true, "web", "deny", 5, EventFormat::kText},
          ConnectionsRequest{"web", /*cut=*/true},
          ConnectionsRequest{},
          PingRequest{}};
}

TEST(ProtocolTest, EveryRequestRoundTrips) {
  for (const Request& request : EveryRequest()) {
    json wire = json::parse(EncodeRequest(request).dump());
    ASSERT_OK_AND_ASSIGN(Request back, DecodeRequest(wire));
    EXPECT_EQ(CommandOf(back), CommandOf(request));
    EXPECT_EQ(EncodeRequest(back), EncodeRequest(request)) << wire.dump();
  }
}

// egressctl sends RequestText; egressd parses it as it parsed the tree's
// text. Byte for byte, for every request and for `apply`s whose names,
// files and rules hold quotes, escapes, bytes that are not UTF-8 and no
// rules at all.
TEST(ProtocolTest, RequestTextIsTheTreesText) {
  for (const Request& request : EveryRequest()) {
    EXPECT_EQ(RequestText(request), policy::JsonText(EncodeRequest(request)));
  }
  TargetSpec odd;
  odd.name = "we\"b\\\n\x01\xff";
  odd.source = policy::TargetSource::kCgroup;
  odd.source_value =
      "/sys.slice/\xc3\x28"
      "caf\xc3\xa9";
  odd.ephemeral = true;
  odd.file = "/etc/egress/\"x\".yaml\t";
  odd.target_at = "12:5";
  odd.annotations = {{"a\"b", "c\\\n\xff"}, {"", ""}};
  policy::Rule commented = SmtpRule();
  commented.comment = "say \"hi\"\n\xfe";
  commented.expires = 1700000000;
  odd.rules = {SmtpRule(), commented, SmtpRule()};
  TargetSpec empty;  // no rules, no file: every member at its default
  for (const ApplyRequest& apply :
       {ApplyRequest{false, {odd, empty}, /*cut=*/true},
        ApplyRequest{true, {empty}}, ApplyRequest{false, {}}}) {
    const std::string text = RequestText(apply);
    EXPECT_EQ(text, policy::JsonText(EncodeRequest(apply)));
    ASSERT_OK_AND_ASSIGN(json wire, policy::ParseJson(text));
    ASSERT_OK_AND_ASSIGN(Request back, DecodeRequest(wire));
    // Bytes that are not UTF-8 arrive as U+FFFD, as with the tree's text.
    EXPECT_EQ(RequestText(back), text);
  }
}

TEST(ProtocolTest, WrongTypesAreErrorsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"cmd":1})", "'cmd' must be a string"},
      {R"({"cmd":"list","target":5})", "'target' must be a string"},
      {R"({"cmd":"events","last":"x"})", "'last' must be a number"},
      {R"({"cmd":"events","last":-1})", "'last' must be a number"},
      {R"({"cmd":"events","format":"xml"})", "unknown format 'xml'"},
      {R"({"cmd":"mode","mode":"block"})", "unknown mode 'block'"},
      {R"({"cmd":"mode"})", "'mode' is missing"},
      {R"({"cmd":"logging","level":"bogus"})", "unknown logging level"},
      {R"({"cmd":"target_add"})", "'name' is missing"},
      {R"({"cmd":"target_add","name":"w","source_kind":"vm"})",
       "unknown target kind 'vm'"},
      {R"({"cmd":"rule_add","rule":{"id":"x"}})", "field 'rule'"},
      {R"({"cmd":"rule_delete","number":true})", "'number' must be a number"},
      {R"({"cmd":"apply"})", "'policies' is missing"},
      {R"({"cmd":"apply","policies":{}})", "'policies' must be a list"},
      {R"({"cmd":"apply","policies":[{"name":"a","logging":"bogus"}]})",
       "policies[0] field 'logging'"},
      {R"({"cmd":"suggest","group_v4":33})", "'group_v4' must be a number"},
      {R"({"cmd":"nope"})", "unknown command 'nope'"},
      {R"([1,2])", "not a JSON object"},
  };
  for (const auto& [text, error] : cases) {
    absl::StatusOr<Request> r = DecodeRequest(json::parse(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(r.status().message(), HasSubstr(error)) << text;
  }
}

TEST(ProtocolTest, ResponsesRoundTrip) {
  TargetInfo info;
  info.name = "web";
  info.id = 4;
  info.cgroup = "/web";
  info.source = policy::TargetSource::kPattern;
  info.cgroups = {{"/web/a", 12}};
  info.counters = TargetCounters{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  info.warnings = {"careful"};
  TargetInfo user;
  user.name = "www";
  user.id = 5;
  user.source = policy::TargetSource::kUser;
  user.source_value = "www-data";
  user.uid = 33;
  user.cgroups = {{"/", 1}};
  StatusResponse status;
  status.targets = {info, user};
  status.bpffs = "/sys/fs/bpf/egress";
  status.state_error = "the state directory /var/lib/egress has no room";
  TargetRules rules{"web", policy::Mode::kAudit, {{1, SmtpRule()}}};
  TargetChange change{
      "web",          "/web", "update",     "/old", policy::Mode::kAudit,
      {"ALLOW smtp"}, {},     {"ALLOW dns"}};
  change.mode_from = policy::Mode::kEnforce;
  change.logging = policy::LoggingLevel::kAll;
  change.logging_from = policy::LoggingLevel::kDenied;
  change.changed = {{"ALLOW 443 # old", "ALLOW 443 # new"}};
  change.workload = "selector app=web";
  TargetChange user_change = change;
  user_change.user = "user www-data (uid 33)";
  const std::pair<Request, Response> cases[] = {
      {ApplyRequest{}, ApplyResponse{true, {user_change}, ""}},
      {StatusRequest{}, status},
      {ListRequest{}, ListResponse{{rules}}},
      {ApplyRequest{}, ApplyResponse{true, {change}, "note"}},
      {RuleAddRequest{},
       RuleAddResponse{
           "web", 2, "ALLOW smtp", 99, true, false, "", {"shadowed"}}},
      {EventsRequest{}, EventsResponse{{"a", "b"}}},
      {ExportRequest{}, ExportResponse{{{"web", "web.yaml", "x: 1\n"}}}},
      {ConnectionsRequest{}, ConnectionsResponse{{SomeConnection()}, true}},
      {RuleDeleteRequest{},
       RuleDeleteResponse{"web", "ALLOW smtp", {SomeConnection()}}},
      {ApplyRequest{}, ApplyResponse{false, {change}, "", {SomeConnection()}}},
  };
  for (const auto& [request, response] : cases) {
    json wire = json::parse(EncodeResponse(response).dump());
    EXPECT_TRUE(wire["ok"].get<bool>());
    ASSERT_OK_AND_ASSIGN(Response back, DecodeResponse(request, wire));
    EXPECT_EQ(EncodeResponse(back), EncodeResponse(response)) << wire.dump();
  }
}

}  // namespace
}  // namespace egress::control

namespace egress::control {
namespace {

// ResponseText writes an apply's change lists straight into the text: the
// bytes must be the tree's, whatever the lists hold.
TEST(ResponseTextTest, SameBytesAsTheTree) {
  ApplyResponse apply;
  apply.note = "note \"quoted\" \\ and \xc3\xa9";
  TargetChange create;
  create.target = "web";
  create.cgroup = "system.slice/web.service";
  create.action = "create";
  create.mode = policy::Mode::kEnforce;
  for (int i = 0; i < 1000; ++i) {
    create.added.push_back("+ ALLOW " + std::to_string(1024 + i) +
                           "/tcp to 10.0.0." + std::to_string(i % 256));
  }
  create.added.push_back("+ ALLOW https # a \"comment\" with \\ and \t tab");
  create.added.push_back("+ ALLOW bad utf-8 \xff\xfe here");
  create.added.push_back("+ ALLOW \"added\":[] inside a line");
  TargetChange update;
  update.target = "added";  // a name like a key
  update.cgroup = "\"removed\":[]";
  update.action = "update";
  update.cgroup_from = "old";
  update.user = "user www-data (uid 33)";
  update.removed = {"- ALLOW smtp to 10.0.0.5", "- DENY any to 10.0.0.0/8"};
  update.kept_temporary = {"  ALLOW 443/tcp to 10.0.0.9 (until 12:00)"};
  update.mode = policy::Mode::kEnforce;
  update.mode_from = policy::Mode::kAudit;
  update.logging = policy::LoggingLevel::kOff;
  update.logging_from = policy::LoggingLevel::kAll;
  update.changed = {{"ALLOW 1 \"added\":[]", "ALLOW 1 # \"removed\":[]"}};
  TargetChange empty;
  empty.target = "idle";
  empty.action = "update";
  apply.changes = {create, update, empty};
  Connection c;
  c.target = "web";
  c.protocol = "tcp";
  c.destination = "10.0.0.5";
  c.destination_port = 25;
  apply.existing = {c};
  for (bool dry_run : {false, true}) {
    apply.dry_run = dry_run;
    const Response r = apply;
    EXPECT_EQ(ResponseText(r), policy::JsonText(EncodeResponse(r)));
  }
  const Response none = ApplyResponse{};
  EXPECT_EQ(ResponseText(none), policy::JsonText(EncodeResponse(none)));
  const Response other = PingResponse{};
  EXPECT_EQ(ResponseText(other), policy::JsonText(EncodeResponse(other)));
}

// A `list` is written without the tree too: a rule's "number" and "text"
// go between its own members, in the tree's sorted order, whatever the rule
// holds (every optional member, escapes, bytes that are not UTF-8).
TEST(ResponseTextTest, ListSameBytesAsTheTree) {
  policy::Rule odd;
  odd.id = 4294967295u;
  odd.action = policy::Action::kDeny;
  odd.spec = "any";
  odd.ports = {{policy::Proto::kTcp, 0, 65535},
               {policy::Proto::kUdp, 0, 65535},
               {policy::Proto::kIcmp}};
  odd.destinations = {*policy::Cidr::Parse("2001:db8::/32"),
                      *policy::Cidr::Parse("10.1.2.0/24")};
  odd.host = "api.example.org";
  odd.comment = "vendor \"api\" \\ \xc3\xbc \t\n\x01 \xff\xfe end";
  odd.expires = 1795000000;
  odd.name = "odd \"one\"";
  policy::Rule named = SmtpRule();
  named.spec = "https";
  named.names = {"api.example.com", "*.example.org"};
  policy::Rule unix_rule;
  unix_rule.id = 13;
  unix_rule.spec = "unix";
  unix_rule.ports = {{policy::Proto::kUnix}};
  unix_rule.unix_paths = {"/run/php/php-fpm.sock", "@name\x80"};
  TargetRules web{"web", policy::Mode::kAudit, {}};
  uint64_t number = 1;
  for (const policy::Rule& r :
       {SmtpRule(), odd, named, unix_rule, policy::Rule{}}) {
    web.rules.push_back({number++, r});
  }
  web.rules.push_back({18446744073709551615u, odd});
  TargetRules orphan{"\"rules\":[] \xff", policy::Mode::kEnforce, {}};
  orphan.orphan = true;
  TargetRules empty{"idle", policy::Mode::kEnforce, {}};
  for (const ListResponse& list :
       {ListResponse{}, ListResponse{{web}}, ListResponse{{web, orphan, empty}},
        ListResponse{{empty, orphan}}}) {
    const Response r = list;
    EXPECT_EQ(ResponseText(r), policy::JsonText(EncodeResponse(r)));
  }
}

}  // namespace
}  // namespace egress::control
