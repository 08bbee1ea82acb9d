// A line of `egressctl list` typed back: what comes before its " # " is a
// rule that `allow`, `deny` and `delete` take, and it is the same rule
// (SameRule), whatever shape the rule has and wherever it came from (the
// grammar, a policy file, a hand-built value).
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"
#include "userspace/policy/spec_text.h"

namespace egress::policy {
namespace {

using ::egress::testing::kInlinePolicyHead;

// The words a shell passes for `line`: split at spaces, up to the comment
// a shell drops (" # ").
std::vector<std::string> ShellWords(const std::string& line) {
  absl::string_view rule = line;
  if (const size_t hash = rule.find(" # "); hash != absl::string_view::npos) {
    rule = rule.substr(0, hash);
  }
  std::vector<std::string> words = absl::StrSplit(rule, ' ', absl::SkipEmpty());
  for (const std::string& w : words) {
    // A shell refuses these unquoted (or reads them as something else).
    EXPECT_EQ(w.find_first_of("()#;&|<>\"'`$\\"), std::string::npos)
        << "'" << w << "' in: " << line;
  }
  return words;
}

// The rule `list` prints for `r`, typed back after `egressctl delete`
// (ACTION as printed) and after `egressctl allow|deny`: both must give a
// rule SameRule as `r`.
void ExpectTypedBack(const Rule& r) {
  const std::string line = FormatRule(r);
  SCOPED_TRACE(line);
  std::vector<std::string> words = ShellWords(line);
  ASSERT_GE(words.size(), 2u);
  const std::string action = words[0];
  const std::vector<std::string> rest(words.begin() + 1, words.end());

  absl::StatusOr<Rule> typed = ParseRuleWords(
      absl::AsciiStrToLower(action) == "allow" ? Action::kAllow : Action::kDeny,
      rest);
  ASSERT_TRUE(typed.ok()) << typed.status();
  EXPECT_TRUE(SameRule(*typed, r))
      << RuleIdentity(*typed) << " vs " << RuleIdentity(r);

  std::vector<std::string> del = {"delete"};
  del.insert(del.end(), words.begin(), words.end());
  absl::StatusOr<cli::ParsedCommand> parsed = cli::ParseCommandLine(del);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->request.has_value());
  const auto* req = std::get_if<control::RuleDeleteRequest>(&*parsed->request);
  ASSERT_NE(req, nullptr);
  ASSERT_TRUE(req->rule.has_value());
  EXPECT_TRUE(SameRule(*req->rule, r))
      << RuleIdentity(*req->rule) << " vs " << RuleIdentity(r);
}

Rule Typed(Action action, std::vector<std::string> words) {
  absl::StatusOr<Rule> r = ParseRuleWords(action, words);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Rule{};
}

TEST(ListLineTest, EveryTypedShapeIsTypedBack) {
  const std::vector<std::vector<std::string>> lines = {
      {"443"},
      {"443/tcp", "10.0.0.5"},
      {"443/any", "to", "10.0.0.5"},
      {"1000-2000/udp", "to", "10.0.0.0/8", "2001:db8::/32"},
      {"6000:6010"},
      {"80,443,8000-8080/tcp"},
      {"80,443"},
      {"tcp"},
      {"udp", "10.0.0.1"},
      {"icmp", "to", "10.0.0.0/8"},
      {"any", "to", "169.254.169.254"},
      {"raw"},
      {"dns", "10.0.0.53"},
      {"ntp/udp"},
      {"https", "comment", "vendor api"},
      {"443/tcp", "api.example.com", "*.cdn.example.com", "10.0.0.1"},
      {"unix", "/var/run/docker.sock", "@docker"},
      {"out", "proto", "tcp", "to", "10.0.0.5", "port", "25"},
      {"out", "proto", "udp", "port", "1000:2000"},
      {"out", "to", "10.0.0.5"},
      {"443/tcp,53/udp", "10.0.0.5"},
      {"tcp,udp,icmp"},
  };
  for (Action action : {Action::kAllow, Action::kDeny}) {
    for (const auto& words : lines) ExpectTypedBack(Typed(action, words));
  }
}

// A policy file's ports become one rule whose spec joins the words of its
// entries ("443/tcp,443/udp"); `list` prints a SPEC the grammar takes.
TEST(ListLineTest, EveryPolicyFileShapeIsTypedBack) {
  absl::StatusOr<Policy> p =
      ParsePolicy(absl::StrCat(kInlinePolicyHead, R"(  egress:
  - ports: [{port: 443, protocol: TCP}, {port: 443, protocol: UDP}]
  - ports: [{port: 80}, {port: 443, protocol: TCP}]
  - ports: [{protocol: TCP}, {protocol: UDP}]
  - ports: [{port: 443, protocol: TCP}]
    icmp: true
  - ports: [{port: 1000, endPort: 2000, protocol: UDP}]
  - ports: [{port: 8000, endPort: 8000, protocol: Any}]
  - ports: [{port: dns, protocol: UDP}, {port: 443, protocol: TCP}]
  - ports: [{port: https}]
  - ports: [{port: 80, protocol: TCP}, {port: https}, {port: 80}]
    icmp: true
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
    to:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    - domainNames: ["api.example.com", "*.example.org"]
  - raw: true
  - icmp: true
  - {}
  egressDeny:
  - name: meta
    comment: cloud metadata
    to: [{ipBlock: {cidr: 169.254.169.254/32}}]
    ports: [{port: 80, protocol: TCP}, {port: 8080, protocol: TCP}]
  - unix: ["/var/run/docker.sock", "@docker"]
)"),
                  "t.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->rules.size(), 15u);
  for (const Rule& r : p->rules) ExpectTypedBack(r);
  // UFW's forms where one holds the ports.
  EXPECT_EQ(FormatRule(p->rules[0]), "ALLOW 443 to any");
  EXPECT_EQ(FormatRule(p->rules[2]), "ALLOW tcp,udp to any");
  EXPECT_EQ(FormatRule(p->rules[3]), "ALLOW 443/tcp,icmp to any");
  EXPECT_EQ(FormatRule(p->rules[6]), "ALLOW 443/tcp,53/udp to any");
  EXPECT_EQ(FormatRule(p->rules[13]),
            "DENY 80,8080/tcp to 169.254.169.254 # meta: cloud metadata");
}

// Shapes no parser makes but a state file may hold: a spec that does not
// say the ports, a rule that ends, a host name the destinations came from
// (older versions resolved names; no grammar word says it, so such a rule
// is deleted by number).
TEST(ListLineTest, HandBuiltShapesAreTypedBack) {
  Rule host;
  host.spec = "443/tcp";
  host.ports = {{Proto::kTcp, 443, 443}};
  host.destinations = {C("203.0.113.0/24")};
  ExpectTypedBack(host);
  host.host = "api.example.org";

  Rule stale;  // "443/tcp,443/udp" with its ports merged and reordered
  stale.spec = "80,443/tcp";
  stale.ports = {
      {Proto::kUdp, 80, 80}, {Proto::kTcp, 80, 80}, {Proto::kTcp, 443, 443}};
  ExpectTypedBack(stale);
  EXPECT_EQ(FormatRule(stale), "ALLOW 80/tcp,443/tcp,80/udp to any");

  Rule ranges;
  ranges.spec = "";
  ranges.ports = {{Proto::kTcp, 1000, 2000},
                  {Proto::kUdp, 1000, 2000},
                  {Proto::kTcp, 3000, 3000},
                  {Proto::kUdp, 3000, 3000}};
  ExpectTypedBack(ranges);
  EXPECT_EQ(FormatRule(ranges), "ALLOW 1000:2000,3000 to any");

  Rule ends = host;
  ends.expires = 1764979200;
  EXPECT_EQ(WithNote(FormatRule(ends), "(until x)"),
            "ALLOW 443/tcp to 203.0.113.0/24 # (api.example.org) (until x)");
  host.host.clear();
  EXPECT_EQ(WithNote(FormatRule(host), "(until x)"),
            "ALLOW 443/tcp to 203.0.113.0/24 # (until x)");
}

// Every SPEC PortsSpecText prints parses to the same ports.
TEST(ListLineTest, PortsSpecTextParsesBack) {
  const std::vector<std::vector<PortProto>> shapes = {
      {{Proto::kTcp, 443, 443}},
      {{Proto::kUdp, 1000, 2000}},
      {{Proto::kTcp, 443, 443}, {Proto::kUdp, 443, 443}},
      {{Proto::kTcp, 0, 65535}},
      {{Proto::kUdp, 0, 65535}, {Proto::kIcmp}},
      {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}},
      {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}},
      {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 53, 53}},
      {{Proto::kIcmp}},
      {{Proto::kRaw}},
  };
  for (const auto& ports : shapes) {
    const std::string spec = PortsSpecText(ports);
    absl::StatusOr<std::vector<PortProto>> back = ParseSpec(spec);
    ASSERT_TRUE(back.ok()) << spec << ": " << back.status();
    EXPECT_EQ(CanonicalPorts(*back), CanonicalPorts(ports)) << spec;
  }
}

// The list with a protocol per item: a port without one is ambiguous
// (UFW's "80,443/tcp" gives the last item's to all), so it is refused.
TEST(ListLineTest, AListOfSeveralProtocolsGivesEachPortItsOwn) {
  EXPECT_STATUS(ParseSpec("80,443/tcp,53/udp").status(),
                absl::StatusCode::kInvalidArgument,
                "'80' in '80,443/tcp,53/udp' has no protocol");
  EXPECT_STATUS(ParseSpec("tcp,any").status(),
                absl::StatusCode::kInvalidArgument,
                "'any' cannot be part of a list");
  absl::StatusOr<std::vector<PortProto>> ports = ParseSpec("53/udp,443/tcp");
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(*ports, (std::vector<PortProto>{{Proto::kTcp, 443, 443},
                                            {Proto::kUdp, 53, 53}}));
}

}  // namespace
}  // namespace egress::policy
