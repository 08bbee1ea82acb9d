// Requests: the typed structs of protocol.h to JSON and back.
#include "userspace/control/protocol.h"

#include "absl/strings/str_cat.h"
#include "userspace/control/json_fields.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/control/protocol_codec.h"
#include "userspace/policy/names.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/rule_json_tree.h"

namespace egress::control {

using nlohmann::json;

namespace {

// The request decoders are templates over the member reader `F`: a
// BasicJsonFields over nlohmann::json (DecodeRequest) or over simdjson's DOM
// (DecodeRequestDom), one definition for both.

// The "rule" member (a RuleFromJson object).
template <typename F>
void RuleField(F& f, const char* name, policy::Rule* out) {
  auto j = f.Member(name, /*required=*/true);
  if (!j) return;
  absl::StatusOr<policy::Rule> rule = policy::RuleFromTree(*j);
  f.Check(name, rule.status());
  if (rule.ok()) *out = *std::move(rule);
}

template <typename F>
void RulesField(F& f, const char* name, std::vector<policy::Rule>* out) {
  auto j = f.Member(name, /*required=*/false);
  if (!j) return;
  absl::StatusOr<std::vector<policy::Rule>> rules = policy::RulesFromTree(*j);
  f.Check(name, rules.status());
  if (rules.ok()) *out = *std::move(rules);
}

json EncodeSpec(const TargetSpec& s) {
  json j = {{"name", s.name},
            {"source_kind", policy::TargetSourceName(s.source)},
            {"source", s.source_value},
            {"mode", policy::ModeName(s.mode)},
            {"logging", policy::LoggingLevelName(s.logging)},
            {"ephemeral", s.ephemeral},
            {"rules", policy::RulesToJson(s.rules)}};
  if (!s.file.empty()) j["file"] = s.file;
  if (!s.target_at.empty()) j["target_at"] = s.target_at;
  // Absent when empty: the request of a target without annotations is what
  // an older egressd reads.
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j;
}

template <typename F>
void DecodeSpec(F& f, TargetSpec* s) {
  f.String("name", &s->name);
  codec::SourceField(f, "source_kind", &s->source);
  f.String("source", &s->source_value);
  codec::ModeField(f, "mode", &s->mode);
  codec::LoggingField(f, "logging", &s->logging);
  f.Bool("ephemeral", &s->ephemeral);
  RulesField(f, "rules", &s->rules);
  f.String("file", &s->file);
  f.String("target_at", &s->target_at);
  codec::StringMap(f, "annotations", &s->annotations);
}

// One encoder per request: the members after "cmd".
struct RequestEncoder {
  json operator()(const TargetAddRequest& r) const {
    json j = EncodeSpec(r.spec);
    j["cut"] = r.cut;
    return j;
  }
  json operator()(const TargetRemoveRequest& r) const {
    return {{"name", r.name}};
  }
  json operator()(const TargetListRequest&) const { return json::object(); }
  json operator()(const ModeRequest& r) const {
    return {{"mode", policy::ModeName(r.mode)},
            {"target", r.target},
            {"all", r.all},
            {"cut", r.cut}};
  }
  json operator()(const LoggingRequest& r) const {
    return {{"level", policy::LoggingLevelName(r.level)}, {"target", r.target}};
  }
  json operator()(const RuleAddRequest& r) const {
    json j = {{"target", r.target},
              {"rule", policy::RuleToJson(r.rule)},
              {"cut", r.cut}};
    if (r.for_seconds) j["for_seconds"] = *r.for_seconds;
    if (r.dry_run) j["dry_run"] = true;
    return j;
  }
  json operator()(const RuleDeleteRequest& r) const {
    json j = {{"target", r.target}, {"cut", r.cut}};
    if (r.number) j["number"] = *r.number;
    if (r.rule) j["rule"] = policy::RuleToJson(*r.rule);
    if (r.dry_run) j["dry_run"] = true;
    return j;
  }
  json operator()(const ListRequest& r) const { return {{"target", r.target}}; }
  json operator()(const StatusRequest&) const { return json::object(); }
  json operator()(const ApplyRequest& r) const {
    json list = json::array();
    for (const TargetSpec& s : r.policies) list.push_back(EncodeSpec(s));
    return {{"dry_run", r.dry_run}, {"policies", list}, {"cut", r.cut}};
  }
  json operator()(const ReloadRequest&) const { return json::object(); }
  json operator()(const SuggestRequest& r) const {
    json j = {{"target", r.target},
              {"group_v4", r.group_v4},
              {"group_v6", r.group_v6},
              {"group_names", r.group_names}};
    if (r.since_seconds) j["since_seconds"] = *r.since_seconds;
    return j;
  }
  json operator()(const ExportRequest& r) const {
    return {{"target", r.target}};
  }
  json operator()(const EventsRequest& r) const {
    json j = {{"follow", r.follow},
              {"target", r.target},
              {"verdict", r.verdict},
              {"format", r.format == EventFormat::kText ? "text" : "json"}};
    if (r.last) j["last"] = *r.last;
    if (!r.container.empty()) j["container"] = r.container;
    if (!r.pod.empty()) j["pod"] = r.pod;
    return j;
  }
  json operator()(const ConnectionsRequest& r) const {
    return {{"target", r.target}, {"cut", r.cut}};
  }
  json operator()(const PingRequest&) const { return json::object(); }
};

template <typename F>
void Decode(F& f, EventsRequest* r) {
  f.Bool("follow", &r->follow);
  f.String("target", &r->target);
  f.String("verdict", &r->verdict);
  f.String("container", &r->container);
  f.String("pod", &r->pod);
  f.OptionalUint("last", &r->last);
  std::string format = "json";
  f.String("format", &format);
  if (format == "text") {
    r->format = EventFormat::kText;
  } else if (format != "json") {
    f.Fail(absl::StrCat("field 'format': unknown format '", format,
                        "': use json or text"));
  }
}

template <typename F>
void Decode(F& f, RuleDeleteRequest* r) {
  f.String("target", &r->target);
  f.Bool("cut", &r->cut);
  f.Bool("dry_run", &r->dry_run);
  f.OptionalUint("number", &r->number);
  if (f.Has("rule")) {
    policy::Rule rule;
    RuleField(f, "rule", &rule);
    r->rule = rule;
  }
}

template <typename F>
void Decode(F& f, SuggestRequest* r) {
  f.String("target", &r->target);
  f.OptionalInt("since_seconds", &r->since_seconds);
  uint64_t v4 = r->group_v4, v6 = r->group_v6;
  f.Uint("group_v4", 32, &v4);
  f.Uint("group_v6", 128, &v6);
  r->group_v4 = static_cast<int>(v4);
  r->group_v6 = static_cast<int>(v6);
  f.Bool("group_names", &r->group_names);
}

template <typename F>
void Decode(F& f, ApplyRequest* r) {
  f.Bool("dry_run", &r->dry_run);
  f.Bool("cut", &r->cut);
  f.Require("policies");
  codec::ObjectList(f, "policies", &r->policies, DecodeSpec<F>);
}

template <typename F>
void Decode(F& f, TargetAddRequest* r) {
  f.Require("name");
  DecodeSpec(f, &r->spec);
  f.Bool("cut", &r->cut);
}
template <typename F>
void Decode(F& f, TargetRemoveRequest* r) {
  f.Require("name");
  f.String("name", &r->name);
}
template <typename F>
void Decode(F& f, ModeRequest* r) {
  f.Require("mode");
  codec::ModeField(f, "mode", &r->mode);
  f.String("target", &r->target);
  f.Bool("all", &r->all);
  f.Bool("cut", &r->cut);
}
template <typename F>
void Decode(F& f, LoggingRequest* r) {
  f.Require("level");
  codec::LoggingField(f, "level", &r->level);
  f.String("target", &r->target);
}
template <typename F>
void Decode(F& f, RuleAddRequest* r) {
  f.String("target", &r->target);
  RuleField(f, "rule", &r->rule);
  f.OptionalInt("for_seconds", &r->for_seconds);
  f.Bool("cut", &r->cut);
  f.Bool("dry_run", &r->dry_run);
}
template <typename F>
void Decode(F& f, ListRequest* r) {
  f.String("target", &r->target);
}
template <typename F>
void Decode(F& f, ExportRequest* r) {
  f.String("target", &r->target);
}
template <typename F>
void Decode(F& f, ConnectionsRequest* r) {
  f.String("target", &r->target);
  f.Bool("cut", &r->cut);
}
// Requests without members.
template <typename F>
void Decode(F&, TargetListRequest*) {}
template <typename F>
void Decode(F&, StatusRequest*) {}
template <typename F>
void Decode(F&, ReloadRequest*) {}
template <typename F>
void Decode(F&, PingRequest*) {}

template <typename T, typename F>
Request DecodeAs(F& f) {
  T request;
  Decode(f, &request);
  return request;
}

// Every command: its "cmd" word and its decoder, in the order of the
// Request variant (CommandOf indexes this table).
template <typename F>
struct Command {
  const char* cmd;
  Request (*decode)(F&);
};
template <typename F>
constexpr Command<F> kCommands[] = {
    {"target_add", DecodeAs<TargetAddRequest, F>},
    {"target_remove", DecodeAs<TargetRemoveRequest, F>},
    {"target_list", DecodeAs<TargetListRequest, F>},
    {"mode", DecodeAs<ModeRequest, F>},
    {"logging", DecodeAs<LoggingRequest, F>},
    {"rule_add", DecodeAs<RuleAddRequest, F>},
    {"rule_delete", DecodeAs<RuleDeleteRequest, F>},
    {"list", DecodeAs<ListRequest, F>},
    {"status", DecodeAs<StatusRequest, F>},
    {"apply", DecodeAs<ApplyRequest, F>},
    {"reload", DecodeAs<ReloadRequest, F>},
    {"suggest", DecodeAs<SuggestRequest, F>},
    {"export", DecodeAs<ExportRequest, F>},
    {"events", DecodeAs<EventsRequest, F>},
    {"connections", DecodeAs<ConnectionsRequest, F>},
    {"ping", DecodeAs<PingRequest, F>},
};
static_assert(std::size(kCommands<JsonFields>) == std::variant_size_v<Request>,
              "one table entry per request type");

// The request in `f` ("request" members): its "cmd", then its decoder.
template <typename F>
absl::StatusOr<Request> DecodeFields(F& f) {
  std::string cmd;
  f.Require("cmd");
  f.String("cmd", &cmd);
  if (!f.ok()) return f.status();
  for (const Command<F>& c : kCommands<F>) {
    if (cmd != c.cmd) continue;
    Request request = c.decode(f);
    if (!f.ok()) return f.status();
    return request;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", cmd, "'"));
}

}  // namespace

std::string TargetWhere(const TargetInfo& t) {
  if (t.source == policy::TargetSource::kUser) {
    return policy::UserText(t.source_value, t.uid);
  }
  if (policy::IsWorkloadSource(t.source)) {
    return absl::StrCat(policy::TargetSourceName(t.source), " ",
                        t.source_value);
  }
  return t.cgroup;
}

TargetSpec SpecOfPolicy(const policy::Policy& p) {
  TargetSpec s;
  s.name = p.name;
  s.file = p.file;
  if (p.target_location.line > 0) {
    s.target_at =
        absl::StrCat(p.target_location.line, ":", p.target_location.column);
  }
  s.source = p.target.kind;
  s.source_value = p.target.value;
  s.mode = p.mode;
  s.logging = p.logging;
  s.rules = p.rules;
  s.annotations = p.annotations;
  return s;
}

std::string CommandOf(const Request& request) {
  return kCommands<JsonFields>[request.index()].cmd;
}

json EncodeRequest(const Request& request) {
  json j = std::visit(RequestEncoder{}, request);
  j["cmd"] = CommandOf(request);
  return j;
}

namespace {

// A string member's text as JsonText prints it (escapes, U+FFFD for bytes
// that are not UTF-8).
void AppendMember(std::string& out, const char* key, const std::string& value) {
  absl::StrAppend(&out, "\"", key, "\":", policy::JsonText(json(value)));
}

void AppendMember(std::string& out, const char* key, bool value) {
  absl::StrAppend(&out, "\"", key, "\":", value ? "true" : "false");
}

// EncodeSpec's object: its members in the tree's (sorted) order.
void AppendSpecText(std::string& out, const TargetSpec& s) {
  out += '{';
  if (!s.annotations.empty()) {
    absl::StrAppend(
        &out, "\"annotations\":", policy::JsonText(json(s.annotations)), ",");
  }
  AppendMember(out, "ephemeral", s.ephemeral);
  if (!s.file.empty()) {
    out += ',';
    AppendMember(out, "file", s.file);
  }
  out += ',';
  AppendMember(out, "logging", policy::LoggingLevelName(s.logging));
  out += ',';
  AppendMember(out, "mode", policy::ModeName(s.mode));
  out += ',';
  AppendMember(out, "name", s.name);
  out += ",\"rules\":[";
  for (size_t i = 0; i < s.rules.size(); ++i) {
    if (i > 0) out += ',';
    policy::AppendRuleJsonText(&out, s.rules[i]);
  }
  out += "],";
  AppendMember(out, "source", s.source_value);
  out += ',';
  AppendMember(out, "source_kind", policy::TargetSourceName(s.source));
  if (!s.target_at.empty()) {
    out += ',';
    AppendMember(out, "target_at", s.target_at);
  }
  out += '}';
}

}  // namespace

std::string RequestText(const Request& request) {
  const auto* apply = std::get_if<ApplyRequest>(&request);
  if (apply == nullptr) return policy::JsonText(EncodeRequest(request));
  // About 150 bytes a rule: one allocation for the line, not a doubling
  // (and a copy) per power of two.
  size_t rules = 0;
  for (const TargetSpec& s : apply->policies) rules += s.rules.size();
  std::string out;
  out.reserve(256 + 256 * apply->policies.size() + 160 * rules);
  out += '{';
  AppendMember(out, "cmd", CommandOf(request));
  out += ',';
  AppendMember(out, "cut", apply->cut);
  out += ',';
  AppendMember(out, "dry_run", apply->dry_run);
  out += ",\"policies\":[";
  for (size_t i = 0; i < apply->policies.size(); ++i) {
    if (i > 0) out += ',';
    AppendSpecText(out, apply->policies[i]);
  }
  out += "]}";
  return out;
}

absl::StatusOr<Request> DecodeRequest(const json& message) {
  JsonFields f(message, "request");
  return DecodeFields(f);
}

absl::StatusOr<Request> DecodeRequestDom(const SimdjsonView& message) {
  BasicJsonFields<SimdjsonView> f(message, "request");
  return DecodeFields(f);
}

}  // namespace egress::control
