#include "userspace/cli/command_parsers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/cli/ufw_hints.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/label_selector.h"
#include "userspace/policy/names.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/spec.h"
#include "userspace/policy/target_values.h"

namespace egress::cli {
namespace {

// The words must be exactly `n`; the usage line is the command's synopsis.
absl::Status ExpectWords(const CommandInput& in, size_t n,
                         const ParsedCommand& out) {
  const std::string usage(out.command->synopsis[0]);
  if (in.words.size() > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected word '", in.words[n], "'; usage: egressctl ", usage));
  }
  if (in.words.size() < n) {
    return absl::InvalidArgumentError(absl::StrCat("usage: egressctl ", usage));
  }
  return absl::OkStatus();
}

// Either case: `list` prints ALLOW and DENY, and its lines are typed back
// after `delete`.
absl::StatusOr<policy::Action> ParseAction(const std::string& word) {
  const std::string lower = absl::AsciiStrToLower(word);
  if (lower == "allow") return policy::Action::kAllow;
  if (lower == "deny") return policy::Action::kDeny;
  return absl::InvalidArgumentError(
      absl::StrCat("expected allow or deny, got '", word, "'"));
}

absl::StatusOr<policy::Mode> ModeOption(const CommandInput& in) {
  if (!in.options.Has("--mode")) return policy::Mode::kEnforce;
  return policy::ParseMode(in.options.Get("--mode"));
}

absl::Status CheckDryRunWithoutCut(bool dry_run, bool cut) {
  if (dry_run && cut) {
    return absl::InvalidArgumentError(
        "--cut and --dry-run do not go together: a dry run cuts nothing");
  }
  return absl::OkStatus();
}

absl::Status ParseRule(policy::Action action, const CommandInput& in,
                       ParsedCommand* out) {
  if (in.words.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage: egressctl ", out->command->synopsis[0]));
  }
  control::RuleAddRequest req;
  req.target = in.options.Get("--target");
  req.cut = in.options.Has("--cut");
  req.dry_run = in.options.Has("--dry-run");
  EGRESS_RETURN_IF_ERROR(CheckDryRunWithoutCut(req.dry_run, req.cut));
  EGRESS_ASSIGN_OR_RETURN(req.rule, policy::ParseRuleWords(action, in.words));
  if (in.options.Has("--for")) {
    EGRESS_ASSIGN_OR_RETURN(
        req.for_seconds,
        ParseDurationSeconds("--for", in.options.Get("--for")));
  }
  out->request = std::move(req);
  return absl::OkStatus();
}

// The source option of `target add` (exactly one).
absl::Status TargetSource(const CommandInput& in, control::TargetSpec* spec) {
  int given = 0;
  for (const char* kind : {"cgroup", "unit", "pid", "pattern", "user",
                           "container", "selector", "pod", "pod-selector"}) {
    const std::string option = absl::StrCat("--", kind);
    if (!in.options.Has(option)) continue;
    ++given;
    EGRESS_ASSIGN_OR_RETURN(spec->source, policy::ParseTargetSource(kind));
    spec->source_value = in.options.Get(option);
  }
  if (given != 1) {
    return absl::InvalidArgumentError(
        "target add needs exactly one of --cgroup PATH, --unit UNIT, --pid "
        "PID, --pattern GLOB, --user USER, --container NAME|ID, --selector "
        "KEY=VALUE[,KEY=VALUE], --pod NAMESPACE/NAME, --namespace NAMESPACE "
        "--pod-selector KEY=VALUE[,KEY=VALUE]");
  }
  // NetworkPolicy's pair: a pod selector applies within one namespace.
  const bool has_namespace = in.options.Has("--namespace");
  if (spec->source == policy::TargetSource::kPodSelector) {
    if (!has_namespace) {
      return absl::InvalidArgumentError(
          "--pod-selector needs --namespace NAMESPACE: a selector never "
          "spans namespaces (kube-system stays out unless named)");
    }
    // "" selects every pod of the namespace (an empty podSelector).
    const std::string text =
        absl::StrCat(in.options.Get("--namespace"), "/", spec->source_value);
    auto selector = policy::ParsePodSelector(text);
    if (!selector.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--pod-selector: ", selector.status().message()));
    }
    spec->source_value = policy::PodSelectorText(*selector);
  } else if (has_namespace) {
    return absl::InvalidArgumentError(
        "--namespace goes with --pod-selector (a pod is --pod "
        "NAMESPACE/NAME)");
  }
  if (spec->source == policy::TargetSource::kPod) {
    auto pod = policy::ParsePodRef(spec->source_value);
    if (!pod.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--pod: ", pod.status().message()));
    }
  }
  if (spec->source == policy::TargetSource::kSelector) {
    auto labels = policy::ParseLabelSelector(spec->source_value);
    if (!labels.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--selector: ", labels.status().message()));
    }
    spec->source_value = policy::LabelSelectorText(*labels);
  }
  if (spec->source == policy::TargetSource::kUnit) {
    // egressd hands the name to systemctl; "--unit=-Hhost" must not become
    // an option there.
    if (absl::Status st = policy::CheckUnitName(spec->source_value); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--unit: ", st.message()));
    }
  }
  if (spec->source == policy::TargetSource::kUser) {
    if (absl::Status st = policy::CheckUser(spec->source_value); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--user: ", st.message()));
    }
  }
  // What a policy file refuses is refused here too (target_values.h):
  // `export` writes the target into one, and `apply` must take it back.
  absl::Status check;
  if (spec->source == policy::TargetSource::kCgroup) {
    check = policy::CheckCgroupPath(spec->source_value);
  } else if (spec->source == policy::TargetSource::kPattern) {
    check = policy::CheckCgroupPattern(spec->source_value);
  } else if (spec->source == policy::TargetSource::kContainer) {
    check = policy::CheckContainer(spec->source_value);
  }
  if (!check.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", policy::TargetSourceName(spec->source), ": ", check.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseTargetAdd(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 1, *out));
  control::TargetAddRequest req;
  req.spec.name = in.words[0];
  req.cut = in.options.Has("--cut");
  EGRESS_RETURN_IF_ERROR(TargetSource(in, &req.spec));
  EGRESS_ASSIGN_OR_RETURN(req.spec.mode, ModeOption(in));
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseTargetRemove(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 1, *out));
  out->request = control::TargetRemoveRequest{in.words[0]};
  return absl::OkStatus();
}

// A command that takes no words and sends a request without fields.
template <typename Request>
absl::Status ParseNoWords(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->request = Request{};
  return absl::OkStatus();
}

absl::Status ParseTargetList(const CommandInput& in, ParsedCommand* out) {
  return ParseNoWords<control::TargetListRequest>(in, out);
}

// A command whose one word is a setting of a target: `mode audit`,
// `logging all`, with --target.
template <typename Request, typename Value>
absl::Status ParseTargetSetting(
    const CommandInput& in, ParsedCommand* out,
    absl::StatusOr<Value> (*parse)(absl::string_view), Value Request::*field) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 1, *out));
  Request req;
  EGRESS_ASSIGN_OR_RETURN(req.*field, parse(in.words[0]));
  req.target = in.options.Get("--target");
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseMode(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ParseTargetSetting(in, out, policy::ParseMode,
                                            &control::ModeRequest::mode));
  auto& req = std::get<control::ModeRequest>(*out->request);
  req.cut = in.options.Has("--cut");
  if (req.cut && req.mode != policy::Mode::kEnforce) {
    return absl::InvalidArgumentError(
        "--cut goes with 'mode enforce': an audit target keeps its "
        "connections");
  }
  return absl::OkStatus();
}

