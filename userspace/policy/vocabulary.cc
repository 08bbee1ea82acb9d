#include "userspace/policy/vocabulary.h"

#include "absl/strings/str_cat.h"

namespace egress::policy {

absl::StatusOr<Mode> ParseMode(absl::string_view word) {
  if (word == "enforce") return Mode::kEnforce;
  if (word == "audit") return Mode::kAudit;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", word, "': use enforce or audit"));
}

std::string ModeName(Mode mode) {
  return mode == Mode::kAudit ? "audit" : "enforce";
}

Mode ModeFromKernel(uint8_t value) {
  return value == EGRESS_MODE_AUDIT ? Mode::kAudit : Mode::kEnforce;
}

absl::StatusOr<LoggingLevel> ParseLoggingLevel(absl::string_view word) {
  if (word == "off") return LoggingLevel::kOff;
  if (word == "denied") return LoggingLevel::kDenied;
  if (word == "all") return LoggingLevel::kAll;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown logging level '", word, "': use off, denied or all"));
}

std::string LoggingLevelName(LoggingLevel level) {
  switch (level) {
    case LoggingLevel::kOff:
      return "off";
    case LoggingLevel::kAll:
      return "all";
    case LoggingLevel::kDenied:
      break;
  }
  return "denied";
}

uint8_t LoggingFlags(LoggingLevel level) {
  switch (level) {
    case LoggingLevel::kOff:
      return EGRESS_TF_EVENT_NONE;
    case LoggingLevel::kAll:
      return EGRESS_TF_EVENT_ALLOW;
    case LoggingLevel::kDenied:
      break;
  }
  return 0;
}

absl::StatusOr<TargetSource> ParseTargetSource(absl::string_view word) {
  if (word == "cgroup") return TargetSource::kCgroup;
  if (word == "unit") return TargetSource::kUnit;
  if (word == "pid") return TargetSource::kPid;
  if (word == "pattern") return TargetSource::kPattern;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown target kind '", word, "': use cgroup, unit, pid or pattern"));
}

std::string TargetSourceName(TargetSource source) {
  switch (source) {
    case TargetSource::kUnit:
      return "unit";
    case TargetSource::kPid:
      return "pid";
    case TargetSource::kPattern:
      return "pattern";
    case TargetSource::kCgroup:
      break;
  }
  return "cgroup";
}

}  // namespace egress::policy
