#include "userspace/policy/policy_file.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/policy_file_path.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using ::egress::testing::kInlinePolicyHead;

// kInlinePolicyHead plus `rest` (starting at line 8).
std::string Doc(const std::string& rest) { return kInlinePolicyHead + rest; }

Policy MustParse(const std::string& text) {
  absl::StatusOr<Policy> p = ParsePolicy(text, "t.yaml");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : Policy{};
}

// The InvalidArgument message for `text`.
std::string Error(const std::string& text) {
  absl::StatusOr<Policy> p = ParsePolicy(text, "t.yaml");
  EXPECT_FALSE(p.ok());
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument)
      << p.status();
  return std::string(p.status().message());
}

// The repository's policies/ directory, found from this file's path.
std::string PoliciesDir() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / ".." /
          "policies")
      .lexically_normal()
      .string();
}

// A fresh directory under TMPDIR, removed with its contents afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base ? base : "/tmp", "/policy_file_test.XXXXXX");
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

std::string Named(const std::string& name, const std::string& target) {
  return absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
      "  name: ",
      name, "\nspec:\n  target:\n    ", target, "\n");
}

// ---------------------------------------------------------------------------
// Well-formed policies.

// Input on which yaml-cpp 0.7's LoadAll never ends (it hands out empty
// documents forever, growing without bound) is an error naming the file.
TEST(ParsePolicyTest, InputTheYamlParserLoopsOnIsAnError) {
  for (const char* text : {",\n", ",", "- a\n,\n", "---\n,\n"}) {
    absl::StatusOr<Policy> p = ParsePolicy(text, "t.yaml");
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("t.yaml:"))
        << text;
  }
}

