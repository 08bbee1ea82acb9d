// RuleFromJson and RulesFromJson (rule_json.h) over any JSON view
// (json_view.h): the one reader of a rule's members and their checks, for
// nlohmann::json trees (RuleFromJson) and for simdjson's DOM (egressd's
// decoding of a request, control/protocol.cc). Same results, same errors,
// whichever tree.
#ifndef EGRESS_USERSPACE_POLICY_RULE_JSON_TREE_H_
#define EGRESS_USERSPACE_POLICY_RULE_JSON_TREE_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/names.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// RuleFromJson (rule_json.h) of a view. The members named in `ignored` are
// passed over, as if the object did not have them (a rule read from an
// object that has other members beside it: `list -o json`'s "number").
template <typename View>
absl::StatusOr<Rule> RuleFromTree(
    View j, std::initializer_list<const char*> ignored = {});
// RulesFromJson (rule_json.h) of a view.
template <typename View>
absl::StatusOr<std::vector<Rule>> RulesFromTree(View j);

namespace rule_json_internal {

// A unix address in unix_rules.h's text form, checked and kept as written
// (rule_json.cc).
absl::StatusOr<std::string> UnixPathText(absl::string_view text);

// The members of object `j` named in `names`, by index, read in one pass:
// InvalidArgument unless `j` is an object that has the first `required` of
// them and no other member. A missing member is named before an unknown
// one; of several, the first missing in `names`' order and the smallest
// unknown key (the first in nlohmann::json's order). Members named in
// `ignored` are not looked at.
template <typename View, size_t N>
absl::StatusOr<std::array<std::optional<View>, N>> ReadMembers(
    View j, absl::string_view what,
    const std::array<absl::string_view, N>& names, size_t required,
    std::initializer_list<const char*> ignored = {}) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected an object, got ", j.type_name()));
  }
  std::array<std::optional<View>, N> found;
  std::optional<absl::string_view> unknown;
  for (const auto& [key, value] : j.Members()) {
    // A structured binding is no lambda capture before C++20 (clang).
    const absl::string_view member = key;
    if (std::any_of(ignored.begin(), ignored.end(),
                    [&](absl::string_view name) { return name == member; })) {
      continue;
    }
    size_t i = 0;
    while (i < N && names[i] != key) ++i;
    if (i < N) {
      found[i] = value;  // a key given twice: the last, as nlohmann::json
    } else if (!unknown || key < *unknown) {
      unknown = key;
    }
  }
  for (size_t i = 0; i < required; ++i) {
    if (!found[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": missing field '", names[i], "'"));
    }
  }
  if (unknown) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": unknown field '", *unknown, "'"));
  }
  return found;
}

// Member `field` of an object, `v`, as text: valid while the tree lives.
// Words compared and dropped (an action, a protocol) are not copied: a
// request holds 100,000 rules.
template <typename View>
absl::StatusOr<absl::string_view> GetText(View v, absl::string_view what,
                                          absl::string_view field) {
  if (!v.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field '", field, "' must be a string"));
  }
  return v.string();
}

// GetText, copied.
template <typename View>
absl::StatusOr<std::string> GetString(View v, absl::string_view what,
                                      absl::string_view field) {
  EGRESS_ASSIGN_OR_RETURN(const absl::string_view text,
                          GetText(v, what, field));
  return std::string(text);
}

template <typename View>
absl::StatusOr<uint64_t> GetUnsigned(View v, absl::string_view what,
                                     absl::string_view field, uint64_t max,
                                     absl::string_view type) {
  // A negative literal is an integer, a non-negative one unsigned; floats
  // are rejected. The value is read once: three reads a rule of 100,000.
  if (v.is_number_unsigned() || (v.is_number_integer() && v.int64() >= 0)) {
    if (const uint64_t value = v.uint64(); value <= max) return value;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": field '", field, "' must be ", type));
}

template <typename View>
absl::StatusOr<PortProto> PortFromTree(View j, absl::string_view what) {
  enum { kProto, kLo, kHi };
  static constexpr std::array<absl::string_view, 3> kNames = {"proto", "lo",
                                                              "hi"};
  EGRESS_ASSIGN_OR_RETURN(const auto m, ReadMembers(j, what, kNames, 3));
  PortProto pp;
  EGRESS_ASSIGN_OR_RETURN(const absl::string_view proto,
                          GetText(*m[kProto], what, "proto"));
  absl::StatusOr<Proto> p = ParseProtoName(proto);
  if (!p.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": field 'proto': ", p.status().message()));
  }
  pp.proto = *p;
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t lo,
      GetUnsigned(*m[kLo], what, "lo", 65535, "a port number 0-65535"));
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t hi,
      GetUnsigned(*m[kHi], what, "hi", 65535, "a port number 0-65535"));
  if (lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": field 'lo' (", lo, ") is above field 'hi' (", hi, ")"));
  }
  pp.lo = static_cast<uint16_t>(lo);
  pp.hi = static_cast<uint16_t>(hi);
  return pp;
}

