// Responses: the typed structs of protocol.h to JSON and back. The member
// names are what `egressctl ... -o json` prints; scripts read them.
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "userspace/control/json_archive.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/control/protocol.h"
#include "userspace/control/protocol_codec.h"
#include "userspace/policy/rule_json.h"

namespace egress::control {

using nlohmann::json;

// Each struct's members, once, for JsonWriter and JsonReader. Not in an
// unnamed namespace: the archive finds them by argument-dependent lookup.

template <typename Io>
void Fields(Io& io, Member<TargetCounters, Io>& c) {
  io.Members("allowed", c.allowed, "denied", c.denied, "audited", c.audited,
             "udp_replies", c.udp_replies, "sockets_denied", c.sockets_denied,
             "source_route_denied", c.source_route_denied, "events_lost",
             c.events_lost, "events_suppressed", c.events_suppressed,
             "flows_opened", c.flows_opened, "flows_closed", c.flows_closed,
             "flows_unexplained", c.flows_unexplained, "udp_peers_recorded",
             c.udp_peers_recorded, "udp_peers_not_recorded",
             c.udp_peers_not_recorded, "udp_peers_live", c.udp_peers_live,
             "udp_peers_evicted", c.udp_peers_evicted, "rule_hits_not_counted",
             c.rule_hits_not_counted);
}

template <typename Io>
void Fields(Io& io, Member<TargetDns, Io>& d) {
  io.Members("queries", d.queries, "queries_over_rate", d.queries_over_rate,
             "answers", d.answers, "answers_matched", d.answers_matched,
             "answers_empty", d.answers_empty, "bindings_learned",
             d.bindings_learned, "ignored_malformed", d.ignored_malformed,
             "ignored_no_query", d.ignored_no_query, "ignored_resolver",
             d.ignored_resolver, "ignored_no_rule", d.ignored_no_rule,
             "refused_full", d.refused_full, "ignored_stream", d.ignored_stream,
             "resolver_source_refused", d.resolver_source_refused,
             "bindings_live", d.bindings_live, "bindings_expired",
             d.bindings_expired, "bindings_swept", d.bindings_swept,
             "resolver_warnings", d.resolver_warnings);
}

template <typename Io>
void Fields(Io& io, Member<ContainerName, Io>& c) {
  io.Members("name", c.name, "id", c.id, "image", c.image);
}

template <typename Io>
void Fields(Io& io, Member<PodName, Io>& p) {
  io.Members("namespace", p.ns, "name", p.name);
}

template <typename Io>
void Fields(Io& io, Member<CgroupRef, Io>& c) {
  io.Members("path", c.path, "id", c.id, "container", c.container, "pod",
             c.pod);
}

template <typename Io>
void Fields(Io& io, Member<TargetInfo, Io>& t) {
  io.Members("name", t.name, "id", t.id, "cgroup", t.cgroup, "mode", t.mode,
             "logging", t.logging, "rules", t.rules, "name_rules", t.name_rules,
             "source_kind", t.source, "source", t.source_value, "ephemeral",
             t.ephemeral);
  if (t.source == policy::TargetSource::kPattern) io.Constant("pattern", true);
  io.FieldIf(t.source == policy::TargetSource::kUser, "uid", t.uid);
  io.FieldIf(t.source == policy::TargetSource::kPattern ||
                 policy::IsWorkloadSource(t.source),
             "cgroups", t.cgroups);
  io.Members("cgroup_exists", t.cgroup_exists, "cgroup_id", t.cgroup_id,
             "hooks_attached", t.hooks_attached, "hooks_total", t.hooks_total,
             "attached", t.attached, "counters", t.counters);
  io.FieldIf(t.dns.has_value(), "dns", t.dns);
  io.FieldIf(t.orphan, "orphan", t.orphan);
  io.FieldIf(!t.degraded.empty(), "degraded", t.degraded);
  // `status` always lists its warnings, even none.
  io.FieldIf(!t.warnings.empty() || t.counters, "warnings", t.warnings);
  io.FieldIf(!t.policy_file.empty(), "policy_file", t.policy_file);
}

template <typename Io>
void Fields(Io& io, Member<RuleTextChange, Io>& c) {
  io.Members("from", c.from, "to", c.to);
}

template <typename Io>
void Fields(Io& io, Member<TargetChange, Io>& c) {
  io.Members("target", c.target, "cgroup", c.cgroup, "action", c.action);
  io.FieldIf(!c.user.empty(), "user", c.user);
  io.FieldIf(!c.cgroup_from.empty(), "cgroup_from", c.cgroup_from);
  io.Members("mode", c.mode, "added", c.added, "removed", c.removed,
             "kept_temporary", c.kept_temporary);
  io.FieldIf(c.mode_from.has_value(), "mode_from", c.mode_from);
  io.FieldIf(c.logging.has_value(), "logging", c.logging);
  io.FieldIf(c.logging_from.has_value(), "logging_from", c.logging_from);
  io.FieldIf(!c.changed.empty(), "changed", c.changed);
  io.FieldIf(!c.workload.empty(), "workload", c.workload);
}

// A rule as `list -o json` shows it: its members, its number and its text.
template <typename Io>
void Fields(Io& io, Member<NumberedRule, Io>& n) {
  io.Inline(n.rule, {"number", "text"});
  io.Field("number", n.number);
  io.Constant("text", policy::FormatRule(n.rule));
}

template <typename Io>
void Fields(Io& io, Member<TargetRules, Io>& t) {
  io.Members("target", t.target, "mode", t.mode, "rules", t.rules);
  io.FieldIf(t.orphan, "orphan", t.orphan);
}

template <typename Io>
void Fields(Io& io, Member<ExportFile, Io>& e) {
  io.Members("name", e.name, "file", e.file, "yaml", e.yaml);
}

template <typename Io>
void Fields(Io& io, Member<ModeChange, Io>& c) {
  io.Members("target", c.target, "mode", c.mode);
}

template <typename Io>
void Fields(Io& io, Member<Connection, Io>& c) {
  io.Members("target", c.target, "cgroup", c.cgroup, "cgroup_id", c.cgroup_id,
             "protocol", c.protocol, "family", c.family, "state", c.state,
             "source", c.source, "source_port", c.source_port, "destination",
             c.destination, "destination_port", c.destination_port, "inode",
             c.inode, "cookie", c.cookie, "uid", c.uid, "pid", c.pid, "comm",
             c.comm, "allowed", c.allowed, "reason", c.reason, "rule", c.rule,
             "why", c.why, "action", c.action);
}

template <typename Io>
void Fields(Io& io, Member<ConnectionsResponse, Io>& r) {
  io.Members("connections", r.connections, "truncated", r.truncated);
}

// A response that is one member, named as in the struct.
#define EGRESS_ONE_MEMBER(Type, member)      \
  template <typename Io>                     \
  void Fields(Io& io, Member<Type, Io>& r) { \
    io.Field(#member, r.member);             \
  }
EGRESS_ONE_MEMBER(TargetRemoveResponse, removed)
EGRESS_ONE_MEMBER(TargetListResponse, targets)
EGRESS_ONE_MEMBER(ListResponse, targets)
EGRESS_ONE_MEMBER(ExportResponse, files)
#undef EGRESS_ONE_MEMBER

template <typename Io>
void Fields(Io& io, Member<EventsResponse, Io>& r) {
  io.Field("lines", r.lines);
  io.FieldIf(!r.warning.empty(), "warning", r.warning);
}

template <typename Io>
void Fields(Io& io, Member<TargetAddResponse, Io>& r) {
  Fields(io, r.target);
  io.FieldIf(!r.warning.empty(), "warning", r.warning);
  io.FieldIf(!r.existing.empty(), "existing", r.existing);
}

template <typename Io>
void Fields(Io& io, Member<RuleAddResponse, Io>& r) {
  io.Members("target", r.target, "number", r.number);
  io.FieldIf(r.skipped, "skipped", r.skipped);
  io.FieldIf(r.skipped, "message", r.message);
  io.FieldIf(!r.skipped, "rule", r.rule);
  io.FieldIf(r.expires != 0, "expires", r.expires);
  io.FieldIf(r.extended, "extended", r.extended);
  io.FieldIf(!r.warnings.empty(), "warnings", r.warnings);
  io.FieldIf(!r.existing.empty(), "existing", r.existing);
  io.FieldIf(!r.policy_file.empty(), "policy_file", r.policy_file);
  io.FieldIf(r.dry_run, "dry_run", r.dry_run);
}

template <typename Io>
void Fields(Io& io, Member<LoggingResponse, Io>& r) {
  io.Members("target", r.target, "logging", r.logging);
}

template <typename Io>
void Fields(Io& io, Member<StatusResponse, Io>& r) {
  io.Members("targets", r.targets, "metrics_port", r.metrics_port,
             "events_read", r.events_read, "events_dropped", r.events_dropped,
             "events_sink_errors", r.events_sink_errors, "udp_peers_evicted",
             r.udp_peers_evicted, "bpffs", r.bpffs, "cgroup_root",
             r.cgroup_root, "version", r.version);
  io.FieldIf(!r.policy_dir.empty(), "policy_dir", r.policy_dir);
  io.FieldIf(!r.policy_dir_error.empty(), "policy_dir_error",
             r.policy_dir_error);
  io.FieldIf(!r.state_error.empty(), "state_error", r.state_error);
}

template <typename Io>
void Fields(Io& io, Member<ModeResponse, Io>& r) {
  io.Field("changed", r.changed);
  io.FieldIf(!r.existing.empty(), "existing", r.existing);
}

template <typename Io>
void Fields(Io& io, Member<RuleDeleteResponse, Io>& r) {
  io.Members("target", r.target, "deleted", r.deleted);
  io.FieldIf(!r.existing.empty(), "existing", r.existing);
  io.FieldIf(!r.policy_file.empty(), "policy_file", r.policy_file);
  io.FieldIf(r.dry_run, "dry_run", r.dry_run);
}

template <typename Io>
void Fields(Io& io, Member<ApplyResponse, Io>& r) {
  io.Members("dry_run", r.dry_run, "changes", r.changes);
  io.FieldIf(!r.note.empty(), "note", r.note);
  io.FieldIf(!r.existing.empty(), "existing", r.existing);
}

template <typename Io>
void Fields(Io& io, Member<SuggestResponse, Io>& r) {
  io.Members("target", r.target, "observations", r.observations, "yaml",
             r.yaml);
}

template <typename Io>
void Fields(Io& io, Member<PingResponse, Io>&) {
  io.Constant("pong", true);
}

namespace {

// The response type each request expects, by the request's place in Request.
using RepliesByRequest =
    std::tuple<TargetAddResponse, TargetRemoveResponse, TargetListResponse,
               ModeResponse, LoggingResponse, RuleAddResponse,
               RuleDeleteResponse, ListResponse, StatusResponse, ApplyResponse,
               ApplyResponse /* reload */, SuggestResponse, ExportResponse,
               EventsResponse, ConnectionsResponse, PingResponse>;
static_assert(std::tuple_size_v<RepliesByRequest> ==
              std::variant_size_v<Request>);

// The reply to the request at place `index` of Request, read from `f`.
template <size_t I = 0, typename F>
Response ReadReply(size_t index, F& f) {
  if constexpr (I + 1 < std::variant_size_v<Request>) {
    if (index != I) return ReadReply<I + 1>(index, f);
  }
  std::tuple_element_t<I, RepliesByRequest> reply;
  BasicJsonReader<F>::Read(f, &reply);
  return reply;
}

// DecodeResponse over any view: one definition for both trees.
template <typename View>
absl::StatusOr<Response> DecodeResponseOf(const Request& request,
                                          View message) {
  BasicJsonFields<View> f(message, "egressd's response:");
  Response response = ReadReply(request.index(), f);
  if (!f.ok()) return absl::InternalError(f.status().message());
  return response;
}

}  // namespace

json EncodeTargetInfo(const TargetInfo& t) { return JsonWriter::Write(t); }

json EncodeResponse(const Response& response) {
  json j =
      std::visit([](const auto& r) { return JsonWriter::Write(r); }, response);
  j["ok"] = true;
  return j;
}

namespace {

// The tree's text of a ListResponse, written without the tree (ResponseText
// does so for a `list` as for an apply): `list` of a target of 100,000 rules
// spent most of egressd's time building and dumping it. Members in the tree's
// (sorted) order, as EncodeResponse makes them; a rule's "number" and "text"
// are sorted in among its own.
std::string ListText(const ListResponse& list) {
  size_t rules = 0;
  for (const TargetRules& t : list.targets) rules += t.rules.size();
  std::string out;
  out.reserve(64 + rules * 192);
  out.append("{\"ok\":true,\"targets\":[");
  std::string number, text;
  for (size_t i = 0; i < list.targets.size(); ++i) {
    const TargetRules& t = list.targets[i];
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, "{\"mode\":");
    policy::AppendJsonString(&out, policy::ModeName(t.mode));
    if (t.orphan) out.append(",\"orphan\":true");
    out.append(",\"rules\":[");
    for (size_t k = 0; k < t.rules.size(); ++k) {
      const NumberedRule& n = t.rules[k];
      if (k > 0) out.push_back(',');
      number.clear();
      absl::StrAppend(&number, n.number);
      text.clear();
      policy::AppendJsonString(&text, policy::FormatRule(n.rule));
      const policy::JsonMember extra[] = {{"number", number}, {"text", text}};
      policy::AppendRuleJsonText(&out, n.rule, extra);
    }
    out.append("],\"target\":");
    policy::AppendJsonString(&out, t.target);
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

}  // namespace

std::string ResponseText(const Response& response) {
  if (const auto* list = std::get_if<ListResponse>(&response)) {
    return ListText(*list);
  }
  const auto* apply = std::get_if<ApplyResponse>(&response);
  if (apply == nullptr) return policy::JsonText(EncodeResponse(response));
  // The tree without the change lists, then each list written where the
  // tree has it empty. A change's members come in the tree's (sorted)
  // order: added, kept_temporary, removed; "changes" is the first member of
  // the response, so its lists come before any other text. `"name":[]`
  // cannot occur inside a JSON string (its quotes would be escaped).
  ApplyResponse shell;
  shell.dry_run = apply->dry_run;
  shell.note = apply->note;
  shell.existing = apply->existing;
  shell.changes.reserve(apply->changes.size());
  size_t listed = 0;
  for (const TargetChange& c : apply->changes) {
    TargetChange& e = shell.changes.emplace_back();
    e.target = c.target;
    e.cgroup = c.cgroup;
    e.action = c.action;
    e.cgroup_from = c.cgroup_from;
    e.mode = c.mode;
    e.mode_from = c.mode_from;
    e.logging = c.logging;
    e.logging_from = c.logging_from;
    e.changed = c.changed;
    e.workload = c.workload;
    e.user = c.user;
    for (const auto* list : {&c.added, &c.kept_temporary, &c.removed}) {
      for (const std::string& line : *list) listed += line.size() + 3;
    }
  }
  const std::string tree = policy::JsonText(EncodeResponse(Response(shell)));
  std::string out;
  out.reserve(tree.size() + listed + 1);
  size_t at = 0;
  for (const TargetChange& c : apply->changes) {
    for (const auto& [key, list] :
         {std::pair{"\"added\":[]", &c.added},
          std::pair{"\"kept_temporary\":[]", &c.kept_temporary},
          std::pair{"\"removed\":[]", &c.removed}}) {
      const size_t found = tree.find(key, at);
      if (found == std::string::npos) {
        return policy::JsonText(EncodeResponse(response));  // never expected
      }
      const size_t open = found + std::strlen(key) - 1;  // at the ']'
      out.append(tree, at, open - at);
      for (size_t i = 0; i < list->size(); ++i) {
        if (i > 0) out.push_back(',');
        policy::AppendJsonString(&out, (*list)[i]);
      }
      at = open;
    }
  }
  out.append(tree, at, std::string::npos);
  return out;
}

absl::StatusOr<Response> DecodeResponse(const Request& request,
                                        const json& message) {
  return DecodeResponseOf(request, policy::NlohmannView(message));
}

absl::StatusOr<Response> DecodeResponseDom(const Request& request,
                                           const SimdjsonView& message) {
  return DecodeResponseOf(request, message);
}

}  // namespace egress::control
