#include "userspace/cli/output.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "egress/dns_abi.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

using control::TargetInfo;

std::string TargetLine(const TargetInfo& t) {
  std::string state;
  if (!t.cgroup_exists) {
    state = "waiting for cgroup";
  } else if (t.attached) {
    state = "attached";
  } else {
    state = absl::StrCat("partly attached (", t.hooks_attached, "/",
                         t.hooks_total, " hooks)");
  }
  if (t.orphan) state = absl::StrCat("orphan, ", state);
  if (!t.degraded.empty()) state = absl::StrCat("DEGRADED, ", state);
  return absl::StrFormat("%-16s %-8s %-40s %5d rules  %s", t.name,
                         policy::ModeName(t.mode), control::TargetWhere(t),
                         t.rules, state);
}

// " (until 2026-11-24T23:30:00Z)" for a temporary rule, else "".
// A rule's line with its end, if it has one, among its notes (after " # ",
// policy::WithNote): the rule before it can be typed back as it is.
std::string Until(absl::string_view rule_line, int64_t expires) {
  if (expires == 0) return std::string(rule_line);
  return policy::WithNote(
      rule_line, absl::StrCat("(until ",
                              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                               absl::FromUnixSeconds(expires),
                                               absl::UTCTimeZone()),
                              ")"));
}

std::string Warnings(const std::vector<std::string>& warnings,
                     absl::string_view indent = "") {
  std::string out;
  for (const std::string& w : warnings) {
    absl::StrAppend(&out, indent, "warning: ", w, "\n");
  }
  return out;
}

std::string CountersLine(const control::TargetCounters& c) {
  // Evicted peers can no longer be answered: said whenever there are any.
  return absl::StrCat(
      "  allowed ", c.allowed, ", denied ", c.denied, ", audited ", c.audited,
      ", udp replies ", c.udp_replies, ", sockets denied ", c.sockets_denied,
      ", source routes denied ", c.source_route_denied,
      c.udp_peers_evicted > 0
          ? absl::StrCat(", udp peers evicted ", c.udp_peers_evicted)
          : "",
      "\n");
}

// What a target with name rules learned from its DNS answers.
std::string DnsLines(const TargetInfo& t) {
  const control::TargetDns& d = *t.dns;
  return absl::StrCat(
      "  names: ", t.name_rules, " name rules; ", d.queries, " queries, ",
      d.answers, " answers (", d.answers_matched, " matched), ",
      d.bindings_learned, " bindings learned, ", d.bindings_live,
      " addresses bound now, ", d.bindings_swept, " swept, ", d.refused_full,
      " refused (full)\n", "  answers ignored: ", d.ignored_malformed,
      " malformed, ", d.ignored_no_query, " no matching query, ",
      d.ignored_resolver, " resolver not allowed, ", d.ignored_no_rule,
      " no name rule, ", d.answers_empty, " no address",
      d.ignored_stream > 0 ? absl::StrCat(", ", d.ignored_stream,
                                          " tcp segments starting no message")
                           : "",
      "\n",
      d.queries_over_rate > 0
          ? absl::StrCat("  queries not remembered: ", d.queries_over_rate,
                         " over the target's share of ",
                         EGRESS_DNS_QUERIES_PER_WINDOW,
                         " per 1.07 s (their answers bind nothing)\n")
          : "",
      d.resolver_source_refused > 0
          ? absl::StrCat("  refused: ", d.resolver_source_refused,
                         " packets sent from port 53 of the target's own "
                         "resolver address (docs/bypasses.md)\n")
          : "");
}

// Who runs in a workload target's cgroup, as `docker ps` names a container:
// "container web (3f2a1b2c3d4e)", "pod shop/web-7d9"; "" when egressd did
// not say.
std::string WorkloadName(const control::CgroupRef& c) {
  if (c.container) {
    return absl::StrCat("container ", c.container->name, " (", c.container->id,
                        ")");
  }
  if (c.pod) return absl::StrCat("pod ", c.pod->ns, "/", c.pod->name);
  return "";
}

