// What is generated from egressctl's command table: usage, per-command
// help, bash completion, the man page; and the UFW habits it answers.
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/cli/commands.h"
#include "userspace/cli/exit_status.h"
#include "userspace/cli/help_text.h"
#include "userspace/cli/local_text.h"
#include "userspace/cli/man_page.h"
#include "userspace/policy/services.h"

namespace egress::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<ParsedCommand> Parse(std::vector<std::string> args) {
  return ParseCommandLine(args);
}

std::vector<std::string> Words(absl::string_view name) {
  return absl::StrSplit(name, ' ');
}

// How a command's synopsis appears in help: "egressctl SYNOPSIS" ending a
// line.
std::string UsageLine(const CommandSpec& c) {
  return absl::StrCat("egressctl ", c.synopsis[0], "\n");
}

TEST(CliTableTest, EveryCommandHasItsOwnHelp) {
  for (const CommandSpec& c : Commands()) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(c.synopsis.empty());
    EXPECT_FALSE(c.summary.empty());
    EXPECT_FALSE(c.examples.empty());
    const std::string help = CommandHelp(c);
    EXPECT_THAT(help, HasSubstr(UsageLine(c)));
    for (const CommandSpec& other : Commands()) {
      if (&other == &c) continue;
      EXPECT_THAT(help, Not(HasSubstr(UsageLine(other)))) << other.name;
    }
    for (absl::string_view o : c.options) {
      EXPECT_THAT(help, HasSubstr(std::string(o)));
    }
  }
}

// commands.yaml and the parsers of commands.cc agree: every command has its
// own parser, none is named twice.
TEST(CliTableTest, EveryCommandOfTheTextHasItsOwnParser) {
  std::set<ParseFn> parsers;
  std::set<absl::string_view> names;
  for (const CommandSpec& c : Commands()) {
    SCOPED_TRACE(c.name);
    EXPECT_NE(c.parse, nullptr);
    EXPECT_TRUE(parsers.insert(c.parse).second);
    EXPECT_TRUE(names.insert(c.name).second);
    EXPECT_FALSE(c.group.empty());
  }
  EXPECT_GE(names.size(), 22u);
}

TEST(CliTableTest, HelpIsReachableThreeWaysForEveryCommand) {
  for (const CommandSpec& c : Commands()) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> help_words = {"help"};
    for (const std::string& w : Words(c.name)) help_words.push_back(w);
    std::vector<std::string> flag_words = Words(c.name);
    flag_words.push_back("--help");
    for (const auto& args : {help_words, flag_words}) {
      ASSERT_OK_AND_ASSIGN(ParsedCommand p, Parse(args));
      EXPECT_EQ(p.local, LocalAction::kHelp);
      EXPECT_EQ(TopicHelp(p.topic), CommandHelp(c));
    }
  }
}

// docs/cli.md shows what `egressctl help` and `--version` print: the page
// must follow the table, or a reader meets options the docs never name.
TEST(CliTableTest, ReferencePageShowsTheCurrentHelpAndVersion) {
  std::ifstream in(std::string(EGRESS_SOURCE_DIR) + "/docs/cli.md");
  ASSERT_TRUE(in) << "docs/cli.md";
  std::stringstream page;
  page << in.rdbuf();
  const std::string text = page.str();
  const std::string intro = "`egressctl help` prints:\n\n```\n";
  const size_t start = text.find(intro);
  ASSERT_NE(start, std::string::npos) << "no help block in docs/cli.md";
  const size_t from = start + intro.size();
  const size_t end = text.find("```", from);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(text.substr(from, end - from), UsageText())
      << "docs/cli.md: paste the output of `egressctl help`";
  std::string version = VersionText("egressctl");
  while (!version.empty() && version.back() == '\n') version.pop_back();
  EXPECT_THAT(text, HasSubstr(version))
      << "docs/cli.md: paste the output of `egressctl --version`";
}

TEST(CliTableTest, UsageListsEveryCommandAndTheExitStatus) {
  const std::string usage = UsageText();
  for (const CommandSpec& c : Commands()) {
    for (absl::string_view line : c.synopsis) {
      EXPECT_THAT(usage, HasSubstr(absl::StrCat("  ", line, "\n")));
    }
    EXPECT_THAT(usage, HasSubstr(std::string(c.summary)));
  }
  for (const OptionSpec& o : Options()) {
    EXPECT_THAT(usage, HasSubstr(std::string(o.name)));
  }
  for (const ExitStatusInfo& e : ExitStatuses()) {
    EXPECT_THAT(usage, HasSubstr(absl::StrCat("  ", e.code, "  ")));
  }
  EXPECT_EQ(TopicHelp(""), usage);
}

TEST(CliTableTest, EveryOptionOfACommandIsKnownAndParses) {
  for (const CommandSpec& c : Commands()) {
    for (absl::string_view o : c.options) {
      EXPECT_NE(FindOption(o), nullptr) << c.name << " " << o;
    }
  }
}

TEST(CliTableTest, ExitCodes) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), 2);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("no target 'x'")), 2);
  EXPECT_EQ(ExitCodeFor(absl::AlreadyExistsError("x")), 2);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("no egressd")), 1);
  EXPECT_EQ(ExitCodeFor(absl::PermissionDeniedError("x")), 1);
}

