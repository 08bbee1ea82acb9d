// `egressctl apply -f`: policy files become enforcement, a dry run shows the
// diff and changes nothing, every kind of bad file is refused with its
// position and changes nothing, swapping large policies never shows a gap,
// and applied policies survive egressd restarts and reboot-like restarts.
#include <errno.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/listeners.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/text_count.h"
#include "userspace/daemon/state_store.h"
#include "userspace/policy/policy_file.h"

namespace egress::testing {
namespace {

class ApplyTest : public EgressdTest {
 protected:
  // web.yaml for the test's cgroup: `spec_fields` (lines such as "  mode:
  // audit\n") before the egress rules, then `egress_deny`.
  std::string WritePolicy(const std::string& egress_rules,
                          const std::string& spec_fields = "",
                          const std::string& egress_deny =
                              "  egressDeny:\n"
                              "  - to:\n"
                              "    - ipBlock: {cidr: 127.0.0.9/32}\n") {
    std::string path =
        state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
    std::ofstream(path) << "apiVersion: egress.dev/v1alpha1\n"
                           "kind: EgressPolicy\n"
                           "metadata:\n"
                           "  name: web\n"
                           "spec:\n"
                           "  target:\n"
                           "    cgroupPath: "
                        << cg_->relative_path() << "\n"
                        << spec_fields << "  egress:\n"
                        << egress_rules << egress_deny;
    return path;
  }
};

constexpr char kApi[] =
    "  - name: api\n"
    "    to:\n"
    "    - ipBlock: {cidr: 127.0.0.2/32}\n"
    "    ports:\n"
    "    - {port: 40001, protocol: TCP}\n";
constexpr char kDns[] =
    "  - name: dns\n"
    "    to:\n"
    "    - ipBlock: {cidr: 127.0.0.53/32}\n"
    "    ports:\n"
    "    - port: domain\n";

TEST_F(ApplyTest, DryRunShowsTheDiffAndApplyEnforces) {
  std::string file = WritePolicy(kApi);
  std::string dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "Would create target web")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "+ ALLOW 40001/tcp to 127.0.0.2")) << dry;
  EXPECT_TRUE(CtlJson({"target", "list"})["targets"].empty());
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  CtlOk({"apply", "-f", file});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
  nlohmann::json before = CtlJson({"list"});

  // A second rule: only it is new; the unchanged rules keep their ids.
  file = WritePolicy(std::string(kApi) + kDns);
  dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "Would update target web")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "+ ALLOW")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "- ALLOW")) << dry;
  CtlOk({"apply", "-f", file});
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
  nlohmann::json after = CtlJson({"list"});
  EXPECT_EQ(after["targets"][0]["rules"][0]["id"],
            before["targets"][0]["rules"][0]["id"]);
  EXPECT_EQ(after["targets"][0]["rules"].size(), 3u);
}

// A file that only switches an audit target to enforce (and its logging)
// printed "Would update target web" and nothing else, and the real apply
// switched silently. Both now say old -> new, in text and JSON, and a rule
// whose comment alone changes is shown too.
TEST_F(ApplyTest, DryRunShowsAModeAndLoggingChange) {
  auto write = [&](const std::string& mode, const std::string& logging,
                   const std::string& name) {
    return WritePolicy(
        absl::StrCat("  - name: ", name,
                     "\n"
                     "    to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
                     "    ports: [{port: 40001, protocol: TCP}]\n"),
        absl::StrCat("  mode: ", mode, "\n  logging: ", logging, "\n"), "");
  };
  std::string out = CtlOk({"apply", "-f", write("audit", "all", "one")});
  EXPECT_TRUE(absl::StrContains(out, "created target web (")) << out;
  EXPECT_TRUE(absl::StrContains(out, "): mode audit, logging all\n")) << out;

  const std::string file = write("enforce", "denied", "two");
  std::string dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "Would update target web (")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "\n  mode audit -> enforce\n")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "\n  logging all -> denied\n")) << dry;
  EXPECT_TRUE(absl::StrContains(dry,
                                "  ~ ALLOW 40001/tcp to 127.0.0.2 # two (was: "
                                "ALLOW 40001/tcp to 127.0.0.2 # one)\n"))
      << dry;
  EXPECT_TRUE(absl::StrContains(dry, "Dry run: nothing changed.")) << dry;
  // Still audit: nothing is denied.
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["mode"], "audit");
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  nlohmann::json applied = CtlJson({"apply", "-f", file});
  ASSERT_EQ(applied["changes"].size(), 1u) << applied.dump();
  const nlohmann::json& c = applied["changes"][0];
  EXPECT_EQ(c["mode_from"], "audit") << c.dump();
  EXPECT_EQ(c["mode"], "enforce") << c.dump();
  EXPECT_EQ(c["logging_from"], "all") << c.dump();
  EXPECT_EQ(c["logging"], "denied") << c.dump();
  ASSERT_EQ(c["changed"].size(), 1u) << c.dump();
  EXPECT_EQ(c["changed"][0]["to"], "ALLOW 40001/tcp to 127.0.0.2 # two");
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