// `status`: the containers (pods) a workload target enforces now, by name;
// a cgroup no container is known for by its path.
std::string WorkloadLines(const TargetInfo& t) {
  std::string out;
  if (!policy::IsWorkloadSource(t.source)) return out;
  for (const control::CgroupRef& c : t.cgroups) {
    const std::string who = WorkloadName(c);
    absl::StrAppend(&out, "  ",
                    who.empty() ? absl::StrCat("cgroup ", c.path) : who, "\n");
  }
  return out;
}

// `status`: the policy directory, and why egressd refused it when it did.
std::string PolicyDirLines(const control::StatusResponse& r) {
  if (r.policy_dir.empty()) return "";
  std::string out = absl::StrCat("policy directory ", r.policy_dir, "\n");
  if (r.policy_dir_error.empty()) return out;
  // A part-way failure changed some targets: "stays in force" would lie.
  if (absl::StartsWith(r.policy_dir_error, "partially applied")) {
    return absl::StrCat(out, "warning: the last reload of ", r.policy_dir,
                        " FAILED PART-WAY: ", r.policy_dir_error, "\n");
  }
  return absl::StrCat(
      out, "warning: the last reload of ", r.policy_dir,
      " was REJECTED: ", r.policy_dir_error,
      "\nwarning: the policy enforced before stays in force until a reload "
      "succeeds (egressd tries again on every change to the directory, "
      "every 30 s, on SIGHUP and on 'egressctl reload')\n");
}

// `status`: the file that defines a target, as rule edits are temporary.
std::string PolicyFileLine(const TargetInfo& t) {
  if (t.policy_file.empty()) return "";
  return absl::StrCat("  policy file ", t.policy_file,
                      " (egressd --policy_dir): rule edits last until it is "
                      "reloaded\n");
}

// `status verbose`: where the target comes from and the record counters.
std::string VerboseLines(const TargetInfo& t) {
  std::string out = absl::StrCat(
      "  source ", policy::TargetSourceName(t.source), " ", t.source_value,
      ", logging ", policy::LoggingLevelName(t.logging), ", cgroup id ",
      t.cgroup_id, t.ephemeral ? ", ephemeral (egressctl run)" : "", "\n");
  for (const control::CgroupRef& c : t.cgroups) {
    // The path too: where the container's processes are in the tree.
    const std::string who = WorkloadName(c);
    absl::StrAppend(&out, "  matches ", who, who.empty() ? "" : ": ", c.path,
                    " (id ", c.id, ")\n");
  }
  if (t.counters) {
    const control::TargetCounters& c = *t.counters;
    absl::StrAppend(&out, "  flows opened ", c.flows_opened, ", closed ",
                    c.flows_closed, ", unexplained ", c.flows_unexplained,
                    "; records lost ", c.events_lost, ", suppressed ",
                    c.events_suppressed, "\n");
    absl::StrAppend(&out, "  udp peers recorded ", c.udp_peers_recorded,
                    ", kept now ", c.udp_peers_live, ", evicted ",
                    c.udp_peers_evicted, ", not recorded ",
                    c.udp_peers_not_recorded, "\n");
    if (c.rule_hits_not_counted > 0) {
      absl::StrAppend(&out, "  rule hits not counted (map full) ",
                      c.rule_hits_not_counted, "\n");
    }
  }
  return out;
}

