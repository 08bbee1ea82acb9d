// egressctl's text for typed responses.
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
  r.rule = "ALLOW smtp (25/tcp) to 10.0.0.5";
  r.warnings = {"allow smtp is shadowed by rule 1: DENY any to 10.0.0.0/8",
                "second"};
  EXPECT_EQ(FormatResponse(r),
            "Rule added to web [2]: ALLOW smtp (25/tcp) to 10.0.0.5\n"
            "warning: allow smtp is shadowed by rule 1: DENY any to "
            "10.0.0.0/8\n"
            "warning: second\n");
}

TEST(CliOutputTest, SkippedRuleKeepsUfwWording) {
  control::RuleAddResponse r;
  r.skipped = true;
  r.number = 1;
  EXPECT_EQ(FormatResponse(r), "Skipping adding existing rule (1)\n");
}

TEST(CliOutputTest, EventsArePrintedVerbatim) {
  control::EventsResponse r;
  r.lines = {"{\"verdict\":\"DENIED\"}", "second line"};
  EXPECT_EQ(FormatResponse(r), "{\"verdict\":\"DENIED\"}\nsecond line\n");
  EXPECT_EQ(FormatResponse(control::EventsResponse{}), "");
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

}  // namespace
}  // namespace egress::cli
