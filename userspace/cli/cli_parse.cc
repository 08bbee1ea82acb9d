#include "userspace/cli/cli_parse.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "egress/abi.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_request.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"

namespace egress::cli {
namespace {

using nlohmann::json;

// Options that take a value, with their canonical names.
struct OptionSpec {
  const char* name;
  const char* alias;
};
constexpr OptionSpec kValueOptions[] = {
    {"--socket", nullptr},  {"--target", "-t"},     {"--output", "-o"},
    {"--cgroup", nullptr},  {"--unit", nullptr},    {"--pid", nullptr},
    {"--mode", nullptr},    {"--allow", nullptr},   {"--target-name", nullptr},
    {"--verdict", nullptr}, {"--last", nullptr},    {"--file", "-f"},
    {"--for", nullptr},     {"--since", nullptr},   {"--group", nullptr},
    {"--dir", nullptr},     {"--pattern", nullptr},
};
// Options that take no value.
constexpr OptionSpec kFlagOptions[] = {{"--follow", nullptr},
                                       {"--dry-run", nullptr}};

struct Split {
  std::vector<std::string> words;                         // positional
  std::vector<std::pair<std::string, std::string>> opts;  // in order
  std::vector<std::string> after_dashdash;
  bool saw_dashdash = false;
};

absl::StatusOr<Split> SplitArgs(const std::vector<std::string>& args) {
  Split s;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      s.saw_dashdash = true;
      s.after_dashdash.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (a == "-h" || a == "--help") {
      s.words.insert(s.words.begin(), "help");
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && !absl::ascii_isdigit(a[1])) {
      std::string name = a, value;
      bool has_value = false;
      if (size_t eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_value = true;
      }
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& o : kFlagOptions) {
        if (name == o.name || (o.alias && name == o.alias)) spec = &o;
      }
      if (spec != nullptr) {
        s.opts.emplace_back(spec->name, "true");
        continue;
      }
      for (const OptionSpec& o : kValueOptions) {
        if (name == o.name || (o.alias && name == o.alias)) spec = &o;
      }
      if (spec == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option '", a, "'"));
      }
      if (!has_value) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("option '", a, "' needs a value"));
        }
        value = args[++i];
      }
      s.opts.emplace_back(spec->name, value);
      continue;
    }
    s.words.push_back(a);
  }
  return s;
}

class Options {
 public:
  explicit Options(std::vector<std::pair<std::string, std::string>> opts)
      : opts_(std::move(opts)) {}
  std::string Get(const std::string& name) {
    std::string v;
    for (auto& [n, value] : opts_) {
      if (n == name) {
        v = value;
        used_.push_back(n);
      }
    }
    return v;
  }
  bool Has(const std::string& name) const {
    for (auto& [n, value] : opts_) {
      if (n == name) return true;
    }
    return false;
  }
  std::vector<std::string> GetAll(const std::string& name) {
    std::vector<std::string> v;
    for (auto& [n, value] : opts_) {
      if (n == name) {
        v.push_back(value);
        used_.push_back(n);
      }
    }
    return v;
  }
  // Every option given must have been read by the command.
  absl::Status CheckAllUsed(const std::string& command) const {
    for (auto& [n, value] : opts_) {
      if (std::find(used_.begin(), used_.end(), n) == used_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("option '", n, "' does not apply to '", command, "'"));
      }
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<std::string, std::string>> opts_;
  std::vector<std::string> used_;
};

absl::Status CheckMode(const std::string& mode) {
  if (mode == "enforce" || mode == "audit") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", mode, "': use enforce or audit"));
}

absl::Status ExpectWords(const std::vector<std::string>& words, size_t n,
                         const std::string& usage) {
  if (words.size() > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected word '", words[n], "'; usage: ", usage));
  }
  if (words.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat("usage: ", usage));
  }
  return absl::OkStatus();
}