// Found by tests/fuzz/targets/policy_fuzzer.cc: an annotation holding a byte
// that is not UTF-8 ("\x99") parsed, but WritePolicy (export) wrote it as
// U+FFFD, so the exported file said something else. YAML is UTF-8 text; other
// bytes are an error naming their line and column.
TEST(ParsePolicyTest, TextThatIsNotUtf8IsAnErrorWithItsPosition) {
  const std::string text = Named("t", "systemdUnit: t") +
                           "metadata:\n  annotations: {d: \"x\x99y\"}\n";
  absl::StatusOr<Policy> p = ParsePolicy(text, "t.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("t.yaml:9:22: not UTF-8 text"));
  // UTF-8 beyond ASCII is text like any other.
  EXPECT_TRUE(ParsePolicy(Named("t", "systemdUnit: t") +
                              "# caf\xc3\xa9 \xf0\x9f\x98\x80\n",
                          "t.yaml")
                  .ok());
  for (const char* bad :
       {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_FALSE(
        ParsePolicy(Named("t", "systemdUnit: t") + "# " + bad + "\n", "t.yaml")
            .ok())
        << bad;
  }
}

TEST(ParsePolicyTest, MinimalPolicyHasDefaults) {
  const Policy p = MustParse(kInlinePolicyHead);
  EXPECT_EQ(p.name, "t");
  EXPECT_EQ(p.file, "t.yaml");
  EXPECT_EQ(p.name_location, (SourceLocation{4, 9}));
  EXPECT_EQ(p.target, (PolicyTarget{TargetSource::kUnit, "t.service"}));
  EXPECT_EQ(p.target_location, (SourceLocation{7, 18}));
  EXPECT_EQ(p.mode, Mode::kEnforce);
  EXPECT_EQ(p.logging, LoggingLevel::kDenied);
  EXPECT_THAT(p.rules, IsEmpty());
  EXPECT_THAT(p.annotations, IsEmpty());
}

TEST(ParsePolicyTest, ModeLoggingAndAnnotations) {
  const Policy p = MustParse(R"(apiVersion: egress.dev/v1alpha1
kind: EgressPolicy
metadata:
  name: web-1.example_x@y
  annotations: {description: "a b", owner: team}
  labels: {app: web}
spec:
  target: {cgroupPath: system.slice/web.service/}
  mode: audit
  logging: all
)");
  EXPECT_EQ(p.name, "web-1.example_x@y");
  EXPECT_EQ(p.annotations.at("description"), "a b");
  EXPECT_EQ(p.annotations.at("owner"), "team");
  EXPECT_EQ(p.target,
            (PolicyTarget{TargetSource::kCgroup, "/system.slice/web.service"}));
  EXPECT_EQ(p.mode, Mode::kAudit);
  EXPECT_EQ(p.logging, LoggingLevel::kAll);
  EXPECT_EQ(MustParse(Doc("  logging: off\n")).logging, LoggingLevel::kOff);
}

TEST(ParsePolicyTest, Targets) {
  auto target = [](const std::string& yaml) {
    return MustParse(Named("t", yaml)).target;
  };
  EXPECT_EQ(target("systemdUnit: nginx"),
            (PolicyTarget{TargetSource::kUnit, "nginx.service"}));
  EXPECT_EQ(target("systemdUnit: user-1000.slice"),
            (PolicyTarget{TargetSource::kUnit, "user-1000.slice"}));
  EXPECT_EQ(target("systemdUnit: getty@tty1.service"),
            (PolicyTarget{TargetSource::kUnit, "getty@tty1.service"}));
  EXPECT_EQ(target("cgroupPath: /a/b"),
            (PolicyTarget{TargetSource::kCgroup, "/a/b"}));
  EXPECT_EQ(
      target("cgroupPattern: /system.slice/docker-*.scope"),
      (PolicyTarget{TargetSource::kPattern, "/system.slice/docker-*.scope"}));
  EXPECT_EQ(TargetKindName(TargetSource::kCgroup), "cgroupPath");
  EXPECT_EQ(TargetKindName(TargetSource::kUnit), "systemdUnit");
  EXPECT_EQ(TargetKindName(TargetSource::kPattern), "cgroupPattern");
  EXPECT_EQ(target("user: www-data"),
            (PolicyTarget{TargetSource::kUser, "www-data"}));
  EXPECT_EQ(target("user: 33"), (PolicyTarget{TargetSource::kUser, "33"}));
  EXPECT_EQ(target("user: \"4000000001\""),
            (PolicyTarget{TargetSource::kUser, "4000000001"}));
  EXPECT_EQ(TargetKindName(TargetSource::kUser), "user");
}

TEST(ParsePolicyTest, PortsEntries) {
  const Policy p = MustParse(Doc(R"(  egress:
  - ports: [{port: 443, protocol: TCP}]
  - ports: [{port: 53}]
  - ports: [{port: 1000, endPort: 2000, protocol: udp}]
  - ports: [{port: 8000, endPort: 8000, protocol: Any}]
  - ports: [{protocol: tcp}]
  - ports: [{}]
  - ports: [{port: smtp}]
  - ports: [{port: https}]
  - ports: [{port: dns, protocol: UDP}]
  - ports: [{port: https, protocol: ANY}]
  - ports: [{port: "8080"}]
  - ports: [{protocol: ICMP}]
  - icmp: true
  - ports: [{port: 80, protocol: TCP}, {port: https}, {port: 80}]
    icmp: true
  - raw: true
  - {}
  - ports: []
    to: []
)"));
  ASSERT_EQ(p.rules.size(), 17u);
  std::vector<std::string> specs;
  for (const Rule& r : p.rules) {
    EXPECT_EQ(r.id, 0u);
    EXPECT_EQ(r.action, Action::kAllow);
    EXPECT_THAT(r.destinations, IsEmpty());
    specs.push_back(r.spec);
  }
  EXPECT_THAT(p.rules[0].ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(p.rules[1].ports, ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(p.rules[2].ports, ElementsAre(Udp(1000, 2000)));
  EXPECT_THAT(p.rules[3].ports, ElementsAre(Tcp(8000), Udp(8000)));
  EXPECT_THAT(p.rules[4].ports, ElementsAre(Tcp(0, 65535)));
  EXPECT_THAT(p.rules[5].ports, ElementsAre(Tcp(0, 65535), Udp(0, 65535)));
  EXPECT_THAT(p.rules[6].ports, ElementsAre(Tcp(25)));
  EXPECT_THAT(p.rules[7].ports, ElementsAre(Tcp(443), Udp(443)));
  EXPECT_THAT(p.rules[8].ports, ElementsAre(Udp(53)));
  EXPECT_THAT(p.rules[9].ports, ElementsAre(Tcp(443), Udp(443)));
  EXPECT_THAT(p.rules[10].ports, ElementsAre(Tcp(8080), Udp(8080)));
  EXPECT_THAT(p.rules[11].ports, ElementsAre(kIcmp));
  EXPECT_THAT(p.rules[12].ports, ElementsAre(kIcmp));
  EXPECT_THAT(p.rules[13].ports,
              ElementsAre(Tcp(80), Tcp(443), Udp(443), Udp(80), kIcmp));
  EXPECT_THAT(p.rules[14].ports, ElementsAre(kRaw));
  EXPECT_THAT(p.rules[15].ports,
              ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  EXPECT_THAT(p.rules[16].ports,
              ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  EXPECT_THAT(specs, ElementsAre("443/tcp", "53", "1000-2000/udp", "8000/any",
                                 "tcp", "tcp,udp", "smtp", "https", "dns/udp",
                                 "https", "8080", "icmp", "icmp",
                                 "80/tcp,https,80,icmp", "raw", "any", "any"));
}

TEST(ParsePolicyTest, DestinationsNamesAndOrigins) {
  const Policy p = MustParse(Doc(R"(  egress:
  - name: a
    comment: first rule
    to:
    - ipBlock: {cidr: 10.0.0.0/8}
    - ipBlock: {cidr: "2001:db8::/32"}
    - ipBlock: {cidr: 10.0.0.0/8}
    - ipBlock: {cidr: 192.0.2.7}
    - ipBlock: {cidr: "::ffff:198.51.100.0/120"}
    ports: [{port: 22, protocol: TCP}]
  egressDeny:
  - comment: only a comment
    to: [{ipBlock: {cidr: 10.9.0.0/16}}]
  - name: c
)"));
  ASSERT_EQ(p.rules.size(), 3u);
  EXPECT_THAT(p.rules[0].destinations,
              ElementsAre(C("10.0.0.0/8"), C("2001:db8::/32"), C("192.0.2.7"),
                          C("198.51.100.0/24")));
  EXPECT_EQ(p.rules[0].comment, "a: first rule");
  EXPECT_EQ(p.rules[1].action, Action::kDeny);
  EXPECT_EQ(p.rules[1].comment, "only a comment");
  EXPECT_THAT(p.rules[1].ports,
              ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  EXPECT_EQ(p.rules[2].comment, "c");
  EXPECT_THAT(p.origins,
              ElementsAre(RuleOrigin{"a", Action::kAllow, 0, {9, 5}},
                          RuleOrigin{"", Action::kDeny, 0, {19, 5}},
                          RuleOrigin{"c", Action::kDeny, 1, {21, 5}}));
  EXPECT_EQ(p.origins[0].Path(), "spec.egress[0]");
  EXPECT_EQ(p.origins[2].Path(), "spec.egressDeny[1]");
}

// ---------------------------------------------------------------------------
// except: subtracted from the ipBlock (cidr_set_test.cc), never a deny
// rule.

TEST(ParsePolicyTest, ExceptNarrowsOnlyItsOwnIpBlock) {
  const Policy p = MustParse(Doc(R"(  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}
    ports: [{port: 443, protocol: TCP}]
  - to:
    - ipBlock: {cidr: 10.0.1.10/32}
    ports: [{port: 5432, protocol: TCP}]
)"));
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].action, Action::kAllow);
  EXPECT_THAT(p.rules[0].destinations,
              ElementsAre(C("0.0.0.0/5"), C("8.0.0.0/7"), C("11.0.0.0/8"),
                          C("12.0.0.0/6"), C("16.0.0.0/4"), C("32.0.0.0/3"),
                          C("64.0.0.0/2"), C("128.0.0.0/1")));
  // No deny rule is produced: the second rule still reaches its server.
  EXPECT_EQ(p.rules[1].action, Action::kAllow);
  const std::array<uint8_t, 16> db = C("10.0.1.10").addr;
  const std::array<uint8_t, 16> web = C("93.184.216.34").addr;
  EXPECT_FALSE(RuleMatches(p.rules[0], 6, 443, 4, db));
  EXPECT_TRUE(RuleMatches(p.rules[0], 6, 443, 4, web));
  EXPECT_TRUE(RuleMatches(p.rules[1], 6, 5432, 4, db));
}

// ---------------------------------------------------------------------------
// Validation: every message is exact.

TEST(ParsePolicyErrorTest, YamlSyntaxAndEmptyFiles) {
  EXPECT_EQ(Error("apiVersion: [a\n"),
            "t.yaml:2:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(Error("a: b\n  c: d\n"),
            "t.yaml:2:4: YAML syntax error: illegal map value");
  EXPECT_EQ(Error(""), "t.yaml:1:1: empty file: expected an EgressPolicy");
  EXPECT_EQ(Error("# only a comment\n"),
            "t.yaml:1:1: empty file: expected an EgressPolicy");
  EXPECT_EQ(Error(std::string(kInlinePolicyHead) + "---\n" + kInlinePolicyHead),
            "t.yaml:9:1: only one policy per file; found a second YAML "
            "document");
  EXPECT_EQ(Error("- a\n"), "t.yaml:1:1: expected a mapping, got a list");
}

TEST(ParsePolicyErrorTest, TopLevel) {
  EXPECT_EQ(Error("kind: EgressPolicy\n"),
            "t.yaml:1:1: missing field \"apiVersion\"");
  EXPECT_EQ(Error("apiVersion: v1\nkind: EgressPolicy\nmetadata: {}\nspec: "
                  "{}\n"),
            "t.yaml:1:13: apiVersion: expected \"egress.dev/v1alpha1\", got "
            "\"v1\"");
  EXPECT_EQ(Error("apiVersion: egress.dev/v1alpha1\nkind: NetworkPolicy\n"
                  "metadata: {}\nspec: {}\n"),
            "t.yaml:2:7: kind: expected \"EgressPolicy\", got "
            "\"NetworkPolicy\"");
  EXPECT_EQ(Error("apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\n"
                  "metadata: {}\nspec: {}\n"),
            "t.yaml:3:11: metadata: missing field \"name\"");
  EXPECT_EQ(Error("apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\n"
                  "metadata: {name: \"a b\"}\nspec: {}\n"),
            "t.yaml:3:18: metadata.name: bad name \"a b\": use 1-64 letters, "
            "digits, '-', '_', '.' or '@', not starting with '.'");
  EXPECT_EQ(Error("apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\n"
                  "metadata: {name: a}\nspec: {}\n"),
            "t.yaml:4:7: spec: missing field \"target\"");
  EXPECT_EQ(Error(Doc("  mode: block\n")),
            "t.yaml:8:9: spec.mode: expected enforce or audit, got \"block\"");
  EXPECT_EQ(Error(Doc("  logging: some\n")),
            "t.yaml:8:12: spec.logging: expected off, denied or all, got "
            "\"some\"");
  EXPECT_EQ(Error(Doc("  egress: {name: a}\n")),
            "t.yaml:8:11: spec.egress: expected a list, got a mapping");
}

TEST(ParsePolicyErrorTest, UnknownAndDuplicateFields) {
  EXPECT_EQ(Error(Doc("  egres: []\n")),
            "t.yaml:8:3: spec.egres: unknown field \"egres\" (did you mean "
            "\"egress\"?)");
  EXPECT_EQ(Error(Doc("  zzz: 1\n")),
            "t.yaml:8:3: spec.zzz: unknown field \"zzz\"; expected one of "
            "target, mode, logging, egress, egressDeny");
  EXPECT_EQ(Error(Doc("  egress:\n  - prots: []\n")),
            "t.yaml:9:5: spec.egress[0].prots: unknown field \"prots\" (did "
            "you mean \"ports\"?)");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, "
                      "exept: []}}]\n")),
            "t.yaml:9:39: spec.egress[0].to[0].ipBlock.exept: unknown field "
            "\"exept\" (did you mean \"except\"?)");
  EXPECT_EQ(Error(Doc("  egress:\n  - ports: [{port: 1, prot: TCP}]\n")),
            "t.yaml:9:23: spec.egress[0].ports[0].prot: unknown field "
            "\"prot\" (did you mean \"port\"?)");
  EXPECT_EQ(Error(Doc("  mode: audit\n  mode: enforce\n")),
            "t.yaml:9:3: spec.mode: duplicate field \"mode\"");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: []\n    to: []\n")),
            "t.yaml:10:5: spec.egress[0].to: duplicate field \"to\"");
  // NetworkPolicy and Cilium fields get a reason.
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{podSelector: {}}]\n")),
            "t.yaml:9:11: spec.egress[0].to[0].podSelector: unsupported "
            "field: selects pods, which a host enforcer cannot see; use "
            "ipBlock");
  EXPECT_EQ(Error(Doc("  egress:\n  - toFQDNs: [{matchName: a.example}]\n")),
            "t.yaml:9:5: spec.egress[0].toFQDNs: unsupported field: use to: "
            "[{domainNames: [\"api.example.com\", \"*.example.com\"]}]");
  EXPECT_EQ(Error(Doc("  defaultAction: allow\n")),
            "t.yaml:8:3: spec.defaultAction: unsupported field: the default "
            "is always deny; for a denylist write an allow rule with no to "
            "and no ports, plus egressDeny rules");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{}]\n")),
            "t.yaml:9:10: spec.egress[0].to[0]: missing field \"ipBlock\" or "
            "\"domainNames\"");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {except: []}}]\n")),
            "t.yaml:9:20: spec.egress[0].to[0].ipBlock: missing field "
            "\"cidr\"");
}

