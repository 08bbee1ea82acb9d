// egressctl's command line, parsed into a typed control request without
// touching the system (pure: unit-tested without root). The commands, their
// words and options are those of the command table (commands.h):
//
//   egressctl [--socket PATH] COMMAND [WORDS...] [OPTIONS...] [-- CMD...]
//
// Options may appear anywhere before "--" and may be written --opt=value.
// Every error is InvalidArgument and names the offending word (egressctl
// exits 2 for them, see exit_status.h).
#ifndef EGRESS_USERSPACE_CLI_CLI_PARSE_H_
#define EGRESS_USERSPACE_CLI_CLI_PARSE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/cli/commands.h"

namespace egress::cli {

absl::StatusOr<ParsedCommand> ParseCommandLine(
    const std::vector<std::string>& args);

// `--group /N[,/M]`: group learned IPv4 destinations into /N networks and
// IPv6 ones into /M. InvalidArgument naming the text.
struct GroupPrefixes {
  int v4 = 32;
  int v6 = 128;
};
absl::StatusOr<GroupPrefixes> ParseGroupPrefixes(const std::string& text);

// "90s", "30m", "2h", "1h30m" (absl::ParseDuration) or "7d", between 1 s and
// 3650 days, in seconds. InvalidArgument naming `flag` and the text.
absl::StatusOr<int64_t> ParseDurationSeconds(const std::string& flag,
                                             const std::string& text);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_CLI_PARSE_H_
