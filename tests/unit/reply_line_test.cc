// egressctl decodes egressd's reply with DecodeReplyLine: simdjson's DOM
// read by the same decoder as nlohmann::json's tree (json_view.h). Whatever
// the text, the outcome must be the decoding egressctl did before
// (ParseResponse, ResponseStatus, DecodeResponse): the same response, the
// same error byte for byte, or the same exception where that decoding threw
// (a failed reply whose "ok" or "error" has the wrong type).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/json_mutator.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/sample_connection.h"
#include "tests/testing/status_matchers.h"
#include "userspace/control/control_socket.h"
#include "userspace/control/json_indented.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"

namespace egress::control {
namespace {

using ::egress::testing::SomeConnection;

using nlohmann::json;
using policy::C;
using policy::Rule;

// A decoding's outcome: its result, or the exception it threw.
struct Outcome {
  absl::StatusOr<Response> result = absl::UnknownError("threw");
  std::optional<std::string> thrown;  // what() of an exception
};

// The decoding egressctl did before DecodeReplyLine.
Outcome ViaTree(const Request& request, const std::string& text) {
  Outcome out;
  try {
    absl::StatusOr<json> j = ParseResponse(text);
    if (!j.ok()) {
      out.result = j.status();
    } else if (absl::Status st = ResponseStatus(*j); !st.ok()) {
      out.result = st;
    } else {
      out.result = DecodeResponse(request, *j);
    }
  } catch (const json::exception& e) {
    out.thrown = e.what();
  }
  return out;
}

Outcome ViaLine(const Request& request, const std::string& text) {
  Outcome out;
  try {
    out.result = DecodeReplyLine(request, text);
  } catch (const json::exception& e) {
    out.thrown = e.what();
  }
  return out;
}

// DecodeReplyLine(request, text) has ViaTree(request, text)'s outcome.
void ExpectSameOutcome(const Request& request, const std::string& text) {
  const Outcome tree = ViaTree(request, text);
  const Outcome fast = ViaLine(request, text);
  ASSERT_EQ(fast.thrown, tree.thrown) << text;
  ASSERT_EQ(fast.result.ok(), tree.result.ok())
      << text << "\ntree: " << tree.result.status()
      << "\nfast: " << fast.result.status();
  if (tree.result.ok()) {
    EXPECT_EQ(EncodeResponse(*fast.result), EncodeResponse(*tree.result))
        << text;
  } else {
    EXPECT_EQ(fast.result.status(), tree.result.status()) << text;
  }
}

std::vector<Rule> SomeRules() {
  std::vector<Rule> rules;
  Rule tcp;
  tcp.id = 7;
  tcp.spec = "443/tcp";
  tcp.ports = {policy::Tcp(443)};
  tcp.destinations = {C("10.0.0.0/8"), C("2001:db8::/32")};
  tcp.comment = "caf\xc3\xa9 \"quoted\"\t";
  tcp.expires = 1700000000;
  rules.push_back(tcp);
  Rule dns;
  dns.id = 4294967295u;
  dns.action = policy::Action::kDeny;
  dns.spec = "dns";
  dns.ports = {policy::Udp(53), policy::Tcp(53)};
  dns.names = {"api.example.com", "*.example.org"};
  dns.host = "resolver";
  rules.push_back(dns);
  Rule unix_rule;
  unix_rule.id = 2;
  unix_rule.spec = "unix";
  unix_rule.ports = {{policy::Proto::kUnix}};
  unix_rule.unix_paths = {"/run/a.sock", "@abstract"};
  rules.push_back(unix_rule);
  return rules;
}

TargetInfo PatternTarget() {
  TargetInfo info;
  info.name = "web";
  info.id = 4;
  info.cgroup = "/web";
  info.mode = policy::Mode::kAudit;
  info.rules = 3;
  info.name_rules = 1;
  info.source = policy::TargetSource::kPattern;
  info.source_value = "/web/*";
  info.cgroups = {{"/web/a", 12}, {"/web/b", 13}};
  info.cgroup_exists = true;
  info.cgroup_id = 11;
  info.hooks_attached = 5;
  info.hooks_total = 6;
  info.attached = true;
  info.degraded = "hook missing";
  info.counters = TargetCounters{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  TargetDns dns;
  dns.queries = 1;
  dns.answers = 18446744073709551615ull;
  dns.resolver_warnings = {"nscd"};
  info.dns = dns;
  info.warnings = {"careful"};
  return info;
}

TargetInfo UserTarget() {
  TargetInfo user;
  user.name = "www";
  user.id = 5;
  user.source = policy::TargetSource::kUser;
  user.source_value = "www-data";
  user.uid = 33;
  user.orphan = true;
  return user;
}

TargetChange SomeChange() {
  TargetChange change;
  change.target = "web";
  change.cgroup = "/web";
  change.action = "update";
  change.cgroup_from = "/old";
  change.mode = policy::Mode::kEnforce;
  change.added = {"+ ALLOW 443/tcp to 10.0.0.1", "+ DENY dns to any"};
  change.removed = {"- ALLOW smtp to 10.0.0.5"};
  change.kept_temporary = {"ALLOW 22/tcp to 10.1.1.1 (expires in 5m)"};
  return change;
}

// One reply of each kind, to the request that asks for it.
std::vector<std::pair<Request, Response>> EveryReply() {
  std::vector<NumberedRule> numbered;
  uint64_t n = 1;
  for (const Rule& r : SomeRules()) numbered.push_back({n++, r});
  StatusResponse status;
  status.targets = {PatternTarget(), UserTarget()};
  status.metrics_port = 9101;
  status.events_read = 12;
  status.events_dropped = 1;
  status.events_sink_errors = 2;
  status.bpffs = "/sys/fs/bpf/egress";
  status.cgroup_root = "/sys/fs/cgroup";
  status.version = "1.2.3";
  TargetChange user_change = SomeChange();
  user_change.user = "user www-data (uid 33)";
  return {
      {TargetAddRequest{},
       TargetAddResponse{PatternTarget(), "no cgroup yet", {SomeConnection()}}},
      {TargetRemoveRequest{}, TargetRemoveResponse{"web"}},
      {TargetListRequest{},
       TargetListResponse{{PatternTarget(), UserTarget()}}},
      {ModeRequest{},
       ModeResponse{{{"web", policy::Mode::kAudit}}, {SomeConnection()}}},
      {LoggingRequest{}, LoggingResponse{"web", policy::LoggingLevel::kAll}},
      {RuleAddRequest{}, RuleAddResponse{"web",
                                         2,
                                         "ALLOW smtp",
                                         99,
                                         true,
                                         false,
                                         "",
                                         {"shadowed"},
                                         {SomeConnection()}}},
      {RuleAddRequest{},
       RuleAddResponse{"web", 2, "", 0, false, true, "exists already"}},
      {RuleDeleteRequest{},
       RuleDeleteResponse{"web", "ALLOW smtp", {SomeConnection()}}},
      {ListRequest{},
       ListResponse{{{"web", policy::Mode::kAudit, numbered},
                     {"old", policy::Mode::kEnforce, {}, true}}}},
      {StatusRequest{}, status},
      {ApplyRequest{},
       ApplyResponse{
           true, {SomeChange(), user_change}, "note", {SomeConnection()}}},
      {ReloadRequest{}, ApplyResponse{false, {SomeChange()}, ""}},
      {SuggestRequest{}, SuggestResponse{"web", 40, "apiVersion: x\n"}},
      {ExportRequest{},
       ExportResponse{{{"web", "web.yaml", "x: 1\n"}, {"b", "", ""}}}},
      {EventsRequest{}, EventsResponse{{"a", "{\"b\":1}"}}},
      {ConnectionsRequest{}, ConnectionsResponse{{SomeConnection()}, true}},
      {PingRequest{}, PingResponse{}},
  };
}

std::string ReplyText(const Response& response) {
  return policy::JsonText(EncodeResponse(response));
}

TEST(ReplyLineTest, EveryReplyAsTheTreeDecodesIt) {
  for (const auto& [request, response] : EveryReply()) {
    const std::string text = ReplyText(response);
    // The DOM reads these texts: the fast path, not the fallback.
    simdjson::dom::parser parser;
    EXPECT_TRUE(ParseForView(parser, text).has_value()) << text;
    ASSERT_OK_AND_ASSIGN(Response back, DecodeReplyLine(request, text));
    EXPECT_EQ(EncodeResponse(back), EncodeResponse(response)) << text;
    ExpectSameOutcome(request, text);
  }
}

// The reply to an `apply` at the scale of issue 13: every change line.
TEST(ReplyLineTest, LargeApplyReplyDecodesToTheLinesSent) {
  TargetChange change;
  change.target = "big";
  change.cgroup = "/big";
  change.action = "create";
  for (int i = 0; i < 100000; ++i) {
    change.added.push_back(absl::StrCat("+ ALLOW ", 1024 + i % 60000,
                                        "/tcp to 10.", (i >> 16) & 255, ".",
                                        (i >> 8) & 255, ".", i & 255));
  }
  const std::string text = ReplyText(ApplyResponse{false, {change}, "applied"});
  ASSERT_OK_AND_ASSIGN(Response back, DecodeReplyLine(ApplyRequest{}, text));
  const auto* apply = std::get_if<ApplyResponse>(&back);
  ASSERT_NE(apply, nullptr);
  EXPECT_FALSE(apply->dry_run);
  EXPECT_EQ(apply->note, "applied");
  ASSERT_EQ(apply->changes.size(), 1u);
  EXPECT_EQ(apply->changes[0].target, "big");
  EXPECT_EQ(apply->changes[0].action, "create");
  EXPECT_EQ(apply->changes[0].added, change.added);
  ExpectSameOutcome(ApplyRequest{}, text);
}

// Failed replies, bad JSON, and each member of a wrong type: the tree's
// error, or its exception.
TEST(ReplyLineTest, ErrorsAreTheTreesErrors) {
  const char* const kAny[] = {
      // Not JSON, or not an object.
      "",
      "{",
      "nul",
      "[1,2]",
      "5",
      "{}x",
      "{\"ok\":true,}",
      "{\"ok\":tru}",
      "{\"ok\":true,\"note\":\"a\xffz\"}",
      "{\"ok\":true,\"note\":\"\\ud800\"}",
      "\xef\xbb\xbf{\"ok\":true}",
      // Failed replies.
      R"({})",
      R"({"ok":false})",
      R"({"ok":false,"code":5,"error":"no target 'web'"})",
      R"({"ok":false,"code":99,"error":"x"})",
      R"({"ok":false,"code":0,"error":"x"})",
      R"({"ok":false,"code":-1,"error":"x"})",
      R"({"ok":false,"code":-0,"error":"x"})",
      R"({"ok":false,"code":16,"error":"x"})",
      R"({"ok":false,"code":4294967299,"error":"x"})",
      R"({"ok":false,"code":1.5,"error":"x"})",
      R"({"ok":false,"code":true,"error":"x"})",
      R"({"ok":false,"code":"5","error":"x"})",
      R"({"ok":false,"code":3,"error":7})",
      R"({"ok":false,"code":3,"error":null})",
      R"({"ok":"yes"})",
      R"({"ok":null})",
      R"({"ok":1})",
      R"({"ok":true,"ok":false,"code":5,"error":"last wins"})",
      R"({"ok":false,"code":5,"error":"x","ok":true})",
      // Successful replies with members of a wrong type.
      R"({"ok":true})",
      R"({"ok":true,"dry_run":"x"})",
      R"({"ok":true,"changes":5})",
      R"({"ok":true,"changes":[5]})",
      R"({"ok":true,"changes":[{"added":[1]}]})",
      R"({"ok":true,"changes":[{"added":"x"}]})",
      R"({"ok":true,"changes":[{"mode":"block"}]})",
      R"({"ok":true,"changes":[{"mode":null,"target":"a"},{"target":1}]})",
      R"({"ok":true,"existing":[{"source_port":-1}]})",
      R"({"ok":true,"existing":[{"source_port":-0}]})",
      R"({"ok":true,"existing":[{"cookie":18446744073709551616}]})",
      R"({"ok":true,"existing":[{"cookie":18446744073709551615}]})",
      R"({"ok":true,"existing":[{"allowed":0}]})",
      R"({"ok":true,"note":["x"]})",
      R"({"ok":true,"note":"a","note":5})",
      R"({"ok":true,"note":5,"note":"a"})",
      // list: rules inline beside "number" and "text".
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1,"text":"x","id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":"1","text":"x","id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1,"text":"x","id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","zzz":1,"aaa":2}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1,"text":"x","id":1,"action":"permit","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1,"id":1,"action":"allow","spec":"any","ports":[{"proto":"tcp","lo":2,"hi":1}],"destinations":[],"host":"","comment":""}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":[{"number":1,"id":1,"action":"allow","spec":"any","ports":[],"destinations":["10.0.0.1/8"],"host":"","comment":"","number":2}]}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":5}]})",
      R"({"ok":true,"targets":[{"target":"w","rules":["x",{"number":1}]}]})",
      R"({"ok":true,"targets":[{"target":"w","mode":"x"}]})",
      R"({"ok":true,"targets":{}})",
      // status: nested objects.
      R"({"ok":true,"targets":[{"counters":{"allowed":-1}}]})",
      R"({"ok":true,"targets":[{"counters":5}]})",
      R"({"ok":true,"targets":[{"dns":{"resolver_warnings":[1]}}]})",
      R"({"ok":true,"targets":[{"id":4294967296}]})",
      R"({"ok":true,"targets":[{"cgroups":[{"path":1}]}]})",
      R"({"ok":true,"targets":[{"source_kind":"vm"}]})",
      R"({"ok":true,"metrics_port":1e3})",
      R"({"ok":true,"metrics_port":-0})",
      R"({"ok":true,"version":null})",
  };
  const Request requests[] = {ApplyRequest{}, ListRequest{}, StatusRequest{},
                              RuleAddRequest{}, PingRequest{}};
  for (const Request& request : requests) {
    for (const char* text : kAny) ExpectSameOutcome(request, text);
  }
  const char* const kRuleAdd[] = {
      R"({"ok":true,"expires":9223372036854775808})",
      R"({"ok":true,"expires":-5,"number":3})",
      R"({"ok":true,"number":-3})",
      R"({"ok":true,"warnings":"x"})",
  };
  for (const char* text : kRuleAdd) ExpectSameOutcome(RuleAddRequest{}, text);
}

