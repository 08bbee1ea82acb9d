#include "userspace/policy/policy_writer.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/services.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

const std::vector<PortProto> kAny = {
    {Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};

Rule MakeRule(Action action, std::string spec, std::vector<PortProto> ports,
              std::vector<Cidr> to = {}) {
  Rule r;
  r.action = action;
  r.spec = std::move(spec);
  r.ports.assign(ports.begin(), ports.end());
  r.destinations.assign(to.begin(), to.end());
  return r;
}

PolicyDocument BaseDoc() {
  PolicyDocument d;
  d.name = "web";
  d.target = {TargetSource::kUnit, "web.service"};
  return d;
}

// Parses `text`, failing the test (with the text) if it does not parse.
Policy MustParse(const std::string& text) {
  absl::StatusOr<Policy> p = ParsePolicy(text, "x.yaml");
  EXPECT_TRUE(p.ok()) << p.status() << "\n" << text;
  return p.ok() ? *p : Policy{};
}

template <typename T, typename Less>
std::vector<T> SortedSet(std::vector<T> v, Less less) {
  std::sort(v.begin(), v.end(), less);
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
std::vector<PortProto> PortSet(absl::Span<const PortProto> v) {
  return SortedSet(std::vector<PortProto>(v.begin(), v.end()),
                   [](const PortProto& a, const PortProto& b) {
                     return std::tie(a.proto, a.lo, a.hi) <
                            std::tie(b.proto, b.lo, b.hi);
                   });
}
std::vector<Cidr> CidrSet(absl::Span<const Cidr> v) {
  return SortedSet(std::vector<Cidr>(v.begin(), v.end()),
                   [](const Cidr& a, const Cidr& b) {
                     return std::tie(a.family, a.addr, a.prefix_len) <
                            std::tie(b.family, b.addr, b.prefix_len);
                   });
}

// The round-trip contract of WritePolicy, checked field by field.
void ExpectRoundTrip(const PolicyDocument& doc) {
  const std::string text = WritePolicy(doc);
  absl::StatusOr<Policy> p = ParsePolicy(text, "x.yaml");
  ASSERT_TRUE(p.ok()) << p.status() << "\n" << text;
  EXPECT_EQ(p->name, doc.name);
  EXPECT_EQ(p->target, doc.target);
  EXPECT_EQ(p->mode, doc.mode);
  EXPECT_EQ(p->logging, doc.logging);
  EXPECT_EQ(p->annotations, doc.annotations);
  std::vector<Rule> want;
  for (Action a : {Action::kAllow, Action::kDeny}) {
    for (const Rule& r : doc.rules) {
      if (r.action == a) want.push_back(r);
    }
  }
  ASSERT_EQ(p->rules.size(), want.size()) << text;
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("rule ", i, "\n", text));
    EXPECT_EQ(p->rules[i].action, want[i].action);
    EXPECT_EQ(PortSet(p->rules[i].ports), PortSet(want[i].ports));
    EXPECT_EQ(CidrSet(p->rules[i].destinations), CidrSet(want[i].destinations));
  }
}

// ---------------------------------------------------------------------------
// Layout.