// A rule listed twice in a file was kept twice, and `delete` of it said
// "Rule deleted" while the other copy stayed in force. It is kept once, the
// apply says so, and `delete` lifts it.
TEST_F(ApplyTest, ARuleListedTwiceIsKeptOnceAndDeleteLiftsIt) {
  // Rule names are unique in a file: the copy has another.
  const std::string twice =
      absl::StrCat(kApi,
                   "  - name: api-again\n"
                   "    to:\n"
                   "    - ipBlock: {cidr: 127.0.0.2/32}\n"
                   "    ports:\n"
                   "    - {port: 40001, protocol: TCP}\n");
  std::string dry = CtlOk({"apply", "-f", WritePolicy(twice), "--dry-run"});
  EXPECT_TRUE(absl::StrContains(
      dry, "ALLOW 40001/tcp to 127.0.0.2 # api is listed 2 times"))
      << dry;
  std::string out = CtlOk({"apply", "-f", WritePolicy(twice)});
  EXPECT_EQ(CountOccurrences(out, "+ ALLOW"), 1u) << out;
  EXPECT_TRUE(absl::StrContains(out, "is listed 2 times")) << out;
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  EXPECT_EQ(rules.size(), 2u) << rules.dump();  // the allow and the deny
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));

  out = CtlOk({"delete", "allow", "40001/tcp", "127.0.0.2", "-t", "web"});
  EXPECT_TRUE(absl::StrContains(out, "Rule deleted")) << out;
  rules = CtlJson({"list"})["targets"][0]["rules"];
  EXPECT_EQ(rules.size(), 1u) << rules.dump();
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

TEST_F(ApplyTest, BadFileIsRejectedWithItsPositionAndChangesNothing) {
  CtlOk({"apply", "-f", WritePolicy(kApi)});
  nlohmann::json before = CtlJson({"list"});
  std::string file = WritePolicy(
      "  - to:\n"
      "    - ipBlock: {cidr: 127.0.0.2/32}\n"
      "    ports:\n"
      "    - {port: 0, protocol: TCP}\n");
  CommandResult r = Ctl({"apply", "-f", file});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "web.yaml:")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "spec.egress[0].ports[0].port"))
      << r.output;
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

// ---- Every validation error, through the CLI ----

// A policy file whose line numbers the cases below rely on: PolicyHead's
// eight lines (the cgroup at 7:17), then the rules from line 9 on.
std::string PolicyText(const std::string& name, const std::string& cgroup,
                       const std::string& egress_rules) {
  return absl::StrCat(PolicyHead(name, cgroup), egress_rules);
}

// An allow rule for 127.0.0.2 with `ports_line` as its only ports entry
// (line 13) and `to_line` as its only destination (line 11).
std::string OneRule(
    const std::string& ports_line,
    const std::string& to_line = "    - ipBlock: {cidr: 127.0.0.2/32}\n",
    const std::string& ports_key = "    ports:\n") {
  return absl::StrCat("  - name: api\n", "    to:\n", to_line, ports_key,
                      ports_line);
}

constexpr char kPort40002[] = "    - {port: 40002, protocol: TCP}\n";

