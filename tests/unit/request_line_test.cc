// egressd decodes request lines with DecodeRequestLine: simdjson's DOM read
// by the same decoder as nlohmann::json's tree (json_view.h). Whatever the
// text, the outcome must be DecodeRequest(ParseRequest(line))'s, the
// decoding egressd did before: the same request, or the same error, byte for
// byte.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/json_mutator.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/control/control_socket.h"
#include "userspace/control/json_fields.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/json_view.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/rule_json_tree.h"

namespace egress::control {
namespace {

using nlohmann::json;
using policy::C;
using policy::Rule;

// The decoding egressd did before DecodeRequestLine.
absl::StatusOr<Request> ViaTree(const std::string& text) {
  absl::StatusOr<json> j = ParseRequest(text);
  if (!j.ok()) return j.status();
  return DecodeRequest(*j);
}

// DecodeRequestLine(text) has ViaTree(text)'s outcome.
void ExpectSameOutcome(const std::string& text) {
  absl::StatusOr<Request> tree = ViaTree(text);
  absl::StatusOr<Request> fast = DecodeRequestLine(text);
  ASSERT_EQ(fast.ok(), tree.ok())
      << text << "\ntree: " << tree.status() << "\nfast: " << fast.status();
  if (tree.ok()) {
    EXPECT_EQ(EncodeRequest(*fast), EncodeRequest(*tree)) << text;
  } else {
    EXPECT_EQ(fast.status(), tree.status()) << text;
  }
}

// Rules of every shape the codec knows, `n` of them, all different.
std::vector<Rule> ManyRules(int n) {
  std::vector<Rule> rules;
  rules.reserve(n);
  for (int i = 0; i < n; ++i) {
    Rule r;
    r.id = static_cast<uint32_t>(i % 7 == 0 ? 4294967295u - i : i + 1);
    r.action = i % 3 == 0 ? policy::Action::kDeny : policy::Action::kAllow;
    const uint16_t port = static_cast<uint16_t>(1 + i % 65535);
    switch (i % 6) {
      case 0:
        r.spec = absl::StrCat(port, "/tcp");
        r.ports = {policy::Tcp(port)};
        r.destinations = {C(absl::StrCat("10.", (i >> 16) & 255, ".",
                                         (i >> 8) & 255, ".", i & 255))};
        break;
      case 1:
        r.spec = "dns";
        r.ports = {policy::Udp(53), policy::Tcp(53)};
        r.destinations = {
            C(absl::StrCat("2001:db8:", absl::Hex(i % 65536), "::/64")),
            C("192.0.2.0/24")};
        r.names = {absl::StrCat("api", i, ".example.com"),
                   absl::StrCat("*.svc", i, ".example.org")};
        break;
      case 2:
        r.spec = "any";
        r.ports = {policy::Tcp(0, 65535), policy::Udp(0, 65535), policy::kIcmp};
        break;
      case 3:
        r.spec = "unix";
        r.ports = {{policy::Proto::kUnix}};
        r.unix_paths = {absl::StrCat("/run/s", i, ".sock"),
                        absl::StrCat("@abstract", i)};
        break;
      case 4:
        r.spec = "raw";
        r.ports = {policy::kRaw};
        break;
      default:
        r.spec = absl::StrCat(port / 2, "-", port, "/udp");
        r.ports = {policy::Udp(port / 2, port)};
        r.destinations = {C("0.0.0.0/0"), C("::/0")};
        r.host = absl::StrCat("host", i, ".example.net");
        break;
    }
    if (i % 5 == 0) r.expires = 1700000000 + i;
    if (i % 4 == 1) {
      r.comment =
          absl::StrCat("rule \"", i, "\"\\ caf\xc3\xa9 \xe2\x9c\x93\t\n",
                       std::string(1, '\x01'));
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

TargetSpec SpecWith(std::vector<Rule> rules) {
  TargetSpec spec;
  spec.name = "big";
  spec.source = policy::TargetSource::kCgroup;
  spec.source_value = "/egress-big";
  spec.mode = policy::Mode::kAudit;
  spec.logging = policy::LoggingLevel::kAll;
  spec.file = "/etc/egress/big.yaml";
  spec.rules = std::move(rules);
  return spec;
}

// An `apply` at the scale of issue 13 decodes to exactly the rules sent.
TEST(RequestLineTest, LargeApplyDecodesToTheRulesSent) {
  const std::vector<Rule> rules = ManyRules(100000);
  ApplyRequest sent{false, {SpecWith(rules)}, /*cut=*/true};
  const std::string text = RequestText(sent);
  // The DOM path, not the fallback, reads this text.
  simdjson::dom::parser parser;
  EXPECT_TRUE(ParseForView(parser, text).has_value());
  ASSERT_OK_AND_ASSIGN(Request back, DecodeRequestLine(text));
  const auto* apply = std::get_if<ApplyRequest>(&back);
  ASSERT_NE(apply, nullptr);
  EXPECT_TRUE(apply->cut);
  EXPECT_FALSE(apply->dry_run);
  ASSERT_EQ(apply->policies.size(), 1u);
  const TargetSpec& spec = apply->policies[0];
  EXPECT_EQ(spec.name, "big");
  EXPECT_EQ(spec.source_value, "/egress-big");
  EXPECT_EQ(spec.mode, policy::Mode::kAudit);
  EXPECT_EQ(spec.logging, policy::LoggingLevel::kAll);
  EXPECT_EQ(spec.file, "/etc/egress/big.yaml");
  ASSERT_EQ(spec.rules.size(), rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    ASSERT_EQ(spec.rules[i], rules[i]) << "rule " << i;
  }
}

// `text` in a string whose capacity holds `after` past its end, as a line
// read from the socket holds what its buffer grew to.
std::string WithBytesAfter(const std::string& text, absl::string_view after) {
  std::string line;
  line.reserve(text.size() + after.size() + 1);
  line.append(text).push_back('\0');
  line.append(after.data(), after.size());
  line.resize(text.size());  // the bytes after stay in the buffer
  return line;
}

// DecodeRequestLine reads a line in place when its buffer has simdjson's
// padding after it: what the buffer holds there is never part of the
// request, and a line with no room after it is read as well.
TEST(RequestLineTest, LineIsReadInPlaceWhateverItsBufferHoldsAfterIt) {
  const std::vector<Rule> rules = ManyRules(2000);
  const std::string text =
      RequestText(ApplyRequest{true, {SpecWith(rules)}, false});
  const std::string junk(200, ']');
  for (const std::string& line :
       {WithBytesAfter(text, junk), WithBytesAfter(text, std::string(200, ' ')),
        std::string(text.data(), text.size())}) {
    ASSERT_EQ(line, text);
    ASSERT_OK_AND_ASSIGN(Request back, DecodeRequestLine(line));
    const auto* apply = std::get_if<ApplyRequest>(&back);
    ASSERT_NE(apply, nullptr);
    ASSERT_EQ(apply->policies.size(), 1u);
    EXPECT_EQ(apply->policies[0].rules, rules);
  }
  // A line cut short is refused as the tree refuses it, even when the bytes
  // after it in its buffer would complete it.
  const std::string cut = R"({"cmd":"status")";
  ExpectSameOutcome(WithBytesAfter(cut, "}" + std::string(100, ' ')));
  EXPECT_FALSE(DecodeRequestLine(WithBytesAfter(cut, "}   ")).ok());
  const std::string open_string = R"({"cmd":"stat)";
  ExpectSameOutcome(WithBytesAfter(open_string, "us\"}" + junk));
}

TEST(RequestLineTest, EveryRequestAsTheTreeDecodesIt) {
  std::vector<Request> requests = {
      TargetAddRequest{SpecWith(ManyRules(12)), /*cut=*/true},
      TargetRemoveRequest{"web"},
      TargetListRequest{},
      ModeRequest{policy::Mode::kAudit, "web", true, false},
      LoggingRequest{policy::LoggingLevel::kOff, "web"},
      RuleAddRequest{"web", ManyRules(2)[1], 1800},
      RuleDeleteRequest{"web", 2, std::nullopt},
      RuleDeleteRequest{"web", std::nullopt, ManyRules(4)[3], true},
      ListRequest{"web"},
      StatusRequest{},
      ApplyRequest{true, {SpecWith(ManyRules(30)), SpecWith({})}},
      ReloadRequest{},
      SuggestRequest{"web", 3600, 24, 64, true},
      ExportRequest{"web"},
      EventsRequest{true, "web", "deny", 5, EventFormat::kText, "c", "ns/"},
      ConnectionsRequest{"web", /*cut=*/true},
      PingRequest{}};
  for (const Request& request : requests) {
    const std::string text = RequestText(request);
    ASSERT_OK_AND_ASSIGN(Request back, DecodeRequestLine(text));
    EXPECT_EQ(EncodeRequest(back), EncodeRequest(request)) << text;
    ExpectSameOutcome(text);
  }
}

// Every error the tree's decoder gives, the same through the DOM: bad
// JSON, each request member of a wrong type or value, each rule member.
TEST(RequestLineTest, ErrorsAreTheTreesErrors) {
  const char* const
      cases
          [] =
              {
                  // Not JSON, or not an object.
                  "",
                  "{",
                  "{\"cmd\":",
                  "nul",
                  "[1,2]",
                  "\"apply\"",
                  "5",
                  "{}x",
                  "{\"cmd\":\"ping\",}",
                  "{\"cmd\":\"ping\" \"x\":1}",
                  "{\"cmd\":\"p\xffng\"}",
                  "{\"cmd\":\"\\ud800\"}",
                  "{\"cmd\":\"\\x\"}",
                  "{\"cmd\":\"a\tb\"}",
                  // Requests.
                  R"({})",
                  R"({"cmd":null})",
                  R"({"cmd":1})",
                  R"({"cmd":"nope"})",
                  R"({"cmd":"list","target":5})",
                  R"({"cmd":"events","last":"x"})",
                  R"({"cmd":"events","last":-1})",
                  R"({"cmd":"events","last":1.0})",
                  R"({"cmd":"events","last":4294967296})",
                  R"({"cmd":"events","follow":1})",
                  R"({"cmd":"events","format":"xml"})",
                  R"({"cmd":"mode","mode":"block"})",
                  R"({"cmd":"mode"})",
                  R"({"cmd":"mode","mode":null})",
                  R"({"cmd":"logging","level":"bogus"})",
                  R"({"cmd":"target_add"})",
                  R"({"cmd":"target_add","name":"w","source_kind":"vm"})",
                  R"({"cmd":"target_add","name":"w","rules":{}})",
                  R"({"cmd":"target_add","name":"w","rules":[5]})",
                  R"({"cmd":"rule_add","rule":{"id":"x"}})",
                  R"({"cmd":"rule_add"})",
                  R"({"cmd":"rule_add","target":"w","for_seconds":-5,"rule":[]})",
                  R"({"cmd":"rule_add","for_seconds":9223372036854775808})",
                  R"({"cmd":"rule_delete","number":true})",
                  R"({"cmd":"apply"})",
                  R"({"cmd":"apply","policies":{}})",
                  R"({"cmd":"apply","policies":[5]})",
                  R"({"cmd":"apply","policies":[{"name":"a","logging":"bogus"}]})",
                  R"({"cmd":"apply","policies":[{"name":"a"},{"name":1}]})",
                  R"({"cmd":"suggest","group_v4":33})",
                  R"({"cmd":"suggest","group_v6":-0})",
                  R"({"cmd":"suggest","since_seconds":1e3})",
                  R"({"cmd":"events","last":18446744073709551616})",
                  // Rules, in an apply.
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","sepc":1,"aaa":2}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":-1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":-0,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":4294967296,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"permit","spec":"any","ports":[],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":null,"ports":[],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":{},"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[5],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[{"proto":"tcp","lo":1}],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[{"proto":"sctp","lo":1,"hi":2}],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[{"proto":"tcp","lo":20,"hi":10}],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[{"proto":"tcp","lo":1,"hi":65536}],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[{"proto":"tcp","lo":1,"hi":2,"step":1}],"destinations":[],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":"10.0.0.1","host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":["10.0.0.256"],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":["10.0.0.0/8",5],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":["10.0.0.1/8"],"host":"","comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":1,"comment":""}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":false}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","expires":null}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","expires":-0}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","unix":"x"}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","unix":[1]}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","unix":["x.sock"]}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","names":["bad name"]}]}]})",
                  R"({"cmd":"rule_add","rule":{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","names":{}}})",
                  // A member given twice: nlohmann::json keeps the last.
                  R"({"cmd":"list","target":5,"target":"web"})",
                  R"({"cmd":"list","target":"web","target":5})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":1,"action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","id":"x"}]}]})",
                  R"({"cmd":"apply","policies":[{"name":"a","rules":[{"id":"x","action":"allow","spec":"any","ports":[],"destinations":[],"host":"","comment":"","id":2}]}]})",
                  // A byte order mark, a big integer, -0: the tree's way.
                  "\xef\xbb\xbf{\"cmd\":\"ping\"}",
                  R"({"cmd":"events","last":-0})",
                  R"({"cmd":"events","last":-0 })",
                  R"({"cmd":"rule_add","for_seconds":-0})",
              };
  for (const char* text : cases) ExpectSameOutcome(text);
}