TEST(PolicyWriterTest, GoldenText) {
  PolicyDocument d = BaseDoc();
  d.annotations = {{"description", "web: DNS, mail # and more"}};
  d.header_comment = {"Written by a test.", "", "Second paragraph."};
  Rule dns =
      MakeRule(Action::kAllow, "dns", {Tcp(53), Udp(53)}, {C("10.0.0.53")});
  Rule mail = MakeRule(Action::kAllow, "smtp", {Tcp(25)}, {C("10.0.0.25")});
  mail.host = "mail.example.com";
  mail.comment = "relay";
  Rule api =
      MakeRule(Action::kAllow, "443/tcp,1000-2000/udp,icmp",
               {Tcp(443), {Proto::kUdp, 1000, 2000}, kIcmp},
               {C("203.0.113.0/24"), C("2001:db8::/32"), C("2001:db8:1::5")});
  Rule web = MakeRule(Action::kAllow, "tcp", {Tcp(0, 65535)});
  Rule raw = MakeRule(Action::kAllow, "raw", {kRaw});
  Rule meta = MakeRule(Action::kDeny, "any", kAny, {C("169.254.169.254")});
  d.rules = {dns, mail, meta, api, web, raw};
  d.rule_names = {"dns", "mail", "no-metadata", "api", "", "ping"};
  d.rule_comments = {{"resolver"}, {}, {"cloud metadata", "never"}, {}, {}, {}};
  EXPECT_EQ(WritePolicy(d), R"(# Written by a test.
#
# Second paragraph.
apiVersion: egress.dev/v1alpha1
kind: EgressPolicy
metadata:
  name: web
  annotations:
    description: "web: DNS, mail # and more"
spec:
  target:
    systemdUnit: web.service
  mode: enforce
  logging: denied
  egress:
  # resolver
  - name: dns
    to:
      - ipBlock: {cidr: 10.0.0.53/32}
    ports:
      - port: dns
  - name: mail
    comment: relay (host mail.example.com)
    to:
      - ipBlock: {cidr: 10.0.0.25/32}
    ports:
      - port: smtp
  - name: api
    to:
      - ipBlock: {cidr: 203.0.113.0/24}
      - ipBlock: {cidr: 2001:db8::/32}
      - ipBlock: {cidr: 2001:db8:1::5/128}
    ports:
      - port: 443
        protocol: TCP
      - port: 1000
        endPort: 2000
        protocol: UDP
      - protocol: ICMP
  - ports:
      - protocol: TCP
  - name: ping
    raw: true
  egressDeny:
  # cloud metadata
  # never
  - name: no-metadata
    to:
      - ipBlock: {cidr: 169.254.169.254/32}
)");
  ExpectRoundTrip(d);
}

TEST(PolicyWriterTest, EmptyDocumentAllowsNothing) {
  const std::string text = WritePolicy(BaseDoc());
  EXPECT_THAT(text, HasSubstr("  egress: []\n"));
  EXPECT_THAT(text, Not(HasSubstr("egressDeny")));
  const Policy p = MustParse(text);
  EXPECT_THAT(p.rules, SizeIs(0));
}

// Annotations come out in key order whatever order they were given in, so
// two exports of one policy are the same bytes.
TEST(PolicyWriterTest, AnnotationsAreWrittenInKeyOrder) {
  PolicyDocument d = BaseDoc();
  d.annotations = {{"b", "2"}, {"a", "1"}};
  d.rules = {MakeRule(Action::kAllow, "smtp", {Tcp(25)})};
  const std::string text = WritePolicy(d);
  const size_t a = text.find("\n    a: "), b = text.find("\n    b: ");
  ASSERT_NE(a, std::string::npos) << text;
  ASSERT_NE(b, std::string::npos) << text;
  EXPECT_LT(a, b) << text;
}

TEST(PolicyWriterTest, ModeLoggingAndTargets) {
  for (const PolicyTarget& target :
       {PolicyTarget{TargetSource::kCgroup, "/system.slice/a b.service"},
        PolicyTarget{TargetSource::kUnit, "x@1.service"},
        PolicyTarget{TargetSource::kPattern, "/system.slice/docker-*.scope"}}) {
    for (LoggingLevel logging :
         {LoggingLevel::kOff, LoggingLevel::kDenied, LoggingLevel::kAll}) {
      PolicyDocument d = BaseDoc();
      d.target = target;
      d.mode = Mode::kAudit;
      d.logging = logging;
      ExpectRoundTrip(d);
    }
  }
}

// ---------------------------------------------------------------------------
// Quoting: every string goes through yaml-cpp.