struct BadFileCase {
  const char* what;
  // File name -> content; more than one file means a directory is applied.
  std::vector<std::pair<std::string, std::string>> files;
  // The file (relative to the case's directory) and its position, the field
  // and the reason: "FILE:LINE:COL: FIELD: REASON".
  std::string file, position, field, reason;
};

class ApplyValidationTest : public ApplyTest {
 protected:
  std::string CaseDir(int i) {
    std::string dir =
        absl::StrCat(state_dir_.substr(0, state_dir_.rfind('/')), "/case", i);
    EXPECT_EQ(mkdir(dir.c_str(), 0700), 0) << dir;
    return dir;
  }
};

TEST_F(ApplyValidationTest, EveryErrorNamesItsPlaceAndChangesNothing) {
  auto other = TestCgroup::Create("priv-other");
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string cg = cg_->relative_path();
  const std::string cg2 = (*other)->relative_path();
  const std::string good =
      PolicyText("web", cg, OneRule("    - {port: 40001, protocol: TCP}\n"));
  const std::string good_dir = CaseDir(100);
  std::ofstream(good_dir + "/web.yaml") << good;
  CtlOk({"apply", "-f", good_dir + "/web.yaml"});
  const nlohmann::json before = CtlJson({"list"});
  ASSERT_EQ(before["targets"].size(), 1u) << before.dump();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  // Every bad file would also allow 127.0.0.2:40002/tcp if it were applied.
  const std::vector<BadFileCase> cases = {
      {"unknown field, with a suggestion",
       {{"web.yaml", PolicyText("web", cg,
                                OneRule(kPort40002,
                                        "    - ipBlock: {cidr: "
                                        "127.0.0.2/32}\n",
                                        "    prots:\n"))}},
       "web.yaml",
       "12:5",
       "spec.egress[0].prots",
       "unknown field \"prots\" (did you mean \"ports\"?)"},
      {"bad CIDR",
       {{"web.yaml",
         PolicyText(
             "web", cg,
             OneRule(kPort40002, "    - ipBlock: {cidr: 127.0.0.256/32}\n"))}},
       "web.yaml",
       "11:23",
       "spec.egress[0].to[0].ipBlock.cidr",
       "bad address '127.0.0.256/32'"},
      {"host bits set",
       {{"web.yaml",
         PolicyText(
             "web", cg,
             OneRule(kPort40002, "    - ipBlock: {cidr: 127.0.0.2/8}\n"))}},
       "web.yaml",
       "11:23",
       "spec.egress[0].to[0].ipBlock.cidr",
       "127.0.0.2/8: host bits set; did you mean 127.0.0.0/8?"},
      {"port 0",
       {{"web.yaml",
         PolicyText("web", cg,
                    OneRule("    - {port: 0, protocol: TCP}\n"
                            "    - {port: 40002, protocol: TCP}\n"))}},
       "web.yaml",
       "13:14",
       "spec.egress[0].ports[0].port",
       "port 0 is out of range 1-65535"},
      {"port 65536",
       {{"web.yaml",
         PolicyText("web", cg,
                    OneRule("    - {port: 40002, protocol: TCP}\n"
                            "    - {port: 65536, protocol: TCP}\n"))}},
       "web.yaml",
       "14:14",
       "spec.egress[0].ports[1].port",
       "port 65536 is out of range 1-65535"},
      {"endPort below port",
       {{"web.yaml",
         PolicyText(
             "web", cg,
             OneRule("    - {port: 40002, endPort: 40001, protocol: TCP}\n"))}},
       "web.yaml",
       "13:30",
       "spec.egress[0].ports[0].endPort",
       "endPort 40001 is below port 40002"},
      {"unknown service, with a suggestion",
       {{"web.yaml", PolicyText("web", cg,
                                OneRule("    - {port: 40002, protocol: TCP}\n"
                                        "    - {port: smpt}\n"))}},
       "web.yaml",
       "14:14",
       "spec.egress[0].ports[1].port",
       "unknown service \"smpt\" (did you mean \"smtp\"?)"},
      {"two files target the same cgroup",
       {{"a.yaml", PolicyText("web", cg, OneRule(kPort40002))},
        {"b.yaml", PolicyText("web2", cg, OneRule(kPort40002))}},
       "b.yaml",
       "7:17",
       "spec.target.cgroupPath",
       absl::StrCat("\"", cg, "\" is already the target of policy \"web\"")},
      {"two files with the same metadata.name",
       {{"a.yaml", PolicyText("web", cg, OneRule(kPort40002))},
        {"b.yaml", PolicyText("web", cg2, OneRule(kPort40002))}},
       "b.yaml",
       "4:9",
       "metadata.name",
       "policy \"web\" is also defined in"},
      {"a good file and a bad file",
       {{"a.yaml", PolicyText("web", cg, OneRule(kPort40002))},
        {"b.yaml", PolicyText("other", cg2, OneRule("    - {port: 0}\n"))}},
       "b.yaml",
       "13:14",
       "spec.egress[0].ports[0].port",
       "port 0 is out of range 1-65535"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const BadFileCase& c = cases[i];
    SCOPED_TRACE(c.what);
    std::string dir = CaseDir(static_cast<int>(i));
    for (const auto& [name, text] : c.files) {
      std::ofstream(absl::StrCat(dir, "/", name)) << text;
    }
    std::string arg = c.files.size() == 1 ? dir + "/" + c.files[0].first : dir;
    CommandResult r = Ctl({"apply", "-f", arg});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    std::string expected = absl::StrCat(dir, "/", c.file, ":", c.position, ": ",
                                        c.field, ": ", c.reason);
    EXPECT_TRUE(absl::StrContains(r.output, expected))
        << "expected: " << expected << "\ngot: " << r.output;
    // A dry run refuses the same way.
    CommandResult dry = Ctl({"apply", "-f", arg, "--dry-run"});
    EXPECT_EQ(dry.exit_code, 2) << dry.output;
    EXPECT_TRUE(absl::StrContains(dry.output, expected)) << dry.output;
    // Nothing changed: the same rules, the same verdicts.
    EXPECT_EQ(CtlJson({"list"}), before);
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  }
  EXPECT_EQ(CtlJson({"target", "list"})["targets"].size(), 1u);
  EXPECT_TRUE((*other)->Remove().ok());
}

// A new target egressd refuses after the state rows of its rules were written
// (they are written while its rules compile; the compiler refuses more
// distinct ports than there are port classes) leaves the state as it was:
// the database holds no row of it, and a restart enforces what was.
TEST_F(ApplyTest, ANewTargetRefusedByEgressdLeavesNoStateRows) {
  auto other = TestCgroup::Create("priv-refused");
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string dir =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/refused";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0) << dir;
  std::ofstream(dir + "/web.yaml")
      << PolicyText("web", cg_->relative_path(),
                    OneRule("    - {port: 40001, protocol: TCP}\n"));
  CtlOk({"apply", "-f", dir + "/web.yaml"});
  const nlohmann::json before = CtlJson({"list"});
  std::string ports;
  for (int p = 1; p <= 65535; ++p) {
    absl::StrAppend(&ports, "    - {port: ", p, ", protocol: TCP}\n");
  }
  std::ofstream(dir + "/other.yaml")
      << PolicyText("other", (*other)->relative_path(), OneRule(ports));
  CommandResult r = Ctl({"apply", "-f", dir});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "/other.yaml: policy other: too many distinct port ranges"))
      << r.output;
  EXPECT_EQ(CtlJson({"list"}), before);
  StopDaemon(SIGTERM);
  {
    auto store = StateStore::Open(state_dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->targets.size(), 1u);
    EXPECT_EQ(state->targets.count("web"), 1u);
    auto rows = (*store)->RuleRows("other");
    ASSERT_TRUE(rows.ok()) << rows.status();
    EXPECT_EQ(*rows, 0) << "the refused target's rows were left behind";
  }
  StartDaemon();
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_TRUE((*other)->Remove().ok());
}