absl::Status ParseLogging(const CommandInput& in, ParsedCommand* out) {
  if (in.words.size() == 1) {
    EGRESS_RETURN_IF_ERROR(CheckUfwLoggingLevel(in.words[0]));
  }
  return ParseTargetSetting(in, out, policy::ParseLoggingLevel,
                            &control::LoggingRequest::level);
}

absl::Status ParseAllow(const CommandInput& in, ParsedCommand* out) {
  return ParseRule(policy::Action::kAllow, in, out);
}

absl::Status ParseDeny(const CommandInput& in, ParsedCommand* out) {
  return ParseRule(policy::Action::kDeny, in, out);
}

absl::Status ParseList(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->request = control::ListRequest{in.options.Get("--target")};
  return absl::OkStatus();
}

absl::Status ParseDelete(const CommandInput& in, ParsedCommand* out) {
  if (in.words.empty()) return ExpectWords(in, 1, *out);
  control::RuleDeleteRequest req;
  req.target = in.options.Get("--target");
  req.cut = in.options.Has("--cut");
  req.dry_run = in.options.Has("--dry-run");
  EGRESS_RETURN_IF_ERROR(CheckDryRunWithoutCut(req.dry_run, req.cut));
  uint32_t n = 0;
  if (absl::SimpleAtoi(in.words[0], &n)) {
    EGRESS_RETURN_IF_ERROR(ExpectWords(in, 1, *out));
    if (n == 0) {
      return absl::InvalidArgumentError("rule numbers start at 1, not '0'");
    }
    req.number = n;
  } else {
    EGRESS_ASSIGN_OR_RETURN(policy::Action action, ParseAction(in.words[0]));
    if (in.words.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "usage: egressctl delete ", in.words[0], " SPEC [DEST...]"));
    }
    const std::vector<std::string> rule(in.words.begin() + 1, in.words.end());
    EGRESS_ASSIGN_OR_RETURN(req.rule, policy::ParseRuleWords(action, rule));
  }
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseStatus(const CommandInput& in, ParsedCommand* out) {
  if (in.words.size() == 1 && in.words[0] == "numbered") {
    // UFW's numbered status is egress's `list`.
    out->numbered = true;
    out->request = control::ListRequest{};
    return absl::OkStatus();
  }
  if (in.words.size() == 1 && in.words[0] == "verbose") {
    out->verbose = true;
  } else {
    EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  }
  out->request = control::StatusRequest{};
  return absl::OkStatus();
}