TEST(PolicyWriterTest, AwkwardStringsRoundTrip) {
  const std::vector<std::string> awkward = {
      "a: b",        "# not a comment",
      "'single'",    "\"double\"",
      "ünïcødé ✓",   "line1\nline2",
      " lead",       "trail ",
      "true",        "off",
      "123",         "",
      "- dash",      "[x, y]",
      "{k: v}",      "&anchor *alias",
      "back\\slash", "tab\there",
      "%percent",    "@at",
      "`tick`",      "~",
      "null",        "?",
  };
  PolicyDocument d = BaseDoc();
  for (size_t i = 0; i < awkward.size(); ++i) {
    d.annotations[absl::StrCat("k", i)] = awkward[i];
    d.annotations[awkward[i] + "-key"] = "v";
  }
  for (size_t i = 0; i < awkward.size(); ++i) {
    Rule r = MakeRule(Action::kAllow, "25/tcp", {Tcp(25)});
    r.comment = awkward[i];
    d.rules.push_back(r);
    d.rule_comments.push_back({awkward[i]});
  }
  d.header_comment = awkward;
  ExpectRoundTrip(d);
  // Rule comments with control characters come back with '?' for them:
  // ParsePolicy refuses a comment holding one.
  const Policy p = MustParse(WritePolicy(d));
  ASSERT_EQ(p.rules.size(), awkward.size());
  for (size_t i = 0; i < awkward.size(); ++i) {
    std::string want = awkward[i];
    std::replace(want.begin(), want.end(), '\n', '?');
    std::replace(want.begin(), want.end(), '\t', '?');
    EXPECT_EQ(p.rules[i].comment, want);
  }
}

// `export` wrote "{cidr: ::1/128}" (PyYAML: "expected the node content,
// but found ':'") and plain comments a YAML 1.1 reader takes for a bool, a
// number or a date ("comment: yes" is True to PyYAML). Such scalars are
// double-quoted; every other one stays as it was.
TEST(PolicyWriterTest, ScalarsYaml11ReadsAsOtherTypesAreQuoted) {
  const std::vector<std::string> quoted = {
      "yes",   "No",    "ON",         "off",
      "y",     "n",     "true",       "~",
      "null",  "123",   "0755",       "0x1F",
      "0b101", "1_000", "1:20",       "190:20:30.15",
      ".5",    "1.5",   "1e3",        "+12",
      ".inf",  ".NaN",  "2024-01-01", "2001-12-14t21:59:43.10-05:00",
      ":x",    "=",     "<<",         "-1",
  };
  PolicyDocument d = BaseDoc();
  for (const std::string& q : quoted) {
    Rule r = MakeRule(Action::kAllow, "25/tcp", {Tcp(25)});
    r.comment = q;
    d.rules.push_back(r);
    d.annotations[q] = q;
  }
  Rule v6 = MakeRule(Action::kAllow, "25/tcp", {Tcp(25)},
                     {C("::1"), C("2001:db8::/32"), C("10.0.0.53")});
  v6.comment = "web 1.0";
  d.rules.push_back(v6);
  const std::string text = WritePolicy(d);
  for (const std::string& q : quoted) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("comment: \"", q, "\"\n")))
        << text;
    EXPECT_THAT(text, HasSubstr(absl::StrCat("    \"", q, "\": \"", q, "\"\n")))
        << text;
  }
  EXPECT_THAT(text, HasSubstr("- ipBlock: {cidr: \"::1/128\"}\n"));
  // Strings every reader takes as strings stay plain.
  EXPECT_THAT(text, HasSubstr("- ipBlock: {cidr: 2001:db8::/32}\n"));
  EXPECT_THAT(text, HasSubstr("- ipBlock: {cidr: 10.0.0.53/32}\n"));
  EXPECT_THAT(text, HasSubstr("comment: web 1.0\n"));
  EXPECT_THAT(text, HasSubstr("  name: web\n"));
  ExpectRoundTrip(d);
  const Policy p = MustParse(text);
  ASSERT_EQ(p.rules.size(), quoted.size() + 1);
  for (size_t i = 0; i < quoted.size(); ++i) {
    EXPECT_EQ(p.rules[i].comment, quoted[i]);
  }
}

