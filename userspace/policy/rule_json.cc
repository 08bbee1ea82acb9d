#include "userspace/policy/rule_json.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/json_view.h"
#include "userspace/policy/rule_json_tree.h"
#include "userspace/policy/spec_text.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

using nlohmann::json;

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

// Appends `v` (0-255) in decimal.
void AppendByte(std::string& out, uint8_t v) {
  if (v >= 100) out.push_back(static_cast<char>('0' + v / 100));
  if (v >= 10) out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// Appends c.ToString(): an IPv4 network written in place (a replacing
// apply's diff writes 200,000 addresses, each a string of its own before).
void AppendCidrText(std::string& out, const Cidr& c) {
  if (c.family != 4) {
    out.append(c.ToString());
    return;
  }
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out.push_back('.');
    AppendByte(out, c.addr[i]);
  }
  if (c.prefix_len != 32) absl::StrAppend(&out, "/", c.prefix_len);
}

}  // namespace

namespace rule_json_internal {

absl::StatusOr<std::string> UnixPathText(absl::string_view text) {
  EGRESS_RETURN_IF_ERROR(UnixAddressBytes(text).status());
  return std::string(text);
}

}  // namespace rule_json_internal

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
  if (!rule.name.empty()) out["name"] = rule.name;
  return out;
}

namespace {

// Pieces appended one by one rather than by absl::StrAppend, which sizes
// the string with resize() (zero-filled by libstdc++) before copying them
// in: a request holds 100,000 rules of some 30 pieces each.
void Put(std::string* out, absl::string_view piece) {
  out->append(piece.data(), piece.size());
}

template <typename Int>
void PutInt(std::string* out, Int value) {
  char digits[24];
  const std::to_chars_result r =
      std::to_chars(digits, digits + sizeof(digits), value);
  out->append(digits, r.ptr);
}

}  // namespace

// A JSON string as JsonText writes it. Text of printable ASCII without a
// quote or backslash (spec words, addresses, most comments) is its own
// content; anything else is left to the library (escapes, U+FFFD).
void AppendJsonString(std::string* out, absl::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out->push_back('"');
    Put(out, s);
    out->push_back('"');
  } else {
    Put(out, JsonText(json(std::string(s))));
  }
}