TEST(ParsePolicyErrorTest, Targets) {
  EXPECT_EQ(Error(Named("a", "{}")),
            "t.yaml:7:5: spec.target: expected one of cgroupPath, "
            "systemdUnit, cgroupPattern, user, container, selector, or "
            "namespace with podSelector or pod");
  EXPECT_EQ(Error(Named("a", "user: \"-x\"")),
            "t.yaml:7:11: spec.target.user: bad user \"-x\": use a uid "
            "(0-4294967294) or a user name (1-32 letters, digits, '_', '-' or "
            "'.', not starting with '-')");
  EXPECT_EQ(Error(Named("a", "user: 4294967295")),
            "t.yaml:7:11: spec.target.user: bad user \"4294967295\": use a "
            "uid (0-4294967294) or a user name (1-32 letters, digits, '_', "
            "'-' or '.', not starting with '-')");
  EXPECT_EQ(Error(Named("a", "user: [a]")),
            "t.yaml:7:11: spec.target.user: expected a value, got a list");
  EXPECT_EQ(Error(Named("a", "systemdUnit: a.service\n    cgroupPath: /a")),
            "t.yaml:8:5: spec.target.cgroupPath: a policy has exactly one "
            "target; systemdUnit is already given");
  EXPECT_EQ(Error(Named("a", "cgroupPath: /")),
            "t.yaml:7:17: spec.target.cgroupPath: the root cgroup cannot be a "
            "target");
  EXPECT_EQ(Error(Named("a", "cgroupPath: /a/../b")),
            "t.yaml:7:17: spec.target.cgroupPath: \"/a/../b\": empty, \".\" "
            "and \"..\" components are not allowed");
  EXPECT_EQ(Error(Named("a", "cgroupPath: /a//b")),
            "t.yaml:7:17: spec.target.cgroupPath: \"/a//b\": empty, \".\" and "
            "\"..\" components are not allowed");
  EXPECT_EQ(Error(Named("a", "cgroupPath: /system.slice/docker-*.scope")),
            "t.yaml:7:17: spec.target.cgroupPath: "
            "\"/system.slice/docker-*.scope\" has a wildcard; use "
            "cgroupPattern (--pattern) to match several cgroups, or write a "
            "literal *, ? or [ as [*], [?] or [[]");
  EXPECT_EQ(Error(Named("a", "cgroupPattern: /system.slice/x.scope")),
            "t.yaml:7:20: spec.target.cgroupPattern: \"/system.slice/x.scope\" "
            "has no wildcard (*, ? or [...]); use cgroupPath (--cgroup)");
  EXPECT_EQ(Error(Named("a", "cgroupPattern: /a/[bc")),
            "t.yaml:7:20: spec.target.cgroupPattern: \"/a/[bc\": unclosed "
            "\"[\"");
  EXPECT_EQ(Error(Named("a", "systemdUnit: backup.timer")),
            "t.yaml:7:18: spec.target.systemdUnit: \"backup.timer\": only "
            ".service, .scope, .slice, .socket, .mount and .swap units have a "
            "cgroup");
  EXPECT_EQ(Error(Named("a", "systemdUnit: getty@.service")),
            "t.yaml:7:18: spec.target.systemdUnit: \"getty@.service\" is a "
            "template; name an instance, e.g. \"foo@1.service\"");
  EXPECT_EQ(Error(Named("a", "systemdUnit: a/b.service")),
            "t.yaml:7:18: spec.target.systemdUnit: bad unit name "
            "\"a/b.service\": use letters, digits, '-', '_', '.', ':', '@' "
            "or '\\'");
  EXPECT_EQ(Error(Named("a", "systemdUnit: [a]")),
            "t.yaml:7:18: spec.target.systemdUnit: expected a value, got a "
            "list");
}

TEST(ParsePolicyErrorTest, Cidrs) {
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.256}}]\n")),
            "t.yaml:9:27: spec.egress[0].to[0].ipBlock.cidr: bad address "
            "'10.0.0.256'");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/33}}]\n")),
            "t.yaml:9:27: spec.egress[0].to[0].ipBlock.cidr: bad prefix "
            "length in '10.0.0.0/33': must be 0-32");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.1/8}}]\n")),
            "t.yaml:9:27: spec.egress[0].to[0].ipBlock.cidr: 10.0.0.1/8: host "
            "bits set; did you mean 10.0.0.0/8?");
  EXPECT_EQ(Error(Doc("  egress:\n  - to:\n    - ipBlock:\n        cidr: "
                      "10.0.0.0/8\n        except: [10.1.0.0/16, "
                      "192.0.2.0/24]\n")),
            "t.yaml:12:31: spec.egress[0].to[0].ipBlock.except[1]: "
            "192.0.2.0/24 is not strictly inside cidr 10.0.0.0/8");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, "
                      "except: [10.0.0.0/8]}}]\n")),
            "t.yaml:9:48: spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 "
            "is not strictly inside cidr 10.0.0.0/8");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, "
                      "except: [\"2001:db8::/32\"]}}]\n")),
            "t.yaml:9:48: spec.egress[0].to[0].ipBlock.except[0]: "
            "2001:db8::/32 is not strictly inside cidr 10.0.0.0/8");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/31, "
                      "except: [10.0.0.0/32, 10.0.0.1/32]}}]\n")),
            "t.yaml:9:48: spec.egress[0].to[0].ipBlock.except: the excepts "
            "cover all of 10.0.0.0/31; the ipBlock would match nothing");
}