// `count` rules of 443/tcp (or `port`) to a /24 each: enough rows that the
// old ones are still being deleted when a kill follows the apply's answer.
std::string ManyRules(int count, int port) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    absl::StrAppend(&out, "  - to: [{ipBlock: {cidr: 10.", i / 256, ".",
                    i % 256, ".0/24}}]\n    ports: [{port: ", port,
                    ", protocol: TCP}]\n");
  }
  return out;
}

// A replacing apply writes the new rules ahead (rows of a generation of
// their own) and switches the target to them; egressd killed at once (the
// old rows maybe not yet deleted) starts again with the new rules, and no
// row of the old ones is left.
TEST_F(ApplyTest, AReplacingApplySurvivesAKillAndLeavesNoOldRows) {
  CtlOk({"apply", "-f", WritePolicy(absl::StrCat(kApi, ManyRules(3000, 443)))});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  CtlOk({"apply", "-f",
         WritePolicy(absl::StrCat("  - to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
                                  "    ports: [{port: 40002, protocol: TCP}]\n",
                                  ManyRules(2000, 444)))});
  const nlohmann::json rules = CtlJson({"list"});
  StopDaemon(SIGKILL);
  size_t stored = 0;
  {
    auto store = StateStore::Open(state_dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->targets.count("web"), 1u);
    stored = state->targets.at("web").rules.size();
    EXPECT_GT(stored, 2000u);
    EXPECT_LT(stored, 3000u) << "the old rules were loaded";
  }
  StartDaemon();
  EXPECT_EQ(CtlJson({"list"}), rules);
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  StopDaemon(SIGTERM);
  {
    auto store = StateStore::Open(state_dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto rows = (*store)->RuleRows("web");
    ASSERT_TRUE(rows.ok()) << rows.status();
    EXPECT_EQ(*rows, static_cast<int64_t>(stored)) << "old rows were left";
  }
  StartDaemon();
}

// What only egressd can find wrong (a cgroup that is another target's, a
// target that exists on another cgroup) named no file, and one of them
// exited 1 though it is bad input. Both name the file and the target's
// line and column, exit 2, and change nothing.
TEST_F(ApplyTest, ConflictsWithEnforcedTargetsNameTheFileAndExit2) {
  auto other = TestCgroup::Create("priv-moved");
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string dir = state_dir_.substr(0, state_dir_.rfind('/'));
  CtlOk({"apply", "-f", WritePolicy(kApi)});
  const nlohmann::json before = CtlJson({"list"});

  std::ofstream(dir + "/moved.yaml")
      << PolicyText("web", (*other)->relative_path(), OneRule(kPort40002));
  CommandResult r = Ctl({"apply", "-f", dir + "/moved.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "/moved.yaml:7:17: spec.target: target web exists for cgroup"))
      << r.output;

  std::ofstream(dir + "/web2.yaml")
      << PolicyText("web2", cg_->relative_path(), OneRule(kPort40002));
  r = Ctl({"apply", "-f", dir + "/web2.yaml", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "/web2.yaml:7:17: spec.target: policy web2: cgroup "))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, " is already target 'web'"))
      << r.output;
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_TRUE((*other)->Remove().ok());
}

// ---- Applied policies persist ----

// One probe per kind of decision the policy makes, run in the target.
std::vector<int> PolicyVerdicts() {
  return {TcpConnect("127.0.0.2", 40001),  // allowed by "api"
          TcpConnect("127.0.0.2", 40002),  // no rule: denied
          UdpSendto("127.0.0.53", 53),     // allowed by "dns"
          TcpConnect("127.0.0.5", 40001),  // in "api"'s except: denied
          TcpConnect("127.0.0.9", 40001),  // in "api" but egressDeny: denied
          TcpConnect("::1", 40001)};       // no rule: denied
}

TEST_F(ApplyTest, AppliedPolicySurvivesRestartAndRebootLikeRestart) {
  std::string file = WritePolicy(
      "  - name: api\n"
      "    comment: the API\n"
      "    to:\n"
      "    - ipBlock: {cidr: 127.0.0.0/28, except: [127.0.0.4/30]}\n"
      "    ports:\n"
      "    - {port: 40001, protocol: TCP}\n"
      "  - name: dns\n"
      "    to: [{ipBlock: {cidr: 127.0.0.53/32}}]\n"
      "    ports: [{port: domain, protocol: UDP}]\n");
  CtlOk({"apply", "-f", file});
  const std::vector<bool> expect_allowed = {true,  false, true,
                                            false, false, false};
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    auto r = RunInCgroupMulti(cg_->path(), PolicyVerdicts);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->size(), expect_allowed.size());
    for (size_t i = 0; i < r->size(); ++i) {
      if (expect_allowed[i]) {
        EXPECT_TRUE(Allowed((*r)[i]))
            << "probe " << i << ": " << strerror((*r)[i]);
      } else {
        EXPECT_EQ((*r)[i], EPERM) << "probe " << i;
      }
    }
  };
  check("applied");
  const nlohmann::json rules = CtlJson({"list"});
  ASSERT_EQ(rules["targets"].size(), 1u) << rules.dump();
  const nlohmann::json targets = CtlJson({"target", "list"});

  StopDaemon(SIGTERM);
  check("egressd stopped");
  StartDaemon();
  EXPECT_EQ(CtlJson({"list"}), rules);
  EXPECT_EQ(CtlJson({"target", "list"}), targets);
  check("restarted");

  // A reboot: egressd dies and bpffs is empty; the state file remains.
  StopDaemon(SIGKILL);
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  // The kernel releases the unpinned links shortly after (asynchronously).
  bool detached = false;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5);
       !detached && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(10))) {
    detached = Allowed(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  }
  ASSERT_TRUE(detached) << "the pins are gone, so nothing should be attached";
  StartDaemon();
  EXPECT_EQ(CtlJson({"list"}), rules);
  EXPECT_EQ(CtlJson({"target", "list"}), targets);
  check("restarted after a reboot");

  // And it is still the applied policy: applying it again changes nothing.
  std::string dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_FALSE(absl::StrContains(dry, "+ ")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "- ")) << dry;
}