// A rule of `list` that is not an object is an error naming it (the tree's
// decoder threw from erase() once: egressctl died on such a reply).
TEST(ReplyLineTest, ListRuleThatIsNotAnObjectIsAnError) {
  const std::string text =
      R"({"ok":true,"targets":[{"target":"w","rules":["x"]}]})";
  EXPECT_EQ(
      DecodeReplyLine(ListRequest{}, text).status(),
      absl::InternalError(
          "egressd's response: targets[0] rules[0] is not a JSON object"));
  ExpectSameOutcome(ListRequest{}, text);
}

// A failed reply's status, as the tree reads it: a check of the cases above
// that does not depend on the tree.
TEST(ReplyLineTest, FailedRepliesCarryEgressdsStatus) {
  EXPECT_EQ(
      DecodeReplyLine(PingRequest{},
                      R"({"ok":false,"code":5,"error":"no target 'web'"})")
          .status(),
      absl::NotFoundError("no target 'web'"));
  EXPECT_EQ(DecodeReplyLine(PingRequest{}, R"({})").status(),
            absl::UnknownError("egressd failed"));
  EXPECT_EQ(DecodeReplyLine(PingRequest{}, "[1]").status(),
            absl::InvalidArgumentError("control message is not a JSON object"));
}

// Random replies, valid and not: every outcome is the tree's.
TEST(ReplyLineTest, RandomRepliesHaveTheTreesOutcome) {
  std::vector<std::string> keys = {
      "ok",      "code",           "error",       "changes",   "added",
      "removed", "kept_temporary", "target",      "cgroup",    "action",
      "mode",    "dry_run",        "note",        "existing",  "targets",
      "rules",   "number",         "text",        "id",        "spec",
      "ports",   "destinations",   "host",        "comment",   "counters",
      "dns",     "warnings",       "lines",       "files",     "yaml",
      "name",    "source_kind",    "connections", "truncated", "uid",
      "cgroups", "expires",        "skipped",     "zzz",       "aaa",
      ""};
  std::vector<std::string> values = testing::Mutator::DefaultValues();
  for (const char* v :
       {"\"create\"", "\"update\"", "\"+ ALLOW 443/tcp to 10.0.0.1\"",
        "[\"x\"]", "{\"allowed\":1}", "5", "3", "16", "\"pattern\""}) {
    values.push_back(v);
  }
  testing::Mutator mutator(17, keys, values);
  int ok = 0, failed = 0;
  for (const auto& [request, response] : EveryReply()) {
    const std::string text = ReplyText(response);
    for (int i = 0; i < 600; ++i) {
      // Mostly one change to the seed; sometimes a chain of them.
      std::string mutated = mutator.Mutate(text);
      if (i % 10 == 0) mutated = mutator.Mutate(mutator.Mutate(mutated));
      ExpectSameOutcome(request, mutated);
      if (HasFailure()) return;
      const Outcome fast = ViaLine(request, mutated);
      (fast.result.ok() ? ok : failed)++;
    }
  }
  // Both kinds were tried, many of each.
  EXPECT_GT(ok, 1000);
  EXPECT_GT(failed, 1000);
}