TEST(ParsePolicyErrorTest, Ports) {
  auto port_error = [](const std::string& entry) {
    return Error(Doc("  egress:\n  - ports:\n    - " + entry + "\n"));
  };
  EXPECT_EQ(port_error("port: 0"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: port 0 is out of "
            "range 1-65535");
  EXPECT_EQ(port_error("port: 65536"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: port 65536 is out of "
            "range 1-65535");
  EXPECT_EQ(port_error("port: -1"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: port -1 is out of "
            "range 1-65535");
  EXPECT_EQ(port_error("port: 12x"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: bad port \"12x\": "
            "not a number");
  EXPECT_EQ(port_error("port: 1000-2000"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: bad port "
            "\"1000-2000\": write a range as port and endPort");
  EXPECT_EQ(port_error("port: 443/tcp"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: bad port "
            "\"443/tcp\": write the protocol in protocol");
  // 0443 reads as octal 291 (or a string, with an 8 or 9) in YAML 1.1.
  EXPECT_EQ(port_error("port: 0443"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: bad port \"0443\": "
            "a leading zero is ambiguous (YAML 1.1 reads it as octal 291); "
            "write 443");
  EXPECT_EQ(port_error("port: 080"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: bad port \"080\": "
            "a leading zero is ambiguous (YAML 1.1 reads it as a string); "
            "write 80");
  EXPECT_EQ(port_error("{port: 8000, endPort: 09000}"),
            "t.yaml:10:29: spec.egress[0].ports[0].endPort: bad endPort "
            "\"09000\": a leading zero is ambiguous (YAML 1.1 reads it as a "
            "string); write 9000");
  EXPECT_EQ(port_error("{port: 2000, endPort: 1000}"),
            "t.yaml:10:29: spec.egress[0].ports[0].endPort: endPort 1000 is "
            "below port 2000");
  EXPECT_EQ(port_error("{port: 2000, endPort: 70000}"),
            "t.yaml:10:29: spec.egress[0].ports[0].endPort: endPort 70000 is "
            "out of range 1-65535");
  EXPECT_EQ(port_error("{port: smtp, endPort: 30}"),
            "t.yaml:10:20: spec.egress[0].ports[0].endPort: endPort needs a "
            "numeric port, not service \"smtp\"");
  EXPECT_EQ(port_error("{endPort: 30}"),
            "t.yaml:10:8: spec.egress[0].ports[0].endPort: endPort needs a "
            "port");
  EXPECT_EQ(port_error("port: smpt"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: unknown service "
            "\"smpt\" (did you mean \"smtp\"?)");
  EXPECT_EQ(port_error("port: nosuchservice"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: unknown service "
            "\"nosuchservice\"");
  EXPECT_EQ(port_error("{port: ntp, protocol: TCP}"),
            "t.yaml:10:14: spec.egress[0].ports[0].port: service \"ntp\" has "
            "no TCP port");
  EXPECT_EQ(port_error("{port: 80, protocol: SCTP}"),
            "t.yaml:10:28: spec.egress[0].ports[0].protocol: unknown protocol "
            "\"SCTP\": expected TCP, UDP, ANY or ICMP");
  EXPECT_EQ(port_error("{port: 80, protocol: ICMP}"),
            "t.yaml:10:8: spec.egress[0].ports[0].port: ICMP has no ports");
  EXPECT_EQ(port_error("port: {a: 1}"),
            "t.yaml:10:13: spec.egress[0].ports[0].port: expected a value, "
            "got a mapping");
  EXPECT_EQ(Error(Doc("  egress:\n  - ports: 443\n")),
            "t.yaml:9:12: spec.egress[0].ports: expected a list, got \"443\"");
}

TEST(ParsePolicyErrorTest, RuleLevel) {
  EXPECT_EQ(Error(Doc("  egress:\n  - raw: true\n    icmp: true\n")),
            "t.yaml:10:5: spec.egress[0].icmp: a raw rule stands alone: it "
            "takes no to, ports or icmp");
  EXPECT_EQ(Error(Doc("  egress:\n  - raw: yes please\n")),
            "t.yaml:9:10: spec.egress[0].raw: expected true or false, got "
            "\"yes please\"");
}

// A boolean field takes a YAML boolean: a quoted "true" is a string to
// every YAML reader, so a tool typing the file would read another policy.
TEST(ParsePolicyErrorTest, BooleansMustBeYamlBooleansNotStrings) {
  EXPECT_EQ(Error(Doc("  egress:\n  - icmp: \"true\"\n")),
            "t.yaml:9:11: spec.egress[0].icmp: expected true or false, got "
            "the string \"true\": write true without quotes");
  EXPECT_EQ(Error(Doc("  egress:\n  - {icmp: 'false'}\n")),
            "t.yaml:9:12: spec.egress[0].icmp: expected true or false, got "
            "the string \"false\": write false without quotes");
  EXPECT_EQ(Error(Doc("  egressDeny:\n  - raw: \"True\"\n")),
            "t.yaml:9:10: spec.egressDeny[0].raw: expected true or false, got "
            "the string \"True\": write True without quotes");
  EXPECT_EQ(Error(Doc("  egress:\n  - raw: !!str true\n")),
            "t.yaml:9:10: spec.egress[0].raw: expected true or false, got "
            "the string \"true\": write true without quotes");
  // Not a YAML boolean in any schema, quoted or not.
  EXPECT_EQ(Error(Doc("  egress:\n  - icmp: tRUE\n")),
            "t.yaml:9:11: spec.egress[0].icmp: expected true or false, got "
            "\"tRUE\"");
  EXPECT_EQ(Error(Doc("  egress:\n  - icmp: yes\n")),
            "t.yaml:9:11: spec.egress[0].icmp: expected true or false, got "
            "\"yes\"");
  // The plain spellings of YAML 1.2's core schema are booleans.
  for (const char* word : {"true", "True", "TRUE"}) {
    const Policy p = MustParse(Doc(absl::StrCat("  egress:\n  - icmp: ", word,
                                                "\n  - raw: ", word, "\n")));
    ASSERT_EQ(p.rules.size(), 2u) << word;
  }
  EXPECT_EQ(MustParse(Doc("  egress:\n  - {icmp: FALSE, ports: [{port: "
                          "80}]}\n"))
                .rules.size(),
            1u);
  EXPECT_EQ(Error(Doc("  egress:\n  - name: dns\n  egressDeny:\n  - name: "
                      "dns\n")),
            "t.yaml:11:5: spec.egressDeny[0].name: duplicate rule name \"dns\" "
            "(first at line 9)");
  EXPECT_EQ(Error(Doc("  egress:\n  - name: \"\"\n")),
            "t.yaml:9:11: spec.egress[0].name: bad name \"\": use 1-64 "
            "letters, digits, '-', '_', '.' or '@', not starting with '.'");
}

// Field paths are written out only for an error (policy_file_path.h); these
// pin them down deep in a file, past the first rule and the first item of
// each list, in block and flow style.
TEST(ParsePolicyErrorTest, DeepFieldPaths) {
  const std::string rules = R"(  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.53/32}
    ports:
    - port: 53
  - to: [ipBlock: {cidr: 10.0.0.25/32}]
    ports: [{port: 25, protocol: TCP}]
  - name: third
    to:
    - ipBlock: {cidr: 192.168.0.0/16}
    - ipBlock:
        cidr: 10.0.0.0/8
        except:
        - 10.1.0.0/16
        - 10.2.0.0/16
  egressDeny:
  - to: [{ipBlock: {cidr: 203.0.113.250/32}}]
  - to:
    - domainNames: [api.example.com, b.example.com]
    ports:
    - port: 443
    - {port: 8000, endPort: 8080, protocol: UDP}
)";
  EXPECT_EQ(MustParse(Doc(rules)).rules.size(), 5u);
  // Line 30 is the first after `rules`.
  EXPECT_EQ(Error(Doc(rules + "    - port: 70000\n")),
            "t.yaml:30:13: spec.egressDeny[1].ports[2].port: port 70000 is "
            "out of range 1-65535");
  EXPECT_EQ(Error(Doc(rules + "    - port: smpt\n")),
            "t.yaml:30:13: spec.egressDeny[1].ports[2].port: unknown service "
            "\"smpt\" (did you mean \"smtp\"?)");
  EXPECT_EQ(Error(Doc(rules + "    - {port: 9000, endPort: 100}\n")),
            "t.yaml:30:29: spec.egressDeny[1].ports[2].endPort: endPort 100 "
            "is below port 9000");
  EXPECT_EQ(Error(Doc(rules + "    - ipBlock: {cidr: 10.0.0.0/8}\n")),
            "t.yaml:30:7: spec.egressDeny[1].ports[2].ipBlock: unknown field "
            "\"ipBlock\"; expected one of port, endPort, protocol");
  EXPECT_EQ(Error(Doc(rules + "    icmp: maybe\n")),
            "t.yaml:30:11: spec.egressDeny[1].icmp: expected true or false, "
            "got \"maybe\"");
  EXPECT_EQ(Error(Doc(rules + "  - name: third\n")),
            "t.yaml:30:5: spec.egressDeny[2].name: duplicate rule name "
            "\"third\" (first at line 15)");
  EXPECT_EQ(Error(Doc(rules + "  - unix: [/run/a.sock, php.sock]\n")),
            "t.yaml:30:25: spec.egressDeny[2].unix[1]: unix address "
            "'php.sock' must be an absolute path or @name");

  // The third rule's second peer's second except.
  std::string bad = rules;
  bad.replace(bad.find("10.2.0.0/16"), 11, "11.0.0.0/16");
  EXPECT_EQ(Error(Doc(bad)),
            "t.yaml:22:11: spec.egress[2].to[1].ipBlock.except[1]: "
            "11.0.0.0/16 is not strictly inside cidr 10.0.0.0/8");
  bad = rules;
  bad.replace(bad.find("b.example.com"), 13, "\"bad name\"");
  EXPECT_EQ(Error(Doc(bad)),
            "t.yaml:26:38: spec.egressDeny[1].to[0].domainNames[1]: bad "
            "domain name \"bad name\": use letters, digits, '-' and '_' "
            "between dots");
}

// Quoted or not, an address or range under domainNames is no name: taken as
// one it would wait for DNS answers that never come instead of covering the
// addresses meant. The error says where addresses go.
TEST(ParsePolicyErrorTest, AddressesUnderDomainNamesAreRefused) {
  for (const char* word : {"10.0.0.5", "\"10.0.0.256\"", "192.0.2.0-255"}) {
    const std::string message = Error(Doc(
        absl::StrCat("  egress:\n  - to: [{domainNames: [", word, "]}]\n")));
    EXPECT_THAT(message, HasSubstr("spec.egress[0].to[0].domainNames[0]: bad "
                                   "domain name"))
        << word;
    EXPECT_THAT(message, HasSubstr("looks like an address or address range"))
        << word;
    EXPECT_THAT(message, HasSubstr("ipBlock.cidr")) << word;
  }
  EXPECT_THAT(
      MustParse(Doc("  egress:\n  - to: [{domainNames: [a1.example.com, "
                    "\"*.example.com\", example.xn--p1ai]}]\n"))
          .rules[0]
          .names,
      ElementsAre("a1.example.com", "*.example.com", "example.xn--p1ai"));
}

TEST(ParsePolicyErrorTest, FieldPathsOutsideRules) {
  constexpr char kTop[] =
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\n";
  EXPECT_EQ(Error(absl::StrCat(kTop, R"(metadata:
  name: t
  annotations:
    owner: [a, b]
spec:
  target: {systemdUnit: t.service}
)")),
            "t.yaml:6:12: metadata.annotations.owner: expected a value, got a "
            "list");
  EXPECT_EQ(Error(absl::StrCat(kTop, R"(metadata: {name: t}
spec:
  target:
    namespace: web
    podSelector: {matchExpressions: []}
)")),
            "t.yaml:7:19: spec.target.podSelector.matchExpressions: not "
            "supported; select with matchLabels");
  EXPECT_EQ(Error(absl::StrCat(kTop, R"(metadata: {name: t}
spec:
  target:
    selector:
      matchLabels: {app: [x]}
)")),
            "t.yaml:7:26: spec.target.selector.matchLabels.app: expected a "
            "value, got a list");
  EXPECT_EQ(Error(absl::StrCat(kTop, R"(metadata: {name: t}
spec:
  target: {cgroupPath: /a, systemdUnit: b}
)")),
            "t.yaml:5:28: spec.target.systemdUnit: a policy has exactly one "
            "target; cgroupPath is already given");
  // A field of the document itself has no leading dot.
  EXPECT_EQ(Error(absl::StrCat(kTop, R"(metadata: {name: t}
spec: {target: {user: root}}
ingress: []
)")),
            "t.yaml:5:1: ingress: unsupported field: egress only controls "
            "outgoing connections");
}

// A pod selector's `matchLabels:` with nothing after it read as no labels:
// every pod of the namespace, the widest reading of labels lost in an
// edit. Refused; {} or leaving it out still means every pod.
TEST(ParsePolicyErrorTest, PodSelectorMatchLabelsWithNoValueIsRefused) {
  constexpr char kTop[] =
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata: {name: "
      "t}\nspec:\n  target:\n    namespace: shop\n";
  EXPECT_EQ(Error(absl::StrCat(kTop, "    podSelector:\n      matchLabels:\n")),
            "t.yaml:8:7: spec.target.podSelector.matchLabels: matchLabels: has "
            "no value; omit the key (or write {}) to mean every pod of the "
            "namespace");
  EXPECT_THAT(Error(absl::StrCat(kTop, "    podSelector: {matchLabels: ~}\n")),
              HasSubstr("spec.target.podSelector.matchLabels: matchLabels: "
                        "has no value"));
  for (const char* every :
       {"    podSelector: {}\n", "    podSelector: {matchLabels: {}}\n"}) {
    const Policy p = MustParse(absl::StrCat(kTop, every));
    EXPECT_EQ(p.target.kind, TargetSource::kPodSelector) << every;
  }
}

TEST(FieldPathTest, FieldsAndItems) {
  const FieldPath document;
  EXPECT_EQ(document.Text(), "");
  const FieldPath spec = document.Field("spec");
  EXPECT_EQ(spec.Text(), "spec");
  const FieldPath deny = spec.Field("egressDeny");
  const FieldPath rule = deny.Item(12345);
  EXPECT_EQ(rule.Text(), "spec.egressDeny[12345]");
  const FieldPath to = rule.Field("to");
  const FieldPath peer = to.Item(0);
  const FieldPath block = peer.Field("ipBlock");
  EXPECT_EQ(block.Field("except").Text(),
            "spec.egressDeny[12345].to[0].ipBlock.except");
  // After text already there, as in a message.
  std::string message = "t.yaml:1:1: ";
  block.AppendTo(&message);
  EXPECT_EQ(message, "t.yaml:1:1: spec.egressDeny[12345].to[0].ipBlock");
  // A key may be empty ("": x); it still gets its dot.
  EXPECT_EQ(spec.Field("").Text(), "spec.");
  EXPECT_EQ(document.Field("").Text(), "");
  EXPECT_EQ(document.Item(2).Text(), "[2]");
}

TEST(ParsePolicyErrorTest, NothingEscapesOnOddInput) {
  // Anchors, aliases, tags and complex keys must not throw.
  EXPECT_EQ(Error("? [a]\n: b\n"),
            "t.yaml:1:3: field names must be plain words");
  const Policy p = MustParse(Doc(R"(  egress:
  - &r {ports: [{port: 22, protocol: TCP}]}
  - *r
)"));
  EXPECT_EQ(p.rules.size(), 2u);
}

// egressd runs `systemctl show UNIT` as root: a unit starting with '-'
// would be read there as an option (-H: another host, -M: a container).
TEST(ParsePolicyErrorTest, UnitNamesStartingWithADashAreRefused) {
  EXPECT_EQ(Error(Named("a", "systemdUnit: \"-Hroot@192.0.2.1:x.service\"")),
            "t.yaml:7:18: spec.target.systemdUnit: bad unit name "
            "\"-Hroot@192.0.2.1:x.service\": starts with '-', which "
            "systemctl reads as an option");
  EXPECT_EQ(Error(Named("a", "systemdUnit: \"--system\"")),
            "t.yaml:7:18: spec.target.systemdUnit: bad unit name "
            "\"--system\": starts with '-', which systemctl reads as an "
            "option");
  // A dash inside the name is systemd's own escape for '/'.
  EXPECT_EQ(MustParse(Named("a", "systemdUnit: dev-sda1.swap")).target.value,
            "dev-sda1.swap");
}

// Names are matched on DNS answers for tcp and udp only; with icmp alone
// the compiled rule would keep only "icmp allowed": ping sockets to every
// address. `egressctl allow icmp NAME` is refused the same way.
TEST(ParsePolicyErrorTest, NameRulesWithOnlyIcmpAreRefused) {
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{domainNames: "
                      "[ping.example.com]}]\n    icmp: true\n")),
            "t.yaml:10:5: spec.egress[0].icmp: a name takes tcp and udp "
            "ports, not icmp: \"ping.example.com\"");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{domainNames: [a.example.com]}, "
                      "{ipBlock: {cidr: 192.0.2.0/24}}]\n    ports: "
                      "[{protocol: ICMP}]\n")),
            "t.yaml:10:5: spec.egress[0].ports: a name takes tcp and udp "
            "ports, not icmp: \"a.example.com\"");
  EXPECT_EQ(Error(Doc("  egressDeny:\n  - to: [{domainNames: "
                      "[x.example.com]}]\n    icmp: true\n")),
            "t.yaml:10:5: spec.egressDeny[0].icmp: a name takes tcp and udp "
            "ports, not icmp: \"x.example.com\"");
  // With a tcp or udp port, or none (any), a name is fine; icmp then goes
  // to the rule's addresses.
  Policy p =
      MustParse(Doc("  egress:\n  - to: [{domainNames: "
                    "[a.example.com]}]\n    ports: [{port: 443}]\n    "
                    "icmp: true\n  - to: [{domainNames: "
                    "[b.example.com]}]\n"));
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_THAT(p.rules[1].names, ElementsAre("b.example.com"));
}

// `list` prints a comment as it is: a line break in one could show a rule
// line that is not there.
TEST(ParsePolicyErrorTest, CommentsWithControlCharactersAreRefused) {
  EXPECT_EQ(Error(Doc("  egress:\n  - comment: \"a\\nb\"\n")),
            "t.yaml:9:14: spec.egress[0].comment: the comment holds a control "
            "character (U+000A) at byte 2; a comment is one line of printable "
            "text");
  EXPECT_EQ(Error(Doc("  egress:\n  - ports: [{port: 53}]\n  - comment: "
                      "\"x\\e[2Ky\"\n")),
            "t.yaml:10:14: spec.egress[1].comment: the comment holds a control "
            "character (U+001B) at byte 2; a comment is one line of printable "
            "text");
  EXPECT_THAT(Error(Doc("  egress:\n  - comment: \"a\\tb\"\n")),
              HasSubstr("control character (U+0009) at byte 2"));
  EXPECT_THAT(Error(Doc("  egress:\n  - comment: \"ab\\x7f\"\n")),
              HasSubstr("control character (U+007F) at byte 3"));
  EXPECT_EQ(MustParse(Doc("  egress:\n  - comment: \"caf\\u00e9 ok\"\n"))
                .rules[0]
                .comment,
            "caf\xc3\xa9 ok");
}

// C1 controls (U+0080-U+009F) are refused as on the command line
// (CheckCommentText): some terminals act on them as on ESC sequences, and
// `list` prints the comment as it is.
TEST(ParsePolicyErrorTest, CommentsWithC1ControlsAreRefused) {
  EXPECT_EQ(Error(Doc("  egress:\n  - comment: \"a\\u009b2J\"\n")),
            "t.yaml:9:14: spec.egress[0].comment: the comment holds a control "
            "character (U+009B) at byte 2; a comment is one line of printable "
            "text");
  EXPECT_THAT(Error(Doc("  egress:\n  - comment: \"x\\u0085y\"\n")),
              HasSubstr("control character (U+0085) at byte 2"));
  EXPECT_THAT(Error(Doc("  egressDeny:\n  - name: a\n    comment: "
                        "\"\\u0080\"\n")),
              HasSubstr("spec.egressDeny[0].comment: the comment holds a "
                        "control character (U+0080) at byte 1"));
  // Around the block: U+007E and U+00A0 are printable.
  EXPECT_EQ(MustParse(Doc("  egress:\n  - comment: \"~\\u00a0\\u00ff\"\n"))
                .rules[0]
                .comment,
            "~\xc2\xa0\xc3\xbf");
}

// `to:` or `ports:` with nothing after it is refused, as `allow 443 to` is:
// read as omitted it would widen the rule to anywhere or every port.
// Omitting the key, or writing [], keeps its meaning (docs/policy.md).
TEST(ParsePolicyErrorTest, ToAndPortsWithNoValueAreRefused) {
  EXPECT_EQ(Error(Doc("  egress:\n  - name: api\n    to:\n    ports: [{port: "
                      "443}]\n")),
            "t.yaml:10:5: spec.egress[0].to: to: has no value; omit the key "
            "(or write []) to mean anywhere");
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n"
                      "    ports:\n")),
            "t.yaml:10:5: spec.egress[0].ports: ports: has no value; omit the "
            "key (or write []) to mean every port and icmp");
  EXPECT_THAT(Error(Doc("  egressDeny:\n  - to: ~\n")),
              HasSubstr("t.yaml:9:5: spec.egressDeny[0].to: to: has no value"));
  EXPECT_THAT(Error(Doc("  egress:\n  - {to: null, ports: [{port: 53}]}\n")),
              HasSubstr("spec.egress[0].to: to: has no value"));
  EXPECT_THAT(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n"
                        "    ports: null\n")),
              HasSubstr("spec.egress[0].ports: ports: has no value"));
  // Omitted or [] still mean anywhere and every port.
  for (const char* rule : {"  - ports: [{port: 443}]\n",
                           "  - to: []\n    ports: [{port: 443}]\n"}) {
    const Policy p = MustParse(Doc(absl::StrCat("  egress:\n", rule)));
    ASSERT_EQ(p.rules.size(), 1u) << rule;
    EXPECT_TRUE(p.rules[0].destinations.empty()) << rule;
    EXPECT_TRUE(p.rules[0].names.empty()) << rule;
  }
  for (const char* rule : {"  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n",
                           "  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n    "
                           "ports: []\n"}) {
    EXPECT_EQ(MustParse(Doc(absl::StrCat("  egress:\n", rule))).rules[0].spec,
              "any")
        << rule;
  }
}

// `egressDeny:` and `except:` with nothing after them were read as empty
// lists: a deny list or an except list lost in an edit silently dropped
// every deny rule, or widened an ipBlock to its whole cidr. Refused like
// `to:` and `ports:`; omitted or [] keep their meaning.
TEST(ParsePolicyErrorTest, EgressDenyAndExceptWithNoValueAreRefused) {
  EXPECT_EQ(Error(Doc("  egressDeny:\n")),
            "t.yaml:8:3: spec.egressDeny: egressDeny: has no value; omit the "
            "key (or write []) to mean no deny rules");
  EXPECT_THAT(Error(Doc("  egress: []\n  egressDeny: ~\n")),
              HasSubstr("t.yaml:9:3: spec.egressDeny: egressDeny: has no "
                        "value"));
  EXPECT_THAT(Error(Doc("  egressDeny: null\n  egress: []\n")),
              HasSubstr("spec.egressDeny: egressDeny: has no value"));
  EXPECT_EQ(Error(Doc("  egress:\n  - to: [{ipBlock: {cidr: 0.0.0.0/0, "
                      "except: ~}}]\n")),
            "t.yaml:9:38: spec.egress[0].to[0].ipBlock.except: except: has no "
            "value; omit the key (or write []) to mean all of the cidr");
  EXPECT_THAT(Error(Doc("  egress:\n  - to:\n    - ipBlock:\n        cidr: "
                        "0.0.0.0/0\n        except:\n    ports: [{port: "
                        "443}]\n")),
              HasSubstr("t.yaml:12:9: spec.egress[0].to[0].ipBlock.except: "
                        "except: has no value"));
  EXPECT_THAT(Error(Doc("  egressDeny:\n  - to:\n    - ipBlock: {cidr: "
                        "10.0.0.0/8, except: null}\n")),
              HasSubstr("spec.egressDeny[0].to[0].ipBlock.except: except: has "
                        "no value"));
  // The other list-valued keys were already refused without a value.
  EXPECT_THAT(Error(Doc("  egress:\n  - to: [{domainNames: ~}]\n")),
              HasSubstr("spec.egress[0].to[0].domainNames: expected a list"));
  EXPECT_THAT(Error(Doc("  egress:\n  - unix:\n")),
              HasSubstr("spec.egress[0].unix: expected at least one socket"));

  // Omitted or [] keep their meaning.
  Policy p = MustParse(Doc("  egress: []\n  egressDeny: []\n"));
  EXPECT_THAT(p.rules, IsEmpty());
  p =
      MustParse(Doc("  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, "
                    "except: []}}]\n"));
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_THAT(p.rules[0].destinations, ElementsAre(C("10.0.0.0/8")));
  // `egress:` alone is no allow rules: it cannot widen the policy.
  p =
      MustParse(Doc("  egress:\n  egressDeny: [{to: [{ipBlock: {cidr: "
                    "10.0.0.0/8}}]}]\n"));
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].action, Action::kDeny);
}

// docs/policy.md: duplicate keys are errors, also in metadata's mappings.
TEST(ParsePolicyErrorTest, DuplicateAnnotationsAndLabelsAreRefused) {
  const std::string head =
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
      "  name: t\n";
  const std::string spec = "spec:\n  target:\n    systemdUnit: t.service\n";
  EXPECT_EQ(Error(head + "  annotations:\n    owner: a\n    owner: b\n" + spec),
            "t.yaml:7:5: metadata.annotations.owner: duplicate annotation");
  EXPECT_EQ(Error(head + "  labels: {app: a, tier: x, app: b}\n" + spec),
            "t.yaml:5:29: metadata.labels.app: duplicate label");
  Policy p = MustParse(head + "  annotations: {a: 1, b: 2}\n" + spec);
  EXPECT_EQ(p.annotations.size(), 2u);
}

// fnmatch reads an unclosed "[" as a literal: every "[" of a component must
// close, not only the first.
TEST(ParsePolicyErrorTest, EveryBracketOfACgroupPatternMustClose) {
  EXPECT_EQ(Error(Named("a",
                        "cgroupPattern: "
                        "\"/system.slice/docker-[0-9]*[.scope\"")),
            "t.yaml:7:20: spec.target.cgroupPattern: "
            "\"/system.slice/docker-[0-9]*[.scope\": unclosed \"[\"");
  for (const char* bad :
       {"/a/x[ab]y[", "/a/[[:digit:]", "/a/[!]", "/a/[]", "/x[ab]/y[c"}) {
    EXPECT_THAT(Error(Named("a", absl::StrCat("cgroupPattern: \"", bad, "\""))),
                HasSubstr("unclosed \"[\""))
        << bad;
  }
  for (const char* ok : {"/a/[]]x", "/a/[!]]x", "/a/x[0-9]y[a-f]", "/a/[[:]",
                         "/a/[[:digit:]]*", "/a/[[.a.]]b", "/a/x]*"}) {
    absl::StatusOr<Policy> p = ParsePolicy(
        Named("a", absl::StrCat("cgroupPattern: \"", ok, "\"")), "t.yaml");
    EXPECT_TRUE(p.ok()) << ok << ": " << p.status();
  }
}

// ---------------------------------------------------------------------------
// Loading files and directories.

TEST(LoadPoliciesTest, DirectoryIsSortedAndSkipsOtherFiles) {
  TempDir dir;
  dir.Write("b.yml", Named("bee", "systemdUnit: b.service"));
  dir.Write("a.yaml", Named("ay", "cgroupPath: /a"));
  dir.Write("notes.txt", "not yaml");
  dir.Write(".hidden", "broken: [");
  std::filesystem::create_directory(dir.path() + "/k8s");
  dir.Write("k8s/x.yaml", "broken: [");
  absl::StatusOr<std::vector<Policy>> got = LoadPolicies(dir.path());
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].name, "ay");
  EXPECT_EQ((*got)[0].file, dir.path() + "/a.yaml");
  EXPECT_EQ((*got)[1].name, "bee");
  EXPECT_EQ((*got)[1].file, dir.path() + "/b.yml");

  absl::StatusOr<std::vector<Policy>> one = LoadPolicies(dir.path() + "/b.yml");
  ASSERT_OK(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].file, dir.path() + "/b.yml");
}

TEST(LoadPoliciesTest, DuplicatesAcrossFilesNameBothFiles) {
  TempDir dir;
  dir.Write("a.yaml", Named("web", "systemdUnit: nginx.service"));
  dir.Write("b.yaml", Named("web", "cgroupPath: /b"));
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                absl::StrCat(dir.path(),
                             "/b.yaml:4:9: metadata.name: policy \"web\" is "
                             "also defined in ",
                             dir.path(), "/a.yaml:4:9"));
  dir.Write("b.yaml", Named("other", "systemdUnit: nginx"));
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                absl::StrCat(dir.path(),
                             "/b.yaml:7:18: spec.target.systemdUnit: "
                             "\"nginx.service\" is already the target of "
                             "policy \"web\" (",
                             dir.path(), "/a.yaml:7:18)"));
}

