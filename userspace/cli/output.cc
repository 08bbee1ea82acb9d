#include "userspace/cli/output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace egress::cli {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.contains(key)) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string TargetLine(const json& t) {
  std::string state;
  if (!t.value("cgroup_exists", false)) {
    state = "waiting for cgroup";
  } else if (t.value("attached", false)) {
    state = "attached";
  } else {
    state = absl::StrCat("partly attached (", Str(t, "hooks_attached"), "/",
                         Str(t, "hooks_total"), " hooks)");
  }
  return absl::StrFormat("%-16s %-8s %-40s %5s rules  %s", Str(t, "name"),
                         Str(t, "mode"), Str(t, "cgroup"), Str(t, "rules"),
                         state);
}

// " (until 2026-11-24T23:30:00Z)" for a temporary rule, else "".
std::string Until(const json& j) {
  if (!j.contains("expires") || !j["expires"].is_number()) return "";
  return absl::StrCat(
      " (until ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                       absl::FromUnixSeconds(j["expires"].get<int64_t>()),
                       absl::UTCTimeZone()),
      ")");
}

}  // namespace

std::string FormatResponse(const std::string& cmd, const json& r) {
  std::string out;
  if (cmd == "target_add") {
    out = absl::StrCat("Target ", Str(r, "name"), " added: ", Str(r, "cgroup"),
                       " (", Str(r, "mode"), ")\n");
    if (r.contains("warning"))
      absl::StrAppend(&out, "warning: ", Str(r, "warning"), "\n");
  } else if (cmd == "target_remove") {
    out = absl::StrCat("Target ", Str(r, "removed"),
                       " removed; enforcement lifted\n");
  } else if (cmd == "target_list") {
    absl::StrAppend(&out, absl::StrFormat("%-16s %-8s %-40s %11s  %s\n", "NAME",
                                          "MODE", "CGROUP", "RULES", "STATE"));
    for (const json& t : r["targets"])
      absl::StrAppend(&out, TargetLine(t), "\n");
  } else if (cmd == "mode") {
    for (const json& c : r["changed"]) {
      absl::StrAppend(&out, "Target ", Str(c, "target"), ": mode ",
                      Str(c, "mode"), "\n");
    }
  } else if (cmd == "apply" || cmd == "reload") {
    bool dry = r.value("dry_run", false);
    if (r.contains("note")) absl::StrAppend(&out, Str(r, "note"), "\n");
    for (const json& c : r["changes"]) {
      absl::StrAppend(&out, dry ? "Would " : "", Str(c, "action"),
                      dry ? " " : "d ", "target ", Str(c, "target"), " (",
                      Str(c, "cgroup"), ")\n");
      for (const json& a : c["added"])
        absl::StrAppend(&out, "  + ", a.get<std::string>(), "\n");
      for (const json& d : c["removed"])
        absl::StrAppend(&out, "  - ", d.get<std::string>(), "\n");
      if (c.contains("kept_temporary")) {
        for (const json& k : c["kept_temporary"])
          absl::StrAppend(&out, "  = ", k.get<std::string>(),
                          " (temporary: kept until it ends)\n");
      }
    }
    if (dry) absl::StrAppend(&out, "Dry run: nothing changed.\n");
  } else if (cmd == "suggest") {
    out = Str(r, "yaml");
  } else if (cmd == "logging") {
    out = absl::StrCat("Target ", Str(r, "target"), ": logging ",
                       Str(r, "logging"), "\n");
  } else if (cmd == "rule_add") {
    if (r.value("skipped", false)) {
      out = absl::StrCat("Skipping adding existing rule (", Str(r, "number"),
                         ")\n");
    } else {
      out = absl::StrCat(
          r.value("extended", false) ? "Rule extended in " : "Rule added to ",
          Str(r, "target"), " [", Str(r, "number"), "]: ", Str(r, "rule"),
          Until(r), "\n");
    }
  } else if (cmd == "rule_delete") {
    out = absl::StrCat("Rule deleted from ", Str(r, "target"), ": ",
                       Str(r, "deleted"), "\n");
  } else if (cmd == "list") {
    for (const json& t : r["targets"]) {
      absl::StrAppend(&out, "Target: ", Str(t, "target"), " (", Str(t, "mode"),
                      ")\n");
      if (t["rules"].empty()) {
        absl::StrAppend(
            &out, "     (no rules: every outbound connection is denied)\n");
      }
      for (const json& rule : t["rules"]) {
        absl::StrAppend(&out,
                        absl::StrFormat("[%2d] %s%s\n", rule.value("number", 0),
                                        Str(rule, "text"), Until(rule)));
      }
    }
  } else if (cmd == "status") {
    absl::StrAppend(&out, "egressd: running (bpffs ", Str(r, "bpffs"),
                    ", cgroup2 ", Str(r, "cgroup_root"), ")\n");
    if (r["targets"].empty()) absl::StrAppend(&out, "No targets.\n");
    for (const json& t : r["targets"]) {
      absl::StrAppend(&out, "\nTarget: ", TargetLine(t), "\n");
      if (t.contains("counters")) {
        const json& c = t["counters"];
        absl::StrAppend(&out, "  allowed ", Str(c, "allowed"), ", denied ",
                        Str(c, "denied"), ", audited ", Str(c, "audited"),
                        ", udp replies ", Str(c, "udp_replies"),
                        ", sockets denied ", Str(c, "sockets_denied"),
                        ", source routes denied ",
                        Str(c, "source_route_denied"), "\n");
      }
      for (const json& w : t["warnings"]) {
        absl::StrAppend(&out, "  warning: ", w.get<std::string>(), "\n");
      }
    }
  } else {
    out = r.dump(2) + "\n";
  }
  return out;
}

}  // namespace egress::cli
