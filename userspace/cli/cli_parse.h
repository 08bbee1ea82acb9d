// egressctl's command line, parsed into a control request without touching
// the system (pure: unit-tested without root). Grammar:
//
//   egressctl [--socket PATH] COMMAND ...
//   target add NAME (--cgroup PATH | --unit UNIT | --pid PID | --pattern GLOB)
//              [--mode M]
//   target remove NAME
//   target list [-o json]
//   mode enforce|audit [--target NAME]
//   allow|deny SPEC [DEST...] [--target NAME] [--for DURATION]
//                                            (and UFW's long form)
//   list [-o json] [--target NAME]
//   delete N [--target NAME]
//   delete allow|deny SPEC [DEST...] [--target NAME]
//   status [-o json]
//   suggest --target NAME [--since DURATION] [--group /N[,/M]]
//   export [--target NAME] [--dir DIR]
//   reload
//   run [--allow 'SPEC [DEST]']... [--target-name NAME] [--mode M] -- CMD...
//
// Options may appear anywhere before "--". Every error is InvalidArgument
// and names the offending word (egressctl exits 2 for them).
#ifndef EGRESS_USERSPACE_CLI_CLI_PARSE_H_
#define EGRESS_USERSPACE_CLI_CLI_PARSE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/resolver.h"

namespace egress::cli {

enum class OutputFormat { kText, kJson };

struct ParsedCommand {
  // "target_add", "rule_add", ... (the daemon's cmd), or "run", "help",
  // "version" for commands egressctl handles itself.
  std::string cmd;
  nlohmann::json request;  // sent to egressd (cmd included)
  OutputFormat output = OutputFormat::kText;
  std::string socket_path;
  // export only: write one NAME.yaml per target into this directory.
  std::string export_dir;
  // run only: the command to start and its target's name.
  std::vector<std::string> run_argv;
};

absl::StatusOr<ParsedCommand> ParseCommandLine(
    const std::vector<std::string>& args, const policy::HostResolver& resolve);

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

// The usage text printed by `egressctl help` and on a usage error.
std::string UsageText();

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_CLI_PARSE_H_
