// Unix-socket rules: the text form of a unix socket address, and the
// entries of the unix_rules map (bpf/include/egress/abi.h) a rule set
// compiles to.
//
// Text form (CLI words, policy files, state, records):
//   /run/php/php-fpm.sock   a pathname socket: an absolute path, matched
//                           byte for byte as the caller passes it (the
//                           kernel runs the hook before it resolves the
//                           path: "/run//x", "/run/./x", a relative path
//                           or a symlink are other strings)
//   @name                   an abstract socket: sun_path "\0name"
// Up to 108 bytes of sun_path: a pathname of 1-108 bytes, an abstract name
// of 1-107 bytes after the '@'. No NUL bytes, and no other control or
// non-ASCII bytes (records show them as '?').
//
// Semantics per target (docs/policy.md):
//   no unix rule          unix operations are not looked at: all pass,
//                         uncounted, unrecorded (as before unix rules)
//   only deny rules       a listed path is refused, the rest passes
//   any allow rule        an allow-list: a path no allow names is refused
// A path both allowed and denied is denied (deny beats allow, as for inet).
#ifndef EGRESS_USERSPACE_POLICY_UNIX_RULES_H_
#define EGRESS_USERSPACE_POLICY_UNIX_RULES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "egress/abi.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// The sun_path bytes of a text address: "/x" -> "/x", "@x" -> "\0x".
// InvalidArgument naming the text: "unix address 'x.sock' must be an
// absolute path or @name", "... is longer than 108 bytes", "... has a NUL
// byte", "unix address '@' has an empty abstract name", "... has a control
// or non-ASCII byte; ...".
absl::StatusOr<std::string> UnixAddressBytes(absl::string_view text);

// The text form of sun_path bytes (as a record carries them): a leading
// NUL is '@', so is any later NUL (as ss(8) prints them); other bytes are
// kept as they are. "" for no bytes.
std::string UnixAddressText(absl::string_view bytes);

// The unix_rules key of (ruleset, bytes). bytes is at most
// EGRESS_UNIX_PATH_MAX long (UnixAddressBytes keeps that).
egress_unix_key UnixKey(uint32_t ruleset, absl::string_view bytes);

// Entries of the unix rules of `rules` (others are skipped) under
// `ruleset`, in rule order, one per key: when rules collide on a key the
// deny, then the lowest rule id, is kept. `flags` gets EGRESS_TF_UNIX_RULES
// when there is a unix rule and EGRESS_TF_UNIX_ALLOWLIST when one allows.
// Errors: InvalidArgument "rule <id>: ..." for a unix rule with no path or a
// bad one (UnixAddressBytes); ResourceExhausted past
// EGRESS_MAX_UNIX_RULES entries.
absl::Status CompileUnixRules(
    uint32_t ruleset, absl::Span<const Rule> rules,
    std::vector<std::pair<egress_unix_key, egress_rule_value>>* out,
    uint8_t* flags);

// What the unix hooks decide, from compiled entries and the target flags
// (as lib/unix.h does). `looked_at` is false when the target has no unix
// rules (the operation passes unlooked at).
struct UnixDecision {
  bool looked_at = false;
  uint8_t verdict = EGRESS_VERDICT_ALLOW;  // before the mode is applied
  uint8_t reason = EGRESS_REASON_UNIX_UNLISTED;
  uint32_t rule_id = 0;
};
UnixDecision EvaluateUnix(
    absl::Span<const std::pair<egress_unix_key, egress_rule_value>> entries,
    uint8_t flags, uint32_t ruleset, absl::string_view bytes);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_UNIX_RULES_H_