TEST(RequestLineTest, DeepNestingIsTheTreesOutcome) {
  std::string deep = R"({"cmd":"ping","x":)";
  for (int i = 0; i < 2000; ++i) deep += '[';
  for (int i = 0; i < 2000; ++i) deep += ']';
  deep += '}';
  ExpectSameOutcome(deep);
}

// The rule reader over either tree: same rules, same errors.
TEST(RequestLineTest, RuleReaderAgreesOverBothTrees) {
  json rules = policy::RulesToJson(ManyRules(60));
  rules[7]["ports"][0]["lo"] = 70000;
  rules[9]["destinations"][0] = "10.0.0.256";
  rules[11].erase("comment");
  rules[13]["zzz"] = 1;
  rules[13]["aaa"] = 1;
  rules[15]["unix"] = json::array({"x.sock"});
  for (const json& r : rules) {
    const std::string text = r.dump();
    simdjson::dom::parser parser;
    std::optional<SimdjsonView> root = ParseForView(parser, text);
    ASSERT_TRUE(root.has_value()) << text;
    absl::StatusOr<Rule> fast = policy::RuleFromTree(*root);
    absl::StatusOr<Rule> tree = policy::RuleFromJson(r);
    ASSERT_EQ(fast.ok(), tree.ok()) << text;
    if (tree.ok()) {
      EXPECT_EQ(*fast, *tree);
    } else {
      EXPECT_EQ(fast.status(), tree.status());
    }
  }
}