absl::StatusOr<OutputFormat> ParseOutput(const std::string& value) {
  if (value.empty() || value == "text" || value == "table")
    return OutputFormat::kText;
  if (value == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", value, "': use text or json"));
}

absl::StatusOr<policy::Action> ParseAction(const std::string& word) {
  if (word == "allow") return policy::Action::kAllow;
  if (word == "deny") return policy::Action::kDeny;
  return absl::InvalidArgumentError(
      absl::StrCat("expected allow or deny, got '", word, "'"));
}

}  // namespace

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
    if (!absl::StartsWith(parts[i], "/") ||
        !absl::SimpleAtoi(parts[i].substr(1), &n)) {
      return bad();
    }
    if (i == 0) {
      if (n < 1 || n > 32) return bad();
      g.v4 = n;
    } else {
      if (n < 1 || n > 128) return bad();
      g.v6 = n;
    }
  }
  return g;
}

std::string UsageText() {
  return R"(usage: egressctl [--socket PATH] COMMAND ...

Targets (a cgroup whose processes are enforced):
  target add NAME (--cgroup PATH | --unit UNIT | --pid PID | --pattern GLOB)
                [--mode enforce|audit]
      --pattern '/system.slice/docker-*.scope': every matching cgroup, also
      those created later ('**' spans levels).
  target remove NAME            lift enforcement (the only way to do so)
  target list [-o json]
  mode enforce|audit [--target NAME]
  logging off|denied|all [--target NAME]   verdict records (counters always count)

Rules (deny beats allow; no matching allow = denied):
  allow|deny SPEC [DEST...] [--target NAME] [--for DURATION]
      --for 30m: a temporary rule; egressd removes it by itself.
      SPEC: service (smtp, dns, https...), PORT[/tcp|udp], LOW-HIGH[/PROTO],
            icmp, raw or any.  DEST: address, CIDR or host name (default any).
  allow|deny out [proto tcp|udp|any] [to DEST] [port PORTS] [comment TEXT]
  list [-o json] [--target NAME]
  delete N [--target NAME]      (N from 'list')
  delete allow|deny SPEC [DEST...] [--target NAME]
  status [-o json]

Policy files (YAML, see docs/policy.md):
  apply -f FILE|DIR [--dry-run]   show the diff against what is enforced, apply it
  reload                          re-apply egressd's --policy_dir (as SIGHUP does)
  verify [--target NAME]          probe from inside the target's cgroup: is the
                                  policy really in force? (exit 1 if not)
  export [--target NAME] [--dir DIR]
      the enforced policy as files that apply back to it (stdout for one target)

Learn, then enforce (see docs/policy.md):
  target add NAME ... --mode audit   run the workload; every attempt is learned
  suggest --target NAME [--since DURATION] [--group /N[,/M]]
      a least-privilege policy file covering what the target initiated

Events (verdict and flow records, newest last):
  events [--follow] [--target NAME] [--verdict deny|audit|allow|unexplained]
         [--last N] [-o json|text]

Run one program under its own policy:
  run [--allow 'SPEC [DEST]']... [--target-name NAME] [--mode M] -- CMD [ARGS...]

Exit status: 0 done, 2 bad input, 1 anything else.
)";
}

