#include "userspace/cli/ufw_hints.h"

#include "absl/strings/str_cat.h"

namespace egress::cli {
namespace {

struct Hint {
  absl::string_view verb;
  absl::string_view hint;
};

constexpr Hint kHints[] = {
    {"default",
     "egress denies by default whatever no allow rule permits; to only "
     "record instead of refusing, use 'egressctl mode enforce|audit'"},
    {"enable",
     "enforcement starts when a target exists: 'egressctl target add NAME "
     "--cgroup PATH'; 'egressctl mode enforce' turns audit off"},
    {"disable",
     "use 'egressctl mode audit' to only record, or 'egressctl target "
     "remove NAME' to lift enforcement"},
    {"reset",
     "remove targets with 'egressctl target remove NAME', or replace what "
     "is enforced with 'egressctl apply -f FILE'"},
    {"insert",
     "rule order does not matter in egress (deny beats allow): use "
     "'egressctl allow|deny ...'"},
    {"prepend",
     "rule order does not matter in egress (deny beats allow): use "
     "'egressctl allow|deny ...'"},
    {"limit",
     "egress does not rate-limit connections: use 'egressctl allow ...' or "
     "'egressctl deny ...'"},
    {"reject",
     "egress refuses with EPERM at connect()/sendto(): use 'egressctl "
     "deny ...'"},
    {"show",
     "the rules are shown by 'egressctl list'; targets and counters by "
     "'egressctl status'"},
    {"route",
     "egress has no routing rules: it decides what the target's processes "
     "may initiate; use 'egressctl allow|deny ...'"},
    {"app",
     "service names are listed by 'egressctl services'; use one in a rule: "
     "'egressctl allow smtp 10.0.0.5'"},
};

}  // namespace

std::optional<std::string> UfwVerbHint(absl::Span<const std::string> words) {
  if (words.empty()) return std::nullopt;
  for (const Hint& h : kHints) {
    if (words[0] != h.verb) continue;
    return absl::StrCat("'", words[0], "' is a UFW command egressctl does not ",
                        "have: ", h.hint);
  }
  return std::nullopt;
}

absl::Status CheckUfwLoggingLevel(absl::string_view word) {
  for (absl::string_view ufw : {"on", "low", "medium", "high", "full"}) {
    if (word != ufw) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "'", word,
        "' is a UFW logging level; egress has 'egressctl logging "
        "off|denied|all' (denied: refused and audited attempts, the default; "
        "all: allowed ones too)"));
  }
  return absl::OkStatus();
}

}  // namespace egress::cli