TEST(RequestLineTest, DomDeclinesWhatItCannotReadAsTheTree) {
  simdjson::dom::parser parser;
  auto reads = [&](const char* text) {
    return ParseForView(parser, text).has_value();
  };
  EXPECT_TRUE(reads(R"({"a":[0,-1,"-0",0.5,-0.5,-0e1]})"));
  EXPECT_FALSE(reads(R"({"a":-0})"));
  EXPECT_FALSE(reads(R"({"a":[1, -0]})"));
  EXPECT_FALSE(reads(R"({"a":18446744073709551616})"));
  EXPECT_FALSE(reads("\xef\xbb\xbf{}"));
  EXPECT_FALSE(reads("{"));
}

TEST(RequestLineTest, ViewsAnswerAsTheTree) {
  const char* const values[] = {"0",
                                "1",
                                "-1",
                                "9223372036854775807",
                                "9223372036854775808",
                                "18446744073709551615",
                                "-9223372036854775808",
                                "1.0",
                                "1e2",
                                "-2.5",
                                "true",
                                "false",
                                "null",
                                "\"s\"",
                                "[]",
                                "{}"};
  for (const char* v : values) {
    const json tree = json::parse(v);
    const policy::NlohmannView a(tree);
    simdjson::dom::parser parser;
    std::optional<SimdjsonView> b = ParseForView(parser, v);
    ASSERT_TRUE(b.has_value()) << v;
    EXPECT_EQ(b->is_null(), a.is_null()) << v;
    EXPECT_EQ(b->is_object(), a.is_object()) << v;
    EXPECT_EQ(b->is_array(), a.is_array()) << v;
    EXPECT_EQ(b->is_string(), a.is_string()) << v;
    EXPECT_EQ(b->is_boolean(), a.is_boolean()) << v;
    EXPECT_EQ(b->is_number_integer(), a.is_number_integer()) << v;
    EXPECT_EQ(b->is_number_unsigned(), a.is_number_unsigned()) << v;
    EXPECT_STREQ(b->type_name(), a.type_name()) << v;
    if (a.is_number_integer()) {
      EXPECT_EQ(b->uint64(), a.uint64()) << v;
      EXPECT_EQ(b->int64(), a.int64()) << v;
    }
  }
}

