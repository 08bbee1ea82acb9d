// The parse functions of the command table (commands.cc): each turns the
// words after its command's name, and the options given, into a typed
// request or a local action. Errors are InvalidArgument naming the word.
#ifndef EGRESS_USERSPACE_CLI_COMMAND_PARSERS_H_
#define EGRESS_USERSPACE_CLI_COMMAND_PARSERS_H_

#include "absl/status/status.h"
#include "userspace/cli/commands.h"

namespace egress::cli {

absl::Status ParseTargetAdd(const CommandInput& in, ParsedCommand* out);
absl::Status ParseTargetRemove(const CommandInput& in, ParsedCommand* out);
absl::Status ParseTargetList(const CommandInput& in, ParsedCommand* out);
absl::Status ParseMode(const CommandInput& in, ParsedCommand* out);
absl::Status ParseLogging(const CommandInput& in, ParsedCommand* out);
absl::Status ParseAllow(const CommandInput& in, ParsedCommand* out);
absl::Status ParseDeny(const CommandInput& in, ParsedCommand* out);
absl::Status ParseList(const CommandInput& in, ParsedCommand* out);
absl::Status ParseDelete(const CommandInput& in, ParsedCommand* out);
absl::Status ParseStatus(const CommandInput& in, ParsedCommand* out);
absl::Status ParseApply(const CommandInput& in, ParsedCommand* out);
absl::Status ParseReload(const CommandInput& in, ParsedCommand* out);
absl::Status ParseExport(const CommandInput& in, ParsedCommand* out);
absl::Status ParseSuggest(const CommandInput& in, ParsedCommand* out);
absl::Status ParseVerify(const CommandInput& in, ParsedCommand* out);
absl::Status ParseEvents(const CommandInput& in, ParsedCommand* out);
absl::Status ParseConnections(const CommandInput& in, ParsedCommand* out);
absl::Status ParseRun(const CommandInput& in, ParsedCommand* out);
absl::Status ParseServices(const CommandInput& in, ParsedCommand* out);
absl::Status ParseHelp(const CommandInput& in, ParsedCommand* out);
absl::Status ParseVersion(const CommandInput& in, ParsedCommand* out);
absl::Status ParseCompletion(const CommandInput& in, ParsedCommand* out);
absl::Status ParseMan(const CommandInput& in, ParsedCommand* out);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_COMMAND_PARSERS_H_