absl::Status ParseApply(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  const std::string path = in.options.Get("--file");
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "usage: egressctl apply -f FILE|DIR [--dry-run]");
  }
  EGRESS_ASSIGN_OR_RETURN(std::vector<policy::Policy> policies,
                          policy::LoadPolicies(path));
  control::ApplyRequest req;
  req.dry_run = in.options.Has("--dry-run");
  req.cut = in.options.Has("--cut");
  if (req.dry_run && req.cut) {
    return absl::InvalidArgumentError(
        "--cut and --dry-run do not go together: a dry run cuts nothing");
  }
  for (policy::Policy& p : policies) {
    // Moved, not copied: a policy may hold 100,000 rules.
    std::vector<policy::Rule> rules = std::move(p.rules);
    control::TargetSpec spec = control::SpecOfPolicy(p);
    spec.rules = std::move(rules);
    req.policies.push_back(std::move(spec));
  }
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseReload(const CommandInput& in, ParsedCommand* out) {
  return ParseNoWords<control::ReloadRequest>(in, out);
}

absl::Status ParseExport(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->request = control::ExportRequest{in.options.Get("--target")};
  out->export_dir = in.options.Get("--dir");
  return absl::OkStatus();
}

absl::Status ParseSuggest(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  control::SuggestRequest req;
  req.target = in.options.Get("--target");
  if (in.options.Has("--since")) {
    EGRESS_ASSIGN_OR_RETURN(
        req.since_seconds,
        ParseDurationSeconds("--since", in.options.Get("--since")));
  }
  if (in.options.Has("--group")) {
    EGRESS_ASSIGN_OR_RETURN(GroupPrefixes g,
                            ParseGroupPrefixes(in.options.Get("--group")));
    req.group_v4 = g.v4;
    req.group_v6 = g.v6;
  }
  req.group_names = in.options.Has("--group-names");
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseVerify(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->local = LocalAction::kVerify;
  out->request = control::ListRequest{in.options.Get("--target")};
  return absl::OkStatus();
}

absl::Status ParseEvents(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  control::EventsRequest req;
  req.follow = in.options.Has("--follow");
  req.target = in.options.Get("--target");
  req.verdict = in.options.Get("--verdict");
  req.container = in.options.Get("--container");
  req.pod = in.options.Get("--pod");
  if (!req.pod.empty() && !absl::EndsWith(req.pod, "/")) {
    if (auto pod = policy::ParsePodRef(req.pod); !pod.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--pod: ", pod.status().message()));
    }
  }
  req.format = out->output == OutputFormat::kJson ? control::EventFormat::kJson
                                                  : control::EventFormat::kText;
  if (in.options.Has("--last")) {
    const std::string last = in.options.Get("--last");
    uint32_t n = 0;
    if (!absl::SimpleAtoi(last, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--last wants a number, not '", last, "'"));
    }
    req.last = n;
  }
  out->request = std::move(req);
  return absl::OkStatus();
}

absl::Status ParseConnections(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->request = control::ConnectionsRequest{in.options.Get("--target"),
                                             in.options.Has("--cut")};
  return absl::OkStatus();
}

absl::Status ParseRun(const CommandInput& in, ParsedCommand* out) {
  if (!in.words.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected word '", in.words[0], "': put the command after '--'"));
  }
  if (in.after_dashdash.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage: egressctl ", out->command->synopsis[0]));
  }
  control::TargetSpec spec;
  spec.name = in.options.Get("--target-name");
  spec.ephemeral = true;
  EGRESS_ASSIGN_OR_RETURN(spec.mode, ModeOption(in));
  for (const std::string& allow : in.options.GetAll("--allow")) {
    const std::vector<std::string> words =
        absl::StrSplit(allow, ' ', absl::SkipWhitespace());
    EGRESS_ASSIGN_OR_RETURN(
        policy::Rule rule,
        policy::ParseRuleWords(policy::Action::kAllow, words));
    spec.rules.push_back(std::move(rule));
  }
  EGRESS_ASSIGN_OR_RETURN(
      out->run_restrictions,
      MakeRunRestrictions(in.options.GetAll("--allow-family"),
                          in.options.Has("--any-family"),
                          in.options.Has("--allow-userns"),
                          in.options.Has("--allow-io-uring")));
  out->local = LocalAction::kRun;
  out->request = control::TargetAddRequest{std::move(spec)};
  out->run_argv = in.after_dashdash;
  // Names are looked up when the command starts (/etc/passwd, /etc/group),
  // never here: parsing resolves nothing.
  out->run_user = in.options.Get("--user");
  out->run_group = in.options.Get("--group");
  return absl::OkStatus();
}

// A command egressctl answers itself that takes no words.
template <LocalAction action>
absl::Status ParseLocalNoWords(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->local = action;
  return absl::OkStatus();
}

absl::Status ParseServices(const CommandInput& in, ParsedCommand* out) {
  return ParseLocalNoWords<LocalAction::kServices>(in, out);
}

absl::Status ParseHelp(const CommandInput& in, ParsedCommand* out) {
  out->local = LocalAction::kHelp;
  if (in.words.empty()) return absl::OkStatus();
  const CommandSpec* about = FindCommand(in.words);
  const bool group = in.words.size() == 1 && in.words[0] == "target";
  if ((about == nullptr || NameWords(*about) != in.words.size()) && !group) {
    return absl::InvalidArgumentError(
        absl::StrCat("no help for '", absl::StrJoin(in.words, " "),
                     "': not a command; try 'egressctl help'"));
  }
  out->topic = group ? "target" : std::string(about->name);
  return absl::OkStatus();
}

absl::Status ParseVersion(const CommandInput& in, ParsedCommand* out) {
  return ParseLocalNoWords<LocalAction::kVersion>(in, out);
}

absl::Status ParseCompletion(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 1, *out));
  if (in.words[0] != "bash") {
    return absl::InvalidArgumentError(
        absl::StrCat("no completion for shell '", in.words[0], "': only bash"));
  }
  out->local = LocalAction::kCompletion;
  out->topic = in.words[0];
  return absl::OkStatus();
}

absl::Status ParseMan(const CommandInput& in, ParsedCommand* out) {
  EGRESS_RETURN_IF_ERROR(ExpectWords(in, 0, *out));
  out->local = LocalAction::kMan;
  return absl::OkStatus();
}

}  // namespace egress::cli
