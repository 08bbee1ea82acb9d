#include "userspace/cli/help_text.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "egress/abi.h"
#include "egress/version.h"
#include "userspace/cli/exit_status.h"

namespace egress::cli {
namespace {

std::string OptionLine(const OptionSpec& o) {
  return absl::StrFormat("  %-24s %s\n", OptionUsage(o), o.help);
}

std::string GlobalOptions() {
  std::string out = "Options (see 'egressctl help COMMAND' for each):\n";
  for (const OptionSpec& o : Options()) absl::StrAppend(&out, OptionLine(o));
  return out;
}

std::string ExitStatusText() {
  std::string out = "Exit status:\n";
  for (const ExitStatusInfo& e : ExitStatuses()) {
    absl::StrAppend(&out, "  ", e.code, "  ", Wrap(e.meaning, 5).substr(5));
  }
  return out;
}

}  // namespace

std::string Wrap(absl::string_view text, int indent, int width) {
  std::string out;
  const std::string pad(indent, ' ');
  for (absl::string_view para : absl::StrSplit(text, '\n')) {
    if (!out.empty()) out += "\n";  // a blank line between paragraphs
    std::string line = pad;
    for (absl::string_view word :
         absl::StrSplit(para, ' ', absl::SkipEmpty())) {
      if (line.size() > pad.size() &&
          static_cast<int>(line.size() + 1 + word.size()) > width) {
        absl::StrAppend(&out, line, "\n");
        line = pad;
      }
      absl::StrAppend(&line, line.size() > pad.size() ? " " : "", word);
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string OptionUsage(const OptionSpec& o) {
  std::string out = o.alias.empty() ? "" : absl::StrCat(o.alias, ", ");
  absl::StrAppend(&out, o.name);
  if (!o.value.empty()) absl::StrAppend(&out, " ", o.value);
  return out;
}

std::string UsageText() {
  std::string out =
      "usage: egressctl [--socket PATH] [--timeout DURATION] COMMAND ...\n";
  ForEachCommandInGroups(
      [&](absl::string_view group) {
        absl::StrAppend(&out, "\n", group, ":\n");
      },
      [&](const CommandSpec& c) {
        for (absl::string_view line : c.synopsis) {
          absl::StrAppend(&out, "  ", line, "\n");
        }
        absl::StrAppend(&out, "      ", c.summary, "\n");
      });
  absl::StrAppend(&out, "\n", GlobalOptions(), "\n", ExitStatusText());
  return out;
}

std::string CommandHelp(const CommandSpec& c) {
  std::string out;
  for (size_t i = 0; i < c.synopsis.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "usage: " : "       ", "egressctl ",
                    c.synopsis[i], "\n");
  }
  absl::StrAppend(&out, "\n", c.summary, "\n\n", Wrap(c.help, 0));
  absl::StrAppend(&out, "\nOptions:\n");
  for (absl::string_view name : c.options) {
    absl::StrAppend(&out, OptionLine(*FindOption(name)));
  }
  absl::StrAppend(&out, OptionLine(*FindOption("--socket")));
  absl::StrAppend(&out, OptionLine(*FindOption("--timeout")));
  absl::StrAppend(&out, "\nExamples:\n");
  for (absl::string_view e : c.examples) absl::StrAppend(&out, "  ", e, "\n");
  return out;
}

std::string TopicHelp(absl::string_view topic) {
  if (topic.empty()) return UsageText();
  std::string out;
  for (const CommandSpec& c : Commands()) {
    if (c.name == topic) return CommandHelp(c);
    if (absl::StartsWith(c.name, absl::StrCat(topic, " "))) {
      absl::StrAppend(&out, out.empty() ? "" : "\n", CommandHelp(c));
    }
  }
  return out;
}

std::string VersionText(absl::string_view program) {
  return absl::StrCat(program, " ", EGRESS_VERSION_STRING, " (ABI ",
                      EGRESS_ABI_VERSION, ")\n");
}

}  // namespace egress::cli
