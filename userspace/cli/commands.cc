#include "userspace/cli/commands.h"

#include <algorithm>

#include "absl/strings/str_split.h"
#include "userspace/cli/command_parsers.h"

namespace egress::cli {
namespace {

constexpr absl::string_view kTargets =
    "Targets (a cgroup whose processes are enforced)";
constexpr absl::string_view kRules =
    "Rules (deny beats allow; no matching allow = denied)";
constexpr absl::string_view kFiles =
    "Policy files and learning (YAML, see docs/policy.md)";
constexpr absl::string_view kObserve = "Events and checks";
constexpr absl::string_view kRun = "Run one program under its own policy";
constexpr absl::string_view kOther = "About egressctl";

// The rule grammar, shared by allow and deny.
constexpr absl::string_view kRuleHelp =
    "SPEC is a service (smtp, dns, https, ...; see 'egressctl services'), "
    "PORT[/tcp|udp], LOW-HIGH[/PROTO], a list like 80,443/tcp, tcp, udp, "
    "icmp, raw or any. No /PROTO means tcp and udp.\n"
    "DEST is an address, a CIDR network, 'any' (the default) or one dotted "
    "host name, resolved once now (the addresses are enforced, the name is "
    "kept for display). Several addresses may be given.\n"
    "UFW's long form also works: out [proto tcp|udp|any|icmp] [to DEST] "
    "[port PORTS] [comment TEXT]. There are no interfaces and no inbound "
    "rules: a rule covers every outgoing connection of the target's "
    "processes.\n"
    "--for DURATION adds a temporary rule that egressd removes by itself "
    "(90s, 30m, 2h, 1h30m, 7d).\n"
    "unix ADDRESS... names unix sockets (Linux 6.7+): an absolute path or "
    "@name, matched as the process passes it. Deny rules refuse the listed "
    "addresses; one allow rule makes an allow-list (every other unix "
    "address is refused). A target without unix rules is not affected.";

// Targets: which cgroups are enforced, and how.
std::vector<CommandSpec> TargetCommands() {
  return {
      {"target add",
       {},
       kTargets,
       {"target add NAME (--cgroup PATH | --unit UNIT | --pid PID | "
        "--pattern GLOB) [--mode enforce|audit]"},
       "enforce a cgroup (a new target denies everything until allowed)",
       "Adds a target: the cgroup given by exactly one of --cgroup, --unit "
       "(resolved once, then followed across restarts), --pid (that "
       "process's cgroup) or --pattern (every matching cgroup, also those "
       "created later; '**' spans levels). A new target has no rules, which "
       "denies every outbound connection. --mode audit only records what "
       "would be denied.",
       {"--cgroup", "--unit", "--pid", "--pattern", "--mode", "--output"},
       {"egressctl target add web --unit nginx.service",
        "egressctl target add batch --pid 4123 --mode audit",
        "egressctl target add containers --pattern "
        "'/system.slice/docker-*.scope'"},
       ParseTargetAdd},
      {"target remove",
       {"rm", "delete"},
       kTargets,
       {"target remove NAME"},
       "lift enforcement (the only way to do so)",
       "Removes the target: its programs are detached and its rules "
       "forgotten. Stopping egressd does not lift enforcement; this does.",
       {"--output"},
       {"egressctl target remove web"},
       ParseTargetRemove},
      {"target list",
       {"ls"},
       kTargets,
       {"target list [-o json]"},
       "the targets, their modes, cgroups and attachment",
       "Lists every target with its mode, cgroup, rule count and whether "
       "all its hooks are attached.",
       {"--output"},
       {"egressctl target list", "egressctl target list -o json"},
       ParseTargetList},
      {"mode",
       {},
       kTargets,
       {"mode enforce|audit [--target NAME]"},
       "enforce, or only record what would be denied",
       "enforce refuses what no allow permits (EPERM); audit lets "
       "everything through and records what would have been denied.",
       {"--target", "--output"},
       {"egressctl mode audit --target web",
        "egressctl mode enforce --target web"},
       ParseMode,
       {"enforce", "audit"}},
      {"logging",
       {},
       kTargets,
       {"logging off|denied|all [--target NAME]"},
       "which verdicts become records (counters always count)",
       "off: no verdict records; denied: denied and audited attempts (the "
       "default); all: every attempt, allowed ones too.",
       {"--target", "--output"},
       {"egressctl logging all --target web"},
       ParseLogging,
       {"off", "denied", "all"}},
  };
}

// Rules: the UFW-style grammar.
std::vector<CommandSpec> RuleCommands() {
  return {
      {"allow",
       {},
       kRules,
       {"allow SPEC [to] [DEST...] [comment TEXT] [--target NAME] "
        "[--for DURATION]",
        "allow out [proto P] [to DEST] [port PORTS] [comment TEXT]",
        "allow unix ADDRESS... [comment TEXT] [--target NAME]"},
       "allow connections to a service or port",
       kRuleHelp,
       {"--target", "--for", "--output"},
       {"egressctl allow dns 10.0.0.53",
        "egressctl allow smtp 10.0.0.5 comment mail relay",
        "egressctl allow 443/tcp 203.0.113.0/24",
        "egressctl allow out proto tcp to 10.0.0.5 port 25",
        "egressctl allow smtp 10.0.0.5 --for 30m",
        "egressctl allow unix /run/php/php-fpm.sock"},
       ParseAllow,
       {"SERVICE", "any", "icmp", "raw", "tcp", "udp", "unix", "out"}},
      {"deny",
       {},
       kRules,
       {"deny SPEC [to] [DEST...] [comment TEXT] [--target NAME] "
        "[--for DURATION]",
        "deny out [proto P] [to DEST] [port PORTS] [comment TEXT]",
        "deny unix ADDRESS... [comment TEXT] [--target NAME]"},
       "deny connections; a deny beats every allow",
       kRuleHelp,
       {"--target", "--for", "--output"},
       {"egressctl deny any 169.254.169.254",
        "egressctl deny 25/tcp 10.0.0.0/8",
        "egressctl deny unix /var/run/docker.sock"},
       ParseDeny,
       {"SERVICE", "any", "icmp", "raw", "tcp", "udp", "unix", "out"}},
      {"list",
       {},
       kRules,
       {"list [--target NAME] [-o json]"},
       "the rules of each target, numbered for 'delete N'",
       "Numbers are positions, used only by 'delete N'; order does not "
       "matter for the verdict.",
       {"--target", "--output"},
       {"egressctl list", "egressctl list --target web -o json"},
       ParseList},
      {"delete",
       {},
       kRules,
       {"delete N [--target NAME]",
        "delete allow|deny SPEC [DEST...] [--target NAME]"},
       "remove a rule, by number or by its words",
       "N comes from 'list'. A rule may also be named the way it was "
       "added; any spelling with the same meaning matches.",
       {"--target", "--output"},
       {"egressctl delete 3", "egressctl delete deny any 169.254.169.254"},
       ParseDelete,
       {"allow", "deny"}},
      {"status",
       {},
       kRules,
       {"status [verbose|numbered] [-o json]"},
       "targets, attachment, counters and warnings",
       "verbose adds each target's source, logging level, matched cgroups, "
       "flow and record counters. numbered prints the rules like 'list'.",
       {"--output"},
       {"egressctl status", "egressctl status verbose",
        "egressctl status -o json"},
       ParseStatus,
       {"verbose", "numbered"}},
  };
}

// Policy files and learning.
std::vector<CommandSpec> FileCommands() {
  return {
      {"apply",
       {},
       kFiles,
       {"apply -f FILE|DIR [--dry-run]"},
       "validate policy files, show the diff, enforce them",
       "Everything is validated first (file:line:col); each target's rules "
       "are then switched in one map update. --dry-run only shows the diff.",
       {"--file", "--dry-run", "--output"},
       {"egressctl apply -f web.yaml --dry-run",
        "egressctl apply -f /etc/egress/policies.d"},
       ParseApply},
      {"reload",
       {},
       kFiles,
       {"reload"},
       "re-apply egressd's --policy_dir (as SIGHUP does)",
       "A rejected directory leaves what is enforced unchanged.",
       {"--output"},
       {"egressctl reload"},
       ParseReload},
      {"export",
       {},
       kFiles,
       {"export [--target NAME] [--dir DIR]"},
       "what is enforced, as policy files that apply back to it",
       "One target goes to stdout; --dir writes NAME.yaml per target.",
       {"--target", "--dir", "--output"},
       {"egressctl export --target web > web.yaml",
        "egressctl export --dir /etc/egress/policies.d"},
       ParseExport},
      {"suggest",
       {},
       kFiles,
       {"suggest --target NAME [--since DURATION] [--group /N[,/M]]"},
       "a least-privilege policy from what the target did",
       "Run the workload in audit mode first; every attempt is learned. "
       "--group /24,/64 merges destinations into networks.",
       {"--target", "--since", "--group", "--output"},
       {"egressctl suggest --target web > web.yaml"},
       ParseSuggest},
  };
}

// Events, verify and run.
std::vector<CommandSpec> ObserveCommands() {
  return {
      {"events",
       {},
       kObserve,
       {"events [--follow] [--target NAME] "
        "[--verdict deny|audit|allow|unexplained] [--last N] [-o json|text]"},
       "verdict and flow records, newest last",
       "Each refusal carries a hint: the command that would allow it.",
       {"--follow", "--target", "--verdict", "--last", "--output"},
       {"egressctl events --follow --verdict deny",
        "egressctl events --last 20 -o json"},
       ParseEvents},
      {"verify",
       {},
       kObserve,
       {"verify [--target NAME] [-o json]"},
       "probe from inside the target: is the policy really in force?",
       "Tries allowed and denied connections from a process in the target's "
       "cgroup; exit 1 when anything does not get the policy's verdict.",
       {"--target", "--output"},
       {"egressctl verify --target web"},
       ParseVerify},
      {"run",
       {},
       kRun,
       {"run [--allow 'SPEC [DEST]']... [--target-name NAME] "
        "[--mode enforce|audit] -- CMD [ARGS...]"},
       "start a command in its own enforced cgroup",
       "The command joins the cgroup before it execs; the target and cgroup "
       "are removed when it exits. The exit status is the command's.",
       {"--allow", "--target-name", "--mode"},
       {"egressctl run --allow 'dns 127.0.0.53' -- curl https://example.org/"},
       ParseRun},
  };
}

// egressctl itself.
std::vector<CommandSpec> OtherCommands() {
  return {
      {"services",
       {},
       kOther,
       {"services"},
       "the service names rules may use, with their ports",
       "Names from /etc/services work too; these are always known.",
       {},
       {"egressctl services"},
       ParseServices},
      {"help",
       {},
       kOther,
       {"help [COMMAND]"},
       "this text, or one command's help",
       "'egressctl COMMAND --help' prints the same.",
       {},
       {"egressctl help allow", "egressctl target add --help"},
       ParseHelp,
       {"COMMAND"}},
      {"version",
       {},
       kOther,
       {"version"},
       "the version and the BPF ABI version",
       "'egressctl --version' prints the same.",
       {},
       {"egressctl version"},
       ParseVersion},
      {"completion",
       {},
       kOther,
       {"completion bash"},
       "a bash completion script",
       "Load it with: source <(egressctl completion bash)",
       {},
       {"egressctl completion bash > /etc/bash_completion.d/egressctl"},
       ParseCompletion,
       {"bash"}},
      {"man",
       {},
       kOther,
       {"man"},
       "this manual as a roff man page",
       "Read it with: egressctl man | man -l -",
       {},
       {"egressctl man | man -l -"},
       ParseMan},
  };
}

const std::vector<CommandSpec>& Table() {
  static const auto* table = [] {
    auto* all = new std::vector<CommandSpec>();
    for (auto group : {TargetCommands, RuleCommands, FileCommands,
                       ObserveCommands, OtherCommands}) {
      for (CommandSpec& c : group()) all->push_back(std::move(c));
    }
    return all;
  }();
  return *table;
}

constexpr OptionSpec kOptions[] = {
    {"--socket", "", "PATH",
     "egressd's control socket (default /run/egress/egressd.sock)"},
    {"--help", "-h", "", "help for the command"},
    {"--version", "", "", "the version (as 'egressctl version')"},
    {"--target", "-t", "NAME",
     "the target; may be left out when exactly one exists"},
    {"--output", "-o", "FORMAT", "text (also 'table') or json"},
    {"--cgroup", "", "PATH", "target add: a cgroup path"},
    {"--unit", "", "UNIT", "target add: a systemd unit's cgroup"},
    {"--pid", "", "PID", "target add: the cgroup of a process"},
    {"--pattern", "", "GLOB", "target add: every matching cgroup"},
    {"--mode", "", "MODE", "enforce (default) or audit"},
    {"--for", "", "DURATION", "a temporary rule: 90s, 30m, 2h, 7d"},
    {"--file", "-f", "FILE", "a policy file or directory"},
    {"--dry-run", "", "", "show the diff, change nothing"},
    {"--dir", "", "DIR", "export: write NAME.yaml files here"},
    {"--since", "", "DURATION", "suggest: only what was seen since"},
    {"--group", "", "/N[,/M]", "suggest: merge into /N (v4) and /M (v6)"},
    {"--follow", "", "", "events: keep printing new records"},
    {"--verdict", "", "VERDICT", "events: deny, audit, allow or unexplained"},
    {"--last", "", "N", "events: the last N records"},
    {"--allow", "", "'SPEC [DEST]'", "run: a rule (repeatable)"},
    {"--target-name", "", "NAME", "run: the target's name (run-PID)"},
};

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
  std::string value;
  for (const auto& [n, v] : values_) {
    if (n == name) value = v;
  }
  return value;
}

std::vector<std::string> OptionValues::GetAll(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : values_) {
    if (n == name) out.push_back(v);
  }
  return out;
}

absl::Span<const CommandSpec> Commands() { return Table(); }

absl::Span<const OptionSpec> Options() { return kOptions; }

bool IsGlobalOption(absl::string_view name) {
  return name == "--socket" || name == "--help" || name == "--version";
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
  for (const CommandSpec& c : Table()) {
    if (Named(c, words)) return &c;
  }
  return nullptr;
}

const OptionSpec* FindOption(absl::string_view name) {
  for (const OptionSpec& o : kOptions) {
    if (name == o.name || (!o.alias.empty() && name == o.alias)) return &o;
  }
  return nullptr;
}

size_t NameWords(const CommandSpec& command) {
  return static_cast<size_t>(
      std::count(command.name.begin(), command.name.end(), ' ') + 1);
}

}  // namespace egress::cli