// A member that is a list of strings (`field`: "unix", "names"), each
// checked and written in its canonical form by `canonical`.
template <typename View>
absl::StatusOr<std::vector<std::string>> StringsFromTree(
    View j, absl::string_view field,
    absl::StatusOr<std::string> (*canonical)(absl::string_view)) {
  if (!j.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule: field '", field, "' must be an array"));
  }
  std::vector<std::string> out;
  size_t i = 0;
  for (const View item : j.Items()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: ", field, "[", i, "] must be a string"));
    }
    absl::StatusOr<std::string> text = canonical(item.string());
    if (!text.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rule: ", field, "[", i, "]: ", text.status().message()));
    }
    out.push_back(*std::move(text));
    ++i;
  }
  return out;
}

}  // namespace rule_json_internal

template <typename View>
absl::StatusOr<Rule> RuleFromTree(View j,
                                  std::initializer_list<const char*> ignored) {
  namespace internal = rule_json_internal;
  constexpr absl::string_view kWhat = "rule";
  // The first seven are required.
  enum {
    kId,
    kAction,
    kSpec,
    kPorts,
    kDestinations,
    kHost,
    kComment,
    kExpires,
    kUnix,
    kNames,
    kName
  };
  static constexpr std::array<absl::string_view, 11> kMembers = {
      "id",      "action",  "spec", "ports", "destinations", "host",
      "comment", "expires", "unix", "names", "name"};
  EGRESS_ASSIGN_OR_RETURN(
      const auto m, internal::ReadMembers(j, kWhat, kMembers, 7, ignored));
  Rule rule;
  EGRESS_ASSIGN_OR_RETURN(
      const uint64_t id, internal::GetUnsigned(*m[kId], kWhat, "id", UINT32_MAX,
                                               "an unsigned 32-bit integer"));
  rule.id = static_cast<uint32_t>(id);
  EGRESS_ASSIGN_OR_RETURN(const absl::string_view action,
                          internal::GetText(*m[kAction], kWhat, "action"));
  if (action == "allow") {
    rule.action = Action::kAllow;
  } else if (action == "deny") {
    rule.action = Action::kDeny;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("rule: field 'action': expected 'allow' or 'deny', got '",
                     action, "'"));
  }
  EGRESS_ASSIGN_OR_RETURN(rule.spec,
                          internal::GetString(*m[kSpec], kWhat, "spec"));
  EGRESS_ASSIGN_OR_RETURN(rule.host,
                          internal::GetString(*m[kHost], kWhat, "host"));
  EGRESS_ASSIGN_OR_RETURN(rule.comment,
                          internal::GetString(*m[kComment], kWhat, "comment"));
  if (m[kExpires]) {
    EGRESS_ASSIGN_OR_RETURN(
        const uint64_t expires,
        internal::GetUnsigned(*m[kExpires], kWhat, "expires", INT64_MAX,
                              "a unix time in seconds"));
    rule.expires = static_cast<int64_t>(expires);
  }
  if (m[kUnix]) {
    EGRESS_ASSIGN_OR_RETURN(
        rule.unix_paths,
        internal::StringsFromTree(*m[kUnix], "unix", internal::UnixPathText));
  }
  if (m[kNames]) {
    EGRESS_ASSIGN_OR_RETURN(
        rule.names,
        internal::StringsFromTree(*m[kNames], "names", CanonicalRuleName));
  }
  if (m[kName]) {
    // Written back as a policy file's `name:`, which must take it.
    EGRESS_ASSIGN_OR_RETURN(rule.name,
                            internal::GetString(*m[kName], kWhat, "name"));
    if (absl::Status st = CheckName(rule.name, "rule name"); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: field 'name': ", st.message()));
    }
  }
  const View ports = *m[kPorts];
  if (!ports.is_array()) {
    return absl::InvalidArgumentError("rule: field 'ports' must be an array");
  }
  size_t i = 0;
  for (const View port : ports.Items()) {
    EGRESS_ASSIGN_OR_RETURN(
        PortProto pp,
        internal::PortFromTree(port, absl::StrCat("rule: ports[", i, "]")));
    rule.ports.push_back(pp);
    ++i;
  }
  const View destinations = *m[kDestinations];
  if (!destinations.is_array()) {
    return absl::InvalidArgumentError(
        "rule: field 'destinations' must be an array");
  }
  i = 0;
  for (const View d : destinations.Items()) {
    if (!d.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: destinations[", i, "] must be a string"));
    }
    absl::StatusOr<Cidr> c = Cidr::Parse(d.string());
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule: destinations[", i, "]: ", c.status().message()));
    }
    rule.destinations.push_back(*c);
    ++i;
  }
  return rule;
}

template <typename View>
absl::StatusOr<std::vector<Rule>> RulesFromTree(View j) {
  if (!j.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rules: expected an array, got ", j.type_name()));
  }
  std::vector<Rule> rules;
  // Room past the last rule: these become a target's rules, and an `allow`
  // appends to them (Engine::Prepare). Without it the first append moved
  // every rule to a new array (100,000 rules: 21 MB to fault in and copy,
  // about 10 ms of the first `allow` after an apply). Capacity never used
  // is never touched, so it costs no memory.
  rules.reserve(j.size() + j.size() / 8 + 8);
  for (const View item : j.Items()) {
    absl::StatusOr<Rule> r = RuleFromTree(item);
    if (!r.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rules[", rules.size(), "]: ", r.status().message()));
    }
    rules.push_back(*std::move(r));
  }
  return rules;
}

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_RULE_JSON_TREE_H_
