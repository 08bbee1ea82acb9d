#include "userspace/policy/vocabulary.h"

#include "userspace/policy/word_table.h"

namespace egress::policy {
namespace {

constexpr WordOf<Mode> kModes[] = {
    {Mode::kEnforce, "enforce"},
    {Mode::kAudit, "audit"},
};
constexpr WordOf<LoggingLevel> kLoggingLevels[] = {
    {LoggingLevel::kOff, "off"},
    {LoggingLevel::kDenied, "denied"},
    {LoggingLevel::kAll, "all"},
};
constexpr WordOf<TargetSource> kTargetSources[] = {
    {TargetSource::kCgroup, "cgroup"},
    {TargetSource::kUnit, "unit"},
    {TargetSource::kPid, "pid"},
    {TargetSource::kPattern, "pattern"},
    {TargetSource::kUser, "user"},
    {TargetSource::kContainer, "container"},
    {TargetSource::kSelector, "selector"},
    {TargetSource::kPod, "pod"},
    {TargetSource::kPodSelector, "pod-selector"},
};

}  // namespace

absl::StatusOr<Mode> ParseMode(absl::string_view word) {
  return ParseWordIn(kModes, "mode", word);
}

std::string ModeName(Mode mode) { return WordFor(kModes, mode); }

Mode ModeFromKernel(uint8_t value) {
  return value == EGRESS_MODE_AUDIT ? Mode::kAudit : Mode::kEnforce;
}

absl::StatusOr<LoggingLevel> ParseLoggingLevel(absl::string_view word) {
  return ParseWordIn(kLoggingLevels, "logging level", word);
}

std::string LoggingLevelName(LoggingLevel level) {
  return WordFor(kLoggingLevels, level, /*fallback=*/1);  // denied
}

uint8_t LoggingFlags(LoggingLevel level, Mode mode) {
  switch (level) {
    case LoggingLevel::kOff:
      return EGRESS_TF_EVENT_NONE;
    case LoggingLevel::kAll:
      return EGRESS_TF_EVENT_ALLOW;
    case LoggingLevel::kDenied:
      break;
  }
  // Audit mode is for learning what the target needs: the decisions its
  // current rules allow are part of that (`suggest` could not propose what
  // left no record), so they are recorded too.
  return mode == Mode::kAudit ? EGRESS_TF_EVENT_ALLOW : 0;
}

absl::StatusOr<TargetSource> ParseTargetSource(absl::string_view word) {
  return ParseWordIn(kTargetSources, "target kind", word);
}

std::string TargetSourceName(TargetSource source) {
  return WordFor(kTargetSources, source);
}

}  // namespace egress::policy
