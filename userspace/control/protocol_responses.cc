// Responses: the typed structs of protocol.h to JSON and back. The member
// names are what `egressctl ... -o json` prints; scripts read them.
#include "absl/strings/str_cat.h"
#include "userspace/control/protocol.h"
#include "userspace/control/protocol_codec.h"
#include "userspace/policy/rule_json.h"

namespace egress::control {
namespace {

using nlohmann::json;

json EncodeCounters(const TargetCounters& c) {
  return {{"allowed", c.allowed},
          {"denied", c.denied},
          {"audited", c.audited},
          {"udp_replies", c.udp_replies},
          {"sockets_denied", c.sockets_denied},
          {"source_route_denied", c.source_route_denied},
          {"events_lost", c.events_lost},
          {"events_suppressed", c.events_suppressed},
          {"flows_opened", c.flows_opened},
          {"flows_closed", c.flows_closed},
          {"flows_unexplained", c.flows_unexplained}};
}

void DecodeCounters(JsonFields& f, TargetCounters* c) {
  f.Uint("allowed", &c->allowed);
  f.Uint("denied", &c->denied);
  f.Uint("audited", &c->audited);
  f.Uint("udp_replies", &c->udp_replies);
  f.Uint("sockets_denied", &c->sockets_denied);
  f.Uint("source_route_denied", &c->source_route_denied);
  f.Uint("events_lost", &c->events_lost);
  f.Uint("events_suppressed", &c->events_suppressed);
  f.Uint("flows_opened", &c->flows_opened);
  f.Uint("flows_closed", &c->flows_closed);
  f.Uint("flows_unexplained", &c->flows_unexplained);
}

void DecodeCgroupRef(JsonFields& f, CgroupRef* c) {
  f.String("path", &c->path);
  f.Uint("id", &c->id);
}

void DecodeTargetInfo(JsonFields& f, TargetInfo* t) {
  f.String("name", &t->name);
  f.Uint("id", &t->id);
  f.String("cgroup", &t->cgroup);
  codec::ModeField(f, "mode", &t->mode);
  codec::LoggingField(f, "logging", &t->logging);
  f.Uint("rules", &t->rules);
  codec::SourceField(f, "source_kind", &t->source);
  f.String("source", &t->source_value);
  f.Bool("ephemeral", &t->ephemeral);
  codec::ObjectList(f, "cgroups", &t->cgroups, DecodeCgroupRef);
  f.Bool("cgroup_exists", &t->cgroup_exists);
  f.Uint("cgroup_id", &t->cgroup_id);
  f.Uint("hooks_attached", &t->hooks_attached);
  f.Uint("hooks_total", &t->hooks_total);
  f.Bool("attached", &t->attached);
  if (const json* c = f.Member("counters", false); c != nullptr) {
    JsonFields cf(*c, "counters");
    TargetCounters counters;
    DecodeCounters(cf, &counters);
    if (!cf.ok()) f.Fail(std::string(cf.status().message()));
    t->counters = counters;
  }
  codec::StringList(f, "warnings", &t->warnings);
}

json EncodeChange(const TargetChange& c) {
  json j = {{"target", c.target},   {"cgroup", c.cgroup},
            {"action", c.action},   {"added", c.added},
            {"removed", c.removed}, {"kept_temporary", c.kept_temporary}};
  if (!c.cgroup_from.empty()) j["cgroup_from"] = c.cgroup_from;
  if (c.mode) j["mode"] = policy::ModeName(*c.mode);
  return j;
}

void DecodeChange(JsonFields& f, TargetChange* c) {
  f.String("target", &c->target);
  f.String("cgroup", &c->cgroup);
  f.String("action", &c->action);
  f.String("cgroup_from", &c->cgroup_from);
  if (f.Has("mode")) {
    policy::Mode mode = policy::Mode::kEnforce;
    codec::ModeField(f, "mode", &mode);
    c->mode = mode;
  }
  codec::StringList(f, "added", &c->added);
  codec::StringList(f, "removed", &c->removed);
  codec::StringList(f, "kept_temporary", &c->kept_temporary);
}

json EncodeTargetRules(const TargetRules& t) {
  json rules = json::array();
  for (const NumberedRule& n : t.rules) {
    json r = policy::RuleToJson(n.rule);
    r["number"] = n.number;
    r["text"] = policy::FormatRule(n.rule);
    rules.push_back(std::move(r));
  }
  return {{"target", t.target},
          {"mode", policy::ModeName(t.mode)},
          {"rules", rules}};
}

void DecodeTargetRules(JsonFields& f, TargetRules* t) {
  f.String("target", &t->target);
  codec::ModeField(f, "mode", &t->mode);
  const json* rules = f.Member("rules", false);
  if (rules == nullptr || !f.ok()) return;
  if (!rules->is_array()) {
    f.Fail("field 'rules' must be a list");
    return;
  }
  for (const json& r : *rules) {
    NumberedRule n;
    n.number = r.value("number", uint64_t{0});
    json bare = r;
    bare.erase("number");
    bare.erase("text");
    absl::StatusOr<policy::Rule> rule = policy::RuleFromJson(bare);
    f.Check("rules", rule.status());
    if (!rule.ok()) return;
    n.rule = *std::move(rule);
    t->rules.push_back(std::move(n));
  }
}

void DecodeExportFile(JsonFields& f, ExportFile* e) {
  f.String("name", &e->name);
  f.String("file", &e->file);
  f.String("yaml", &e->yaml);
}

void DecodeModeChange(JsonFields& f, ModeChange* c) {
  f.String("target", &c->target);
  codec::ModeField(f, "mode", &c->mode);
}

struct ResponseEncoder {
  json operator()(const TargetAddResponse& r) const {
    json j = EncodeTargetInfo(r.target);
    if (!r.warning.empty()) j["warning"] = r.warning;
    return j;
  }
  json operator()(const TargetRemoveResponse& r) const {
    return {{"removed", r.removed}};
  }
  json operator()(const TargetListResponse& r) const {
    json list = json::array();
    for (const TargetInfo& t : r.targets) list.push_back(EncodeTargetInfo(t));
    return {{"targets", list}};
  }
  json operator()(const ModeResponse& r) const {
    json list = json::array();
    for (const ModeChange& c : r.changed) {
      list.push_back(
          {{"target", c.target}, {"mode", policy::ModeName(c.mode)}});
    }
    return {{"changed", list}};
  }
  json operator()(const LoggingResponse& r) const {
    return {{"target", r.target},
            {"logging", policy::LoggingLevelName(r.logging)}};
  }
  json operator()(const RuleAddResponse& r) const {
    json j = {{"target", r.target}, {"number", r.number}};
    if (r.skipped) {
      j["skipped"] = true;
      j["message"] = r.message;
    } else {
      j["rule"] = r.rule;
    }
    if (r.expires != 0) j["expires"] = r.expires;
    if (r.extended) j["extended"] = true;
    if (!r.warnings.empty()) j["warnings"] = r.warnings;
    return j;
  }
  json operator()(const RuleDeleteResponse& r) const {
    return {{"target", r.target}, {"deleted", r.deleted}};
  }
  json operator()(const ListResponse& r) const {
    json list = json::array();
    for (const TargetRules& t : r.targets) list.push_back(EncodeTargetRules(t));
    return {{"targets", list}};
  }
  json operator()(const StatusResponse& r) const {
    json list = json::array();
    for (const TargetInfo& t : r.targets) list.push_back(EncodeTargetInfo(t));
    return {{"targets", list},
            {"metrics_port", r.metrics_port},
            {"events_read", r.events_read},
            {"events_dropped", r.events_dropped},
            {"events_sink_errors", r.events_sink_errors},
            {"bpffs", r.bpffs},
            {"cgroup_root", r.cgroup_root},
            {"version", r.version}};
  }
  json operator()(const ApplyResponse& r) const {
    json list = json::array();
    for (const TargetChange& c : r.changes) list.push_back(EncodeChange(c));
    json j = {{"dry_run", r.dry_run}, {"changes", list}};
    if (!r.note.empty()) j["note"] = r.note;
    return j;
  }
  json operator()(const SuggestResponse& r) const {
    return {{"target", r.target},
            {"observations", r.observations},
            {"yaml", r.yaml}};
  }
  json operator()(const ExportResponse& r) const {
    json list = json::array();
    for (const ExportFile& f : r.files) {
      list.push_back({{"name", f.name}, {"file", f.file}, {"yaml", f.yaml}});
    }
    return {{"files", list}};
  }
  json operator()(const EventsResponse& r) const {
    return {{"lines", r.lines}};
  }
  json operator()(const PingResponse&) const { return {{"pong", true}}; }
};

// Decoders by request type: the response each request expects.
struct ResponseDecoder {
  JsonFields& f;
  Response operator()(const TargetAddRequest&) const {
    TargetAddResponse r;
    DecodeTargetInfo(f, &r.target);
    f.String("warning", &r.warning);
    return r;
  }
  Response operator()(const TargetRemoveRequest&) const {
    TargetRemoveResponse r;
    f.String("removed", &r.removed);
    return r;
  }
  Response operator()(const TargetListRequest&) const {
    TargetListResponse r;
    codec::ObjectList(f, "targets", &r.targets, DecodeTargetInfo);
    return r;
  }
  Response operator()(const ModeRequest&) const {
    ModeResponse r;
    codec::ObjectList(f, "changed", &r.changed, DecodeModeChange);
    return r;
  }
  Response operator()(const LoggingRequest&) const {
    LoggingResponse r;
    f.String("target", &r.target);
    codec::LoggingField(f, "logging", &r.logging);
    return r;
  }
  Response operator()(const RuleAddRequest&) const {
    RuleAddResponse r;
    f.String("target", &r.target);
    f.Uint("number", &r.number);
    f.String("rule", &r.rule);
    f.Int("expires", &r.expires);
    f.Bool("extended", &r.extended);
    f.Bool("skipped", &r.skipped);
    f.String("message", &r.message);
    codec::StringList(f, "warnings", &r.warnings);
    return r;
  }
  Response operator()(const RuleDeleteRequest&) const {
    RuleDeleteResponse r;
    f.String("target", &r.target);
    f.String("deleted", &r.deleted);
    return r;
  }
  Response operator()(const ListRequest&) const {
    ListResponse r;
    codec::ObjectList(f, "targets", &r.targets, DecodeTargetRules);
    return r;
  }
  Response operator()(const StatusRequest&) const {
    StatusResponse r;
    codec::ObjectList(f, "targets", &r.targets, DecodeTargetInfo);
    f.Uint("metrics_port", &r.metrics_port);
    f.Uint("events_read", &r.events_read);
    f.Uint("events_dropped", &r.events_dropped);
    f.Uint("events_sink_errors", &r.events_sink_errors);
    f.String("bpffs", &r.bpffs);
    f.String("cgroup_root", &r.cgroup_root);
    f.String("version", &r.version);
    return r;
  }
  Response Apply() const {
    ApplyResponse r;
    f.Bool("dry_run", &r.dry_run);
    codec::ObjectList(f, "changes", &r.changes, DecodeChange);
    f.String("note", &r.note);
    return r;
  }
  Response operator()(const ApplyRequest&) const { return Apply(); }
  Response operator()(const ReloadRequest&) const { return Apply(); }
  Response operator()(const SuggestRequest&) const {
    SuggestResponse r;
    f.String("target", &r.target);
    f.Uint("observations", &r.observations);
    f.String("yaml", &r.yaml);
    return r;
  }
  Response operator()(const ExportRequest&) const {
    ExportResponse r;
    codec::ObjectList(f, "files", &r.files, DecodeExportFile);
    return r;
  }
  Response operator()(const EventsRequest&) const {
    EventsResponse r;
    codec::StringList(f, "lines", &r.lines);
    return r;
  }
  Response operator()(const PingRequest&) const { return PingResponse{}; }
};

}  // namespace

json EncodeTargetInfo(const TargetInfo& t) {
  json j = {{"name", t.name},
            {"id", t.id},
            {"cgroup", t.cgroup},
            {"mode", policy::ModeName(t.mode)},
            {"logging", policy::LoggingLevelName(t.logging)},
            {"rules", t.rules},
            {"source_kind", policy::TargetSourceName(t.source)},
            {"source", t.source_value},
            {"ephemeral", t.ephemeral},
            {"cgroup_exists", t.cgroup_exists},
            {"cgroup_id", t.cgroup_id},
            {"hooks_attached", t.hooks_attached},
            {"hooks_total", t.hooks_total},
            {"attached", t.attached}};
  if (t.source == policy::TargetSource::kPattern) {
    json cgroups = json::array();
    for (const CgroupRef& c : t.cgroups) {
      cgroups.push_back({{"path", c.path}, {"id", c.id}});
    }
    j["pattern"] = true;
    j["cgroups"] = cgroups;
  }
  if (t.counters) j["counters"] = EncodeCounters(*t.counters);
  if (!t.warnings.empty() || t.counters) j["warnings"] = t.warnings;
  return j;
}

json EncodeResponse(const Response& response) {
  json j = std::visit(ResponseEncoder{}, response);
  j["ok"] = true;
  return j;
}

absl::StatusOr<Response> DecodeResponse(const Request& request,
                                        const json& message) {
  JsonFields f(message, "egressd's response:");
  Response response = std::visit(ResponseDecoder{f}, request);
  if (!f.ok()) return absl::InternalError(f.status().message());
  return response;
}

}  // namespace egress::control
