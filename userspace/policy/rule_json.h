// JSON form of rules (the daemon's state file and the control protocol) and
// the one-line human form printed by "egressctl list".
//
// A rule is an object with exactly these members:
//   {"id": 7, "action": "allow", "spec": "dns",
//    "ports": [{"proto": "udp", "lo": 53, "hi": 53}, ...],
//    "destinations": ["10.0.0.53", "2001:db8::/32"],
//    "host": "", "comment": ""}
// plus "expires" (unix seconds) for a temporary rule, and only then,
// "unix" (a list of addresses, unix_rules.h) for a unix rule, and only then,
// "names" (domain names) for a rule that has them, and "name" (the policy
// file's rule name, names.h CheckName) for a rule that has one. Rules
// written without these members (older state and requests) read as before.
// "action" is "allow" or "deny"; "proto" is "tcp", "udp", "icmp", "raw" or
// "unix";
// destinations use Cidr::ToString() text; an empty list means anywhere.
#ifndef EGRESS_USERSPACE_POLICY_RULE_JSON_H_
#define EGRESS_USERSPACE_POLICY_RULE_JSON_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/rule.h"

namespace egress::policy {

// Never fails; every member is always written.
nlohmann::json RuleToJson(const Rule& rule);

// JsonText(RuleToJson(rule)), the same bytes, written without building the
// tree: what the state database stores per rule (100,000 rows in a policy
// apply).
std::string RuleJsonText(const Rule& rule);
// RuleJsonText appended to *out, without a string of its own: 100,000 of
// them make an `apply` request line (control::RequestText).
void AppendRuleJsonText(std::string* out, const Rule& rule);
// A member written beside a rule's own (`list -o json` adds "number" and
// "text"): its name and its JSON text.
struct JsonMember {
  absl::string_view name;
  absl::string_view json;
};
// AppendRuleJsonText of the object the tree makes of RuleToJson(rule) with
// `extra` added: `extra` sorted by name, no name a rule member's.
void AppendRuleJsonText(std::string* out, const Rule& rule,
                        absl::Span<const JsonMember> extra);

// Strict inverse of RuleToJson: RuleFromJson(RuleToJson(r)) == r for any rule
// whose destinations keep the Cidr invariant. InvalidArgument naming the
// member for: not an object, a missing member ("rule: missing field 'spec'"),
// an unknown member ("rule: unknown field 'sepc'"), a member of the wrong
// type ("rule: field 'id' must be an unsigned 32-bit integer"), a bad value
// ("rule: field 'action': expected 'allow' or 'deny', got 'permit'"), and the
// same inside "ports" entries ("rule: ports[1]: missing field 'hi'") and
// "destinations" ("rule: destinations[0]: bad address '10.0.0.256'").
// Never throws. (RuleFromTree, rule_json_tree.h, is the same reader over
// any JSON view.)
absl::StatusOr<Rule> RuleFromJson(const nlohmann::json& j);

// A JSON array of rules. Errors as RuleFromJson, prefixed with the index:
// "rules[3]: rule: missing field 'id'"; InvalidArgument if not an array.
nlohmann::json RulesToJson(absl::Span<const Rule> rules);
absl::StatusOr<std::vector<Rule>> RulesFromJson(const nlohmann::json& j);

// Parses JSON text without throwing. InvalidArgument "bad json: <parser
// message>" on syntax errors.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text);

// The text of `j` (indented by `indent`, or one line for -1). Never throws:
// strings holding bytes that are not UTF-8 (a process can name itself
// anything; cgroup and file names are bytes) get U+FFFD in their place.
std::string JsonText(const nlohmann::json& j, int indent = -1);
// JsonText of one string, appended to *out.
void AppendJsonString(std::string* out, absl::string_view s);

// One line for "egressctl list" (no id, no trailing newline):
//   ALLOW dns to 10.0.0.53 # (53/udp, 53/tcp)
//   DENY any to 169.254.169.254
//   ALLOW 443/tcp to 203.0.113.0/24 # (api.example.org)
//   ALLOW https to any # (443/tcp, 443/udp) vendor api
//   ALLOW 443 to 10.0.0.1 10.0.0.2
//   ALLOW raw
//   DENY unix /var/run/docker.sock @docker
// What comes before " # " is a rule the grammar (spec.h) takes back to the
// same rule (SameRule): `egressctl delete` and `allow`/`deny` accept it as
// printed, and a shell drops what follows " # " as a comment. The SPEC is
// RuleSpecText (spec_text.h); destinations and names are words of their
// own; "to any" means no destinations. After " # ": the ports of a
// service-name spec in parentheses (in the order of Rule::ports), the host
// name in parentheses, and the comment.
std::string FormatRule(const Rule& rule);

// `line` (a FormatRule line) with `note` after it, behind the " # " that
// starts its notes (one is added when it has none): "(until ...)" stays
// out of what a shell passes to egressctl.
std::string WithNote(absl::string_view line, absl::string_view note);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_RULE_JSON_H_
