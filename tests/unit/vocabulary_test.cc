#include "userspace/policy/vocabulary.h"

#include "absl/status/status.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::policy {
namespace {

TEST(VocabularyTest, ModeRoundTrips) {
  for (Mode m : {Mode::kEnforce, Mode::kAudit}) {
    absl::StatusOr<Mode> parsed = ParseMode(ModeName(m));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, m);
    EXPECT_EQ(ModeFromKernel(KernelMode(m)), m);
  }
  EXPECT_EQ(ModeName(Mode::kEnforce), "enforce");
  EXPECT_EQ(ModeName(Mode::kAudit), "audit");
}

TEST(VocabularyTest, ModeIsTheKernelValue) {
  EXPECT_EQ(KernelMode(Mode::kEnforce), EGRESS_MODE_ENFORCE);
  EXPECT_EQ(KernelMode(Mode::kAudit), EGRESS_MODE_AUDIT);
  EXPECT_EQ(ModeFromKernel(EGRESS_MODE_AUDIT), Mode::kAudit);
  // Anything the kernel map holds that is not audit enforces: fail closed.
  EXPECT_EQ(ModeFromKernel(0xff), Mode::kEnforce);
}

TEST(VocabularyTest, LoggingLevelRoundTrips) {
  for (LoggingLevel l :
       {LoggingLevel::kOff, LoggingLevel::kDenied, LoggingLevel::kAll}) {
    absl::StatusOr<LoggingLevel> parsed =
        ParseLoggingLevel(LoggingLevelName(l));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, l);
  }
  EXPECT_EQ(LoggingLevelName(LoggingLevel::kOff), "off");
  EXPECT_EQ(LoggingLevelName(LoggingLevel::kDenied), "denied");
  EXPECT_EQ(LoggingLevelName(LoggingLevel::kAll), "all");
}

TEST(VocabularyTest, LoggingFlags) {
  EXPECT_EQ(LoggingFlags(LoggingLevel::kOff, Mode::kEnforce),
            EGRESS_TF_EVENT_NONE);
  EXPECT_EQ(LoggingFlags(LoggingLevel::kDenied, Mode::kEnforce), 0);
  EXPECT_EQ(LoggingFlags(LoggingLevel::kAll, Mode::kEnforce),
            EGRESS_TF_EVENT_ALLOW);
  // Audit mode learns what the rules allow too.
  EXPECT_EQ(LoggingFlags(LoggingLevel::kDenied, Mode::kAudit),
            EGRESS_TF_EVENT_ALLOW);
  EXPECT_EQ(LoggingFlags(LoggingLevel::kOff, Mode::kAudit),
            EGRESS_TF_EVENT_NONE);
}

TEST(VocabularyTest, TargetSourceRoundTrips) {
  for (TargetSource s : {TargetSource::kCgroup, TargetSource::kUnit,
                         TargetSource::kPid, TargetSource::kPattern}) {
    absl::StatusOr<TargetSource> parsed =
        ParseTargetSource(TargetSourceName(s));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(TargetSourceName(TargetSource::kCgroup), "cgroup");
  EXPECT_EQ(TargetSourceName(TargetSource::kUnit), "unit");
  EXPECT_EQ(TargetSourceName(TargetSource::kPid), "pid");
  EXPECT_EQ(TargetSourceName(TargetSource::kPattern), "pattern");
}

// Words are exact: no other case, no spaces, and the error names the word
// and the choices.
TEST(VocabularyTest, ErrorsNameTheWord) {
  EXPECT_STATUS(ParseMode("block"), absl::StatusCode::kInvalidArgument,
                "unknown mode 'block': use enforce or audit");
  EXPECT_STATUS(ParseMode("Enforce"), absl::StatusCode::kInvalidArgument,
                "'Enforce'");
  EXPECT_STATUS(ParseMode(""), absl::StatusCode::kInvalidArgument,
                "unknown mode ''");
  EXPECT_STATUS(ParseLoggingLevel("denid"), absl::StatusCode::kInvalidArgument,
                "unknown logging level 'denid': use off, denied or all");
  EXPECT_STATUS(ParseLoggingLevel("all "), absl::StatusCode::kInvalidArgument,
                "'all '");
  EXPECT_STATUS(ParseTargetSource("glob"), absl::StatusCode::kInvalidArgument,
                "unknown target kind 'glob': use cgroup, unit, pid, pattern, "
                "user, container, selector, pod or pod-selector");
}

}  // namespace
}  // namespace egress::policy