TEST(PolicyWriterTest, CommentLinesWithLineBreaksStayComments) {
  PolicyDocument d = BaseDoc();
  d.header_comment = {"one\nname: evil\r\negress: [x]"};
  d.rules = {MakeRule(Action::kAllow, "25/tcp", {Tcp(25)})};
  d.rule_comments = {{"a\n- to: anywhere\x01"}};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("# one\n# name: evil\n# egress: [x]\n"));
  EXPECT_THAT(text, HasSubstr("  # a\n  # - to: anywhere?\n"));
  ExpectRoundTrip(d);
}

// A rule added some other way may hold C1 controls (U+0080-U+009F) in its
// comment: ParsePolicy refuses them (CheckCommentText), so the export writes
// '?' for each, as for the C0 controls; comment lines do the same (U+0085 is
// a line break to a YAML 1.1 reader).
TEST(PolicyWriterTest, C1ControlsInCommentsBecomeQuestionMarks) {
  PolicyDocument d = BaseDoc();
  d.header_comment = {"one\xc2\x85name: evil"};
  Rule r = MakeRule(Action::kAllow, "25/tcp", {Tcp(25)});
  r.comment = "a\xc2\x9b[2Jb\xc2\x80\xc2\x9f caf\xc3\xa9\xc2\xa0";
  d.rules = {r};
  d.rule_comments = {{"x\xc2\x85- to: anywhere"}};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("# one?name: evil\n"));
  EXPECT_THAT(text, HasSubstr("  # x?- to: anywhere\n"));
  const Policy p = MustParse(text);
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].comment, "a?[2Jb?? caf\xc3\xa9\xc2\xa0");
}

TEST(PolicyWriterTest, HostGoesIntoComment) {
  PolicyDocument d = BaseDoc();
  Rule r = MakeRule(Action::kAllow, "smtp", {Tcp(25)}, {C("192.0.2.7")});
  r.host = "mail.example.com";
  d.rules = {r};
  EXPECT_EQ(MustParse(WritePolicy(d)).rules.at(0).comment,
            "host mail.example.com");
  d.rule_names = {"mail"};
  d.rules[0].comment = "the relay";
  EXPECT_EQ(MustParse(WritePolicy(d)).rules.at(0).comment,
            "mail: the relay (host mail.example.com)");
}

// Writing what ParsePolicy read (with the rule names) gives the same text.
TEST(PolicyWriterTest, ReadAndWrittenAgainIsUnchanged) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "smtp", {Tcp(25)}),
             MakeRule(Action::kAllow, "https/tcp", {Tcp(443)}),
             MakeRule(Action::kDeny, "any", kAny)};
  d.rules[0].comment = "relay";
  d.rules[2].comment = "x: y";
  d.rule_names = {"mail", "", "rest"};
  const std::string text = WritePolicy(d);
  const Policy p = MustParse(text);
  PolicyDocument again = BaseDoc();
  again.rules = p.rules;
  for (const RuleOrigin& o : p.origins) again.rule_names.push_back(o.name);
  EXPECT_EQ(WritePolicy(again), text);
  EXPECT_EQ(p.rules[0].comment, "mail: relay");
  EXPECT_EQ(p.rules[2].comment, "rest: x: y");
}

// egressd keeps a policy's rules alone (no PolicyDocument::rule_names), and
// `export` writes them: each rule's name must come back as its name, not
// as a comment, and a comment that merely looks like "NAME: TEXT" stays a
// comment.
TEST(PolicyWriterTest, RulesAloneKeepTheirNames) {
  const Policy p = MustParse(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\n"
      "metadata: {name: web}\nspec:\n  target: {systemdUnit: web.service}\n"
      "  egress:\n"
      "  - name: dns\n    ports: [{port: domain}]\n"
      "  - name: api\n    comment: payments\n"
      "    ports: [{port: 443, protocol: TCP}]\n"
      "  - comment: \"api: not a name\"\n"
      "    ports: [{port: 8443, protocol: TCP}]\n"
      "  - name: raw-ping\n    raw: true\n"
      "  egressDeny:\n"
      "  - name: no-sandbox\n    to: [{ipBlock: {cidr: 10.0.0.9/32}}]\n");
  PolicyDocument d = BaseDoc();
  d.rules = p.rules;
  const std::string text = WritePolicy(d);
  const Policy again = MustParse(text);
  ASSERT_EQ(again.origins.size(), p.origins.size()) << text;
  for (size_t i = 0; i < p.origins.size(); ++i) {
    EXPECT_EQ(again.origins[i].name, p.origins[i].name) << i << "\n" << text;
    EXPECT_EQ(again.rules[i].comment, p.rules[i].comment) << i << "\n" << text;
  }
  EXPECT_EQ(again.rules, p.rules) << text;
  EXPECT_THAT(text, Not(HasSubstr("comment: dns"))) << text;
}

