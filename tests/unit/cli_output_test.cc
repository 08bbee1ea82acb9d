// egressctl's text for typed responses.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/cli/output.h"

namespace egress::cli {
namespace {

using ::testing::HasSubstr;

TEST(CliOutputTest, RuleAddPrintsEachWarning) {
  control::RuleAddResponse r;
  r.target = "web";
  r.number = 2;
  r.rule = "ALLOW smtp to 10.0.0.5 # (25/tcp)";
  r.warnings = {"allow smtp is shadowed by rule 1: DENY any to 10.0.0.0/8",
                "second"};
  EXPECT_EQ(FormatResponse(r),
            "Rule added to web [2]: ALLOW smtp to 10.0.0.5 # (25/tcp)\n"
            "warning: allow smtp is shadowed by rule 1: DENY any to "
            "10.0.0.0/8\n"
            "warning: second\n");
}

// A dry run prints the diff lines `apply --dry-run` prints for the change.
TEST(CliOutputTest, DryRunEditsPrintTheDiffLines) {
  control::RuleAddResponse added;
  added.target = "web";
  added.rule = "ALLOW 443/tcp to 10.0.0.6";
  added.dry_run = true;
  EXPECT_EQ(FormatResponse(added),
            "Would update target web\n  + ALLOW 443/tcp to 10.0.0.6\nDry run: "
            "nothing changed.\n");
  control::RuleDeleteResponse deleted;
  deleted.target = "web";
  deleted.deleted = "ALLOW smtp to 10.0.0.5 # (25/tcp)";
  deleted.dry_run = true;
  EXPECT_EQ(FormatResponse(deleted),
            "Would update target web\n  - ALLOW smtp to 10.0.0.5 # "
            "(25/tcp)\nDry run: nothing changed.\n");
  added.skipped = true;
  added.number = 3;
  EXPECT_EQ(FormatResponse(added),
            "Skipping adding existing rule (3)\nDry run: nothing changed.\n");
}

TEST(CliOutputTest, SkippedRuleKeepsUfwWording) {
  control::RuleAddResponse r;
  r.skipped = true;
  r.number = 1;
  EXPECT_EQ(FormatResponse(r), "Skipping adding existing rule (1)\n");
}

// `apply` and `apply --dry-run` name a change of mode or logging, old and
// new, the mode a new target starts in, and a rule whose text alone
// changes: an audit target switched to enforce must not pass unseen.
TEST(CliOutputTest, ApplyShowsModeLoggingAndTextChanges) {
  control::TargetChange update;
  update.target = "d";
  update.cgroup = "/aud1/d";
  update.action = "update";
  update.mode = policy::Mode::kEnforce;
  update.mode_from = policy::Mode::kAudit;
  update.logging = policy::LoggingLevel::kDenied;
  update.logging_from = policy::LoggingLevel::kAll;
  update.changed = {{"ALLOW 443 to 10.0.0.1 # old", "ALLOW 443 to 10.0.0.1"}};
  control::TargetChange create;
  create.target = "e";
  create.cgroup = "/aud1/e";
  create.action = "create";
  create.mode = policy::Mode::kAudit;
  create.logging = policy::LoggingLevel::kAll;
  create.added = {"ALLOW 53 to 10.0.0.53"};
  control::ApplyResponse r;
  r.dry_run = true;
  r.changes = {update, create};
  EXPECT_EQ(FormatResponse(r),
            "Would update target d (/aud1/d)\n"
            "  mode audit -> enforce\n"
            "  logging all -> denied\n"
            "  ~ ALLOW 443 to 10.0.0.1 (was: ALLOW 443 to 10.0.0.1 # old)\n"
            "Would create target e (/aud1/e): mode audit, logging all\n"
            "  + ALLOW 53 to 10.0.0.53\n"
            "Dry run: nothing changed.\n");
  r.dry_run = false;
  EXPECT_THAT(FormatResponse(r),
              HasSubstr("updated target d (/aud1/d)\n  mode audit -> "
                        "enforce\n  logging all -> denied\n"));
}

// Every diff line of every target, in order, whatever the size of the
// change (the text is written in place, sized up front).
TEST(CliOutputTest, ApplyListsEveryLineOfEveryTarget) {
  control::ApplyResponse r;
  r.note = "a note";
  std::string want = "a note\n";
  for (int t = 0; t < 3; ++t) {
    control::TargetChange c;
    c.target = absl::StrCat("t", t);
    c.cgroup = absl::StrCat("/t", t);
    c.action = "update";
    absl::StrAppend(&want, "updated target t", t, " (/t", t, ")\n");
    for (int i = 0; i < 1000 * t; ++i) {
      c.added.push_back(absl::StrCat("ALLOW ", i, "/tcp to 10.0.0.", i % 250));
      absl::StrAppend(&want, "  + ALLOW ", i, "/tcp to 10.0.0.", i % 250, "\n");
    }
    c.changed = {{"ALLOW 1 # a", "ALLOW 1 # b"}};
    absl::StrAppend(&want, "  ~ ALLOW 1 # b (was: ALLOW 1 # a)\n");
    for (int i = 0; i < 700 * t; ++i) {
      c.removed.push_back(absl::StrCat("DENY ", i, "/udp"));
      absl::StrAppend(&want, "  - DENY ", i, "/udp\n");
    }
    c.kept_temporary = {"ALLOW 2"};
    absl::StrAppend(&want, "  = ALLOW 2 (temporary: kept until it ends)\n");
    r.changes.push_back(std::move(c));
  }
  EXPECT_EQ(FormatResponse(r), want);
}

// A container, selector or pod target has no one cgroup: `apply` printed
// "created target zz ()". It names what the target selects.
TEST(CliOutputTest, ApplyNamesWhatAWorkloadTargetSelects) {
  control::TargetChange create;
  create.target = "zz";
  create.action = "create";
  create.workload = "selector app=web";
  control::ApplyResponse r;
  r.changes = {create};
  EXPECT_EQ(FormatResponse(r), "created target zz (selector app=web)\n");
}

TEST(CliOutputTest, EventsArePrintedVerbatim) {
  control::EventsResponse r;
  r.lines = {"{\"verdict\":\"DENIED\"}", "second line"};
  EXPECT_EQ(FormatResponse(r), "{\"verdict\":\"DENIED\"}\nsecond line\n");
  EXPECT_EQ(FormatResponse(control::EventsResponse{}), "");
}

// A rule edit of a target a --policy_dir file defines lasts until the next
// reload: the warning names the file and what to do; other edits, and an
// add that changed nothing, say nothing.
TEST(CliOutputTest, EditsOfAPolicyDirTargetWarnThatTheyAreTemporary) {
  control::RuleAddResponse added;
  added.target = "web";
  added.policy_file = "/etc/egress/policies.d/web.yaml";
  EXPECT_EQ(PolicyFileEditWarning(added),
            "target web is defined by /etc/egress/policies.d/web.yaml "
            "(egressd --policy_dir): this change lasts only until that "
            "directory is next reloaded (any change to it, SIGHUP, 'egressctl "
            "reload', a restart); to keep it, make it in "
            "/etc/egress/policies.d/web.yaml ('egressctl export --target web' "
            "prints the rules now enforced)");
  control::RuleDeleteResponse deleted;
  deleted.target = "web";
  deleted.policy_file = added.policy_file;
  EXPECT_EQ(PolicyFileEditWarning(deleted), PolicyFileEditWarning(added));
  added.skipped = true;
  EXPECT_EQ(PolicyFileEditWarning(added), "");
  deleted.policy_file.clear();
  EXPECT_EQ(PolicyFileEditWarning(deleted), "");
  EXPECT_EQ(PolicyFileEditWarning(control::StatusResponse{}), "");
}

// `status` names the policy directory, the file of each target it defines,
// and a rejected reload with its error and what stays enforced.
TEST(CliOutputTest, StatusShowsThePolicyDirectoryAndARejectedReload) {
  control::StatusResponse s;
  control::TargetInfo t;
  t.name = "web";
  t.policy_file = "/p/web.yaml";
  s.targets = {t};
  s.policy_dir = "/p";
  std::string text = FormatResponse(s);
  EXPECT_THAT(text, HasSubstr("\npolicy directory /p\n"));
  EXPECT_THAT(text, HasSubstr("\n  policy file /p/web.yaml (egressd "
                              "--policy_dir): rule edits last until it is "
                              "reloaded\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("REJECTED")));
  s.policy_dir_error = "/p/zz.yaml:9:13: spec.egress[0].ports[0].port: bad";
  text = FormatResponse(s);
  EXPECT_THAT(text, HasSubstr("warning: the last reload of /p was REJECTED: "
                              "/p/zz.yaml:9:13: spec.egress[0].ports[0].port: "
                              "bad\nwarning: the policy enforced before stays "
                              "in force until a reload succeeds"));
  s.policy_dir_error = "partially applied: x";
  text = FormatResponse(s);
  EXPECT_THAT(text, HasSubstr("FAILED PART-WAY: partially applied: x\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("stays in force")));
  // -o json carries the same, and an egressd without a directory none.
  const nlohmann::json j = control::EncodeResponse(s);
  EXPECT_EQ(j["policy_dir"], "/p");
  EXPECT_EQ(j["policy_dir_error"], "partially applied: x");
  EXPECT_EQ(j["targets"][0]["policy_file"], "/p/web.yaml");
  EXPECT_FALSE(control::EncodeResponse(control::StatusResponse{})
                   .contains("policy_dir"));
}

TEST(CliOutputTest, StatusVerboseAddsDetail) {
  control::StatusResponse s;
  control::TargetInfo t;
  t.name = "web";
  t.source = policy::TargetSource::kUnit;
  t.source_value = "nginx.service";
  t.counters = control::TargetCounters{};
  t.warnings = {"cgroup missing"};
  s.targets = {t};
  const std::string plain = FormatResponse(s);
  EXPECT_THAT(plain, HasSubstr("  warning: cgroup missing\n"));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("source unit")));
  const std::string verbose = FormatResponse(s, {.verbose = true});
  EXPECT_THAT(verbose, HasSubstr("source unit nginx.service, logging denied"));
  EXPECT_THAT(verbose, HasSubstr("flows opened 0"));
}

// A workload target's cgroups are its containers (pods): status names them
// as `docker ps` does, verbose adds where they run; JSON keeps the path and
// the cgroup id next to the names.
TEST(CliOutputTest, StatusNamesTheContainersOfAWorkloadTarget) {
  control::StatusResponse s;
  control::TargetInfo t;
  t.name = "fronts";
  t.source = policy::TargetSource::kSelector;
  t.source_value = "app=web";
  const std::string id(64, 'a');
  control::CgroupRef web{"/docker/" + id, 7};
  web.container = control::ContainerName{"web", id.substr(0, 12), "nginx:1"};
  control::CgroupRef pod{"/kubepods/burstable/poduid1", 8};
  pod.pod = control::PodName{"shop", "web-7d9"};
  control::CgroupRef unknown{"/docker/gone", 9};
  t.cgroups = {web, pod, unknown};
  s.targets = {t};
  const std::string plain = FormatResponse(s);
  EXPECT_THAT(plain, HasSubstr("\n  container web (aaaaaaaaaaaa)\n"));
  EXPECT_THAT(plain, HasSubstr("\n  pod shop/web-7d9\n"));
  EXPECT_THAT(plain, HasSubstr("\n  cgroup /docker/gone\n"));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr(id)));
  const std::string verbose = FormatResponse(s, {.verbose = true});
  EXPECT_THAT(verbose,
              HasSubstr(absl::StrCat("  matches container web (aaaaaaaaaaaa): "
                                     "/docker/",
                                     id, " (id 7)\n")));
  EXPECT_THAT(verbose, HasSubstr("  matches pod shop/web-7d9: "
                                 "/kubepods/burstable/poduid1 (id 8)\n"));
  EXPECT_THAT(verbose, HasSubstr("  matches /docker/gone (id 9)\n"));

  // What egressctl -o json prints: the reply decoded and written again.
  absl::StatusOr<control::Response> back = control::DecodeResponse(
      control::StatusRequest{},
      nlohmann::json::parse(control::EncodeResponse(s).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  const nlohmann::json j = control::EncodeResponse(*back);
  const nlohmann::json& c = j["targets"][0]["cgroups"];
  ASSERT_EQ(c.size(), 3u) << j.dump(2);
  EXPECT_EQ(c[0]["path"], "/docker/" + id);
  EXPECT_EQ(c[0]["id"], 7);
  EXPECT_EQ(c[0]["container"]["name"], "web");
  EXPECT_EQ(c[0]["container"]["id"], "aaaaaaaaaaaa");
  EXPECT_EQ(c[0]["container"]["image"], "nginx:1");
  EXPECT_FALSE(c[0].contains("pod"));
  EXPECT_EQ(c[1]["pod"]["namespace"], "shop");
  EXPECT_EQ(c[1]["pod"]["name"], "web-7d9");
  EXPECT_FALSE(c[2].contains("container"));
}

}  // namespace
}  // namespace egress::cli
