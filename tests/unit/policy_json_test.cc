#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"

namespace egress::policy {
namespace {

using nlohmann::json;

Rule DnsRule() {
  Rule r;
  r.id = 7;
  r.action = Action::kAllow;
  r.spec = "dns";
  r.ports = {{Proto::kUdp, 53, 53}, {Proto::kTcp, 53, 53}};
  r.destinations = {C("10.0.0.53")};
  return r;
}

std::string FromJsonError(const json& j) {
  absl::StatusOr<Rule> r = RuleFromJson(j);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(RuleJsonTest, ExactShape) {
  const json j = RuleToJson(DnsRule());
  EXPECT_EQ(j, json::parse(R"({
    "id": 7, "action": "allow", "spec": "dns",
    "ports": [{"proto": "udp", "lo": 53, "hi": 53},
              {"proto": "tcp", "lo": 53, "hi": 53}],
    "destinations": ["10.0.0.53"], "host": "", "comment": ""})"));
}

TEST(RuleJsonTest, ExpiresOnlyForTemporaryRules) {
  Rule r = DnsRule();
  EXPECT_FALSE(RuleToJson(r).contains("expires"));
  r.expires = 1795000000;
  json j = RuleToJson(r);
  EXPECT_EQ(j["expires"], 1795000000);
  ASSERT_OK_AND_ASSIGN(Rule back, RuleFromJson(j));
  EXPECT_EQ(back, r);
  j["expires"] = -1;
  EXPECT_FALSE(RuleFromJson(j).ok());
  j["expires"] = "soon";
  EXPECT_FALSE(RuleFromJson(j).ok());
}

TEST(RuleJsonTest, RoundTrips) {
  Rule a = DnsRule();
  Rule b;
  b.id = 4294967295u;
  b.action = Action::kDeny;
  b.spec = "any";
  b.ports = {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
  Rule c;
  c.id = 3;
  c.spec = "443/tcp";
  c.ports = {{Proto::kTcp, 443, 443}};
  c.destinations = {C("203.0.113.0/24"), C("2001:db8::/32"), C("::1"),
                    C("0.0.0.0/0")};
  c.host = "api.example.org";
  c.comment = "vendor \"api\" ü";
  Rule d;
  d.id = 9;
  d.spec = "raw";
  d.ports = {{Proto::kRaw}};
  d.name = "ping.raw@1";
  d.comment = "ping.raw@1: the monitor";
  for (const Rule& r : {a, b, c, d}) {
    // Through text too, as the daemon's state file does.
    absl::StatusOr<json> parsed = ParseJson(RuleToJson(r).dump());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    absl::StatusOr<Rule> back = RuleFromJson(*parsed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r) << r.spec;
  }
  absl::StatusOr<std::vector<Rule>> all =
      RulesFromJson(RulesToJson(std::vector<Rule>{a, b, c, d}));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, (std::vector<Rule>{a, b, c, d}));
}

// The state database's text of a rule, written without the tree, is the
// tree's text byte for byte, whatever the rule holds: every member, names,
// unix addresses, a temporary rule's end, and strings that need escapes or
// hold bytes that are not UTF-8.
TEST(RuleJsonTest, TextWithoutTheTreeIsTheTreesText) {
  Rule plain = DnsRule();
  Rule odd;
  odd.id = 4294967295u;
  odd.action = Action::kDeny;
  odd.spec = "any";
  odd.ports = {
      {Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
  odd.destinations = {C("2001:db8::/32"),     C("::1"),
                      C("0.0.0.0/0"),         C("10.1.2.0/24"),
                      C("192.0.2.7"),         C("::ffff:10.0.0.0/104"),
                      C("255.255.255.255/32")};
  odd.host = "api.example.org";
  odd.comment = "vendor \"api\" \\ ü \t\n\x01 \xff\xfe end";
  odd.expires = 1795000000;
  Rule named;
  named.id = 12;
  named.spec = "https";
  named.ports = {{Proto::kTcp, 443, 443}};
  named.names = {"api.example.com", "*.example.org"};
  Rule unix_rule;
  unix_rule.id = 13;
  unix_rule.spec = "unix";
  unix_rule.ports = {{Proto::kUnix}};
  unix_rule.unix_paths = {"/run/php/php-fpm.sock", "@name\x80"};
  unix_rule.name = "php-fpm";
  Rule empty;
  for (const Rule& r : {plain, odd, named, unix_rule, empty}) {
    EXPECT_EQ(RuleJsonText(r), JsonText(RuleToJson(r))) << r.spec;
  }
}

TEST(RuleJsonTest, NameIsWrittenOnlyWhenSetAndChecked) {
  Rule r = DnsRule();
  EXPECT_FALSE(RuleToJson(r).contains("name"));
  r.name = "dns";
  json j = RuleToJson(r);
  EXPECT_EQ(j["name"], "dns");
  j["name"] = "a b";
  EXPECT_EQ(RuleFromJson(j).status().message(),
            "rule: field 'name': bad rule name \"a b\": use 1-64 letters, "
            "digits, '-', '_', '.' or '@', not starting with '.'");
  j["name"] = 7;
  EXPECT_FALSE(RuleFromJson(j).ok());
}

TEST(RuleJsonTest, MissingAndUnknownFields) {
  for (const char* field :
       {"id", "action", "spec", "ports", "destinations", "host", "comment"}) {
    json j = RuleToJson(DnsRule());
    j.erase(field);
    EXPECT_EQ(FromJsonError(j),
              std::string("rule: missing field '") + field + "'");
  }
  json j = RuleToJson(DnsRule());
  j["sepc"] = "dns";
  EXPECT_EQ(FromJsonError(j), "rule: unknown field 'sepc'");
  j = RuleToJson(DnsRule());
  j["ports"][1].erase("hi");
  EXPECT_EQ(FromJsonError(j), "rule: ports[1]: missing field 'hi'");
  j = RuleToJson(DnsRule());
  j["ports"][0]["step"] = 1;
  EXPECT_EQ(FromJsonError(j), "rule: ports[0]: unknown field 'step'");
  EXPECT_EQ(FromJsonError(json::array()),
            "rule: expected an object, got array");
  EXPECT_EQ(FromJsonError(json()), "rule: expected an object, got null");
}

TEST(RuleJsonTest, BadTypesAndValues) {
  auto with = [](const char* field, json value) {
    json j = RuleToJson(DnsRule());
    j[field] = std::move(value);
    return j;
  };
  EXPECT_EQ(FromJsonError(with("id", -1)),
            "rule: field 'id' must be an unsigned 32-bit integer");
  EXPECT_EQ(FromJsonError(with("id", 4294967296LL)),
            "rule: field 'id' must be an unsigned 32-bit integer");
  EXPECT_EQ(FromJsonError(with("id", 1.5)),
            "rule: field 'id' must be an unsigned 32-bit integer");
  EXPECT_EQ(FromJsonError(with("id", "7")),
            "rule: field 'id' must be an unsigned 32-bit integer");
  EXPECT_EQ(FromJsonError(with("action", "permit")),
            "rule: field 'action': expected 'allow' or 'deny', got 'permit'");
  EXPECT_EQ(FromJsonError(with("action", 1)),
            "rule: field 'action' must be a string");
  EXPECT_EQ(FromJsonError(with("spec", nullptr)),
            "rule: field 'spec' must be a string");
  EXPECT_EQ(FromJsonError(with("host", json::array())),
            "rule: field 'host' must be a string");
  EXPECT_EQ(FromJsonError(with("comment", false)),
            "rule: field 'comment' must be a string");
  EXPECT_EQ(FromJsonError(with("ports", json::object())),
            "rule: field 'ports' must be an array");
  EXPECT_EQ(FromJsonError(with("destinations", "10.0.0.1")),
            "rule: field 'destinations' must be an array");
  EXPECT_EQ(FromJsonError(with("destinations", json{"10.0.0.256"})),
            "rule: destinations[0]: bad address '10.0.0.256'");
  EXPECT_EQ(FromJsonError(with("destinations", json{"10.0.0.0/8", 5})),
            "rule: destinations[1] must be a string");
  EXPECT_EQ(FromJsonError(with("destinations", json{"10.0.0.1/8"})),
            "rule: destinations[0]: 10.0.0.1/8: host bits set; did you mean "
            "10.0.0.0/8?");
  EXPECT_EQ(FromJsonError(
                with("ports", json{{{"proto", "sctp"}, {"lo", 1}, {"hi", 2}}})),
            "rule: ports[0]: field 'proto': unknown protocol 'sctp'");
  EXPECT_EQ(FromJsonError(with(
                "ports", json{{{"proto", "tcp"}, {"lo", 1}, {"hi", 65536}}})),
            "rule: ports[0]: field 'hi' must be a port number 0-65535");
  EXPECT_EQ(FromJsonError(with(
                "ports", json{{{"proto", "tcp"}, {"lo", 20}, {"hi", 10}}})),
            "rule: ports[0]: field 'lo' (20) is above field 'hi' (10)");
  EXPECT_EQ(FromJsonError(with("ports", json{5})),
            "rule: ports[0]: expected an object, got number");
}

TEST(RuleJsonTest, RulesFromJsonNamesTheIndex) {
  json arr = RulesToJson(std::vector<Rule>{DnsRule(), DnsRule()});
  arr[1].erase("id");
  absl::StatusOr<std::vector<Rule>> r = RulesFromJson(arr);
  EXPECT_EQ(r.status().message(), "rules[1]: rule: missing field 'id'");
  EXPECT_EQ(RulesFromJson(json::object()).status().message(),
            "rules: expected an array, got object");
  absl::StatusOr<std::vector<Rule>> empty = RulesFromJson(json::array());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RuleJsonTest, ParseJsonDoesNotThrow) {
  absl::StatusOr<json> bad = ParseJson("{\"id\": ");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith("bad json: "));
  EXPECT_FALSE(ParseJson("").ok());
  absl::StatusOr<json> good = ParseJson("[1, 2]");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, json({1, 2}));
}

TEST(FormatRuleTest, ExamplesFromTheDocs) {
  EXPECT_EQ(FormatRule(DnsRule()), "ALLOW dns to 10.0.0.53 # (53/udp, 53/tcp)");

  Rule deny;
  deny.action = Action::kDeny;
  deny.spec = "any";
  deny.ports = {
      {Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
  deny.destinations = {C("169.254.169.254")};
  EXPECT_EQ(FormatRule(deny), "DENY any to 169.254.169.254");

  Rule host;
  host.spec = "443/tcp";
  host.ports = {{Proto::kTcp, 443, 443}};
  host.destinations = {C("203.0.113.0/24")};
  host.host = "api.example.org";
  EXPECT_EQ(FormatRule(host),
            "ALLOW 443/tcp to 203.0.113.0/24 # (api.example.org)");
}

TEST(FormatRuleTest, OtherShapes) {
  Rule r;
  r.spec = "https";
  r.ports = {{Proto::kTcp, 443, 443}, {Proto::kUdp, 443, 443}};
  r.comment = "vendor api";
  EXPECT_EQ(FormatRule(r),
            "ALLOW https to any # (443/tcp, 443/udp) vendor api");

  r = Rule();
  r.spec = "raw";
  r.ports = {{Proto::kRaw}};
  EXPECT_EQ(FormatRule(r), "ALLOW raw");

  r = Rule();
  r.spec = "1000-2000/udp";
  r.ports = {{Proto::kUdp, 1000, 2000}};
  r.destinations = {C("10.0.0.0/8"), C("2001:db8::/32")};
  EXPECT_EQ(FormatRule(r), "ALLOW 1000-2000/udp to 10.0.0.0/8 2001:db8::/32");

  r = Rule();
  r.spec = "icmp";
  r.ports = {{Proto::kIcmp}};
  EXPECT_EQ(FormatRule(r), "ALLOW icmp to any");

  r = Rule();
  r.spec = "web";  // a spec that is a service name, with a range
  r.ports = {{Proto::kTcp, 8000, 8080}, {Proto::kUdp, 0, 65535}};
  EXPECT_EQ(FormatRule(r), "ALLOW web to any # (8000-8080/tcp, udp)");
}

}  // namespace
}  // namespace egress::policy
