// egressctl's one command table. Every command (and `target` sub-command)
// is described once here: its synopsis, help, options, examples and the
// function that turns its words into a typed control request. The usage
// text, per-command help, bash completion and the man page are all
// generated from it (help_text.h, local_text.h, man_page.h), so they cannot
// drift from what the parser accepts.
#ifndef EGRESS_USERSPACE_CLI_COMMANDS_H_
#define EGRESS_USERSPACE_CLI_COMMANDS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "userspace/cli/run_restrictions.h"
#include "userspace/control/protocol.h"

namespace egress::cli {

enum class OutputFormat { kText, kJson };

// What egressctl does itself, without (or around) one request to egressd.
enum class LocalAction {
  kNone,        // send `request`, print the answer
  kHelp,        // print help for `topic` ("" = the usage text)
  kVersion,     // print the version and ABI
  kRun,         // `run`: target add, fork/exec, target remove
  kVerify,      // `verify`: probe from inside the target's cgroup
  kCompletion,  // print the completion script for shell `topic`
  kMan,         // print the roff man page
  kServices,    // print the known service names and their ports
};

struct CommandSpec;

// How long egressctl waits for egressd by default (--timeout): room for the
// slowest answers on a loaded machine (an apply of 100,000 rules takes about
// 1 s, their `list` about 2.5 s), not the minutes of a hung egressd.
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(30);

struct ParsedCommand {
  const CommandSpec* command = nullptr;     // null only for bare help
  std::optional<control::Request> request;  // what egressd is asked
  LocalAction local = LocalAction::kNone;
  OutputFormat output = OutputFormat::kText;
  std::string socket_path;
  // --timeout: how long egressctl waits for egressd to accept, take the
  // request and answer (kDefaultTimeout).
  absl::Duration timeout = kDefaultTimeout;
  std::string topic;       // help: a command name; completion: the shell
  bool verbose = false;    // `status verbose`
  bool numbered = false;   // `status numbered`: printed as `list`
  std::string export_dir;  // export --dir
  std::vector<std::string> run_argv;  // run: the command after "--"
  RunRestrictions run_restrictions;   // run: what the command may not do
  std::string run_user;   // run: --user NAME|UID, resolved when it runs
  std::string run_group;  // run: --group NAME|GID
};

// Option values of one command line, by canonical name ("--target").
class OptionValues {
 public:
  void Add(std::string name, std::string value);
  bool Has(absl::string_view name) const;
  // The value given ("" if none). An option that is not repeatable is
  // given at most once: the command line parser refuses a second one.
  std::string Get(absl::string_view name) const;
  // Every value, in order, of a repeatable option.
  std::vector<std::string> GetAll(absl::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const {
    return values_;
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// What a command's parse function gets: the words after its name.
struct CommandInput {
  std::vector<std::string> words;
  const OptionValues& options;
  const std::vector<std::string>& after_dashdash;
};
using ParseFn = absl::Status (*)(const CommandInput& in, ParsedCommand* out);

struct CommandSpec {
  absl::string_view name;                  // "allow", "target add"
  std::vector<absl::string_view> aliases;  // of the last word: "rm", "ls"
  absl::string_view group;                 // heading in the usage text
  // One line per form, without the leading "egressctl ".
  std::vector<absl::string_view> synopsis;
  absl::string_view summary;                // one line
  absl::string_view help;                   // paragraphs, wrapped at 76 columns
  std::vector<absl::string_view> options;   // canonical names it accepts
  std::vector<absl::string_view> examples;  // full command lines
  ParseFn parse;
  // What the first word after the name may be, for completion; "SERVICE"
  // stands for every known service name, "COMMAND" for every command.
  std::vector<absl::string_view> words = {};
};

// Every option egressctl knows. `value` is the placeholder of its argument
// ("NAME"), empty for a flag.
struct OptionSpec {
  absl::string_view name;   // "--target"
  absl::string_view alias;  // "-t" or ""
  absl::string_view value;
  absl::string_view help;
  // May be given several times, each value kept (run --allow). Any other
  // option with a value given twice is an error: keeping one of the two
  // would silently drop what the other asked for.
  bool repeatable = false;
};

// The table, in the order of the usage text.
absl::Span<const CommandSpec> Commands();
// Walks Commands() in order, calling `heading` with each group before its
// first command: the usage text and the man page list them the same way.
void ForEachCommandInGroups(
    const std::function<void(absl::string_view group)>& heading,
    const std::function<void(const CommandSpec&)>& command);
absl::Span<const OptionSpec> Options();
// Options every command accepts (--socket, --help).
bool IsGlobalOption(absl::string_view name);

// By name or alias; `words` may hold more words than the name.
const CommandSpec* FindCommand(absl::Span<const std::string> words);
// By canonical name or alias ("-t" -> --target).
const OptionSpec* FindOption(absl::string_view name);
// How many words the command's name takes (1 or 2).
size_t NameWords(const CommandSpec& command);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_COMMANDS_H_
