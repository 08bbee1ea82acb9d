// Rules as the operator sees them through egressctl and a real egressd: the
// same rule in another spelling, an allow a deny makes useless, a missing
// target. (Needs egressd's meaning-based duplicate check and its shadowing
// warnings.)
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/policy_text.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

class CliRulesTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    AddTarget("web");
  }
  size_t RuleCount() { return CtlJson({"list"})["targets"][0]["rules"].size(); }
};

TEST_F(CliRulesTest, SameRuleInAnotherSpellingIsSkipped) {
  CtlOk({"allow", "smtp", "10.0.0.5"});
  const std::string again = CtlOk({"allow", "25/tcp", "10.0.0.5"});
  EXPECT_THAT(again, HasSubstr("Skipping adding existing rule"));
  EXPECT_EQ(RuleCount(), 1u);
  const std::string long_form =
      CtlOk({"allow", "out", "proto", "tcp", "to", "10.0.0.5", "port", "25"});
  EXPECT_THAT(long_form, HasSubstr("Skipping adding existing rule"));
  EXPECT_EQ(RuleCount(), 1u);
}

TEST_F(CliRulesTest, ShadowedAllowIsAddedWithAWarningNamingTheDeny) {
  CtlOk({"deny", "any", "10.0.0.0/8"});
  CommandResult r = Ctl({"allow", "smtp", "10.0.0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Rule added"));
  EXPECT_THAT(r.output, HasSubstr("warning: "));
  EXPECT_THAT(r.output, HasSubstr("shadowed"));
  EXPECT_THAT(r.output, HasSubstr("10.0.0.0/8"));
  EXPECT_EQ(RuleCount(), 2u);
  // The JSON carries the same warning for scripts.
  nlohmann::json j = CtlJson({"allow", "smtp", "10.0.0.6"});
  ASSERT_TRUE(j.contains("warnings")) << j.dump();
  EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("10.0.0.0/8"));
}

// The other order: `deny 7000/tcp 127.0.0.0/8` after `allow 7000/tcp
// 127.0.0.1` said nothing, though the allow stopped letting anything
// through (and a connection to it is refused from then on).
TEST_F(CliRulesTest, ADenyThatShadowsAnAllowWarnsNamingTheAllow) {
  CtlOk({"allow", "7000/tcp", "127.0.0.1"});
  CommandResult r = Ctl({"deny", "7000/tcp", "127.0.0.0/8"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Rule added"));
  EXPECT_THAT(r.output,
              HasSubstr("warning: this deny shadows rule 1 (ALLOW 7000/tcp to "
                        "127.0.0.1)"));
  EXPECT_EQ(RuleCount(), 2u);
  nlohmann::json j = CtlJson({"deny", "7000/tcp", "127.0.0.0/16"});
  ASSERT_TRUE(j.contains("warnings")) << j.dump();
  EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("rule 1"));
}

// A line of `list` copied after `egressctl delete` removes that rule, as a
// line of `ufw status` typed after `ufw delete` does: the shapes a policy
// file makes ("443/tcp,443/udp" was printed as such, which no SPEC is), a
// service, several destinations and names, a comment and an end (which a
// shell drops after " # ").
TEST_F(CliRulesTest, DeleteOfALineCopiedFromListRemovesThatRule) {
  const std::string path =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
  std::ofstream(path) << absl::StrCat(
      PolicyHead("web", cg_->relative_path()),
      "  - ports: [{port: 443, protocol: TCP}, {port: 443, protocol: UDP}]\n"
      "  - ports: [{port: 80}, {port: 8443, protocol: TCP}]\n"
      "  - ports: [{protocol: TCP}, {protocol: UDP}]\n"
      "    to: [{ipBlock: {cidr: 10.1.0.0/16}}]\n"
      "  - ports: [{port: dns, protocol: UDP}, {port: 853, protocol: TCP}]\n"
      "    icmp: true\n"
      "    to: [{ipBlock: {cidr: 10.2.0.0/16, except: [10.2.0.0/24]}}]\n"
      "  egressDeny:\n"
      "  - name: meta\n"
      "    comment: cloud metadata\n"
      "    to: [{ipBlock: {cidr: 169.254.169.254/32}}]\n");
  CtlOk({"apply", "-f", path});
  CtlOk({"allow", "smtp", "10.0.0.5", "comment", "mail relay"});
  CtlOk({"allow", "443/tcp", "10.0.0.6", "api.example.com", "--for", "1h"});
  CtlOk({"allow", "1000:2000/udp", "2001:db8::/32", "10.0.0.0/8"});
  const size_t rules = RuleCount();
  ASSERT_EQ(rules, 8u);
  for (size_t left = rules; left > 0; --left) {
    const std::string list = CtlOk({"list"});
    // The last rule's line: "[ 8] ALLOW ... # ...".
    std::vector<std::string> lines =
        absl::StrSplit(list, '\n', absl::SkipEmpty());
    ASSERT_FALSE(lines.empty());
    std::string line = lines.back();
    ASSERT_TRUE(absl::StartsWith(line, "[")) << list;
    line = line.substr(line.find("] ") + 2);
    // What a shell passes on: the words before its comment.
    const std::string rule = line.substr(0, line.find(" # "));
    std::vector<std::string> args = {"delete"};
    for (absl::string_view w : absl::StrSplit(rule, ' ', absl::SkipEmpty())) {
      args.emplace_back(w);
    }
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("Rule deleted from web: " + rule)) << list;
    ASSERT_EQ(RuleCount(), left - 1) << line << "\n" << r.output;
  }
}

