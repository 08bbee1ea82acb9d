// Unix-socket rules, pure: the address text form, the CLI grammar, policy
// files (parse and write back), the JSON form, rule identity, and the
// compiled unix_rules entries with the decision the hooks make from them.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Rule> Words(Action action, std::vector<std::string> words) {
  return ParseRuleWords(action, words);
}

Rule UnixRule(uint32_t id, Action action, std::vector<std::string> paths) {
  Rule r;
  r.id = id;
  r.action = action;
  r.spec = "unix";
  r.ports = {{Proto::kUnix}};
  r.unix_paths = std::move(paths);
  return r;
}

TEST(UnixAddressTest, TextToBytesAndBack) {
  EXPECT_EQ(*UnixAddressBytes("/run/x.sock"), "/run/x.sock");
  EXPECT_EQ(*UnixAddressBytes("@name"), std::string("\0name", 5));
  EXPECT_EQ(UnixAddressText(std::string("\0name\0x", 7)), "@name@x");
  EXPECT_EQ(*UnixAddressBytes(std::string(108, '/')), std::string(108, '/'));
}

TEST(UnixAddressTest, RefusesWhatNoSocketAddressCanBe) {
  EXPECT_THAT(UnixAddressBytes("x.sock").status().message(),
              HasSubstr("'x.sock' must be an absolute path or @name"));
  EXPECT_THAT(UnixAddressBytes("").status().message(),
              HasSubstr("must be an absolute path"));
  EXPECT_THAT(UnixAddressBytes("@").status().message(),
              HasSubstr("empty abstract name"));
  EXPECT_THAT(UnixAddressBytes(std::string(109, '/')).status().message(),
              HasSubstr("longer than 108 bytes"));
  EXPECT_THAT(UnixAddressBytes("@" + std::string(108, 'a')).status().message(),
              HasSubstr("longer than 108 bytes"));
  EXPECT_THAT(UnixAddressBytes(std::string("/a\0b", 4)).status().message(),
              HasSubstr("NUL byte"));
}

// Found by tests/fuzz/targets/cli_fuzzer.cc: `egressctl deny unix
// /var/run/docker.sock\xb1` was accepted, and the request egressd got named
// "/var/run/docker.sock\uFFFD" (JSON carries text): a rule for another
// address than the one typed. Such bytes are refused where the text is read.
TEST(UnixAddressTest, RefusesBytesARuleCannotCarry) {
  for (const std::string& text :
       {std::string("/var/run/docker.sock\xb1"), std::string("@caf\xc3\xa9"),
        std::string("/run/a\nb"), std::string("/run/\x7f")}) {
    EXPECT_THAT(UnixAddressBytes(text).status().message(),
                HasSubstr("control or non-ASCII byte"))
        << text;
  }
  EXPECT_FALSE(Words(Action::kDeny, {"unix", "/run/x.sock\xb1"}).ok());
  EXPECT_TRUE(UnixAddressBytes("/run/a b~!.sock").ok());
}

TEST(UnixGrammarTest, AllowAndDenyUnixWords) {
  absl::StatusOr<Rule> r =
      Words(Action::kDeny, {"unix", "/var/run/docker.sock", "@docker",
                            "/var/run/docker.sock", "comment", "no docker"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->action, Action::kDeny);
  EXPECT_EQ(r->spec, "unix");
  EXPECT_EQ(r->ports, (PortList{{Proto::kUnix}}));
  EXPECT_THAT(r->unix_paths, ElementsAre("/var/run/docker.sock", "@docker"));
  EXPECT_TRUE(r->destinations.empty());
  EXPECT_EQ(r->comment, "no docker");
  r = Words(Action::kAllow, {"out", "unix", "/run/php/php-fpm.sock"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->unix_paths, ElementsAre("/run/php/php-fpm.sock"));
}

TEST(UnixGrammarTest, ErrorsNameTheWord) {
  EXPECT_THAT(Words(Action::kAllow, {"unix"}).status().message(),
              HasSubstr("unix needs a socket address"));
  EXPECT_THAT(
      Words(Action::kAllow, {"unix", "php.sock"}).status().message(),
      HasSubstr("unix address 'php.sock' must be an absolute path or @name"));
  EXPECT_THAT(
      Words(Action::kAllow, {"unix", "comment", "x"}).status().message(),
      HasSubstr("unix needs a socket address"));
  EXPECT_THAT(Words(Action::kDeny,
                    {"unix", "/run/a.sock", "comment", "no", "/run/b.sock"})
                  .status()
                  .message(),
              HasSubstr("quote a comment of several words"));
}

TEST(UnixJsonTest, RoundTripAndListLine) {
  Rule r = UnixRule(7, Action::kDeny, {"/var/run/docker.sock", "@docker"});
  nlohmann::json j = RuleToJson(r);
  EXPECT_EQ(j["unix"], nlohmann::json({"/var/run/docker.sock", "@docker"}));
  absl::StatusOr<Rule> back = RuleFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(FormatRule(r), "DENY unix /var/run/docker.sock @docker");
  // Inet rules carry no "unix" member.
  Rule tcp;
  tcp.id = 1;
  tcp.spec = "443/tcp";
  tcp.ports = {{Proto::kTcp, 443, 443}};
  EXPECT_FALSE(RuleToJson(tcp).contains("unix"));
  j["unix"] = {"relative.sock"};
  EXPECT_THAT(RuleFromJson(j).status().message(),
              HasSubstr("rule: unix[0]: unix address 'relative.sock'"));
}

TEST(UnixCompareTest, SameAddressesSameRuleAndDenyShadowsAllow) {
  Rule a = UnixRule(1, Action::kAllow, {"/a", "/b"});
  Rule b = UnixRule(2, Action::kAllow, {"/b", "/a"});
  Rule c = UnixRule(3, Action::kAllow, {"/a"});
  EXPECT_TRUE(SameRule(a, b));
  EXPECT_FALSE(SameRule(a, c));
  std::vector<Rule> rules = {UnixRule(4, Action::kDeny, {"/a"})};
  EXPECT_EQ(ShadowingDeny(rules, c), 0u);
  EXPECT_EQ(ShadowingDeny(rules, a), std::nullopt);  // /b still works
}

TEST(UnixPolicyFileTest, WrittenPolicyReadsBack) {
  PolicyDocument d;
  d.name = "web";
  d.target = {TargetSource::kUnit, "web.service"};
  d.rules = {UnixRule(0, Action::kAllow, {"/run/php/php-fpm.sock", "@fpm"}),
             UnixRule(0, Action::kDeny, {"/var/run/docker.sock"})};
  d.rule_names = {"fpm", ""};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("unix:"));
  absl::StatusOr<Policy> p = ParsePolicy(text, "x.yaml");
  ASSERT_TRUE(p.ok()) << p.status() << "\n" << text;
  ASSERT_EQ(p->rules.size(), 2u);
  EXPECT_EQ(p->rules[0].unix_paths, d.rules[0].unix_paths);
  EXPECT_EQ(p->rules[1].unix_paths, d.rules[1].unix_paths);
  EXPECT_EQ(p->rules[1].action, Action::kDeny);
}

// The decision of the unix hooks for `text` under the compiled `rules`.
UnixDecision Decide(const std::vector<Rule>& rules, const std::string& text) {
  absl::StatusOr<CompiledRuleset> c = Compile(5, rules);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  return EvaluateUnix(c->unix_paths, c->flags, 5, *UnixAddressBytes(text));
}

TEST(UnixCompileTest, NoUnixRuleLooksAtNothing) {
  Rule tcp;
  tcp.id = 1;
  tcp.spec = "443/tcp";
  tcp.ports = {{Proto::kTcp, 443, 443}};
  absl::StatusOr<CompiledRuleset> c = Compile(5, {tcp});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->unix_paths.empty());
  EXPECT_EQ(c->flags & (EGRESS_TF_UNIX_RULES | EGRESS_TF_UNIX_ALLOWLIST), 0);
  EXPECT_FALSE(Decide({tcp}, "/var/run/docker.sock").looked_at);
}