TEST(LoadPoliciesTest, ErrorsAreAllOrNothing) {
  TempDir dir;
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() + ": no *.yaml or *.yml files");
  EXPECT_STATUS(LoadPolicies(dir.path() + "/missing.yaml"),
                absl::StatusCode::kNotFound,
                dir.path() +
                    "/missing.yaml: cannot read: No such file or "
                    "directory");
  dir.Write("a.yaml", Named("a", "systemdUnit: a.service"));
  dir.Write("b.yaml", Named("b", "systemdUnit: b.service") + "  mode: x\n");
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() +
                    "/b.yaml:8:9: spec.mode: expected enforce or "
                    "audit, got \"x\"");
  dir.Write("b.yaml", std::string(17 << 20, '#'));
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() + "/b.yaml: larger than 16 MiB; not a policy file");
}

// A policy file left out is a target left unenforced: every *.yaml and
// *.yml entry loads, or the whole set is refused naming the entry.
TEST(LoadPoliciesTest, YamlEntriesThatAreNotPolicyFilesAreErrors) {
  namespace fs = std::filesystem;
  TempDir dir;
  dir.Write("a.yaml", Named("a", "systemdUnit: a.service"));
  dir.Write("real.yaml", Named("linked", "cgroupPath: /linked"));
  fs::create_directory(dir.path() + "/sub");
  fs::create_symlink("../real.yaml", dir.path() + "/sub/b.yaml");
  // A symlink to a policy file loads like the file.
  ASSERT_OK_AND_ASSIGN(std::vector<Policy> linked,
                       LoadPolicies(dir.path() + "/sub"));
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].name, "linked");

  fs::create_symlink(dir.path() + "/gone.yaml", dir.path() + "/db.yaml");
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() +
                    "/db.yaml: a symlink to nothing, not a policy "
                    "file");
  fs::remove(dir.path() + "/db.yaml");

  fs::create_directory(dir.path() + "/dir.yml");
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() + "/dir.yml: not a regular file");
  fs::remove(dir.path() + "/dir.yml");

  dir.Write(".hidden.yaml", Named("hidden", "cgroupPath: /h"));
  EXPECT_STATUS(LoadPolicies(dir.path()), absl::StatusCode::kInvalidArgument,
                dir.path() +
                    "/.hidden.yaml: a hidden file is not read as a "
                    "policy; rename it or move it out of the "
                    "directory");
  fs::remove(dir.path() + "/.hidden.yaml");
  ASSERT_OK_AND_ASSIGN(std::vector<Policy> all, LoadPolicies(dir.path()));
  EXPECT_EQ(all.size(), 2u);
}