// ---------------------------------------------------------------------------
// Ports.

TEST(PolicyWriterTest, ServiceNameWhenTheExpansionMatches) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "smtp", {Tcp(25)})};
  EXPECT_THAT(WritePolicy(d), HasSubstr("      - port: smtp\n"));
  ExpectRoundTrip(d);

  // The ports are not what the word says: numbers, never the service.
  d.rules = {MakeRule(Action::kAllow, "smtp", {Tcp(587)})};
  EXPECT_THAT(WritePolicy(d), Not(HasSubstr("smtp")));
  EXPECT_THAT(WritePolicy(d), HasSubstr("      - port: 587\n"));
  ExpectRoundTrip(d);
}

TEST(PolicyWriterTest, ServiceNameNarrowedByProtocol) {
  ASSERT_OK_AND_ASSIGN(std::vector<PortProto> https, LookupService("https"));
  ASSERT_THAT(https, ElementsAre(Tcp(443), Udp(443)));
  PolicyDocument d = BaseDoc();
  // "https" with only its tcp port (as from "https/tcp", or a narrowed rule).
  for (const char* spec : {"https", "https/tcp"}) {
    d.rules = {MakeRule(Action::kAllow, spec, {Tcp(443)})};
    EXPECT_THAT(WritePolicy(d),
                HasSubstr("      - port: https\n        protocol: TCP\n"));
    ExpectRoundTrip(d);
  }
  // Both protocols: the bare name.
  d.rules = {MakeRule(Action::kAllow, "https", {Tcp(443), Udp(443)})};
  EXPECT_THAT(WritePolicy(d), HasSubstr("      - port: https\n"));
  EXPECT_THAT(WritePolicy(d), Not(HasSubstr("protocol")));
  ExpectRoundTrip(d);
}

TEST(PolicyWriterTest, SeveralWordsAndLeftoverPorts) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(
      Action::kAllow, "dns,smtp,8080,icmp",
      {Tcp(53), Udp(53), Tcp(25), Tcp(8080), Udp(8080), kIcmp, Tcp(25)})};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("- port: dns\n"));
  EXPECT_THAT(text, HasSubstr("- port: smtp\n"));
  EXPECT_THAT(text, HasSubstr("- port: 8080\n        protocol: TCP\n"));
  EXPECT_THAT(text, HasSubstr("- port: 8080\n        protocol: UDP\n"));
  EXPECT_THAT(text, HasSubstr("- protocol: ICMP\n"));
  ExpectRoundTrip(d);
}

TEST(PolicyWriterTest, AllPortsAndAny) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "udp", {{Proto::kUdp, 0, 65535}}),
             MakeRule(Action::kAllow, "any", kAny, {C("10.1.0.0/16")}),
             MakeRule(Action::kDeny, "any", kAny)};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("  - ports:\n      - protocol: UDP\n"));
  // "any" to a network and to anywhere: no ports list at all.
  EXPECT_THAT(text, HasSubstr("  - to:\n      - ipBlock: {cidr: 10.1.0.0/16}\n"
                              "  egressDeny:\n  - {}\n"));
  ExpectRoundTrip(d);
  const Policy p = MustParse(text);
  EXPECT_EQ(p.rules[2].spec, "any");
}