// ---- Atomic apply of large policies under continuous connects ----

// Filler rules: `count` rules, each allowing 443/tcp to a /16 of 10/8 minus
// kExceptsPerRule /32 excepts spaced 512 addresses apart. Each except leaves
// 9 networks of its /23 (a /24, a /25, ... a /32), so each rule has 1152
// destinations, one rule-map entry each: A's 88 rules are 101,376
// destinations, B's 44 are 50,688. (Filler is written with excepts because
// policy files are limited to 1 MiB: 100,000 ipBlocks written out would not
// fit.) `variant` shifts the excepts so that A and B differ in every filler
// destination.
constexpr int kFillerRulesA = 88;
constexpr int kFillerRulesB = 44;
constexpr int kExceptsPerRule = 128;
constexpr int kDestinationsPerFillerRule = kExceptsPerRule * 9;

std::string FillerRules(int count, int variant) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    absl::StrAppend(&out, "  - to: [{ipBlock: {cidr: 10.", i,
                    ".0.0/16, except: [");
    for (int j = 0; j < kExceptsPerRule; ++j) {
      absl::StrAppend(&out, j == 0 ? "" : ", ", "10.", i, ".", 2 * j, ".",
                      1 + variant);
    }
    absl::StrAppend(&out, "]}}]\n    ports: [{port: 443, protocol: TCP}]\n");
  }
  return out;
}