namespace {

// A destination as JSON: Cidr::ToString() between quotes (digits, dots,
// colons and a slash need no escape). IPv4, most destinations, is written in
// place, as ToString() writes it.
void AppendCidrJson(std::string* out, const Cidr& c) {
  out->push_back('"');
  if (c.family != 4) {
    Put(out, c.ToString());
  } else {
    for (int i = 0; i < 4; ++i) {
      if (i > 0) out->push_back('.');
      PutInt(out, static_cast<unsigned>(c.addr[i]));
    }
    if (c.prefix_len != 32) {
      out->push_back('/');
      PutInt(out, static_cast<unsigned>(c.prefix_len));
    }
  }
  out->push_back('"');
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
  std::string out;
  AppendRuleJsonText(&out, rule);
  return out;
}

void AppendRuleJsonText(std::string* out, const Rule& rule) {
  AppendRuleJsonText(out, rule, {});
}

void AppendRuleJsonText(std::string* out, const Rule& rule,
                        absl::Span<const JsonMember> extra) {
  // Members in the order of the tree's (sorted by name), no spaces, each
  // extra member in its sorted place. Words (the action, a protocol) and
  // addresses never need an escape.
  size_t next = 0;
  char separator = '{';
  auto member = [&](absl::string_view name, absl::string_view json) {
    out->push_back(separator);
    out->push_back('"');
    Put(out, name);
    Put(out, "\":");
    Put(out, json);
    separator = ',';
  };
  auto key = [&](absl::string_view name) {
    for (; next < extra.size() && extra[next].name < name; ++next) {
      member(extra[next].name, extra[next].json);
    }
    member(name, "");
  };
  key("action");
  out->push_back('"');
  Put(out, ActionName(rule.action));
  out->push_back('"');
  key("comment");
  AppendJsonString(out, rule.comment);
  key("destinations");
  AppendArray(out, rule.destinations,
              [&](const Cidr& c) { AppendCidrJson(out, c); });
  if (rule.expires != 0) {
    key("expires");
    PutInt(out, rule.expires);
  }
  key("host");
  AppendJsonString(out, rule.host);
  key("id");
  PutInt(out, rule.id);
  if (!rule.name.empty()) {
    key("name");
    AppendJsonString(out, rule.name);
  }
  auto strings = [&](const std::vector<std::string>& list) {
    AppendArray(out, list,
                [&](const std::string& v) { AppendJsonString(out, v); });
  };
  if (!rule.names.empty()) {
    key("names");
    strings(rule.names);
  }
  key("ports");
  AppendArray(out, rule.ports, [&](const PortProto& pp) {
    Put(out, "{\"hi\":");
    PutInt(out, pp.hi);
    Put(out, ",\"lo\":");
    PutInt(out, pp.lo);
    Put(out, ",\"proto\":\"");
    Put(out, ProtoName(pp.proto));
    Put(out, "\"}");
  });
  key("spec");
  AppendJsonString(out, rule.spec);
  if (!rule.unix_paths.empty()) {
    key("unix");
    strings(rule.unix_paths);
  }
  for (; next < extra.size(); ++next) {
    member(extra[next].name, extra[next].json);
  }
  out->push_back('}');
}

absl::StatusOr<Rule> RuleFromJson(const nlohmann::json& j) {
  return RuleFromTree(NlohmannView(j));
}

nlohmann::json RulesToJson(absl::Span<const Rule> rules) {
  json out = json::array();
  for (const Rule& r : rules) out.push_back(RuleToJson(r));
  return out;
}

absl::StatusOr<std::vector<Rule>> RulesFromJson(const nlohmann::json& j) {
  return RulesFromTree(NlohmannView(j));
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
  // Everything before " # " is a rule `allow`, `deny` and `delete` take back
  // (words without parentheses: a shell refuses those unquoted); what is
  // only for reading comes after it, where a shell takes it for a comment.
  const std::string spec = RuleSpecText(rule);
  // ActionName in capitals, without a string to raise (an apply's diff
  // formats every rule added and removed: 200,000 for a replacement).
  std::string out;
  out.reserve(spec.size() + 32);
  out.append(rule.action == Action::kAllow ? "ALLOW " : "DENY ");
  out.append(spec);
  std::vector<std::string> notes;
  const bool is_service = !spec.empty() && !absl::ascii_isdigit(spec[0]) &&
                          spec != "any" && spec != "icmp" && spec != "raw" &&
                          spec != "tcp" && spec != "udp" && spec != "unix" &&
                          spec.find(',') == std::string::npos;
  if (is_service && !rule.ports.empty()) {
    notes.push_back(
        absl::StrCat("(",
                     absl::StrJoin(rule.ports, ", ",
                                   [](std::string* o, const PortProto& pp) {
                                     o->append(PortText(pp));
                                   }),
                     ")"));
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
      // Words of their own, as DEST... is typed.
      out.append(" to");
      for (const Cidr& c : rule.destinations) {
        out.push_back(' ');
        AppendCidrText(out, c);
      }
      for (const std::string& name : rule.names) {
        absl::StrAppend(&out, " ", name);
      }
    }
    if (!rule.host.empty()) notes.push_back(absl::StrCat("(", rule.host, ")"));
  }
  if (!rule.comment.empty()) notes.push_back(rule.comment);
  if (!notes.empty()) absl::StrAppend(&out, " # ", absl::StrJoin(notes, " "));
  return out;
}

std::string WithNote(absl::string_view line, absl::string_view note) {
  if (note.empty()) return std::string(line);
  return absl::StrCat(line, absl::StrContains(line, " # ") ? " " : " # ", note);
}

}  // namespace egress::policy
