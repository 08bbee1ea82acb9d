#include "userspace/cli/man_page.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "egress/version.h"
#include "userspace/cli/commands.h"
#include "userspace/cli/exit_status.h"
#include "userspace/cli/help_text.h"

namespace egress::cli {
namespace {

constexpr absl::string_view kDescription =
    "egressctl sends one request to egressd(8) over its control socket and "
    "prints the answer. egressd enforces, per cgroup (a target), which "
    "outgoing connections and datagrams its processes may initiate; "
    "everything no allow rule permits is refused with EPERM, and a deny "
    "rule beats every allow. The rule grammar follows UFW: 'egressctl "
    "allow smtp 10.0.0.5', 'egressctl allow out proto tcp to 10.0.0.5 port "
    "25'. egressctl must run as root.";

std::string Paragraphs(absl::string_view text) {
  std::string out;
  for (absl::string_view p : absl::StrSplit(text, '\n')) {
    absl::StrAppend(&out, out.empty() ? "" : ".PP\n", RoffEscape(p), "\n");
  }
  return out;
}

std::string CommandSection(const CommandSpec& c) {
  std::string out = ".TP\n";
  for (size_t i = 0; i < c.synopsis.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ".TQ\n", ".B ",
                    RoffEscape(c.synopsis[i]), "\n");
  }
  absl::StrAppend(&out, RoffEscape(c.summary), ".\n", ".RS\n",
                  Paragraphs(c.help));
  if (!c.options.empty()) {
    absl::StrAppend(&out, ".PP\nOptions:\n");
    for (absl::string_view name : c.options) {
      absl::StrAppend(&out, ".br\n", RoffEscape(OptionUsage(*FindOption(name))),
                      "\n");
    }
  }
  absl::StrAppend(&out, ".PP\nExamples:\n.nf\n");
  for (absl::string_view e : c.examples) {
    absl::StrAppend(&out, RoffEscape(e), "\n");
  }
  absl::StrAppend(&out, ".fi\n.RE\n");
  return out;
}

std::string CommandsSection() {
  std::string out = ".SH COMMANDS\n";
  ForEachCommandInGroups(
      [&](absl::string_view group) {
        absl::StrAppend(&out, ".SS ", RoffEscape(group), "\n");
      },
      [&](const CommandSpec& c) { absl::StrAppend(&out, CommandSection(c)); });
  return out;
}

std::string OptionsSection() {
  std::string out =
      ".SH OPTIONS\nOptions may come anywhere before '\\-\\-' and may be "
      "written \\-\\-opt=value. An option the command does not take is an "
      "error.\n";
  for (const OptionSpec& o : Options()) {
    absl::StrAppend(&out, ".TP\n.B ", RoffEscape(OptionUsage(o)), "\n",
                    RoffEscape(o.help), "\n");
  }
  return out;
}

std::string ExitStatusSection() {
  std::string out = ".SH EXIT STATUS\n";
  for (const ExitStatusInfo& e : ExitStatuses()) {
    absl::StrAppend(&out, ".TP\n.B ", e.code, "\n", RoffEscape(e.meaning),
                    "\n");
  }
  absl::StrAppend(&out, ".PP\nThe exit status of 'run' is the command's.\n");
  return out;
}

}  // namespace

std::string RoffEscape(absl::string_view text) {
  std::string out = absl::StrReplaceAll(text, {{"\\", "\\e"}, {"-", "\\-"}});
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) {
    out.insert(0, "\\&");
  }
  return out;
}

std::string ManPage() {
  return absl::StrCat(
      ".TH EGRESSCTL 8 \"\" \"egress ", EGRESS_VERSION_STRING,
      "\" \"System Administration\"\n",
      ".SH NAME\negressctl \\- control egressd, the per\\-process egress "
      "enforcer\n",
      ".SH SYNOPSIS\n.B egressctl\n[\\fB\\-\\-socket\\fR \\fIPATH\\fR] "
      "[\\fB\\-\\-timeout\\fR \\fIDURATION\\fR] "
      "\\fICOMMAND\\fR [\\fIWORDS\\fR...] [\\fIOPTIONS\\fR...]\n",
      ".SH DESCRIPTION\n", Paragraphs(kDescription), CommandsSection(),
      OptionsSection(), ExitStatusSection(),
      ".SH FILES\n.TP\n.I /run/egress/egressd.sock\negressd's control "
      "socket.\n.TP\n.I /etc/egress/policies.d\npolicy files, by "
      "convention (egressd \\-\\-policy_dir).\n",
      ".SH SEE ALSO\n.BR egressd (8)\n");
}

}  // namespace egress::cli