struct SwapPorts {
  uint16_t both, only_a, neither;
};

// Policy A (with_a) allows both and only_a, B allows both; each denies
// neither explicitly. Both carry the filler.
std::string LargePolicy(const std::string& cgroup, const SwapPorts& p,
                        bool with_a) {
  std::string rules = absl::StrCat(
      "  - name: both\n"
      "    to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
      "    ports: [{port: ",
      p.both, ", protocol: TCP}]\n");
  if (with_a) {
    absl::StrAppend(&rules,
                    "  - name: only-a\n"
                    "    to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
                    "    ports: [{port: ",
                    p.only_a, ", protocol: TCP}]\n");
  }
  absl::StrAppend(
      &rules,
      with_a ? FillerRules(kFillerRulesA, 0) : FillerRules(kFillerRulesB, 1),
      "  egressDeny:\n"
      "  - name: neither\n"
      "    to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
      "    ports: [{port: ",
      p.neither, ", protocol: TCP}]\n");
  return PolicyText("web", cgroup, rules);
}

// What the prober saw, per port.
struct Tally {
  int64_t allowed = 0, denied = 0, other = 0;
  int last_other = 0;
  void Add(int rc) {
    if (rc == 0) {
      ++allowed;
    } else if (rc == EPERM) {
      ++denied;
    } else {
      ++other;
      last_other = rc;
    }
  }
  int64_t total() const { return allowed + denied + other; }
};