TEST(CgroupPatternMatchesTest, ComponentsAndDoubleStar) {
  EXPECT_TRUE(CgroupPatternMatches("/system.slice/docker-*.scope",
                                   "/system.slice/docker-ab12.scope"));
  EXPECT_FALSE(CgroupPatternMatches("/system.slice/docker-*.scope",
                                    "/system.slice/docker-a/b.scope"));
  EXPECT_FALSE(CgroupPatternMatches("/system.slice/docker-*.scope",
                                    "/system.slice/docker-ab12.scope/x"));
  EXPECT_TRUE(CgroupPatternMatches("/a/?/[bc]d", "/a/x/cd"));
  EXPECT_FALSE(CgroupPatternMatches("/a/[!b]", "/a/b"));
  const char* k8s = "/kubepods.slice/**/cri-containerd-*.scope";
  EXPECT_TRUE(CgroupPatternMatches(
      k8s, "/kubepods.slice/kubepods-pod1.slice/cri-containerd-1.scope"));
  EXPECT_TRUE(CgroupPatternMatches(
      k8s,
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2.slice/"
      "cri-containerd-2.scope"));
  EXPECT_TRUE(
      CgroupPatternMatches(k8s, "/kubepods.slice/cri-containerd-3.scope"));
  EXPECT_FALSE(CgroupPatternMatches(k8s, "/kubepods.slice/x/other.scope"));
  // Backslash is literal (systemd's \x2d escapes).
  EXPECT_TRUE(CgroupPatternMatches("/system.slice/a\\x2d*.service",
                                   "/system.slice/a\\x2db.service"));
}

