// UFW habits egress does not share: a UFW verb egressctl has no command for
// is answered with the egress way to get the same result, instead of
// "unknown command".
#ifndef EGRESS_USERSPACE_CLI_UFW_HINTS_H_
#define EGRESS_USERSPACE_CLI_UFW_HINTS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace egress::cli {

// For a command line starting with a UFW verb egressctl lacks ("default",
// "enable", "insert", "show added", "app list", ...): the explanation,
// naming the egressctl command to use. nullopt for any other word.
std::optional<std::string> UfwVerbHint(absl::Span<const std::string> words);

// UFW's logging levels (on, low, medium, high, full) are InvalidArgument
// naming egress's levels; anything else is OK (left to ParseLoggingLevel).
absl::Status CheckUfwLoggingLevel(absl::string_view word);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_UFW_HINTS_H_