TEST(UnixCompileTest, DenyOnlyRefusesListedAndPassesTheRest) {
  std::vector<Rule> rules = {UnixRule(3, Action::kDeny, {"/d.sock", "@d"})};
  UnixDecision d = Decide(rules, "/d.sock");
  EXPECT_TRUE(d.looked_at);
  EXPECT_EQ(d.verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(d.reason, EGRESS_REASON_MATCH_DENY);
  EXPECT_EQ(d.rule_id, 3u);
  EXPECT_EQ(Decide(rules, "@d").verdict, EGRESS_VERDICT_DENY);
  d = Decide(rules, "/other.sock");
  EXPECT_EQ(d.verdict, EGRESS_VERDICT_ALLOW);
  EXPECT_EQ(d.reason, EGRESS_REASON_UNIX_UNLISTED);
  EXPECT_EQ(d.rule_id, 0u);
  // "/d.sock" and "@d.sock" are different addresses; so are "@d" and "/d".
  EXPECT_EQ(Decide(rules, "@d.sock").verdict, EGRESS_VERDICT_ALLOW);
  EXPECT_EQ(Decide(rules, "/d").verdict, EGRESS_VERDICT_ALLOW);
}

TEST(UnixCompileTest, AnAllowMakesAnAllowListAndDenyBeatsAllow) {
  std::vector<Rule> rules = {UnixRule(1, Action::kAllow, {"/a", "/b"}),
                             UnixRule(2, Action::kDeny, {"/b"}),
                             UnixRule(9, Action::kAllow, {"/a"})};
  absl::StatusOr<CompiledRuleset> c = Compile(5, rules);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->flags & EGRESS_TF_UNIX_ALLOWLIST, EGRESS_TF_UNIX_ALLOWLIST);
  ASSERT_EQ(c->unix_paths.size(), 2u);  // one entry per address
  EXPECT_EQ(c->unix_paths[0].first.ruleset, 5u);
  EXPECT_EQ(c->unix_paths[0].first.len, 2u);
  EXPECT_EQ(c->unix_paths[0].first.path[2], 0);  // zero past len
  UnixDecision a = Decide(rules, "/a");
  EXPECT_EQ(a.verdict, EGRESS_VERDICT_ALLOW);
  EXPECT_EQ(a.rule_id, 1u);  // the lowest id of the allows
  UnixDecision b = Decide(rules, "/b");
  EXPECT_EQ(b.verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(b.rule_id, 2u);
  UnixDecision other = Decide(rules, "/c");
  EXPECT_EQ(other.verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(other.reason, EGRESS_REASON_NO_MATCH);
}

TEST(UnixCompileTest, BadUnixRulesAreRefused) {
  EXPECT_THAT(Compile(5, {UnixRule(4, Action::kAllow, {})}).status().message(),
              HasSubstr("rule 4: a unix rule names no address"));
  EXPECT_THAT(
      Compile(5, {UnixRule(4, Action::kAllow, {"x"})}).status().message(),
      HasSubstr("rule 4: unix address 'x'"));
}

}  // namespace
}  // namespace egress::policy