TEST(PolicyWriterTest, RuleWithoutPortsIsLeftOutWithAComment) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "", {}, {C("10.0.0.1")}),
             MakeRule(Action::kAllow, "0", {Tcp(0)})};
  d.rule_names = {"empty", "zero"};
  const std::string text = WritePolicy(d);
  EXPECT_THAT(text, HasSubstr("  egress: []\n"));
  EXPECT_THAT(text, HasSubstr("# left out: rule empty has no port"));
  EXPECT_THAT(text, HasSubstr("# left out: rule zero has no port"));
  EXPECT_THAT(MustParse(text).rules, SizeIs(0));
}

TEST(PolicyWriterTest, RangeFromPortZeroStartsAtOne) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "0-10/tcp", {Tcp(0, 10)})};
  const Policy p = MustParse(WritePolicy(d));
  EXPECT_THAT(p.rules.at(0).ports, ElementsAre(Tcp(1, 10)));
}

TEST(PolicyWriterTest, RawMixedWithPortsIsSplit) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "raw,smtp", {kRaw, Tcp(25)})};
  d.rule_names = {"mixed"};
  const Policy p = MustParse(WritePolicy(d));
  ASSERT_THAT(p.rules, SizeIs(2));
  EXPECT_THAT(p.rules[0].ports, ElementsAre(kRaw));
  EXPECT_EQ(p.origins[0].name, "mixed");
  EXPECT_THAT(p.rules[1].ports, ElementsAre(Tcp(25)));
}

// ---------------------------------------------------------------------------
// The contract as a property over random documents.

class RandomDocs {
 public:
  explicit RandomDocs(uint32_t seed) : rng_(seed) {}

  PolicyDocument Next() {
    PolicyDocument d = BaseDoc();
    d.mode = Coin() ? Mode::kEnforce : Mode::kAudit;
    d.logging =
        std::vector<LoggingLevel>{LoggingLevel::kOff, LoggingLevel::kDenied,
                                  LoggingLevel::kAll}[Int(0, 2)];
    const int n = Int(0, 8);
    for (int i = 0; i < n; ++i) {
      d.rules.push_back(NextRule());
      d.rule_names.push_back(Coin() ? absl::StrCat("r", i) : "");
      d.rule_comments.push_back(Coin() ? std::vector<std::string>{}
                                       : std::vector<std::string>{"c"});
    }
    return d;
  }

 private:
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool Coin() { return Int(0, 1) == 1; }

  Cidr NextCidr() {
    Cidr c;
    c.family = Coin() ? 4 : 6;
    const int bits = c.family == 4 ? 32 : 128;
    // Mostly hosts, some networks, now and then everything.
    const int kind = Int(0, 9);
    c.prefix_len = static_cast<uint8_t>(kind < 6   ? bits
                                        : kind < 9 ? Int(1, bits)
                                                   : 0);
    for (int i = 0; i < bits / 8; ++i)
      c.addr[i] = static_cast<uint8_t>(Int(0, 255));
    // Keep clear of ::ffff:0:0/96, which Cidr::Parse turns into IPv4.
    if (c.family == 6) c.addr[0] = static_cast<uint8_t>(0x20 | (c.addr[0] & 1));
    for (int i = 0; i < 16; ++i) {
      const int keep = std::clamp(c.prefix_len - 8 * i, 0, 8);
      c.addr[i] &= static_cast<uint8_t>(0xff00 >> keep);
    }
    EXPECT_TRUE(c.Valid()) << c.ToString();
    return c;
  }

