#include "userspace/cli/cli_parse.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "userspace/cli/ufw_hints.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/utf8.h"
#include "userspace/control/control_socket.h"
#include "userspace/policy/services.h"

namespace egress::cli {
namespace {

struct Split {
  std::vector<std::string> words;  // positional
  OptionValues options;
  std::vector<std::string> after_dashdash;
  bool saw_dashdash = false;
};

bool IsOptionWord(const std::string& a) {
  // "-5" is not an option: negative numbers are words (and get their own
  // error from the command).
  return a.size() > 1 && a[0] == '-' && !absl::ascii_isdigit(a[1]);
}

// Takes the option at args[*i] (and its value) into `split`.
absl::Status TakeOption(const std::vector<std::string>& args, size_t* i,
                        Split* split) {
  const std::string& a = args[*i];
  std::string name = a;
  std::optional<std::string> value;
  if (const size_t eq = a.find('='); eq != std::string::npos) {
    name = a.substr(0, eq);
    value = a.substr(eq + 1);
  }
  const OptionSpec* spec = FindOption(name);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown option '", a, "'; try 'egressctl help'"));
  }
  if (spec->value.empty()) {
    if (value) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", name, "' takes no value"));
    }
    split->options.Add(std::string(spec->name), "true");
    return absl::OkStatus();
  }
  if (!value) {
    if (*i + 1 >= args.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", a, "' needs a value"));
    }
    value = args[++*i];
  }
  // "-f a.yaml -f b.yaml" or "--target web --target db": taking one of the
  // two would quietly apply or change less than was asked.
  if (!spec->repeatable && split->options.Has(spec->name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("option ", spec->name, " given twice ('",
                     split->options.Get(spec->name), "', then '", *value,
                     "'); it takes one value"));
  }
  split->options.Add(std::string(spec->name), *value);
  return absl::OkStatus();
}

absl::StatusOr<Split> SplitArgs(const std::vector<std::string>& args) {
  // Every argument before "--", option values too. Requests are JSON text:
  // other bytes would reach egressd as U+FFFD, naming another cgroup,
  // address or rule than the one typed.
  for (size_t i = 0; i < args.size() && args[i] != "--"; ++i) {
    if (FirstInvalidUtf8(args[i]) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "argument ", i + 1, " is not UTF-8 text; egressd takes text only"));
    }
  }
  Split s;
  // The word after a positional "comment" is its text, never an option:
  // "comment '- x'" or "comment '-t is wrong'" is what the user wrote.
  bool comment_text = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      s.saw_dashdash = true;
      s.after_dashdash.assign(args.begin() + i + 1, args.end());
      break;
    }
    const bool is_text = comment_text;
    comment_text = false;
    if (is_text) {
      s.words.push_back(args[i]);
    } else if (IsOptionWord(args[i])) {
      EGRESS_RETURN_IF_ERROR(TakeOption(args, &i, &s));
    } else {
      s.words.push_back(args[i]);
      comment_text = args[i] == "comment";
    }
  }
  return s;
}

absl::StatusOr<OutputFormat> ParseOutput(const std::string& value) {
  if (value.empty() || value == "text" || value == "table") {
    return OutputFormat::kText;
  }
  if (value == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", value, "': use text or json"));
}

// An unknown first word: a UFW verb's explanation, or the closest command.
absl::Status UnknownCommand(const std::vector<std::string>& words) {
  if (std::optional<std::string> hint = UfwVerbHint(words)) {
    return absl::InvalidArgumentError(*hint);
  }
  if (words[0] == "target") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown target command '", words.size() > 1 ? words[1] : "",
        "': use add, remove or list"));
  }
  std::string message =
      absl::StrCat("unknown command '", words[0], "'; try 'egressctl help'");
  for (const CommandSpec& c : Commands()) {
    const absl::string_view first = c.name.substr(0, c.name.find(' '));
    if (policy::EditDistance(words[0], first) <= 2) {
      message = absl::StrCat("unknown command '", words[0], "'; did you mean '",
                             first, "'?");
      break;
    }
  }
  return absl::InvalidArgumentError(message);
}