absl::StatusOr<ParsedCommand> ParseCommandLine(
    const std::vector<std::string>& args, const policy::HostResolver& resolve) {
  EGRESS_ASSIGN_OR_RETURN(Split split, SplitArgs(args));
  Options opts(split.opts);
  ParsedCommand out;
  out.socket_path = opts.Get("--socket");
  if (out.socket_path.empty()) out.socket_path = kDefaultSocketPath;
  EGRESS_ASSIGN_OR_RETURN(out.output, ParseOutput(opts.Get("--output")));
  std::vector<std::string>& w = split.words;
  if (w.empty()) {
    return absl::InvalidArgumentError("no command given; try 'egressctl help'");
  }
  if (split.saw_dashdash && w[0] != "run") {
    return absl::InvalidArgumentError(
        absl::StrCat("'--' only goes with 'run', not '", w[0], "'"));
  }
  const std::string cmd = w[0];
  std::vector<std::string> rest(w.begin() + 1, w.end());
  json& req = out.request;

  if (cmd == "help" || cmd == "version") {
    out.cmd = cmd;
    return out;
  }
  if (cmd == "target") {
    if (rest.empty()) {
      return absl::InvalidArgumentError("usage: target add|remove|list ...");
    }
    const std::string sub = rest[0];
    if (sub == "add") {
      EGRESS_RETURN_IF_ERROR(ExpectWords(
          rest, 2,
          "target add NAME (--cgroup PATH | --unit UNIT | --pid PID | "
          "--pattern GLOB)"));
      int kinds = opts.Has("--cgroup") + opts.Has("--unit") +
                  opts.Has("--pid") + opts.Has("--pattern");
      if (kinds != 1) {
        return absl::InvalidArgumentError(
            "target add needs exactly one of --cgroup PATH, --unit UNIT, --pid "
            "PID, --pattern GLOB");
      }
      req = {{"cmd", "target_add"}, {"name", rest[1]}};
      for (const char* kind : {"cgroup", "unit", "pid", "pattern"}) {
        std::string opt = absl::StrCat("--", kind);
        if (opts.Has(opt)) {
          req["source_kind"] = kind;
          req["source"] = opts.Get(opt);
        }
      }
      std::string mode = opts.Get("--mode");
      if (!mode.empty()) {
        EGRESS_RETURN_IF_ERROR(CheckMode(mode));
        req["mode"] = mode;
      }
    } else if (sub == "remove" || sub == "rm" || sub == "delete") {
      EGRESS_RETURN_IF_ERROR(ExpectWords(rest, 2, "target remove NAME"));
      req = {{"cmd", "target_remove"}, {"name", rest[1]}};
    } else if (sub == "list" || sub == "ls") {
      EGRESS_RETURN_IF_ERROR(ExpectWords(rest, 1, "target list [-o json]"));
      req = {{"cmd", "target_list"}};
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown target command '", sub, "': use add, remove or list"));
    }
  } else if (cmd == "mode") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 1, "mode enforce|audit [--target NAME]"));
    EGRESS_RETURN_IF_ERROR(CheckMode(rest[0]));
    req = {
        {"cmd", "mode"}, {"mode", rest[0]}, {"target", opts.Get("--target")}};
  } else if (cmd == "logging") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 1, "logging off|denied|all [--target NAME]"));
    if (rest[0] != "off" && rest[0] != "denied" && rest[0] != "all") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown logging level '", rest[0], "': use off, denied or all"));
    }
    req = {{"cmd", "logging"},
           {"level", rest[0]},
           {"target", opts.Get("--target")}};
  } else if (cmd == "allow" || cmd == "deny") {
    EGRESS_ASSIGN_OR_RETURN(policy::Action action, ParseAction(cmd));
    if (rest.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("usage: ", cmd, " SPEC [DEST...] [--target NAME]"));
    }
    EGRESS_ASSIGN_OR_RETURN(policy::Rule rule,
                            policy::ParseRuleWords(action, rest, resolve));
    req = {{"cmd", "rule_add"},
           {"target", opts.Get("--target")},
           {"rule", policy::RuleToJson(rule)}};
    if (opts.Has("--for")) {
      EGRESS_ASSIGN_OR_RETURN(int64_t seconds,
                              ParseDurationSeconds("--for", opts.Get("--for")));
      req["for_seconds"] = seconds;
    }
  } else if (cmd == "delete") {
    if (rest.empty()) {
      return absl::InvalidArgumentError(
          "usage: delete N | delete allow|deny SPEC [DEST...]");
    }
    req = {{"cmd", "rule_delete"}, {"target", opts.Get("--target")}};
    uint32_t n = 0;
    if (absl::SimpleAtoi(rest[0], &n)) {
      EGRESS_RETURN_IF_ERROR(ExpectWords(rest, 1, "delete N"));
      if (n == 0) {
        return absl::InvalidArgumentError("rule numbers start at 1, not '0'");
      }
      req["number"] = n;
    } else {
      EGRESS_ASSIGN_OR_RETURN(policy::Action action, ParseAction(rest[0]));
      std::vector<std::string> words(rest.begin() + 1, rest.end());
      if (words.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("usage: delete ", rest[0], " SPEC [DEST...]"));
      }
      EGRESS_ASSIGN_OR_RETURN(policy::Rule rule,
                              policy::ParseRuleWords(action, words, resolve));
      req["rule"] = policy::RuleToJson(rule);
    }
  } else if (cmd == "list") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 0, "list [-o json] [--target NAME]"));
    req = {{"cmd", "list"}, {"target", opts.Get("--target")}};
  } else if (cmd == "events") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 0,
                    "events [--follow] [--target NAME] [--verdict "
                    "deny|audit|allow|unexplained] "
                    "[--last N] [-o json|text]"));
    req = {{"cmd", "events"},
           {"follow", opts.Get("--follow") == "true"},
           {"target", opts.Get("--target")},
           {"verdict", opts.Get("--verdict")}};
    std::string last = opts.Get("--last");
    if (!last.empty()) {
      uint32_t n = 0;
      if (!absl::SimpleAtoi(last, &n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--last wants a number, not '", last, "'"));
      }
      req["last"] = n;
    }
  } else if (cmd == "apply") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 0, "apply -f FILE|DIR [--dry-run]"));
    std::string path = opts.Get("--file");
    if (path.empty()) {
      return absl::InvalidArgumentError("usage: apply -f FILE|DIR [--dry-run]");
    }
    EGRESS_ASSIGN_OR_RETURN(std::vector<policy::Policy> policies,
                            policy::LoadPolicies(path));
    req = policy::ApplyRequest(policies, opts.Get("--dry-run") == "true");
  } else if (cmd == "suggest") {
    EGRESS_RETURN_IF_ERROR(ExpectWords(
        rest, 0, "suggest --target NAME [--since DURATION] [--group /N[,/M]]"));
    req = {{"cmd", "suggest"}, {"target", opts.Get("--target")}};
    if (opts.Has("--since")) {
      EGRESS_ASSIGN_OR_RETURN(
          int64_t seconds,
          ParseDurationSeconds("--since", opts.Get("--since")));
      req["since_seconds"] = seconds;
    }
    if (opts.Has("--group")) {
      EGRESS_ASSIGN_OR_RETURN(GroupPrefixes g,
                              ParseGroupPrefixes(opts.Get("--group")));
      req["group_v4"] = g.v4;
      req["group_v6"] = g.v6;
    }
  } else if (cmd == "verify") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 0, "verify [--target NAME] [-o json]"));
    req = {{"cmd", "verify"}, {"target", opts.Get("--target")}};
    out.cmd = "verify";
    EGRESS_RETURN_IF_ERROR(opts.CheckAllUsed(cmd));
    return out;
  } else if (cmd == "export") {
    EGRESS_RETURN_IF_ERROR(
        ExpectWords(rest, 0, "export [--target NAME] [--dir DIR]"));
    req = {{"cmd", "export"}, {"target", opts.Get("--target")}};
    out.export_dir = opts.Get("--dir");
  } else if (cmd == "reload") {
    EGRESS_RETURN_IF_ERROR(ExpectWords(rest, 0, "reload"));
    req = {{"cmd", "reload"}};
  } else if (cmd == "status") {
    EGRESS_RETURN_IF_ERROR(ExpectWords(rest, 0, "status [-o json]"));
    req = {{"cmd", "status"}};
  } else if (cmd == "run") {
    if (!rest.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected word '", rest[0], "': put the command after '--'"));
    }
    if (split.after_dashdash.empty()) {
      return absl::InvalidArgumentError(
          "usage: run [--allow 'SPEC [DEST]']... -- CMD [ARGS...]");
    }
    json rules = json::array();
    for (const std::string& allow : opts.GetAll("--allow")) {
      std::vector<std::string> words =
          absl::StrSplit(allow, ' ', absl::SkipWhitespace());
      EGRESS_ASSIGN_OR_RETURN(
          policy::Rule rule,
          policy::ParseRuleWords(policy::Action::kAllow, words, resolve));
      rules.push_back(policy::RuleToJson(rule));
    }
    std::string mode = opts.Get("--mode");
    if (!mode.empty()) EGRESS_RETURN_IF_ERROR(CheckMode(mode));
    req = {{"cmd", "target_add"},     {"name", opts.Get("--target-name")},
           {"source_kind", "cgroup"}, {"mode", mode.empty() ? "enforce" : mode},
           {"ephemeral", true},       {"rules", rules}};
    out.run_argv = split.after_dashdash;
    out.cmd = "run";
    EGRESS_RETURN_IF_ERROR(opts.CheckAllUsed(cmd));
    return out;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", cmd, "'; try 'egressctl help'"));
  }
  EGRESS_RETURN_IF_ERROR(opts.CheckAllUsed(cmd));
  out.cmd = req["cmd"].get<std::string>();
  return out;
}

}  // namespace egress::cli
