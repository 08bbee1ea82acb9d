#include "userspace/policy/rule_json.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

using nlohmann::json;

// Checks that `j` is an object with exactly the members `fields`, plus any
// of `optional`.
absl::Status CheckFields(
    const json& j, absl::string_view what,
    std::initializer_list<absl::string_view> fields,
    std::initializer_list<absl::string_view> optional = {}) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected an object, got ", j.type_name()));
  }
  for (absl::string_view f : fields) {
    if (!j.contains(std::string(f))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": missing field '", f, "'"));
    }
  }
  for (const auto& [key, value] : j.items()) {
    if (std::find(fields.begin(), fields.end(), key) == fields.end() &&
        std::find(optional.begin(), optional.end(), key) == optional.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown field '", key, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const json& j, absl::string_view what,
                                      const char* field) {
  const json& v = j[field];
  if (!v.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", field, "' must be a string"));
  }
  return v.get_ref<const std::string&>();
}

absl::StatusOr<uint64_t> GetUnsigned(const json& j, absl::string_view what,
                                     const char* field, uint64_t max,
                                     absl::string_view type) {
  const json& v = j[field];
  // A negative literal parses as number_integer, a non-negative one as
  // number_unsigned; floats are rejected.
  if (!v.is_number_unsigned() &&
      !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", field, "' must be ", type));
  }
  const uint64_t n = v.get<uint64_t>();
  if (n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", field, "' must be ", type));
  }
  return n;
}

absl::StatusOr<PortProto> PortFromJson(const json& j, absl::string_view what) {
  EGRESS_RETURN_IF_ERROR(CheckFields(j, what, {"proto", "lo", "hi"}));
  PortProto pp;
  EGRESS_ASSIGN_OR_RETURN(const std::string proto, GetString(j, what, "proto"));
  absl::StatusOr<Proto> p = ParseProtoName(proto);
  if (!p.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field 'proto': ", p.status().message()));
  }
  pp.proto = *p;
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t lo,
      GetUnsigned(j, what, "lo", 65535, "a port number 0-65535"));
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t hi,
      GetUnsigned(j, what, "hi", 65535, "a port number 0-65535"));
  if (lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field 'lo' (", lo, ") is above field 'hi' (", hi, ")"));
  }
  pp.lo = static_cast<uint16_t>(lo);
  pp.hi = static_cast<uint16_t>(hi);
  return pp;
}

std::string PortText(const PortProto& pp) {
  switch (pp.proto) {
    case Proto::kIcmp:
    case Proto::kRaw:
    case Proto::kUnix:
      return ProtoName(pp.proto);
    case Proto::kTcp:
    case Proto::kUdp:
      break;
  }
  if (pp.AllPorts()) return ProtoName(pp.proto);
  if (pp.lo == pp.hi) return absl::StrCat(pp.lo, "/", ProtoName(pp.proto));
  return absl::StrCat(pp.lo, "-", pp.hi, "/", ProtoName(pp.proto));
}

// A member that is a list of strings (`field`: "unix", "names"), each
// checked and written in its canonical form by `canonical`.
absl::StatusOr<std::vector<std::string>> StringsFromJson(
    const json& j, absl::string_view field,
    absl::StatusOr<std::string> (*canonical)(absl::string_view)) {
  if (!j.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule: field '", field, "' must be an array"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: ", field, "[", i, "] must be a string"));
    }
    absl::StatusOr<std::string> text =
        canonical(j[i].get_ref<const std::string&>());
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rule: ", field, "[", i, "]: ", text.status().message()));
    }
    out.push_back(*std::move(text));
  }
  return out;
}

// A unix address in unix_rules.h's text form, kept as written.
absl::StatusOr<std::string> UnixPathText(absl::string_view text) {
  EGRESS_RETURN_IF_ERROR(UnixAddressBytes(text).status());
  return std::string(text);
}

}  // namespace