// `egressctl -o json` prints a reply as the tree dumps it, indented by 2,
// without "ok" (IndentedJsonText): the same bytes for every reply, and for
// any text where it does not decline; it declines only what the tree writes
// its own way or the DOM cannot read as the tree does.
std::string TreeIndented(const std::string& text) {
  json j = json::parse(text);
  j.erase("ok");
  return policy::JsonText(j, 2);
}

TEST(IndentedReplyTest, EveryReplyAsTheTreeIndentsIt) {
  for (const auto& [request, response] : EveryReply()) {
    for (const std::string& text :
         {ReplyText(response), ResponseText(response)}) {
      std::optional<std::string> fast = IndentedJsonText(text, "ok");
      ASSERT_TRUE(fast.has_value()) << text;
      EXPECT_EQ(*fast, TreeIndented(text));
    }
  }
}

TEST(IndentedReplyTest, OrderDuplicatesNestingAndEscapes) {
  for (const char* text : {
           R"({})",
           R"({"ok":true})",
           R"({"b":1,"a":{"ok":true,"z":[],"y":{}},"ok":true})",
           R"({"a":1,"a":2,"c":[1,-2,18446744073709551615],"a":3})",
           R"({"s":"caf\u00e9 \"q\" \\ \t\n\u0001\u007f \ud83d\ude00"})",
           R"({"\u0001k":null,"k":[true,false,null,[[]],{}],"K":"x"})",
           R"(  {"n":-9223372036854775808 , "m" : [ {"x":0} ] }  )",
       }) {
    std::optional<std::string> fast = IndentedJsonText(text, "ok");
    ASSERT_TRUE(fast.has_value()) << text;
    EXPECT_EQ(*fast, TreeIndented(text)) << text;
  }
  for (const char* declined : {R"({"a":1.5})", R"({"a":-0})", R"([1])",
                               R"("ok")", R"({"a":)", R"({"a":1e3})"}) {
    EXPECT_FALSE(IndentedJsonText(declined, "ok").has_value()) << declined;
  }
}

