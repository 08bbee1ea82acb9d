// egressctl's help, generated from the command table (commands.h).
#ifndef EGRESS_USERSPACE_CLI_HELP_TEXT_H_
#define EGRESS_USERSPACE_CLI_HELP_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "userspace/cli/commands.h"

namespace egress::cli {

// `egressctl help`: every command's synopsis and summary, by group, the
// global options and the exit status.
std::string UsageText();

// `egressctl help NAME` / `NAME --help`: that command's synopsis, help,
// options and examples, nothing about other commands.
std::string CommandHelp(const CommandSpec& command);

// Help for a topic of ParsedCommand: "" = UsageText(), "target" = every
// target command, else CommandHelp of that command.
std::string TopicHelp(absl::string_view topic);

// "egressctl 0.1.0 (ABI 1)".
std::string VersionText(absl::string_view program);

// `text` wrapped at `width` columns, every line indented by `indent`
// spaces; '\n' in `text` starts a new paragraph (after a blank line).
std::string Wrap(absl::string_view text, int indent, int width = 78);

// "-t, --target NAME" / "--dry-run".
std::string OptionUsage(const OptionSpec& option);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_HELP_TEXT_H_
