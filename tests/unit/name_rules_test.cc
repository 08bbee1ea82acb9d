// Name rules as the kernel matches them (policy/name_rules.h): the reversed
// dns_names keys, pattern ids, the rules entries they compile to, and name
// peers in policy files and in the rule text.
#include "userspace/policy/name_rules.h"

#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string KeyText(const egress_dns_name_key& k) {
  return std::string(k.name, strnlen(k.name, sizeof(k.name)));
}

// The kernel's LPM lookup over dns_names entries, for the question `name`
// as dns_learn.h builds it: every match, most specific first.
std::vector<uint64_t> Matches(
    const std::vector<std::pair<egress_dns_name_key, egress_dns_name_value>>&
        entries,
    const std::string& name) {
  egress_dns_name_key q{};
  for (size_t i = 0; i < name.size() && i < sizeof(q.name); ++i) {
    q.name[i] = name[name.size() - 1 - i];
  }
  uint32_t limit = 32 + 8 * std::min<uint32_t>(name.size() + 1, 252);
  std::vector<uint64_t> out;
  for (int round = 0; round < EGRESS_DNS_MAX_MATCHES; ++round) {
    const egress_dns_name_value* best = nullptr;
    for (const auto& [k, v] : entries) {
      if (k.prefixlen > limit) continue;
      const uint32_t bytes = (k.prefixlen - 32) / 8;
      if (std::memcmp(k.name, q.name, bytes) != 0) continue;
      if (best == nullptr || k.prefixlen > best->prefixlen) best = &v;
    }
    if (best == nullptr) break;
    out.push_back(best->pattern);
    if (best->prefixlen <= 40) break;
    limit = best->prefixlen - 1;
  }
  return out;
}

TEST(NameRulesTest, KeysAreReversedNames) {
  auto [exact, ev] = NameEntry(7, "api.example.com");
  EXPECT_EQ(exact.ruleset, 7u);
  EXPECT_EQ(KeyText(exact), "moc.elpmaxe.ipa");
  EXPECT_EQ(exact.prefixlen, 32u + 8 * 16);  // with the NUL: exact
  EXPECT_EQ(ev.prefixlen, exact.prefixlen);
  EXPECT_EQ(ev.pattern, NamePatternId("api.example.com"));
  auto [wild, wv] = NameEntry(7, "*.example.com");
  EXPECT_EQ(KeyText(wild), "moc.elpmaxe.");
  EXPECT_EQ(wild.prefixlen, 32u + 8 * 12);  // no NUL: strictly below
  EXPECT_NE(wv.pattern, ev.pattern);
  EXPECT_NE(NamePatternId(""), 0u);
}

TEST(NameRulesTest, WildcardEdgesAndSpecificity) {
  Rule exact = {.id = 1,
                .spec = "443/tcp",
                .ports = {Tcp(443)},
                .names = {"api.example.com"}};
  Rule wild = {.id = 2,
               .spec = "443/tcp",
               .ports = {Tcp(443)},
               .names = {"*.example.com"}};
  Rule deeper = {.id = 3,
                 .spec = "443/tcp",
                 .ports = {Tcp(443)},
                 .names = {"*.b.example.com"}};
  const auto entries = CompileNameEntries(9, {exact, wild, deeper});
  const uint64_t e = NamePatternId("api.example.com");
  const uint64_t w = NamePatternId("*.example.com");
  const uint64_t d = NamePatternId("*.b.example.com");
  EXPECT_THAT(Matches(entries, "example.com"), ElementsAre());
  EXPECT_THAT(Matches(entries, "api.example.com"), ElementsAre(e, w));
  EXPECT_THAT(Matches(entries, "a.example.com"), ElementsAre(w));
  EXPECT_THAT(Matches(entries, "a.b.example.com"), ElementsAre(d, w));
  EXPECT_THAT(Matches(entries, "x.api.example.com"), ElementsAre(w));
  EXPECT_THAT(Matches(entries, "myexample.com"), ElementsAre());
  EXPECT_THAT(Matches(entries, "b.example.com"), ElementsAre(w));
}

TEST(NameRulesTest, CompileKeysRulesByPatternNotAnywhere) {
  Rule r = {.id = 5,
            .spec = "any",
            .ports = {Tcp(0, 65535), Udp(0, 65535), kIcmp},
            .names = {"*.tracker.example"}};
  r.action = Action::kDeny;
  absl::StatusOr<CompiledRuleset> c = Compile(3, {r});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->flags & EGRESS_TF_NAME_RULES);
  ASSERT_EQ(c->names.size(), 1u);
  ASSERT_EQ(c->rules.size(), 2u);  // tcp and udp; icmp is for addresses only
  for (const auto& [k, v] : c->rules) {
    EXPECT_EQ(k.family, EGRESS_FAMILY_NAME);
    EXPECT_EQ(k.prefixlen, uint32_t{EGRESS_RULE_KEY_FIXED_BITS} + 128);
    uint64_t pattern = 0;
    std::memcpy(&pattern, k.addr, 8);
    EXPECT_EQ(pattern, NamePatternId("*.tracker.example"));
    EXPECT_EQ(v.verdict, EGRESS_VERDICT_DENY);
    EXPECT_EQ(v.rule_id, 5u);
  }
  // A names-only rule matches no address.
  std::array<uint8_t, 16> a{};
  a[0] = 10;
  EXPECT_EQ(Evaluate(*c, 3, IPPROTO_TCP, 443, 4, a).rule_id, 0u);
  EXPECT_FALSE(RuleMatches(r, IPPROTO_TCP, 443, 4, a));
}

TEST(NameRulesTest, RejectsBadNames) {
  EXPECT_FALSE(CanonicalRuleName("a.*.example.com").ok());
  EXPECT_FALSE(CanonicalRuleName("exa mple.com").ok());
  EXPECT_FALSE(
      CanonicalRuleName(std::string(63, 'a') + "." + std::string(63, 'b') +
                        "." + std::string(63, 'c') + "." + std::string(62, 'd'))
          .ok());  // 254 characters: over the key's 251
  EXPECT_EQ(*CanonicalRuleName("API.Example.COM."), "api.example.com");
  Rule r = {.id = 1,
            .spec = "443/tcp",
            .ports = {Tcp(443)},
            .names = {"API.example.com"}};
  EXPECT_FALSE(Compile(1, {r}).ok());
}

using ::egress::testing::kInlinePolicyHead;

TEST(NameRulesTest, PolicyFilePeersAndExportRoundTrip) {
  absl::StatusOr<Policy> p =
      ParsePolicy(absl::StrCat(kInlinePolicyHead, R"(  egress:
  - to:
    - domainNames: ["api.example.com", "*.Example.com"]
    - ipBlock: {cidr: 10.0.0.0/8}
    ports: [{port: 443, protocol: TCP}]
)"),
                  "t.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->rules.size(), 1u);
  const Rule& r = p->rules[0];
  EXPECT_THAT(r.names, ElementsAre("api.example.com", "*.example.com"));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.0/8")));
  EXPECT_THAT(FormatRule(r), HasSubstr("to 10.0.0.0/8 api.example.com "
                                       "*.example.com"));
  absl::StatusOr<Rule> back = RuleFromJson(RuleToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->names, r.names);

  absl::StatusOr<Policy> bad = ParsePolicy(
      absl::StrCat(kInlinePolicyHead,
                   "  egress:\n  - to: [{domainNames: [\"a..b\"]}]\n"),
      "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("domainNames"));
}

}  // namespace
}  // namespace egress::policy