// Written in pieces (egressctl prints each as it is made): a `list` of tens
// of thousands of rules is many pieces, which together are the tree's text;
// text it declines is not written at all.
TEST(IndentedReplyTest, PiecesMakeTheTreesTextAndADeclineWritesNothing) {
  TargetRules big{"big", policy::Mode::kEnforce, {}};
  uint64_t number = 1;
  for (int i = 0; i < 10000; ++i) {
    for (const Rule& r : SomeRules()) big.rules.push_back({number++, r});
  }
  const std::string text = ResponseText(ListResponse{{big}});
  std::string joined;
  int pieces = 0;
  ASSERT_TRUE(WriteIndentedJson(text, "ok", [&](absl::string_view piece) {
    joined.append(piece.data(), piece.size());
    ++pieces;
  }));
  EXPECT_GT(pieces, 4);
  EXPECT_EQ(joined, TreeIndented(text));
  for (const char* declined :
       {R"({"a":[1,2,{"b":[3,4.5]}]})", R"({"a":1,"ok":true,"z":0.5})"}) {
    bool wrote = false;
    EXPECT_FALSE(WriteIndentedJson(declined, "ok",
                                   [&](absl::string_view) { wrote = true; }));
    EXPECT_FALSE(wrote) << declined;
  }
}

TEST(IndentedReplyTest, MutatedRepliesAsTheTreeIndentsThem) {
  testing::Mutator mutator(23);
  int same = 0;
  for (const auto& [request, response] : EveryReply()) {
    const std::string text = ResponseText(response);
    for (int i = 0; i < 300; ++i) {
      std::string mutated = mutator.Mutate(text);
      if (i % 10 == 0) mutated = mutator.Mutate(mutator.Mutate(mutated));
      std::optional<std::string> fast = IndentedJsonText(mutated, "ok");
      if (!fast) continue;
      // What the DOM reads, the tree reads, and writes the same.
      EXPECT_EQ(*fast, TreeIndented(mutated)) << mutated;
      if (HasFailure()) return;
      ++same;
    }
  }
  EXPECT_GT(same, 1000);
}

}  // namespace
}  // namespace egress::control