TEST(CliTableTest, CompletionCoversCommandsOptionsAndServices) {
  const std::string script = BashCompletion();
  EXPECT_THAT(script, HasSubstr("complete -F _egressctl egressctl"));
  for (const CommandSpec& c : Commands()) {
    for (const std::string& w : Words(c.name)) {
      EXPECT_THAT(script, HasSubstr(w)) << c.name;
    }
    EXPECT_THAT(script, HasSubstr(absl::StrCat("\"", c.name, "\")"))) << c.name;
  }
  for (const OptionSpec& o : Options()) {
    EXPECT_THAT(script, HasSubstr(std::string(o.name)));
    if (!o.alias.empty()) {
      EXPECT_THAT(script, HasSubstr(std::string(o.alias)));
    }
  }
  for (const std::string& s : policy::KnownServiceNames()) {
    EXPECT_THAT(script, HasSubstr(absl::StrCat(s, " ")));
  }
  EXPECT_THAT(script, HasSubstr("add remove rm delete list ls"));
}

TEST(CliTableTest, ManPageHasEveryCommandAndValidHeaders) {
  const std::string man = ManPage();
  EXPECT_TRUE(absl::StartsWith(man, ".TH EGRESSCTL 8 ")) << man.substr(0, 80);
  for (const char* section :
       {"\n.SH NAME\n", "\n.SH SYNOPSIS\n", "\n.SH DESCRIPTION\n",
        "\n.SH COMMANDS\n", "\n.SH OPTIONS\n", "\n.SH EXIT STATUS\n",
        "\n.SH SEE ALSO\n"}) {
    EXPECT_THAT(man, HasSubstr(section));
  }
  EXPECT_THAT(man, HasSubstr("egressctl \\- "));
  for (const CommandSpec& c : Commands()) {
    EXPECT_THAT(
        man, HasSubstr(absl::StrCat(".B ", RoffEscape(c.synopsis[0]), "\n")));
  }
  for (const ExitStatusInfo& e : ExitStatuses()) {
    EXPECT_THAT(man, HasSubstr(absl::StrCat(".B ", e.code, "\n")));
  }
  // Every line is text or a known request; none starts with a stray '.'
  // or '\'' (roff's other control character).
  for (absl::string_view line : absl::StrSplit(man, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "'")) << line;
    if (line.empty() || line[0] != '.') continue;
    const absl::string_view request = line.substr(0, line.find(' '));
    EXPECT_THAT((std::vector<std::string>{".TH", ".SH", ".SS", ".TP", ".TQ",
                                          ".B", ".BR", ".I", ".PP", ".RS",
                                          ".RE", ".nf", ".fi", ".br"}),
                ::testing::Contains(std::string(request)))
        << line;
  }
}

TEST(CliTableTest, RoffEscaping) {
  EXPECT_EQ(RoffEscape("--target a\\b"), "\\-\\-target a\\eb");
  EXPECT_EQ(RoffEscape(".hidden"), "\\&.hidden");
  EXPECT_EQ(RoffEscape("'quoted'"), "\\&'quoted'");
}

// UFW verbs egressctl lacks: exit 2 with the egress way to do it.
TEST(CliTableTest, UfwVerbsNameTheEgressEquivalent) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"default", "deny", "outgoing"}, "egressctl mode enforce|audit"},
      {{"enable"}, "egressctl target add NAME --cgroup PATH"},
      {{"disable"}, "egressctl mode audit"},
      {{"disable"}, "egressctl target remove NAME"},
      {{"reset"}, "egressctl apply -f FILE"},
      {{"insert", "1", "allow", "smtp"}, "deny beats allow"},
      {{"limit", "ssh"}, "does not rate-limit"},
      {{"reject", "smtp"}, "egressctl deny"},
      {{"show", "added"}, "egressctl list"},
      {{"route", "allow", "smtp"}, "no routing rules"},
      {{"app", "list"}, "egressctl services"},
      {{"logging", "on"}, "egressctl logging off|denied|all"},
      {{"logging", "high"}, "egressctl logging off|denied|all"},
  };
  for (const auto& [args, hint] : cases) {
    absl::StatusOr<ParsedCommand> p = Parse(args);
    ASSERT_FALSE(p.ok()) << args[0];
    EXPECT_EQ(ExitCodeFor(p.status()), 2);
    EXPECT_THAT(p.status().message(), HasSubstr(hint)) << args[0];
    // The message names the word it is about.
    const std::string& word = args[0] == "logging" ? args[1] : args[0];
    EXPECT_THAT(p.status().message(), HasSubstr(absl::StrCat("'", word, "'")));
  }
}

TEST(CliTableTest, UfwStatusVerboseAndNumberedWork) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand v, Parse({"status", "verbose"}));
  EXPECT_TRUE(v.verbose);
  EXPECT_TRUE(std::holds_alternative<control::StatusRequest>(*v.request));
  ASSERT_OK_AND_ASSIGN(ParsedCommand n, Parse({"status", "numbered"}));
  EXPECT_TRUE(std::holds_alternative<control::ListRequest>(*n.request));
  EXPECT_FALSE(Parse({"status", "loud"}).ok());
}

TEST(CliTableTest, LocalCommands) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c, Parse({"completion", "bash"}));
  EXPECT_EQ(c.local, LocalAction::kCompletion);
  EXPECT_THAT(Parse({"completion", "zsh"}).status().message(),
              HasSubstr("'zsh'"));
  ASSERT_OK_AND_ASSIGN(ParsedCommand m, Parse({"man"}));
  EXPECT_EQ(m.local, LocalAction::kMan);
  ASSERT_OK_AND_ASSIGN(ParsedCommand s, Parse({"services"}));
  EXPECT_EQ(s.local, LocalAction::kServices);
  EXPECT_THAT(VersionText("egressctl"), HasSubstr("(ABI "));
}

}  // namespace
}  // namespace egress::cli