nlohmann::json RuleToJson(const Rule& rule) {
  json ports = json::array();
  for (const PortProto& pp : rule.ports) {
    ports.push_back(
        {{"proto", ProtoName(pp.proto)}, {"lo", pp.lo}, {"hi", pp.hi}});
  }
  json destinations = json::array();
  for (const Cidr& c : rule.destinations) destinations.push_back(c.ToString());
  json out{{"id", rule.id},
           {"action", ActionName(rule.action)},
           {"spec", rule.spec},
           {"ports", std::move(ports)},
           {"destinations", std::move(destinations)},
           {"host", rule.host},
           {"comment", rule.comment}};
  if (rule.expires != 0) out["expires"] = rule.expires;
  if (!rule.unix_paths.empty()) out["unix"] = rule.unix_paths;
  if (!rule.names.empty()) out["names"] = rule.names;
  return out;
}

namespace {

// A JSON string as JsonText writes it. Text of printable ASCII without a
// quote or backslash (spec words, addresses, most comments) is its own
// content; anything else is left to the library (escapes, U+FFFD).
void AppendJsonString(std::string* out, absl::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    absl::StrAppend(out, "\"", s, "\"");
  } else {
    absl::StrAppend(out, JsonText(json(std::string(s))));
  }
}

template <typename List, typename Fn>
void AppendArray(std::string* out, const List& items, Fn append_one) {
  out->push_back('[');
  bool first = true;
  for (const auto& item : items) {
    if (!first) out->push_back(',');
    first = false;
    append_one(item);
  }
  out->push_back(']');
}

}  // namespace

std::string RuleJsonText(const Rule& rule) {
  // Members in the order of the tree's (sorted by name), no spaces.
  std::string out = "{\"action\":";
  AppendJsonString(&out, ActionName(rule.action));
  out += ",\"comment\":";
  AppendJsonString(&out, rule.comment);
  out += ",\"destinations\":";
  AppendArray(&out, rule.destinations,
              [&](const Cidr& c) { AppendJsonString(&out, c.ToString()); });
  if (rule.expires != 0) absl::StrAppend(&out, ",\"expires\":", rule.expires);
  out += ",\"host\":";
  AppendJsonString(&out, rule.host);
  absl::StrAppend(&out, ",\"id\":", rule.id);
  auto strings = [&](const std::vector<std::string>& list) {
    AppendArray(&out, list,
                [&](const std::string& v) { AppendJsonString(&out, v); });
  };
  if (!rule.names.empty()) {
    out += ",\"names\":";
    strings(rule.names);
  }
  out += ",\"ports\":";
  AppendArray(&out, rule.ports, [&](const PortProto& pp) {
    absl::StrAppend(&out, "{\"hi\":", pp.hi, ",\"lo\":", pp.lo, ",\"proto\":");
    AppendJsonString(&out, ProtoName(pp.proto));
    out.push_back('}');
  });
  out += ",\"spec\":";
  AppendJsonString(&out, rule.spec);
  if (!rule.unix_paths.empty()) {
    out += ",\"unix\":";
    strings(rule.unix_paths);
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<Rule> RuleFromJson(const nlohmann::json& j) {
  constexpr absl::string_view kWhat = "rule";
  EGRESS_RETURN_IF_ERROR(CheckFields(
      j, kWhat,
      {"id", "action", "spec", "ports", "destinations", "host", "comment"},
      {"expires", "unix", "names"}));
  Rule rule;
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t id,
      GetUnsigned(j, kWhat, "id", UINT32_MAX, "an unsigned 32-bit integer"));
  rule.id = static_cast<uint32_t>(id);
  EGRESS_ASSIGN_OR_RETURN(const std::string action,
                          GetString(j, kWhat, "action"));
  if (action == "allow") {
    rule.action = Action::kAllow;
  } else if (action == "deny") {
    rule.action = Action::kDeny;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("rule: field 'action': expected 'allow' or 'deny', got '",
                     action, "'"));
  }
  EGRESS_ASSIGN_OR_RETURN(rule.spec, GetString(j, kWhat, "spec"));
  EGRESS_ASSIGN_OR_RETURN(rule.host, GetString(j, kWhat, "host"));
  EGRESS_ASSIGN_OR_RETURN(rule.comment, GetString(j, kWhat, "comment"));
  if (j.contains("expires")) {
    EGRESS_ASSIGN_OR_RETURN(
        const uint64_t expires,
        GetUnsigned(j, kWhat, "expires", INT64_MAX, "a unix time in seconds"));
    rule.expires = static_cast<int64_t>(expires);
  }
  if (j.contains("unix")) {
    EGRESS_ASSIGN_OR_RETURN(rule.unix_paths,
                            StringsFromJson(j["unix"], "unix", UnixPathText));
  }
  if (j.contains("names")) {
    EGRESS_ASSIGN_OR_RETURN(
        rule.names, StringsFromJson(j["names"], "names", CanonicalRuleName));
  }
  const json& ports = j["ports"];
  if (!ports.is_array()) {
    return absl::InvalidArgumentError("rule: field 'ports' must be an array");
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    EGRESS_ASSIGN_OR_RETURN(
        PortProto pp,
        PortFromJson(ports[i], absl::StrCat("rule: ports[", i, "]")));
    rule.ports.push_back(pp);
  }
  const json& destinations = j["destinations"];
  if (!destinations.is_array()) {
    return absl::InvalidArgumentError(
        "rule: field 'destinations' must be an array");
  }
  for (size_t i = 0; i < destinations.size(); ++i) {
    const json& d = destinations[i];
    if (!d.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: destinations[", i, "] must be a string"));
    }
    absl::StatusOr<Cidr> c = Cidr::Parse(d.get_ref<const std::string&>());
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: destinations[", i, "]: ", c.status().message()));
    }
    rule.destinations.push_back(*c);
  }
  return rule;
}