// Every option given must be one the command (or every command) takes.
absl::Status CheckOptions(const CommandSpec& c, const Split& split) {
  for (const auto& [name, value] : split.options.all()) {
    if (IsGlobalOption(name) || std::find(c.options.begin(), c.options.end(),
                                          name) != c.options.end()) {
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("option '", name, "' does not apply to '", c.name, "'"));
  }
  if (split.saw_dashdash && c.name != "run") {
    return absl::InvalidArgumentError(
        absl::StrCat("'--' only goes with 'run', not '", c.name, "'"));
  }
  return absl::OkStatus();
}

// `egressctl`, `egressctl --help`, `egressctl --version`.
absl::StatusOr<ParsedCommand> NoCommand(const Split& split) {
  ParsedCommand out;
  if (split.options.Has("--version")) {
    out.local = LocalAction::kVersion;
  } else if (split.options.Has("--help")) {
    out.local = LocalAction::kHelp;
  } else {
    return absl::InvalidArgumentError("no command given; try 'egressctl help'");
  }
  return out;
}

}  // namespace

absl::StatusOr<ParsedCommand> ParseCommandLine(
    const std::vector<std::string>& args) {
  EGRESS_ASSIGN_OR_RETURN(Split split, SplitArgs(args));
  if (split.words.empty()) return NoCommand(split);
  const CommandSpec* command = FindCommand(split.words);
  if (command == nullptr) return UnknownCommand(split.words);
  ParsedCommand out;
  out.command = command;
  if (split.options.Has("--help")) {
    out.local = LocalAction::kHelp;
    out.topic = std::string(command->name);
    return out;
  }
  EGRESS_RETURN_IF_ERROR(CheckOptions(*command, split));
  out.socket_path = split.options.Get("--socket");
  if (out.socket_path.empty()) out.socket_path = kDefaultSocketPath;
  if (split.options.Has("--timeout")) {
    EGRESS_ASSIGN_OR_RETURN(
        int64_t seconds,
        ParseDurationSeconds("--timeout", split.options.Get("--timeout")));
    out.timeout = absl::Seconds(seconds);
  }
  EGRESS_ASSIGN_OR_RETURN(out.output,
                          ParseOutput(split.options.Get("--output")));
  const CommandInput in{
      std::vector<std::string>(split.words.begin() + NameWords(*command),
                               split.words.end()),
      split.options, split.after_dashdash};
  EGRESS_RETURN_IF_ERROR(command->parse(in, &out));
  if (split.options.Has("--version") && out.local != LocalAction::kVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "option '--version' does not apply to '", command->name, "'"));
  }
  return out;
}

absl::StatusOr<int64_t> ParseDurationSeconds(const std::string& flag,
                                             const std::string& text) {
  absl::Duration d;
  bool ok = false;
  int64_t days = 0;
  if (absl::EndsWith(text, "d") &&
      absl::SimpleAtoi(text.substr(0, text.size() - 1), &days)) {
    ok = days > 0 && days <= 3650;
    d = absl::Hours(24) * days;
  } else {
    ok = absl::ParseDuration(text, &d);
  }
  if (!ok || d < absl::Seconds(1) || d > absl::Hours(24 * 3650)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " wants a duration like 90s, 30m, 2h, 1h30m or 7d, not '", text,
        "'"));
  }
  return absl::ToInt64Seconds(d);
}

absl::StatusOr<GroupPrefixes> ParseGroupPrefixes(const std::string& text) {
  GroupPrefixes g;
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "--group wants /N (IPv4, 1-32) optionally followed by ,/M (IPv6, "
        "1-128), e.g. /24 or /24,/64; not '",
        text, "'"));
  };
  if (parts.empty() || parts.size() > 2) return bad();
  for (size_t i = 0; i < parts.size(); ++i) {
    int n = 0;
    const int max = i == 0 ? 32 : 128;
    if (!absl::StartsWith(parts[i], "/") ||
        !absl::SimpleAtoi(parts[i].substr(1), &n) || n < 1 || n > max) {
      return bad();
    }
    (i == 0 ? g.v4 : g.v6) = n;
  }
  return g;
}

}  // namespace egress::cli