// ---------------------------------------------------------------------------
// The examples in policies/ parse and mean what their comments say.

class ExamplePolicyTest : public ::testing::Test {
 protected:
  Policy Load(const std::string& name) {
    absl::StatusOr<std::vector<Policy>> p =
        LoadPolicies(PoliciesDir() + "/" + name);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok() || p->size() != 1) return Policy{};
    return (*p)[0];
  }
  static std::vector<std::string> Names(const Policy& p) {
    std::vector<std::string> names;
    for (const RuleOrigin& o : p.origins) names.push_back(o.name);
    return names;
  }
};

TEST_F(ExamplePolicyTest, WholeDirectoryLoads) {
  absl::StatusOr<std::vector<Policy>> all = LoadPolicies(PoliciesDir());
  ASSERT_OK(all);
  std::vector<std::string> names;
  for (const Policy& p : *all) names.push_back(p.name);
  EXPECT_THAT(names, ElementsAre("audit-everything", "nginx-static", "webapp",
                                 "wordpress"));
}

TEST_F(ExamplePolicyTest, NginxStatic) {
  const Policy p = Load("nginx-static.yaml");
  EXPECT_EQ(p.target, (PolicyTarget{TargetSource::kUnit, "nginx.service"}));
  EXPECT_EQ(p.mode, Mode::kEnforce);
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].action, Action::kAllow);
  EXPECT_THAT(p.rules[0].ports, ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(p.rules[0].destinations,
              ElementsAre(C("10.0.0.53"), C("2001:db8::53")));
}