// A target's change at the end of `out_text`. Sized first and written
// with appends, not built apart and copied: a replacing apply of 100,000
// rules lists 200,000 lines.
void AppendChangeText(std::string& out_text, const control::TargetChange& c,
                      bool dry) {
  size_t need = out_text.size() + 256;
  for (const std::string& a : c.added) need += a.size() + 5;
  for (const std::string& d : c.removed) need += d.size() + 5;
  if (need > out_text.capacity()) {
    // Doubling at least: an apply may change thousands of targets.
    out_text.reserve(std::max(need, 2 * out_text.capacity()));
  }
  std::string out = absl::StrCat(dry ? "Would " : "", c.action,
                                 dry ? " " : "d ", "target ", c.target, " (",
                                 !c.user.empty()       ? c.user
                                 : !c.workload.empty() ? c.workload
                                                       : c.cgroup,
                                 ")");
  // A new target says how it starts; an update says what changes in how it
  // enforces and records, which a dry run must not hide.
  if (c.action == "create") {
    std::vector<std::string> settings;
    if (c.mode)
      settings.push_back(absl::StrCat("mode ", policy::ModeName(*c.mode)));
    if (c.logging) {
      settings.push_back(
          absl::StrCat("logging ", policy::LoggingLevelName(*c.logging)));
    }
    if (!settings.empty()) {
      absl::StrAppend(&out, ": ", absl::StrJoin(settings, ", "));
    }
    absl::StrAppend(&out, "\n");
  } else {
    absl::StrAppend(&out, "\n");
    if (c.mode && c.mode_from) {
      absl::StrAppend(&out, "  mode ", policy::ModeName(*c.mode_from), " -> ",
                      policy::ModeName(*c.mode), "\n");
    }
    if (c.logging && c.logging_from) {
      absl::StrAppend(&out, "  logging ",
                      policy::LoggingLevelName(*c.logging_from), " -> ",
                      policy::LoggingLevelName(*c.logging), "\n");
    }
  }
  out_text.append(out);
  auto line = [&](absl::string_view mark, const std::string& text) {
    out_text.append(mark.data(), mark.size());
    out_text.append(text);
    out_text.push_back('\n');
  };
  for (const std::string& a : c.added) line("  + ", a);
  for (const control::RuleTextChange& t : c.changed) {
    absl::StrAppend(&out_text, "  ~ ", t.to, " (was: ", t.from, ")\n");
  }
  for (const std::string& d : c.removed) line("  - ", d);
  for (const std::string& k : c.kept_temporary) {
    absl::StrAppend(&out_text, "  = ", k, " (temporary: kept until it ends)\n");
  }
}

// "127.0.0.1:40001", "[::1]:40001".
std::string Endpoint(const std::string& address, uint64_t port) {
  if (address.find(':') != std::string::npos) {
    return absl::StrCat("[", address, "]:", port);
  }
  return absl::StrCat(address, ":", port);
}

// "tcp 127.0.0.1:51234 -> 127.0.0.1:40001 (nc[4123])".
std::string ConnectionWhat(const control::Connection& c) {
  std::string out =
      absl::StrCat(c.protocol, " ", Endpoint(c.source, c.source_port), " -> ",
                   Endpoint(c.destination, c.destination_port));
  if (c.pid != 0) absl::StrAppend(&out, " (", c.comm, "[", c.pid, "])");
  return out;
}

// What a change found: one line per connection its rules do not allow.
std::string ExistingLines(const std::vector<control::Connection>& existing) {
  std::string out;
  for (const control::Connection& c : existing) {
    absl::StrAppend(&out, "existing connection of ", c.target,
                    " not allowed: ", ConnectionWhat(c), ": ", c.why, " [",
                    c.action, "]\n");
  }
  return out;
}

std::string ConnectionLine(const control::Connection& c) {
  const char* verdict = c.allowed ? "allowed" : "NOT ALLOWED";
  std::string process =
      c.pid == 0 ? "-" : absl::StrCat(c.comm, "[", c.pid, "]");
  return absl::StrFormat("%-12s %-4s %-26s %-26s %-11s %-16s %-11s %s [%s]\n",
                         c.target, c.protocol,
                         Endpoint(c.source, c.source_port),
                         Endpoint(c.destination, c.destination_port), c.state,
                         process, verdict, c.why, c.action);
}

struct TextFormatter {
  const TextOptions& options;

