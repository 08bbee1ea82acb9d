#include "userspace/cli/commands.h"

#include <algorithm>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "userspace/cli/command_parsers.h"
#include "userspace/cli/commands_yaml.h"
#include "yaml-cpp/yaml.h"

namespace egress::cli {
namespace {

// The parser of each command of commands.yaml.
constexpr std::pair<absl::string_view, ParseFn> kParsers[] = {
    {"target add", ParseTargetAdd},
    {"target remove", ParseTargetRemove},
    {"target list", ParseTargetList},
    {"mode", ParseMode},
    {"logging", ParseLogging},
    {"allow", ParseAllow},
    {"deny", ParseDeny},
    {"list", ParseList},
    {"delete", ParseDelete},
    {"status", ParseStatus},
    {"apply", ParseApply},
    {"reload", ParseReload},
    {"export", ParseExport},
    {"suggest", ParseSuggest},
    {"events", ParseEvents},
    {"connections", ParseConnections},
    {"verify", ParseVerify},
    {"run", ParseRun},
    {"services", ParseServices},
    {"help", ParseHelp},
    {"version", ParseVersion},
    {"completion", ParseCompletion},
    {"man", ParseMan},
};

// commands.yaml (built in) as the table. CommandSpec holds views: the text
// they point into lives as long as the process.
struct LoadedTable {
  std::vector<CommandSpec> commands;
  std::vector<OptionSpec> options;
};

class TableLoader {
 public:
  LoadedTable Load() {
    const YAML::Node root = YAML::Load(std::string(kCommandsYaml));
    LoadedTable table;
    std::vector<CommandSpec>& commands = table.commands;
    for (const YAML::Node& group : root["groups"]) {
      const absl::string_view heading = Keep(group["heading"]);
      for (const YAML::Node& c : group["commands"]) {
        CommandSpec spec{
            Keep(c["name"]),      Views(c["aliases"]),  heading,
            Views(c["synopsis"]), Keep(c["summary"]),   Keep(c["help"]),
            Views(c["options"]),  Views(c["examples"]), ParserOf(c["name"]),
            Views(c["words"])};
        commands.push_back(std::move(spec));
      }
    }
    for (const YAML::Node& o : root["options"]) {
      table.options.push_back({Keep(o[0]), Keep(o[1]), Keep(o[2]), Keep(o[3]),
                               o[4] && o[4].as<std::string>() == "repeatable"});
    }
    return table;
  }

 private:
  absl::string_view Keep(const YAML::Node& node) {
    return text_.emplace_back(node ? node.as<std::string>() : "");
  }
  std::vector<absl::string_view> Views(const YAML::Node& list) {
    std::vector<absl::string_view> out;
    for (const YAML::Node& item : list) out.push_back(Keep(item));
    return out;
  }
  // A command without a parser is a bug of this file and commands.yaml,
  // which the unit tests catch (CommandTableTest).
  static ParseFn ParserOf(const YAML::Node& name) {
    for (const auto& [command, parse] : kParsers) {
      if (command == name.as<std::string>()) return parse;
    }
    return nullptr;
  }

  std::deque<std::string> text_;  // stable addresses
};

const LoadedTable& Table() {
  // The loader owns the text the table points into: never freed.
  static auto* loader = new TableLoader();
  static const auto* table = new LoadedTable(loader->Load());
  return *table;
}

bool Named(const CommandSpec& c, absl::Span<const std::string> words) {
  std::vector<absl::string_view> name = absl::StrSplit(c.name, ' ');
  if (words.size() < name.size()) return false;
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    if (words[i] != name[i]) return false;
  }
  const std::string& last = words[name.size() - 1];
  return last == name.back() ||
         std::find(c.aliases.begin(), c.aliases.end(), last) != c.aliases.end();
}

}  // namespace

void OptionValues::Add(std::string name, std::string value) {
  values_.emplace_back(std::move(name), std::move(value));
}

bool OptionValues::Has(absl::string_view name) const {
  return std::any_of(values_.begin(), values_.end(),
                     [&](const auto& v) { return v.first == name; });
}

std::string OptionValues::Get(absl::string_view name) const {
  for (const auto& [n, v] : values_) {
    if (n == name) return v;
  }
  return "";
}

std::vector<std::string> OptionValues::GetAll(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : values_) {
    if (n == name) out.push_back(v);
  }
  return out;
}

absl::Span<const CommandSpec> Commands() { return Table().commands; }

absl::Span<const OptionSpec> Options() { return Table().options; }

bool IsGlobalOption(absl::string_view name) {
  return name == "--socket" || name == "--timeout" || name == "--help" ||
         name == "--version";
}

void ForEachCommandInGroups(
    const std::function<void(absl::string_view group)>& heading,
    const std::function<void(const CommandSpec&)>& command) {
  absl::string_view group;
  for (const CommandSpec& c : Commands()) {
    if (c.group != group) {
      group = c.group;
      heading(group);
    }
    command(c);
  }
}

const CommandSpec* FindCommand(absl::Span<const std::string> words) {
  for (const CommandSpec& c : Table().commands) {
    if (Named(c, words)) return &c;
  }
  return nullptr;
}

const OptionSpec* FindOption(absl::string_view name) {
  for (const OptionSpec& o : Options()) {
    if (name == o.name || (!o.alias.empty() && name == o.alias)) return &o;
  }
  return nullptr;
}

size_t NameWords(const CommandSpec& command) {
  return static_cast<size_t>(
      std::count(command.name.begin(), command.name.end(), ' ') + 1);
}

}  // namespace egress::cli