// `--dry-run` on allow, deny and delete prints the change as `apply
// --dry-run` would and changes nothing: the listing and the kernel's
// verdicts stay as they were.
TEST_F(CliRulesTest, DryRunOfAllowDenyAndDeleteChangesNothing) {
  CtlOk({"allow", "smtp", "10.0.0.5"});
  const nlohmann::json before = CtlJson({"list"});
  CommandResult r = Ctl({"allow", "443/tcp", "10.0.0.6", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "Would update target web\n  + ALLOW 443/tcp to 10.0.0.6\nDry run: "
            "nothing changed.\n");
  r = Ctl({"--dry-run", "deny", "any", "10.0.0.0/8"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("  + DENY any to 10.0.0.0/8\n"));
  EXPECT_THAT(r.output, HasSubstr("warning: this deny shadows rule 1"));
  EXPECT_THAT(r.output, HasSubstr("Dry run: nothing changed.\n"));
  r = Ctl({"delete", "1", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "Would update target web\n  - ALLOW smtp to 10.0.0.5 # "
            "(25/tcp)\nDry run: nothing changed.\n");
  r = Ctl({"delete", "allow", "25/tcp", "10.0.0.5", "--dry-run"});
  EXPECT_THAT(r.output, HasSubstr("  - ALLOW smtp to 10.0.0.5 # (25/tcp)\n"));
  nlohmann::json j = CtlJson({"allow", "smtp", "10.0.0.7", "--dry-run"});
  EXPECT_EQ(j["dry_run"], true) << j;
  EXPECT_EQ(CtlJson({"list"}), before);
  // A dry run fails where the edit would, and still changes nothing.
  r = Ctl({"delete", "allow", "ntp", "10.0.0.9", "--dry-run"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no such rule"));
  EXPECT_NE(Ctl({"delete", "7", "--dry-run"}).exit_code, 0);
  EXPECT_EQ(CtlJson({"list"}), before);
}

TEST_F(CliRulesTest, AMissingTargetIsBadInput) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"allow", "smtp", "10.0.0.5", "-t", "nosuch"},
        {"mode", "audit", "--target", "nosuch"},
        {"list", "--target", "nosuch"},
        {"target", "remove", "nosuch"}}) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("nosuch"));
  }
}

TEST_F(CliRulesTest, StatusVerboseAndNumbered) {
  CtlOk({"allow", "smtp", "10.0.0.5"});
  const std::string numbered = CtlOk({"status", "numbered"});
  EXPECT_THAT(numbered, HasSubstr("[ 1] ALLOW smtp"));
  const std::string verbose = CtlOk({"status", "verbose"});
  EXPECT_THAT(verbose, HasSubstr("source cgroup"));
  EXPECT_THAT(verbose, HasSubstr("logging denied"));
}

}  // namespace
}  // namespace egress::testing