nlohmann::json RulesToJson(absl::Span<const Rule> rules) {
  json out = json::array();
  for (const Rule& r : rules) out.push_back(RuleToJson(r));
  return out;
}

absl::StatusOr<std::vector<Rule>> RulesFromJson(const nlohmann::json& j) {
  if (!j.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rules: expected an array, got ", j.type_name()));
  }
  std::vector<Rule> rules;
  for (size_t i = 0; i < j.size(); ++i) {
    absl::StatusOr<Rule> r = RuleFromJson(j[i]);
    if (!r.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rules[", i, "]: ", r.status().message()));
    }
    rules.push_back(*std::move(r));
  }
  return rules;
}

std::string JsonText(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false,
                nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text) {
  // The parser's error message is only available from the exception.
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad json: ", e.what()));
  }
}

std::string FormatRule(const Rule& rule) {
  std::string out = absl::AsciiStrToUpper(ActionName(rule.action));
  absl::StrAppend(&out, " ", rule.spec);
  const bool is_service =
      !rule.spec.empty() && !absl::ascii_isdigit(rule.spec[0]) &&
      rule.spec != "any" && rule.spec != "icmp" && rule.spec != "raw" &&
      rule.spec != "tcp" && rule.spec != "udp" && rule.spec != "unix";
  if (is_service && !rule.ports.empty()) {
    absl::StrAppend(&out, " (",
                    absl::StrJoin(rule.ports, ", ",
                                  [](std::string* o, const PortProto& pp) {
                                    o->append(PortText(pp));
                                  }),
                    ")");
  }
  const bool raw_only =
      !rule.ports.empty() &&
      std::all_of(rule.ports.begin(), rule.ports.end(),
                  [](const PortProto& pp) { return pp.proto == Proto::kRaw; });
  if (!rule.unix_paths.empty()) {
    absl::StrAppend(&out, " ", absl::StrJoin(rule.unix_paths, " "));
  } else if (!raw_only) {
    if (rule.Anywhere()) {
      absl::StrAppend(&out, " to any");
    } else {
      std::vector<std::string> dests;
      for (const Cidr& c : rule.destinations) dests.push_back(c.ToString());
      dests.insert(dests.end(), rule.names.begin(), rule.names.end());
      absl::StrAppend(&out, " to ", absl::StrJoin(dests, ", "));
    }
    if (!rule.host.empty()) absl::StrAppend(&out, " (", rule.host, ")");
  }
  if (!rule.comment.empty()) absl::StrAppend(&out, " # ", rule.comment);
  return out;
}

}  // namespace egress::policy