// Random requests, valid and not: every outcome is the tree's.
TEST(RequestLineTest, RandomRequestsHaveTheTreesOutcome) {
  const std::vector<Request> seeds = {
      ApplyRequest{false, {SpecWith(ManyRules(6)), SpecWith({})}, true},
      TargetAddRequest{SpecWith(ManyRules(6))},
      RuleAddRequest{"web", ManyRules(2)[1], 1800},
      RuleDeleteRequest{"web", 2, ManyRules(4)[3]},
      ModeRequest{policy::Mode::kAudit, "web", true, false},
      LoggingRequest{policy::LoggingLevel::kOff, "web"},
      SuggestRequest{"web", 3600, 24, 64, true},
      EventsRequest{true, "web", "deny", 5, EventFormat::kText, "c", "ns/"},
      ConnectionsRequest{"web", true},
      ListRequest{"web"}};
  testing::Mutator mutator(13);
  int ok = 0, failed = 0;
  for (const Request& seed : seeds) {
    std::string text = RequestText(seed);
    for (int i = 0; i < 1500; ++i) {
      // Mostly one change to the seed; sometimes a chain of them.
      std::string mutated = mutator.Mutate(text);
      if (i % 10 == 0) mutated = mutator.Mutate(mutator.Mutate(mutated));
      ExpectSameOutcome(mutated);
      if (HasFailure()) return;
      (DecodeRequestLine(mutated).ok() ? ok : failed)++;
    }
  }
  // Both kinds were tried, many of each.
  EXPECT_GT(ok, 1000);
  EXPECT_GT(failed, 1000);
}

}  // namespace
}  // namespace egress::control