TEST_F(ApplyTest, SwappingLargePoliciesNeverOpensOrClosesAGap) {
  auto both = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kDiscard);
  auto only_a =
      TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kDiscard);
  auto neither =
      TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kDiscard);
  ASSERT_TRUE(both.ok() && only_a.ok() && neither.ok());
  const SwapPorts ports = {(*both)->port(), (*only_a)->port(),
                           (*neither)->port()};
  const std::string dir = state_dir_.substr(0, state_dir_.rfind('/'));
  const std::string file_a = dir + "/a.yaml", file_b = dir + "/b.yaml";
  std::ofstream(file_a) << LargePolicy(cg_->relative_path(), ports, true);
  std::ofstream(file_b) << LargePolicy(cg_->relative_path(), ports, false);

  // The policies are as large as claimed.
  for (const std::string& f : {file_a, file_b}) {
    auto policies = policy::LoadPolicies(f);
    ASSERT_TRUE(policies.ok()) << policies.status();
    size_t destinations = 0;
    for (const policy::Rule& r : (*policies)[0].rules) {
      destinations += r.destinations.size();
    }
    if (f == file_a) {
      EXPECT_GE(destinations, 100000u);
      EXPECT_EQ(
          destinations,
          static_cast<size_t>(kFillerRulesA * kDestinationsPerFillerRule + 3));
    } else {
      EXPECT_EQ(
          destinations,
          static_cast<size_t>(kFillerRulesB * kDestinationsPerFillerRule + 2));
    }
  }

  absl::Time t0 = absl::Now();
  CtlOk({"apply", "-f", file_a});
  absl::Duration first_apply = absl::Now() - t0;

  // The prober: batches of 300 connects in the target cgroup until told to
  // stop (or 20,000 batches, or 120 s). A 10 ms pause between batches leaves
  // egressd some of the 2 CPUs; the connects still span every swap.
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  Tally t_both, t_a, t_neither;
  std::atomic<bool> prober_failed{false};
  std::string prober_error;  // written before prober_failed is set
  // When each batch ran and what only_a got; read after the join.
  struct Batch {
    absl::Time start, end;
    int a_allowed = 0, a_denied = 0;
  };
  std::vector<Batch> batch_log;
  std::thread prober([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (!stop.load() && batches.load() < 20000 && absl::Now() < deadline) {
      Batch b;
      b.start = absl::Now();
      auto r = RunInCgroupMulti(cg_->path(), [ports] {
        std::vector<int> out;
        for (int i = 0; i < 100; ++i) {
          out.push_back(TcpConnect("127.0.0.2", ports.both));
          out.push_back(TcpConnect("127.0.0.2", ports.only_a));
          out.push_back(TcpConnect("127.0.0.2", ports.neither));
        }
        return out;
      });
      if (!r.ok()) {
        prober_error = r.status().ToString();
        prober_failed = true;
        return;
      }
      b.end = absl::Now();
      for (size_t i = 0; i + 2 < r->size(); i += 3) {
        t_both.Add((*r)[i]);
        t_a.Add((*r)[i + 1]);
        t_neither.Add((*r)[i + 2]);
        if ((*r)[i + 1] == 0) ++b.a_allowed;
        if ((*r)[i + 1] == EPERM) ++b.a_denied;
      }
      batch_log.push_back(b);
      ++batches;
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  auto join = absl::MakeCleanup([&] {
    stop = true;
    prober.join();
  });

  // Swap A -> B -> A -> B -> A while the prober runs; after each apply
  // returns, the new policy alone decides.
  auto wait_for_batches = [&](int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    int target = batches.load() + n;
    while (batches.load() < target && absl::Now() < deadline &&
           !prober_failed.load()) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  };
  wait_for_batches(2);
  const int batches_before_swaps = batches.load();
  std::vector<absl::Duration> swap_times;
  // [start, end] of each `egressctl apply`; swap k switches to A if k is odd.
  std::vector<std::pair<absl::Time, absl::Time>> windows;
  for (int swap = 0; swap < 4; ++swap) {
    const bool to_a = swap % 2 == 1;
    absl::Time s = absl::Now();
    CommandResult r = Ctl({"apply", "-f", to_a ? file_a : file_b});
    windows.push_back({s, absl::Now()});
    swap_times.push_back(absl::Now() - s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    uint16_t p = ports.only_a;
    EXPECT_EQ(InCgroup([p] { return TcpConnect("127.0.0.2", p); }),
              to_a ? 0 : EPERM)
        << "after swap " << swap;
    wait_for_batches(2);  // so at least one runs wholly before the next swap
  }
  std::move(join).Invoke();
  ASSERT_FALSE(prober_failed.load()) << prober_error;

  std::string times;
  for (absl::Duration d : swap_times) {
    absl::StrAppend(&times, " ", absl::FormatDuration(d));
  }
  std::cout << "first apply (A): " << absl::FormatDuration(first_apply)
            << "; swaps:" << times << "; probes: " << t_both.total() * 3
            << " in " << batches.load() << " batches\n";

  EXPECT_EQ(t_both.denied + t_both.other, 0)
      << "both allow it: denied " << t_both.denied << " times, other errors "
      << t_both.other << " (last: " << strerror(t_both.last_other) << ")";
  EXPECT_EQ(t_neither.allowed + t_neither.other, 0)
      << "both deny it: allowed " << t_neither.allowed
      << " times, other errors " << t_neither.other
      << " (last: " << strerror(t_neither.last_other) << ")";
  EXPECT_EQ(t_a.other, 0) << "neither A nor B decides " << t_a.last_other;
  // The prober really ran during the swaps, under both policies.
  EXPECT_GE(batches.load() - batches_before_swaps, 10);
  EXPECT_GT(t_a.allowed, 100);
  EXPECT_GT(t_a.denied, 100);

  // Outside the apply windows, only_a got exactly what the policy in force
  // decides: A before the first swap and after odd swaps, B after even ones.
  int checked = 0, mismatched = 0;
  for (const Batch& b : batch_log) {
    bool during = false, a_in_force = true;
    for (size_t k = 0; k < windows.size(); ++k) {
      if (b.end < windows[k].first) break;
      if (b.start <= windows[k].second) {
        during = true;
        break;
      }
      a_in_force = k % 2 == 1;
    }
    if (during) continue;
    ++checked;
    if (a_in_force ? b.a_denied != 0 : b.a_allowed != 0) ++mismatched;
  }
  EXPECT_EQ(mismatched, 0) << "of " << checked << " batches between swaps";
  EXPECT_GE(checked, 4);
}

// /metrics is open to every local user: rules appear there by id, never with
// their text or comment, and editing a comment keeps the rule's series.
TEST_F(ApplyTest, MetricsNameRulesByIdAndAnEditedCommentKeepsTheSeries) {
  auto api = [](const std::string& comment) {
    return absl::StrCat("  - name: ", comment,
                        "\n"
                        "    to:\n"
                        "    - ipBlock: {cidr: 127.0.0.2/32}\n"
                        "    ports:\n"
                        "    - {port: 40001, protocol: TCP}\n");
  };
  CtlOk({"apply", "-f", WritePolicy(api("token-one-f12"))});
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(rules.size(), 2u) << rules.dump();
  uint64_t id = 0;
  for (const auto& r : rules) {
    if (r["action"] == "allow") id = r["id"].get<uint64_t>();
  }
  ASSERT_NE(id, 0u) << rules.dump();
  const std::string series = absl::StrCat("egress_rule_hits_total{rule_id=\"",
                                          id, "\",target=\"web\"} ");
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  std::string m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(m, series + "1")) << m;

  CtlOk({"apply", "-f", WritePolicy(api("token-two-f12"))});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(m, series + "2")) << m;
  EXPECT_FALSE(absl::StrContains(m, "token-")) << m;
  EXPECT_FALSE(absl::StrContains(m, "rule=")) << m;
}

}  // namespace
}  // namespace egress::testing