  Rule NextRule() {
    Rule r;
    r.action = Int(0, 3) == 0 ? Action::kDeny : Action::kAllow;
    const int kind = Int(0, 11);
    if (kind == 0) {
      r.spec = "raw";
      r.ports = {kRaw};
      return r;
    }
    const int ndest = Int(0, 4);
    for (int i = 0; i < ndest; ++i) r.destinations.push_back(NextCidr());
    if (kind == 1) {
      r.spec = "any";
      r.ports.assign(kAny.begin(), kAny.end());
      return r;
    }
    std::vector<std::string> words;
    const int nports = Int(1, 4);
    for (int i = 0; i < nports; ++i) {
      const int what = Int(0, 9);
      const Proto proto = Coin() ? Proto::kTcp : Proto::kUdp;
      if (what <= 2) {
        static const std::vector<std::string> kServices = {
            "smtp", "dns", "domain", "https", "postgresql", "ntp", "ssh"};
        std::string name = kServices[Int(0, kServices.size() - 1)];
        const int narrow = Int(0, 2);  // 0: as is, 1: /tcp, 2: /udp
        absl::StatusOr<std::vector<PortProto>> ports = LookupService(name);
        EXPECT_TRUE(ports.ok()) << ports.status();
        bool any = false;
        for (const PortProto& pp : *ports) {
          if (narrow == 1 && pp.proto != Proto::kTcp) continue;
          if (narrow == 2 && pp.proto != Proto::kUdp) continue;
          r.ports.push_back(pp);
          any = true;
        }
        if (any) {
          words.push_back(narrow == 0   ? name
                          : narrow == 1 ? name + "/tcp"
                                        : name + "/udp");
        }
      } else if (what <= 5) {
        const uint16_t p = static_cast<uint16_t>(Int(1, 65535));
        r.ports.push_back({proto, p, p});
        words.push_back(absl::StrCat(p));
      } else if (what <= 7) {
        const uint16_t lo = static_cast<uint16_t>(Int(1, 65535));
        const uint16_t hi = static_cast<uint16_t>(Int(lo, 65535));
        r.ports.push_back({proto, lo, hi});
        words.push_back(absl::StrCat(lo, "-", hi));
      } else if (what == 8) {
        r.ports.push_back({proto, 0, 65535});
        words.push_back(ProtoName(proto));
      } else {
        r.ports.push_back(kIcmp);
        words.push_back("icmp");
      }
    }
    if (r.ports.empty()) r.ports.push_back(kIcmp);
    // Now and then a spec that does not describe the ports at all.
    r.spec = Int(0, 5) == 0 ? "smtp,dns" : absl::StrJoin(words, ",");
    return r;
  }

  std::mt19937 rng_;
};

TEST(PolicyWriterTest, RandomDocumentsRoundTrip) {
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    RandomDocs gen(seed);
    ExpectRoundTrip(gen.Next());
    if (HasFatalFailure()) return;
  }
}

TEST(PolicyWriterTest, EdgeNetworksRoundTrip) {
  PolicyDocument d = BaseDoc();
  d.rules = {MakeRule(Action::kAllow, "tcp", {Tcp(0, 65535)},
                      {C("0.0.0.0/0"), C("::/0"), C("::1"), C("::"),
                       C("fe80::/10"), C("127.0.0.1"), C("::2:0/112")})};
  ExpectRoundTrip(d);
}

// The repository's policies/ directory, found from this file's path.
std::string PoliciesDir() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / ".." /
          "policies")
      .lexically_normal()
      .string();
}

// Every shipped example, read and written again, means the same, and writing
// that once more changes nothing.
TEST(PolicyWriterTest, ExamplePoliciesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(std::vector<Policy> examples,
                       LoadPolicies(PoliciesDir()));
  ASSERT_THAT(examples, Not(SizeIs(0)));
  for (const Policy& p : examples) {
    SCOPED_TRACE(p.file);
    PolicyDocument d;
    d.name = p.name;
    d.target = p.target;
    d.mode = p.mode;
    d.logging = p.logging;
    d.annotations = p.annotations;
    d.rules = p.rules;
    for (const RuleOrigin& o : p.origins) d.rule_names.push_back(o.name);
    ExpectRoundTrip(d);
    const std::string text = WritePolicy(d);
    const Policy again = MustParse(text);
    EXPECT_EQ(again.rules, p.rules);  // specs and comments too
    EXPECT_EQ(again.origins.size(), p.origins.size());
    for (size_t i = 0; i < again.origins.size() && i < p.origins.size(); ++i) {
      EXPECT_EQ(again.origins[i].name, p.origins[i].name);
    }
  }
}

}  // namespace
}  // namespace egress::policy