  std::string operator()(const control::TargetAddResponse& r) const {
    std::string out = absl::StrCat(
        "Target ", r.target.name, " added: ", control::TargetWhere(r.target),
        " (", policy::ModeName(r.target.mode), ")\n");
    if (!r.warning.empty()) absl::StrAppend(&out, "warning: ", r.warning, "\n");
    return out + ExistingLines(r.existing);
  }
  std::string operator()(const control::TargetRemoveResponse& r) const {
    return absl::StrCat("Target ", r.removed, " removed; enforcement lifted\n");
  }
  std::string operator()(const control::TargetListResponse& r) const {
    std::string out = absl::StrFormat("%-16s %-8s %-40s %11s  %s\n", "NAME",
                                      "MODE", "CGROUP", "RULES", "STATE");
    for (const TargetInfo& t : r.targets) {
      absl::StrAppend(&out, TargetLine(t), "\n");
    }
    return out;
  }
  std::string operator()(const control::ModeResponse& r) const {
    std::string out;
    for (const control::ModeChange& c : r.changed) {
      absl::StrAppend(&out, "Target ", c.target, ": mode ",
                      policy::ModeName(c.mode), "\n");
    }
    return out + ExistingLines(r.existing);
  }
  std::string operator()(const control::LoggingResponse& r) const {
    return absl::StrCat("Target ", r.target, ": logging ",
                        policy::LoggingLevelName(r.logging), "\n");
  }
  std::string operator()(const control::RuleAddResponse& r) const {
    if (r.dry_run) {
      // The lines `apply --dry-run` prints for the same change.
      std::string out =
          r.skipped
              ? absl::StrCat("Skipping adding existing rule (", r.number, ")\n")
          : r.extended ? absl::StrCat("Would update target ", r.target,
                                      "\n  ~ ", Until(r.rule, r.expires), "\n")
                       : absl::StrCat("Would update target ", r.target,
                                      "\n  + ", Until(r.rule, r.expires), "\n");
      return out + Warnings(r.warnings) + "Dry run: nothing changed.\n";
    }
    std::string out =
        r.skipped
            ? absl::StrCat("Skipping adding existing rule (", r.number, ")\n")
            : absl::StrCat(r.extended ? "Rule extended in " : "Rule added to ",
                           r.target, " [", r.number,
                           "]: ", Until(r.rule, r.expires), "\n");
    return out + Warnings(r.warnings) + ExistingLines(r.existing);
  }
  std::string operator()(const control::RuleDeleteResponse& r) const {
    if (r.dry_run) {
      return absl::StrCat("Would update target ", r.target, "\n  - ", r.deleted,
                          "\nDry run: nothing changed.\n");
    }
    return absl::StrCat("Rule deleted from ", r.target, ": ", r.deleted, "\n",
                        ExistingLines(r.existing));
  }
  std::string operator()(const control::ListResponse& r) const {
    std::string out;
    for (const control::TargetRules& t : r.targets) {
      absl::StrAppend(&out, "Target: ", t.target, " (",
                      policy::ModeName(t.mode), ")\n");
      if (t.orphan) {
        absl::StrAppend(&out,
                        "     (orphan: found pinned without state; its rules "
                        "are unknown and stay enforced)\n");
        continue;
      }
      if (t.rules.empty()) {
        absl::StrAppend(
            &out, "     (no rules: every outbound connection is denied)\n");
      }
      for (const control::NumberedRule& n : t.rules) {
        absl::StrAppend(&out, absl::StrFormat("[%2d] ", n.number),
                        Until(policy::FormatRule(n.rule), n.rule.expires),
                        "\n");
      }
    }
    return out;
  }
  std::string operator()(const control::StatusResponse& r) const {
    std::string out = absl::StrCat("egressd: running (bpffs ", r.bpffs,
                                   ", cgroup2 ", r.cgroup_root, ")\n");
    if (options.verbose) {
      absl::StrAppend(&out, "version ", r.version, ", records read ",
                      r.events_read, ", dropped ", r.events_dropped,
                      ", sink errors ", r.events_sink_errors,
                      ", udp peers evicted ", r.udp_peers_evicted, "\n");
    }
    absl::StrAppend(&out, PolicyDirLines(r));
    if (!r.state_error.empty()) {
      absl::StrAppend(&out, "warning: CHANGES ARE REFUSED: ", r.state_error,
                      "\n");
    }
    if (r.targets.empty()) absl::StrAppend(&out, "No targets.\n");
    for (const TargetInfo& t : r.targets) {
      absl::StrAppend(&out, "\nTarget: ", TargetLine(t), "\n");
      absl::StrAppend(&out, PolicyFileLine(t));
      if (!options.verbose) absl::StrAppend(&out, WorkloadLines(t));
      if (t.counters) absl::StrAppend(&out, CountersLine(*t.counters));
      if (t.dns) absl::StrAppend(&out, DnsLines(t));
      if (options.verbose) absl::StrAppend(&out, VerboseLines(t));
      if (!t.degraded.empty()) {
        absl::StrAppend(&out, "  degraded: ", t.degraded, "\n");
      }
      absl::StrAppend(&out, Warnings(t.warnings, "  "));
    }
    return out;
  }
  std::string operator()(const control::ApplyResponse& r) const {
    std::string out = r.note.empty() ? "" : absl::StrCat(r.note, "\n");
    for (const control::TargetChange& c : r.changes) {
      AppendChangeText(out, c, r.dry_run);
    }
    if (r.dry_run) absl::StrAppend(&out, "Dry run: nothing changed.\n");
    out += ExistingLines(r.existing);
    return out;
  }
  std::string operator()(const control::SuggestResponse& r) const {
    return r.yaml;
  }
  std::string operator()(const control::ExportResponse& r) const {
    std::string out;
    for (const control::ExportFile& f : r.files) absl::StrAppend(&out, f.yaml);
    return out;
  }
  std::string operator()(const control::EventsResponse& r) const {
    return r.lines.empty() ? ""
                           : absl::StrCat(absl::StrJoin(r.lines, "\n"), "\n");
  }
  std::string operator()(const control::ConnectionsResponse& r) const {
    if (r.connections.empty()) return "No connections.\n";
    std::string out = absl::StrFormat(
        "%-12s %-4s %-26s %-26s %-11s %-16s %-11s %s\n", "TARGET", "PROTO",
        "SOURCE", "DESTINATION", "STATE", "PROCESS", "VERDICT", "WHY [ACTION]");
    for (const control::Connection& c : r.connections) {
      absl::StrAppend(&out, ConnectionLine(c));
    }
    if (r.truncated) {
      absl::StrAppend(&out,
                      "warning: more sockets than one look reads; some "
                      "connections are not listed\n");
    }
    return out;
  }
  std::string operator()(const control::PingResponse&) const {
    return "egressd: running\n";
  }
};

}  // namespace

std::string PolicyFileEditWarning(const control::Response& response) {
  std::string target, file;
  if (const auto* r = std::get_if<control::RuleAddResponse>(&response)) {
    if (r->skipped) return "";  // nothing changed
    target = r->target;
    file = r->policy_file;
  } else if (const auto* d =
                 std::get_if<control::RuleDeleteResponse>(&response)) {
    target = d->target;
    file = d->policy_file;
  }
  if (file.empty()) return "";
  return absl::StrCat(
      "target ", target, " is defined by ", file,
      " (egressd --policy_dir): this change lasts only until that directory "
      "is next reloaded (any change to it, SIGHUP, 'egressctl reload', a "
      "restart); to keep it, make it in ",
      file, " ('egressctl export --target ", target,
      "' prints the rules now enforced)");
}

std::string FormatResponse(const control::Response& response,
                           const TextOptions& options) {
  return std::visit(TextFormatter{options}, response);
}

}  // namespace egress::cli