TEST_F(ExamplePolicyTest, WebApp) {
  const Policy p = Load("webapp.yaml");
  EXPECT_EQ(p.target, (PolicyTarget{TargetSource::kUnit, "webapp.service"}));
  EXPECT_THAT(Names(p), ElementsAre("dns", "smtp-relay", "postgresql",
                                    "payments-api", "no-sandbox"));
  ASSERT_EQ(p.rules.size(), 5u);
  EXPECT_THAT(p.rules[0].ports, ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(p.rules[0].destinations, ElementsAre(C("10.0.0.53")));
  EXPECT_THAT(p.rules[1].ports, ElementsAre(Tcp(25)));
  EXPECT_THAT(p.rules[1].destinations, ElementsAre(C("10.0.0.25")));
  EXPECT_THAT(p.rules[2].ports, ElementsAre(Tcp(5432)));
  EXPECT_THAT(p.rules[2].destinations, ElementsAre(C("10.0.1.10")));
  EXPECT_THAT(p.rules[3].ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(p.rules[3].destinations, ElementsAre(C("203.0.113.0/24")));
  EXPECT_EQ(p.rules[4].action, Action::kDeny);
  EXPECT_THAT(p.rules[4].destinations, ElementsAre(C("203.0.113.250")));
  EXPECT_THAT(p.rules[4].ports,
              ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(p.rules[i].action, Action::kAllow);
}

TEST_F(ExamplePolicyTest, WordPress) {
  const Policy p = Load("wordpress.yaml");
  EXPECT_EQ(p.target,
            (PolicyTarget{TargetSource::kUnit, "php8.2-fpm.service"}));
  EXPECT_THAT(Names(p), ElementsAre("dns", "mysql", "smtp-submit", "wp-updates",
                                    "loopback-cron", "no-container-runtime"));
  ASSERT_EQ(p.rules.size(), 6u);
  EXPECT_THAT(p.rules[0].ports, ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(p.rules[0].destinations, ElementsAre(C("10.0.0.53")));
  EXPECT_THAT(p.rules[1].ports, ElementsAre(Tcp(3306)));
  EXPECT_THAT(p.rules[1].destinations, ElementsAre(C("10.0.1.20")));
  EXPECT_THAT(p.rules[2].ports, ElementsAre(Tcp(587)));
  EXPECT_THAT(p.rules[2].destinations, ElementsAre(C("10.0.0.25")));
  EXPECT_THAT(p.rules[3].ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(p.rules[3].destinations, ElementsAre(C("198.51.100.0/24")));
  EXPECT_THAT(p.rules[4].ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(p.rules[4].destinations, ElementsAre(C("192.0.2.10")));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.rules[i].action, Action::kAllow);
  EXPECT_EQ(p.rules[5].action, Action::kDeny);
  EXPECT_THAT(p.rules[5].unix_paths,
              ElementsAre("/var/run/docker.sock", "/run/docker.sock",
                          "/run/containerd/containerd.sock"));
}

TEST_F(ExamplePolicyTest, AuditEverything) {
  const Policy p = Load("audit-everything.yaml");
  EXPECT_EQ(p.target, (PolicyTarget{TargetSource::kPattern,
                                    "/system.slice/docker-*.scope"}));
  EXPECT_EQ(p.mode, Mode::kAudit);
  EXPECT_EQ(p.logging, LoggingLevel::kDenied);
  EXPECT_THAT(p.rules, IsEmpty());
}

// Unix-socket rules: `unix:` lists stand alone (unix_rules.h).
TEST(UnixPolicyFileTest, UnixListsInEgressAndEgressDeny) {
  Policy p = MustParse(Doc(R"(  egress:
  - name: fpm
    unix: [/run/php/php-fpm.sock, "@fpm", /run/php/php-fpm.sock]
  egressDeny:
  - unix:
    - /var/run/docker.sock
)"));
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].action, Action::kAllow);
  EXPECT_THAT(p.rules[0].unix_paths,
              ElementsAre("/run/php/php-fpm.sock", "@fpm"));
  EXPECT_EQ(p.rules[0].comment, "fpm");
  EXPECT_EQ(p.rules[1].action, Action::kDeny);
  EXPECT_THAT(p.rules[1].unix_paths, ElementsAre("/var/run/docker.sock"));
  EXPECT_EQ(p.rules[1].spec, "unix");
}

TEST(UnixPolicyFileTest, ErrorsNameFileLineAndField) {
  const struct {
    const char* rules;
    const char* error;
  } cases[] = {
      {"  egress:\n  - unix: [php.sock]\n",
       "t.yaml:9:12: spec.egress[0].unix[0]: unix address 'php.sock' must be "
       "an absolute path or @name"},
      {"  egress:\n  - unix: []\n",
       "t.yaml:9:11: spec.egress[0].unix: expected at least one socket "
       "address (/path or @name)"},
      {"  egressDeny:\n  - unix: [/x]\n    ports: [{port: 80}]\n",
       "t.yaml:10:5: spec.egressDeny[0].ports: a unix rule stands alone: it "
       "takes no to, ports, icmp or raw"},
  };
  for (const auto& c : cases) EXPECT_EQ(Error(Doc(c.rules)), c.error);
}

}  // namespace
}  // namespace egress::policy
